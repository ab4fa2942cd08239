import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { exportJobs } from "../db/control_schema";
import { downloadLinkFor } from "../export/link";
import type { ExportSpec } from "../export/spec";

export const MAX_JOB_ID_LENGTH = 100;

/** Segments / GetSegmentSubscribersAsyncStatus: where an export stands, and its link once complete. */
export const getSegmentSubscribersAsyncStatus = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegmentSubscribersAsyncStatus",
  details: z.object({
    // Job ids are UUIDs (36 characters); 100 leaves room and keeps the echo in "no export job …" short.
    jobid: z
      .string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
      .trim()
      .min(1, "must not be empty")
      .max(MAX_JOB_ID_LENGTH, tooLong(MAX_JOB_ID_LENGTH)),
  }),
  async handle({ db, account, config }, { jobid }) {
    const job = await db
      .select()
      .from(exportJobs)
      .where(and(eq(exportJobs.id, jobid), eq(exportJobs.accountId, account.id)))
      .get();
    if (!job) throw new ApiError("NOT_FOUND", `details.jobid: no export job ${quote(jobid)} in this account`);
    const spec = job.spec as ExportSpec;
    const link = await downloadLinkFor(job, config);
    return {
      jobid: job.id,
      status: job.state,
      count: job.processedCount,
      total: job.totalCount,
      format: job.format,
      segmentid: spec.segmentIds.map(String),
      createdate: job.createdAt,
      completedate: job.completedAt,
      bytes: job.state === "complete" ? job.bytesWritten : null,
      url: link?.url ?? null,
      expires_at: link ? link.expiresAt.toISOString() : job.linkExpiresAt,
      ...(job.state === "failed" ? { errormessage: job.errorMessage } : {}),
      notification: {
        type: job.notifyType,
        status: job.notifyState,
        attempts: job.notifyAttempts,
        ...(job.notifyError ? { lasterror: job.notifyError } : {}),
      },
    };
  },
});
