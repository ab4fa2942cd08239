/**
 * Rule trees that cannot be compiled: each is refused with DomainError RULES_INVALID and a message that names
 * the segment and the rule's path. And statements over D1's 100 bound parameters are refused up front.
 */
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../src/api/errors";
import { countQuery, matchPredicate, pageQuery } from "../../src/export/query";
import type { ExportSpec } from "../../src/export/spec";
import { countParameters } from "../../src/segments/compile";
import { CONDITION_FIELDS, OPERATORS, OPERATORS_BY_KIND, type Condition, type RuleGroup } from "../../src/segments/rules";
import { addSubscriber, createField, shardDb } from "../fixtures";
import { domainErrorOf, compile, compileError, emailsMatching, NOW, refreshFields, ruleAccount, type RuleAccount } from "./helpers";

let account: RuleAccount;
let company: number;
let score: number;
let renewal: number;

beforeAll(async () => {
  account = await ruleAccount();
  company = await createField(account.id, "Company", "text");
  score = await createField(account.id, "Score", "number");
  renewal = await createField(account.id, "Renewal", "date");
  await refreshFields(account);
});

const one = (condition: Condition): RuleGroup => ({ match: "all", rules: [condition] });

/** The error of a one-condition tree in segment "Test". */
const errorOf = (condition: Condition) => compileError(account, one(condition));
const refused = (message: string) => ({ code: "RULES_INVALID", message: `Segment "Test" rules[0]: ${message}` });

describe("operators that do not apply to the field", () => {
  it("contains on status is refused, listing the operators that apply", () => {
    expect(errorOf({ field: "status", operator: "contains", value: "act" })).toEqual(
      refused(`operator "contains" does not apply to field "status"; use one of equals, not_equals, in`),
    );
  });

  it("contains on a number custom field is refused, naming the field id", () => {
    expect(errorOf({ field: "customfield", fieldid: score, operator: "contains", value: "1" })).toEqual(
      refused(
        `operator "contains" does not apply to custom field ${score}; ` +
          "use one of equals, not_equals, greater_than, less_than, between, in, is_empty, is_not_empty",
      ),
    );
  });

  it("every operator outside a field's kind is refused, and every one inside it is accepted", () => {
    const kinds = { list: "list", email: "text", status: "status", subscribedate: "date", tag: "tag" } as const;
    for (const field of CONDITION_FIELDS.filter((f) => f !== "customfield")) {
      const allowed: readonly string[] = OPERATORS_BY_KIND[kinds[field]];
      for (const operator of OPERATORS) {
        const message = `operator "${operator}" does not apply to field "${field}"`;
        let thrown: unknown;
        try {
          compile(account, one({ field, operator, value: operatorValue(field, operator) }));
        } catch (error) {
          thrown = error;
        }
        if (allowed.includes(operator)) expect(thrown, `${field} ${operator}`).toBeUndefined();
        else expect((thrown as ApiError).message, `${field} ${operator}`).toContain(message);
      }
    }
  });
});

/** A value each accepted operator takes on each built-in field. */
function operatorValue(field: Condition["field"], operator: Condition["operator"]): Condition["value"] {
  if (operator === "is_empty" || operator === "is_not_empty") return undefined;
  if (operator === "within_last_days") return 7;
  if (operator === "between") return ["2025-01-01", "2025-02-01"];
  if (field === "status") return "active";
  if (field === "list" || field === "tag") return 1;
  if (field === "subscribedate") return "2025-01-01";
  return "x";
}

describe("conditions that name no usable field", () => {
  it("a customfield condition without fieldid is refused", () => {
    expect(errorOf({ field: "customfield", operator: "equals", value: "Acme" })).toEqual(
      refused(`a customfield condition needs "fieldid"`),
    );
  });

  it("a custom field id of no field of this account is refused", () => {
    expect(errorOf({ field: "customfield", fieldid: 999_999, operator: "equals", value: "Acme" })).toEqual(
      refused("custom field 999999 does not exist in this account"),
    );
  });
});

