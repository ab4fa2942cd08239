/**
 * Adds and updates a list's subscribers, many at once, in one D1 batch (one transaction): the write path of
 * AddSubscriberToList, AddOrUpdateSubscribers and the bulk import. Each contact gets its own result (added,
 * updated, or rejected with a reason), so one bad contact never fails the others.
 *
 * Whole pages travel as one JSON parameter each (json_each): D1 binds at most 100 parameters per statement.
 */
import { quote, truncate } from "../api/envelope";
import type { SubscriberStatus } from "../db/shard_schema";
import type { Shard } from "../shards/directory";
import { idsFromControl, type IdSource } from "../shards/ids";
import { defaultOf, fieldLookup, loadAccountFields, resolveFieldValues, type AccountField, type StoredValue } from "./fields";
import { CONTACT_LIMITS, statusOf, type FieldValueInput, type ParsedContact, type TagRef } from "./input";
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
  /** The subscriber's id, once it is known (an update) or given (an insert); 0 before. */
  id: number;
  /** Its values as a new subscriber stores them (JSON), once worked out; "" before. */
  stored: string;
}

const RACED = "was changed by another request at the same moment; send it again";

/**
 * The batch's rows as a table `r(v)`, each row's JSON text made once. json_each renders a row (an array or
 * object) as text each time its `value` is named, and a statement names it up to five times a row: that was 7 %
 * of a 1M import's time on workerd's thread. Materialized, a row is rendered once, and the `->>` after it find
 * it in SQLite's cache of parsed JSON (the D1 writes of a 1M import: 28.2 s before, 22.9 s after).
 */
const rowsOf = (parameter: string) => `WITH r(v) AS MATERIALIZED (SELECT value FROM json_each(${parameter}))`;

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
  /** ?1 the emails, ?2 the list: those already in it, with their ids and the bytes their custom field values take. */
  existing: `SELECT s.id, s.email, length(CAST(s.custom_fields AS BLOB)) AS bytes FROM json_each(?1) e CROSS JOIN subscribers s WHERE s.list_id = ?2 AND s.email = e.value`,
  /** ?1 subscriber ids: their custom field values as stored. */
  storedFields: `SELECT s.id, s.custom_fields FROM json_each(?1) j CROSS JOIN subscribers s WHERE s.id = j.value`,
  /** ?1 [id, status, date, fields], ?2 the account, ?3 the list. Fields are patched (a null value clears one); status and date change only when given. */
  update: `${rowsOf("?1")} UPDATE subscribers SET
      status = coalesce(r.v ->> 1, subscribers.status),
      subscribe_date = coalesce(r.v ->> 2, subscribers.subscribe_date),
      custom_fields = json_patch(subscribers.custom_fields, r.v -> 3)
    FROM r
    WHERE subscribers.id = r.v ->> 0 AND +subscribers.account_id = ?2 AND +subscribers.list_id = ?3
    RETURNING subscribers.id AS id`,
  /** ?1 [id, email, status, date, fields without nulls], ?2 the account, ?3 the list, ?4 the default subscribe date. */
  insert: `${rowsOf("?1")} INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields)
    SELECT v ->> 0, ?2, ?3, v ->> 1, coalesce(v ->> 2, 'active'), coalesce(v ->> 3, ?4), v -> 4
    FROM r WHERE true
    ON CONFLICT (list_id, email) DO NOTHING
    RETURNING id`,
  /**
   * A batch of new subscribers only, all or none: ?1 [id, email, status, date, fields without nulls], ?2 the
   * account, ?3 the list, ?4 the default subscribe date, ?5 the emails of the whole batch, ?6..?7 the ids it
   * inserts. Nothing is inserted if one of the emails is in the list already (the guard is evaluated once, and
   * leaves out the batch's own rows, so that its second statement, when the rows take two, is not stopped by its
   * first).
   */
  insertAllNew: `${rowsOf("?1")} INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields)
    SELECT v ->> 0, ?2, ?3, v ->> 1, coalesce(v ->> 2, 'active'), coalesce(v ->> 3, ?4), v -> 4
    FROM r
    WHERE NOT EXISTS (SELECT 1 FROM json_each(?5) e CROSS JOIN subscribers s WHERE s.list_id = ?3 AND s.email = e.value AND s.id NOT BETWEEN ?6 AND ?7)
    ON CONFLICT (list_id, email) DO NOTHING`,
  /**
   * ?1 [id, tag ids], ?2 the account. Tags are added (never removed here); a subscriber that was not written gets
   * none, nor does a tag deleted since it was looked up (which would otherwise fail the batch on the foreign key).
   */
  tag: `${rowsOf("?1")} INSERT OR IGNORE INTO subscriber_tags (subscriber_id, tag_id)
    SELECT r.v ->> 0, t.value
    FROM r CROSS JOIN json_each(r.v -> 1) t
    WHERE EXISTS (SELECT 1 FROM subscribers s WHERE s.id = r.v ->> 0 AND +s.account_id = ?2)
      AND EXISTS (SELECT 1 FROM tags g WHERE g.id = t.value AND +g.account_id = ?2)`,
  /** ?1 the ledger row's id, ?2 the account, ?3 the job, ?4 the batch's first row, ?5 the plan, ?6 the reason of a raced row. */
  ledger: `${rowsOf("?5")} INSERT INTO import_batches (id, account_id, job_id, first_row, outcomes)
    SELECT ?1, ?2, ?3, ?4, json_group_array(json_object(
      'i', r.v ->> 'i',
      'r', CASE WHEN r.v ->> 'plan' = 'rejected' OR s.id IS NULL THEN 'rejected' ELSE r.v ->> 'plan' END,
      'id', s.id,
      'kind', CASE WHEN r.v ->> 'plan' = 'rejected' THEN r.v ->> 'kind' WHEN s.id IS NULL THEN 'raced' END,
      'reason', CASE WHEN r.v ->> 'plan' = 'rejected' THEN r.v ->> 'reason' WHEN s.id IS NULL THEN ?6 END))
    FROM r LEFT JOIN subscribers s ON s.id = r.v ->> 'id' AND s.account_id = ?2`,
  /**
   * The ledger row of a batch of new subscribers only (insertAllNew): its outcomes are the plan itself, recorded
   * if the batch was written. ?1 the ledger row's id, ?2 the account, ?3 the job, ?4 the batch's first row,
   * ?5 the outcomes, ?6 the batch's first new subscriber.
   */
  ledgerAsPlanned: `INSERT INTO import_batches (id, account_id, job_id, first_row, outcomes)
    SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM subscribers s WHERE s.id = ?6 AND +s.account_id = ?2)`,
} as const;

