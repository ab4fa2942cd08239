import { and, asc, eq, gt, lte, or, sql, type SQL } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { truncate } from "../api/envelope";
import { describeForLog, DomainError } from "../errors";
import { segments, type CustomFieldType, type Segment } from "../db/shard_schema";
import { countQuery, loadCustomFieldTypes, matchPredicate } from "../export/query";
import { segmentLabel, segmentRules } from "./rules";

/**
 * Stored segment counts. Counting a segment is a full scan of the account's subscribers, far too slow to do
 * on every GetSegments call at a million contacts; so each segment keeps its last count (contacts_count),
 * when it was made (counted_at, ms since the epoch, 0 = never) and, when its rules cannot run, why not
 * (count_error). The export worker's cron refreshes stale counts of every account within a time budget;
 * GetSegments recounts on demand whatever is still too old when it is asked.
 */

export type FieldTypes = ReadonlyMap<number, CustomFieldType>;

export interface SegmentCount {
  /** null when the rules cannot run. */
  contacts: number | null;
  /** ms since the epoch: the time the count was taken. */
  countedAt: number;
  /** Why the rules cannot run, or null. */
  error: string | null;
}

type CountableSegment = Pick<Segment, "id" | "accountId" | "name" | "rules">;

/**
 * Counts one segment as of `now` (ms since the epoch; "within the last N days" rules are measured from it)
 * and stores the result on the segment row. A segment whose rules cannot run is stored with a null count and
 * the reason: rules the compiler refuses (a DomainError, a statement over D1's parameter limit), or a count
 * D1 refuses to run (SQLITE_ERROR: see statementError). Any other error (D1 unreachable, overloaded) may pass
 * if tried again: it propagates and nothing is stored.
 *
 * The rules counted are the segment's as stored when the count begins (read again here, as text), and the
 * write is conditional on them: a count never replaces one taken later (two counts of the same segment may
 * race, one from the cron and one from GetSegments), and a count of rules that UpdateSegment replaced while
 * it ran is not stored (UpdateSegment resets the count; the old rules' count would look like a fresh one of
 * the new rules). Either way the count is returned to the caller, who asked about the segment as it was.
 */
export async function countSegment(
  db: DrizzleD1Database,
  segment: CountableSegment,
  fieldTypes: FieldTypes,
  now: number,
): Promise<SegmentCount> {
  // The stored text, not the caller's parsed copy: the write compares it, byte for byte, in SQL.
  const stored = await db
    .select({ rules: sql<string>`${segments.rules}` })
    .from(segments)
    .where(and(eq(segments.id, segment.id), eq(segments.accountId, segment.accountId)))
    .get();
  // Deleted meanwhile: the caller's rules are counted, and there is no row to store the count on.
  if (!stored) return takeCount(db, segment, segment.rules, fieldTypes, now);
  const result = await takeCount(db, segment, parseStoredRules(stored.rules), fieldTypes, now);
  await db
    .update(segments)
    .set({ contactsCount: result.contacts, countedAt: result.countedAt, countError: result.error })
    .where(
      and(
        eq(segments.id, segment.id),
        eq(segments.accountId, segment.accountId),
        lte(segments.countedAt, result.countedAt),
        // Compared as stored text, not through the column's JSON mapping (eq would stringify the text again).
        sql`${segments.rules} = ${stored.rules}`,
      ),
    );
  return result;
}

