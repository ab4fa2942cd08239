/**
 * The schema of the control database (the `DB` binding): accounts and their credentials, the directory of
 * which data shard holds each account, the id allocator, and export jobs with their checkpoints. The
 * accounts' contacts live in the data shards (./shard_schema.ts). Migrations: migrations/control.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const EXPORT_FORMATS = ["json", "csv", "ndjson"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * "awaiting_upload": an import whose file the client has yet to upload (to its signed upload link).
 * "expired": it was complete, and its file was deleted at the end of its retention.
 */
export const JOB_STATES = ["awaiting_upload", "queued", "running", "complete", "failed", "canceled", "expired"] as const;
export type JobState = (typeof JOB_STATES)[number];
/** The states a job ends in; its notification is due once it is in one. */
export const FINISHED_JOB_STATES = ["complete", "failed", "canceled", "expired"] as const satisfies readonly JobState[];

/**
 * What a background job does: an export (a segment's subscribers into a file) or an import (a file's contacts
 * into a list). Both run through the same queue, leases, checkpoints, sweeper and notifications.
 */
export const JOB_KINDS = ["export", "import"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const NOTIFY_TYPES = ["email", "webhook"] as const;
export type NotifyType = (typeof NOTIFY_TYPES)[number];

export const NOTIFY_STATES = ["pending", "delivered", "failed"] as const;
export type NotifyState = (typeof NOTIFY_STATES)[number];

/** "open": new accounts may be placed here; "reserved": only when named (a large customer's own shard). */
export const SHARD_PLACEMENTS = ["open", "reserved"] as const;
export type ShardPlacement = (typeof SHARD_PLACEMENTS)[number];

/**
 * An account move, step by step (src/shards/move.ts): "copying" (writes open), "reconciling" (writes frozen;
 * the copy is compared with the source, repaired and checksummed), "draining" (the directory points at the
 * target; exports still reading the source finish their slice), "cleaning" (the source rows are deleted),
 * "done". A move that cannot finish before the switch is "rolling_back" (the target's copy is deleted and
 * writes unfrozen), then "failed".
 */
export const MOVE_STATES = ["copying", "reconciling", "draining", "cleaning", "done", "rolling_back", "failed"] as const;
export type MoveState = (typeof MOVE_STATES)[number];

const createdAt = () =>
  text("created_at")
    .notNull()
    .default(sql`(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))`);

export const accounts = sqliteTable("accounts", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  username: text("username").notNull().unique(),
  /** hex SHA-256 of salt || usertoken; tokens are never stored in the clear. */
  tokenSalt: text("token_salt").notNull(),
  tokenHash: text("token_hash").notNull(),
  /** Standard Webhooks signing secret, "whsec_" + base64. */
  webhookSecret: text("webhook_secret").notNull(),
  createdAt: createdAt(),
});

/**
 * The data shards in service. `name` is the D1 binding of the shard in every worker (SHARD_0, SHARD_1, ...);
 * a shard is added here once its database exists, has the shard migrations, and is bound in both workers.
 */
export const shards = sqliteTable("shards", {
  name: text("name").primaryKey(),
  placement: text("placement", { enum: SHARD_PLACEMENTS }).notNull().default("open"),
  createdAt: createdAt(),
});

/** The directory: which shard holds each account's contacts. One row per account. */
export const accountDirectory = sqliteTable(
  "account_directory",
  {
    accountId: integer("account_id")
      .primaryKey()
      .references(() => accounts.id),
    shard: text("shard")
      .notNull()
      .references(() => shards.name),
    /** Writes to the account's contacts are refused while set: a move is switching it to another shard. */
    writesFrozen: integer("writes_frozen", { mode: "boolean" }).notNull().default(false),
    updatedAt: integer("updated_at").notNull().default(0),
  },
  (t) => [index("account_directory_shard_idx").on(t.shard)],
);

/**
 * The last id handed out per data table, across all shards: ids are unique everywhere, so an account's rows
 * keep their ids when it moves to another shard, and never collide with the rows already there.
 */
export const idSequences = sqliteTable("id_sequences", {
  name: text("name").primaryKey(),
  lastId: integer("last_id").notNull().default(0),
});

