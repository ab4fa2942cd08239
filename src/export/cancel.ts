import { and, eq, inArray, sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { exportCarry, exportJobs, type ExportJob } from "../db/control_schema";
import type { ExportMessage } from "./message";
import { abortUploads } from "./r2_writer";
import { deleteStoredObjects } from "./stored_files";

export type CancelOutcome = { kind: "canceled"; job: ExportJob } | { kind: "finished"; job: ExportJob } | { kind: "missing" };

/**
 * Stops a queued or running export of the account. One conditional update ends the job ("canceled"), fences
 * any slice at work on it (its next write, at most a few seconds away, finds another version and stops) and
 * moves its drive on (a queued export message is then stale). Then the partial upload is aborted, any finished
 * files of a split export are deleted, and the
 * `segment_export.canceled` notification is queued like any other.
 */
export async function cancelExport(env: Env, db: DrizzleD1Database, accountId: number, jobId: string, now: number): Promise<CancelOutcome> {
  const [job] = await db
    .update(exportJobs)
    .set({
      state: "canceled",
      version: sql`${exportJobs.version} + 1`,
      drive: sql`${exportJobs.drive} + 1`,
      leaseExpiresAt: 0,
      completedAt: new Date(now).toISOString(),
      carryBytes: 0,
      notifyDueAt: now,
    })
    .where(
      and(eq(exportJobs.id, jobId), eq(exportJobs.accountId, accountId), eq(exportJobs.kind, "export"), inArray(exportJobs.state, ["queued", "running"])),
    )
    .returning();
  if (!job) {
    const current = await db
      .select()
      .from(exportJobs)
      .where(and(eq(exportJobs.id, jobId), eq(exportJobs.accountId, accountId), eq(exportJobs.kind, "export")))
      .get();
    return current ? { kind: "finished", job: current } : { kind: "missing" };
  }
  await db.delete(exportCarry).where(eq(exportCarry.jobId, jobId));
  await abortUploads(env.EXPORTS, job.objectKey, [job.uploadId, job.abandonedUploadId]);
  // A split export may have finished some of its files: a canceled export keeps none.
  await deleteStoredObjects(env.EXPORTS, db, job);
  await env.EXPORT_QUEUE.send({ kind: "notify", jobId, drive: job.notifyDrive } satisfies ExportMessage);
  return { kind: "canceled", job };
}
