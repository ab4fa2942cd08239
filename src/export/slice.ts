import { and, eq } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { Config } from "../config";
import { exportJobs, type ExportJob } from "../db/control_schema";
import { DomainError } from "../errors";
import { openShard, readSession } from "../shards/directory";
import {
  assertLeaseHeld,
  claimJob,
  completeJob,
  forgetRecordedFiles,
  LeaseLostError,
  loadCarry,
  recordFile,
  PROGRESS_INTERVAL_MS,
  releaseLease,
  reportProgress,
  saveCheckpoint,
  yieldToEventLoop,
} from "./checkpoint";
import { importFromCheckpoint } from "../import/slice";
import { encoderFor } from "./encode";
import { contentType, exportFileName, exportObjectKey, fileKindOf, fileNumber } from "./files";
import { OutputFile } from "./output_file";
import { checkExpectedFiles, checkFileCount, fileLimits, overflows } from "./split";
import { deleteStoredObjects } from "./stored_files";
import { linkExpiry } from "./link";
import { countChunkQuery, loadCustomFieldTypes, matchPredicate, pageQuery } from "./query";
import { abortUploads, R2PartWriter, type WriterState } from "./r2_writer";
import type { ExportSpec } from "./spec";

/**
 * Points where tests make a slice die, to prove that the job still completes with the right file.
 * "mid-part" is after a page was written into a part that is not yet full (and so not yet uploaded).
 * "after-batch" (imports) is after a batch of rows was written to D1, before anything else records it.
 */
export type FaultPoint =
  | "after-read"
  | "after-batch"
  | "mid-part"
  | "after-part-upload"
  | "before-checkpoint"
  | "before-complete"
  | "after-complete"
  | "before-notify";

export interface SliceDeps {
  env: Env;
  config: Config;
  /** The control database (jobs, checkpoints). The contacts are read from the job's shard. */
  db: DrizzleD1Database;
  now: () => number;
  /** Test hook: throwing here simulates the slice dying at that point. */
  fault?: (point: FaultPoint) => void | Promise<void>;
}

export type SliceOutcome =
  /** Checkpointed; the continuation message must carry `drive`. */
  | { kind: "continue"; job: ExportJob; drive: number }
  | { kind: "complete"; job: ExportJob }
  | { kind: "finished"; job: ExportJob }
  | { kind: "busy"; retryInMs: number }
  /** The message's drive is not the job's: a duplicate or a late message, whose work another message does. */
  | { kind: "stale" }
  | { kind: "missing" };

/** Records encoded between two turns of the event loop, so that a slice never holds it for long. */
const YIELD_EVERY_RECORDS = 500;

/** Matching rows counted per statement when an export's total is counted (see countTotal). */
const COUNT_CHUNK_ROWS = 20_000;

/**
 * A slice may overrun its budget by its drain to the end of a part (at most half this margin, below), then one
 * page, a checkpoint and the last upload; the lease covers that.
 */
const LEASE_MARGIN_MS = 120_000;

/**
 * A slice out of time goes on to the end of the part it is filling, for at most half its budget more (and at
 * most half the lease's margin), so that its checkpoint carries the tail of one record rather than up to a whole
 * part. The carry travels through D1 as base64 text, and up to 8 MiB of it at every slice boundary, copied in
 * the exporter, the D1 client and the database, is what made a sliced export's memory grow: a 1M export in
 * 3-second slices peaked at 549–611 MiB with it, 442 MiB without (bench/README.md). The drain's rows are work
 * the next slice need not do, so the export takes no longer.
 */
const drainAllowanceMs = (budgetMs: number) => Math.min(budgetMs / 2, LEASE_MARGIN_MS / 2);

/**
 * Runs one slice of an export: resumes from the job's checkpoint, pages through D1 by subscriber id, and
 * streams the file into R2 until the data ends (then completes the file) or the time budget runs out
 * (then checkpoints, and the caller enqueues a continuation).
 */
