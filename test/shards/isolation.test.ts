/**
 * Cross-shard isolation: an account never reads another shard's rows, even with forged ids.
 *
 * Account A lives on SHARD_0, account B on SHARD_1. On SHARD_1 lie rows that carry A's account_id, as a move
 * of A to SHARD_1 that stopped half-way would leave them: copies of A's "Customers" list, "vip" tag and
 * "Company" field under their own ids, a list, a tag and a field that exist only there, subscribers on them
 * (some on B's list, all tagged with B's tag too: forged links to another account's ids), and a segment whose
 * id came from the allocator. The directory still says
 * SHARD_0, so for A none of this exists; and for B, on the same shard, rows of another account never count.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import { customFields, lists, segments, subscribers, subscriberTags, tags } from "../../src/db/shard_schema";
import type { RuleGroup } from "../../src/segments/rules";
import { allocateIds } from "../../src/shards/ids";
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
  segmentRow,
  updateSegmentRow,
  type SubscriberInput,
  type TestAccount,
} from "../fixtures";
import { EMAIL_NOTIFY, expectError, exportJobCount } from "../api/helpers";
import { createJob, exportedJson, harness, jobRow, runToEnd } from "../export/driver";

interface Person extends SubscriberInput {
  id: number;
  listId: number;
}

/** An account's own data, made through the fixtures on the account's shard. */
async function seedAccount(shard: "SHARD_0" | "SHARD_1", size: number) {
  const account = await createAccount(undefined, { shard });
  const newsletter = await createList(account.id, "Newsletter");
  const customers = await createList(account.id, "Customers");
  const company = await createField(account.id, "Company", "text");
  const score = await createField(account.id, "Score", "number");
  const vip = await createTag(account.id, "vip");
  const people: Person[] = [];
  for (let i = 0; i < size; i++) {
    const listId = i % 3 === 0 ? customers : newsletter;
    const input: SubscriberInput = {
      email: `${shard.toLowerCase()}-own${String(i).padStart(2, "0")}@example.com`,
      status: (["active", "inactive", "bounced", "unsubscribed"] as const)[i % 4],
      fields: { [company]: i % 2 === 0 ? "Acme, Inc." : "Globex", [score]: i },
      tags: i % 4 === 1 ? [vip] : [],
    };
    people.push({ ...input, id: await addSubscriber(account.id, listId, input), listId });
  }
  const rule = (r: RuleGroup["rules"][number]): RuleGroup => ({ match: "all", rules: [r] });
  const segmentIds = {
    everyone: await createSegment(account.id, { match: "all", rules: [] }, "Everyone"),
    customers: await createSegment(account.id, rule({ field: "list", operator: "equals", value: customers }), "Customers"),
    vip: await createSegment(account.id, rule({ field: "tag", operator: "equals", value: vip }), "VIPs"),
    acme: await createSegment(account.id, rule({ field: "customfield", fieldid: company, operator: "starts_with", value: "acme" }), "Acme"),
  };
  const members = {
    everyone: people,
    customers: people.filter((p) => p.listId === customers),
    vip: people.filter((p) => p.tags!.includes(vip)),
    acme: people.filter((p) => String(p.fields![company]).startsWith("Acme")),
  };
  return { account, lists: { newsletter, customers }, fields: { company, score }, tags: { vip }, segments: segmentIds, members };
}

type Seeded = Awaited<ReturnType<typeof seedAccount>>;

let a: Seeded;
let b: Seeded;
/** A's stray rows on SHARD_1. */
let stray: { list: number; tag: number; field: number; segment: number; emails: string[]; onCustomersCopy: number };

beforeAll(async () => {
  a = await seedAccount("SHARD_0", 16);
  b = await seedAccount("SHARD_1", 9);

  // What a half-finished move of A to SHARD_1 leaves there: written straight to SHARD_1, ids from the allocator
  // or copied from A's rows on SHARD_0.
  const shard1 = drizzle(env.SHARD_1);
  const accountId = a.account.id;
  const next = (table: Parameters<typeof allocateIds>[1]) => allocateIds(env.DB, table);
  stray = {
    list: await next("lists"),
    tag: await next("tags"),
    field: await next("custom_fields"),
    segment: await next("segments"),
    emails: [],
    onCustomersCopy: 0,
  };
  await shard1.insert(lists).values([
    { id: a.lists.customers, accountId, name: "Customers" },
    { id: stray.list, accountId, name: "Stray list" },
  ]);
  await shard1.insert(tags).values([
    { id: a.tags.vip, accountId, name: "vip" },
    { id: stray.tag, accountId, name: "stray" },
  ]);
  await shard1.insert(customFields).values([
    { id: a.fields.company, accountId, name: "Company", type: "text" },
    { id: stray.field, accountId, name: "Stray field", type: "text" },
  ]);
  for (let i = 0; i < 8; i++) {
    const id = await next("subscribers");
    const email = `stray${i}@example.com`;
    stray.emails.push(email);
    if (i % 3 === 0) stray.onCustomersCopy++;
    await shard1.insert(subscribers).values({
      id,
      accountId,
      // On the copy of A's Customers list, on the list that exists only here, or on B's list (forged).
      listId: [a.lists.customers, stray.list, b.lists.customers][i % 3]!,
      email,
      status: "active",
      subscribeDate: "2025-03-03T03:03:03Z",
      // Values under A's Company field id, B's Company field id, and the stray field.
      customFields: { [a.fields.company]: "Acme stray", [b.fields.company]: "Acme stray", [stray.field]: "here" },
    });
    // Tagged with the copy of A's vip tag, the stray tag, and B's vip tag (a forged cross-account link).
    await shard1.insert(subscriberTags).values([
      { subscriberId: id, tagId: a.tags.vip },
      { subscriberId: id, tagId: stray.tag },
      { subscriberId: id, tagId: b.tags.vip },
    ]);
  }
  await shard1.insert(segments).values({ id: stray.segment, accountId, name: "Stray copy", rules: { match: "all", rules: [] } });
});

