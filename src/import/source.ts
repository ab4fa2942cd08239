/**
 * An import's source file, read from R2 as a stream of bytes from an uncompressed offset. A plain file is read
 * with a ranged get from the offset. A gzip file is decompressed from its start and the bytes before the offset
 * are passed over (a gzip stream cannot be entered in the middle); fflate's Gunzip reads every member, as gunzip
 * does, where the runtime's DecompressionStream stops after the first (and exports write one member per slice).
 */
import { Gunzip } from "fflate";
import { DomainError } from "../errors";
import type { Compression } from "../export/spec";

async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (value.byteLength > 0) yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Compressed bytes unpacked at a time: fflate works synchronously, and a whole R2 chunk could be megabytes. */
const GUNZIP_STEP_BYTES = 64 * 1024;
const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function* gunzipped(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const gunzip = new Gunzip((chunk) => out.push(chunk));
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.byteLength; at += GUNZIP_STEP_BYTES) {
      try {
        gunzip.push(chunk.subarray(at, at + GUNZIP_STEP_BYTES), false);
      } catch (error) {
        throw new DomainError("IMPORT_INVALID", `the file is not valid gzip: ${error instanceof Error ? error.message : String(error)}`);
      }
      while (out.length > 0) yield out.shift()!;
      // A turn of the event loop between steps, so that unpacking (and passing over) a large file never holds
      // the isolate: its other requests get to run.
      await yieldToEventLoop();
    }
  }
  try {
    gunzip.push(new Uint8Array(0), true);
  } catch (error) {
    throw new DomainError("IMPORT_INVALID", `the gzip file ends early: ${error instanceof Error ? error.message : String(error)}`);
  }
  while (out.length > 0) yield out.shift()!;
}

async function* skipBytes(chunks: AsyncIterable<Uint8Array>, count: number): AsyncGenerator<Uint8Array> {
  let left = count;
  for await (const chunk of chunks) {
    if (left >= chunk.byteLength) {
      left -= chunk.byteLength;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

/** The source's uncompressed bytes from `offset` on. */
export async function sourceBytes(bucket: R2Bucket, key: string, compression: Compression, offset: number): Promise<AsyncIterable<Uint8Array>> {
  const gzip = compression === "gzip";
  const object = await bucket.get(key, gzip || offset === 0 ? undefined : { range: { offset } });
  if (!object) throw new DomainError("IMPORT_INVALID", `the file to import (${key}) is no longer stored`);
  const raw = streamChunks(object.body);
  return gzip ? skipBytes(gunzipped(raw), offset) : raw;
}
