/**
 * Adds and updates a list's subscribers, many at once, in one D1 batch (one transaction): the write path of
 * AddSubscriberToList, AddOrUpdateSubscribers and the bulk import. Each contact gets its own result (added,
 * updated, or rejected with a reason), so one bad contact never fails the others.
 *
 * Whole pages travel as one JSON parameter each (json_each): D1 binds at most 100 parameters per statement.
 */
import { sql } from "drizzle-orm";
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
 * missing), or the list's state ("exists", "missing": per ifExists / ifMissing).
 */
export type RejectionKind = "invalid" | "exists" | "missing";

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
  /** The contact's own index; `merged` are those of later contacts of the call with the same email. */
  index: number;
  email: string;
  status: SubscriberStatus | null;
  date: string | null;
  fields: Record<string, StoredValue>;
  tags: number[];
  merged: number[];
}


/*
 * One transaction decides and writes. A batch updates the list's subscribers with the contacts' emails, inserts
 * the others, tags them, and reads back what became of each contact, in one D1 batch: nothing can change between
 * deciding and writing, and it costs one round trip. Each contact is planned both ways beforehand (as an update,
 * and as a new subscriber with its fields' defaults, its required fields checked and an id of its own); the
 * reasons of every possible rejection are written out too, so that the outcomes can be read in SQL.
 *
 * Query plans: every statement starts from the batch's JSON rows and reaches subscribers by the (list_id, email)
 * index; unary "+" and CROSS JOIN keep SQLite from starting from subscribers instead (which made a batch cost grow
 * with the list). test/contacts/write_plans.test.ts checks them with EXPLAIN QUERY PLAN.
 */

/*
 * Each statement gets the rows it reads, as arrays (SQLite reads an array's element by position, without a key
 * search), and nothing more: every statement parses all of its JSON.
 *   update:   [email, status, date, fields to patch]
 *   insert:   [new id, email, status, date, fields]          (the contacts that may be new)
 *   tag:      [email, new id, updatable (1/0), tag ids]       (the contacts with tags)
 *   outcomes: [email, new id, row indexes, if absent, if present]
 */

/**
 * Each row's outcome as JSON, [{i, r, id, kind, reason}], from the plan (?1) and the list (?2) as the writes left
 * them: no subscriber with the email means the contact's rejection "if absent"; the planned new id means added
 * (and the contact's merged duplicates updated); another id means updated, or the rejection "if present".
 */
const OUTCOMES = `json_group_array(json_object(
    'i', x.value,
    'r', CASE WHEN s.id IS NULL THEN 'rejected'
              WHEN s.id = p.value ->> 1 THEN CASE WHEN x.key = 0 THEN 'added' ELSE 'updated' END
              WHEN p.value ->> 4 IS NULL THEN 'updated'
              ELSE 'rejected' END,
    'id', CASE WHEN s.id = p.value ->> 1 OR p.value ->> 4 IS NULL THEN s.id END,
    'kind', CASE WHEN s.id IS NULL THEN coalesce(p.value -> 3 ->> 0, 'invalid')
                 WHEN s.id = p.value ->> 1 OR p.value ->> 4 IS NULL THEN NULL
                 ELSE p.value -> 4 ->> 0 END,
    'reason', CASE WHEN s.id IS NULL THEN coalesce(p.value -> 3 ->> 1, 'could not be written')
                   WHEN s.id = p.value ->> 1 OR p.value ->> 4 IS NULL THEN NULL
                   ELSE (p.value -> 4 ->> 1) || s.id || (p.value -> 4 ->> 2) END))`;
const OUTCOMES_FROM = `FROM json_each(?1) p CROSS JOIN json_each(p.value -> 2) x
  LEFT JOIN subscribers s ON s.list_id = ?2 AND s.email = p.value ->> 0`;

/**
 * The batch's statements, in their order. Each binds its rows as ?1 and the list as ?2; then the account (?3),
 * and for the insert the default subscribe date (?4); recordOutcomes binds (?3..?6) the ledger row's id, the
 * account, the job and the batch's first row.
 */
