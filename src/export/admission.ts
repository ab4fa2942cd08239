import { lte } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { idempotencyKeys, type ExportFormat, type JobKind, type JobState, type NotifyType } from "../db/control_schema";
import type { ImportSpec } from "../import/spec";
import type { ExportSpec } from "./spec";

/** How long an idempotency key keeps returning its job. After that the same key starts a new export. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 3600 * 1000;

/** A new job (an export, or an import), as the API wants it written. */
export interface NewJob {
  id: string;
  kind: JobKind;
  /** "queued", or "awaiting_upload" for an import whose file is still to come. */
  state: "queued" | "awaiting_upload";
  accountId: number;
  /** The account's shard now; each slice checks it against the directory again (src/export/checkpoint.ts). */
  shard: string;
  spec: ExportSpec | ImportSpec;
  format: ExportFormat;
  notifyType: NotifyType;
  notifyTarget: string;
  objectKey: string;
  /** SHA-256 of the canonical request (src/export/request_hash.ts). */
  requestHash: string;
  idempotencyKey: string | undefined;
  /** Active jobs (waiting for an upload, queued or running; exports and imports) the account may have at once. */
  maxActive: number;
  /** ms since the epoch. */
  now: number;
}

/** What admitting a request came to. Only "created" wrote a new job; the caller must then send its message. */
export type Admission =
  | { kind: "created"; jobId: string }
  /** An earlier job answers this request: the idempotency key's job, or an active job with the same request. */
  | { kind: "existing"; jobId: string; state: JobState; via: "idempotency_key" | "identical_request" }
  /** The key was used within its lifetime for a request with other details. Nothing was written. */
  | { kind: "key_conflict"; jobId: string }
  /** The account has `active` exports queued or running, at or over the cap. Nothing was written. */
  | { kind: "at_capacity"; active: number };

const ACTIVE = `state IN ('awaiting_upload', 'queued', 'running')`;

// Numbered parameters, shared by the statements of the batch below.
// ?1 account  ?2 request hash  ?3 idempotency key (NULL: none)  ?4 key cutoff (ms)  ?5 now (ms)  ?6 cap
// ?7 job id  ?8 spec  ?9 format  ?10 notify type  ?11 notify target  ?12 object key  ?13 shard  ?14 kind  ?15 state
const INSPECT = `
SELECT
  (SELECT count(*) FROM export_jobs WHERE account_id = ?1 AND ${ACTIVE}) AS active,
  dup.id AS dup_id, dup.state AS dup_state,
  k.job_id AS key_job_id, k.request_hash AS key_hash, kj.state AS key_job_state
FROM (SELECT 1)
LEFT JOIN (SELECT id, state FROM export_jobs WHERE account_id = ?1 AND ${ACTIVE} AND request_hash = ?2 ORDER BY rowid LIMIT 1) AS dup
LEFT JOIN idempotency_keys AS k ON k.account_id = ?1 AND k.key = ?3 AND k.created_at > ?4
LEFT JOIN export_jobs AS kj ON kj.id = k.job_id`;

// The one conditional insert that enforces all three rules at once: no live idempotency key, no active job
// for the same request, and fewer active jobs than the cap. D1 runs one statement (and one batch) at a time,
// so no other request can slip in between the check and the write.
const INSERT_JOB = `
INSERT INTO export_jobs (id, account_id, spec, format, notify_type, notify_target, object_key, request_hash, drive, due_at, shard, kind, state)
SELECT ?7, ?1, ?8, ?9, ?10, ?11, ?12, ?2, 0, ?5, ?13, ?14, ?15
WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE account_id = ?1 AND key = ?3 AND created_at > ?4)
  AND NOT EXISTS (SELECT 1 FROM export_jobs WHERE account_id = ?1 AND ${ACTIVE} AND request_hash = ?2)
  AND (SELECT count(*) FROM export_jobs WHERE account_id = ?1 AND ${ACTIVE}) < ?6`;

// A key past its lifetime is replaced by this request.
const DELETE_EXPIRED_KEY = `DELETE FROM idempotency_keys WHERE account_id = ?1 AND key = ?3 AND created_at <= ?4`;

