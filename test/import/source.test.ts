/**
 * Reading a gzip source (src/import/source.ts): the runtime's decompressor is fed only as fast as the import
 * reads, so a large file is never unpacked whole ahead of it, and what it gives is the file.
 */
import { gzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { nativeGunzipped, sourceBytes } from "../../src/import/source";

const MiB = 1024 * 1024;

/** `size` random bytes (they do not compress: the compressed and unpacked sizes are about equal). */
function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65_536)));
  return bytes;
}

const sha256 = async (bytes: Uint8Array) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");

describe("the runtime's gunzip, as an import reads it", () => {
  it("pulls the compressed file only a few MiB ahead of the reader, and gives back the file exactly", async () => {
    const file = randomBytes(16 * MiB);
    const compressed = gzipSync(file, { level: 1 });
    let pulled = 0;
    const source = (async function* () {
      for (let at = 0; at < compressed.length; at += MiB) {
        const chunk = compressed.subarray(at, at + MiB);
        pulled += chunk.length;
        yield chunk;
      }
    })();
    const reading = nativeGunzipped(source);
    const first = await reading.next();
    expect(first.done).toBe(false);
    // Time for a runaway feeder to unpack everything.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(pulled).toBeLessThanOrEqual(6 * MiB);

    const unpacked = new Uint8Array(file.length);
    unpacked.set(first.value as Uint8Array);
    let length = (first.value as Uint8Array).length;
    for await (const chunk of reading) {
      unpacked.set(chunk, length);
      length += chunk.length;
    }
    expect(length).toBe(file.length);
    expect(await sha256(unpacked)).toBe(await sha256(file));
    expect(pulled).toBe(compressed.length);
  });
});

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  return new TextDecoder().decode(all);
}

describe("an import's source, read from R2 one ranged get at a time", () => {
  const text = Array.from({ length: 400 }, (_, i) => JSON.stringify({ email: `range${i}@example.com`, n: i })).join("\n") + "\n";
  const bytes = new TextEncoder().encode(text);

  it("gives the file from any offset, plain or gzip (one member or several), whatever the range size", async () => {
    const key = `imports/0/ranges-${crypto.randomUUID()}`;
    const half = text.indexOf("\n", text.length / 2) + 1;
    const members = [gzipSync(bytes.subarray(0, half)), gzipSync(bytes.subarray(half))];
    const multi = new Uint8Array(members[0]!.length + members[1]!.length);
    multi.set(members[0]!);
    multi.set(members[1]!, members[0]!.length);
    for (const [compression, stored] of [["none", bytes], ["gzip", gzipSync(bytes)], ["gzip", multi]] as const) {
      await env.EXPORTS.put(key, stored);
      for (const rangeBytes of [333, 4_096, 1_000_000]) {
        for (const offset of [0, 1, 5_000, bytes.length - 1, bytes.length]) {
          expect(await collect(await sourceBytes(env.EXPORTS, key, compression, offset, rangeBytes)), `${compression} ${stored.length} range ${rangeBytes} from ${offset}`).toBe(text.slice(offset));
        }
      }
    }
  });

  it("fails, saying so, when the file is replaced while it is read", async () => {
    const key = `imports/0/replaced-${crypto.randomUUID()}`;
    await env.EXPORTS.put(key, bytes);
    const reading = (await sourceBytes(env.EXPORTS, key, "none", 0, 1_000))[Symbol.asyncIterator]();
    expect((await reading.next()).done).toBe(false);
    await env.EXPORTS.put(key, bytes.subarray(0, 2_000));
    await expect(collect({ [Symbol.asyncIterator]: () => reading })).rejects.toThrow(/changed or is no longer stored/);
  });
});
