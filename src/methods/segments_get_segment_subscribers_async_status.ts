import { and, eq } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { exportJobs, type ExportJob } from "../db/control_schema";
import type { Config } from "../config";
import { freshDownloadLinks, retentionEnd } from "../export/link";
import { storedFilesOfJobs, type StoredFile } from "../export/stored_files";
import type { ExportSpec } from "../export/spec";

export const MAX_JOB_ID_LENGTH = 100;

/** `{jobid}`: the details of the calls about one job. */
export const jobIdDetails = z.object({
  // Job ids are UUIDs (36 characters); 100 leaves room and keeps the echo in "no export job …" short.
  jobid: z
    .string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
    .trim()
    .min(1, "must not be empty")
    .max(MAX_JOB_ID_LENGTH, tooLong(MAX_JOB_ID_LENGTH)),
});

/** Segments / GetSegmentSubscribersAsyncStatus: where an export stands, and its link once complete. */
export const getSegmentSubscribersAsyncStatus = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegmentSubscribersAsyncStatus",
  summary: "Where an export stands (count, total, percent, ETA), with a fresh download link once it is complete.",
  details: jobIdDetails,
  example: { jobid: "6f1c5e0e-2b8e-4a55-9d43-3f1d7c0e9a10" },
  async handle({ db, account, config }, { jobid }) {
    const job = await db
      .select()
      .from(exportJobs)
      .where(and(eq(exportJobs.id, jobid), eq(exportJobs.accountId, account.id), eq(exportJobs.kind, "export")))
      .get();
    if (!job) throw new ApiError("NOT_FOUND", `details.jobid: no export job ${quote(jobid)} in this account`);
    const [status] = await jobStatuses(db, [job], config);
    return status!;
  },
});

/** What the status call says of jobs, and the job list of each: with their files' links once complete. */
export async function jobStatuses(db: DrizzleD1Database, jobs: readonly ExportJob[], config: Config) {
  const files = await storedFilesOfJobs(
    db,
    jobs.filter((job) => job.state === "complete"),
  );
  return Promise.all(jobs.map((job) => jobStatus(job, files.get(job.id) ?? [], config)));
}

async function jobStatus(job: ExportJob, files: readonly StoredFile[], config: Config) {
  const spec = job.spec as ExportSpec;
  const links = await freshDownloadLinks(job, files, config);
  return {
    jobid: job.id,
    status: job.state,
    count: job.processedCount,
    total: job.totalCount,
    ...progress(job, Date.now()),
    format: job.format,
    compression: spec.compression ?? "none",
    segmentid: spec.segmentIds.map(String),
    createdate: job.createdAt,
    completedate: job.completedAt,
    bytes: job.state === "complete" ? job.bytesWritten : null,
    ...(spec.maxFileBytes !== undefined ? { max_file_size: spec.maxFileBytes } : {}),
    ...(spec.maxRowsPerFile !== undefined ? { max_rows_per_file: spec.maxRowsPerFile } : {}),
    // The one file's link; a split export with several files has one per file, in `files`.
    url: links?.files.length === 1 ? links.files[0]!.url : null,
    files: links?.files ?? [],
    // The links' expiry; the files' own is retained_until (then the job is "expired" and has no links).
    expires_at: links ? links.expiresAt.toISOString() : null,
    retained_until: job.state === "complete" || job.state === "expired" ? new Date(retentionEnd(job, config)).toISOString() : null,
    ...(job.state === "failed" ? { errormessage: job.errorMessage } : {}),
    notification: notificationOf(job),
  };
}

/** Where a job's notification stands, as the status calls say it. */
export const notificationOf = (job: Pick<ExportJob, "notifyType" | "notifyState" | "notifyAttempts" | "notifyError">) => ({
  type: job.notifyType,
  status: job.notifyState,
  attempts: job.notifyAttempts,
  ...(job.notifyError ? { lasterror: job.notifyError } : {}),
});

/**
 * How far an export is: `percent` of the total counted at its start (99 at most until it completes, since rows
 * added meanwhile are exported too), and `eta_seconds`, the time left at the pace so far (null until the
 * first rows are written, and once the export has stopped).
 */
export function progress(job: Pick<ExportJob, "state" | "processedCount" | "totalCount" | "startedAt">, now: number) {
  if (job.state === "complete") return { percent: 100, eta_seconds: 0 };
  if (job.state === "queued" || job.totalCount === null) return { percent: 0, eta_seconds: null };
  const percent = job.totalCount === 0 ? 0 : Math.min(99, Math.floor((100 * job.processedCount) / job.totalCount));
  if (job.state !== "running" || job.processedCount === 0 || !job.startedAt) return { percent, eta_seconds: null };
  const elapsed = Math.max(0, now - Date.parse(job.startedAt)) / 1000;
  const left = Math.max(0, job.totalCount - job.processedCount);
  return { percent, eta_seconds: Math.ceil((elapsed * left) / job.processedCount) };
}