export const exportJobs = sqliteTable(
  "export_jobs",
  {
    id: text("id").primaryKey(),
    kind: text("kind", { enum: JOB_KINDS }).notNull().default("export"),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    /**
     * The shard the export reads, taken from the directory whenever a slice claims the job. If the account
     * moved since the last slice, the claim restarts the export from the beginning on the new shard, so that
     * a file never mixes rows of two shards.
     */
    shard: text("shard"),
    /** A multipart upload left behind by such a restart, for the next slice to abort. */
    abandonedUploadId: text("abandoned_upload_id"),
    /** What was asked for, frozen at request time (segment ids, rule snapshot, filters, fields, format). */
    spec: text("spec", { mode: "json" }).notNull(),
    format: text("format", { enum: EXPORT_FORMATS }).notNull(),
    notifyType: text("notify_type", { enum: NOTIFY_TYPES }).notNull(),
    notifyTarget: text("notify_target").notNull(),

    state: text("state", { enum: JOB_STATES }).notNull().default("queued"),
    processedCount: integer("processed_count").notNull().default(0),
    totalCount: integer("total_count"),
    bytesWritten: integer("bytes_written").notNull().default(0),
    objectKey: text("object_key").notNull(),
    errorMessage: text("error_message"),

    // Checkpoint: where the next slice resumes.
    cursor: integer("cursor").notNull().default(0),
    /**
     * Rows written up to the cursor, saved with the checkpoint. (processed_count also moves with progress
     * reports during a slice, past the checkpoint; a resumed slice must count from here.)
     */
    cursorCount: integer("cursor_count").notNull().default(0),
    uploadId: text("upload_id"),
    /** [{partNumber, etag}] of the multipart parts already uploaded. */
    parts: text("parts", { mode: "json" }).$type<{ partNumber: number; etag: string }[]>().notNull().default(sql`'[]'`),
    /** Bytes encoded but not yet uploaded (less than a part), stored in export_carry. */
    carryBytes: integer("carry_bytes").notNull().default(0),
    /** Every part is uploaded and recorded; only R2's complete() may be missing. */
    finalizing: integer("finalizing", { mode: "boolean" }).notNull().default(false),
    /**
     * A split export (max_file_size, max_rows_per_file) writes several files, one after the other: this is the
     * number of the one being written (1-based; its key is object_key). Finished ones are in export_files.
     */
    fileIndex: integer("file_index").notNull().default(1),
    /** Rows in the file being written, as of the checkpoint. */
    fileRows: integer("file_rows").notNull().default(0),
    /** Uncompressed bytes of the file being written, as of the checkpoint: what max_file_size limits. */
    fileTextBytes: integer("file_text_bytes").notNull().default(0),
    /**
     * An import's outcome so far, as of the checkpoint: contacts added, updated and rejected (the rejected ones
     * are in its rejects file, the job's object). Its cursor is the byte offset in the uncompressed source
     * after the last row done, and processed_count the rows done.
     */
    rowsAdded: integer("rows_added").notNull().default(0),
    rowsUpdated: integer("rows_updated").notNull().default(0),
    rowsRejected: integer("rows_rejected").notNull().default(0),
    /** An import's source file size in bytes, once uploaded. */
    sourceBytes: integer("source_bytes"),
    /** Bumped by every checkpoint and every lease; a write that names an old version is refused. */
    version: integer("version").notNull().default(0),
    leaseExpiresAt: integer("lease_expires_at").notNull().default(0),
    slices: integer("slices").notNull().default(0),
    /**
     * The token of the one export message allowed to run the next slice. A checkpoint bumps it and sends a
     * message carrying the new value, so stale and duplicate messages find a different drive and are dropped.
     */
    drive: integer("drive").notNull().default(0),
    /** When the message for the current drive is due to arrive, ms since the epoch; the sweeper's clock. */
    dueAt: integer("due_at").notNull().default(0),
    /** How often the sweeper found a slice dead (its lease ran out) and drove the job again. */
    redrives: integer("redrives").notNull().default(0),
    /** Slices that failed with an error since the last checkpoint; EXPORT_MAX_ATTEMPTS of them fail the job. */
    sliceFailures: integer("slice_failures").notNull().default(0),
    /** SHA-256 of the canonical request (account, segments, filters, fields, format, notify target), for dedupe. */
    requestHash: text("request_hash"),

    notifyState: text("notify_state", { enum: NOTIFY_STATES }).notNull().default("pending"),
    notifyAttempts: integer("notify_attempts").notNull().default(0),
    notifyError: text("notify_error"),
    notifiedAt: text("notified_at"),
    /** When the next notification attempt is due, ms since the epoch (0: none scheduled). */
    notifyDueAt: integer("notify_due_at").notNull().default(0),
    /**
     * The token of the one notify message allowed to make the next attempt: scheduling a retry bumps it and
     * sends a message carrying the new value, so there is never more than one live notify message per job.
     */
    notifyDrive: integer("notify_drive").notNull().default(0),

    createdAt: createdAt(),
    startedAt: text("started_at"),
    completedAt: text("completed_at"),
    linkExpiresAt: text("link_expires_at"),
    /** ms since the epoch: the file is kept until then (EXPORT_RETENTION_DAYS after completion), then deleted. */
    retainedUntil: integer("retained_until"),
  },
  (t) => [
    index("export_jobs_account_idx").on(t.accountId, t.createdAt),
    index("export_jobs_account_state_idx").on(t.accountId, t.state, t.requestHash),
    index("export_jobs_sweep_idx").on(t.state, t.dueAt),
    index("export_jobs_notify_sweep_idx").on(t.notifyState, t.notifyDueAt),
    index("export_jobs_retention_idx").on(t.state, t.retainedUntil),
  ],
);

