import type { NotifyType } from "../db/control_schema";
import { toHex } from "../hex";
import type { ExportSpec } from "./spec";

/**
 * What makes two GetSegmentSubscribersAsync requests the same export: the account, the segments as a set,
 * the status filter, include_membership, the resolved custom field ids in output order, the format, compression and file
 * limits, and the notification (type and normalised target). Anything else (the order or spelling of segment ids, field names
 * versus "all", letter case of options, requestedAt) does not change the file or who hears about it.
 */
export interface CanonicalRequest {
  v: 1;
  account: number;
  segments: number[];
  status: ExportSpec["status"];
  membership: boolean;
  fields: number[];
  format: ExportSpec["format"];
  compression: NonNullable<ExportSpec["compression"]>;
  /** Only when the export is split, so that an unsplit request keeps the hash it had before splitting existed. */
  split?: { bytes: number | null; rows: number | null };
  notify: { type: NotifyType; target: string };
}

export function canonicalRequest(accountId: number, spec: ExportSpec, notifyType: NotifyType, notifyTarget: string): CanonicalRequest {
  // Keys are listed in a fixed order, so JSON.stringify of this object is the canonical form.
  return {
    v: 1,
    account: accountId,
    segments: [...new Set(spec.segmentIds)].sort((a, b) => a - b),
    status: spec.status,
    membership: spec.includeMembership,
    fields: spec.customFields.map((f) => f.id),
    format: spec.format,
    compression: spec.compression ?? "none",
    ...(spec.maxFileBytes !== undefined || spec.maxRowsPerFile !== undefined
      ? { split: { bytes: spec.maxFileBytes ?? null, rows: spec.maxRowsPerFile ?? null } }
      : {}),
    notify: { type: notifyType, target: notifyTarget },
  };
}

/** SHA-256, hex, of the canonical JSON form of the request (stored in export_jobs.request_hash). */
export async function requestHash(canonical: CanonicalRequest): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(canonical));
  return toHex(await crypto.subtle.digest("SHA-256", bytes));
}
