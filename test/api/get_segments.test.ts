/**
 * Segments / GetSegments answers from the counts stored on each segment: a count younger than
 * SEGMENT_COUNT_MAX_AGE_SECONDS is returned as stored, without scanning subscribers; an older or missing one is
 * recounted during the call and stored. "Now" is controlled by writing counted_at directly.
 */
import { env } from "cloudflare:workers";
import type { RuleGroup } from "../../src/segments/rules";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { addSubscriber, callApi, createAccount, createSegment, dataOf, request, seedScenario, segmentRow, storedCount, updateSegmentRow } from "../fixtures";
import { membersOf, type Scenario } from "./helpers";

interface SegmentRow {
  segmentid: string;
  segmentname: string;
  ownerid: string;
  createdate: string;
  contacts: number | null;
  counted_at: string | null;
  errormessage?: string;
}

const getSegments = async (account: Scenario["account"]) =>
  dataOf<SegmentRow[]>(await callApi(request(account, "Segments", "GetSegments")));

const MAX_AGE_MS = loadConfig(env).SEGMENT_COUNT_MAX_AGE_SECONDS * 1000;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;


/** Makes a segment's stored count look `ageMs` old. */
const ageCount = (id: number, ageMs: number) =>
  updateSegmentRow(id, { countedAt: Date.now() - ageMs });

const rowOf = (rows: SegmentRow[], id: number) => rows.find((r) => r.segmentid === String(id))!;

let s: Scenario;
let other: Scenario;
beforeAll(async () => {
  s = await seedScenario();
  other = await seedScenario();
});

