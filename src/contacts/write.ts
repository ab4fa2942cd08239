/**
 * Adds and updates a list's subscribers, many at once, in one D1 batch (one transaction): the write path of
 * AddSubscriberToList, AddOrUpdateSubscribers and the bulk import. Each contact gets its own result (added,
 * updated, or rejected with a reason), so one bad contact never fails the others.
 *
 * Whole pages travel as one JSON parameter each (json_each): D1 binds at most 100 parameters per statement.
 */
import { quote } from "../api/envelope";
import type { SubscriberStatus } from "../db/shard_schema";
import type { Shard } from "../shards/directory";
import { idsFromControl, type IdSource } from "../shards/ids";
import { defaultOf, fieldLookup, loadAccountFields, resolveFieldValues, type AccountField, type StoredValue } from "./fields";
import { statusOf, type FieldValueInput, type ParsedContact, type TagRef } from "./input";
import { loadNamedTags, resolveTagIds, type TagLookup } from "./tags";

/** One contact as the methods parse it. */
export interface ContactInput {
  email: string;
  status?: SubscriberStatus | undefined;
  subscribeDate?: string | undefined;
  fields: readonly FieldValueInput[];
  tags: readonly TagRef[];
}

/**
 * Why a contact was rejected: its data ("invalid": a bad value, an unknown field or tag, a required field
 * missing), the list's state ("exists", "missing": per ifExists / ifMissing), or a concurrent write to the same
 * subscriber ("raced": sending it again settles it).
 */
export type RejectionKind = "invalid" | "exists" | "missing" | "raced";

/** A contact as contactSchema parses it (a call's contact[], an import's row), as writeContacts takes it. */
export const contactInput = (c: ParsedContact): ContactInput => ({
  email: c.email,
  status: statusOf(c),
  subscribeDate: c.subscribedate,
  fields: c.customfield,
  tags: c.tag,
});

export type ContactResult =
  | { result: "added" | "updated"; subscriberid: number }
  | { result: "rejected"; kind: RejectionKind; reason: string };

export interface WriteOptions {
  /** A contact already in the list is updated, or rejected. */
  ifExists: "update" | "reject";
  /** A contact not in the list is added, or rejected. */
  ifMissing: "add" | "reject";
  /** Paths in reasons start here: "contact.3" for a bulk call, "details" for a single one. */
  pathOf: (index: number) => string;
  /** The subscribe date of new contacts that give none (ISO, UTC seconds). */
  now: string;
  /**
   * An import's batch: its outcomes are recorded in the import_batches ledger in the same transaction as the
   * writes, so that a retried batch takes them from there (recordedOutcomes) instead of writing again.
   */
  ledger?: { jobId: string; firstRow: number; ids: IdSource };
  /** The account's custom fields, when the caller has them already (an import reads them once per slice). */
  fields?: readonly AccountField[];
  /** Where new subscribers' ids come from (an import takes them in blocks); by default, a statement per call. */
  subscriberIds?: IdSource;
  /** Tags found by earlier calls (an import keeps them for a slice); those found here are added to it. */
  knownTags?: TagLookup;
}

interface Resolved {
  index: number;
  email: string;
  status: SubscriberStatus | null;
  date: string | null;
  fields: Record<string, StoredValue>;
  tags: number[];
  /** Later contacts of the same call with the same email, merged into this one. */
  merged: number[];
}

const RACED = "was changed by another request at the same moment; send it again";

/**
 * The statements of a contact batch. Rows travel as JSON arrays (one parameter: D1 binds at most 100), read by
 * position (SQLite reads an array's element without searching for a key).
 *
 * Query plans: each statement starts from the batch's JSON rows and reaches subscribers by primary key (or, to
 * find the emails already in the list, by the (list_id, email) index). The unary "+" on account_id and list_id
 * keeps SQLite from scanning the account's subscribers by the account index and parsing the batch's JSON once per
 * subscriber (which made a batch cost grow with the list); CROSS JOIN fixes the order of the tags statement's
 * joins likewise. test/contacts/write_plans.test.ts checks them with EXPLAIN QUERY PLAN.
 */
