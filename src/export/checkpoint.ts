import { and, asc, eq, inArray, lte, sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { exportCarry, exportJobs, FINISHED_JOB_STATES, type ExportJob, type JobState } from "../db/control_schema";

export const isFinished = (state: JobState) => (FINISHED_JOB_STATES as readonly JobState[]).includes(state);
import { DomainError } from "../errors";
import type { UploadedPart } from "./r2_writer";

/**
 * The job row is the export's checkpoint and its lock.
 *
 * A slice first takes a lease: it bumps `version` and sets `lease_expires_at`, which only succeeds when no
 * other slice holds a live lease. Every later write names the version it leased, so a slice that lost its
 * lease (it ran too long, or another took over after it seemed dead) can change nothing.
 */

export type Claim =
  | { claimed: true; job: ExportJob }
  | { claimed: false; reason: "finished"; job: ExportJob }
  | { claimed: false; reason: "leased"; retryInMs: number }
  | { claimed: false; reason: "stale" }
  | { claimed: false; reason: "missing" };

/**
 * Takes the lease for the message of `drive`. Only the message carrying the job's current drive may run a
 * slice: a checkpoint moves the drive on, so a duplicate or late message finds it "stale" and is dropped.
 */
export async function claimJob(db: DrizzleD1Database, jobId: string, drive: number, now: number, leaseMs: number): Promise<Claim> {
  // The claim also reads the account's shard from the directory, in the same statement. If the account moved
  // since the last slice, the export starts over on the new shard: a file never mixes rows of two shards.
  // (Every expression of an UPDATE sees the row as it was, so `moved` is decided on the old shard.) A job whose
  // rows are all read (finalizing) has nothing left to read and goes on.
  const directoryShard = sql`(SELECT d.shard FROM account_directory d WHERE d.account_id = ${exportJobs.accountId})`;
  // An import does not start over: it writes wherever the directory says, and its ledger moved with the account.
  const moved = sql`(${exportJobs.shard} IS NOT coalesce(${directoryShard}, ${exportJobs.shard}) AND ${exportJobs.finalizing} = 0 AND ${exportJobs.kind} = 'export')`;
  const restartIfMoved = <T>(column: unknown, initial: T) => sql`CASE WHEN ${moved} THEN ${initial} ELSE ${column} END`;
  const [job] = await db
    .update(exportJobs)
    .set({
      state: "running",
      version: sql`${exportJobs.version} + 1`,
      leaseExpiresAt: now + leaseMs,
      slices: sql`${exportJobs.slices} + 1`,
      startedAt: sql`coalesce(${exportJobs.startedAt}, ${new Date(now).toISOString()})`,
      shard: sql`coalesce(${directoryShard}, ${exportJobs.shard})`,
      cursor: restartIfMoved(exportJobs.cursor, 0),
      cursorCount: restartIfMoved(exportJobs.cursorCount, 0),
      processedCount: restartIfMoved(exportJobs.processedCount, 0),
      bytesWritten: restartIfMoved(exportJobs.bytesWritten, 0),
      carryBytes: restartIfMoved(exportJobs.carryBytes, 0),
      fileRows: restartIfMoved(exportJobs.fileRows, 0),
      fileTextBytes: restartIfMoved(exportJobs.fileTextBytes, 0),
      parts: restartIfMoved(exportJobs.parts, "[]"),
      uploadId: restartIfMoved(exportJobs.uploadId, null),
      abandonedUploadId: sql`CASE WHEN ${moved} THEN coalesce(${exportJobs.uploadId}, ${exportJobs.abandonedUploadId}) ELSE ${exportJobs.abandonedUploadId} END`,
    })
    .where(
      and(
        eq(exportJobs.id, jobId),
        eq(exportJobs.drive, drive),
        inArray(exportJobs.state, ["queued", "running"]),
        lte(exportJobs.leaseExpiresAt, now),
      ),
    )
    .returning();
  if (job) return { claimed: true, job };
  const current = await db.select().from(exportJobs).where(eq(exportJobs.id, jobId)).get();
  if (!current) return { claimed: false, reason: "missing" };
  if (isFinished(current.state)) return { claimed: false, reason: "finished", job: current };
  if (current.drive !== drive) return { claimed: false, reason: "stale" };
  return { claimed: false, reason: "leased", retryInMs: Math.max(0, current.leaseExpiresAt - now) };
}

// Base64 of at most this many bytes is 1.5 MB, under D1's 2 MB limit on one value.
const CARRY_CHUNK_BYTES = 1_125_000;

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.byteLength; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export async function loadCarry(db: DrizzleD1Database, job: ExportJob): Promise<Uint8Array> {
  if (job.carryBytes === 0) return new Uint8Array(0);
  const chunks = await db
    .select({ data: exportCarry.data })
    .from(exportCarry)
    .where(eq(exportCarry.jobId, job.id))
    .orderBy(asc(exportCarry.seq));
  const carry = new Uint8Array(job.carryBytes);
  let offset = 0;
  for (const chunk of chunks) {
    const bytes = fromBase64(chunk.data);
    carry.set(bytes, offset);
    offset += bytes.byteLength;
  }
  if (offset !== job.carryBytes) {
    throw new DomainError("CHECKPOINT_DAMAGED", `checkpoint of job ${job.id} is damaged: carry has ${offset} of ${job.carryBytes} bytes`);
  }
  return carry;
}

export interface Checkpoint {
  cursor: number;
  processedCount: number;
  bytesWritten: number;
  uploadId: string | null;
  parts: UploadedPart[];
  carry: Uint8Array;
  finalizing: boolean;
  /** Rows and uncompressed bytes of the file being written. */
  fileRows: number;
  fileTextBytes: number;
  /** An import's outcome so far (exports have none). */
  rows?: ImportCounts;
}

/** What an import has done with its rows so far. */
export interface ImportCounts {
  added: number;
  updated: number;
  rejected: number;
}

export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`job ${jobId}: another slice took over; this slice's work is discarded`);
    this.name = "LeaseLostError";
  }
}

