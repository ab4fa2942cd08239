/** Helpers for the segment rule tests: compile a rule tree for a test account and run it on the real D1. */
import { sql, type SQL } from "drizzle-orm";
import { expect } from "vitest";
import { DomainError } from "../../src/errors";
import type { CustomFieldType } from "../../src/db/shard_schema";
import { loadCustomFieldTypes } from "../../src/export/query";
import { compileRules } from "../../src/segments/compile";
import type { Condition, RuleGroup } from "../../src/segments/rules";
import { createAccount, createList, shardDb } from "../fixtures";

/** "Now" for every compiled tree, so that "within the last N days" is reproducible. */
export const NOW = new Date("2025-06-15T12:00:00Z");

export interface RuleAccount {
  id: number;
  /** A list for subscribers whose list does not matter to the test. */
  listId: number;
  fieldTypes: ReadonlyMap<number, CustomFieldType>;
}

/** A fresh account with one list; call `refreshFields` after creating custom fields. */
export async function ruleAccount(): Promise<RuleAccount> {
  const account = await createAccount();
  return { id: account.id, listId: await createList(account.id, "Main"), fieldTypes: new Map() };
}

export async function refreshFields(account: RuleAccount): Promise<void> {
  account.fieldTypes = await loadCustomFieldTypes(await shardDb(account.id), account.id);
}

export function compile(account: Pick<RuleAccount, "fieldTypes">, tree: RuleGroup, segmentName = "Test"): SQL {
  return compileRules(tree, { customFieldTypes: account.fieldTypes, now: NOW, segmentName });
}

/** The emails of the account's subscribers that satisfy a predicate, sorted; duplicates are kept. */
export async function emailsMatching(accountId: number, predicate: SQL): Promise<string[]> {
  const rows = await (await shardDb(accountId)).values<[string]>(
    sql`SELECT s.email FROM subscribers s WHERE s.account_id = ${accountId} AND ${predicate}`,
  );
  return rows.map(([email]) => email).sort();
}

/** The emails matched by a tree. */
export const emailsOf = (account: RuleAccount, tree: RuleGroup) => emailsMatching(account.id, compile(account, tree));

/** The emails matched by a single condition. */
export const emailsWhere = (account: RuleAccount, condition: Condition) =>
  emailsOf(account, { match: "all", rules: [condition] });

/** Sorted copy, to compare with `emailsMatching`. */
export const sorted = (emails: string[]) => [...emails].sort();

/** The code and message of the DomainError a function throws; fails the test if it throws none. */
export function domainErrorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    return { code: (error as DomainError).code, message: (error as DomainError).message };
  }
  throw new Error("expected a DomainError");
}

/** The code and message of the DomainError compiling a tree throws. */
export const compileError = (account: Pick<RuleAccount, "fieldTypes">, tree: RuleGroup, segmentName = "Test") =>
  domainErrorOf(() => compile(account, tree, segmentName));
