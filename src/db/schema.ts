import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const SUBSCRIBER_STATUSES = ["active", "inactive", "bounced", "unsubscribed"] as const;
export type SubscriberStatus = (typeof SUBSCRIBER_STATUSES)[number];

export const CUSTOM_FIELD_TYPES = ["text", "number", "date"] as const;
export type CustomFieldType = (typeof CUSTOM_FIELD_TYPES)[number];

export const EXPORT_FORMATS = ["json", "csv"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const JOB_STATES = ["queued", "running", "complete", "failed"] as const;
export type JobState = (typeof JOB_STATES)[number];

export const NOTIFY_TYPES = ["email", "webhook"] as const;
export type NotifyType = (typeof NOTIFY_TYPES)[number];

export const NOTIFY_STATES = ["pending", "delivered", "failed"] as const;
export type NotifyState = (typeof NOTIFY_STATES)[number];

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

export const lists = sqliteTable(
  "lists",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    name: text("name").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("lists_account_idx").on(t.accountId)],
);

export const subscribers = sqliteTable(
  "subscribers",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    listId: integer("list_id")
      .notNull()
      .references(() => lists.id),
    email: text("email").notNull(),
    status: text("status", { enum: SUBSCRIBER_STATUSES }).notNull(),
    /** ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ": sorts and compares as text. */
    subscribeDate: text("subscribe_date").notNull(),
    /**
     * Custom field values keyed by custom field id: {"3":"Acme","7":42}.
     * Kept on the row so an export reads every value in the same scan, one row per subscriber.
     */
    customFields: text("custom_fields", { mode: "json" })
      .$type<Record<string, string | number | null>>()
      .notNull()
      .default(sql`'{}'`),
  },
  (t) => [
    index("subscribers_account_idx").on(t.accountId),
    uniqueIndex("subscribers_list_email_idx").on(t.listId, t.email),
  ],
);

export const customFields = sqliteTable(
  "custom_fields",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    name: text("name").notNull(),
    type: text("type", { enum: CUSTOM_FIELD_TYPES }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("custom_fields_account_name_idx").on(t.accountId, t.name)],
);

export const tags = sqliteTable(
  "tags",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    name: text("name").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("tags_account_name_idx").on(t.accountId, t.name)],
);

export const subscriberTags = sqliteTable(
  "subscriber_tags",
  {
    subscriberId: integer("subscriber_id")
      .notNull()
      .references(() => subscribers.id, { onDelete: "cascade" }),
    tagId: integer("tag_id")
      .notNull()
      .references(() => tags.id, { onDelete: "cascade" }),
  },
  (t) => [
    primaryKey({ columns: [t.subscriberId, t.tagId] }),
    index("subscriber_tags_tag_idx").on(t.tagId, t.subscriberId),
  ],
);

export const segments = sqliteTable(
  "segments",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
    name: text("name").notNull(),
    /** The saved search: a rule tree, see src/segments/rules.ts. */
    rules: text("rules", { mode: "json" }).notNull(),
    createdAt: createdAt(),
    /** How many contacts the segment held when last counted (null: never counted, or the rules cannot run). */
    contactsCount: integer("contacts_count"),
    /** When contacts_count was computed, ms since the epoch (0: never). */
    countedAt: integer("counted_at").notNull().default(0),
    /** Why the rules could not be counted, when they cannot. */
    countError: text("count_error"),
  },
  (t) => [index("segments_account_idx").on(t.accountId), index("segments_counted_at_idx").on(t.countedAt)],
);

export const exportJobs = sqliteTable(
  "export_jobs",
  {
    id: text("id").primaryKey(),
    accountId: integer("account_id")
      .notNull()
      .references(() => accounts.id),
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
  },
  (t) => [
    index("export_jobs_account_idx").on(t.accountId, t.createdAt),
    index("export_jobs_account_state_idx").on(t.accountId, t.state, t.requestHash),
    index("export_jobs_sweep_idx").on(t.state, t.dueAt),
    index("export_jobs_notify_sweep_idx").on(t.notifyState, t.notifyDueAt),
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

export type Account = typeof accounts.$inferSelect;
export type ExportJob = typeof exportJobs.$inferSelect;
export type Segment = typeof segments.$inferSelect;