/**
 * Writes `contacts` into list `listId` of the account (the caller checked that the list is the account's) and
 * returns each one's result, in order.
 *
 * A batch whose contacts are all new and complete (a fresh import, a first sync) is first written as such, in
 * one D1 batch that inserts all of them or, if one is in the list already, nothing; only then are the list's
 * emails looked up, and each contact added or updated as that says.
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
  for (let index = 0; index < contacts.length; index++) {
    const contact = contacts[index]!;
    // Paths are made only for a reason: most contacts never need one.
    const values = resolveFieldValues(contact.fields, fields, () => `${options.pathOf(index)}.customfield`);
    if (!values.ok) {
      results[index] = { result: "rejected", kind: "invalid", reason: values.reason };
      continue;
    }
    const tagIds = resolveTagIds(contact.tags, tags, () => `${options.pathOf(index)}.tag`);
    if (!tagIds.ok) {
      results[index] = { result: "rejected", kind: "invalid", reason: tagIds.reason };
      continue;
    }
    const earlier = byEmail.get(contact.email);
    if (earlier) {
      if (options.ifExists === "reject") {
        results[index] = { result: "rejected", kind: "exists", reason: `${options.pathOf(index)}.email: ${quote(contact.email)} is already ${options.pathOf(earlier.index)} of this call` };
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
      id: 0,
      stored: "",
    });
  }
  if (byEmail.size === 0) return results;

  const reject = (contact: Resolved, kind: RejectionKind, reason: string) => {
    for (const index of [contact.index, ...contact.merged]) results[index] = { result: "rejected", kind, reason };
  };
  const subscriberIds = options.subscriberIds ?? idsFromControl(env.DB, "subscribers");
  const ledgerId = options.ledger ? await options.ledger.ids.take(1) : 0;
  // The batch's emails: the guard of a batch of new subscribers, and the lookup of those in the list already.
  const emails = JSON.stringify([...byEmail.keys()]);

  // All new? Then one batch writes them, unless one of them is in the list already.
  let plannedIds: number | null = null;
  const asNew = options.ifMissing === "add" ? asNewSubscribers(byEmail.values(), fields) : null;
  if (asNew) {
    const first = await subscriberIds.take(asNew.length);
    plannedIds = first;
    asNew.forEach((contact, i) => (contact.id = first + i));
    const insertStatements = jsonArrays(asNew.map(insertRow)).map((rows) =>
      shard.d1.prepare(WRITE_SQL.insertAllNew).bind(rows, accountId, listId, options.now, emails, first, first + asNew.length - 1),
    );
    const written = await shard.d1.batch([
      ...insertStatements,
      ...tagStatements(shard, accountId, asNew),
      ...(options.ledger ? [ledgerAsPlannedStatement(shard, accountId, ledgerId, options.ledger, ledgerPlan(contacts.length, results, [], asNew), first)] : []),
    ]);
    const changes = written.slice(0, insertStatements.length).reduce((sum, r) => sum + r.meta.changes, 0);
    if (changes === asNew.length) {
      for (const contact of asNew) {
        results[contact.index] = { result: "added", subscriberid: contact.id };
        for (const index of contact.merged) results[index] = { result: "updated", subscriberid: contact.id };
      }
      return results;
    }
    if (changes !== 0) throw new Error(`writeContacts: a batch of new subscribers inserted ${changes} of ${asNew.length}`);
    // An email was in the list already, and nothing was written: look them up.
  }

  const existing = new Map<string, { id: number; bytes: number }>();
  {
    const { results: rows } = await shard.d1
      .prepare(WRITE_SQL.existing)
      .bind(emails, listId)
      .all<{ id: number; email: string; bytes: number }>();
    for (const row of rows) existing.set(row.email, { id: Number(row.id), bytes: Number(row.bytes) });
  }

  const updates: Resolved[] = [];
  const inserts: Resolved[] = [];
  for (const contact of byEmail.values()) {
    const path = options.pathOf(contact.index);
    const found = existing.get(contact.email);
    if (found !== undefined) {
      if (options.ifExists === "update") {
        contact.id = found.id;
        updates.push(contact);
      } else reject(contact, "exists", `${path}.email: ${quote(contact.email)} is already in list ${listId} (subscriber id ${found.id})`);
      continue;
    }
    if (options.ifMissing === "reject") {
      reject(contact, "missing", `${path}.email: ${quote(contact.email)} is not in list ${listId}`);
      continue;
    }
    const problem = asNewSubscriber(contact, fields);
    if (problem) reject(contact, "invalid", `${path}.customfield: ${problem}`);
    else inserts.push(contact);
  }
  // An update may not take a subscriber's values past the bound: what is stored and what is sent, counted
  // together, or, past the bound, merged as SQLite will merge them.
  const overBound = updates.filter((c) => bytesOver(JSON.stringify(c.fields), CONTACT_LIMITS.storedFieldsBytes - existing.get(c.email)!.bytes));
  if (overBound.length > 0) {
    const { results: rows } = await shard.d1
      .prepare(WRITE_SQL.storedFields)
      .bind(JSON.stringify(overBound.map((c) => c.id)))
      .all<{ id: number; custom_fields: string }>();
    const storedOf = new Map(rows.map((r) => [Number(r.id), r.custom_fields]));
    for (const contact of overBound) {
      const stored = storedOf.get(contact.id);
      const bytes = stored === undefined ? 0 : utf8Length(JSON.stringify(patched(JSON.parse(stored) as Record<string, StoredValue>, contact.fields)));
      if (bytes > CONTACT_LIMITS.storedFieldsBytes) {
        reject(contact, "invalid", `${options.pathOf(contact.index)}.customfield: ${tooManyBytes(bytes, "with those it has already")}`);
        updates.splice(updates.indexOf(contact), 1);
      }
    }
  }
  if (updates.length + inserts.length === 0) return results;

  if (inserts.length > 0) {
    const first = plannedIds ?? (await subscriberIds.take(inserts.length));
    inserts.forEach((contact, i) => (contact.id = first + i));
  }
  const { d1 } = shard;
  const updateStatements = jsonArrays(updates.map(updateRow)).map((rows) => d1.prepare(WRITE_SQL.update).bind(rows, accountId, listId));
  const insertStatements = jsonArrays(inserts.map(insertRow)).map((rows) => d1.prepare(WRITE_SQL.insert).bind(rows, accountId, listId, options.now));
  const written = await d1.batch<{ id: number }>([
    ...updateStatements,
    ...insertStatements,
    ...tagStatements(shard, accountId, [...updates, ...inserts]),
    ...(options.ledger ? [ledgerStatement(shard, accountId, ledgerId, options.ledger, ledgerPlan(contacts.length, results, updates, inserts))] : []),
  ]);
  const idsOf = (from: number, count: number) => new Set(written.slice(from, from + count).flatMap((r) => r.results.map((row) => Number(row.id))));
  const updatedIds = idsOf(0, updateStatements.length);
  const insertedIds = idsOf(updateStatements.length, insertStatements.length);
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

/**
 * D1 takes at most 2 MB in one value, so the rows of a statement travel in JSON arrays of at most this many
 * characters (1.5 MiB even if every character took 3 bytes); a batch with more rows has more statements.
 */
