/**
 * How deep the engine's SQL nests. D1 refuses an expression nested more than 100 deep ("Expression tree is too
 * large (maximum depth 100)"), and SQLite parses a flat "a AND b AND …" one level per operand; so the compiler
 * joins a group's rules, and matchPredicate an export's segments, as balanced trees. These tests run the
 * deepest trees RULE_LIMITS and DETAILS_LIMITS allow through D1 for real: compiled alone, counted by
 * GetSegments, paged by GetSegmentSubscribers and exported, and measure how much room D1 leaves them.
 */
import { sql, type SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { matchPredicate, pageQuery } from "../../src/export/query";
import type { ExportSpec } from "../../src/export/spec";
import { DETAILS_LIMITS } from "../../src/methods/segment_selection";
import { RULE_LIMITS, type Condition, type RuleGroup } from "../../src/segments/rules";
import { createJob, exportedJson, harness, jobRow, runToEnd } from "../export/driver";
import {
  addSubscriber,
  callApi,
  createAccount,
  createField,
  createList,
  createSegment,
  createTag,
  dataOf,
  request,
  shardDb,
  type TestAccount,
} from "../fixtures";
import { compile, emailsMatching, NOW, refreshFields, type RuleAccount } from "./helpers";

const dialect = new SQLiteAsyncDialect();

interface Person {
  email: string;
  score?: number;
  vip: boolean;
}

/** 14 people: every third without a score (NULL in comparisons), every other one a VIP. */
const PEOPLE: Person[] = Array.from({ length: 14 }, (_, i) => ({
  email: `p${i}@example.com`,
  ...(i % 3 === 2 ? {} : { score: i % 4 }),
  vip: i % 2 === 0,
}));

let account: TestAccount;
let rules: RuleAccount;
let score: number;
let vip: number;

beforeAll(async () => {
  account = await createAccount();
  const list = await createList(account.id);
  score = await createField(account.id, "Score", "number");
  vip = await createTag(account.id, "vip");
  rules = { id: account.id, listId: list, fieldTypes: new Map() };
  await refreshFields(rules);
  for (const p of PEOPLE) {
    await addSubscriber(account.id, list, {
      email: p.email,
      fields: p.score === undefined ? {} : { [score]: p.score },
      tags: p.vip ? [vip] : [],
    });
  }
});

// Conditions that bind no value (fillers, so that trees reach RULE_LIMITS.rules within D1's 100 parameters),
// and the ones measured deepest: a number comparison (NOT, AND, =, CAST, ->>) and a tag (an EXISTS subquery,
// whose own WHERE SQLite counts on top of the whole outer expression).
const NO_ONE: Condition = { field: "email", operator: "is_empty" };
const EVERYONE: Condition = { field: "email", operator: "is_not_empty" };
const scoreIsNot = (value: number): Condition => ({ field: "customfield", fieldid: score, operator: "not_equals", value });
const lacksVip = (): Condition => ({ field: "tag", operator: "not_equals", value: vip });
const emailIs = (email: string): Condition => ({ field: "email", operator: "equals", value: email });

/** What a condition of these tests means for a person, in JavaScript: the reference the SQL is checked against. */
function holds(condition: Condition, p: Person): boolean {
  if (condition.field === "email") {
    if (condition.operator === "is_empty") return false;
    if (condition.operator === "is_not_empty") return true;
    return p.email === condition.value;
  }
  if (condition.field === "tag") return !p.vip;
  // not_equals on a number: a missing value is "not equal".
  return p.score === undefined || p.score !== condition.value;
}

function matches(group: RuleGroup, p: Person): boolean {
  const results = group.rules.map((rule) => ("match" in rule ? matches(rule, p) : holds(rule, p)));
  if (group.match === "all") return results.every(Boolean);
  if (group.match === "any") return results.some(Boolean);
  return !results.some(Boolean);
}

const expectedEmails = (groups: RuleGroup[]) =>
  PEOPLE.filter((p) => groups.some((g) => matches(g, p)))
    .map((p) => p.email)
    .sort();

const flat = (match: RuleGroup["match"], rules: RuleGroup["rules"]): RuleGroup => ({ match, rules });
const filled = (n: number, filler: Condition, first: Condition[] = []): Condition[] => [
  ...first,
  ...Array.from({ length: n - first.length }, () => filler),
];

/**
 * How many children each group of a chain of `depth` nested groups gets, out of `ruleCount` rules (a nested
 * group is a rule of its parent), so that the chain nests deepest: a group of c rules joins them ⌈log2 c⌉ deep,
 * so buy the cheapest next level (c = 2^k + 1) until the rules run out; the rest go to the innermost group.
 */
function deepestSizes(depth: number, ruleCount: number): number[] {
  const sizes = Array.from({ length: depth }, () => 1);
  let left = ruleCount - depth;
  const nextLevel = (c: number) => (c === 1 ? 2 : 2 ** Math.ceil(Math.log2(c)) + 1);
  for (;;) {
    const costs = sizes.map((c) => nextLevel(c) - c);
    const cheapest = costs.indexOf(Math.min(...costs));
    if (costs[cheapest]! > left) break;
    left -= costs[cheapest]!;
    sizes[cheapest] = nextLevel(sizes[cheapest]!);
  }
  sizes[depth - 1]! += left;
  return sizes;
}

/**
 * The deepest tree of `ruleCount` rules RULE_LIMITS allow: RULE_LIMITS.depth "none" groups (each one more NOT),
 * each nested group first among its parent's rules (where a balanced join nests deepest), the innermost group
 * opening with the deepest conditions. Fillers bind nothing.
 */
function deepestTree(ruleCount: number = RULE_LIMITS.rules, deepest: Condition[] = [scoreIsNot(0), lacksVip()]): RuleGroup {
  const sizes = deepestSizes(RULE_LIMITS.depth, ruleCount);
  let group: RuleGroup = flat("none", filled(sizes.at(-1)!, NO_ONE, deepest));
  for (const size of sizes.slice(0, -1).reverse()) group = flat("none", [group, ...filled(size - 1, NO_ONE)]);
  return group;
}

function treeShape(tree: RuleGroup): { rules: number; depth: number } {
  const children = tree.rules.map((r) => ("match" in r ? treeShape(r) : { rules: 0, depth: 0 }));
  return {
    rules: tree.rules.length + children.reduce((n, c) => n + c.rules, 0),
    depth: 1 + Math.max(0, ...children.map((c) => c.depth)),
  };
}

/**
 * How many more levels of nesting D1 accepts around `predicate` where an export's page query puts it: the most
 * NOTs it can be wrapped in and still be prepared. D1's depth of the predicate there is about 100 minus this.
 */
async function headroom(predicate: SQL): Promise<number> {
  const db = await shardDb(account.id);
  const prepares = async (levels: number) => {
    try {
      await db.run(sql`EXPLAIN QUERY PLAN SELECT s.id FROM subscribers s
        WHERE s.account_id = ${account.id} AND s.id > ${0} AND ${sql.raw("NOT ".repeat(levels))}(${predicate}) ORDER BY s.id LIMIT ${1}`);
      return true;
    } catch (error) {
      if (!/Expression tree is too large/.test(String((error as Error).cause))) throw error;
      return false;
    }
  };
  if (!(await prepares(0))) return -1;
  let low = 0;
  let high = 100;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (await prepares(middle)) low = middle;
    else high = middle - 1;
  }
  return low;
}