export async function runExportSlice(deps: SliceDeps, jobId: string, drive: number): Promise<SliceOutcome> {
  const started = deps.now();
  const leaseMs = deps.config.EXPORT_SLICE_BUDGET_MS + LEASE_MARGIN_MS;
  const claim = await claimJob(deps.db, jobId, drive, started, leaseMs);
  if (!claim.claimed) {
    if (claim.reason === "finished") return { kind: "finished", job: claim.job };
    if (claim.reason === "leased") return { kind: "busy", retryInMs: claim.retryInMs };
    if (claim.reason === "stale") return { kind: "stale" };
    return { kind: "missing" };
  }
  const lease = { version: claim.job.version };
  try {
    if (claim.job.kind === "import") return await importFromCheckpoint(deps, claim.job, lease, started, leaseMs);
    return await exportFromCheckpoint(deps, claim.job, lease, started, leaseMs);
  } catch (error) {
    // Give the lease back so the retry need not wait for it to expire. (A killed isolate cannot; its lease
    // simply runs out.)
    if (!(error instanceof LeaseLostError)) await releaseLease(deps.db, jobId, lease.version).catch(() => {});
    throw error;
  }
}

async function exportFromCheckpoint(
  deps: SliceDeps,
  job: ExportJob,
  lease: { version: number },
  started: number,
  leaseMs: number,
): Promise<SliceOutcome> {
  const { env, config, db } = deps;
  const fault = deps.fault ?? (() => {});
  const spec = job.spec as ExportSpec;
  const kind = fileKindOf(spec);
  const encoder = encoderFor(spec);
  const limits = fileLimits(spec, encoder);
  const keyOf = (fileIndex: number) => exportObjectKey(job.accountId, job.id, kind, fileNumber(spec, fileIndex));

  const openFile = (fileIndex: number, key: string, restored: WriterState & { rows: number; textBytes: number }) =>
    new OutputFile(
      fileIndex,
      key,
      new R2PartWriter(
        env.EXPORTS,
        key,
        {
          partSize: config.EXPORT_PART_SIZE,
          httpMetadata: {
            contentType: contentType(kind),
            contentDisposition: `attachment; filename="${exportFileName(job.id, kind, fileNumber(spec, fileIndex))}"`,
          },
          customMetadata: { jobId: job.id },
          onPartUploaded: () => fault("after-part-upload"),
        },
        restored,
      ),
      spec.compression === "gzip",
      restored,
    );
  const emptyFile = { uploadId: null, parts: [], carry: new Uint8Array(0), rows: 0, textBytes: 0 };

  let cursor = job.cursor;
  // From the checkpoint, not processed_count, which progress reports move past it.
  let count = job.cursorCount;
  // Bytes of the files before the current writer's (which counts its own).
  let bytesBefore = job.bytesWritten;
  let file = openFile(job.fileIndex, job.objectKey, {
    uploadId: job.uploadId,
    parts: job.parts,
    carry: job.finalizing ? new Uint8Array(0) : await loadCarry(db, job),
    rows: job.fileRows,
    textBytes: job.fileTextBytes,
  });
  const bytes = () => bytesBefore + file.writer.accepted;

  /** Stores the current file, whose every part is uploaded. A slice that died after R2 stored it left it there. */
  const storeFile = async (finalizing: boolean): Promise<number> => {
    await fault("before-complete");
    const stored = finalizing ? await env.EXPORTS.head(file.key) : null;
    let size = stored?.size;
    if (size === undefined) {
      await assertLeaseHeld(db, job.id, lease.version);
      size = await file.writer.complete();
    }
    await fault("after-complete");
    return size;
  };

  /** Ends the current file: its tail, its last part, a checkpoint that every part is uploaded. */
  const endFile = async () => {
    await file.writeHead(encoder.head());
    await file.sink.writeText(encoder.tail(file.rows));
    await file.endMember();
    const state = await file.writer.sendLastPart();
    if (state.uploadId) {
      // Every part is in R2 now; record them so that a slice dying before complete() can finish the upload.
      await fault("before-checkpoint");
      lease.version = await saveCheckpoint(
        env.DB,
        job.id,
        lease.version,
        { cursor, processedCount: count, bytesWritten: bytes(), ...state, finalizing: true, fileRows: file.rows, fileTextBytes: file.textBytes },
        { kind: "keep", leaseUntil: deps.now() + leaseMs },
      );
    }
  };

  /** A split export's file is stored and recorded, and the next one (empty) is begun. */
  const storeAndRecordFile = async (finalizing: boolean) => {
    const size = await storeFile(finalizing);
    const next = file.index + 1;
    lease.version = await recordFile(
      env.DB,
      job.id,
      lease.version,
      { fileIndex: file.index, objectKey: file.key, count: file.rows, bytes: size },
      { cursor, processedCount: count, bytesWritten: bytes(), nextObjectKey: keyOf(next), leaseUntil: deps.now() + leaseMs },
    );
    bytesBefore = bytes();
    file = openFile(next, keyOf(next), emptyFile);
  };

  const completeExport = async () => {
    const completedAt = new Date(deps.now());
    const retainedUntil = new Date(completedAt.getTime() + config.EXPORT_RETENTION_DAYS * 86_400_000);
    const done = await completeJob(db, job.id, lease.version, {
      processedCount: count,
      bytesWritten: bytes(),
      completedAt,
      linkExpiresAt: linkExpiry(completedAt.getTime(), retainedUntil.getTime(), config),
      retainedUntil,
    });
    return { kind: "complete", job: done } as const;
  };

  if (job.finalizing) {
    if (!limits) {
      await storeFile(true);
      return completeExport();
    }
    // A split export's file was finished when the slice died; whether more rows follow, reading on tells.
    await storeAndRecordFile(true);
  }

  if (job.abandonedUploadId) await abortAbandonedUpload(deps, job, lease);
  if (limits && job.cursorCount === 0 && file.index > 1) {
    // The export restarted from its first row (its account moved): the files it had written go.
    await deleteStoredObjects(env.EXPORTS, db, { id: job.id, objectKey: file.key });
    lease.version = await forgetRecordedFiles(env.DB, job.id, lease.version, keyOf(1));
    file = openFile(1, keyOf(1), emptyFile);
  }

  // The claim set job.shard from the directory (and restarted the export if the account had moved).
  if (!job.shard) throw new DomainError("SHARD_UNAVAILABLE", `account ${job.accountId} has no entry in the shard directory`);
  const contacts = readSession(openShard(env, job.shard));
  const fieldTypes = await loadCustomFieldTypes(contacts, job.accountId);
  const query = pageQuery(spec, job.accountId, fieldTypes);
  // The total, for the status call's percent and ETA: counted once, with the export's own predicate.
  if (job.totalCount === null) checkExpectedFiles(await countTotal(deps, job, lease, contacts, fieldTypes), spec, config.EXPORT_MAX_FILES);
  const pageSize = config.EXPORT_PAGE_SIZE;
  const readPage = (afterId: number) => contacts.values<[number, string]>(query(afterId, pageSize));

  let pages = 0;
  let lastProgress = started;
  let next = readPage(cursor);
  /** Once out of time: the file and part count it was at, and until when it may go on to the part's end. */
  let drain: { writer: R2PartWriter; parts: number; until: number } | null = null;
  const partEnded = (d: NonNullable<typeof drain>) => file.writer !== d.writer || file.writer.partsStarted > d.parts;
  for (;;) {
    const rows = await next;
    pages++;
    await fault("after-read");
    const endOfData = rows.length < pageSize;
    if (!drain && deps.now() - started >= config.EXPORT_SLICE_BUDGET_MS) {
      drain = { writer: file.writer, parts: file.writer.partsStarted, until: deps.now() + drainAllowanceMs(config.EXPORT_SLICE_BUDGET_MS) };
    }
    // EXPORT_SLICE_MAX_PAGES (tests) ends a slice after exactly that many pages, without a drain.
    const outOfBudget =
      (drain !== null && deps.now() >= drain.until) || (config.EXPORT_SLICE_MAX_PAGES > 0 && pages >= config.EXPORT_SLICE_MAX_PAGES);
    // Ask D1 for the next page now, so it is read while this one is encoded and uploaded.
    if (!endOfData && !outOfBudget) next = readPage(rows[rows.length - 1]![0]);
    // A page begun while draining ends where the part did: the rest of it is the next slice's.
    let partCut = false;
    for (const [id, record] of rows) {
      if (drain && !endOfData && partEnded(drain)) {
        partCut = true;
        break;
      }
      const text = encoder.record(record);
      if (limits && file.rows > 0 && overflows(limits, file.rows, file.textBytes, encoder.separator + text, encoder.tail)) {
        // This record starts the next file.
        checkFileCount(file.index + 1, spec, config.EXPORT_MAX_FILES);
        await endFile();
        await storeAndRecordFile(false);
      }
      if (file.rows === 0) await file.writeHead(encoder.head());
      // Waits only when a part filled up: most records cost no promise and no turn of the event loop.
      const separated = file.rows > 0 && encoder.separator ? file.sink.writeText(encoder.separator) : undefined;
      if (separated) await separated;
      const written = file.sink.writeText(text);
      if (written) await written;
      file.rows++;
      count++;
      cursor = id;
      if (count % YIELD_EVERY_RECORDS === 0) await yieldToEventLoop();
    }
    await fault("mid-part");
    if (endOfData) break;
    if (outOfBudget || partCut) {
      // The page read ahead is not used: the next slice reads from the cursor.
      if (partCut) next.catch(() => {});
      await file.endMember();
      const state = await file.writer.state();
      await fault("before-checkpoint");
      await saveCheckpoint(
        env.DB,
        job.id,
        lease.version,
        { cursor, processedCount: count, bytesWritten: bytes(), ...state, finalizing: false, fileRows: file.rows, fileTextBytes: file.textBytes },
        { kind: "handover", now: deps.now() },
      );
      return { kind: "continue", job, drive: job.drive + 1 };
    }
    if (deps.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
      lastProgress = deps.now();
      await reportProgress(db, job.id, lease.version, count);
    }
    // Give the event loop a turn between pages, so that a slice never holds it for long: other events of this
    // isolate (and, under wrangler dev, the local queue's own bookkeeping) get to run.
    await yieldToEventLoop();
  }

  if (!limits) {
    await endFile();
    await storeFile(false);
    return completeExport();
  }
  // A split export ends with its last file; an empty one still has its one (empty) file. A file begun after
  // the last one was recorded (a slice died between that and completing the job) has no rows, and is not made.
  if (file.rows > 0 || file.index === 1) {
    await endFile();
    await storeAndRecordFile(false);
  }
  return completeExport();
}

