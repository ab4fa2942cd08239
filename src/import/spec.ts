import type { Compression } from "../export/spec";

export const IMPORT_FORMATS = ["csv", "ndjson"] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** Everything an import needs, fixed when it is requested (kept in the job's spec column). */
export interface ImportSpec {
  kind: "import";
  listId: number;
  format: ImportFormat;
  compression: Compression;
  /** Contacts already in the list are updated (else rejected, each with its reason). */
  updateIfExists: boolean;
  /** The R2 key of the file to import. */
  sourceKey: string;
  /** "upload": the client uploaded it to its signed link, and it is deleted when the import ends. */
  source: "upload" | "object" | "export";
  requestedAt: string;
  /**
   * How slices cut the file into batches, fixed when the import is requested: every slice, before a deploy and
   * after it, cuts the same batches, so that it finds those an earlier slice wrote in the ledger. (Imports
   * requested before it was kept here took 1,000 rows a batch.)
   */
  batching?: ImportBatching;
}

export interface ImportBatching {
  /** Rows of a batch, at most. */
  rows: number;
  /** A batch ends with the row that takes it to this many bytes of the (unpacked) file. */
  bytes: number;
}

/** The batches of an import requested before its spec kept them. */
export const FIRST_BATCHING: ImportBatching = { rows: 1_000, bytes: Number.MAX_SAFE_INTEGER };

/**
 * Where an uploaded import file is kept until its import ends. Each upload attempt writes its own object (the
 * upload lock's version names it), so two uploads that overlap (one outliving its lock) never write one object.
 */
export const uploadKey = (accountId: number, jobId: string, spec: Pick<ImportSpec, "format" | "compression">, attempt?: number) =>
  `imports/${accountId}/${jobId}${attempt === undefined ? "" : `-upload-${attempt}`}.${spec.format}${spec.compression === "gzip" ? ".gz" : ""}`;

/** The import's rejects file: one CSV row per rejected source row (row, email, reason). */
export const rejectsKey = (accountId: number, jobId: string) => `imports/${accountId}/${jobId}-rejects.csv`;
export const rejectsFileName = (jobId: string) => `subscriber-import-${jobId}-rejects.csv`;
