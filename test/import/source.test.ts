/**
 * Reading a gzip source (src/import/source.ts): the runtime's decompressor is fed only as fast as the import
 * reads, so a large file is never unpacked whole ahead of it, and what it gives is the file.
 */
import { gzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { nativeGunzipped } from "../../src/import/source";

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
