/**
 * The query plans of a contact batch's statements (WRITE_SQL of src/contacts/write.ts): each starts from the
 * batch's JSON rows and reaches subscribers by an index, one row at a time. A plan that scans the list's (or
 * the account's) subscribers instead makes every batch cost as much as the list is long: 20,000 imported rows
 * once took 221 s that way.
 */
import { describe, expect, it } from "vitest";
import { WRITE_SQL } from "../../src/contacts/write";
import { env } from "cloudflare:workers";
import { shardOfAccount } from "../../src/shards/directory";
import { createAccount, db } from "../fixtures";

/** EXPLAIN QUERY PLAN of `query`, its steps' details (with placeholder bindings: plans do not depend on them). */
async function planOf(query: string): Promise<string[]> {
  const account = await createAccount();
  const { d1 } = await shardOfAccount(env, db(), account.id);
  const parameters = [...new Set(query.match(/\?\d+/g) ?? [])].length;
  const { results } = await d1
    .prepare(`EXPLAIN QUERY PLAN ${query}`)
    .bind(...Array.from({ length: parameters }, (_, i) => (i === 0 ? "[]" : i)))
    .all<{ detail: string }>();
  return results.map((r) => r.detail);
}

describe("a contact batch's statements", () => {
  for (const [name, query] of Object.entries(WRITE_SQL)) {
    it(`${name}: reaches subscribers by index from the batch's rows, and never scans them`, async () => {
      const plan = await planOf(query);
      const touchesSubscribers = plan.filter((step) => /\bsubscribers\b/.test(step) && !/subscriber_tags/.test(step));
      for (const step of touchesSubscribers) {
        expect(step, plan.join("\n")).toMatch(/^SEARCH (subscribers|s) USING (INTEGER PRIMARY KEY|(COVERING )?INDEX subscribers_list_email_idx \(list_id=\? AND email=\?\))/);
      }
      if (/json_each/.test(query)) expect(plan.some((step) => /^SCAN (r|j|e)\b/.test(step)), plan.join("\n")).toBe(true);
    });
  }
});

describe("a batch of new subscribers", () => {
  it("checks that none of its emails is in the list once, not once a row", async () => {
    const plan = await planOf(WRITE_SQL.insertAllNew);
    expect(plan.filter((step) => /CORRELATED/.test(step)), plan.join("\n")).toEqual([]);
  });
});
