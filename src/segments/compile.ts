import { sql, type SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { MAX_ECHO_LENGTH, truncate } from "../api/envelope";
import { describeForLog, DomainError } from "../errors";
import type { CustomFieldType } from "../db/shard_schema";
import {
  isGroup,
  OPERATORS_BY_KIND,
  RULE_LIMITS,
  segmentLabel,
  statusValue,
  type Condition,
  type Operator,
  type RuleGroup,
} from "./rules";

/** D1 refuses a statement with more than 100 bound parameters. */
export const D1_MAX_BOUND_PARAMETERS = 100;

/** D1 refuses a statement longer than 100,000 bytes of SQL. */
export const D1_MAX_SQL_BYTES = 100_000;

export interface CompileContext {
  /** The account's custom fields by id; a condition on any other field is refused. */
  customFieldTypes: ReadonlyMap<number, CustomFieldType>;
  /** "within the last N days" is measured from here. */
  now: Date;
  /** Names the segment in error messages. */
  segmentName: string;
}

type ValueKind = keyof typeof OPERATORS_BY_KIND;

const TRUE = sql`1`;
const FALSE = sql`0`;

const dialect = new SQLiteAsyncDialect();

/** How many parameters a fragment binds. */
export const countParameters = (fragment: SQL): number => dialect.sqlToQuery(fragment).params.length;

const encoder = new TextEncoder();

/** Throws a clear error when a statement would exceed D1's bound-parameter limit or its length limit. */
export function assertParameterBudget(fragment: SQL, what: string): void {
  const query = dialect.sqlToQuery(fragment);
  const count = query.params.length;
  if (count > D1_MAX_BOUND_PARAMETERS) {
    throw new DomainError(
      "QUERY_TOO_LARGE",
      `${what} needs ${count} bound parameters; D1 allows ${D1_MAX_BOUND_PARAMETERS} per statement. ` +
        "Use fewer segments, fewer custom fields, or simpler segment rules.",
    );
  }
  const bytes = encoder.encode(query.sql).length;
  if (bytes > D1_MAX_SQL_BYTES) {
    throw new DomainError(
      "QUERY_TOO_LARGE",
      `${what} needs ${bytes} bytes of SQL; D1 allows ${D1_MAX_SQL_BYTES} per statement. ` +
        "Use fewer segments or simpler segment rules.",
    );
  }
}

/**
 * Compiles a rule tree into one SQL predicate over `subscribers s`.
 * Every user value is bound; the only text spliced into the SQL is fixed by this file.
 */
export function compileRules(tree: RuleGroup, context: CompileContext): SQL {
  try {
    return compileGroup(tree, context, "rules");
  } catch (error) {
    if (error instanceof DomainError) throw error;
    // The contract of this file: rules that cannot compile throw DomainError RULES_INVALID, never a RangeError or
    // TypeError (src/segments/counts.ts stores the message; an export is refused with a 422). Values are
    // bounded by RULE_LIMITS, so this is a backstop for a tree the checks missed.
    console.error(`segment ${JSON.stringify(context.segmentName)}: rules failed to compile: ${describeForLog(error)}`);
    throw new DomainError("RULES_INVALID", `Segment ${segmentLabel(context.segmentName)} has rules that cannot run`, {
      cause: error,
    });
  }
}

/**
 * Joins predicates with AND or OR as a balanced tree: "(a AND b) AND (c AND d)". D1 refuses an expression
 * nested more than 100 deep, and SQLite parses a flat "a AND b AND c …" one level deeper per operand, so one
 * group of about 95 conditions could not run; balanced, n operands nest ⌈log2 n⌉ deep. AND and OR are
 * associative in SQL's three-valued logic too, so the grouping changes nothing that matches, and the operands
 * keep their order (so do the values they bind). The result is not parenthesised as a whole: callers wrap it.
 */
export function joinBalanced(parts: readonly SQL[], operator: "AND" | "OR"): SQL {
  const separator = operator === "AND" ? sql` AND ` : sql` OR `;
  const join = (from: number, to: number): SQL => {
    if (to - from <= 2) return sql.join(parts.slice(from, to), separator);
    const middle = from + Math.ceil((to - from) / 2);
    const side = (start: number, end: number) => (end - start === 1 ? parts[start]! : sql`(${join(start, end)})`);
    return sql`${side(from, middle)}${separator}${side(middle, to)}`;
  };
  return join(0, parts.length);
}

function compileGroup(group: RuleGroup, context: CompileContext, where: string): SQL {
  const parts = group.rules.map((rule, i) =>
    isGroup(rule) ? compileGroup(rule, context, `${where}[${i}]`) : compileCondition(rule, context, `${where}[${i}]`),
  );
  switch (group.match) {
    case "all":
      return parts.length ? sql`(${joinBalanced(parts, "AND")})` : TRUE;
    case "any":
      return parts.length ? sql`(${joinBalanced(parts, "OR")})` : FALSE;
    case "none":
      return parts.length ? sql`(NOT (${joinBalanced(parts, "OR")}))` : TRUE;
  }
}

class RuleError extends DomainError {
  constructor(context: CompileContext, where: string, message: string) {
    super("RULES_INVALID", `Segment ${segmentLabel(context.segmentName)} ${where}: ${message}`);
  }
}

function compileCondition(condition: Condition, context: CompileContext, where: string): SQL {
  const fail = (message: string): never => {
    throw new RuleError(context, where, message);
  };
  const { kind, column } = resolveField(condition, context, fail);
  const allowed: readonly Operator[] = OPERATORS_BY_KIND[kind];
  if (!allowed.includes(condition.operator)) {
    fail(`operator "${condition.operator}" does not apply to ${describeField(condition)}; use one of ${allowed.join(", ")}`);
  }
  // Only "in" and "between" take a list; elsewhere a list is a mistake, not "use the first one".
  if (Array.isArray(condition.value) && condition.operator !== "in" && condition.operator !== "between") {
    fail(`operator "${condition.operator}" needs a single value`);
  }
  const values = () => {
    const value = condition.value;
    if (value === undefined) return fail(`operator "${condition.operator}" needs a value`);
    return Array.isArray(value) ? value : [value];
  };
  const single = () => {
    const value = condition.value;
    if (value === undefined || Array.isArray(value)) return fail(`operator "${condition.operator}" needs a single value`);
    return value;
  };

  switch (kind) {
    case "list":
      return compileIdMembership(column, condition.operator, values().map((v) => toId(v, fail)));
    case "status":
      return compileIdMembership(
        column,
        condition.operator,
        values().map((v) => {
          const parsed = statusValue.safeParse(v);
          return parsed.success ? parsed.data : fail(`${shown(v)} is not a status (active, inactive, bounced, unsubscribed)`);
        }),
      );
    case "tag":
      return compileTag(condition.operator, () => values().map((v) => toId(v, fail)));
    case "text":
      return compileText(column, condition.operator, values, single);
    case "number":
      return compileNumber(column, condition.operator, values, fail);
    case "date":
      return compileDate(column, condition.operator, values, single, context.now, fail);
  }
}

/** A rule's value as a message shows it: quoted, cut to 100 characters. */
const shown = (value: string | number): string => `"${truncate(String(value), MAX_ECHO_LENGTH)}"`;

function describeField(condition: Condition): string {
  return condition.field === "customfield" ? `custom field ${condition.fieldid}` : `field "${condition.field}"`;
}

function resolveField(
  condition: Condition,
  context: CompileContext,
  fail: (message: string) => never,
): { kind: ValueKind; column: SQL } {
  switch (condition.field) {
    case "list":
      return { kind: "list", column: sql`s.list_id` };
    case "status":
      return { kind: "status", column: sql`s.status` };
    case "email":
      return { kind: "text", column: sql`s.email` };
    case "subscribedate":
      return { kind: "date", column: sql`s.subscribe_date` };
    case "tag":
      return { kind: "tag", column: sql`s.id` };
    case "customfield": {
      const fieldId = condition.fieldid;
      if (fieldId === undefined) return fail(`a customfield condition needs "fieldid"`);
      const type = context.customFieldTypes.get(fieldId);
      if (!type) return fail(`custom field ${fieldId} does not exist in this account`);
      return { kind: type, column: customFieldValue(fieldId) };
    }
  }
}

/** The value of one custom field in the row's JSON column. */
export const customFieldValue = (fieldId: number): SQL => sql`(s.custom_fields ->> ${`$."${fieldId}"`})`;

const toId = (value: string | number, fail: (message: string) => never): number => {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : fail(`${shown(value)} is not an id`);
};

function compileIdMembership(column: SQL, operator: Operator, values: Array<string | number>): SQL {
  const [first] = values;
  switch (operator) {
    case "equals":
      return sql`${column} = ${first}`;
    case "not_equals":
      return sql`${column} <> ${first}`;
    default:
      return sql`${column} IN (${sql.join(values.map((v) => sql`${v}`), sql`, `)})`;
  }
}

function compileTag(operator: Operator, ids: () => number[]): SQL {
  const tagged = (predicate: SQL) =>
    sql`EXISTS (SELECT 1 FROM subscriber_tags st WHERE st.subscriber_id = s.id AND ${predicate})`;
  switch (operator) {
    case "is_empty":
      return sql`NOT ${tagged(TRUE)}`;
    case "is_not_empty":
      return tagged(TRUE);
    case "not_equals":
      return sql`NOT ${tagged(sql`st.tag_id = ${ids()[0]}`)}`;
    case "equals":
      return tagged(sql`st.tag_id = ${ids()[0]}`);
    default:
      return tagged(sql`st.tag_id IN (${sql.join(ids().map((id) => sql`${id}`), sql`, `)})`);
  }
}

const escapeLike = (value: string): string => value.replace(/[\\%_]/g, (c) => `\\${c}`);

// Text matches ignore case, as marketers expect of "contains" and "equals".
function compileText(
  column: SQL,
  operator: Operator,
  values: () => Array<string | number>,
  single: () => string | number,
): SQL {
  const like = (pattern: string) => sql`${column} LIKE ${pattern} ESCAPE '\\'`;
  switch (operator) {
    case "equals":
      return sql`${column} = ${String(single())} COLLATE NOCASE`;
    case "not_equals":
      return sql`coalesce(${column}, '') <> ${String(single())} COLLATE NOCASE`;
    case "contains":
      return like(`%${escapeLike(String(single()))}%`);
    case "starts_with":
      return like(`${escapeLike(String(single()))}%`);
    case "ends_with":
      return like(`%${escapeLike(String(single()))}`);
    case "greater_than":
      return sql`${column} > ${String(single())} COLLATE NOCASE`;
    case "less_than":
      // A blank value is empty (see is_empty), not less than every text.
      return sql`(coalesce(${column}, '') <> '' AND ${column} < ${String(single())} COLLATE NOCASE)`;
    case "in":
      return sql`${column} COLLATE NOCASE IN (${sql.join(values().map((v) => sql`${String(v)}`), sql`, `)})`;
    case "is_empty":
      return sql`coalesce(${column}, '') = ''`;
    default:
      return sql`coalesce(${column}, '') <> ''`;
  }
}

function compileNumber(
  column: SQL,
  operator: Operator,
  values: () => Array<string | number>,
  fail: (message: string) => never,
): SQL {
  const numbers = () =>
    values().map((v) => {
      const n = typeof v === "number" ? v : Number(v);
      return typeof v === "string" && v.trim() === "" ? fail("a number is required") : Number.isFinite(n) ? n : fail(`${shown(v)} is not a number`);
    });
  const present = sql`coalesce(${column}, '') <> ''`;
  const numeric = sql`CAST(${column} AS REAL)`;
  switch (operator) {
    case "is_empty":
      return sql`coalesce(${column}, '') = ''`;
    case "is_not_empty":
      return present;
    case "equals":
      return sql`(${present} AND ${numeric} = ${numbers()[0]})`;
    case "not_equals":
      return sql`NOT (${present} AND ${numeric} = ${numbers()[0]})`;
    case "greater_than":
      return sql`(${present} AND ${numeric} > ${numbers()[0]})`;
    case "less_than":
      return sql`(${present} AND ${numeric} < ${numbers()[0]})`;
    case "between": {
      const range = numbers();
      if (range.length !== 2) return fail(`"between" needs two values, [low, high]`);
      const [low, high] = range as [number, number];
      return sql`(${present} AND ${numeric} BETWEEN ${Math.min(low, high)} AND ${Math.max(low, high)})`;
    }
    default:
      return sql`(${present} AND ${numeric} IN (${sql.join(numbers().map((n) => sql`${n}`), sql`, `)}))`;
  }
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const DAY_MS = 86_400_000;

// Date.parse rolls "2025-02-30" over to March 2 and reads "1" as 2001-01-01; only a day that round-trips exists.
const isDay = (text: string) => {
  const ms = Date.parse(`${text}T00:00:00Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === text;
};

/**
 * A date value as the first and last instants it covers, as ISO text that compares correctly against both
 * subscribe dates ("2024-05-01T09:30:00Z") and date custom fields ("2024-05-01").
 */
function dateRange(value: string | number, fail: (message: string) => never): { first: string; last: string } {
  const text = String(value).trim();
  if (DATE_ONLY.test(text)) {
    if (!isDay(text)) fail(`${shown(text)} is not a date`);
    return { first: text, last: `${text}T23:59:59Z` };
  }
  const dateTime = DATE_TIME.exec(text);
  const ms = dateTime && isDay(dateTime[1]!) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) return fail(`${shown(text)} is not a date (use YYYY-MM-DD or an ISO 8601 date-time)`);
  const iso = new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  return { first: iso, last: iso };
}

function compileDate(
  column: SQL,
  operator: Operator,
  values: () => Array<string | number>,
  single: () => string | number,
  now: Date,
  fail: (message: string) => never,
): SQL {
  const present = sql`coalesce(${column}, '') <> ''`;
  switch (operator) {
    case "is_empty":
      return sql`coalesce(${column}, '') = ''`;
    case "is_not_empty":
      return present;
    case "before":
    case "less_than":
      return sql`(${present} AND ${column} < ${dateRange(single(), fail).first})`;
    case "after":
    case "greater_than":
      return sql`${column} > ${dateRange(single(), fail).last}`;
    case "equals": {
      const { first, last } = dateRange(single(), fail);
      return sql`${column} BETWEEN ${first} AND ${last}`;
    }
    case "not_equals": {
      const { first, last } = dateRange(single(), fail);
      return sql`NOT coalesce(${column} BETWEEN ${first} AND ${last}, 0)`;
    }
    case "between": {
      const range = values();
      if (range.length !== 2) return fail(`"between" needs two values, [from, to]`);
      const [from, to] = [dateRange(range[0]!, fail), dateRange(range[1]!, fail)].sort((a, b) =>
        a.first < b.first ? -1 : 1,
      ) as [{ first: string; last: string }, { first: string; last: string }];
      return sql`${column} BETWEEN ${from.first} AND ${to.last}`;
    }
    default: {
      const days = Number(single());
      if (!Number.isInteger(days) || days < 0 || days > RULE_LIMITS.withinLastDays) {
        return fail(`"within_last_days" needs a whole number of days from 0 to ${RULE_LIMITS.withinLastDays}`);
      }
      // Whole days: "within the last 7 days" includes all of the day 7 days ago.
      const cutoff = new Date(now.getTime() - days * DAY_MS).toISOString().slice(0, 10);
      return sql`(${present} AND ${column} >= ${cutoff})`;
    }
  }
}
