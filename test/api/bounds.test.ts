/**
 * Input bounds (docs/input_validation.md): every list and string a client sends has a limit, a request past
 * one gets a 400 that names the limit (and the size sent, never the value), echoed values are cut to 100
 * characters, and a refused request writes nothing. A segment whose stored rules cannot run fails alone.
 */
import { count, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { idempotencyKeys } from "../../src/db/schema";
import { callApi, createAccount, createField, createList, createSegment, dataOf, db, request, seedScenario, type TestAccount } from "../fixtures";
import type { RuleGroup } from "../../src/segments/rules";
import { EMAIL_NOTIFY, expectError, exportJobCount, type Scenario } from "./helpers";

let s: Scenario;
beforeAll(async () => {
  s = await seedScenario();
});

async function keyCount(accountId: number): Promise<number> {
  const [row] = await db().select({ n: count() }).from(idempotencyKeys).where(eq(idempotencyKeys.accountId, accountId));
  return row!.n;
}

/** Calls GetSegmentSubscribersAsync and checks the exact error, and that no job or key was written. */
async function expectRefused(account: TestAccount, details: unknown, status: number, errormessage: string) {
  const [jobs, keys] = [await exportJobCount(account.id), await keyCount(account.id)];
  expectError(await callApi(request(account, "Segments", "GetSegmentSubscribersAsync", details)), status, errormessage);
  expect([await exportJobCount(account.id), await keyCount(account.id)]).toEqual([jobs, keys]);
}

const valid = (overrides: Record<string, unknown>) => ({ segmentid: [s.segments.customers], notify: EMAIL_NOTIFY, ...overrides });

/** What quote() in src/api/envelope.ts makes of a long string: its JSON, cut to 99 characters and "…". */
const cut = (text: string) => `${JSON.stringify(text).slice(0, 99)}…`;

describe("details.segmentid: at most 50 segments", () => {
  it("refuses 51, naming the limit and the count", async () => {
    const ids = Array.from({ length: 51 }, (_, i) => i + 1);
    await expectRefused(s.account, valid({ segmentid: ids }), 400, "details.segmentid: at most 50 segments per request (got 51)");
  });

  it("refuses 100,000 ids with the same short message, before looking at any of them", async () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => (i % 2 ? i : `x${i}`));
    await expectRefused(s.account, valid({ segmentid: ids }), 400, "details.segmentid: at most 50 segments per request (got 100000)");
  });

  it("takes 50, and names at most 10 missing ones", async () => {
    const ids = Array.from({ length: 50 }, (_, i) => 900_000_000 + i);
    await expectRefused(
      s.account,
      valid({ segmentid: ids }),
      404,
      `details.segmentid: no segment ${ids.slice(0, 10).join(", ")} and 40 more in this account`,
    );
  });

  it("lists bad elements while they fit in 300 characters, then counts the rest", async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `x${i}`);
    await expectRefused(
      s.account,
      valid({ segmentid: ids }),
      400,
      'details.segmentid.0: "x0" is not a segment id; details.segmentid.1: "x1" is not a segment id; ' +
        'details.segmentid.2: "x2" is not a segment id; details.segmentid.3: "x3" is not a segment id; ' +
        'details.segmentid.4: "x4" is not a segment id; and 45 more problems',
    );
  });

  it("echoes a long element cut to 100 characters", async () => {
    const long = "5".repeat(5000) + "x";
    await expectRefused(s.account, valid({ segmentid: [long] }), 400, `details.segmentid.0: ${cut(long)} is not a segment id`);
  });
});

describe("details.customfields: at most the account's fields, and never more than 500", () => {
  it("refuses 501 names, naming the limit", async () => {
    const names = Array.from({ length: 501 }, (_, i) => `Field ${i}`);
    await expectRefused(s.account, valid({ customfields: names }), 400, "details.customfields: at most 500 custom fields per request (got 501)");
  });

  it("refuses more distinct names than the account has fields", async () => {
    await expectRefused(
      s.account,
      valid({ customfields: ["First Name", "Company", "Score", "Shoe Size"] }),
      400,
      "details.customfields: names 4 fields, but this account has 3 custom fields",
    );
  });

  it("refuses a name over 200 characters, giving its length", async () => {
    await expectRefused(
      s.account,
      valid({ customfields: ["Company", "n".repeat(201)] }),
      400,
      "details.customfields.1: must be at most 200 characters (got 201)",
    );
  });

  it("names at most five unknown fields, each cut to 100 characters", async () => {
    const wide = await createAccount();
    for (let i = 0; i < 8; i++) await createField(wide.id, `Field ${i}`);
    const list = await createList(wide.id);
    const segment = await createSegment(wide.id, { match: "all", rules: [{ field: "list", operator: "equals", value: list }] });
    const long = "L".repeat(150);
    await expectRefused(
      wide,
      { segmentid: [segment], notify: EMAIL_NOTIFY, customfields: ["Field 0", long, "b", "c", "d", "e", "f", "g"] },
      400,
      `details.customfields: unknown custom fields ${cut(long)}, "b", "c", "d", "e" and 2 more`,
    );
  });
});