const PARAM_CHARS = 512 * 1024;

/** `rows` (each a JSON text) as JSON arrays of at most PARAM_CHARS characters, in order; none if there are no rows. */
function jsonArrays(rows: readonly string[]): string[] {
  const arrays: string[] = [];
  let start = 0;
  let chars = 2;
  for (let i = 0; i < rows.length; i++) {
    const more = rows[i]!.length + 1;
    if (i > start && chars + more > PARAM_CHARS) {
      arrays.push(`[${rows.slice(start, i).join(",")}]`);
      start = i;
      chars = 2;
    }
    chars += more;
  }
  if (start < rows.length) arrays.push(`[${(start === 0 ? rows : rows.slice(start)).join(",")}]`);
  return arrays;
}

/** The UTF-8 length of `text`, counted rather than encoded. */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // 2 bytes below U+0800, else 3; a surrogate pair, 4 (2 for each half).
    if (unit >= 0x80) bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/** Whether `text` takes more than `room` bytes in UTF-8 (counted only when its length does not settle it). */
const bytesOver = (text: string, room: number) => text.length * 3 > room && utf8Length(text) > room;

const tooManyBytes = (bytes: number, what: string) =>
  `the custom field values would take ${bytes} bytes as stored (${what}); a subscriber holds at most ${CONTACT_LIMITS.storedFieldsBytes}`;