/**
 * Aborts the multipart upload of an export that restarted because its account moved to another shard (see
 * claimJob), then forgets it. Best effort: R2 also aborts incomplete uploads after 7 days.
 */
async function abortAbandonedUpload(deps: SliceDeps, job: ExportJob, lease: { version: number }) {
  await abortUploads(deps.env.EXPORTS, job.objectKey, [job.abandonedUploadId]);
  await deps.db
    .update(exportJobs)
    .set({ abandonedUploadId: null })
    .where(and(eq(exportJobs.id, job.id), eq(exportJobs.version, lease.version)));
}

/**
 * Counts the rows the export will hold (as of now: rows added later beyond the cursor are exported too, so
 * the final count may differ a little) and stores it as the job's total, fenced by the lease.
 */
async function countTotal(
  deps: SliceDeps,
  job: ExportJob,
  lease: { version: number },
  contacts: DrizzleD1Database,
  fieldTypes: Awaited<ReturnType<typeof loadCustomFieldTypes>>,
) {
  const spec = job.spec as ExportSpec;
  const predicate = matchPredicate(spec.segments, spec.status, new Date(spec.requestedAt), fieldTypes);
  const total = await countInChunks(contacts, countChunkQuery(job.accountId, predicate), COUNT_CHUNK_ROWS);
  await deps.db
    .update(exportJobs)
    .set({ totalCount: total })
    .where(and(eq(exportJobs.id, job.id), eq(exportJobs.version, lease.version)));
  return total;
}

/**
 * A count in keyset chunks, each a short statement with a turn of the event loop after it: one count(*) over a
 * million rows held the shard (and, locally, the API's thread) for over a second.
 */
export async function countInChunks(
  db: DrizzleD1Database,
  chunk: ReturnType<typeof countChunkQuery>,
  chunkRows: number,
): Promise<number> {
  let total = 0;
  for (let after = 0; ; ) {
    const [[counted, last] = [0, null]] = await db.values<[number, number | null]>(chunk(after, chunkRows));
    total += Number(counted);
    if (Number(counted) < chunkRows || last === null) return total;
    after = Number(last);
    await yieldToEventLoop();
  }
}