/**
 * How a checkpoint leaves the job: "handover" releases the lease and moves the drive on, for the continuation
 * message the caller sends next (due now); "keep" holds the lease until the given time (the slice goes on).
 */
export type CheckpointRelease = { kind: "handover"; now: number } | { kind: "keep"; leaseUntil: number };

/**
 * Saves a checkpoint in one D1 transaction, and either hands the job over to a continuation or keeps the lease.
 * Refused (LeaseLostError) unless the job is still at the version this slice leased. Returns the new version.
 */
export async function saveCheckpoint(
  d1: D1Database,
  jobId: string,
  leasedVersion: number,
  checkpoint: Checkpoint,
  release: CheckpointRelease,
): Promise<number> {
  const next = leasedVersion + 1;
  const stillOurs = `(SELECT version FROM export_jobs WHERE id = ?) = ?`;
  const handover = release.kind === "handover";
  const statements = [
    d1
      .prepare(
        `UPDATE export_jobs SET cursor = ?, processed_count = ?, cursor_count = ?, bytes_written = ?, upload_id = ?, parts = ?,
           carry_bytes = ?, finalizing = ?, file_rows = ?, file_text_bytes = ?,
           rows_added = coalesce(?, rows_added), rows_updated = coalesce(?, rows_updated), rows_rejected = coalesce(?, rows_rejected),
           version = ?, lease_expires_at = ?,
           drive = drive + ?, due_at = CASE WHEN ? THEN ? ELSE due_at END, slice_failures = 0
         WHERE id = ? AND version = ?`,
      )
      .bind(
        checkpoint.cursor,
        checkpoint.processedCount,
        checkpoint.processedCount,
        checkpoint.bytesWritten,
        checkpoint.uploadId,
        JSON.stringify(checkpoint.parts),
        checkpoint.carry.byteLength,
        checkpoint.finalizing ? 1 : 0,
        checkpoint.fileRows,
        checkpoint.fileTextBytes,
        checkpoint.rows?.added ?? null,
        checkpoint.rows?.updated ?? null,
        checkpoint.rows?.rejected ?? null,
        next,
        handover ? 0 : release.leaseUntil,
        handover ? 1 : 0,
        handover ? 1 : 0,
        handover ? release.now : 0,
        jobId,
        leasedVersion,
      ),
    d1.prepare(`DELETE FROM export_carry WHERE job_id = ? AND ${stillOurs}`).bind(jobId, jobId, next),
  ];
  for (let seq = 0, offset = 0; offset < checkpoint.carry.byteLength; seq++, offset += CARRY_CHUNK_BYTES) {
    const chunk = toBase64(checkpoint.carry.subarray(offset, offset + CARRY_CHUNK_BYTES));
    statements.push(
      d1
        .prepare(`INSERT INTO export_carry (job_id, seq, data) SELECT ?, ?, ? WHERE ${stillOurs}`)
        .bind(jobId, seq, chunk, jobId, next),
    );
  }
  const [update] = await d1.batch(statements);
  if (update?.meta.changes !== 1) throw new LeaseLostError(jobId);
  return next;
}