interface SegmentItem {
  segmentid: string;
  segmentname: string;
  contacts: number | null;
  errormessage?: string;
}

/** GetSegments, after making every listed segment's count stale, so that each is counted during the call. */
async function recountedSegments(account: TestAccount, ids: number[]) {
  for (const id of ids) await updateSegmentRow(id, { countedAt: 0, contactsCount: null, countError: null });
  return dataOf<SegmentItem[]>(await callApi(request(account, "Segments", "GetSegments")));
}

const emailsOf = (people: Person[]) => [...people].sort((x, y) => x.id - y.id).map((p) => p.email);

describe("GetSegments reads only the account's own shard", () => {
  it("lists only A's segments on SHARD_0, never the stray segment on SHARD_1", async () => {
    const rows = await recountedSegments(a.account, Object.values(a.segments));
    expect(rows.map((r) => [r.segmentid, r.segmentname])).toEqual([
      [String(a.segments.everyone), "Everyone"],
      [String(a.segments.customers), "Customers"],
      [String(a.segments.vip), "VIPs"],
      [String(a.segments.acme), "Acme"],
    ]);
  });

  it("counts A's own subscribers only, although the strays match every one of A's rules on SHARD_1", async () => {
    const rows = await recountedSegments(a.account, Object.values(a.segments));
    expect(rows.map((r) => r.contacts)).toEqual([
      a.members.everyone.length,
      a.members.customers.length,
      a.members.vip.length,
      a.members.acme.length,
    ]);
    // The recount wrote to A's shard only: the stray segment was not counted.
    expect(await segmentRow(stray.segment)).toMatchObject({ countedAt: 0, contactsCount: null });
  });

  it("leaves B's segments and counts as B's own, though A's strays lie on B's shard, on B's list and with B's tag", async () => {
    const rows = await recountedSegments(b.account, Object.values(b.segments));
    expect(rows.map((r) => [r.segmentid, r.contacts])).toEqual([
      [String(b.segments.everyone), b.members.everyone.length],
      [String(b.segments.customers), b.members.customers.length],
      [String(b.segments.vip), b.members.vip.length],
      [String(b.segments.acme), b.members.acme.length],
    ]);
  });
});

describe("GetSegmentSubscribersAsync names only the account's own segments", () => {
  it.each([
    ["the stray segment A's id lies on SHARD_1 with", () => stray.segment],
    ["B's segment", () => b.segments.everyone],
  ])("refuses A naming %s: 404, no job", async (_, id) => {
    const before = await exportJobCount(a.account.id);
    const response = await callApi(
      request(a.account, "Segments", "GetSegmentSubscribersAsync", { segmentid: [a.segments.everyone, id()], notify: EMAIL_NOTIFY }),
    );
    expectError(response, 404, `details.segmentid: no segment ${id()} in this account`);
    expect(await exportJobCount(a.account.id)).toBe(before);
  });

  it("refuses A asking for the stray custom field by name, which exists only on SHARD_1", async () => {
    const response = await callApi(
      request(a.account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: [a.segments.everyone],
        customfields: ["Stray field"],
        notify: EMAIL_NOTIFY,
      }),
    );
    expectError(response, 400, 'details.customfields: unknown custom field "Stray field"');
  });
});

