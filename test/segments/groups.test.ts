/** Rule groups: match all / any / none, nesting, and empty groups, run against the real D1. */
import { beforeAll, describe, expect, it } from "vitest";
import type { Condition } from "../../src/segments/rules";
import { addSubscriber, createList, createTag } from "../fixtures";
import { emailsOf, ruleAccount, sorted, type RuleAccount } from "./helpers";

let account: RuleAccount;
let listA: number;
let listB: number;
let vip: number;
let trial: number;
const everyone = ["ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com", "eve@example.com"];

// ann: active, list A, vip       bob: active, list B          cat: inactive, list A, vip
// dan: bounced, list B, trial     eve: inactive, list B, vip + trial
beforeAll(async () => {
  account = await ruleAccount();
  listA = await createList(account.id, "A");
  listB = await createList(account.id, "B");
  vip = await createTag(account.id, "vip");
  trial = await createTag(account.id, "trial");
  await addSubscriber(account.id, listA, { email: "ann@example.com", status: "active", tags: [vip] });
  await addSubscriber(account.id, listB, { email: "bob@example.com", status: "active" });
  await addSubscriber(account.id, listA, { email: "cat@example.com", status: "inactive", tags: [vip] });
  await addSubscriber(account.id, listB, { email: "dan@example.com", status: "bounced", tags: [trial] });
  await addSubscriber(account.id, listB, { email: "eve@example.com", status: "inactive", tags: [vip, trial] });
});

const active: Condition = { field: "status", operator: "equals", value: "active" };
const isVip = (): Condition => ({ field: "tag", operator: "equals", value: vip });
const onListB = (): Condition => ({ field: "list", operator: "equals", value: listB });

describe("match all / any / none", () => {
  it("all matches subscribers that satisfy every rule", async () => {
    expect(await emailsOf(account, { match: "all", rules: [active, isVip()] })).toEqual(["ann@example.com"]);
  });

  it("any matches subscribers that satisfy at least one rule", async () => {
    expect(await emailsOf(account, { match: "any", rules: [active, isVip()] })).toEqual(
      sorted(["ann@example.com", "bob@example.com", "cat@example.com", "eve@example.com"]),
    );
  });

  it("none matches subscribers that satisfy no rule", async () => {
    expect(await emailsOf(account, { match: "none", rules: [active, isVip()] })).toEqual(["dan@example.com"]);
  });

  it("none of one rule is its negation", async () => {
    expect(await emailsOf(account, { match: "none", rules: [isVip()] })).toEqual(
      sorted(["bob@example.com", "dan@example.com"]),
    );
  });
});

describe("nested groups", () => {
  it("all containing any: active and (vip or on list B)", async () => {
    expect(
      await emailsOf(account, { match: "all", rules: [active, { match: "any", rules: [isVip(), onListB()] }] }),
    ).toEqual(sorted(["ann@example.com", "bob@example.com"]));
  });

  it("any containing all: (active and on list B) or (inactive and vip)", async () => {
    expect(
      await emailsOf(account, {
        match: "any",
        rules: [
          { match: "all", rules: [active, onListB()] },
          { match: "all", rules: [{ field: "status", operator: "equals", value: "inactive" }, isVip()] },
        ],
      }),
    ).toEqual(sorted(["bob@example.com", "cat@example.com", "eve@example.com"]));
  });

  it("all containing none: vip and not inactive", async () => {
    expect(
      await emailsOf(account, {
        match: "all",
        rules: [isVip(), { match: "none", rules: [{ field: "status", operator: "equals", value: "inactive" }] }],
      }),
    ).toEqual(["ann@example.com"]);
  });

  it("none containing all excludes only those matching the whole inner group", async () => {
    expect(
      await emailsOf(account, { match: "none", rules: [{ match: "all", rules: [isVip(), onListB()] }] }),
    ).toEqual(sorted(everyone.filter((e) => e !== "eve@example.com")));
  });

  it("three levels deep: on list B and not (trial and (bounced or vip))", async () => {
    expect(
      await emailsOf(account, {
        match: "all",
        rules: [
          onListB(),
          {
            match: "none",
            rules: [
              {
                match: "all",
                rules: [
                  { field: "tag", operator: "equals", value: trial },
                  { match: "any", rules: [{ field: "status", operator: "equals", value: "bounced" }, isVip()] },
                ],
              },
            ],
          },
        ],
      }),
    ).toEqual(["bob@example.com"]);
  });
});

describe("empty groups", () => {
  it("an empty all group matches everyone", async () => {
    expect(await emailsOf(account, { match: "all", rules: [] })).toEqual(sorted(everyone));
  });

  it("an empty any group matches nobody", async () => {
    expect(await emailsOf(account, { match: "any", rules: [] })).toEqual([]);
  });

  it("an empty none group matches everyone", async () => {
    expect(await emailsOf(account, { match: "none", rules: [] })).toEqual(sorted(everyone));
  });

  it("an empty any group inside all makes the whole group match nobody", async () => {
    expect(await emailsOf(account, { match: "all", rules: [active, { match: "any", rules: [] }] })).toEqual([]);
  });

  it("an empty all group inside any makes the whole group match everyone", async () => {
    expect(await emailsOf(account, { match: "any", rules: [isVip(), { match: "all", rules: [] }] })).toEqual(
      sorted(everyone),
    );
  });

  it("an empty any group inside none excludes nobody", async () => {
    expect(await emailsOf(account, { match: "none", rules: [isVip(), { match: "any", rules: [] }] })).toEqual(
      sorted(["bob@example.com", "dan@example.com"]),
    );
  });
});