/** `stored` with `patch` applied as json_patch applies it: a null removes a value. */
function patched(stored: Record<string, StoredValue>, patch: Record<string, StoredValue>): Record<string, StoredValue> {
  const result = { ...stored };
  for (const key in patch) {
    if (patch[key] === null) delete result[key];
    else result[key] = patch[key]!;
  }
  return result;
}

/**
 * Makes `contact` a new subscriber: its values with the fields' defaults for those it lacks, as stored (JSON,
 * nulls left out), in `contact.stored`; or says why it cannot be one (a required field without a value, values
 * past the bound).
 */
function asNewSubscriber(contact: Resolved, fields: ReturnType<typeof fieldLookup>): string | null {
  let values = contact.fields;
  // A copy only where there is something to leave out or fill in (most contacts have neither).
  let plain = fields.withDefaultOrRequired.length === 0;
  for (const key in values) {
    if (values[key] === null) {
      plain = false;
      break;
    }
  }
  if (!plain) {
    values = {};
    for (const key in contact.fields) if (contact.fields[key] !== null) values[key] = contact.fields[key]!;
  }
  for (const field of fields.withDefaultOrRequired) {
    const key = String(field.id);
    if (!(key in contact.fields)) {
      const value = defaultOf(field);
      if (value !== null) values[key] = value;
    }
    if (field.required && !(key in values)) return `${quote(field.name)} is required`;
  }
  const stored = JSON.stringify(values);
  if (bytesOver(stored, CONTACT_LIMITS.storedFieldsBytes)) return tooManyBytes(utf8Length(stored), "with the fields' defaults for those not given");
  contact.stored = stored;
  return null;
}

/** Every contact made a new subscriber, or null if one of them cannot be one. */
function asNewSubscribers(contacts: Iterable<Resolved>, fields: ReturnType<typeof fieldLookup>): Resolved[] | null {
  const all: Resolved[] = [];
  for (const contact of contacts) {
    if (asNewSubscriber(contact, fields) !== null) return null;
    all.push(contact);
  }
  return all;
}

/** [id, email, status, date, values as stored] */
const insertRow = (c: Resolved) => `[${c.id},${JSON.stringify(c.email)},${JSON.stringify(c.status)},${JSON.stringify(c.date)},${c.stored}]`;
/** [id, status, date, values to patch in] */
const updateRow = (c: Resolved) => JSON.stringify([c.id, c.status, c.date, c.fields]);

const tagRows = (contacts: readonly Resolved[]) => contacts.flatMap((c) => (c.tags.length > 0 ? [JSON.stringify([c.id, c.tags])] : []));
const tagStatements = (shard: Shard, accountId: number, contacts: readonly Resolved[]) =>
  jsonArrays(tagRows(contacts)).map((rows) => shard.d1.prepare(WRITE_SQL.tag).bind(rows, accountId));

/** One contact's outcome as the ledger keeps it. */
interface LedgerOutcome {
  i: number;
  r: "added" | "updated" | "rejected";
  id: number | null;
  kind: RejectionKind | null;
  reason: string | null;
}