describe("an export reads only the account's own shard", () => {
  it("exports exactly A's subscribers of SHARD_0, with A's fields and tags, and none of the strays", async () => {
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 });
    const jobId = await createJob(h, a.account, { segmentid: [a.segments.everyone], customfields: "all", include_membership: true });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", shard: "SHARD_0", processedCount: a.members.everyone.length });
    const { data } = (await exportedJson(jobId)).response;
    expect(data.subscribers.map((s) => s.emailaddress)).toEqual(emailsOf(a.members.everyone));
    expect(data.count).toBe(a.members.everyone.length);
    for (const s of data.subscribers) {
      // "customfields: all" is A's fields on SHARD_0: never the stray field.
      expect(Object.keys(s.customfields).sort()).toEqual(["Company", "Score"]);
      expect(s.tags!.every((t) => t === "vip")).toBe(true);
    }
    expect(data.subscribers.some((s) => stray.emails.includes(s.emailaddress))).toBe(false);
  });

  it("exports the union of A's list, tag and field segments from SHARD_0 only, though the strays match all three", async () => {
    const h = harness();
    const jobId = await createJob(h, a.account, { segmentid: [a.segments.customers, a.segments.vip, a.segments.acme] });
    await runToEnd(h, jobId);
    const union = [...new Set([...a.members.customers, ...a.members.vip, ...a.members.acme])];
    expect((await exportedJson(jobId)).response.data.subscribers.map((s) => s.emailaddress)).toEqual(emailsOf(union));
  });

  it("leaves B's export as B's own, without A's strays on the same shard", async () => {
    const h = harness();
    const jobId = await createJob(h, b.account, { segmentid: [b.segments.everyone, b.segments.vip] });
    await runToEnd(h, jobId);
    expect((await exportedJson(jobId)).response.data.subscribers.map((s) => s.emailaddress)).toEqual(emailsOf(b.members.everyone));
  });
});

describe("a segment of A whose rules name ids that are not A's on SHARD_0", () => {
  const ruleOn = (field: "list" | "tag", value: () => number): RuleGroup => ({
    match: "all",
    rules: [{ field, operator: "in", value: [value()] }],
  });

  it.each([
    ["B's list", () => ruleOn("list", () => b.lists.customers)],
    ["B's tag", () => ruleOn("tag", () => b.tags.vip)],
    ["the stray list, on SHARD_1 under A's account", () => ruleOn("list", () => stray.list)],
    ["the stray tag, on SHARD_1 under A's account", () => ruleOn("tag", () => stray.tag)],
  ])("matches nothing when it names %s: counted 0, exported empty", async (_, rules) => {
    const id = await createSegment(a.account.id, rules(), "Foreign ids");
    try {
      const row = (await recountedSegments(a.account, [id])).find((r) => r.segmentid === String(id));
      expect(row).toMatchObject({ contacts: 0 });
      expect(row).not.toHaveProperty("errormessage");
      const h = harness();
      const jobId = await createJob(h, a.account, { segmentid: [id] });
      await runToEnd(h, jobId);
      expect((await exportedJson(jobId)).response.data).toEqual({ count: 0, subscribers: [] });
    } finally {
      await drizzle(env.SHARD_0).delete(segments).where(eq(segments.id, id));
    }
  });

  it.each([
    ["B's custom field", () => b.fields.company],
    ["the stray custom field, on SHARD_1 under A's account", () => stray.field],
  ])("is refused as the rule compiler refuses an unknown field when it names %s", async (_, fieldId) => {
    const id = await createSegment(
      a.account.id,
      { match: "all", rules: [{ field: "customfield", fieldid: fieldId(), operator: "starts_with", value: "acme" }] },
      "Foreign field",
    );
    try {
      const message = `Segment "Foreign field" rules[0]: custom field ${fieldId()} does not exist in this account`;
      const row = (await recountedSegments(a.account, [id])).find((r) => r.segmentid === String(id));
      expect(row).toMatchObject({ contacts: null, errormessage: message });
      const before = await exportJobCount(a.account.id);
      const response = await callApi(
        request(a.account, "Segments", "GetSegmentSubscribersAsync", { segmentid: [id], notify: EMAIL_NOTIFY }),
      );
      expectError(response, 422, message);
      expect(await exportJobCount(a.account.id)).toBe(before);
    } finally {
      await drizzle(env.SHARD_0).delete(segments).where(eq(segments.id, id));
    }
  });

  it("matches only A's own rows when it names the copied ids (A's list and tag ids, which the strays also carry)", async () => {
    const id = await createSegment(
      a.account.id,
      {
        match: "all",
        rules: [
          { field: "list", operator: "equals", value: a.lists.customers },
          { field: "tag", operator: "equals", value: a.tags.vip },
        ],
      },
      "Copied ids",
    );
    try {
      const expected = a.members.customers.filter((p) => a.members.vip.includes(p));
      const row = (await recountedSegments(a.account, [id])).find((r) => r.segmentid === String(id));
      expect(row).toMatchObject({ contacts: expected.length });
      // Every stray carries the vip copy: were SHARD_1 read, all those on the Customers copy would be counted.
      expect(stray.onCustomersCopy).toBeGreaterThan(expected.length);
    } finally {
      await drizzle(env.SHARD_0).delete(segments).where(eq(segments.id, id));
    }
  });
});