export const WRITE_SQL = {
  /** ?1 the emails, ?2 the list: those already in it, with their ids. */
  existing: `SELECT s.id, s.email FROM json_each(?1) e CROSS JOIN subscribers s WHERE s.list_id = ?2 AND s.email = e.value`,
  /** ?1 [id, status, date, fields], ?2 the account, ?3 the list. Fields are patched (a null value clears one); status and date change only when given. */
  update: `UPDATE subscribers SET
      status = coalesce(j.value ->> 1, subscribers.status),
      subscribe_date = coalesce(j.value ->> 2, subscribers.subscribe_date),
      custom_fields = json_patch(subscribers.custom_fields, j.value -> 3)
    FROM json_each(?1) j
    WHERE subscribers.id = j.value ->> 0 AND +subscribers.account_id = ?2 AND +subscribers.list_id = ?3
    RETURNING subscribers.id AS id`,
  /** ?1 [id, email, status, date, fields without nulls], ?2 the account, ?3 the list, ?4 the default subscribe date. */
  insert: `INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields)
    SELECT j.value ->> 0, ?2, ?3, j.value ->> 1, coalesce(j.value ->> 2, 'active'), coalesce(j.value ->> 3, ?4), j.value -> 4
    FROM json_each(?1) j WHERE true
    ON CONFLICT (list_id, email) DO NOTHING
    RETURNING id`,
  /**
   * ?1 [id, tag ids], ?2 the account. Tags are added (never removed here); a subscriber that was not written gets
   * none, nor does a tag deleted since it was looked up (which would otherwise fail the batch on the foreign key).
   */
  tag: `INSERT OR IGNORE INTO subscriber_tags (subscriber_id, tag_id)
    SELECT j.value ->> 0, t.value
    FROM json_each(?1) j CROSS JOIN json_each(j.value -> 1) t
    WHERE EXISTS (SELECT 1 FROM subscribers s WHERE s.id = j.value ->> 0 AND +s.account_id = ?2)
      AND EXISTS (SELECT 1 FROM tags g WHERE g.id = t.value AND +g.account_id = ?2)`,
  /** ?1 the ledger row's id, ?2 the account, ?3 the job, ?4 the batch's first row, ?5 the plan, ?6 the reason of a raced row. */
  ledger: `INSERT INTO import_batches (id, account_id, job_id, first_row, outcomes)
    SELECT ?1, ?2, ?3, ?4, json_group_array(json_object(
      'i', p.value ->> 'i',
      'r', CASE WHEN p.value ->> 'plan' = 'rejected' OR s.id IS NULL THEN 'rejected' ELSE p.value ->> 'plan' END,
      'id', s.id,
      'kind', CASE WHEN p.value ->> 'plan' = 'rejected' THEN p.value ->> 'kind' WHEN s.id IS NULL THEN 'raced' END,
      'reason', CASE WHEN p.value ->> 'plan' = 'rejected' THEN p.value ->> 'reason' WHEN s.id IS NULL THEN ?6 END))
    FROM json_each(?5) p LEFT JOIN subscribers s ON s.id = p.value ->> 'id' AND s.account_id = ?2`,
} as const;

/**
 * Writes `contacts` into list `listId` of the account (the caller checked that the list is the account's) and
 * returns each one's result, in order.
 */
