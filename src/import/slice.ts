/**
 * One slice of a bulk import (Subscribers / ImportSubscribersAsync): resumes at the job's checkpoint (a byte
 * offset in the source, after a whole record), reads records, and writes them into the list in batches (of the
 * rows and bytes the job's spec says), each one D1 transaction that also records its outcomes in the
 * import_batches ledger.
 * Rejected rows go to the rejects file (CSV: row, email, reason), streamed into R2 like an export's file. At
 * the time budget the slice checkpoints (offset, rows, counts, the rejects file's upload) and hands over.
 *
 * A slice may die anywhere. A batch written but not yet checkpointed is found in the ledger by the next slice,
 * which takes its outcomes from there instead of writing it again: every row is counted once, and rightly.
 */
import { describeIssues } from "../api/envelope";
import { loadAccountFields } from "../contacts/fields";
import { parseContact } from "../contacts/input";
import type { TagLookup } from "../contacts/tags";
import { contactInput, forgetLedger, recordedOutcomes, writeContacts, type ContactInput, type ContactResult } from "../contacts/write";
import type { ExportJob } from "../db/control_schema";
import { DomainError } from "../errors";
import {
  assertLeaseHeld,
  completeJob,
  loadCarry,
  PROGRESS_INTERVAL_MS,
  reportProgress,
  saveCheckpoint,
  yieldToEventLoop,
  type ImportCounts,
} from "../export/checkpoint";
import { csvCell } from "../export/encode";
import { linkExpiry } from "../export/link";
import { R2PartWriter } from "../export/r2_writer";
import type { SliceDeps, SliceOutcome } from "../export/slice";
import { shardForWriting } from "../shards/directory";
import { idsInBlocks } from "../shards/ids";
import { csvContact, csvLayout, ndjsonContact, type CsvLayout } from "./contacts";
import { csvCells, MAX_RECORD_BYTES, readRecords, type RawRecord } from "./records";
import { sourceBytes } from "./source";
import { FIRST_BATCHING, rejectsFileName, type ImportSpec } from "./spec";

const REJECTS_HEADER = "row,email,reason\r\n";

/** New subscribers' ids are taken 20,000 at a time, the ledger's 20 at a time. */
const ID_BLOCK = 20_000;
const LEDGER_ID_BLOCK = 20;

const csvLine = (cells: readonly unknown[]) => cells.map(csvCell).join(",") + "\r\n";

/** One source row on its way in: its number, and its contact or why it has none. */
type SourceRow = { row: number; end: number } & ({ contact: ContactInput; email: string } | { rejected: string; email: string | null });