describe("values that do not fit the operator or the field", () => {
  it("an operator without a value is refused", () => {
    expect(errorOf({ field: "customfield", fieldid: company, operator: "equals" })).toEqual(
      refused(`operator "equals" needs a single value`),
    );
    expect(errorOf({ field: "list", operator: "in" })).toEqual(refused(`operator "in" needs a value`));
  });

  it("a list of values where one is expected is refused", () => {
    expect(errorOf({ field: "email", operator: "contains", value: ["a", "b"] })).toEqual(
      refused(`operator "contains" needs a single value`),
    );
  });

  it("between a single number is refused", () => {
    expect(errorOf({ field: "customfield", fieldid: score, operator: "between", value: 5 })).toEqual(
      refused(`"between" needs two values, [low, high]`),
    );
    expect(errorOf({ field: "customfield", fieldid: score, operator: "between", value: [1, 2, 3] })).toEqual(
      refused(`"between" needs two values, [low, high]`),
    );
  });

  it("between a single date is refused", () => {
    expect(errorOf({ field: "subscribedate", operator: "between", value: ["2025-01-01"] })).toEqual(
      refused(`"between" needs two values, [from, to]`),
    );
  });

  it("a value that is not a number is refused for a number field", () => {
    expect(errorOf({ field: "customfield", fieldid: score, operator: "greater_than", value: "ten" })).toEqual(
      refused(`"ten" is not a number`),
    );
    expect(errorOf({ field: "customfield", fieldid: score, operator: "in", value: [1, "2x"] })).toEqual(
      refused(`"2x" is not a number`),
    );
    expect(errorOf({ field: "customfield", fieldid: score, operator: "equals", value: " " })).toEqual(
      refused("a number is required"),
    );
  });

  it("a day that does not exist is refused", () => {
    for (const value of ["2025-13-01", "2025-02-30", "2025-04-31"]) {
      expect(errorOf({ field: "subscribedate", operator: "equals", value }), value).toEqual(
        refused(`"${value}" is not a date`),
      );
    }
  });

  it("text that is not a date is refused, saying which formats work", () => {
    for (const value of ["soon", "1", "31/12/2025", "2025-02-30T10:00:00Z", "June 1, 2025"]) {
      expect(errorOf({ field: "customfield", fieldid: renewal, operator: "before", value }), value).toEqual(
        refused(`"${value}" is not a date (use YYYY-MM-DD or an ISO 8601 date-time)`),
      );
    }
  });

  it.each([-1, 1.5, "a week", 36_501, 1e12, "1e12", Number.MAX_SAFE_INTEGER])(
    "within_last_days refuses %j: a count that is negative, fractional, or over 100 years",
    (value) => {
      expect(errorOf({ field: "subscribedate", operator: "within_last_days", value })).toEqual(
        refused(`"within_last_days" needs a whole number of days from 0 to 36500`),
      );
    },
  );

  it("within_last_days accepts 0 and 36500 days", () => {
    for (const value of [0, 36_500, "36500"]) {
      expect(() => compile(account, one({ field: "subscribedate", operator: "within_last_days", value })), String(value)).not.toThrow();
    }
  });

  it("echoes a long value cut to 100 characters", () => {
    const value = `${"9".repeat(20)}x${"y".repeat(500)}`;
    expect(errorOf({ field: "customfield", fieldid: score, operator: "equals", value })).toEqual(
      refused(`"${value.slice(0, 99)}…" is not a number`),
    );
  });

  it("cuts a long segment name to 100 characters", () => {
    const name = "N".repeat(300);
    expect(compileError(account, one({ field: "status", operator: "equals", value: "gone" }), name)).toEqual({
      code: "RULES_INVALID",
      message: `Segment "${"N".repeat(99)}…" rules[0]: "gone" is not a status (active, inactive, bounced, unsubscribed)`,
    });
  });

  it("a status that does not exist is refused, listing the statuses", () => {
    expect(errorOf({ field: "status", operator: "in", value: ["active", "gone"] })).toEqual(
      refused(`"gone" is not a status (active, inactive, bounced, unsubscribed)`),
    );
  });

  it("a list or tag id that is not a positive integer is refused", () => {
    expect(errorOf({ field: "list", operator: "equals", value: "abc" })).toEqual(refused(`"abc" is not an id`));
    expect(errorOf({ field: "tag", operator: "in", value: [3, 0] })).toEqual(refused(`"0" is not an id`));
  });
});

