import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { R2PartWriter } from "../../src/export/r2_writer";
import { toHex } from "../../src/hex";

const PART = 5 * 1024 * 1024;
const options = { partSize: PART, httpMetadata: { contentType: "text/plain; charset=utf-8" }, customMetadata: {} };
const utf8 = new TextEncoder();

async function storedBytes(key: string): Promise<Uint8Array> {
  return new Uint8Array(await (await env.EXPORTS.get(key))!.arrayBuffer());
}

/** SHA-256 as hex: compares megabytes without asking the test runner to diff them. */
async function digest(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? utf8.encode(bytes) : bytes;
  return toHex(await crypto.subtle.digest("SHA-256", data));
}

describe("the R2 part writer", () => {
  it.each([1, 2, 3])("splits a UTF-8 character across a part boundary (%i byte(s) of it in the first part)", async (inFirst) => {
    const key = `test/writer-split-${inFirst}-${crypto.randomUUID()}`;
    const writer = new R2PartWriter(env.EXPORTS, key, options, { uploadId: null, parts: [], carry: new Uint8Array(0) });
    const emoji = "😀"; // four bytes
    const text = "a".repeat(PART - inFirst) + emoji + "tail" + "b".repeat(PART + 123);
    await writer.writeText(text.slice(0, 1000));
    await writer.writeText(text.slice(1000));
    const state = await writer.sendLastPart();
    await writer.complete();
    expect(state.parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    expect(writer.accepted).toBe(utf8.encode(text).byteLength);
    expect(await digest(await storedBytes(key))).toBe(await digest(text));
  });

  it("makes every part but the last exactly the part size, and resumes an upload from a checkpoint", async () => {
    const key = `test/writer-resume-${crypto.randomUUID()}`;
    const first = new R2PartWriter(env.EXPORTS, key, options, { uploadId: null, parts: [], carry: new Uint8Array(0) });
    const chunk = "ü".repeat(700_000); // 1.4 MB
    for (let i = 0; i < 5; i++) await first.writeText(chunk);
    const checkpoint = await first.state();
    expect(checkpoint.parts).toHaveLength(1);
    expect(checkpoint.carry.byteLength).toBe(5 * 1_400_000 - PART);

    const resumed = new R2PartWriter(env.EXPORTS, key, options, checkpoint);
    for (let i = 0; i < 4; i++) await resumed.writeText(chunk);
    const final = await resumed.sendLastPart();
    await resumed.complete();
    expect(final.parts).toHaveLength(3);
    const stored = await storedBytes(key);
    expect(stored.byteLength).toBe(9 * 1_400_000);
    expect(await digest(stored)).toBe(await digest(chunk.repeat(9)));
  });

  it("stores a file smaller than one part with a single put", async () => {
    const key = `test/writer-small-${crypto.randomUUID()}`;
    const writer = new R2PartWriter(env.EXPORTS, key, options, { uploadId: null, parts: [], carry: new Uint8Array(0) });
    await writer.writeText("hello, wörld");
    const state = await writer.sendLastPart();
    expect(state.uploadId).toBeNull();
    await writer.complete();
    expect(new TextDecoder().decode(await storedBytes(key))).toBe("hello, wörld");
  });
});
