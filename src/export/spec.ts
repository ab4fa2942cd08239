import type { ExportFormat, SubscriberStatus } from "../db/schema";

export const COMPRESSIONS = ["none", "gzip"] as const;
export type Compression = (typeof COMPRESSIONS)[number];
import type { RuleGroup } from "../segments/rules";

/**
 * Everything an export needs, frozen when the request is accepted, so that every slice of a job
 * exports the same thing even if the segments are edited meanwhile.
 */
export interface ExportSpec {
  segmentIds: number[];
  segments: Array<{ id: number; name: string; rules: RuleGroup }>;
  status: SubscriberStatus | "any";
  includeMembership: boolean;
  /** Requested custom fields in output order. */
  customFields: Array<{ id: number; name: string }>;
  format: ExportFormat;
  /** "gzip": the file is gzip-compressed (one member per slice). Absent in specs made before compression. */
  compression?: Compression;
  /**
   * Split exports (details.max_file_size, details.max_rows_per_file): a new file starts before a record that
   * would take the current one past either limit. Absent: one file. maxFileBytes counts uncompressed bytes.
   */
  maxFileBytes?: number;
  maxRowsPerFile?: number;
  /** "within the last N days" is measured from the moment of the request. */
  requestedAt: string;
}