describe("where the error points", () => {
  it("names the path of a rule inside nested groups", () => {
    const error = compileError(account, {
      match: "all",
      rules: [
        { field: "status", operator: "equals", value: "active" },
        { match: "any", rules: [{ field: "email", operator: "contains", value: "a" }, { field: "status", operator: "contains", value: "b" }] },
      ],
    });
    expect(error).toEqual({
      code: "RULES_INVALID",
      message: `Segment "Test" rules[1][1]: operator "contains" does not apply to field "status"; use one of equals, not_equals, in`,
    });
  });

  it("names the segment whose rules fail when several segments are combined", () => {
    const good = { id: 1, name: "Good", rules: { match: "all", rules: [] } as RuleGroup };
    const bad = { id: 2, name: "Lapsed VIPs", rules: one({ field: "customfield", operator: "is_empty" }) };
    expect(domainErrorOf(() => matchPredicate([good, bad], "any", NOW, account.fieldTypes))).toEqual({
      code: "RULES_INVALID",
      message: `Segment "Lapsed VIPs" rules[0]: a customfield condition needs "fieldid"`,
    });
  });
});

describe("D1's limit of 100,000 bytes of SQL", () => {
  it("refuses an export whose statement would be longer, before it reaches D1", () => {
    // 50 segments of 100 parameterless rules: few parameters, but some 450 KB of SQL.
    const hundredRules: RuleGroup = { match: "any", rules: Array.from({ length: 100 }, () => ({ field: "tag", operator: "is_empty" }) as Condition) };
    const spec: ExportSpec = {
      segmentIds: Array.from({ length: 50 }, (_, i) => i + 1),
      segments: Array.from({ length: 50 }, (_, i) => ({ id: i + 1, name: `S${i}`, rules: hundredRules })),
      status: "any",
      includeMembership: false,
      customFields: [],
      format: "json",
      requestedAt: NOW.toISOString(),
    };
    const error = domainErrorOf(() => pageQuery(spec, account.id, account.fieldTypes));
    expect(error.code).toBe("QUERY_TOO_LARGE");
    expect(error.message).toMatch(
      /^This export needs \d{6} bytes of SQL; D1 allows 100000 per statement\. Use fewer segments or simpler segment rules\.$/,
    );
  });
});

describe("D1's limit of 100 bound parameters", () => {
  const emailIn = (count: number): RuleGroup =>
    one({ field: "email", operator: "in", value: Array.from({ length: count }, (_, i) => `person${i}@example.com`) });

  it("refuses to count a segment whose query would bind more than 100 parameters", () => {
    const predicate = compile(account, emailIn(150));
    expect(countParameters(predicate)).toBe(150);
    expect(domainErrorOf(() => countQuery(account.id, predicate))).toEqual({
      code: "QUERY_TOO_LARGE",
      message:
        "Counting this segment needs 151 bound parameters; D1 allows 100 per statement. " +
        "Use fewer segments, fewer custom fields, or simpler segment rules.",
    });
  });

  it("accepts and runs a query of exactly 100 parameters", async () => {
    await addSubscriber(account.id, account.listId, { email: "person98@example.com" });
    const predicate = compile(account, emailIn(99));
    const query = countQuery(account.id, predicate);
    expect(await (await shardDb(account.id)).values(query)).toEqual([[1]]);
    expect(await emailsMatching(account.id, predicate)).toEqual(["person98@example.com"]);
  });

  it("refuses an export whose page query would bind more than 100 parameters", () => {
    const spec: ExportSpec = {
      segmentIds: [1, 2],
      segments: [
        { id: 1, name: "Half", rules: emailIn(60) },
        { id: 2, name: "Other half", rules: emailIn(60) },
      ],
      status: "active",
      includeMembership: false,
      customFields: [],
      format: "json",
      requestedAt: NOW.toISOString(),
    };
    // 120 emails, the status, and the field names, account id, cursor and limit of the page query.
    expect(domainErrorOf(() => pageQuery(spec, account.id, account.fieldTypes))).toEqual({
      code: "QUERY_TOO_LARGE",
      message:
        "This export needs 125 bound parameters; D1 allows 100 per statement. " +
        "Use fewer segments, fewer custom fields, or simpler segment rules.",
    });
  });

  it("the limit is D1's own: a statement with 101 parameters fails when run", async () => {
    const predicate = compile(account, emailIn(100));
    const failure = await (await shardDb(account.id))
      .values(sql`SELECT count(*) FROM subscribers s WHERE s.account_id = ${account.id} AND ${predicate}`)
      .then(
        () => "no error",
        (error: Error) => `${error.message} ${String(error.cause)}`,
      );
    expect(failure).toMatch(/too many SQL variables/);
  });
});
