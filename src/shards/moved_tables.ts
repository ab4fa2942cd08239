/**
 * The rows that make up an account on a shard, table by table, as an account move copies, compares and
 * deletes them (src/shards/move.ts). Parents come first (a copy must insert a list before its subscribers);
 * deletes go in the reverse order.
 *
 * Every statement reads or writes one page in keyset order, and carries the rows of a page as ONE bound JSON
 * parameter (json_each): D1 allows 100 bound parameters per statement, which would be 14 subscribers.
 */
export interface MovedTable {
  name: string;
  /** Every column, in the order pages carry them. */
  columns: readonly string[];
  /**
   * The columns compared and checksummed. The cached segment counts are left out: GetSegments and the sweeper
   * may rewrite them at any time, also while writes are frozen, and a recount repairs them anyway.
   */
  compared: readonly string[];
  /** The keyset: the primary key's columns, the order of every page. */
  key: readonly string[];
  /** FROM and WHERE that select one account's rows of this table, as `t`; ?1 is the account id. */
  scope: string;
  /** A unique key besides the primary key, which a stale row of the target may hold under another id. */
  unique?: readonly string[];
  /** Other tables point at its rows without cascading: the extra rows can only go once theirs have. */
  referenced?: boolean;
  /** Its foreign keys: a row is written only once its parent is on the target. */
  parents?: ReadonlyArray<{ column: string; table: string }>;
}

const id = ["id"] as const;
const own = (table: string) => `FROM ${table} t WHERE t.account_id = ?1`;

export const MOVED_TABLES: readonly MovedTable[] = [
  {
    name: "lists",
    columns: ["id", "account_id", "name", "created_at"],
    compared: [],
    key: id,
    scope: own("lists"),
    unique: ["account_id", "name"],
    referenced: true,
  },
  {
    name: "custom_fields",
    columns: ["id", "account_id", "name", "type", "default_value", "required", "created_at"],
    compared: [],
    key: id,
    scope: own("custom_fields"),
    unique: ["account_id", "name"],
  },
  {
    name: "tags",
    columns: ["id", "account_id", "name", "description", "created_at"],
    compared: [],
    key: id,
    scope: own("tags"),
    unique: ["account_id", "name"],
  },
  {
    name: "subscribers",
    columns: ["id", "account_id", "list_id", "email", "status", "subscribe_date", "custom_fields"],
    compared: [],
    key: id,
    scope: own("subscribers"),
    unique: ["list_id", "email"],
    parents: [{ column: "list_id", table: "lists" }],
  },
  {
    name: "subscriber_tags",
    columns: ["subscriber_id", "tag_id"],
    compared: [],
    key: ["subscriber_id", "tag_id"],
    parents: [
      { column: "subscriber_id", table: "subscribers" },
      { column: "tag_id", table: "tags" },
    ],
    // The table has no account column: its rows belong to the account's subscribers.
    scope: "FROM subscriber_tags t JOIN subscribers s ON s.id = t.subscriber_id WHERE s.account_id = ?1",
  },
  {
    name: "import_batches",
    columns: ["id", "account_id", "job_id", "first_row", "outcomes"],
    compared: [],
    key: id,
    scope: own("import_batches"),
    unique: ["job_id", "first_row"],
  },
  {
    name: "segments",
    columns: ["id", "account_id", "name", "rules", "created_at", "contacts_count", "counted_at", "count_error"],
    compared: ["id", "account_id", "name", "rules", "created_at"],
    key: id,
    scope: own("segments"),
  },
].map((table) => ({ ...table, compared: table.compared.length > 0 ? table.compared : table.columns }));

/** `(t.a, t.b) > (?2, ?3)`: after the given key (none: from the start). Parameters start at ?2. */
export function afterKey(table: MovedTable, after: readonly number[] | null, firstParameter = 2): string {
  if (!after) return "1";
  const columns = table.key.map((c) => `t.${c}`);
  const parameters = table.key.map((_, i) => `?${firstParameter + i}`);
  return columns.length === 1 ? `${columns[0]} > ${parameters[0]}` : `(${columns.join(", ")}) > (${parameters.join(", ")})`;
}

/** `(t.a, t.b) <= (?n, ?m)`: up to and including the given key. */
export function upToKey(table: MovedTable, last: readonly number[], firstParameter: number): string {
  const columns = table.key.map((c) => `t.${c}`);
  const parameters = table.key.map((_, i) => `?${firstParameter + i}`);
  return columns.length === 1 ? `${columns[0]} <= ${parameters[0]}` : `(${columns.join(", ")}) <= (${parameters.join(", ")})`;
}

export const keyOrder = (table: MovedTable) => table.key.map((c) => `t.${c}`).join(", ");

/**
 * Inserts a page (a JSON array of rows, each an array of `columns`) and updates rows that are already there.
 * Never REPLACE: replacing a subscriber would delete it first and cascade to its tags. A row whose parent is
 * not on the target (yet) is skipped: while writes are open the source may gain a list after the lists were
 * copied; the reconcile pass, which runs parents first on a frozen source, brings both.
 */
export function upsertPage(table: MovedTable): string {
  const values = table.columns.map((_, i) => `value ->> ${i}`).join(", ");
  const conflict =
    table.key.length === 1
      ? `ON CONFLICT (${table.key[0]}) DO UPDATE SET ${table.columns
          .filter((c) => !table.key.includes(c))
          .map((c) => `${c} = excluded.${c}`)
          .join(", ")}`
      : `ON CONFLICT (${table.key.join(", ")}) DO NOTHING`;
  // A WHERE clause (if only `true`) lets SQLite parse the upsert after a SELECT.
  const parentsThere = (table.parents ?? []).map(
    (p) => `EXISTS (SELECT 1 FROM ${p.table} WHERE id = value ->> ${table.columns.indexOf(p.column)})`,
  );
  const where = parentsThere.length > 0 ? parentsThere.join(" AND ") : "true";
  return `INSERT INTO ${table.name} (${table.columns.join(", ")}) SELECT ${values} FROM json_each(?1) WHERE ${where} ${conflict}`;
}

/**
 * Deletes the target's rows that hold a unique key of a page row under another id (?1: the page as JSON):
 * stale copies, whose key the source has since given to another row. Upserting the page would collide with them.
 */
export function deleteUniqueCollisions(table: MovedTable): string | null {
  if (!table.unique) return null;
  const uniqueValues = table.unique.map((c) => `value ->> ${table.columns.indexOf(c)}`).join(", ");
  const keyValue = `value ->> ${table.columns.indexOf(table.key[0]!)}`;
  return `DELETE FROM ${table.name} WHERE (${table.unique.join(", ")}) IN (SELECT ${uniqueValues} FROM json_each(?1))
    AND ${table.key[0]} NOT IN (SELECT ${keyValue} FROM json_each(?1))`;
}
