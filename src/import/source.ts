/**
 * An import's source file, read from R2 as a stream of bytes from an uncompressed offset, one ranged get of
 * SOURCE_RANGE_BYTES at a time. A plain file is read from the offset. A gzip file is decompressed from its start
 * and the bytes before the offset are passed over (a gzip stream cannot be entered in the middle).
 *
 * Gzip is unpacked by the runtime's DecompressionStream (native zlib, several times faster than JavaScript: a
 * resumed slice passes over everything before its cursor). That stream reads only a file's first member, and
 * fails at the second (exports write one member per slice; gunzip reads them all). On any failure of its own the
 * file is read again by fflate's Gunzip, which reads every member and names what is wrong with a broken file,
 * passing over what the runtime already gave.
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

async function* fflateGunzipped(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
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

/** Unpacked bytes held at most before they are read: the runtime's stream unpacks whatever it is given at once. */
const UNPACKED_AHEAD_BYTES = 4 * 1024 * 1024;

/**
 * The runtime's gunzip, fed GUNZIP_STEP_BYTES at a time, a turn of the event loop after each, and only while
 * less than UNPACKED_AHEAD_BYTES wait to be read. Its write side takes input as fast as it is given (it does not
 * wait for the reader), so without this a large file would be unpacked whole, held in memory, with the isolate
 * busy meanwhile.
 */
export async function* nativeGunzipped(compressed: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const unpack = new DecompressionStream("gzip");
  const writer = unpack.writable.getWriter();
  const reader = unpack.readable.getReader();
  const unpacked: Uint8Array[] = [];
  let ahead = 0;
  let ended = false;
  let failure: unknown = null;
  let stopped = false;
  // Each side waits on its own: the reader for bytes (or the end), the feeder for room.
  const waiting: { reader: (() => void) | null; feeder: (() => void) | null } = { reader: null, feeder: null };
  const wake = (side: keyof typeof waiting) => {
    waiting[side]?.();
    waiting[side] = null;
  };
  const waitAs = (side: keyof typeof waiting) => new Promise<void>((resolve) => (waiting[side] = resolve));

  const pumping = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      unpacked.push(value);
      ahead += value.byteLength;
      wake("reader");
    }
  })();
  const feeding = (async () => {
    for await (const chunk of compressed) {
      for (let at = 0; at < chunk.byteLength; at += GUNZIP_STEP_BYTES) {
        while (ahead >= UNPACKED_AHEAD_BYTES && !stopped) await waitAs("feeder");
        if (stopped) return;
        await writer.write(chunk.subarray(at, at + GUNZIP_STEP_BYTES));
        await yieldToEventLoop();
      }
    }
    await writer.close();
  })();
  Promise.all([pumping, feeding]).then(
    () => ((ended = true), wake("reader")),
    (error) => ((failure = error), wake("reader")),
  );

  try {
    for (;;) {
      if (unpacked.length > 0) {
        const chunk = unpacked.shift()!;
        ahead -= chunk.byteLength;
        wake("feeder");
        yield chunk;
      } else if (failure !== null) {
        throw failure;
      } else if (ended) {
        return;
      } else {
        await waitAs("reader");
      }
    }
  } finally {
    // Stopped early (the slice is over, or failed): let go of the source and of the stream.
    stopped = true;
    wake("feeder");
    await writer.abort().catch(() => {});
    await reader.cancel().catch(() => {});
  }
}

async function* gunzipped(bucket: R2Bucket, key: string, rangeBytes: number): AsyncGenerator<Uint8Array> {
  let given = 0;
  try {
    for await (const chunk of nativeGunzipped(storedBytes(bucket, key, 0, rangeBytes))) {
      given += chunk.byteLength;
      yield chunk;
    }
    return;
  } catch (error) {
    if (error instanceof DomainError) throw error;
    // A second member, or a broken file: fflate reads on, or says what is wrong.
  }
  yield* skipBytes(fflateGunzipped(storedBytes(bucket, key, 0, rangeBytes)), given);
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

/** Bytes of the source read by one ranged get: R2's local simulator holds what one get reads in memory, at once. */
export const SOURCE_RANGE_BYTES = 8 * 1024 * 1024;

/** The stored file's bytes from `offset` on, one ranged get of `rangeBytes` at a time. */
async function* storedBytes(bucket: R2Bucket, key: string, offset: number, rangeBytes: number): AsyncGenerator<Uint8Array> {
  const head = await bucket.head(key);
  if (!head) throw new DomainError("IMPORT_INVALID", `the file to import (${key}) is no longer stored`);
  for (let at = offset; at < head.size; ) {
    const object = await bucket.get(key, { range: { offset: at, length: Math.min(rangeBytes, head.size - at) }, onlyIf: { etagMatches: head.etag } });
    if (!object || !("body" in object)) throw new DomainError("IMPORT_INVALID", `the file to import (${key}) changed or is no longer stored`);
    const from = at;
    for await (const chunk of streamChunks(object.body)) {
      at += chunk.byteLength;
      yield chunk;
    }
    if (at === from) throw new Error(`R2 gave no bytes of ${key} at ${from} of ${head.size}`);
  }
}

/** The source's uncompressed bytes from `offset` on. */
export async function sourceBytes(
  bucket: R2Bucket,
  key: string,
  compression: Compression,
  offset: number,
  rangeBytes = SOURCE_RANGE_BYTES,
): Promise<AsyncIterable<Uint8Array>> {
  if (compression === "gzip") return skipBytes(gunzipped(bucket, key, rangeBytes), offset);
  return storedBytes(bucket, key, offset, rangeBytes);
}
