/**
 * The schema of every data shard: the contacts of the accounts placed on it (lists, subscribers, custom fields,
 * tags, segments). Every shard has the same tables and gets the same migrations (migrations/shard); which
 * shard holds an account is in the control database's directory (./control_schema.ts, src/shards/).
 *
 * Ids are not chosen by SQLite: they come from the control database's allocator (src/shards/ids.ts), so that
 * they are unique across all shards and an account keeps its ids when it moves to another shard. Every insert
 * gives its ids.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const SUBSCRIBER_STATUSES = ["active", "inactive", "bounced", "unsubscribed"] as const;
export type SubscriberStatus = (typeof SUBSCRIBER_STATUSES)[number];

export const CUSTOM_FIELD_TYPES = ["text", "number", "date"] as const;
export type CustomFieldType = (typeof CUSTOM_FIELD_TYPES)[number];

const createdAt = () =>
  text("created_at")
    .notNull()
    .default(sql`(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))`);

/** The tables whose ids the allocator hands out, by table name. */
export const ALLOCATED_TABLES = ["lists", "subscribers", "custom_fields", "tags", "segments", "import_batches"] as const;
export type AllocatedTable = (typeof ALLOCATED_TABLES)[number];

export const lists = sqliteTable(
  "lists",
  {
    id: integer("id").primaryKey(),
    accountId: integer("account_id").notNull(),
    name: text("name").notNull(),
    createdAt: createdAt(),
  },
  // A list's name is unique in its account, so that a retried CreateList cannot make a second one.
  (t) => [uniqueIndex("lists_account_name_idx").on(t.accountId, t.name)],
);

export const subscribers = sqliteTable(
  "subscribers",
  {
    id: integer("id").primaryKey(),
    accountId: integer("account_id").notNull(),
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
    // GetLists counts a list's subscribers by status from this index alone, without reading the rows.
    index("subscribers_list_status_idx").on(t.listId, t.status),
  ],
);

export const customFields = sqliteTable(
  "custom_fields",
  {
    id: integer("id").primaryKey(),
    accountId: integer("account_id").notNull(),
    name: text("name").notNull(),
    type: text("type", { enum: CUSTOM_FIELD_TYPES }).notNull(),
    /** Given to a new subscriber who has no value for the field (a number field's is a number, as text). */
    defaultValue: text("default_value"),
    /** A new subscriber must have a value (or the default). */
    required: integer("required", { mode: "boolean" }).notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("custom_fields_account_name_idx").on(t.accountId, t.name)],
);

export const tags = sqliteTable(
  "tags",
  {
    id: integer("id").primaryKey(),
    accountId: integer("account_id").notNull(),
    name: text("name").notNull(),
    description: text("description"),
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
    id: integer("id").primaryKey(),
    accountId: integer("account_id").notNull(),
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

export type Segment = typeof segments.$inferSelect;

/**
 * The ledger of a bulk import: one row per batch of rows written, in the same D1 transaction as the batch, with
 * each row's outcome. A slice that dies after writing a batch but before its checkpoint (in the control
 * database: no transaction spans both) leaves the batch here; the resumed slice takes the outcomes from the
 * ledger instead of writing the rows again, so every row is counted once and rightly. Deleted when the import
 * finishes. Moves with the account (src/shards/moved_tables.ts).
 */
export const importBatches = sqliteTable(
  "import_batches",
  {
    id: integer("id").primaryKey(),
    accountId: integer("account_id").notNull(),
    jobId: text("job_id").notNull(),
    /** The source row number (1-based, the header not counted) of the batch's first row. */
    firstRow: integer("first_row").notNull(),
    /** [{i, r: added|updated|rejected, id, kind, reason}], or for a batch of new subscribers {added: [[i, id, n]], others: [...]} (src/contacts/write.ts). */
    outcomes: text("outcomes").notNull(),
  },
  (t) => [uniqueIndex("import_batches_job_row_idx").on(t.jobId, t.firstRow), index("import_batches_account_idx").on(t.accountId)],
);