describe("Segments / GetSegments: the items", () => {
  it("lists the account's segments by id, each with id (a string), name, owner, create date, count and count time", async () => {
    const before = Date.now();
    const rows = await getSegments(s.account);
    const after = Date.now();
    const createdate = (id: number) => segmentRow(id).then((r) => r!.createdAt);
    expect(rows).toEqual([
      {
        segmentid: String(s.segments.customers),
        segmentname: "Customers",
        ownerid: s.account.username,
        createdate: await createdate(s.segments.customers),
        contacts: membersOf(s, ["customers"]).length,
        counted_at: expect.stringMatching(ISO_MS),
      },
      {
        segmentid: String(s.segments.vip),
        segmentname: "VIPs",
        ownerid: s.account.username,
        createdate: await createdate(s.segments.vip),
        contacts: membersOf(s, ["vip"]).length,
        counted_at: expect.stringMatching(ISO_MS),
      },
      {
        segmentid: String(s.segments.acme),
        segmentname: "Acme",
        ownerid: s.account.username,
        createdate: await createdate(s.segments.acme),
        contacts: membersOf(s, ["acme"]).length,
        counted_at: expect.stringMatching(ISO_MS),
      },
    ]);
    for (const row of rows) {
      expect(row.createdate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      // counted_at is the stored count's time, in ISO 8601 UTC with milliseconds.
      const countedAt = Date.parse(row.counted_at!);
      expect(countedAt).toBeGreaterThanOrEqual(before - MAX_AGE_MS);
      expect(countedAt).toBeLessThanOrEqual(after);
      expect(countedAt).toBe((await storedCount(Number(row.segmentid))).countedAt);
    }
  });

  it("counts contacts of every status, as the seeded data says (8 customers, 12 VIPs, 12 at Acme)", async () => {
    const rows = await getSegments(s.account);
    expect(rows.map((r) => r.contacts)).toEqual([8, 12, 12]);
  });

  it("answers an account without segments with an empty list", async () => {
    expect(await getSegments(await createAccount())).toEqual([]);
  });
});

describe("Segments / GetSegments: stored counts", () => {
  it("counts a never-counted segment on the first call and stores the count and its time", async () => {
    const fresh = await seedScenario();
    expect(await storedCount(fresh.segments.customers)).toEqual({ contacts: null, countedAt: 0, error: null });
    const before = Date.now();
    const row = rowOf(await getSegments(fresh.account), fresh.segments.customers);
    const after = Date.now();
    const saved = await storedCount(fresh.segments.customers);
    expect(saved).toEqual({ contacts: 8, countedAt: expect.any(Number), error: null });
    expect(saved.countedAt).toBeGreaterThanOrEqual(before);
    expect(saved.countedAt).toBeLessThanOrEqual(after);
    expect(row).toMatchObject({ contacts: 8, counted_at: new Date(saved.countedAt).toISOString() });
  });

  it("returns a fresh stored count as is, without counting again", async () => {
    const fresh = await seedScenario();
    await getSegments(fresh.account);
    // A count written by hand, well inside the age limit: GetSegments must not scan the subscribers.
    const countedAt = Date.now() - Math.floor(MAX_AGE_MS / 2);
    await updateSegmentRow(fresh.segments.vip, { contactsCount: 12345, countedAt });
    const row = rowOf(await getSegments(fresh.account), fresh.segments.vip);
    expect(row).toMatchObject({ contacts: 12345, counted_at: new Date(countedAt).toISOString() });
    expect(await storedCount(fresh.segments.vip)).toEqual({ contacts: 12345, countedAt, error: null });
  });

  it("keeps the count while it is fresh, and recounts once it is older than SEGMENT_COUNT_MAX_AGE_SECONDS", async () => {
    const fresh = await seedScenario();
    const first = rowOf(await getSegments(fresh.account), fresh.segments.customers);
    expect(first.contacts).toBe(8);

    await addSubscriber(fresh.account.id, fresh.lists.customers, { email: "newcomer@example.com" });
    await addSubscriber(fresh.account.id, fresh.lists.newsletter, { email: "elsewhere@example.com" });
    // Fresh: the same count and the same count time.
    expect(rowOf(await getSegments(fresh.account), fresh.segments.customers)).toEqual(first);

    // Just inside the age limit: still the stored count.
    await ageCount(fresh.segments.customers, MAX_AGE_MS - 60_000);
    expect(rowOf(await getSegments(fresh.account), fresh.segments.customers).contacts).toBe(8);

    // Past it: counted again, during this call, and stored for the next one.
    await ageCount(fresh.segments.customers, MAX_AGE_MS + 60_000);
    const before = Date.now();
    const recounted = rowOf(await getSegments(fresh.account), fresh.segments.customers);
    expect(recounted.contacts).toBe(9);
    expect(Date.parse(recounted.counted_at!)).toBeGreaterThanOrEqual(before);
    expect(await storedCount(fresh.segments.customers)).toEqual({
      contacts: 9,
      countedAt: Date.parse(recounted.counted_at!),
      error: null,
    });
    // Only the stale segment was recounted; the others kept their first count time.
    const others = (await getSegments(fresh.account)).filter((r) => r.segmentid !== String(fresh.segments.customers));
    for (const row of others) expect(Date.parse(row.counted_at!)).toBeLessThan(before);
  });

  it("answers a second call from the stored counts, in the same order, with the same values", async () => {
    const fresh = await seedScenario();
    const first = await getSegments(fresh.account);
    expect(await getSegments(fresh.account)).toEqual(first);
  });
});

describe("Segments / GetSegments: accounts", () => {
  it("lists only this account's segments, never another account's", async () => {
    const mine = (await getSegments(s.account)).map((r) => r.segmentid);
    const theirs = (await getSegments(other.account)).map((r) => r.segmentid);
    expect(mine).toEqual(Object.values(s.segments).map(String));
    expect(theirs).toEqual(Object.values(other.segments).map(String));
    expect(mine.filter((id) => theirs.includes(id))).toEqual([]);
    for (const row of await getSegments(other.account)) expect(row.ownerid).toBe(other.account.username);
  });

  it("counts only this account's subscribers, even when a segment's rule names another account's list", async () => {
    const poacher = await createAccount();
    const id = await createSegment(
      poacher.id,
      { match: "all", rules: [{ field: "list", operator: "equals", value: s.lists.customers }] },
      "Someone else's list",
    );
    expect(await getSegments(poacher)).toEqual([
      expect.objectContaining({
        segmentid: String(id),
        segmentname: "Someone else's list",
        ownerid: poacher.username,
        contacts: 0,
      }),
    ]);
  });

  it("recounting one account's stale segments leaves another account's stored counts alone", async () => {
    const a = await seedScenario();
    const b = await seedScenario();
    await getSegments(b.account);
    const bBefore = await storedCount(b.segments.customers);
    await ageCount(b.segments.customers, MAX_AGE_MS + 60_000);
    const bAged = await storedCount(b.segments.customers);
    await getSegments(a.account);
    expect(await storedCount(b.segments.customers)).toEqual(bAged);
    expect(bAged.contacts).toBe(bBefore.contacts);
  });
});

describe("Segments / GetSegments: segments whose rules cannot run", () => {
  it("still lists the other segments when one segment's rules no longer compile, with its error", async () => {
    const account = await createAccount();
    const broken = await createSegment(
      account.id,
      { match: "all", rules: [{ field: "customfield", fieldid: 999_999, operator: "equals", value: "x" }] },
      "Broken",
    );
    const empty = await createSegment(account.id, { match: "any", rules: [] }, "Nobody");
    const rows = await getSegments(account);
    const message = 'Segment "Broken" rules[0]: custom field 999999 does not exist in this account';
    expect(rows.map(({ createdate, ...rest }) => rest)).toEqual([
      {
        segmentid: String(broken),
        segmentname: "Broken",
        ownerid: account.username,
        contacts: null,
        counted_at: expect.stringMatching(ISO_MS),
        errormessage: message,
      },
      {
        segmentid: String(empty),
        segmentname: "Nobody",
        ownerid: account.username,
        contacts: 0,
        counted_at: expect.stringMatching(ISO_MS),
      },
    ]);
    // The error is stored with the count, and served from it while fresh.
    expect(await storedCount(broken)).toEqual({ contacts: null, countedAt: Date.parse(rows[0]!.counted_at!), error: message });
    expect(await getSegments(account)).toEqual(rows);
  });

  it("lists a segment whose stored rule tree is malformed with its error, not a 500", async () => {
    const account = await createAccount();
    const malformed = await createSegment(account.id, { match: "all", rules: "everyone" } as unknown as RuleGroup, "Malformed");
    const rows = await getSegments(account);
    expect(rows.map(({ createdate, counted_at, ...rest }) => rest)).toEqual([
      {
        segmentid: String(malformed),
        segmentname: "Malformed",
        ownerid: account.username,
        contacts: null,
        errormessage: 'Segment "Malformed" has rules that cannot run: rules.rules: Invalid input: expected array, received string',
      },
    ]);
  });

  it("drops the error once a stale segment's rules can run again", async () => {
    const account = await createAccount();
    const id = await createSegment(account.id, { match: "any", rules: [] }, "Recovered");
    await updateSegmentRow(id, { contactsCount: null, countError: "old error", countedAt: Date.now() - MAX_AGE_MS - 60_000 });
    const [row] = await getSegments(account);
    expect(row).not.toHaveProperty("errormessage");
    expect(row!.contacts).toBe(0);
    expect(await storedCount(id)).toMatchObject({ contacts: 0, error: null });
  });
});
