/**
 * Segments / CreateSegment, UpdateSegment, DeleteSegment and GetSegment: the account's segment definitions.
 *
 * A stored rule tree must never make GetSegments or an export fail later: a tree is checked with the engine's own
 * schema and compiler against the account's fields, lists and tags, and against D1's limits. A bad tree is a 400
 * naming the place in the tree (details.rules.rules[1].rules[0].value: …); one over D1's limits a 422. A refused
 * call changes nothing. Another account's segments, lists, tags and fields are unknown here.
 */
import { exports } from "cloudflare:workers";
import { asc, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { accountDirectory, exportJobs } from "../../src/db/control_schema";
import type { ExportSpec } from "../../src/export/spec";
import { segments } from "../../src/db/shard_schema";
import type { RuleGroup } from "../../src/segments/rules";
import {
  callApi,
  createSegment,
  dataOf,
  db,
  request,
  seedScenario,
  segmentRow,
  shardDb,
  storedCount,
  updateSegmentRow,
  type TestAccount,
} from "../fixtures";
import { download, expectError, startExport, waitForDelivered, type Scenario } from "./helpers";

interface SegmentAnswer {
  segmentid: string;
  segmentname: string;
  ownerid: string;
  createdate: string;
  contacts: number | null;
  counted_at: string | null;
  rules: RuleGroup;
  errormessage?: string;
}

const call = <T = SegmentAnswer>(account: TestAccount, method: string, details?: unknown) =>
  callApi<T>(request(account, "Segments", method, details));
const create = async (account: TestAccount, details: Record<string, unknown>) => dataOf(await call(account, "CreateSegment", details));
const getSegment = async (account: TestAccount, segmentid: number | string) => dataOf(await call(account, "GetSegment", { segmentid }));
const getSegments = async (account: TestAccount) => dataOf(await call<Array<Omit<SegmentAnswer, "rules">>>(account, "GetSegments"));

/** The account's segment rows, as stored: what a refused call must leave as it was. */
const storedSegments = async (accountId: number) =>
  (await shardDb(accountId)).select().from(segments).where(eq(segments.accountId, accountId)).orderBy(asc(segments.id));

/** Calls a method, checks the exact error, and that the account's segments are as they were. */
async function expectRefused(account: TestAccount, method: string, details: unknown, status: number, errormessage: string) {
  const before = await storedSegments(account.id);
  expectError(await call(account, method, details), status, errormessage);
  expect(await storedSegments(account.id)).toEqual(before);
}

/** Every subscriber an export of the segment holds, by walking GetSegmentSubscribers' pages. */
async function exportedCount(account: TestAccount, segmentid: string | number): Promise<number> {
  let total = 0;
  let next: string | undefined;
  do {
    const page = dataOf(
      await callApi<{ count: number; pagination: { next: string } }>(
        request(account, "Segments", "GetSegmentSubscribers", { segmentid: [String(segmentid)], pagination: { limit: 1000, next } }),
      ),
    );
    total += page.count;
    next = page.pagination.next;
  } while (next !== "0");
  return total;
}

const one = (rule: unknown) => ({ match: "all", rules: [rule] });
const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

let s: Scenario;
let other: Scenario;
/** In the seeded account: active subscribers or VIPs, but none scoring over 150 (12 of the 24). */
let mixedRules: RuleGroup;
beforeAll(async () => {
  s = await seedScenario();
  other = await seedScenario();
  mixedRules = {
    match: "all",
    rules: [
      {
        match: "any",
        rules: [
          { field: "status", operator: "equals", value: "active" },
          { field: "tag", operator: "in", value: [s.tags.vip] },
        ],
      },
      { match: "none", rules: [{ field: "customfield", fieldid: s.fields.score, operator: "greater_than", value: 150 }] },
    ],
  };
});

describe("Segments / CreateSegment", () => {
  it("saves the segment in the account and answers it as GetSegment does, not yet counted", async () => {
    const created = await create(s.account, { name: "  Active or VIP, not over 150  ", rules: mixedRules });
    expect(created).toEqual({
      segmentid: expect.stringMatching(/^\d+$/),
      segmentname: "Active or VIP, not over 150",
      ownerid: s.account.username,
      createdate: expect.stringMatching(ISO_SECONDS),
      contacts: null,
      counted_at: null,
      rules: mixedRules,
    });
    const row = await segmentRow(Number(created.segmentid));
    expect(row).toMatchObject({ accountId: s.account.id, name: "Active or VIP, not over 150", rules: mixedRules, countedAt: 0 });
    expect(await getSegment(s.account, created.segmentid)).toMatchObject({ segmentid: created.segmentid, rules: mixedRules });
  });

  it("GetSegments then lists it and counts it, with the count an export of it holds", async () => {
    const created = await create(s.account, { name: "Counted by GetSegments", rules: mixedRules });
    const listed = (await getSegments(s.account)).find((row) => row.segmentid === created.segmentid)!;
    expect(listed).toMatchObject({ segmentname: "Counted by GetSegments", contacts: await exportedCount(s.account, created.segmentid) });
    expect(listed.contacts).toBe(12);
  });

  it("stores the tree as the engine reads it: ids as numbers, keys it does not know dropped", async () => {
    const created = await create(s.account, {
      name: "Normalised",
      rules: { match: "any", note: "mine", rules: [{ field: "customfield", fieldid: String(s.fields.score), operator: "greater_than", value: 100, label: "x" }] },
    });
    const stored = { match: "any", rules: [{ field: "customfield", fieldid: s.fields.score, operator: "greater_than", value: 100 }] };
    expect(created.rules).toEqual(stored);
    expect((await segmentRow(Number(created.segmentid)))!.rules).toEqual(stored);
  });

  it("takes an empty group (all: everyone) and names up to 200 characters", async () => {
    const name = "n".repeat(200);
    const created = await create(s.account, { name, rules: { match: "all", rules: [] } });
    expect(created.segmentname).toBe(name);
    expect(dataOf(await call(s.account, "CreateSegment", { name: "Everyone?", rules: { match: "all", rules: [] }, dryrun: true }))).toEqual({
      count: s.people.length,
    });
  });

  it("refuses a second segment of the same name in the account with 409, so that a retried call creates one", async () => {
    const details = { name: "Retried", rules: mixedRules };
    await create(s.account, details);
    await expectRefused(s.account, "CreateSegment", details, 409, 'details.name: this account already has a segment named "Retried"');
    // Names compare after trimming.
    await expectRefused(s.account, "CreateSegment", { ...details, name: " Retried " }, 409, 'details.name: this account already has a segment named "Retried"');
  });

  it("lets another account have a segment of the same name", async () => {
    await create(s.account, { name: "Shared name", rules: { match: "all", rules: [] } });
    const theirs = await create(other.account, { name: "Shared name", rules: { match: "all", rules: [] } });
    expect((await segmentRow(Number(theirs.segmentid)))!.accountId).toBe(other.account.id);
  });
});

describe("Segments / CreateSegment with dryrun", () => {
  it("answers the count of subscribers the rules match now, equal to what an export of them holds, and saves nothing", async () => {
    const before = await storedSegments(s.account.id);
    const dry = dataOf(await call<{ count: number }>(s.account, "CreateSegment", { name: "Dry", rules: mixedRules, dryrun: true }));
    expect(await storedSegments(s.account.id)).toEqual(before);

    const saved = await create(s.account, { name: "Dry, saved", rules: mixedRules });
    expect(dry).toEqual({ count: await exportedCount(s.account, saved.segmentid) });
    expect(dry.count).toBe(12);
  });

  it("takes dryrun as true/1/yes in any form, and false as a real create", async () => {
    for (const dryrun of ["yes", "TRUE", 1]) {
      expect(dataOf(await call(s.account, "CreateSegment", { name: `Dry ${dryrun}`, rules: one({ field: "list", operator: "equals", value: s.lists.customers }), dryrun }))).toEqual({
        count: 8,
      });
    }
    const real = await create(s.account, { name: "Not dry", rules: mixedRules, dryrun: "no" });
    expect(real.segmentid).toMatch(/^\d+$/);
    await expectRefused(s.account, "CreateSegment", { name: "Dry maybe", rules: mixedRules, dryrun: "maybe" }, 400, 'details.dryrun: must be one of true, false, 1, 0, yes, no (got "maybe")');
  });

  it("runs every check the real call runs: bad rules and a taken name are refused the same way", async () => {
    await expectRefused(
      s.account,
      "CreateSegment",
      { name: "Dry bad", rules: one({ field: "customfield", fieldid: 999_999, operator: "equals", value: "x" }), dryrun: true },
      400,
      "details.rules.rules[0].fieldid: custom field 999999 does not exist in this account",
    );
    await create(s.account, { name: "Dry taken", rules: mixedRules });
    await expectRefused(s.account, "CreateSegment", { name: "Dry taken", rules: mixedRules, dryrun: true }, 409, 'details.name: this account already has a segment named "Dry taken"');
  });
});

describe("Segments / CreateSegment refuses details it cannot store: 400 naming the field", () => {
  const rules = { match: "all", rules: [] };

  it("a missing, empty or too long name", async () => {
    await expectRefused(s.account, "CreateSegment", { rules }, 400, "details.name: is required");
    await expectRefused(s.account, "CreateSegment", { name: "   ", rules }, 400, "details.name: must not be empty");
    await expectRefused(s.account, "CreateSegment", { name: 12, rules }, 400, "details.name: must be a string");
    await expectRefused(s.account, "CreateSegment", { name: "n".repeat(201), rules }, 400, "details.name: must be at most 200 characters (got 201)");
  });

  it("missing rules, or rules that are not a group", async () => {
    await expectRefused(s.account, "CreateSegment", { name: "No rules" }, 400, "details.rules: is required");
    await expectRefused(s.account, "CreateSegment", { name: "Text rules", rules: "all" }, 400, "details.rules: Invalid input: expected object, received string");
    await expectRefused(
      s.account,
      "CreateSegment",
      { name: "No match", rules: { rules: [] } },
      400,
      'details.rules.match: Invalid option: expected one of "all"|"any"|"none"',
    );
  });
});

describe("Segments / CreateSegment refuses rules the engine could not run: 400 naming the place in the tree", () => {
  /** A tree whose second rule is a group holding `rule` first: the place is details.rules.rules[1].rules[0]. */
  const nested = (rule: unknown) => ({
    match: "all",
    rules: [{ field: "status", operator: "equals", value: "active" }, { match: "any", rules: [rule, { field: "email", operator: "contains", value: "@" }] }],
  });
  const refusedRules = (rules: unknown, errormessage: string) =>
    expectRefused(s.account, "CreateSegment", { name: "Refused", rules }, 400, errormessage);

  it("a value out of range, deep in the tree", async () => {
    await refusedRules(
      nested({ field: "customfield", fieldid: s.fields.score, operator: "greater_than", value: 1e16 }),
      "details.rules.rules[1].rules[0].value: a number value must be between -1e15 and 1e15",
    );
    await refusedRules(
      nested({ field: "email", operator: "contains", value: "x".repeat(501) }),
      "details.rules.rules[1].rules[0].value: a text value may have at most 500 characters",
    );
    await refusedRules(
      nested({ field: "email", operator: "in", value: Array.from({ length: 101 }, (_, i) => `${i}@example.com`) }),
      "details.rules.rules[1].rules[0].value: a list may have at most 100 values",
    );
    await refusedRules(
      nested({ field: "subscribedate", operator: "within_last_days", value: 36_501 }),
      'details.rules.rules[1].rules[0].value: "within_last_days" needs a whole number of days from 0 to 36500',
    );
  });

  it("a value the field cannot take: a status, a date, a number, an id", async () => {
    await refusedRules(
      nested({ field: "status", operator: "equals", value: "pending" }),
      'details.rules.rules[1].rules[0].value: "pending" is not a status (active, inactive, bounced, unsubscribed)',
    );
    await refusedRules(nested({ field: "subscribedate", operator: "after", value: "2025-02-30" }), 'details.rules.rules[1].rules[0].value: "2025-02-30" is not a date');
    await refusedRules(
      nested({ field: "customfield", fieldid: s.fields.score, operator: "equals", value: "ten" }),
      'details.rules.rules[1].rules[0].value: "ten" is not a number',
    );
    await refusedRules(nested({ field: "list", operator: "equals", value: "abc" }), 'details.rules.rules[1].rules[0].value: "abc" is not an id');
    await refusedRules(
      nested({ field: "customfield", fieldid: s.fields.score, operator: "between", value: [1] }),
      'details.rules.rules[1].rules[0].value: "between" needs two values, [low, high]',
    );
    await refusedRules(nested({ field: "list", operator: "equals" }), 'details.rules.rules[1].rules[0].value: operator "equals" needs a value');
  });

  it("an operator that does not apply to the field", async () => {
    await refusedRules(
      nested({ field: "status", operator: "contains", value: "act" }),
      'details.rules.rules[1].rules[0].operator: operator "contains" does not apply to field "status"; use one of equals, not_equals, in',
    );
    await refusedRules(
      nested({ field: "email", operator: "sounds_like", value: "x" }),
      "details.rules.rules[1].rules[0].operator: Invalid option: expected one of " +
        '"equals"|"not_equals"|"contains"|"starts_with"|"ends_with"|"greater_than"|"less_than"|"between"|"in"|"is_empty"|"is_not_empty"|"before"|"after"|"within_last_days"',
    );
  });

  it("an unknown field, or a custom field that is not the account's", async () => {
    await refusedRules(
      nested({ field: "shoe_size", operator: "equals", value: 42 }),
      'details.rules.rules[1].rules[0].field: Invalid option: expected one of "list"|"email"|"status"|"subscribedate"|"tag"|"customfield"',
    );
    await refusedRules(
      nested({ field: "customfield", fieldid: 999_999, operator: "equals", value: "x" }),
      "details.rules.rules[1].rules[0].fieldid: custom field 999999 does not exist in this account",
    );
    await refusedRules(nested({ field: "customfield", operator: "equals", value: "x" }), 'details.rules.rules[1].rules[0].fieldid: a customfield condition needs "fieldid"');
  });

  it("a list or tag id that is not the account's", async () => {
    await refusedRules(nested({ field: "list", operator: "equals", value: 999_999 }), "details.rules.rules[1].rules[0].value: list 999999 does not exist in this account");
    await refusedRules(
      nested({ field: "tag", operator: "in", value: [s.tags.vip, 999_998, String(s.tags.trial)] }),
      "details.rules.rules[1].rules[0].value[1]: tag 999998 does not exist in this account",
    );
  });

  it("another account's list, tag and custom field are as unknown as missing ones", async () => {
    await refusedRules(one({ field: "list", operator: "equals", value: other.lists.customers }), `details.rules.rules[0].value: list ${other.lists.customers} does not exist in this account`);
    await refusedRules(one({ field: "tag", operator: "not_equals", value: other.tags.vip }), `details.rules.rules[0].value: tag ${other.tags.vip} does not exist in this account`);
    await refusedRules(
      one({ field: "customfield", fieldid: other.fields.company, operator: "contains", value: "acme" }),
      `details.rules.rules[0].fieldid: custom field ${other.fields.company} does not exist in this account`,
    );
  });

  it("lists several problems in the order of the tree", async () => {
    await refusedRules(
      {
        match: "any",
        rules: [
          { field: "status", operator: "contains", value: "act" },
          { field: "email", operator: "contains", value: "@example.com" },
          { match: "all", rules: [{ field: "tag", operator: "equals", value: 999_999 }] },
        ],
      },
      'details.rules.rules[0].operator: operator "contains" does not apply to field "status"; use one of equals, not_equals, in; ' +
        "details.rules.rules[2].rules[0].value: tag 999999 does not exist in this account",
    );
  });

  it("more than 100 rules, or groups nested more than 8 deep", async () => {
    const condition = { field: "email", operator: "is_not_empty" };
    await refusedRules({ match: "all", rules: Array.from({ length: 101 }, () => condition) }, "details.rules: a segment may have at most 100 rules");
    let deep: unknown = { match: "all", rules: [condition] };
    for (let depth = 1; depth < 9; depth++) deep = { match: "all", rules: [deep] };
    await refusedRules(deep, "details.rules: groups may nest at most 8 deep");
    // Far deeper than a recursive parse survives: the same short answer, not a 500. The body is written as
    // text, since JSON.stringify itself would run out of stack on such an object.
    const depth = 20_000;
    const deeper = `${'{"match":"all","rules":['.repeat(depth)}${"]}".repeat(depth)}`;
    const envelope = JSON.stringify(request(s.account, "Segments", "CreateSegment", { name: "Refused", rules: "RULES" }));
    expectError(await callApi(envelope.replace('"RULES"', deeper)), 400, "details.rules: groups may nest at most 8 deep");
  });

  it("takes 8 levels of groups, and 100 rules in groups", async () => {
    const condition = { field: "email", operator: "is_not_empty" };
    let deep: unknown = { match: "all", rules: [condition] };
    for (let depth = 1; depth < 8; depth++) deep = { match: "all", rules: [deep] };
    expect(await getSegment(s.account, (await create(s.account, { name: "Eight deep", rules: deep })).segmentid)).toMatchObject({
      contacts: s.people.length,
    });
    const quarter = { match: "all", rules: Array.from({ length: 24 }, () => condition) };
    const wide = await create(s.account, { name: "A hundred rules", rules: { match: "all", rules: [quarter, quarter, quarter, quarter] } });
    expect(await getSegment(s.account, wide.segmentid)).toMatchObject({ contacts: s.people.length });
  });
});

describe("Segments / CreateSegment refuses rules over D1's limits with 422, as an export is refused", () => {
  const emails = (n: number) => Array.from({ length: n }, (_, i) => `person${String(i).padStart(2, "0")}@example.com`);

  it("rules whose count needs more than 100 bound parameters", async () => {
    await expectRefused(
      s.account,
      "CreateSegment",
      { name: "Too many values", rules: one({ field: "email", operator: "in", value: emails(100) }) },
      422,
      "details.rules: Counting this segment needs 101 bound parameters; D1 allows 100 per statement. Use fewer segments, fewer custom fields, or simpler segment rules.",
    );
  });

  it("rules that fit the count but not an export of the segment with a status filter", async () => {
    await expectRefused(
      s.account,
      "CreateSegment",
      { name: "Too many for an export", rules: one({ field: "email", operator: "in", value: emails(96) }), dryrun: true },
      422,
      "details.rules: an export of this segment with a status filter, tags and every custom field would not run: " +
        "This export needs 101 bound parameters; D1 allows 100 per statement. Use fewer segments, fewer custom fields, or simpler segment rules.",
    );
  });

  it("one group of 100 conditions: joined as a balanced tree, far from D1's 100 levels, so it is taken and counted", async () => {
    const condition = { field: "email", operator: "is_not_empty" };
    const created = await create(s.account, { name: "One long group", rules: { match: "any", rules: Array.from({ length: 100 }, () => condition) } });
    expect(await getSegment(s.account, created.segmentid)).toMatchObject({ contacts: 24 });
  });

  it("takes the largest tree that fits, and every export of that segment alone runs", async () => {
    const created = await create(s.account, { name: "Just fits", rules: one({ field: "email", operator: "in", value: emails(95) }) });
    const page = await callApi(
      request(s.account, "Segments", "GetSegmentSubscribers", {
        segmentid: [created.segmentid],
        status: "active",
        include_membership: true,
        customfields: "all",
      }),
    );
    expect(page.status).toBe(200);
    expect(await getSegment(s.account, created.segmentid)).toMatchObject({ contacts: 24 });
  });
});

describe("Segments / UpdateSegment", () => {
  it("renames a segment and keeps its stored count", async () => {
    const created = await create(s.account, { name: "Before rename", rules: mixedRules });
    const counted = await getSegment(s.account, created.segmentid);
    const renamed = dataOf(await call(s.account, "UpdateSegment", { segmentid: created.segmentid, name: " After rename " }));
    expect(renamed).toEqual({ ...counted, segmentname: "After rename" });
    expect(await storedCount(Number(created.segmentid))).toEqual({ contacts: counted.contacts, countedAt: Date.parse(counted.counted_at!), error: null });
  });

  it("replaces the rules and resets the stored count, so that GetSegments counts the new rules", async () => {
    const created = await create(s.account, { name: "Rules replaced", rules: one({ field: "list", operator: "equals", value: s.lists.customers }) });
    expect((await getSegment(s.account, created.segmentid)).contacts).toBe(8);
    const vipRules = one({ field: "tag", operator: "equals", value: s.tags.vip });
    const updated = dataOf(await call(s.account, "UpdateSegment", { segmentid: Number(created.segmentid), rules: vipRules }));
    expect(updated).toMatchObject({ segmentid: created.segmentid, segmentname: "Rules replaced", rules: vipRules, contacts: null, counted_at: null });
    expect(await storedCount(Number(created.segmentid))).toEqual({ contacts: null, countedAt: 0, error: null });
    const listed = (await getSegments(s.account)).find((row) => row.segmentid === created.segmentid)!;
    expect(listed.contacts).toBe(12);
  });

  it("clears a stored count error along with the count", async () => {
    const broken = await createSegment(s.account.id, one({ field: "customfield", fieldid: 999_999, operator: "equals", value: "x" }) as RuleGroup, "Broken, then fixed");
    expect(await getSegment(s.account, broken)).toMatchObject({ contacts: null, errormessage: expect.stringContaining("custom field 999999") });
    const fixed = dataOf(await call(s.account, "UpdateSegment", { segmentid: broken, rules: one({ field: "status", operator: "equals", value: "active" }) }));
    expect(fixed).not.toHaveProperty("errormessage");
    expect(await storedCount(broken)).toEqual({ contacts: null, countedAt: 0, error: null });
    expect(await getSegment(s.account, broken)).toMatchObject({ contacts: 6 });
  });

  it("renames and replaces the rules in one call; keeping its own name is no conflict", async () => {
    const created = await create(s.account, { name: "Both", rules: mixedRules });
    const updated = dataOf(await call(s.account, "UpdateSegment", { segmentid: created.segmentid, name: "Both, changed", rules: { match: "all", rules: [] } }));
    expect(updated).toMatchObject({ segmentname: "Both, changed", rules: { match: "all", rules: [] } });
    const same = dataOf(await call(s.account, "UpdateSegment", { segmentid: created.segmentid, name: "Both, changed" }));
    expect(same.segmentname).toBe("Both, changed");
  });

  it("refuses a call that changes nothing, and a name another segment of the account has (409)", async () => {
    const created = await create(s.account, { name: "Holder", rules: mixedRules });
    const second = await create(s.account, { name: "Wants the name", rules: mixedRules });
    await expectRefused(s.account, "UpdateSegment", { segmentid: created.segmentid }, 400, "details: give name, rules or both to change");
    await expectRefused(
      s.account,
      "UpdateSegment",
      { segmentid: second.segmentid, name: "Holder", rules: { match: "all", rules: [] } },
      409,
      'details.name: this account already has a segment named "Holder"',
    );
  });

  it("refuses rules as CreateSegment does, and leaves the segment as it was", async () => {
    const created = await create(s.account, { name: "Kept", rules: mixedRules });
    await expectRefused(
      s.account,
      "UpdateSegment",
      { segmentid: created.segmentid, name: "Never", rules: { match: "all", rules: [mixedRules, one({ field: "tag", operator: "in", value: [other.tags.vip] })] } },
      400,
      `details.rules.rules[1].rules[0].value[0]: tag ${other.tags.vip} does not exist in this account`,
    );
    await expectRefused(
      s.account,
      "UpdateSegment",
      { segmentid: created.segmentid, rules: one({ field: "email", operator: "in", value: Array.from({ length: 100 }, (_, i) => `${i}@x.org`) }) },
      422,
      "details.rules: Counting this segment needs 101 bound parameters; D1 allows 100 per statement. Use fewer segments, fewer custom fields, or simpler segment rules.",
    );
  });

  it("refuses an unknown segment, and another account's, with 404, changing neither", async () => {
    await expectRefused(s.account, "UpdateSegment", { segmentid: 987_654_321, name: "Ghost" }, 404, "details.segmentid: no segment 987654321 in this account");
    const theirs = await segmentRow(other.segments.vip);
    await expectRefused(s.account, "UpdateSegment", { segmentid: String(other.segments.vip), name: "Taken over" }, 404, `details.segmentid: no segment ${other.segments.vip} in this account`);
    expect(await segmentRow(other.segments.vip)).toEqual(theirs);
  });

  it("refuses a segment id that is not one", async () => {
    await expectRefused(s.account, "UpdateSegment", { name: "x" }, 400, "details.segmentid: is required");
    await expectRefused(s.account, "UpdateSegment", { segmentid: "abc", name: "x" }, 400, 'details.segmentid: "abc" is not a segment id');
    await expectRefused(s.account, "UpdateSegment", { segmentid: 0, name: "x" }, 400, "details.segmentid: 0 is not a segment id");
    await expectRefused(s.account, "UpdateSegment", { segmentid: [1], name: "x" }, 400, "details.segmentid: [1] is not a segment id");
  });
});

describe("Segments / UpdateSegment with dryrun", () => {
  it("answers the count of the new rules, equal to an export of them, and changes nothing", async () => {
    const created = await create(s.account, { name: "Dry update", rules: one({ field: "list", operator: "equals", value: s.lists.customers }) });
    await getSegment(s.account, created.segmentid);
    const before = await segmentRow(Number(created.segmentid));
    const dry = dataOf(await call<{ count: number }>(s.account, "UpdateSegment", { segmentid: created.segmentid, name: "Renamed?", rules: mixedRules, dryrun: true }));
    expect(await segmentRow(Number(created.segmentid))).toEqual(before);
    const saved = await create(s.account, { name: "Dry update, saved", rules: mixedRules });
    expect(dry).toEqual({ count: await exportedCount(s.account, saved.segmentid) });
  });

  it("without new rules, counts the segment's rules as they are", async () => {
    const dry = dataOf(await call<{ count: number }>(s.account, "UpdateSegment", { segmentid: s.segments.vip, name: "VIPs, renamed?", dryrun: "yes" }));
    expect(dry).toEqual({ count: 12 });
    expect((await segmentRow(s.segments.vip))!.name).toBe("VIPs");
  });

  it("refuses what the real call refuses: another account's segment is unknown", async () => {
    await expectRefused(
      s.account,
      "UpdateSegment",
      { segmentid: other.segments.vip, rules: mixedRules, dryrun: true },
      404,
      `details.segmentid: no segment ${other.segments.vip} in this account`,
    );
  });
});

describe("Segments / DeleteSegment", () => {
  it("deletes the segment: GetSegment and GetSegments no longer know it, and a second delete is a 404", async () => {
    const created = await create(s.account, { name: "Short-lived", rules: mixedRules });
    expect(dataOf(await call(s.account, "DeleteSegment", { segmentid: created.segmentid }))).toEqual({ segmentid: created.segmentid, deleted: true });
    expect(await segmentRow(Number(created.segmentid))).toBeUndefined();
    expectError(await call(s.account, "GetSegment", { segmentid: created.segmentid }), 404, `details.segmentid: no segment ${created.segmentid} in this account`);
    expect((await getSegments(s.account)).map((row) => row.segmentid)).not.toContain(created.segmentid);
    await expectRefused(s.account, "DeleteSegment", { segmentid: created.segmentid }, 404, `details.segmentid: no segment ${created.segmentid} in this account`);
  });

  it("refuses another account's segment with 404 and leaves it", async () => {
    await expectRefused(s.account, "DeleteSegment", { segmentid: other.segments.acme }, 404, `details.segmentid: no segment ${other.segments.acme} in this account`);
    expect(await segmentRow(other.segments.acme)).toMatchObject({ accountId: other.account.id, name: "Acme" });
  });

  it("lets an export accepted before the delete finish with the segment's subscribers", async () => {
    const created = await create(s.account, { name: "Deleted under an export", rules: mixedRules });
    const expected = await exportedCount(s.account, created.segmentid);
    const jobid = await startExport(s.account, { segmentid: [created.segmentid] });
    dataOf(await call(s.account, "DeleteSegment", { segmentid: created.segmentid }));
    // What makes it work: the job holds the rules it was accepted with, not a reference to the segment.
    const job = await db().select({ spec: exportJobs.spec }).from(exportJobs).where(eq(exportJobs.id, jobid)).get();
    expect((job!.spec as ExportSpec).segments).toEqual([{ id: Number(created.segmentid), name: "Deleted under an export", rules: mixedRules }]);
    const status = await waitForDelivered(s.account, jobid);
    expect(status).toMatchObject({ status: "complete", count: expected });
    const { text } = await download(status.url!);
    expect(JSON.parse(text).response.data.count).toBe(expected);
  });
});

describe("Segments / GetSegment", () => {
  it("answers GetSegments' item for the segment, with its rules", async () => {
    const listed = (await getSegments(s.account)).find((row) => row.segmentid === String(s.segments.customers))!;
    expect(await getSegment(s.account, s.segments.customers)).toEqual({
      ...listed,
      rules: { match: "all", rules: [{ field: "list", operator: "equals", value: s.lists.customers }] },
    });
  });

  it("counts a segment never counted and stores the count, as GetSegments does", async () => {
    const fresh = await seedScenario();
    expect(await storedCount(fresh.segments.acme)).toEqual({ contacts: null, countedAt: 0, error: null });
    const answer = await getSegment(fresh.account, String(fresh.segments.acme));
    expect(answer).toMatchObject({ segmentname: "Acme", contacts: 12, counted_at: expect.any(String) });
    expect(await storedCount(fresh.segments.acme)).toEqual({ contacts: 12, countedAt: Date.parse(answer.counted_at!), error: null });
    // Fresh now: answered from the stored count.
    await updateSegmentRow(fresh.segments.acme, { contactsCount: 4242 });
    expect((await getSegment(fresh.account, fresh.segments.acme)).contacts).toBe(4242);
  });

  it("answers a stored segment whose rules cannot run with contacts null and the reason, as GetSegments does", async () => {
    const lapsed = await createSegment(s.account.id, one({ field: "subscribedate", operator: "within_last_days", value: 50_000 }) as RuleGroup, "Lapsed");
    expect(await getSegment(s.account, lapsed)).toMatchObject({
      segmentname: "Lapsed",
      contacts: null,
      errormessage: 'Segment "Lapsed" has rules that cannot run: rules[0].value: "within_last_days" needs a whole number of days from 0 to 36500',
    });
  });

  it("refuses an unknown segment and another account's with 404", async () => {
    expectError(await call(s.account, "GetSegment", { segmentid: 987_654_321 }), 404, "details.segmentid: no segment 987654321 in this account");
    expectError(await call(s.account, "GetSegment", { segmentid: other.segments.customers }), 404, `details.segmentid: no segment ${other.segments.customers} in this account`);
    expectError(await call(s.account, "GetSegment", {}), 400, "details.segmentid: is required");
  });
});

describe("While a move has the account's writes frozen", () => {
  it("CreateSegment, UpdateSegment and DeleteSegment answer 503 with Retry-After and change nothing; dry runs and GetSegment still answer", async () => {
    const frozen = await seedScenario();
    const setFrozen = (writesFrozen: boolean) =>
      db().update(accountDirectory).set({ writesFrozen }).where(eq(accountDirectory.accountId, frozen.account.id));
    await setFrozen(true);
    try {
      const message = "This account's contacts are being moved to another database; changes are paused for a moment. Reads still work. Try again in 30 seconds.";
      const rules = one({ field: "status", operator: "equals", value: "active" });
      for (const [method, details] of [
        ["CreateSegment", { name: "Frozen", rules }],
        ["UpdateSegment", { segmentid: frozen.segments.vip, name: "Frozen" }],
        ["DeleteSegment", { segmentid: frozen.segments.vip }],
      ] as const) {
        const before = await storedSegments(frozen.account.id);
        const response = await callRaw(frozen.account, method, details);
        expect({ status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.json() }).toEqual({
          status: 503,
          retryAfter: "30",
          body: { response: { status: "ERROR", errormessage: message } },
        });
        expect(await storedSegments(frozen.account.id)).toEqual(before);
      }
      expect(dataOf(await call(frozen.account, "CreateSegment", { name: "Frozen", rules, dryrun: true }))).toEqual({ count: 6 });
      expect(dataOf(await call(frozen.account, "UpdateSegment", { segmentid: frozen.segments.vip, rules, dryrun: true }))).toEqual({ count: 6 });
      expect((await getSegment(frozen.account, frozen.segments.vip)).segmentname).toBe("VIPs");
    } finally {
      await setFrozen(false);
    }
  });
});

/** The raw response, for its headers. */
async function callRaw(account: TestAccount, method: string, details: unknown): Promise<Response> {
  return exports.default.fetch("https://exports.test/apijson.php", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request(account, "Segments", method, details)),
  });
}