const union = (segments: Array<{ id: number; name: string; rules: RuleGroup }>, status: ExportSpec["status"] = "any") =>
  matchPredicate(segments, status, NOW, rules.fieldTypes);

interface SegmentItem {
  segmentid: string;
  contacts: number | null;
  errormessage?: string;
}

const getSegments = async () => dataOf<SegmentItem[]>(await callApi(request(account, "Segments", "GetSegments")));

const subscribersPage = (segmentIds: number[]) =>
  callApi<{ count: number; subscribers: Array<{ emailaddress: string }> }>(
    request(account, "Segments", "GetSegmentSubscribers", { segmentid: segmentIds, pagination: { limit: 1000 } }),
  );

/** Exports the segments through the export consumer and returns the file's emails, sorted. */
async function exportedEmails(segmentIds: number[]): Promise<string[]> {
  const h = harness();
  const jobId = await createJob(h, account, { segmentid: segmentIds });
  await runToEnd(h, jobId);
  expect((await jobRow(jobId)).state).toBe("complete");
  return (await exportedJson(jobId)).response.data.subscribers.map((r) => r.emailaddress).sort();
}

describe("a group's rules are joined as a balanced tree", () => {
  it.each(["all", "any", "none"] as const)(
    "a flat %s group of RULE_LIMITS.rules conditions runs and matches what it means",
    async (match) => {
      // One condition that tells people apart, the rest fillers that do not change the group's answer.
      const conditions = match === "all" ? filled(RULE_LIMITS.rules, EVERYONE, [lacksVip()]) : filled(RULE_LIMITS.rules, NO_ONE, [lacksVip()]);
      const group = flat(match, conditions);
      expect(await emailsMatching(account.id, compile(rules, group))).toEqual(expectedEmails([group]));
    },
  );

  it("nests about log2(n) deep: a group of RULE_LIMITS.rules conditions is at most 8 levels deeper than one of 1", async () => {
    const one = await headroom(compile(rules, flat("all", [EVERYONE])));
    const many = await headroom(compile(rules, flat("all", filled(RULE_LIMITS.rules, EVERYONE))));
    expect(one - many).toBeLessThanOrEqual(Math.ceil(Math.log2(RULE_LIMITS.rules)) + 1);
  });

  it("binds the same values, in the same order, as its conditions compiled one by one", () => {
    const conditions = Array.from({ length: 37 }, (_, i) =>
      i % 3 === 0 ? scoreIsNot(i) : i % 3 === 1 ? emailIs(`p${i}@example.com`) : lacksVip(),
    );
    const one = (c: Condition) => dialect.sqlToQuery(compile(rules, flat("all", [c]))).params;
    for (const match of ["all", "any", "none"] as const) {
      expect(dialect.sqlToQuery(compile(rules, flat(match, conditions))).params).toEqual(conditions.flatMap(one));
    }
  });

  it("matches what the tree means for random trees of all, any and none groups (NULLs included)", async () => {
    const condition = fc.oneof(
      fc.constant(NO_ONE),
      fc.constant(EVERYONE),
      fc.constantFrom(...PEOPLE.slice(0, 4).map((p) => emailIs(p.email))),
      fc.integer({ min: 0, max: 3 }).map(scoreIsNot),
      fc.constant(lacksVip()),
    );
    const { tree } = fc.letrec<{ tree: RuleGroup; rule: Condition | RuleGroup }>((tie) => ({
      tree: fc.record({
        match: fc.constantFrom("all" as const, "any" as const, "none" as const),
        rules: fc.array(tie("rule"), { maxLength: 6 }),
      }),
      rule: fc.oneof({ depthSize: "small", withCrossShrink: true }, condition, tie("tree")),
    }));
    await fc.assert(
      fc.asyncProperty(tree, async (group) => {
        const predicate = compile(rules, group);
        fc.pre(dialect.sqlToQuery(predicate).params.length < 90);
        expect(await emailsMatching(account.id, predicate)).toEqual(expectedEmails([group]));
      }),
      { seed: 20_260_601, numRuns: 60 },
    );
  });
});