/**
 * The outcomes of a batch of new subscribers, as its ledger row keeps them: `added` holds runs [i, id, n] (the
 * contacts i..i+n-1 were added as subscribers id..id+n-1), `others` the rest (merged and rejected contacts). A
 * clean batch is then one run, a few bytes, where one object per contact took 55 MB of JSON over a 1M import.
 */
interface LedgerRuns {
  added: Array<[i: number, id: number, n: number]>;
  others: LedgerOutcome[];
}

type PlannedOutcome = { i: number; plan: "rejected" | "added" | "updated"; id?: number; kind?: RejectionKind; reason?: string };

/**
 * The reasons a ledger row keeps, all together, in characters: the row is one D1 value (at most 2 MB). A batch
 * whose reasons are longer keeps each one cut to its share (seen only if the batch is written again).
 */
const LEDGER_REASON_CHARS = 256 * 1024;

/** What each of a batch's contacts becomes if the batch is written as planned. */
function ledgerPlan(
  count: number,
  results: readonly ContactResult[],
  updates: readonly Resolved[],
  inserts: readonly Resolved[],
): PlannedOutcome[] {
  const plan: PlannedOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const known = results[i];
    if (known?.result === "rejected") plan.push({ i, plan: "rejected", kind: known.kind, reason: known.reason });
  }
  if (plan.length > 0) {
    const share = Math.max(100, Math.floor(LEDGER_REASON_CHARS / plan.length));
    for (const p of plan) p.reason = truncate(p.reason!, share);
  }
  for (const contact of inserts) {
    plan.push({ i: contact.index, plan: "added", id: contact.id });
    for (const index of contact.merged) plan.push({ i: index, plan: "updated", id: contact.id });
  }
  for (const contact of updates) for (const index of [contact.index, ...contact.merged]) plan.push({ i: index, plan: "updated", id: contact.id });
  return plan;
}

/**
 * The statement that records a batch's outcomes in the ledger, last in its transaction. What became of each
 * planned write is read from the database as the transaction leaves it: a planned row that exists was written
 * (an insert's id is new and unique; an update ran on a row that, inside the transaction, still exists);
 * one that does not was taken by a concurrent request. The ledger's unique key refuses a second record of the
 * batch, which rolls the whole second attempt back.
 */
function ledgerStatement(
  shard: Shard,
  accountId: number,
  id: number,
  ledger: NonNullable<WriteOptions["ledger"]>,
  plan: readonly PlannedOutcome[],
): D1PreparedStatement {
  return shard.d1.prepare(WRITE_SQL.ledger).bind(id, accountId, ledger.jobId, ledger.firstRow, JSON.stringify(plan), `row ${RACED}`);
}

/**
 * The ledger row of a batch of new subscribers only, written with it: its outcomes are the plan itself, recorded
 * only if the batch was written (its first new subscriber exists).
 */
function ledgerAsPlannedStatement(
  shard: Shard,
  accountId: number,
  id: number,
  ledger: NonNullable<WriteOptions["ledger"]>,
  plan: readonly PlannedOutcome[],
  firstSubscriber: number,
): D1PreparedStatement {
  const outcomes: LedgerRuns = { added: [], others: [] };
  for (const p of plan) {
    const run = outcomes.added[outcomes.added.length - 1];
    if (p.plan !== "added") outcomes.others.push({ i: p.i, r: p.plan, id: p.id ?? null, kind: p.kind ?? null, reason: p.reason ?? null });
    else if (run && p.i === run[0] + run[2] && p.id === run[1] + run[2]) run[2]++;
    else outcomes.added.push([p.i, p.id!, 1]);
  }
  return shard.d1.prepare(WRITE_SQL.ledgerAsPlanned).bind(id, accountId, ledger.jobId, ledger.firstRow, JSON.stringify(outcomes), firstSubscriber);
}

/** A batch's outcomes as the ledger recorded them, in order; null if the batch was never written. */
export async function recordedOutcomes(shard: Shard, jobId: string, firstRow: number, count: number): Promise<ContactResult[] | null> {
  const row = await shard.d1
    .prepare(`SELECT outcomes FROM import_batches WHERE job_id = ?1 AND first_row = ?2`)
    .bind(jobId, firstRow)
    .first<{ outcomes: string }>();
  if (!row) return null;
  const recorded = JSON.parse(row.outcomes) as LedgerOutcome[] | LedgerRuns;
  const results: ContactResult[] = new Array(count);
  const outcomes = Array.isArray(recorded) ? recorded : recorded.others;
  if (!Array.isArray(recorded)) {
    for (const [i, id, n] of recorded.added) for (let k = 0; k < n; k++) results[i + k] = { result: "added", subscriberid: id + k };
  }
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
