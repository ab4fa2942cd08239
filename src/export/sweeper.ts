import { and, asc, eq, inArray, lte, sql } from "drizzle-orm";
import { exportJobs, FINISHED_JOB_STATES } from "../db/control_schema";
import type { ConsumerDeps } from "./consumer";
import { abandonJob } from "./consumer";
import { describeForLog } from "../errors";
import { refreshStaleSegmentCounts } from "../segments/counts";
import { openShard, registeredShards } from "../shards/directory";
import { redriveMoves } from "../shards/move";
import { deleteExpiredIdempotencyKeys } from "./admission";
import type { ExportMessage } from "./message";
import { deleteStoredObjects } from "./stored_files";

/** Jobs looked at per run and kind; a backlog larger than this is worked off over the next runs. */
const SWEEP_BATCH = 200;

export type SweepDeps = Pick<ConsumerDeps, "env" | "config" | "db" | "now">;

export interface SweepReport {
  /** Export messages sent again: the message was lost, or the slice holding the job died. */
  redriven: number;
  /** Of those, how many found a slice dead (its lease had run out). */
  deaths: number;
  /** Jobs failed because their slices kept dying. */
  failed: number;
  /** Notifications sent again because their message was lost. */
  notifications: number;
}

/**
 * The sweeper, run every minute by the export worker's Cron Trigger. Queue messages can be lost (an isolate
 * dies between the job insert and the send, a local queue loses its in-flight messages on a crash, a message is
 * dead-lettered): the job rows are the truth, and this re-drives every job that nobody is working on.
 *
 * It is safe next to live slices. A job with a live lease is left alone; every change here is fenced on the
 * version read, so a slice that claims the job meanwhile wins; and a re-sent message carries the job's current
 * drive, so if the original turns up after all, only one of the two runs the slice.
 */
export async function sweepStrandedJobs(deps: SweepDeps): Promise<SweepReport> {
  const report: SweepReport = { redriven: 0, deaths: 0, failed: 0, notifications: 0 };
  await redriveExports(deps, report);
  await redriveNotifications(deps, report);
  return report;
}

/**
 * Unfinished jobs whose message is overdue and whose lease (if any) has run out. A lease that ran out means the
 * slice holding it died (a failing slice gives its lease back): that counts as a redrive, and a job that dies
 * EXPORT_MAX_REDRIVES times ends failed, with a notification, instead of looping forever. An overdue message
 * with no lease taken was lost (or is stuck behind a long queue): sending another costs nothing.
 */
async function redriveExports(deps: SweepDeps, report: SweepReport) {
  const now = deps.now();
  const overdue = await deps.db
    .select({
      id: exportJobs.id,
      drive: exportJobs.drive,
      version: exportJobs.version,
      leaseExpiresAt: exportJobs.leaseExpiresAt,
      redrives: exportJobs.redrives,
    })
    .from(exportJobs)
    .where(
      and(
        inArray(exportJobs.state, ["queued", "running"]),
        lte(exportJobs.dueAt, now - deps.config.SWEEP_LOST_AFTER_SECONDS * 1000),
        lte(exportJobs.leaseExpiresAt, now),
      ),
    )
    .orderBy(asc(exportJobs.dueAt))
    .limit(SWEEP_BATCH);

  for (const job of overdue) {
    const died = job.leaseExpiresAt > 0;
    if (died && job.redrives + 1 > deps.config.EXPORT_MAX_REDRIVES) {
      const failed = await abandonJob(
        deps,
        job.id,
        `The export was interrupted ${job.redrives + 1} times and has been stopped`,
      );
      if (failed) {
        report.failed++;
        await sendMessage(deps, { kind: "notify", jobId: job.id, drive: failed.notifyDrive });
      }
      continue;
    }
    const [taken] = await deps.db
      .update(exportJobs)
      .set({
        dueAt: now,
        leaseExpiresAt: 0,
        redrives: sql`${exportJobs.redrives} + ${died ? 1 : 0}`,
      })
      .where(and(eq(exportJobs.id, job.id), eq(exportJobs.version, job.version), eq(exportJobs.drive, job.drive)))
      .returning({ id: exportJobs.id });
    // A slice claimed or checkpointed the job since it was read: it is alive, leave it be.
    if (!taken) continue;
    console.warn(`sweeper: job ${job.id} ${died ? "had a dead slice" : "had no live message"}; driving it again`);
    await sendMessage(deps, { kind: "export", jobId: job.id, drive: job.drive });
    report.redriven++;
    if (died) report.deaths++;
  }
}

/** Finished jobs whose notification is still pending and overdue: its message was lost. */
async function redriveNotifications(deps: SweepDeps, report: SweepReport) {
  const now = deps.now();
  const overdue = await deps.db
    .select({ id: exportJobs.id, notifyDueAt: exportJobs.notifyDueAt, notifyDrive: exportJobs.notifyDrive })
    .from(exportJobs)
    .where(
      and(
        eq(exportJobs.notifyState, "pending"),
        inArray(exportJobs.state, [...FINISHED_JOB_STATES]),
        lte(exportJobs.notifyDueAt, now - deps.config.SWEEP_LOST_AFTER_SECONDS * 1000),
      ),
    )
    .orderBy(asc(exportJobs.notifyDueAt))
    .limit(SWEEP_BATCH);

  for (const job of overdue) {
    const [taken] = await deps.db
      .update(exportJobs)
      .set({ notifyDueAt: now })
      .where(
        and(eq(exportJobs.id, job.id), eq(exportJobs.notifyState, "pending"), eq(exportJobs.notifyDueAt, job.notifyDueAt)),
      )
      .returning({ id: exportJobs.id });
    if (!taken) continue;
    console.warn(`sweeper: job ${job.id}'s notification had no live message; sending it again`);
    await sendMessage(deps, { kind: "notify", jobId: job.id, drive: job.notifyDrive });
    report.notifications++;
  }
}

