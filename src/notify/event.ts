import type { ExportJob } from "../db/schema";
import type { ExportSpec } from "../export/spec";

/** What a notification says about a finished export; the webhook body and the email are made from it. */
export type ExportEvent =
  | {
      type: "segment_export.completed";
      timestamp: string;
      data: {
        jobid: string;
        status: "SUCCESS";
        count: number;
        url: string;
        expires_at: string;
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

export function exportEvent(job: ExportJob, link: { url: string; expiresAt: Date } | null): ExportEvent {
  const spec = job.spec as ExportSpec;
  const common = { jobid: job.id, format: job.format, segmentid: spec.segmentIds.map(String) };
  const timestamp = job.completedAt ?? new Date().toISOString();
  if (job.state === "complete" && link) {
    return {
      type: "segment_export.completed",
      timestamp,
      data: {
        ...common,
        status: "SUCCESS",
        count: job.processedCount,
        url: link.url,
        expires_at: link.expiresAt.toISOString(),
      },
    };
  }
  return {
    type: "segment_export.failed",
    timestamp,
    data: {
      ...common,
      status: "ERROR",
      errormessage: job.state === "complete" ? "The download link has expired" : (job.errorMessage ?? "The export failed"),
    },
  };
}
