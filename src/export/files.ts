import type { ExportFormat } from "../db/control_schema";

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  json: "application/json; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  // No media type is registered for NDJSON; this is the one its spec and most tools use.
  ndjson: "application/x-ndjson; charset=utf-8",
};

export const exportFileName = (jobId: string, format: ExportFormat) => `segment-export-${jobId}.${format}`;

/** Exports live under one prefix per account, so an R2 lifecycle rule can expire them by age. */
export const exportObjectKey = (accountId: number, jobId: string, format: ExportFormat) =>
  `exports/${accountId}/${exportFileName(jobId, format)}`;
