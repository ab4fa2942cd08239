/**
 * Stored segment counts (src/segments/counts.ts): counting one segment and storing the result, and the cron's
 * refresh of stale counts across accounts, stalest first, within a time budget.
 *
 * The refresh tests run on a small made-up timeline (counted_at values of a few hundred ms since the epoch),
 * after first counting every segment already in the database for real, so that only the segments a test
 * sets up are stale on that timeline.
 */
import { env } from "cloudflare:workers";
import { eq, inArray, sql, type SQL } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { segments, subscribers } from "../../src/db/shard_schema";
import { countSegment, refreshStaleSegmentCounts } from "../../src/segments/counts";
import type { RuleGroup } from "../../src/segments/rules";
import { addSubscriber, callApi, createAccount, createField, createList, createSegment, dataOf, request, storedCount } from "../fixtures";

const everyone: RuleGroup = { match: "all", rules: [] };
const BROKEN: RuleGroup = { match: "all", rules: [{ field: "customfield", fieldid: 999_999, operator: "equals", value: "x" }] };


/**
 * Counting works on one shard at a time (the sweeper runs it on every shard: test/export/sweeper.test.ts), so
 * this file's accounts all live on SHARD_0.
 */
const data = () => drizzle(env.SHARD_0);

afterEach(() => {
  vi.restoreAllMocks();
});

const segmentRow = (id: number) =>
  data()
    .select()
    .from(segments)
    .where(eq(segments.id, id))
    .get()
    .then((r) => r!);

const setCountedAt = (id: number, countedAt: number) =>
  data().update(segments).set({ countedAt }).where(eq(segments.id, id));

/** An account with one list and `n` active subscribers. */
async function accountWith(n: number) {
  const account = await createAccount(undefined, { shard: "SHARD_0" });
  const list = await createList(account.id);
  for (let i = 0; i < n; i++) await addSubscriber(account.id, list, { email: `p${i}@example.com` });
  return { ...account, list };
}

/**
 * A database handle whose count queries (`values`, as countSegment runs them) call `before` first, then run, or
 * fail with what `before` throws. Everything else goes to D1 as usual.
 */
function interceptCounts(before: () => unknown): DrizzleD1Database {
  const real = data();
  return new Proxy(real, {
    get: (target, key, receiver) =>
      key === "values"
        ? async (query: SQL) => {
            await before();
            return real.values(query);
          }
        : Reflect.get(target, key, receiver),
  }) as DrizzleD1Database;
}

/** The error D1 (through drizzle) throws for a statement it refuses, caught from a real one. */
async function refusedStatementError(): Promise<unknown> {
  try {
    await data().values(sql`SELECT no_such_column FROM subscribers`);
  } catch (error) {
    return error;
  }
  throw new Error("expected D1 to refuse the statement");
}

/** A segment of an account whose one subscriber has custom fields that are not JSON: D1 refuses to read them. */
async function unreadableFieldsAccount() {
  const a = await accountWith(1);
  const field = await createField(a.id, "Company", "text");
  await data().update(subscribers).set({ customFields: sql`'{not json'` }).where(eq(subscribers.accountId, a.id));
  // Other tests scan this shard too.
  onTestFinished(() => data().update(subscribers).set({ customFields: {} }).where(eq(subscribers.accountId, a.id)).then(() => undefined));
  const rules: RuleGroup = { match: "all", rules: [{ field: "customfield", fieldid: field, operator: "equals", value: "Acme" }] };
  return { ...a, field, rules };
}

const MALFORMED = 'Segment "Unreadable" cannot be counted: D1 cannot run its query: malformed JSON';

/** A clock that moves 10 ms forward each time it is read. */
function steppingClock() {
  let t = 1_000_000;
  const clock = () => (t += 10);
  return clock;
}