export async function writeContacts(
  env: Env,
  shard: Shard,
  accountId: number,
  listId: number,
  contacts: readonly ContactInput[],
  options: WriteOptions,
): Promise<ContactResult[]> {
  const results: ContactResult[] = new Array(contacts.length);
  const fields = fieldLookup(options.fields ?? (await loadAccountFields(shard.db, accountId)));
  const tags = await loadNamedTags(shard.db, accountId, contacts.flatMap((c) => c.tags), options.knownTags);

  // Resolve each contact; a later one with the same email is merged into the first (or rejected).
  const byEmail = new Map<string, Resolved>();
  for (const [index, contact] of contacts.entries()) {
    const path = options.pathOf(index);
    const values = resolveFieldValues(contact.fields, fields, `${path}.customfield`);
    if (!values.ok) {
      results[index] = { result: "rejected", kind: "invalid", reason: values.reason };
      continue;
    }
    const tagIds = resolveTagIds(contact.tags, tags, `${path}.tag`);
    if (!tagIds.ok) {
      results[index] = { result: "rejected", kind: "invalid", reason: tagIds.reason };
      continue;
    }
    const earlier = byEmail.get(contact.email);
    if (earlier) {
      if (options.ifExists === "reject") {
        results[index] = { result: "rejected", kind: "exists", reason: `${path}.email: ${quote(contact.email)} is already ${options.pathOf(earlier.index)} of this call` };
        continue;
      }
      earlier.status = contact.status ?? earlier.status;
      earlier.date = contact.subscribeDate ?? earlier.date;
      Object.assign(earlier.fields, values.value);
      earlier.tags = [...new Set([...earlier.tags, ...tagIds.value])];
      earlier.merged.push(index);
      continue;
    }
    byEmail.set(contact.email, {
      index,
      email: contact.email,
      status: contact.status ?? null,
      date: contact.subscribeDate ?? null,
      fields: values.value,
      tags: tagIds.value,
      merged: [],
    });
  }

  const existing = new Map<string, number>();
  if (byEmail.size > 0) {
    const { results: rows } = await shard.d1.prepare(WRITE_SQL.existing).bind(JSON.stringify([...byEmail.keys()]), listId).all<{ id: number; email: string }>();
    for (const row of rows) existing.set(row.email, Number(row.id));
  }

  const updates: Array<Resolved & { id: number }> = [];
  const inserts: Array<Resolved & { id: number }> = [];
  const reject = (contact: Resolved, kind: RejectionKind, reason: string) => {
    for (const index of [contact.index, ...contact.merged]) results[index] = { result: "rejected", kind, reason };
  };
  for (const contact of byEmail.values()) {
    const path = options.pathOf(contact.index);
    const id = existing.get(contact.email);
    if (id !== undefined) {
      if (options.ifExists === "update") updates.push({ ...contact, id });
      else reject(contact, "exists", `${path}.email: ${quote(contact.email)} is already in list ${listId} (subscriber id ${id})`);
      continue;
    }
    if (options.ifMissing === "reject") {
      reject(contact, "missing", `${path}.email: ${quote(contact.email)} is not in list ${listId}`);
      continue;
    }
    // A new subscriber: its fields' defaults fill in what it lacks, and required fields must then have a value.
    for (const field of fields.all) {
      const key = String(field.id);
      if (!(key in contact.fields) && field.defaultValue !== null) contact.fields[key] = defaultOf(field);
    }
    const missing = fields.all.find((field) => field.required && (contact.fields[String(field.id)] ?? null) === null);
    if (missing) {
      reject(contact, "invalid", `${path}.customfield: ${quote(missing.name)} is required`);
      continue;
    }
    inserts.push({ ...contact, id: 0 });
  }
  if (updates.length + inserts.length === 0) return results;

  if (inserts.length > 0) {
    const first = await (options.subscriberIds ?? idsFromControl(env.DB, "subscribers")).take(inserts.length);
    inserts.forEach((contact, i) => (contact.id = first + i));
  }
  const ledger = options.ledger ? await ledgerStatement(shard, accountId, options.ledger, contacts.length, results, updates, inserts) : null;
  // A new subscriber's nulls are left out: it has no value there.
  const updateRows = JSON.stringify(updates.map((c) => [c.id, c.status, c.date, c.fields]));
  const insertRows = JSON.stringify(inserts.map((c) => [c.id, c.email, c.status, c.date, withoutNulls(c.fields)]));
  const tagRows = JSON.stringify([...updates, ...inserts].flatMap((c) => (c.tags.length > 0 ? [[c.id, c.tags]] : [])));
  const { d1 } = shard;
  const [updated, inserted] = await d1.batch<{ id: number }>([
    d1.prepare(WRITE_SQL.update).bind(updateRows, accountId, listId),
    d1.prepare(WRITE_SQL.insert).bind(insertRows, accountId, listId, options.now),
    d1.prepare(WRITE_SQL.tag).bind(tagRows, accountId),
    ...(ledger ? [ledger] : []),
  ]);
  const updatedIds = new Set(updated!.results.map((r) => Number(r.id)));
  const insertedIds = new Set(inserted!.results.map((r) => Number(r.id)));
  for (const contact of updates) {
    if (!updatedIds.has(contact.id)) reject(contact, "raced", `${options.pathOf(contact.index)} ${RACED}`);
    else for (const index of [contact.index, ...contact.merged]) results[index] = { result: "updated", subscriberid: contact.id };
  }
  for (const contact of inserts) {
    if (!insertedIds.has(contact.id)) {
      reject(contact, "raced", `${options.pathOf(contact.index)} ${RACED}`);
      continue;
    }
    results[contact.index] = { result: "added", subscriberid: contact.id };
    for (const index of contact.merged) results[index] = { result: "updated", subscriberid: contact.id };
  }
  return results;
}

