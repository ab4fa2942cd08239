/**
 * Split exports: details.max_file_size and details.max_rows_per_file cut the export into several files, each
 * complete on its own (a JSON envelope with its own count, a CSV with its own header, gzip members closed).
 * A new file starts before a record that would take the current one past a limit, so no file is ever over
 * it; only a single record larger than max_file_size (which needs a 5 MiB record) would make a file larger.
 */
import { DomainError } from "../errors";
import type { Encoder } from "./encode";
import type { ExportSpec } from "./spec";

/** R2's smallest multipart part: a smaller file limit would make files no bigger than one part anyway. */
export const MIN_FILE_BYTES = 5 * 1024 * 1024;
/** R2's largest object. */
export const MAX_FILE_BYTES = 5 * 1024 ** 4;
export const MIN_ROWS_PER_FILE = 100;
export const MAX_ROWS_PER_FILE = 100_000_000;
export interface FileLimits {
  maxBytes: number | undefined;
  maxRows: number | undefined;
  /** The longest tail the encoder writes (the JSON envelope's end with the largest count). */
  maxTailBytes: number;
}

/** The export's limits, or null when it writes one file. */
export function fileLimits(spec: ExportSpec, encoder: Encoder): FileLimits | null {
  if (spec.maxFileBytes === undefined && spec.maxRowsPerFile === undefined) return null;
  return { maxBytes: spec.maxFileBytes, maxRows: spec.maxRowsPerFile, maxTailBytes: encoder.tail(Number.MAX_SAFE_INTEGER).length };
}

const utf8 = new TextEncoder();

/**
 * Whether writing `text` (a separator and a record) would take a file that holds `rows` records and
 * `textBytes` bytes past a limit, counting the tail the file still needs. A UTF-16 unit is at most 3 UTF-8
 * bytes, so the exact length is only measured for the few records near the limit.
 */
export function overflows(limits: FileLimits, rows: number, textBytes: number, text: string, tail: (rows: number) => string): boolean {
  if (limits.maxRows !== undefined && rows >= limits.maxRows) return true;
  if (limits.maxBytes === undefined) return false;
  const room = limits.maxBytes - textBytes;
  if (text.length * 3 + limits.maxTailBytes <= room) return false;
  return utf8.encode(text).byteLength + tail(rows + 1).length > room;
}

/** Refuses to start file number `fileIndex` past `maxFiles` (EXPORT_MAX_FILES). */
export function checkFileCount(fileIndex: number, spec: ExportSpec, maxFiles: number): void {
  if (fileIndex <= maxFiles) return;
  throw new DomainError("EXPORT_TOO_MANY_FILES", tooManyFiles(spec, maxFiles));
}

/** Refuses at the start an export whose row limit already needs too many files for its counted total. */
export function checkExpectedFiles(total: number, spec: ExportSpec, maxFiles: number): void {
  if (spec.maxRowsPerFile === undefined || Math.ceil(total / spec.maxRowsPerFile) <= maxFiles) return;
  throw new DomainError("EXPORT_TOO_MANY_FILES", `${tooManyFiles(spec, maxFiles)} (${total} rows match)`);
}

const tooManyFiles = (spec: ExportSpec, maxFiles: number) =>
  `it would need more than ${maxFiles} files; raise ` +
  [spec.maxRowsPerFile !== undefined ? `max_rows_per_file (${spec.maxRowsPerFile})` : null, spec.maxFileBytes !== undefined ? `max_file_size (${spec.maxFileBytes})` : null]
    .filter(Boolean)
    .join(" or ");