describe("countSegment", () => {
  it("counts a segment and stores the count, its time and no error", async () => {
    const a = await accountWith(3);
    const id = await createSegment(a.id, everyone);
    const result = await countSegment(data(), await segmentRow(id), new Map(), 5_000);
    expect(result).toEqual({ contacts: 3, countedAt: 5_000, error: null });
    expect(await storedCount(id)).toEqual({ contacts: 3, countedAt: 5_000, error: null });
  });

  it("measures 'within the last N days' from the count time", async () => {
    const a = await createAccount();
    const list = await createList(a.id);
    await addSubscriber(a.id, list, { email: "jan@example.com", subscribeDate: "2025-01-15T10:00:00Z" });
    const id = await createSegment(a.id, {
      match: "all",
      rules: [{ field: "subscribedate", operator: "within_last_days", value: 30 }],
    });
    const feb = Date.parse("2025-02-01T00:00:00Z");
    const jun = Date.parse("2025-06-01T00:00:00Z");
    expect((await countSegment(data(), await segmentRow(id), new Map(), feb)).contacts).toBe(1);
    expect((await countSegment(data(), await segmentRow(id), new Map(), jun)).contacts).toBe(0);
    expect(await storedCount(id)).toEqual({ contacts: 0, countedAt: jun, error: null });
  });

  it("stores a segment whose rules cannot compile with a null count and the compiler's message", async () => {
    const a = await accountWith(2);
    const id = await createSegment(a.id, BROKEN, "Broken");
    await data().update(segments).set({ contactsCount: 7, countedAt: 1 }).where(eq(segments.id, id));
    const message = 'Segment "Broken" rules[0]: custom field 999999 does not exist in this account';
    expect(await countSegment(data(), await segmentRow(id), new Map(), 5_000)).toEqual({
      contacts: null,
      countedAt: 5_000,
      error: message,
    });
    expect(await storedCount(id)).toEqual({ contacts: null, countedAt: 5_000, error: message });
  });

  it("clears a stored error once the rules run", async () => {
    const a = await accountWith(2);
    const id = await createSegment(a.id, everyone);
    await data().update(segments).set({ countError: "old", countedAt: 1 }).where(eq(segments.id, id));
    await countSegment(data(), await segmentRow(id), new Map(), 5_000);
    expect(await storedCount(id)).toEqual({ contacts: 2, countedAt: 5_000, error: null });
  });

  it("never replaces a count taken later", async () => {
    const a = await accountWith(2);
    const id = await createSegment(a.id, everyone);
    await data().update(segments).set({ contactsCount: 99, countedAt: 9_000 }).where(eq(segments.id, id));
    await countSegment(data(), await segmentRow(id), new Map(), 5_000);
    expect(await storedCount(id)).toEqual({ contacts: 99, countedAt: 9_000, error: null });
  });

  it("stores a count D1 refuses (SQLITE_ERROR) as the segment's count error, and logs it", async () => {
    const a = await accountWith(2);
    const id = await createSegment(a.id, everyone, "Refused");
    await data().update(segments).set({ contactsCount: 7, countedAt: 1 }).where(eq(segments.id, id));
    const refused = await refusedStatementError();
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const result = await countSegment(interceptCounts(() => Promise.reject(refused)), await segmentRow(id), new Map(), 5_000);
    const message = 'Segment "Refused" cannot be counted: D1 cannot run its query: no such column: no_such_column';
    expect(result).toEqual({ contacts: null, countedAt: 5_000, error: message });
    expect(await storedCount(id)).toEqual({ contacts: null, countedAt: 5_000, error: message });
    // Logged with D1's reason, never the SQL text or its bound values.
    expect(logged).toHaveBeenCalledOnce();
    expect(String(logged.mock.calls[0]![0])).toMatch(new RegExp(`^segment ${id} of account ${a.id}: D1 refused its count: D1 query failed: .*no such column`));
    expect(String(logged.mock.calls[0]![0])).not.toMatch(/SELECT/);
  });

  it("stores the error of a count D1 cannot run on the account's data, and counts again once it can", async () => {
    const a = await unreadableFieldsAccount();
    const id = await createSegment(a.id, a.rules, "Unreadable");
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    expect(await countSegment(data(), await segmentRow(id), new Map([[a.field, "text"]]), 5_000)).toEqual({
      contacts: null,
      countedAt: 5_000,
      error: MALFORMED,
    });
    await data().update(subscribers).set({ customFields: { [a.field]: "Acme" } }).where(eq(subscribers.accountId, a.id));
    await countSegment(data(), await segmentRow(id), new Map([[a.field, "text"]]), 6_000);
    expect(await storedCount(id)).toEqual({ contacts: 1, countedAt: 6_000, error: null });
  });

  it("lets a failure of D1 itself through (it may pass if tried again) and stores nothing", async () => {
    const a = await accountWith(2);
    const id = await createSegment(a.id, everyone);
    const unavailable = new Error("Failed query: SELECT count(*) …", { cause: new Error("D1_ERROR: Network connection lost.") });
    await expect(countSegment(interceptCounts(() => Promise.reject(unavailable)), await segmentRow(id), new Map(), 5_000)).rejects.toBe(
      unavailable,
    );
    expect(await storedCount(id)).toEqual({ contacts: null, countedAt: 0, error: null });
  });

  it("lets any other error through and stores nothing", async () => {
    const a = await accountWith(2);
    const id = await createSegment(a.id, everyone);
    const failing = new Proxy(data(), {
      get: (target, key, receiver) =>
        key === "values" ? () => Promise.reject(new Error("D1 is down")) : Reflect.get(target, key, receiver),
    }) as DrizzleD1Database;
    await expect(countSegment(failing, await segmentRow(id), new Map(), 5_000)).rejects.toThrow("D1 is down");
    expect(await storedCount(id)).toEqual({ contacts: null, countedAt: 0, error: null });
  });
});