function withoutNulls(fields: Record<string, StoredValue>): Record<string, StoredValue> {
  const kept: Record<string, StoredValue> = {};
  for (const key in fields) if (fields[key] !== null) kept[key] = fields[key]!;
  return kept;
}

/** One contact's outcome as the ledger keeps it. */
interface LedgerOutcome {
  i: number;
  r: "added" | "updated" | "rejected";
  id: number | null;
  kind: RejectionKind | null;
  reason: string | null;
}

/**
 * The statement that records a batch's outcomes in the ledger, last in its transaction. What became of each
 * planned write is read from the database as the transaction leaves it: a planned row that exists was written
 * (an insert's id is new and unique; an update ran on a row that, inside the transaction, still exists);
 * one that does not was taken by a concurrent request. The ledger's unique key refuses a second record of the
 * batch, which rolls the whole second attempt back.
 */
async function ledgerStatement(
  shard: Shard,
  accountId: number,
  ledger: NonNullable<WriteOptions["ledger"]>,
  count: number,
  results: ContactResult[],
  updates: ReadonlyArray<Resolved & { id: number }>,
  inserts: ReadonlyArray<Resolved & { id: number }>,
): Promise<D1PreparedStatement> {
  const plan: Array<{ i: number; plan: "rejected" | "added" | "updated"; id?: number; kind?: RejectionKind; reason?: string }> = [];
  for (let i = 0; i < count; i++) {
    const known = results[i];
    if (known?.result === "rejected") plan.push({ i, plan: "rejected", kind: known.kind, reason: known.reason });
  }
  for (const contact of inserts) {
    plan.push({ i: contact.index, plan: "added", id: contact.id });
    for (const index of contact.merged) plan.push({ i: index, plan: "updated", id: contact.id });
  }
  for (const contact of updates) for (const index of [contact.index, ...contact.merged]) plan.push({ i: index, plan: "updated", id: contact.id });
  const id = await ledger.ids.take(1);
  return shard.d1.prepare(WRITE_SQL.ledger).bind(id, accountId, ledger.jobId, ledger.firstRow, JSON.stringify(plan), `row ${RACED}`);
}

/** A batch's outcomes as the ledger recorded them, in order; null if the batch was never written. */
export async function recordedOutcomes(shard: Shard, jobId: string, firstRow: number, count: number): Promise<ContactResult[] | null> {
  const row = await shard.d1
    .prepare(`SELECT outcomes FROM import_batches WHERE job_id = ?1 AND first_row = ?2`)
    .bind(jobId, firstRow)
    .first<{ outcomes: string }>();
  if (!row) return null;
  const outcomes = JSON.parse(row.outcomes) as LedgerOutcome[];
  const results: ContactResult[] = new Array(count);
  for (const o of outcomes) {
    results[Number(o.i)] =
      o.r === "rejected" ? { result: "rejected", kind: o.kind ?? "invalid", reason: o.reason ?? "rejected" } : { result: o.r, subscriberid: Number(o.id) };
  }
  return results;
}

/** Forgets a finished import's ledger (best effort: it only ever answers for that import's own batches). */
export async function forgetLedger(shard: Shard, jobId: string): Promise<void> {
  await shard.d1.prepare(`DELETE FROM import_batches WHERE job_id = ?1`).bind(jobId).run();
}