/**
 * Idempotency keys a client sent with GetSegmentSubscribersAsync: within 24 hours the same key returns the
 * same job, and the same key with other details is refused.
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    jobId: text("job_id")
      .notNull()
      .references(() => exportJobs.id, { onDelete: "cascade" }),
    /** ms since the epoch. */
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.key] }), index("idempotency_keys_created_idx").on(t.createdAt)],
);

/** The carried-over bytes of a checkpoint, base64 in chunks that stay under D1's 2 MB value limit. */
export const exportCarry = sqliteTable(
  "export_carry",
  {
    jobId: text("job_id")
      .notNull()
      .references(() => exportJobs.id, { onDelete: "cascade" }),
    seq: integer("seq").notNull(),
    data: text("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.seq] })],
);

/**
 * The finished files of a split export, in order: recorded, fenced by the job's version, once each is stored
 * in R2. Together they hold the records of the unsplit export, in the same order.
 */
export const exportFiles = sqliteTable(
  "export_files",
  {
    jobId: text("job_id")
      .notNull()
      .references(() => exportJobs.id, { onDelete: "cascade" }),
    /** 1-based: the file's number, as in its name (…-part-0001.csv) and its download link. */
    fileIndex: integer("file_index").notNull(),
    objectKey: text("object_key").notNull(),
    /** Records in this file (its own JSON envelope says the same). */
    count: integer("count").notNull(),
    /** The stored object's size. */
    bytes: integer("bytes").notNull(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.fileIndex] })],
);
export type ExportFile = typeof exportFiles.$inferSelect;

/** Where a move resumes: the step of its current state's plan (src/shards/move.ts), and the last key done. */
export interface MoveCursor {
  step: number;
  after: number[] | null;
}

/** Per table: rows and a running SHA-256 (hex) of each side, as the reconcile step compared them. */
export type MoveVerification = Record<string, { sourceRows: number; targetRows: number; sourceHash: string; targetHash: string }>;

export const accountMoves = sqliteTable(
  "account_moves",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    source: text("source").notNull(),
    target: text("target").notNull(),
    state: text("state", { enum: MOVE_STATES }).notNull().default("copying"),
    cursor: text("cursor", { mode: "json" })
      .$type<MoveCursor>()
      .notNull()
      .default(sql`'{"step":0,"after":null}'`),
    verification: text("verification", { mode: "json" }).$type<MoveVerification>().notNull().default(sql`'{}'`),
    /** Rows written to the target so far (copy and repairs), for progress. */
    copiedRows: integer("copied_rows").notNull().default(0),
    /** Source rows deleted so far by the cleaning step. */
    deletedRows: integer("deleted_rows").notNull().default(0),
    // The same lease, drive and sweeper fields as export_jobs: one live message drives a move.
    version: integer("version").notNull().default(0),
    leaseExpiresAt: integer("lease_expires_at").notNull().default(0),
    drive: integer("drive").notNull().default(0),
    /** When the message of the current drive is due, ms since the epoch; 0 for a new move (the sweeper starts it). */
    dueAt: integer("due_at").notNull().default(0),
    slices: integer("slices").notNull().default(0),
    /** Slices that failed in a row; too many before the switch roll the move back. */
    failures: integer("failures").notNull().default(0),
    error: text("error"),
    createdAt: createdAt(),
    /** ms since the epoch. */
    updatedAt: integer("updated_at").notNull().default(0),
    finishedAt: text("finished_at"),
  },
  (t) => [
    // One unfinished move per account at a time.
    uniqueIndex("account_moves_active_idx")
      .on(t.accountId)
      .where(sql`state NOT IN ('done', 'failed')`),
    index("account_moves_sweep_idx").on(t.state, t.dueAt),
  ],
);

export type Account = typeof accounts.$inferSelect;
export type AccountMove = typeof accountMoves.$inferSelect;
export type ExportJob = typeof exportJobs.$inferSelect;