describe("an export's segments are joined as a balanced tree", () => {
  it("binds the same values, in the same order, as its segments compiled one by one", () => {
    const segments = Array.from({ length: 13 }, (_, i) => ({
      id: i + 1,
      name: `s${i}`,
      rules: flat("any", [emailIs(`p${i}@example.com`), scoreIsNot(i)]),
    }));
    const params = dialect.sqlToQuery(union(segments, "active")).params;
    expect(params).toEqual([...segments.flatMap((s) => dialect.sqlToQuery(compile(rules, s.rules)).params), "active"]);
  });
});

describe("what the reviewer found", () => {
  it("GetSegments counts a segment of one flat group of 95 conditions", async () => {
    const group = flat("all", filled(95, EVERYONE, [lacksVip()]));
    const id = await createSegment(account.id, group, "Flat 95");
    const response = await callApi<SegmentItem[]>(request(account, "Segments", "GetSegments"));
    expect(response.status).toBe(200);
    expect(dataOf(response).find((s) => s.segmentid === String(id))).toMatchObject({ contacts: expectedEmails([group]).length });
  });

  it("12 segments of 88 conditions each are paged by GetSegmentSubscribers and exported", async () => {
    const groups = PEOPLE.slice(0, 12).map((p) => flat("all", filled(88, EVERYONE, [emailIs(p.email)])));
    const ids: number[] = [];
    for (const [i, group] of groups.entries()) ids.push(await createSegment(account.id, group, `Flat 88 #${i}`));
    const response = await subscribersPage(ids);
    expect(response.status).toBe(200);
    expect(dataOf(response).subscribers.map((r) => r.emailaddress).sort()).toEqual(expectedEmails(groups));
    expect(await exportedEmails(ids)).toEqual(expectedEmails(groups));
  });
});

