/** matchPredicate (src/export/query.ts): the union of an export's segments, narrowed by the status filter. */
import { beforeAll, describe, expect, it } from "vitest";
import { matchPredicate } from "../../src/export/query";
import type { RuleGroup } from "../../src/segments/rules";
import { addSubscriber, createField, createList, createTag } from "../fixtures";
import { emailsMatching, NOW, refreshFields, ruleAccount, sorted, type RuleAccount } from "./helpers";

let account: RuleAccount;
let customers: number;
let vip: number;
let score: number;

// On the Customers list: ann (active, vip), bob (inactive), cat (bounced, vip).
// Elsewhere: dan (active, vip), eve (active), fay (unsubscribed, vip, score 50), gus (active, score 80).
beforeAll(async () => {
  account = await ruleAccount();
  customers = await createList(account.id, "Customers");
  vip = await createTag(account.id, "vip");
  score = await createField(account.id, "Score", "number");
  await refreshFields(account);
  await addSubscriber(account.id, customers, { email: "ann@example.com", status: "active", tags: [vip] });
  await addSubscriber(account.id, customers, { email: "bob@example.com", status: "inactive" });
  await addSubscriber(account.id, customers, { email: "cat@example.com", status: "bounced", tags: [vip] });
  await addSubscriber(account.id, account.listId, { email: "dan@example.com", status: "active", tags: [vip] });
  await addSubscriber(account.id, account.listId, { email: "eve@example.com", status: "active" });
  await addSubscriber(account.id, account.listId, {
    email: "fay@example.com",
    status: "unsubscribed",
    tags: [vip],
    fields: { [score]: 50 },
  });
  await addSubscriber(account.id, account.listId, { email: "gus@example.com", status: "active", fields: { [score]: 80 } });
});

const segment = (id: number, name: string, rules: RuleGroup) => ({ id, name, rules });
const customerSegment = () =>
  segment(1, "Customers", { match: "all", rules: [{ field: "list", operator: "equals", value: customers }] });
const vipSegment = () => segment(2, "VIPs", { match: "all", rules: [{ field: "tag", operator: "equals", value: vip }] });
const highScoreSegment = () =>
  segment(3, "High score", { match: "all", rules: [{ field: "customfield", fieldid: score, operator: "greater_than", value: 40 }] });

const union = (segments: ReturnType<typeof segment>[], status: Parameters<typeof matchPredicate>[1]) =>
  emailsMatching(account.id, matchPredicate(segments, status, NOW, account.fieldTypes));

describe("the union of segments", () => {
  it("one segment matches its own subscribers", async () => {
    expect(await union([customerSegment()], "any")).toEqual(
      sorted(["ann@example.com", "bob@example.com", "cat@example.com"]),
    );
  });

  it("lists a subscriber in two segments once", async () => {
    expect(await union([customerSegment(), vipSegment()], "any")).toEqual(
      sorted(["ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com", "fay@example.com"]),
    );
  });

  it("lists a subscriber in three overlapping segments once", async () => {
    expect(await union([customerSegment(), vipSegment(), highScoreSegment()], "any")).toEqual(
      sorted([
        "ann@example.com",
        "bob@example.com",
        "cat@example.com",
        "dan@example.com",
        "fay@example.com",
        "gus@example.com",
      ]),
    );
  });

  it("the same segment twice matches what it matches once", async () => {
    expect(await union([vipSegment(), vipSegment()], "any")).toEqual(await union([vipSegment()], "any"));
  });

  it("a segment with an empty any group adds nobody to the union", async () => {
    expect(await union([vipSegment(), segment(4, "Nobody", { match: "any", rules: [] })], "any")).toEqual(
      await union([vipSegment()], "any"),
    );
  });
});

describe("the status filter", () => {
  it("any keeps every status", async () => {
    expect(await union([vipSegment()], "any")).toEqual(
      sorted(["ann@example.com", "cat@example.com", "dan@example.com", "fay@example.com"]),
    );
  });

  it("narrows the union to one status", async () => {
    expect(await union([customerSegment(), vipSegment()], "active")).toEqual(
      sorted(["ann@example.com", "dan@example.com"]),
    );
    expect(await union([customerSegment(), vipSegment()], "unsubscribed")).toEqual(["fay@example.com"]);
  });

  it("applies to every segment of the union, not only the last", async () => {
    // Without parentheses around the union, "customers OR vip AND status" would let bounced cat through.
    expect(await union([customerSegment(), vipSegment()], "inactive")).toEqual(["bob@example.com"]);
  });

  it("can leave nobody", async () => {
    expect(await union([highScoreSegment()], "bounced")).toEqual([]);
  });
});