function sendMessage(deps: SweepDeps, message: ExportMessage) {
  return deps.env.EXPORT_QUEUE.send(message);
}

/**
 * Refreshes stale segment counts on every registered shard at once (shards are separate databases, so they
 * count in parallel), each within the budget. A shard that cannot be opened (no binding: a deploy error) is
 * reported and logged; the others go on.
 */
async function refreshCountsOnEveryShard(deps: SweepDeps) {
  const shards = await registeredShards(deps.db);
  const results = await Promise.all(
    shards.map(async ({ name }) => {
      try {
        return [
          name,
          await refreshStaleSegmentCounts(openShard(deps.env, name).db, {
            now: deps.now(),
            staleAfterMs: (deps.config.SEGMENT_COUNT_MAX_AGE_SECONDS * 1000) / 2,
            budgetMs: SEGMENT_COUNT_BUDGET_MS,
            clock: deps.now,
          }),
        ] as const;
      } catch (error) {
        console.error(`sweeper: counting segments on shard ${name} failed: ${describeForLog(error)}`);
        return [name, { error: describeForLog(error) }] as const;
      }
    }),
  );
  return Object.fromEntries(results);
}

/**
 * Deletes the files of complete exports past their retention (EXPORT_RETENTION_DAYS) and marks the jobs
 * "expired", which the status call then says. Production also has an R2 lifecycle rule on the prefix; this
 * makes local runs, and a bucket without the rule, keep the same promise. Returns how many files went.
 */
export async function deleteExpiredFiles(deps: SweepDeps): Promise<number> {
  const now = deps.now();
  const retentionMs = deps.config.EXPORT_RETENTION_DAYS * 86_400_000;
  // Jobs completed before retention was recorded keep theirs from their completion.
  const retainedUntil = sql`coalesce(${exportJobs.retainedUntil}, unixepoch(${exportJobs.completedAt}) * 1000 + ${retentionMs})`;
  const due = await deps.db
    .select({ id: exportJobs.id, objectKey: exportJobs.objectKey })
    .from(exportJobs)
    .where(and(eq(exportJobs.state, "complete"), sql`${retainedUntil} <= ${now}`))
    .limit(SWEEP_BATCH);
  for (const job of due) {
    await deleteStoredObjects(deps.env.EXPORTS, deps.db, job);
    await deps.db
      .update(exportJobs)
      .set({ state: "expired" })
      .where(and(eq(exportJobs.id, job.id), eq(exportJobs.state, "complete")));
  }
  return due.length;
}

/**
 * Imports whose file did not come before their upload link expired (IMPORT_UPLOAD_TTL_SECONDS after they were
 * asked for): they end failed, with a notification, and free their place under the account's job cap.
 * Fenced on the state and the upload lock, so an upload under way is left to finish.
 */
export async function expireUploadSlots(deps: SweepDeps): Promise<number> {
  const now = deps.now();
  const expired = await deps.db
    .update(exportJobs)
    .set({
      state: "failed",
      errorMessage: `No file was uploaded within ${deps.config.IMPORT_UPLOAD_TTL_SECONDS} seconds; ask for a new import`,
      completedAt: new Date(now).toISOString(),
      version: sql`${exportJobs.version} + 1`,
      notifyDueAt: now,
    })
    .where(
      and(
        eq(exportJobs.state, "awaiting_upload"),
        lte(exportJobs.dueAt, now - deps.config.IMPORT_UPLOAD_TTL_SECONDS * 1000),
        lte(exportJobs.leaseExpiresAt, now),
      ),
    )
    .returning({ id: exportJobs.id, notifyDrive: exportJobs.notifyDrive });
  for (const job of expired) await sendMessage(deps, { kind: "notify", jobId: job.id, drive: job.notifyDrive });
  return expired.length;
}

/** How long one cron run may spend refreshing segment counts (on each shard). */
const SEGMENT_COUNT_BUDGET_MS = 20_000;

/**
 * Everything the export worker's cron does each minute, stranded jobs first. One part failing does not stop
 * the others. Segment counts are refreshed at half their maximum age, so GetSegments finds them fresh.
 */
export async function sweep(deps: SweepDeps) {
  const parts = {
    stranded: () => sweepStrandedJobs(deps),
    expiredIdempotencyKeys: () => deleteExpiredIdempotencyKeys(deps.db, deps.now()),
    accountMoves: () => redriveMoves(deps),
    expiredFiles: () => deleteExpiredFiles(deps),
    expiredUploads: () => expireUploadSlots(deps),
    segmentCounts: () => refreshCountsOnEveryShard(deps),
  };
  const report: Record<string, unknown> = {};
  for (const [name, run] of Object.entries(parts)) {
    try {
      report[name] = await run();
    } catch (error) {
      console.error(`sweeper: ${name} failed: ${describeForLog(error)}`);
      report[name] = { error: describeForLog(error) };
    }
  }
  return report;
}