/** A finished file of a split export, stored in R2. */
export interface FinishedFile {
  fileIndex: number;
  objectKey: string;
  count: number;
  bytes: number;
}

/**
 * Records a split export's file, once it is stored in R2, and starts the next one (`nextObjectKey`, empty) in
 * the same D1 transaction, which is also a checkpoint at the file's last row; the lease is kept. Refused
 * (LeaseLostError) unless the job is still at the version this slice leased. Returns the new version.
 */
export async function recordFile(
  d1: D1Database,
  jobId: string,
  leasedVersion: number,
  file: FinishedFile,
  next: { cursor: number; processedCount: number; bytesWritten: number; nextObjectKey: string; leaseUntil: number },
): Promise<number> {
  const version = leasedVersion + 1;
  const stillOurs = `(SELECT version FROM export_jobs WHERE id = ?) = ?`;
  const [update] = await d1.batch([
    d1
      .prepare(
        `UPDATE export_jobs SET cursor = ?, processed_count = ?, cursor_count = ?, bytes_written = ?, upload_id = NULL,
           parts = '[]', carry_bytes = 0, finalizing = 0, file_index = ?, file_rows = 0, file_text_bytes = 0,
           object_key = ?, version = ?, lease_expires_at = ?, slice_failures = 0
         WHERE id = ? AND version = ? AND file_index = ?`,
      )
      .bind(
        next.cursor,
        next.processedCount,
        next.processedCount,
        next.bytesWritten,
        file.fileIndex + 1,
        next.nextObjectKey,
        version,
        next.leaseUntil,
        jobId,
        leasedVersion,
        file.fileIndex,
      ),
    d1
      .prepare(`INSERT INTO export_files (job_id, file_index, object_key, count, bytes) SELECT ?, ?, ?, ?, ? WHERE ${stillOurs}`)
      .bind(jobId, file.fileIndex, file.objectKey, file.count, file.bytes, jobId, version),
    d1.prepare(`DELETE FROM export_carry WHERE job_id = ? AND ${stillOurs}`).bind(jobId, jobId, version),
  ]);
  if (update?.meta.changes !== 1) throw new LeaseLostError(jobId);
  return version;
}

/**
 * Forgets the files a split export had recorded before it restarted from its first row (its account moved to
 * another shard: see claimJob), so that it writes them again from number 1. Their objects are deleted first;
 * the caller holds the lease. Returns the new version.
 */
export async function forgetRecordedFiles(d1: D1Database, jobId: string, leasedVersion: number, firstObjectKey: string): Promise<number> {
  const version = leasedVersion + 1;
  const [update] = await d1.batch([
    d1
      .prepare(`UPDATE export_jobs SET file_index = 1, object_key = ?, version = ? WHERE id = ? AND version = ? AND cursor = 0`)
      .bind(firstObjectKey, version, jobId, leasedVersion),
    d1
      .prepare(`DELETE FROM export_files WHERE job_id = ? AND (SELECT version FROM export_jobs WHERE id = ?) = ?`)
      .bind(jobId, jobId, version),
  ]);
  if (update?.meta.changes !== 1) throw new LeaseLostError(jobId);
  return version;
}

