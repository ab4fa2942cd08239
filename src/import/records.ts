/**
 * Splits an import's source into records, with the byte offset after each, so that a slice can checkpoint
 * after any record and a later slice resume exactly there. NDJSON records end at a line feed; CSV records at a
 * line feed outside quotes (RFC 4180: a quoted cell may hold line breaks, and a doubled quote inside one
 * toggles twice, so the parity of quotes tells whether a line feed is inside a cell). The cells of a CSV record
 * are then read by csv-parse.
 */
// The browser build: self-contained (its own Buffer), where the default one needs Node's.
import { parse as parseCsv } from "csv-parse/browser/esm/sync";

const LF = 0x0a;
const QUOTE = 0x22;

/**
 * The longest record accepted. A longer one (or a stray quote that would swallow the rest of the file) is
 * rejected, and reading resumes at the next line feed.
 */
export const MAX_RECORD_BYTES = 1024 * 1024;

export interface RawRecord {
  /** The record's text without its line end; null if it is not valid UTF-8 or too long. */
  text: string | null;
  problem?: string;
  /** Byte offset in the (uncompressed) source just after the record and its line end. */
  end: number;
}

// The byte order mark is skipped by readRecords itself, only at the start of the file.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Reads records from `chunks` (the source's bytes from byte `start` on). Blank lines are skipped. At `start`
 * 0 a UTF-8 byte order mark is skipped.
 */
export async function* readRecords(chunks: AsyncIterable<Uint8Array>, start: number, csv: boolean): AsyncGenerator<RawRecord> {
  let buffer = new Uint8Array(0);
  let bufferStart = start; // source offset of buffer[0]
  let scanned = 0; // bytes of the buffer already scanned for the current record
  let inQuotes = false;
  let skippingOverlong = false;
  let first = start === 0;

  const take = (length: number, next: number): RawRecord | null => {
    let bytes = buffer.subarray(0, length);
    buffer = buffer.subarray(next);
    bufferStart += next;
    scanned = 0;
    inQuotes = false;
    if (first) {
      first = false;
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length === 0) return null;
    try {
      return { text: utf8.decode(bytes), end: bufferStart };
    } catch {
      return { text: null, problem: "is not valid UTF-8", end: bufferStart };
    }
  };

  // Where the CSV record being scanned ends: the first line feed outside quotes after `scanned`, or -1 (with
  // inQuotes as the buffer's end leaves it). indexOf searches natively, and each search stops at the line end.
  const csvRecordEnd = (): number => {
    for (let at = scanned; ; ) {
      const lf = buffer.indexOf(LF, at);
      const line = buffer.subarray(at, lf < 0 ? buffer.length : lf);
      for (let q = line.indexOf(QUOTE); q >= 0; q = line.indexOf(QUOTE, q + 1)) inQuotes = !inQuotes;
      if (lf < 0 || !inQuotes) return lf;
      at = lf + 1;
    }
  };

  for await (const chunk of chunks) {
    const joined = new Uint8Array(buffer.length + chunk.length);
    joined.set(buffer);
    joined.set(chunk, buffer.length);
    buffer = joined;
    for (;;) {
      const end = csv && !skippingOverlong ? csvRecordEnd() : buffer.indexOf(LF, scanned);
      if (end < 0) {
        scanned = buffer.length;
        if (buffer.length > MAX_RECORD_BYTES && !skippingOverlong) skippingOverlong = true;
        break;
      }
      if (skippingOverlong) {
        skippingOverlong = false;
        buffer = buffer.subarray(end + 1);
        bufferStart += end + 1;
        scanned = 0;
        inQuotes = false;
        first = false;
        yield { text: null, problem: `is longer than ${MAX_RECORD_BYTES} bytes (or has an unclosed quote)`, end: bufferStart };
        continue;
      }
      const record = take(end, end + 1);
      if (record) yield record;
    }
  }
  // The last record may have no line end.
  if (skippingOverlong) {
    yield { text: null, problem: `is longer than ${MAX_RECORD_BYTES} bytes (or has an unclosed quote)`, end: bufferStart + buffer.length };
  } else if (buffer.length > 0) {
    const record = take(buffer.length, buffer.length);
    if (record) yield record;
  }
}

/** The cells of one CSV record, or why it cannot be read. */
export function csvCells(text: string): { cells: string[] } | { problem: string } {
  try {
    const records = parseCsv(text, { bom: false, relax_column_count: true, skip_empty_lines: false }) as string[][];
    // A quoted cell may hold line breaks: the record is still one.
    if (records.length !== 1) return { problem: "is not one CSV record" };
    return { cells: records[0]! };
  } catch (error) {
    return { problem: `is not valid CSV: ${error instanceof Error ? error.message.slice(0, 200) : "parse error"}` };
  }
}