describe("countSegment racing UpdateSegment", () => {
  const twoOfThree: RuleGroup = {
    match: "any",
    rules: [
      { field: "email", operator: "equals", value: "p0@example.com" },
      { field: "email", operator: "equals", value: "p1@example.com" },
    ],
  };
  const updateSegment = (a: Awaited<ReturnType<typeof accountWith>>, details: Record<string, unknown>) =>
    callApi(request(a, "Segments", "UpdateSegment", details)).then(dataOf);

  it("does not store a count of the old rules that finishes after UpdateSegment replaced them", async () => {
    const a = await accountWith(3);
    const id = await createSegment(a.id, everyone);
    const before = await segmentRow(id);
    // The count of the old rules (everyone: 3) is under way when UpdateSegment stores new ones and resets the count.
    const racing = interceptCounts(() => updateSegment(a, { segmentid: id, rules: twoOfThree }));
    expect(await countSegment(racing, before, new Map(), Date.now())).toEqual(expect.objectContaining({ contacts: 3, error: null }));
    expect(await storedCount(id)).toEqual({ contacts: null, countedAt: 0, error: null });
    // The next count is of the new rules, and is stored.
    expect((await countSegment(data(), await segmentRow(id), new Map(), Date.now())).contacts).toBe(2);
    expect((await storedCount(id)).contacts).toBe(2);
  });

  it("counts the rules as stored when it begins, not the caller's older copy of the segment", async () => {
    const a = await accountWith(3);
    const id = await createSegment(a.id, everyone);
    const old = await segmentRow(id);
    await updateSegment(a, { segmentid: id, rules: twoOfThree });
    expect(await countSegment(data(), old, new Map(), 5_000)).toEqual({ contacts: 2, countedAt: 5_000, error: null });
    expect(await storedCount(id)).toEqual({ contacts: 2, countedAt: 5_000, error: null });
  });

  it("stores a count when only the name changed meanwhile", async () => {
    const a = await accountWith(3);
    const id = await createSegment(a.id, everyone);
    const renaming = interceptCounts(() => updateSegment(a, { segmentid: id, name: `Renamed ${id}` }));
    await countSegment(renaming, await segmentRow(id), new Map(), 5_000);
    expect(await storedCount(id)).toEqual({ contacts: 3, countedAt: 5_000, error: null });
  });

  it("stores the count of rules stored in any JSON spelling", async () => {
    const a = await accountWith(3);
    const id = await createSegment(a.id, everyone);
    await data().run(sql`UPDATE segments SET rules = ${'{ "match" : "all",\n  "rules" : [ ] }'} WHERE id = ${id}`);
    await countSegment(data(), await segmentRow(id), new Map(), 5_000);
    expect(await storedCount(id)).toEqual({ contacts: 3, countedAt: 5_000, error: null });
  });

  it("still counts (but cannot store) a segment deleted before the count began", async () => {
    const a = await accountWith(3);
    const id = await createSegment(a.id, everyone);
    const row = await segmentRow(id);
    await data().delete(segments).where(eq(segments.id, id));
    expect(await countSegment(data(), row, new Map(), 5_000)).toEqual({ contacts: 3, countedAt: 5_000, error: null });
  });
});

