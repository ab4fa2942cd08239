/**
 * The bounds of a stored rule tree (RULE_LIMITS in src/segments/rules.ts). A tree past them is refused by
 * segmentRules with DomainError RULES_INVALID naming the segment and where the tree is wrong, and never with a
 * RangeError or TypeError: src/segments/counts.ts stores the message as the segment's count error, and an
 * export naming the segment is refused with a 422 (test/api/bounds.test.ts).
 */
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/errors";
import { RULE_LIMITS, segmentRules, type Condition, type RuleGroup } from "../../src/segments/rules";
import { domainErrorOf } from "./helpers";

const one = (condition: unknown) => ({ match: "all", rules: [condition] });
const refusal = (rules: unknown, name = "Stored") => domainErrorOf(() => segmentRules({ name, rules }));
const refused = (problem: string, name = "Stored") => ({
  code: "RULES_INVALID",
  message: `Segment "${name}" has rules that cannot run: ${problem}`,
});

describe("a stored tree within the bounds", () => {
  it("is returned as it is", () => {
    const tree: RuleGroup = {
      match: "all",
      rules: [
        { field: "subscribedate", operator: "within_last_days", value: RULE_LIMITS.withinLastDays },
        { field: "email", operator: "in", value: Array.from({ length: RULE_LIMITS.listValues }, (_, i) => `p${i}@example.com`) },
        { field: "email", operator: "contains", value: "x".repeat(RULE_LIMITS.textLength) },
        { field: "customfield", fieldid: 3, operator: "between", value: [-1e15, 1e15] },
      ],
    };
    expect(segmentRules({ name: "Edge", rules: tree })).toEqual(tree);
  });

  it("may nest groups 8 deep and hold 100 rules", () => {
    let deep: RuleGroup = { match: "all", rules: [] };
    for (let level = 1; level < RULE_LIMITS.depth; level++) deep = { match: "any", rules: [deep] };
    expect(segmentRules({ name: "Deep", rules: deep })).toEqual(deep);
    const wide: RuleGroup = { match: "any", rules: Array.from({ length: 100 }, (): Condition => ({ field: "tag", operator: "is_empty" })) };
    expect(segmentRules({ name: "Wide", rules: wide })).toEqual(wide);
  });
});

describe("a stored value past the bounds is refused, naming where it is", () => {
  it.each([
    [1e12, "a number"],
    ["1e12", "a numeric text"],
    [36_501, "one day over 100 years"],
    [-1, "a negative count"],
    [2.5, "a fraction"],
    [[7], "a list"],
  ])("within_last_days %j (%s)", (value: unknown, _what: string) => {
    expect(refusal(one({ field: "subscribedate", operator: "within_last_days", value }))).toEqual(
      refused('rules[0].value: "within_last_days" needs a whole number of days from 0 to 36500'),
    );
  });

  it("a text value over 500 characters", () => {
    expect(refusal(one({ field: "email", operator: "contains", value: "x".repeat(501) }))).toEqual(
      refused("rules[0].value: a text value may have at most 500 characters"),
    );
  });

  it.each([1e16, -1e16])("the number %j, past ±1e15", (value) => {
    expect(refusal(one({ field: "customfield", fieldid: 3, operator: "equals", value }))).toEqual(
      refused("rules[0].value: a number value must be between -1e15 and 1e15"),
    );
  });

  it("a list of more than 100 values", () => {
    expect(refusal(one({ field: "list", operator: "in", value: Array.from({ length: 101 }, (_, i) => i + 1) }))).toEqual(
      refused("rules[0].value: a list may have at most 100 values"),
    );
  });

  it("an empty list", () => {
    expect(refusal(one({ field: "list", operator: "in", value: [] }))).toEqual(
      refused("rules[0].value: a list of values must not be empty"),
    );
  });

  it.each([
    [{ nested: true }, "rules[1][0].value"],
    [[1, { nested: true }], "rules[1][0].value[1]"],
    [null, "rules[1][0].value"],
  ])("a value that is neither text nor number (%j), inside a nested group", (value, where) => {
    const tree = { match: "all", rules: [{ field: "status", operator: "equals", value: "active" }, one({ field: "list", operator: "in", value })] };
    expect(refusal(tree)).toEqual(refused(`${where}: must be a text or a number`));
  });

  it("groups nested 9 deep", () => {
    let deep: unknown = { match: "all", rules: [] };
    for (let level = 1; level <= RULE_LIMITS.depth; level++) deep = { match: "any", rules: [deep] };
    expect(refusal(deep)).toEqual(refused("groups may nest at most 8 deep"));
  });

  it("a tree nested 100,000 deep, without overflowing the stack", () => {
    let deep: unknown = { match: "all", rules: [] };
    for (let level = 0; level < 100_000; level++) deep = { match: "all", rules: [deep] };
    expect(refusal(deep)).toEqual(refused("groups may nest at most 8 deep"));
  });

  it("more than 100 rules", () => {
    const rules = Array.from({ length: 101 }, () => ({ field: "tag", operator: "is_empty" }));
    expect(refusal({ match: "any", rules })).toEqual(refused("a segment may have at most 100 rules"));
  });

  it("a tree that is not a group at all", () => {
    expect(refusal(null)).toEqual(refused("rules: Invalid input: expected object, received null"));
    expect(refusal("all")).toEqual(refused("rules: Invalid input: expected object, received string"));
    expect(refusal({ match: "sometimes", rules: [] })).toEqual(
      refused('rules.match: Invalid option: expected one of "all"|"any"|"none"'),
    );
  });

  it("names a long segment cut to 100 characters", () => {
    expect(refusal(one({ field: "email", operator: "contains", value: "x".repeat(501) }), "L".repeat(250))).toEqual({
      code: "RULES_INVALID",
      message: `Segment "${"L".repeat(99)}…" has rules that cannot run: rules[0].value: a text value may have at most 500 characters`,
    });
  });
});

describe("whatever is stored, segmentRules throws only DomainError RULES_INVALID", () => {
  const junk: unknown[] = [
    undefined,
    0,
    [],
    { match: "all" },
    { match: "all", rules: {} },
    { match: "all", rules: [[]] },
    { match: "all", rules: [{ match: "any" }] },
    { match: "all", rules: [{ field: "email" }] },
    { match: "all", rules: [{ __proto__: { match: "all" }, field: "email", operator: "equals", value: "x" }] },
    { match: "all", rules: [{ field: "customfield", fieldid: "1e400", operator: "equals", value: 1 }] },
    { match: "all", rules: [{ field: "subscribedate", operator: "within_last_days", value: "Infinity" }] },
  ];

  it.each(junk.map((tree) => [JSON.stringify(tree) ?? "undefined", tree]))("%s", (_, tree) => {
    let thrown: unknown;
    try {
      segmentRules({ name: "Junk", rules: tree });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DomainError);
    expect((thrown as DomainError).code).toBe("RULES_INVALID");
    expect((thrown as DomainError).message).toMatch(/^Segment "Junk" has rules that cannot run: /);
  });
});