/** A rules column's text as a tree; text that is not JSON is left for segmentRules to refuse. */
function parseStoredRules(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function takeCount(
  db: DrizzleD1Database,
  segment: CountableSegment,
  rules: unknown,
  fieldTypes: FieldTypes,
  now: number,
): Promise<SegmentCount> {
  let query: SQL;
  try {
    const checked = segmentRules({ name: segment.name, rules });
    const predicate = matchPredicate([{ ...segment, rules: checked }], "any", new Date(now), fieldTypes);
    query = countQuery(segment.accountId, predicate);
  } catch (error) {
    // Rules that cannot run are the segment's state, not a failure of the caller.
    if (!(error instanceof DomainError)) throw error;
    return { contacts: null, countedAt: now, error: error.message };
  }
  try {
    const [[count] = [0]] = await db.values<[number]>(query);
    return { contacts: Number(count), countedAt: now, error: null };
  } catch (error) {
    // A query D1 refuses fails the same way every time: it is this segment's state, stored like rules that do
    // not compile, and it must not fail GetSegments for the whole account. Anything else is the caller's to retry.
    const problem = statementError(error);
    if (problem === undefined) throw error;
    console.error(`segment ${segment.id} of account ${segment.accountId}: D1 refused its count: ${describeForLog(error)}`);
    return {
      contacts: null,
      countedAt: now,
      error: `Segment ${segmentLabel(segment.name)} cannot be counted: D1 cannot run its query: ${problem}`,
    };
  }
}

/**
 * D1's reason when an error is about the statement itself, or undefined. D1 reports those as SQLITE_ERROR or
 * SQLITE_TOOBIG ("D1_ERROR: Expression tree is too large (maximum depth 100): SQLITE_ERROR", "malformed JSON",
 * "too many SQL variables"), as the cause of drizzle's "Failed query" error; they fail again on every try
 * until the rules (or the data they read) change, and the stored error is retried when it goes stale.
 * Failures of D1 itself ("Network connection lost", "D1 DB is overloaded", a reset or a timeout) carry no such
 * code, and may pass if tried again.
 */
function statementError(error: unknown): string | undefined {
  let cause: unknown = error;
  for (let depth = 0; depth < 5 && cause instanceof Error; depth++, cause = cause.cause) {
    // D1's own error, never drizzle's wrapper: that one holds the SQL and every bound value. The offset into
    // the SQL means nothing to a client.
    const reason = /^D1_ERROR: (.+?)(?: at offset \d+)?: SQLITE_(?:ERROR|TOOBIG)$/.exec(cause.message);
    if (reason) return truncate(reason[1]!, 200);
  }
  return undefined;
}

/** How many stale segments one query of the refresh loads. */
const REFRESH_BATCH = 25;

/**
 * For the export worker's every-minute cron: recounts the segments of every account whose count was taken at
 * or before `now - staleAfterMs` (never counted ones first, then the stalest), one at a time, until the
 * budget runs out. The clock is read between segments; a count that has started always finishes, so a run
 * can overshoot the budget by one count. Custom field types are loaded once per account.
 *
 * Each count is stamped with `now` plus the time elapsed on `clock` since the start (the real time, when
 * `now` is Date.now() and the clock the default), and is never older than `now`.
 *
 * Returns how many segments were counted, how many were stored with an error because their rules cannot
 * run, and whether stale segments were left for the next run because the budget ran out.
 *
 * `staleAfterMs` below 1 is taken as 1, so that a segment counted in this run is never stale again in it.
 */
export async function refreshStaleSegmentCounts(
  db: DrizzleD1Database,
  options: { now: number; staleAfterMs: number; budgetMs: number; clock?: () => number },
): Promise<{ counted: number; failed: number; remaining: boolean }> {
  const clock = options.clock ?? Date.now;
  const started = clock();
  const deadline = started + options.budgetMs;
  const threshold = options.now - Math.max(1, options.staleAfterMs);
  const fieldTypesByAccount = new Map<number, Promise<FieldTypes>>();
  const fieldTypesOf = (accountId: number) => {
    let types = fieldTypesByAccount.get(accountId);
    if (!types) {
      types = loadCustomFieldTypes(db, accountId);
      fieldTypesByAccount.set(accountId, types);
    }
    return types;
  };

  let counted = 0;
  let failed = 0;
  // Keyset over (counted_at, id) as they were when read, so that a batch never returns a segment twice.
  let after: { countedAt: number; id: number } | undefined;
  for (;;) {
    const batch = await db
      .select({
        id: segments.id,
        accountId: segments.accountId,
        name: segments.name,
        rules: segments.rules,
        countedAt: segments.countedAt,
      })
      .from(segments)
      .where(
        and(
          lte(segments.countedAt, threshold),
          after
            ? or(
                gt(segments.countedAt, after.countedAt),
                and(eq(segments.countedAt, after.countedAt), gt(segments.id, after.id)),
              )
            : undefined,
        ),
      )
      .orderBy(asc(segments.countedAt), asc(segments.id))
      .limit(REFRESH_BATCH);
    for (const segment of batch) {
      const time = clock();
      if (time >= deadline) return { counted, failed, remaining: true };
      const countedAt = Math.max(options.now, options.now + (time - started));
      const result = await countSegment(db, segment, await fieldTypesOf(segment.accountId), countedAt);
      if (result.error === null) counted++;
      else failed++;
      after = { countedAt: segment.countedAt, id: segment.id };
    }
    if (batch.length < REFRESH_BATCH) return { counted, failed, remaining: false };
  }
}