describe("the strings of the details", () => {
  it("notify.value: at most 2048 characters", async () => {
    await expectRefused(
      s.account,
      valid({ notify: { type: "webhook", value: `https://hooks.example.com/${"p".repeat(2049 - 26)}` } }),
      400,
      "details.notify.value: must be at most 2048 characters (got 2049)",
    );
  });

  it("an email address over 254 characters is not valid, and is echoed cut", async () => {
    const value = `${"a".repeat(250)}@example.com`;
    await expectRefused(s.account, valid({ notify: { type: "email", value } }), 400, `details.notify.value: ${cut(value)} is not a valid email address`);
  });

  it("include_membership echoes a long value cut", async () => {
    const value = "y".repeat(10_000);
    await expectRefused(
      s.account,
      valid({ include_membership: value }),
      400,
      `details.include_membership: must be one of true, false, 1, 0, yes, no (got ${cut(value)})`,
    );
  });

  it("idempotency_key: at most 200 characters", async () => {
    await expectRefused(
      s.account,
      valid({ idempotency_key: "k".repeat(201) }),
      400,
      "details.idempotency_key: must be 1 to 200 characters (got 201)",
    );
  });

  it("jobid (GetSegmentSubscribersAsyncStatus): at most 100 characters", async () => {
    expectError(
      await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid: "j".repeat(101) })),
      400,
      "details.jobid: must be at most 100 characters (got 101)",
    );
  });

  it("jobid: an unknown one of 100 characters is echoed cut", async () => {
    const jobid = "j".repeat(100);
    expectError(
      await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid })),
      404,
      `details.jobid: no export job ${cut(jobid)} in this account`,
    );
  });
});

describe("a segment whose stored rules cannot run fails alone", () => {
  // Stored straight into D1, as a segment written before the bounds existed would be.
  const lapsedRules = {
    match: "all",
    rules: [{ field: "subscribedate", operator: "within_last_days", value: 1e12 }],
  } as RuleGroup;
  const LAPSED_ERROR =
    'Segment "Lapsed" has rules that cannot run: rules[0].value: "within_last_days" needs a whole number of days from 0 to 36500';
  let b: Scenario;
  let lapsed: number;
  beforeAll(async () => {
    b = await seedScenario();
    lapsed = await createSegment(b.account.id, lapsedRules, "Lapsed");
  });

  it("GetSegments answers 200, with the error on that segment and counts on the others", async () => {
    const res = await callApi(request(b.account, "Segments", "GetSegments"));
    expect(res.status).toBe(200);
    const items = dataOf<Array<{ segmentid: string; contacts: number | null; errormessage?: string }>>(res);
    expect(items.map((i) => [i.segmentid, i.contacts, i.errormessage])).toEqual([
      [String(b.segments.customers), 8, undefined],
      [String(b.segments.vip), 12, undefined],
      [String(b.segments.acme), 12, undefined],
      [String(lapsed), null, LAPSED_ERROR],
    ]);
  });

  it("an export naming it gets a 422 naming it, and writes nothing", async () => {
    await expectRefused(b.account, { segmentid: [lapsed], notify: EMAIL_NOTIFY }, 422, LAPSED_ERROR);
  });

  it("an export naming it among good segments gets the same 422", async () => {
    await expectRefused(b.account, { segmentid: [b.segments.vip, lapsed, b.segments.acme], notify: EMAIL_NOTIFY }, 422, LAPSED_ERROR);
  });

  it("an export of the account's other segments is accepted", async () => {
    const before = await exportJobCount(b.account.id);
    const res = await callApi(request(b.account, "Segments", "GetSegmentSubscribersAsync", { segmentid: [b.segments.vip], notify: EMAIL_NOTIFY }));
    expect(dataOf<{ status: string; deduplicated: boolean }>(res)).toMatchObject({ status: "queued", deduplicated: false });
    expect(await exportJobCount(b.account.id)).toBe(before + 1);
  });
});
