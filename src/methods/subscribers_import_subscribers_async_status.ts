import { and, eq } from "drizzle-orm";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { exportJobs, type ExportJob } from "../db/control_schema";
import type { Config } from "../config";
import { freshRejectsLink, retentionEnd } from "../export/link";
import type { ImportSpec } from "../import/spec";
import { jobIdDetails, notificationOf } from "./segments_get_segment_subscribers_async_status";
import { uploadLinkOf } from "./subscribers_import_subscribers_async";

/**
 * Subscribers / ImportSubscribersAsyncStatus {jobid}: where an import stands: rows read, added, updated and
 * rejected so far; its upload link while it waits for its file; a fresh link to its rejects file once done.
 */
export const importSubscribersAsyncStatus = defineMethod({
  requesttype: "Subscribers",
  requestmethod: "ImportSubscribersAsyncStatus",
  summary: "Where an import stands (rows read, added, updated, rejected), with its rejects file's link once done.",
  details: jobIdDetails,
  example: { jobid: "0b7e2c52-5f0c-4a8e-9d9b-1c6f3f1d2a44" },
  async handle({ db, account, config }, { jobid }) {
    const job = await db
      .select()
      .from(exportJobs)
      .where(and(eq(exportJobs.id, jobid), eq(exportJobs.accountId, account.id), eq(exportJobs.kind, "import")))
      .get();
    if (!job) throw new ApiError("NOT_FOUND", `details.jobid: no import job ${quote(jobid)} in this account`);
    return importStatus(job, config);
  },
});

export async function importStatus(job: ExportJob, config: Config) {
  const spec = job.spec as ImportSpec;
  const rejects = job.rowsRejected > 0 ? await freshRejectsLink(job, config) : null;
  const done = job.state === "complete";
  return {
    jobid: job.id,
    status: job.state,
    listid: String(spec.listId),
    format: spec.format,
    compression: spec.compression,
    update_if_exists: spec.updateIfExists,
    rows: job.processedCount,
    added: job.rowsAdded,
    updated: job.rowsUpdated,
    rejected: job.rowsRejected,
    // By bytes read; a compressed file's uncompressed size is not known until the end.
    percent: done ? 100 : job.sourceBytes && spec.compression === "none" ? Math.min(99, Math.floor((100 * job.cursor) / job.sourceBytes)) : null,
    bytes: job.sourceBytes,
    createdate: job.createdAt,
    completedate: job.completedAt,
    ...(await uploadLinkOf(job, config)),
    rejects: rejects ? { url: rejects.url, count: job.rowsRejected, bytes: job.bytesWritten, expires_at: rejects.expiresAt.toISOString() } : null,
    retained_until: done || job.state === "expired" ? new Date(retentionEnd(job, config)).toISOString() : null,
    ...(job.state === "failed" ? { errormessage: job.errorMessage } : {}),
    notification: notificationOf(job),
  };
}
