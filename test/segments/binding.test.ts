/** User values in rules are bound parameters, never spliced into the SQL text. */
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { beforeAll, describe, expect, it } from "vitest";
import type { Condition, RuleGroup } from "../../src/segments/rules";
import { addSubscriber, createField } from "../fixtures";
import { compile, emailsMatching, emailsWhere, refreshFields, ruleAccount, sorted, type RuleAccount } from "./helpers";

const INJECTION = "x' OR 1=1 --";
const dialect = new SQLiteAsyncDialect();

let account: RuleAccount;
let company: number;

beforeAll(async () => {
  account = await ruleAccount();
  company = await createField(account.id, "Company", "text");
  await refreshFields(account);
  await addSubscriber(account.id, account.listId, { email: "ann@example.com", fields: { [company]: "Acme" } });
  await addSubscriber(account.id, account.listId, { email: "bob@example.com", fields: { [company]: "Globex" } });
});

describe("an injection attempt as a value", () => {
  const attempts = (): Condition[] => [
    { field: "email", operator: "equals", value: INJECTION },
    { field: "email", operator: "contains", value: INJECTION },
    { field: "email", operator: "in", value: ["ann@example.com' OR 'a'='a", INJECTION] },
    { field: "customfield", fieldid: company, operator: "equals", value: INJECTION },
    { field: "customfield", fieldid: company, operator: "starts_with", value: INJECTION },
  ];

  it("matches nothing", async () => {
    for (const condition of attempts()) {
      expect(await emailsWhere(account, condition), JSON.stringify(condition)).toEqual([]);
    }
  });

  it("is a bound parameter and does not appear in the SQL text", () => {
    for (const condition of attempts()) {
      const { sql, params } = dialect.sqlToQuery(compile(account, { match: "all", rules: [condition] }));
      expect(sql).not.toContain("1=1");
      expect(params.some((p) => String(p).includes(INJECTION))).toBe(true);
    }
  });

  it("matches a subscriber whose stored value is that very text", async () => {
    const other = await ruleAccount();
    await addSubscriber(other.id, other.listId, { email: INJECTION });
    await addSubscriber(other.id, other.listId, { email: "plain@example.com" });
    expect(await emailsWhere(other, { field: "email", operator: "equals", value: INJECTION })).toEqual([INJECTION]);
  });
});

it("no user value of a tree mixing every field appears in the SQL text", async () => {
  const tree: RuleGroup = {
    match: "any",
    rules: [
      { field: "email", operator: "ends_with", value: "@needle-email.test" },
      { field: "status", operator: "in", value: ["active", "bounced"] },
      { field: "subscribedate", operator: "between", value: ["2025-01-02", "2025-03-04"] },
      { field: "list", operator: "equals", value: 987654 },
      { field: "tag", operator: "in", value: [876543] },
      { match: "none", rules: [{ field: "customfield", fieldid: company, operator: "contains", value: "needle-company" }] },
    ],
  };
  const fragment = compile(account, tree);
  const { sql, params } = dialect.sqlToQuery(fragment);
  for (const value of ["needle-email", "active", "bounced", "2025-01-02", "2025-03-04", "987654", "876543", "needle-company", `"${company}"`]) {
    expect(sql).not.toContain(value);
  }
  expect(params).toEqual(expect.arrayContaining(["%@needle-email.test", "active", "bounced", 987654, 876543, "%needle-company%"]));
  // And it runs: ann and bob are active, subscribed 2025-01-15 and do not work at needle-company.
  expect(await emailsMatching(account.id, fragment)).toEqual(sorted(["ann@example.com", "bob@example.com"]));
});
