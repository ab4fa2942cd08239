import type { ExportFormat } from "../db/control_schema";
import type { Compression, ExportSpec } from "./spec";

/** What decides a file's name and type. */
export interface FileKind {
  format: ExportFormat;
  compression?: Compression;
}

const FORMAT_TYPES: Record<ExportFormat, string> = {
  json: "application/json; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  // No media type is registered for NDJSON; this is the one its spec and most tools use.
  ndjson: "application/x-ndjson; charset=utf-8",
};

const gzipped = (kind: FileKind) => kind.compression === "gzip";

/** The file's Content-Type: a gzip file is application/gzip (it is the file, not a transfer encoding). */
export const contentType = (kind: FileKind) => (gzipped(kind) ? "application/gzip" : FORMAT_TYPES[kind.format]);

/** A split export's files are numbered from 1: …-part-0001.csv, …-part-0002.csv; an unsplit export's is not. */
export const exportFileName = (jobId: string, kind: FileKind, fileIndex?: number) =>
  `segment-export-${jobId}${fileIndex === undefined ? "" : `-part-${String(fileIndex).padStart(4, "0")}`}.${kind.format}${gzipped(kind) ? ".gz" : ""}`;

/** Exports live under one prefix per account, so an R2 lifecycle rule can expire them by age. */
export const exportObjectKey = (accountId: number, jobId: string, kind: FileKind, fileIndex?: number) =>
  `exports/${accountId}/${exportFileName(jobId, kind, fileIndex)}`;

export const fileKindOf = (spec: Pick<ExportSpec, "format" | "compression">): FileKind => ({ format: spec.format, compression: spec.compression ?? "none" });

/** Whether the export writes several files (max_file_size or max_rows_per_file was given). */
export const isSplit = (spec: Pick<ExportSpec, "maxFileBytes" | "maxRowsPerFile">) =>
  spec.maxFileBytes !== undefined || spec.maxRowsPerFile !== undefined;

/** The number in a file's name and link: a split export's files are numbered, an unsplit export's is not. */
export const fileNumber = (spec: ExportSpec, fileIndex: number) => (isSplit(spec) ? fileIndex : undefined);
