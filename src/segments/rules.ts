import { z } from "zod";
import { MAX_ECHO_LENGTH, truncate } from "../api/envelope";
import { DomainError } from "../errors";
import { SUBSCRIBER_STATUSES } from "../db/shard_schema";

/**
 * A segment is a saved search: a tree of groups (match all / any / none) whose leaves are conditions.
 *
 *   {"match":"all","rules":[
 *     {"field":"status","operator":"equals","value":"active"},
 *     {"match":"any","rules":[
 *       {"field":"customfield","fieldid":3,"operator":"contains","value":"acme"},
 *       {"field":"tag","operator":"in","value":[1,2]}]}]}
 */
export const OPERATORS = [
  "equals",
  "not_equals",
  "contains",
  "starts_with",
  "ends_with",
  "greater_than",
  "less_than",
  "between",
  "in",
  "is_empty",
  "is_not_empty",
  "before",
  "after",
  "within_last_days",
] as const;
export type Operator = (typeof OPERATORS)[number];

export const CONDITION_FIELDS = ["list", "email", "status", "subscribedate", "tag", "customfield"] as const;
export type ConditionField = (typeof CONDITION_FIELDS)[number];

/**
 * Bounds of a stored rule tree. A segment is a saved search a person builds; these are far past any real one,
 * and they keep a tree from costing more than one D1 statement can carry (100 bound parameters, 100 KB of SQL)
 * or from holding values the compiler cannot turn into SQL (a date 10^12 days ago).
 */
export const RULE_LIMITS = {
  /** Characters in one text value. */
  textLength: 500,
  /** Values in one "in" list (D1 binds each one). */
  listValues: 100,
  /** Magnitude of a number value: beyond it, doubles stop being exact integers. */
  numberMagnitude: 1e15,
  /** "within the last N days": 100 years. */
  withinLastDays: 36_500,
  /** Conditions and groups in one tree. */
  rules: 100,
  /** Groups nested in groups, the root included. */
  depth: 8,
} as const;

const scalar = z.union(
  [
    z.string().max(RULE_LIMITS.textLength, `a text value may have at most ${RULE_LIMITS.textLength} characters`),
    z
      .number()
      .refine((n) => Math.abs(n) <= RULE_LIMITS.numberMagnitude, "a number value must be between -1e15 and 1e15"),
  ],
  { error: "must be a text or a number" },
);
const valueList = z
  .array(scalar)
  .min(1, "a list of values must not be empty")
  .max(RULE_LIMITS.listValues, `a list may have at most ${RULE_LIMITS.listValues} values`);
/** One value or a list of them; chosen by shape, so that the message is about the list or the value. */
const conditionValue = z
  .unknown()
  .transform((value, ctx): string | number | Array<string | number> => {
    const parsed = (Array.isArray(value) ? valueList : scalar).safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    return z.NEVER;
  })
  .optional();
const id = z.coerce.number().int().positive();

export const conditionSchema = z
  .object({
    field: z.enum(CONDITION_FIELDS),
    /** The custom field's id, for field "customfield". */
    fieldid: id.optional(),
    operator: z.enum(OPERATORS),
    value: conditionValue,
  })
  .superRefine((condition, ctx) => {
    if (condition.operator !== "within_last_days" || condition.value === undefined) return;
    const days = Number(condition.value);
    if (Array.isArray(condition.value) || !Number.isInteger(days) || days < 0 || days > RULE_LIMITS.withinLastDays) {
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message: `"within_last_days" needs a whole number of days from 0 to ${RULE_LIMITS.withinLastDays}`,
      });
    }
  });
export type Condition = z.infer<typeof conditionSchema>;

export type RuleGroup = { match: "all" | "any" | "none"; rules: Array<Condition | RuleGroup> };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * One element of a group: a group when it has "match", else a condition. Choosing by shape (not a union)
 * keeps the real problem in the message: "rules[0].value: …" rather than "Invalid input".
 */