export const WRITE_SQL = {
  // Fields are patched (a null value clears one); status and date change only when given. (The contacts are
  // matched to their subscribers' ids first, in a materialized CTE whose CROSS JOIN fixes its order: joined
  // directly, UPDATE … FROM reads the list by its status index and each contact once per subscriber.)
  update: `WITH m AS MATERIALIZED (
      SELECT s.id, p.value FROM json_each(?1) p CROSS JOIN subscribers s WHERE s.list_id = ?2 AND s.email = p.value ->> 0)
    UPDATE subscribers SET
      status = coalesce(m.value ->> 1, subscribers.status),
      subscribe_date = coalesce(m.value ->> 2, subscribers.subscribe_date),
      custom_fields = json_patch(subscribers.custom_fields, m.value -> 3)
    FROM m WHERE subscribers.id = m.id AND +subscribers.account_id = ?3`,
  insert: `INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields)
    SELECT p.value ->> 0, ?3, ?2, p.value ->> 1, coalesce(p.value ->> 2, 'active'), coalesce(p.value ->> 3, ?4), p.value -> 4
    FROM json_each(?1) p WHERE true
    ON CONFLICT (list_id, email) DO NOTHING`,
  // Tags are added (never removed here) to the contacts written: updated ones, or those this batch added. A tag
  // deleted since it was looked up is left out (it would fail the batch on the foreign key).
  tag: `INSERT OR IGNORE INTO subscriber_tags (subscriber_id, tag_id)
    SELECT s.id, t.value
    FROM json_each(?1) p CROSS JOIN subscribers s CROSS JOIN json_each(p.value -> 3) t
    WHERE s.list_id = ?2 AND s.email = p.value ->> 0 AND (s.id = p.value ->> 1 OR p.value ->> 2)
      AND EXISTS (SELECT 1 FROM tags g WHERE g.id = t.value AND +g.account_id = ?3)`,
  outcomes: `SELECT ${OUTCOMES} AS outcomes ${OUTCOMES_FROM}`,
  recordOutcomes: `INSERT INTO import_batches (id, account_id, job_id, first_row, outcomes)
    SELECT ?3, ?4, ?5, ?6, ${OUTCOMES} ${OUTCOMES_FROM} RETURNING outcomes`,
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
  const fields = fieldLookup(options.fields ?? (await loadAccountFields(shard.db, accountId)));
  const tags = await loadNamedTags(shard.db, accountId, contacts.flatMap((c) => c.tags), options.knownTags);

  // Resolve each contact; a later one with the same email is merged into the first (or rejected). A contact
  // that cannot be written is planned as a rejection whatever the list holds.
  const outcomeRows: unknown[][] = [];
  const rejectAlways = (index: number, kind: RejectionKind, reason: string) => outcomeRows.push([null, null, [index], [kind, reason], null]);
  const byEmail = new Map<string, Resolved>();
  for (const [index, contact] of contacts.entries()) {
    const path = options.pathOf(index);
    const values = resolveFieldValues(contact.fields, fields, `${path}.customfield`);
    if (!values.ok) {
      rejectAlways(index, "invalid", values.reason);
      continue;
    }
    const tagIds = resolveTagIds(contact.tags, tags, `${path}.tag`);
    if (!tagIds.ok) {
      rejectAlways(index, "invalid", tagIds.reason);
      continue;
    }
    const earlier = byEmail.get(contact.email);
    if (earlier) {
      if (options.ifExists === "reject") {
        rejectAlways(index, "exists", `${path}.email: ${quote(contact.email)} is already ${options.pathOf(earlier.index)} of this call`);
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

  // Ids for the contacts that may be new. Those that turn out to be in the list leave theirs unused: ids are
  // unique, not dense.
  const adding = options.ifMissing === "add";
  const updating = options.ifExists === "update";
  let nextId = adding && byEmail.size > 0 ? await (options.subscriberIds ?? idsFromControl(env.DB, "subscribers")).take(byEmail.size) : 0;
  const updateRows: unknown[][] = [];
  const insertRows: unknown[][] = [];
  const tagRows: unknown[][] = [];
  for (const contact of byEmail.values()) {
    const path = options.pathOf(contact.index);
    let newId: number | null = null;
    // Why the contact is not in the list after the writes, if it is not (null: it is, having been added).
    let ifAbsent: [RejectionKind, string] | null = ["missing", `${path}.email: ${quote(contact.email)} is not in list ${listId}`];
    if (adding) {
      // As a new subscriber: its fields' defaults fill in what it lacks, and required fields must then have a
      // value. Its nulls are left out: it has no value there.
      const newFields: Record<string, StoredValue> = {};
      for (const field of fields.all) {
        const key = String(field.id);
        const value = key in contact.fields ? contact.fields[key]! : defaultOf(field);
        if (value !== null) newFields[key] = value;
      }
      const missing = fields.all.find((field) => field.required && newFields[String(field.id)] === undefined);
      if (missing) {
        ifAbsent = ["invalid", `${path}.customfield: ${quote(missing.name)} is required`];
      } else {
        newId = nextId++;
        ifAbsent = null;
        insertRows.push([newId, contact.email, contact.status, contact.date, newFields]);
      }
    }
    if (updating) updateRows.push([contact.email, contact.status, contact.date, contact.fields]);
    if (contact.tags.length > 0) tagRows.push([contact.email, newId, updating ? 1 : 0, contact.tags]);
    const ifPresent = updating ? null : ["exists", `${path}.email: ${quote(contact.email)} is already in list ${listId} (subscriber id `, ")"];
    outcomeRows.push([contact.email, newId, [contact.index, ...contact.merged], ifAbsent, ifPresent]);
  }

  const { d1 } = shard;
  const outcomesJson = JSON.stringify(outcomeRows);
  const statements = [
    ...(updateRows.length > 0 ? [d1.prepare(WRITE_SQL.update).bind(JSON.stringify(updateRows), listId, accountId)] : []),
    ...(insertRows.length > 0 ? [d1.prepare(WRITE_SQL.insert).bind(JSON.stringify(insertRows), listId, accountId, options.now)] : []),
    ...(tagRows.length > 0 ? [d1.prepare(WRITE_SQL.tag).bind(JSON.stringify(tagRows), listId, accountId)] : []),
    options.ledger
      ? d1
          .prepare(WRITE_SQL.recordOutcomes)
          .bind(outcomesJson, listId, await options.ledger.ids.take(1), accountId, options.ledger.jobId, options.ledger.firstRow)
      : d1.prepare(WRITE_SQL.outcomes).bind(outcomesJson, listId),
  ];
  const answers = await d1.batch<{ outcomes: string }>(statements);
  return resultsOf(answers[answers.length - 1]!.results[0]!.outcomes, contacts.length);
}

/** One row's outcome as the batch reads it (and the ledger keeps it). */
interface Outcome {
  i: number;
  r: "added" | "updated" | "rejected";
  id: number | null;
  kind: RejectionKind | null;
  reason: string | null;
}

/** The results of a batch's `count` contacts, in order, from its outcomes. */
function resultsOf(outcomesJson: string, count: number): ContactResult[] {
  const results: ContactResult[] = new Array(count);
  for (const o of JSON.parse(outcomesJson) as Outcome[]) {
    results[Number(o.i)] =
      o.r === "rejected" ? { result: "rejected", kind: o.kind ?? "invalid", reason: o.reason ?? "rejected" } : { result: o.r, subscriberid: Number(o.id) };
  }
  return results;
}

/** A batch's outcomes as the ledger recorded them, in order; null if the batch was never written. */
export async function recordedOutcomes(shard: Shard, jobId: string, firstRow: number, count: number): Promise<ContactResult[] | null> {
  const row = await shard.d1
    .prepare(`SELECT outcomes FROM import_batches WHERE job_id = ?1 AND first_row = ?2`)
    .bind(jobId, firstRow)
    .first<{ outcomes: string }>();
  return row ? resultsOf(row.outcomes, count) : null;
}

/** Forgets a finished import's ledger (best effort: it only ever answers for that import's own batches). */
export async function forgetLedger(shard: Shard, jobId: string): Promise<void> {
  await shard.d1.prepare(`DELETE FROM import_batches WHERE job_id = ?1`).bind(jobId).run();
}
