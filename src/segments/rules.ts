import { z } from "zod";
import { ApiError } from "../api/errors";
import { SUBSCRIBER_STATUSES } from "../db/schema";

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

const scalar = z.union([z.string(), z.number()]);
const id = z.coerce.number().int().positive();

export const conditionSchema = z.object({
  field: z.enum(CONDITION_FIELDS),
  /** The custom field's id, for field "customfield". */
  fieldid: id.optional(),
  operator: z.enum(OPERATORS),
  value: z.union([scalar, z.array(scalar).min(1)]).optional(),
});
export type Condition = z.infer<typeof conditionSchema>;

export type RuleGroup = { match: "all" | "any" | "none"; rules: Array<Condition | RuleGroup> };

export const ruleGroupSchema: z.ZodType<RuleGroup> = z.lazy(() =>
  z.object({
    match: z.enum(["all", "any", "none"]),
    rules: z.array(z.union([conditionSchema, ruleGroupSchema])),
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

/** A stored segment's rules, checked: a tree that does not fit the schema is refused with a 422 naming it. */
export function segmentRules(segment: { name: string; rules: unknown }): RuleGroup {
  const parsed = ruleGroupSchema.safeParse(segment.rules);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = ["rules", ...issue.path.map(String)].join(".");
  throw new ApiError("UNPROCESSABLE", `Segment "${segment.name}" has rules that cannot run: ${where}: ${issue.message}`);
}