describe("GetSegments when D1 refuses one segment's count", () => {
  it("answers every segment: the refused one with its error, the others counted", async () => {
    const a = await unreadableFieldsAccount();
    const refused = await createSegment(a.id, a.rules, "Unreadable");
    const fine = await createSegment(a.id, everyone, "Everyone");
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await callApi<Array<{ segmentid: string; contacts: number | null; errormessage?: string }>>(
      request(a, "Segments", "GetSegments"),
    );
    expect(response.status).toBe(200);
    expect(dataOf(response).map(({ segmentid, contacts, errormessage }) => ({ segmentid, contacts, errormessage }))).toEqual([
      { segmentid: String(refused), contacts: null, errormessage: MALFORMED },
      { segmentid: String(fine), contacts: 1, errormessage: undefined },
    ]);
    expect(await storedCount(refused)).toMatchObject({ contacts: null, error: MALFORMED });
  });
});

describe("refreshStaleSegmentCounts", () => {
  /** The made-up timeline's present; every segment the tests set up was counted before it. */
  const NOW = 1_000;

  beforeEach(async () => {
    // Count every segment already stored (from other tests) for real, so that none is stale on the timeline.
    await refreshStaleSegmentCounts(data(), { now: Date.now(), staleAfterMs: Date.now() - 100_000, budgetMs: 600_000 });
  });

  it("recounts only the stale segments, of every account, stalest first", async () => {
    const a = await accountWith(2);
    const b = await accountWith(3);
    const a1 = await createSegment(a.id, everyone);
    const a2 = await createSegment(a.id, everyone);
    const b1 = await createSegment(b.id, everyone);
    const b2 = await createSegment(b.id, everyone);
    // Stalest first: b1 (100), a2 (200), a1 (300); b2 (900) is fresh.
    await setCountedAt(b1, 100);
    await setCountedAt(a2, 200);
    await setCountedAt(a1, 300);
    await setCountedAt(b2, 900);

    const result = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 1_000, clock: steppingClock() });
    expect(result).toEqual({ counted: 3, failed: 0, remaining: false });
    const [sa1, sa2, sb1, sb2] = await Promise.all([a1, a2, b1, b2].map(storedCount));
    expect(sb2).toEqual({ contacts: null, countedAt: 900, error: null });
    // Counts are stamped with the time they were taken, so the stamps show the order.
    expect(sb1).toEqual({ contacts: 3, countedAt: NOW + 10, error: null });
    expect(sa2).toEqual({ contacts: 2, countedAt: NOW + 20, error: null });
    expect(sa1).toEqual({ contacts: 2, countedAt: NOW + 30, error: null });
  });

  it("counts a never-counted segment before any stale one", async () => {
    const a = await accountWith(1);
    const stale = await createSegment(a.id, everyone);
    await setCountedAt(stale, 100);
    const never = await createSegment(a.id, everyone);
    const result = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 15, clock: steppingClock() });
    expect(result).toEqual({ counted: 1, failed: 0, remaining: true });
    expect(await storedCount(never)).toEqual({ contacts: 1, countedAt: NOW + 10, error: null });
    expect(await storedCount(stale)).toEqual({ contacts: null, countedAt: 100, error: null });
  });

  it("stops when the budget runs out, reports that some are left, and the next run takes them up", async () => {
    const a = await accountWith(1);
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await createSegment(a.id, everyone);
      await setCountedAt(id, 100 + i);
      ids.push(id);
    }
    // The clock is read once at the start and once before each segment, 10 ms apart: a 25 ms budget fits two.
    const first = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 25, clock: steppingClock() });
    expect(first).toEqual({ counted: 2, failed: 0, remaining: true });
    expect((await Promise.all(ids.map(storedCount))).map((c) => c.contacts)).toEqual([1, 1, null, null, null]);

    const second = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 25, clock: steppingClock() });
    expect(second).toEqual({ counted: 2, failed: 0, remaining: true });
    const third = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 25, clock: steppingClock() });
    expect(third).toEqual({ counted: 1, failed: 0, remaining: false });
    expect((await Promise.all(ids.map(storedCount))).map((c) => c.contacts)).toEqual([1, 1, 1, 1, 1]);

    const nothingLeft = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 25, clock: steppingClock() });
    expect(nothingLeft).toEqual({ counted: 0, failed: 0, remaining: false });
  });

  it("counts nothing with no budget, and says stale segments remain", async () => {
    const a = await accountWith(1);
    const id = await createSegment(a.id, everyone);
    await setCountedAt(id, 100);
    const result = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 0, clock: steppingClock() });
    expect(result).toEqual({ counted: 0, failed: 0, remaining: true });
    expect(await storedCount(id)).toEqual({ contacts: null, countedAt: 100, error: null });
  });

  it("stores a segment whose rules cannot compile with its error and goes on counting the others", async () => {
    const a = await accountWith(2);
    const before = await createSegment(a.id, everyone);
    const broken = await createSegment(a.id, BROKEN, "Broken");
    const after = await createSegment(a.id, everyone);
    await setCountedAt(before, 100);
    await setCountedAt(broken, 200);
    await setCountedAt(after, 300);
    const result = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 1_000, clock: steppingClock() });
    expect(result).toEqual({ counted: 2, failed: 1, remaining: false });
    expect(await storedCount(before)).toMatchObject({ contacts: 2, error: null });
    expect(await storedCount(broken)).toMatchObject({
      contacts: null,
      error: 'Segment "Broken" rules[0]: custom field 999999 does not exist in this account',
    });
    expect(await storedCount(after)).toMatchObject({ contacts: 2, error: null });
  });

  it("stores a count D1 refuses with its error and goes on counting the others", async () => {
    const a = await unreadableFieldsAccount();
    const refused = await createSegment(a.id, a.rules, "Unreadable");
    const after = await createSegment(a.id, everyone);
    await setCountedAt(refused, 100);
    await setCountedAt(after, 200);
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const result = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 500, budgetMs: 1_000, clock: steppingClock() });
    expect(result).toEqual({ counted: 1, failed: 1, remaining: false });
    expect(await storedCount(refused)).toMatchObject({ contacts: null, error: MALFORMED });
    expect(await storedCount(after)).toMatchObject({ contacts: 1, error: null });
  });

  it("uses each account's own custom fields, loaded once per account", async () => {
    const a = await accountWith(0);
    const b = await accountWith(0);
    const aCompany = await createField(a.id, "Company", "text");
    const bCompany = await createField(b.id, "Company", "text");
    await addSubscriber(a.id, a.list, { email: "x@acme.test", fields: { [aCompany]: "Acme" } });
    await addSubscriber(b.id, b.list, { email: "y@acme.test", fields: { [bCompany]: "Acme" } });
    await addSubscriber(b.id, b.list, { email: "z@acme.test", fields: { [bCompany]: "Acme" } });
    const acme = (field: number): RuleGroup => ({
      match: "all",
      rules: [{ field: "customfield", fieldid: field, operator: "equals", value: "Acme" }],
    });
    const ids = [
      await createSegment(a.id, acme(aCompany)),
      await createSegment(b.id, acme(bCompany)),
      await createSegment(a.id, acme(aCompany)),
      await createSegment(b.id, acme(bCompany)),
      // Another account's field is not this account's: refused, as in GetSegments.
      await createSegment(a.id, acme(bCompany), "Borrowed"),
    ];
    for (const [i, id] of ids.entries()) await setCountedAt(id, 100 + i);

    // A database handle that records the custom field lookups.
    const lookups: unknown[][] = [];
    const logged = drizzle(env.SHARD_0, {
      logger: { logQuery: (query, params) => void (/from "custom_fields"/.test(query) && lookups.push(params)) },
    });
    const result = await refreshStaleSegmentCounts(logged, { now: NOW, staleAfterMs: 500, budgetMs: 1_000, clock: steppingClock() });
    expect(result).toEqual({ counted: 4, failed: 1, remaining: false });
    expect((await Promise.all(ids.map(storedCount))).map((c) => c.contacts)).toEqual([1, 2, 1, 2, null]);
    expect(lookups).toEqual([[a.id], [b.id]]);
  });

  it("goes through more stale segments than one batch holds, each exactly once, even with staleAfterMs 0", async () => {
    const a = await accountWith(1);
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) ids.push(await createSegment(a.id, everyone));
    await data().update(segments).set({ countedAt: 100 }).where(inArray(segments.id, ids));
    const result = await refreshStaleSegmentCounts(data(), { now: NOW, staleAfterMs: 0, budgetMs: 10_000, clock: steppingClock() });
    expect(result).toEqual({ counted: 60, failed: 0, remaining: false });
    const counts = await Promise.all(ids.map(storedCount));
    expect(counts.every((c) => c.contacts === 1 && c.countedAt > NOW)).toBe(true);
    // Stamped in id order (all were equally stale), 10 ms apart.
    expect(counts.map((c) => c.countedAt)).toEqual(ids.map((_, i) => NOW + 10 * (i + 1)));
  });
});