/** Marks the job complete, if this slice still holds it. */
export async function completeJob(
  db: DrizzleD1Database,
  jobId: string,
  leasedVersion: number,
  result: { processedCount: number; bytesWritten: number; completedAt: Date; linkExpiresAt: Date; retainedUntil: Date; rows?: ImportCounts },
): Promise<ExportJob> {
  const [job] = await db
    .update(exportJobs)
    .set({
      state: "complete",
      ...(result.rows ? { rowsAdded: result.rows.added, rowsUpdated: result.rows.updated, rowsRejected: result.rows.rejected } : {}),
      processedCount: result.processedCount,
      totalCount: result.processedCount,
      bytesWritten: result.bytesWritten,
      completedAt: result.completedAt.toISOString(),
      linkExpiresAt: result.linkExpiresAt.toISOString(),
      retainedUntil: result.retainedUntil.getTime(),
      version: leasedVersion + 1,
      leaseExpiresAt: 0,
      carryBytes: 0,
      // The notification is due now; the sweeper re-drives it if nobody delivers it.
      notifyDueAt: result.completedAt.getTime(),
    })
    .where(and(eq(exportJobs.id, jobId), eq(exportJobs.version, leasedVersion)))
    .returning();
  if (!job) throw new LeaseLostError(jobId);
  await db.delete(exportCarry).where(eq(exportCarry.jobId, jobId));
  return job;
}

/** Marks an unfinished job failed, unless a slice holds a live lease on it. Returns the job if it changed. */
export async function failJob(
  db: DrizzleD1Database,
  jobId: string,
  errorMessage: string,
  now: number,
): Promise<ExportJob | undefined> {
  const [job] = await db
    .update(exportJobs)
    .set({
      state: "failed",
      errorMessage,
      completedAt: new Date(now).toISOString(),
      version: sql`${exportJobs.version} + 1`,
      leaseExpiresAt: 0,
      carryBytes: 0,
      notifyDueAt: now,
    })
    .where(
      and(eq(exportJobs.id, jobId), inArray(exportJobs.state, ["queued", "running"]), lte(exportJobs.leaseExpiresAt, now)),
    )
    .returning();
  if (job) await db.delete(exportCarry).where(eq(exportCarry.jobId, jobId));
  return job;
}

/**
 * Checks that this slice still holds the job, just before a write that cannot be fenced by D1 (storing the
 * object in R2). A slice that lost its lease must not replace a file another slice finished.
 */
export async function assertLeaseHeld(db: DrizzleD1Database, jobId: string, leasedVersion: number): Promise<void> {
  const job = await db.select({ version: exportJobs.version }).from(exportJobs).where(eq(exportJobs.id, jobId)).get();
  if (job?.version !== leasedVersion) throw new LeaseLostError(jobId);
}

/** A slice's count of rows done is refreshed this often, for the status call. */
export const PROGRESS_INTERVAL_MS = 5_000;

/** Gives the event loop a turn, so that a slice never holds it for long (see the slices). */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Records how many rows a slice has done so far, for the status call. The job was canceled or taken over if
 * this slice no longer holds it: then it stops now (LeaseLostError) rather than at the end of the slice.
 */
export async function reportProgress(db: DrizzleD1Database, jobId: string, leasedVersion: number, processedCount: number): Promise<void> {
  const [still] = await db
    .update(exportJobs)
    .set({ processedCount })
    .where(and(eq(exportJobs.id, jobId), eq(exportJobs.version, leasedVersion)))
    .returning({ id: exportJobs.id });
  if (!still) throw new LeaseLostError(jobId);
}

/** Gives a lease back early, after a slice failed, so a retry need not wait for it to expire. */
export async function releaseLease(db: DrizzleD1Database, jobId: string, leasedVersion: number): Promise<void> {
  await db
    .update(exportJobs)
    .set({ leaseExpiresAt: 0 })
    .where(and(eq(exportJobs.id, jobId), eq(exportJobs.version, leasedVersion)));
}

/**
 * Records when a retried message for the job is due (now + its delay), so that the sweeper does not take a
 * message that is merely waiting out its backoff for a lost one.
 */
export async function markRetryDue(db: DrizzleD1Database, jobId: string, dueAt: number): Promise<void> {
  await db
    .update(exportJobs)
    .set({ dueAt })
    .where(and(eq(exportJobs.id, jobId), inArray(exportJobs.state, ["queued", "running"])));
}

/** Counts a slice that failed with an error; returns the failures since the last checkpoint (0: job finished). */
export async function recordSliceFailure(db: DrizzleD1Database, jobId: string): Promise<number> {
  const [job] = await db
    .update(exportJobs)
    .set({ sliceFailures: sql`${exportJobs.sliceFailures} + 1` })
    .where(and(eq(exportJobs.id, jobId), inArray(exportJobs.state, ["queued", "running"])))
    .returning({ failures: exportJobs.sliceFailures });
  return job?.failures ?? 0;
}