const ruleSchema: z.ZodType<Condition | RuleGroup> = z.lazy(() =>
  z.unknown().transform((value, ctx): Condition | RuleGroup => {
    const parsed = (isObject(value) && "match" in value ? ruleGroupSchema : conditionSchema).safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    return z.NEVER;
  }),
);

export const ruleGroupSchema: z.ZodType<RuleGroup> = z.lazy(() =>
  z.object({
    match: z.enum(["all", "any", "none"]),
    rules: z.array(ruleSchema),
  }),
);

export const isGroup = (rule: Condition | RuleGroup): rule is RuleGroup => "match" in rule;

/** Operators each kind of value understands; anything else is refused when the tree is compiled. */
export const OPERATORS_BY_KIND = {
  list: ["equals", "not_equals", "in"],
  status: ["equals", "not_equals", "in"],
  tag: ["equals", "not_equals", "in", "is_empty", "is_not_empty"],
  text: [
    "equals",
    "not_equals",
    "contains",
    "starts_with",
    "ends_with",
    "greater_than",
    "less_than",
    "in",
    "is_empty",
    "is_not_empty",
  ],
  number: ["equals", "not_equals", "greater_than", "less_than", "between", "in", "is_empty", "is_not_empty"],
  date: [
    "equals",
    "not_equals",
    "before",
    "after",
    "greater_than",
    "less_than",
    "between",
    "within_last_days",
    "is_empty",
    "is_not_empty",
  ],
} as const satisfies Record<string, readonly Operator[]>;

export const statusValue = z.enum(SUBSCRIBER_STATUSES);

/**
 * Measures a tree without recursion (a stored tree may be nested deeper than the stack allows): its depth in
 * groups and its number of rules. Stops counting once a limit is passed.
 */
function treeSize(tree: unknown): { depth: number; rules: number } {
  let depth = 0;
  let rules = 0;
  const stack: Array<{ node: unknown; level: number }> = [{ node: tree, level: 1 }];
  while (stack.length > 0) {
    const { node, level } = stack.pop()!;
    if (!isObject(node) || !Array.isArray(node.rules)) continue;
    depth = Math.max(depth, level);
    rules += node.rules.length;
    if (depth > RULE_LIMITS.depth || rules > RULE_LIMITS.rules) break;
    for (const child of node.rules) stack.push({ node: child, level: level + 1 });
  }
  return { depth, rules };
}

/** "rules[1][0].value": the compiler's way of pointing into a tree (a group's own "rules" key is implied). */
function rulePath(path: readonly PropertyKey[]): string {
  let where = "rules";
  path.forEach((key, i) => {
    if (typeof key === "number") where += `[${key}]`;
    else if (!(key === "rules" && typeof path[i + 1] === "number")) where += `.${String(key)}`;
  });
  return where;
}

/**
 * A stored segment's rules, checked against the schema and RULE_LIMITS. A tree that does not fit is refused
 * with DomainError RULES_INVALID (the API answers 422) naming the segment and where the tree is wrong; nothing else is thrown, so
 * one bad segment fails alone (GetSegments stores the message as its count error; an export naming it is
 * refused).
 */
export function segmentRules(segment: { name: string; rules: unknown }): RuleGroup {
  const refuse = (problem: string): never => {
    throw new DomainError("RULES_INVALID", `Segment ${segmentLabel(segment.name)} has rules that cannot run: ${problem}`);
  };
  const size = treeSize(segment.rules);
  if (size.depth > RULE_LIMITS.depth) refuse(`groups may nest at most ${RULE_LIMITS.depth} deep`);
  if (size.rules > RULE_LIMITS.rules) refuse(`a segment may have at most ${RULE_LIMITS.rules} rules`);
  const parsed = ruleGroupSchema.safeParse(segment.rules);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  return refuse(`${rulePath(issue.path)}: ${issue.message}`);
}

/** A segment's name as error messages show it: quoted, and cut to 100 characters. */
export function segmentLabel(name: string): string {
  return `"${truncate(name, MAX_ECHO_LENGTH)}"`;
}
