import type { ExportJob } from "../db/control_schema";
import type { DownloadLinks, FileLink } from "../export/link";
import type { ExportSpec } from "../export/spec";
import type { ImportSpec } from "../import/spec";

/** What a notification says about a finished export; the webhook body and the email are made from it. */
export type ExportEvent =
  | {
      type: "segment_export.completed";
      timestamp: string;
      data: {
        jobid: string;
        status: "SUCCESS";
        count: number;
        /** The file's link, when the export has one file (an unsplit export, or a split one that needed one). */
        url?: string;
        /** Every file, in order, each with its link, records and bytes. */
        files: FileLink[];
        expires_at: string;
        format: ExportJob["format"];
        segmentid: string[];
      };
    }
  | {
      type: "segment_export.canceled";
      timestamp: string;
      data: {
        jobid: string;
        status: "CANCELED";
        /** Rows written before the export was stopped (the partial file is deleted). */
        count: number;
        format: ExportJob["format"];
        segmentid: string[];
      };
    }
  | {
      type: "segment_export.failed";
      timestamp: string;
      data: {
        jobid: string;
        status: "ERROR";
        errormessage: string;
        format: ExportJob["format"];
        segmentid: string[];
      };
    };

/** What a notification says about a finished import. */
export type ImportEvent =
  | {
      type: "subscriber_import.completed";
      timestamp: string;
      data: {
        jobid: string;
        status: "SUCCESS";
        listid: string;
        /** Source rows read (the CSV header not counted). */
        rows: number;
        added: number;
        updated: number;
        rejected: number;
        /** The rejects file (row, email, reason), when a row was rejected. */
        rejects_url?: string;
        expires_at?: string;
      };
    }
  | {
      type: "subscriber_import.failed";
      timestamp: string;
      data: { jobid: string; status: "ERROR"; listid: string; errormessage: string };
    };

export type JobEvent = ExportEvent | ImportEvent;

/** The event for a finished import; `rejects` is the signed link of its rejects file, if it has one. */
export function importEvent(job: ExportJob, rejects: { url: string; expiresAt: Date } | null): ImportEvent {
  const spec = job.spec as ImportSpec;
  const timestamp = job.completedAt ?? new Date().toISOString();
  if (job.state === "complete") {
    return {
      type: "subscriber_import.completed",
      timestamp,
      data: {
        jobid: job.id,
        status: "SUCCESS",
        listid: String(spec.listId),
        rows: job.processedCount,
        added: job.rowsAdded,
        updated: job.rowsUpdated,
        rejected: job.rowsRejected,
        ...(rejects ? { rejects_url: rejects.url, expires_at: rejects.expiresAt.toISOString() } : {}),
      },
    };
  }
  return {
    type: "subscriber_import.failed",
    timestamp,
    data: { jobid: job.id, status: "ERROR", listid: String(spec.listId), errormessage: job.errorMessage ?? "The import failed" },
  };
}

/** The event for a finished export: completed (with its links), canceled, or failed. */
export function exportEvent(job: ExportJob, links: DownloadLinks | null): ExportEvent {
  const spec = job.spec as ExportSpec;
  const common = { jobid: job.id, format: job.format, segmentid: spec.segmentIds.map(String) };
  const timestamp = job.completedAt ?? new Date().toISOString();
  if (job.state === "complete" && links) {
    return {
      type: "segment_export.completed",
      timestamp,
      data: {
        ...common,
        status: "SUCCESS",
        count: job.processedCount,
        ...(links.files.length === 1 ? { url: links.files[0]!.url } : {}),
        files: links.files,
        expires_at: links.expiresAt.toISOString(),
      },
    };
  }
  if (job.state === "canceled") {
    return { type: "segment_export.canceled", timestamp, data: { ...common, status: "CANCELED", count: job.processedCount } };
  }
  return {
    type: "segment_export.failed",
    timestamp,
    data: {
      ...common,
      status: "ERROR",
      errormessage: job.errorMessage ?? "The export failed",
    },
  };
}