export async function importFromCheckpoint(
  deps: SliceDeps,
  job: ExportJob,
  lease: { version: number },
  started: number,
  leaseMs: number,
): Promise<SliceOutcome> {
  const { env, config, db } = deps;
  const fault = deps.fault ?? (() => {});
  const spec = job.spec as ImportSpec;
  const counts: ImportCounts = { added: job.rowsAdded, updated: job.rowsUpdated, rejected: job.rowsRejected };
  let cursor = job.cursor;
  let rows = job.cursorCount;

  const writer = new R2PartWriter(
    env.EXPORTS,
    job.objectKey,
    {
      partSize: config.EXPORT_PART_SIZE,
      httpMetadata: { contentType: "text/csv; charset=utf-8", contentDisposition: `attachment; filename="${rejectsFileName(job.id)}"` },
      customMetadata: { jobId: job.id },
      onPartUploaded: () => fault("after-part-upload"),
    },
    { uploadId: job.uploadId, parts: job.parts, carry: job.finalizing ? new Uint8Array(0) : await loadCarry(db, job) },
  );
  const bytes = () => job.bytesWritten + writer.accepted;

  const shard = await shardForWriting(env, db, job.accountId);

  const finish = async (finalizing: boolean) => {
    await fault("before-complete");
    // The rejects file exists only if a row was rejected.
    if (counts.rejected > 0 && !(finalizing && (await env.EXPORTS.head(job.objectKey)))) {
      await assertLeaseHeld(db, job.id, lease.version);
      await writer.complete();
    }
    await fault("after-complete");
    const completedAt = new Date(deps.now());
    const retainedUntil = new Date(completedAt.getTime() + config.EXPORT_RETENTION_DAYS * 86_400_000);
    const done = await completeJob(db, job.id, lease.version, {
      processedCount: rows,
      bytesWritten: bytes(),
      completedAt,
      linkExpiresAt: linkExpiry(completedAt.getTime(), retainedUntil.getTime(), config),
      retainedUntil,
      rows: counts,
    });
    // Best effort: the ledger answers only for this import, and an uploaded file is the service's to delete.
    await forgetLedger(shard, job.id).catch(() => {});
    if (spec.source === "upload") await env.EXPORTS.delete(spec.sourceKey).catch(() => {});
    return { kind: "complete", job: done } as const;
  };
  if (job.finalizing) return finish(true);

  const fields = await loadAccountFields(shard.db, job.accountId);
  const csv = spec.format === "csv";
  const sourceSize = job.sourceBytes ?? Number.MAX_SAFE_INTEGER;
  // The source is read from the cursor: a plain file by a ranged get; a gzip one is unpacked from its start and
  // the bytes before the cursor passed over as bytes (never split into records), a turn of the event loop at
  // each chunk. A resumed slice reads a CSV header apart, from the file's start.
  const gzip = spec.compression === "gzip";
  const pastEnd = !gzip && cursor > 0 && cursor >= sourceSize;
  const records = readRecords(pastEnd ? emptyChunks() : await sourceBytes(env.EXPORTS, spec.sourceKey, spec.compression, cursor), cursor, csv);
  let layout: CsvLayout | null = null;
  if (csv) {
    const headerSource =
      cursor === 0
        ? records
        : readRecords(gzip ? await sourceBytes(env.EXPORTS, spec.sourceKey, "gzip", 0) : await headerBytes(env.EXPORTS, spec.sourceKey), 0, true);
    const header = await nextRecord(headerSource);
    // Done with the file's start: let go of its stream.
    if (headerSource !== records) await headerSource.return(undefined);
    if (!header) throw new DomainError("IMPORT_INVALID", "the file is empty: a CSV file needs a header row");
    const cells = header.text === null ? null : csvCells(header.text);
    if (!cells || "problem" in cells) throw new DomainError("IMPORT_INVALID", `the CSV header row ${header.problem ?? (cells as { problem: string }).problem}`);
    layout = csvLayout(cells.cells, fields);
    if (cursor === 0) cursor = header.end;
  }

  const toRow = (record: RawRecord, row: number): SourceRow => {
    const at = `row ${row}`;
    if (record.text === null) return { row, end: record.end, rejected: `${at} ${record.problem}`, email: null };
    let raw: { contact: Record<string, unknown> } | { problem: string };
    if (layout) {
      const cells = csvCells(record.text);
      raw = "problem" in cells ? cells : csvContact(cells.cells, layout);
    } else {
      raw = ndjsonContact(record.text);
    }
    if ("problem" in raw) return { row, end: record.end, rejected: `${at} ${raw.problem}`, email: null };
    const email = typeof raw.contact.email === "string" ? raw.contact.email : null;
    const parsed = parseContact(raw.contact);
    if (!parsed.success) return { row, end: record.end, rejected: describeIssues(parsed.error, at), email };
    const c = parsed.data;
    return {
      row,
      end: record.end,
      email: c.email,
      contact: contactInput(c),
    };
  };

  const reject = async (row: number, email: string | null, reason: string) => {
    if (counts.rejected === 0) await writer.write(new TextEncoder().encode(REJECTS_HEADER));
    counts.rejected++;
    await writer.writeText(csvLine([row, email ?? "", reason]));
  };

  // Kept from batch to batch: blocks of ids (a statement on the control database per block, not per batch) and
  // the tags found so far.
  const subscriberIds = idsInBlocks(env.DB, "subscribers", ID_BLOCK);
  const ledgerIds = idsInBlocks(env.DB, "import_batches", LEDGER_ID_BLOCK);
  const knownTags: TagLookup = { byId: new Map(), byName: new Map() };
  // Only batches after the checkpoint that an earlier slice wrote before it died are in the ledger, and they come
  // first: once a batch is not there, the rest of the slice's are not either. (Were a stray earlier slice still
  // writing them, the ledger's unique key would fail this slice's write, and the next slice would find it.)
  let mayBeRecorded = true;
  let batches = 0;
  let lastProgress = started;
  const batching = spec.batching ?? FIRST_BATCHING;
  let ended = false;
  for (;;) {
    // The next batch: the records after the cursor, up to the batch's rows or bytes.
    const batch: SourceRow[] = [];
    while (batch.length < batching.rows && (batch.length === 0 || batch[batch.length - 1]!.end - cursor < batching.bytes)) {
      const record = await nextRecord(records);
      if (!record) {
        ended = true;
        break;
      }
      if (record.end <= cursor) continue;
      batch.push(toRow(record, rows + batch.length + 1));
    }
    await fault("after-read");
    if (batch.length === 0) break;

    const valid = batch.filter((r): r is Extract<SourceRow, { contact: ContactInput }> => "contact" in r);
    const firstRow = batch[0]!.row;
    const recorded: ContactResult[] | null = valid.length > 0 && mayBeRecorded ? await recordedOutcomes(shard, job.id, firstRow, valid.length) : null;
    // (A batch of rejected rows only has nothing to record, and says nothing of the next.)
    if (valid.length > 0) mayBeRecorded = recorded !== null;
    const outcomes: ContactResult[] =
      valid.length === 0
        ? []
        : (recorded ??
          (await writeContacts(
            env,
            shard,
            job.accountId,
            spec.listId,
            valid.map((r) => r.contact),
            {
              ifExists: spec.updateIfExists ? "update" : "reject",
              ifMissing: "add",
              pathOf: (i) => `row ${valid[i]!.row}`,
              now: spec.requestedAt,
              ledger: { jobId: job.id, firstRow, ids: ledgerIds },
              fields,
              subscriberIds,
              knownTags,
            },
          )));
    await fault("after-batch");
    const outcomeOf = new Map(valid.map((r, i) => [r.row, outcomes[i]!]));
    for (const row of batch) {
      if ("rejected" in row) {
        await reject(row.row, row.email, row.rejected);
        continue;
      }
      const outcome = outcomeOf.get(row.row)!;
      if (outcome.result === "rejected") await reject(row.row, row.email, outcome.reason);
      else counts[outcome.result]++;
    }
    rows += batch.length;
    cursor = batch[batch.length - 1]!.end;
    batches++;
    await fault("mid-part");
    if (ended) break;

    const outOfBudget =
      deps.now() - started >= config.EXPORT_SLICE_BUDGET_MS || (config.EXPORT_SLICE_MAX_PAGES > 0 && batches >= config.EXPORT_SLICE_MAX_PAGES);
    if (outOfBudget) {
      const state = await writer.state();
      await fault("before-checkpoint");
      await saveCheckpoint(
        env.DB,
        job.id,
        lease.version,
        { cursor, processedCount: rows, bytesWritten: bytes(), ...state, finalizing: false, fileRows: rows, fileTextBytes: bytes(), rows: counts },
        { kind: "handover", now: deps.now() },
      );
      return { kind: "continue", job, drive: job.drive + 1 };
    }
    if (deps.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
      lastProgress = deps.now();
      await reportProgress(db, job.id, lease.version, rows);
    }
    await yieldToEventLoop();
  }

  const state = await writer.sendLastPart();
  if (state.uploadId) {
    await fault("before-checkpoint");
    lease.version = await saveCheckpoint(
      env.DB,
      job.id,
      lease.version,
      { cursor, processedCount: rows, bytesWritten: bytes(), ...state, finalizing: true, fileRows: rows, fileTextBytes: bytes(), rows: counts },
      { kind: "keep", leaseUntil: deps.now() + leaseMs },
    );
  }
  return finish(false);
}

async function nextRecord(records: AsyncIterator<RawRecord>): Promise<RawRecord | null> {
  const next = await records.next();
  return next.done ? null : next.value;
}

// eslint-disable-next-line require-yield
async function* emptyChunks(): AsyncGenerator<Uint8Array> {}

/** The first bytes of a plain file, enough for its header row. */
async function headerBytes(bucket: R2Bucket, key: string): Promise<AsyncIterable<Uint8Array>> {
  const object = await bucket.get(key, { range: { offset: 0, length: MAX_RECORD_BYTES + 2 } });
  if (!object) throw new DomainError("IMPORT_INVALID", `the file to import (${key}) is no longer stored`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  return (async function* () {
    yield bytes;
  })();
}