describe("the deepest trees RULE_LIMITS and DETAILS_LIMITS allow", () => {
  it("the deepest tree has RULE_LIMITS.rules rules in groups nested RULE_LIMITS.depth deep", () => {
    expect(treeShape(deepestTree())).toEqual({ rules: RULE_LIMITS.rules, depth: RULE_LIMITS.depth });
    // With 100 rules and 8 groups: 3 groups of 17 rules and 5 of 9 or more, 35 levels of joins and 8 NOTs.
    expect(deepestSizes(RULE_LIMITS.depth, RULE_LIMITS.rules).reduce((n, c) => n + Math.ceil(Math.log2(c)), 0)).toBe(35);
  });

  it("a tree of RULE_LIMITS.rules conditions in one group, nested RULE_LIMITS.depth deep, is counted and exported", async () => {
    let tree: RuleGroup = flat("any", filled(RULE_LIMITS.rules - (RULE_LIMITS.depth - 1), NO_ONE, [scoreIsNot(0), lacksVip()]));
    for (let level = 1; level < RULE_LIMITS.depth; level++) tree = flat(level % 2 ? "none" : "all", [tree]);
    expect(treeShape(tree)).toEqual({ rules: RULE_LIMITS.rules, depth: RULE_LIMITS.depth });
    const id = await createSegment(account.id, tree, "One deep group");
    expect((await getSegments()).find((s) => s.segmentid === String(id))).toEqual(
      expect.objectContaining({ contacts: expectedEmails([tree]).length }),
    );
    expect(dataOf(await subscribersPage([id])).subscribers.map((r) => r.emailaddress).sort()).toEqual(expectedEmails([tree]));
    expect(await exportedEmails([id])).toEqual(expectedEmails([tree]));
  });

  it("the deepest tree runs alone: compiled, counted by GetSegments, paged and exported", async () => {
    const tree = deepestTree();
    const expected = expectedEmails([tree]);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(PEOPLE.length);
    expect(await emailsMatching(account.id, compile(rules, tree))).toEqual(expected);
    const id = await createSegment(account.id, tree, "Deepest");
    const items = await getSegments();
    expect(items.find((s) => s.segmentid === String(id))).toEqual(expect.objectContaining({ contacts: expected.length }));
    expect(items.filter((s) => s.errormessage !== undefined)).toEqual([]);
    expect(dataOf(await subscribersPage([id])).subscribers.map((r) => r.emailaddress).sort()).toEqual(expected);
    expect(await exportedEmails([id])).toEqual(expected);
    const room = await headroom(union([{ id, name: "Deepest", rules: tree }], "active"));
    console.log(`the deepest tree alone: D1 accepts ${room} more levels (nested about ${100 - room} of 100)`);
    expect(room).toBeGreaterThanOrEqual(30);
  });

  it(`DETAILS_LIMITS.segments segments of RULE_LIMITS.rules rules each are refused as too large (422), never a 500`, async () => {
    // Each of the deepest shape; all but the first bind one value, so that the request fails on its length.
    const ids: number[] = [];
    for (let i = 0; i < DETAILS_LIMITS.segments; i++) {
      ids.push(await createSegment(account.id, i === 0 ? deepestTree() : deepestTree(RULE_LIMITS.rules, [lacksVip()]), `Full #${i}`));
    }
    const response = await subscribersPage(ids);
    expect(response.status).toBe(422);
    expect(JSON.stringify(response.body)).toMatch(/bytes of SQL; D1 allows 100000 per statement/);
    const async = await callApi(
      request(account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: ids,
        notify: { type: "email", value: "exports@example.com" },
      }),
    );
    expect(async.status).toBe(422);
  });

  it(`the deepest request that fits: the deepest tree and ${DETAILS_LIMITS.segments - 1} more as large as fit, paged and exported`, async () => {
    // The others are the deepest trees of as many rules as let the request fit D1's limits.
    const fits = (others: number) => {
      const trees = [deepestTree(), ...Array.from({ length: DETAILS_LIMITS.segments - 1 }, () => deepestTree(others, [lacksVip()]))];
      const spec: ExportSpec = {
        segmentIds: trees.map((_, i) => i + 1),
        segments: trees.map((t, i) => ({ id: i + 1, name: `s${i}`, rules: t })),
        status: "any",
        includeMembership: false,
        customFields: [],
        format: "json",
        requestedAt: NOW.toISOString(),
      };
      try {
        pageQuery(spec, account.id, rules.fieldTypes);
        return trees;
      } catch {
        return undefined;
      }
    };
    let size = RULE_LIMITS.rules;
    let trees = fits(size);
    while (!trees) trees = fits(--size);
    expect(size).toBeGreaterThanOrEqual(40);

    // Segments are joined in id order: the deepest tree first, where the balanced OR nests deepest.
    const ids: number[] = [];
    for (const [i, tree] of trees.entries()) ids.push(await createSegment(account.id, tree, `Widest request #${i}`));
    const expected = expectedEmails(trees);
    expect(dataOf(await subscribersPage(ids)).subscribers.map((r) => r.emailaddress).sort()).toEqual(expected);
    expect(await exportedEmails(ids)).toEqual(expected);
    const counts = await getSegments();
    for (const [i, id] of ids.entries()) {
      expect(counts.find((s) => s.segmentid === String(id))).toEqual(expect.objectContaining({ contacts: expectedEmails([trees[i]!]).length }));
    }

    const room = await headroom(union(trees.map((rules, i) => ({ id: ids[i]!, name: `s${i}`, rules })), "active"));
    console.log(
      `the deepest request (${ids.length} segments, the others of ${size} rules): D1 accepts ${room} more levels (nested about ${100 - room} of 100)`,
    );
    expect(room).toBeGreaterThanOrEqual(25);
  });
});