// Binds the key to the job that answers this request: the one just inserted, or the active identical job.
// A live key (same or other details) is left alone; at the cap there is no such job, and nothing is written.
const BIND_KEY = `
INSERT INTO idempotency_keys (account_id, key, request_hash, job_id, created_at)
SELECT ?1, ?3, ?2, id, ?5 FROM export_jobs
WHERE account_id = ?1 AND ${ACTIVE} AND request_hash = ?2
ORDER BY rowid LIMIT 1
ON CONFLICT (account_id, key) DO NOTHING`;

interface Inspection {
  active: number;
  dup_id: string | null;
  dup_state: JobState | null;
  key_job_id: string | null;
  key_hash: string | null;
  key_job_state: JobState | null;
}

/**
 * Decides, in one D1 batch (one transaction, run alone), whether a GetSegmentSubscribersAsync request gets a
 * new job, an existing one, or a refusal, and writes accordingly. The batch first reads the state it decides
 * on, then writes conditionally on exactly that state, so the answer and the writes always agree, even for
 * many identical requests at once.
 *
 * Order of the rules: a live idempotency key wins (its job, whatever its state, or a conflict); then an active
 * job for the same request (dedupe comes before the cap: an identical request at the cap gets its job back);
 * then the cap.
 */
export async function admitJob(d1: D1Database, job: NewJob): Promise<Admission> {
  const key = job.idempotencyKey ?? null;
  const params = [
    job.accountId,
    job.requestHash,
    key,
    job.now - IDEMPOTENCY_KEY_TTL_MS,
    job.now,
    job.maxActive,
    job.id,
    JSON.stringify(job.spec),
    job.format,
    job.notifyType,
    job.notifyTarget,
    job.objectKey,
    job.shard,
    job.kind,
    job.state,
  ];
  // Each statement is bound with parameters 1..N, N its highest ?N (SQLite counts parameters that way).
  const statement = (sql: string) => d1.prepare(sql).bind(...params.slice(0, highestParameter(sql)));
  const statements = [statement(INSPECT), statement(INSERT_JOB)];
  if (key !== null) statements.push(statement(DELETE_EXPIRED_KEY), statement(BIND_KEY));
  const [inspect, insert] = await d1.batch(statements);
  const seen = inspect!.results[0] as Inspection;
  const inserted = insert!.meta.changes === 1;

  if (seen.key_job_id !== null) {
    if (seen.key_hash !== job.requestHash) return { kind: "key_conflict", jobId: seen.key_job_id };
    return { kind: "existing", jobId: seen.key_job_id, state: seen.key_job_state!, via: "idempotency_key" };
  }
  if (seen.dup_id !== null) return { kind: "existing", jobId: seen.dup_id, state: seen.dup_state!, via: "identical_request" };
  if (inserted) return { kind: "created", jobId: job.id };
  if (seen.active >= job.maxActive) return { kind: "at_capacity", active: seen.active };
  throw new Error(`admitJob: the insert of job ${job.id} did not happen, and nothing explains why`);
}

/** SQLite wants exactly as many bound values as the highest ?N in the statement. */
function highestParameter(sql: string): number {
  return Math.max(...[...sql.matchAll(/\?(\d+)/g)].map((m) => Number(m[1])));
}

/**
 * Takes back a job whose queue message could not be sent, with the idempotency key bound to it, so that
 * nothing half-written remains and a retry with the same key starts afresh.
 */
export async function withdrawJob(d1: D1Database, jobId: string): Promise<void> {
  await d1.batch([
    d1.prepare("DELETE FROM idempotency_keys WHERE job_id = ?1").bind(jobId),
    d1.prepare("DELETE FROM export_jobs WHERE id = ?1").bind(jobId),
  ]);
}

/** Deletes idempotency keys past their lifetime; returns how many. Cheap: by the created_at index. */
export async function deleteExpiredIdempotencyKeys(db: DrizzleD1Database, now: number | Date = Date.now()): Promise<number> {
  const cutoff = (typeof now === "number" ? now : now.getTime()) - IDEMPOTENCY_KEY_TTL_MS;
  const result = await db.delete(idempotencyKeys).where(lte(idempotencyKeys.createdAt, cutoff)).run();
  return result.meta.changes;
}
