import { and, eq, sql, type SQL } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { z } from "zod";
import { describeIssues, quote, tooLong, truncate } from "../api/envelope";
import { ApiError } from "../api/errors";
import type { Config } from "../config";
import { EXPORT_FORMATS, type Account } from "../db/control_schema";
import { customFields, lists, segments, tags, type CustomFieldType, type Segment } from "../db/shard_schema";
import { DomainError } from "../errors";
import { countQuery, loadCustomFieldTypes, matchPredicate, pageQuery } from "../export/query";
import type { ExportSpec } from "../export/spec";
import { compileRules } from "../segments/compile";
import { countSegment, type FieldTypes, type SegmentCount } from "../segments/counts";
import {
  CONDITION_FIELDS,
  isGroup,
  OPERATORS,
  OPERATORS_BY_KIND,
  RULE_LIMITS,
  ruleGroupSchema,
  segmentLabel,
  segmentRules,
  type Condition,
  type Operator,
  type RuleGroup,
} from "../segments/rules";
import type { Shard } from "../shards/directory";

/**
 * What CreateSegment, UpdateSegment, DeleteSegment and GetSegment share: their details, the checks a rule tree
 * passes before it is stored, and the segment as they answer it.
 *
 * A stored tree must never make GetSegments or an export fail later. So a tree is checked with the engine's
 * own schema (ruleGroupSchema), compiled with the engine's compiler against the account's custom fields, its
 * list and tag ids are looked up in the account, and the engine's queries (the count, and the widest export of
 * the segment alone) are built to check D1's limits. Problems are named by their place in the tree, as the
 * client sent it: `details.rules.rules[1].rules[0].value: …`.
 */

/** A segment's name: trimmed, 1 to 200 characters, and unique in its account. */
export const SEGMENT_NAME_MAX_LENGTH = 200;

export const segmentNameDetail = z
  .string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") })
  .trim()
  .min(1, "must not be empty")
  .max(SEGMENT_NAME_MAX_LENGTH, tooLong(SEGMENT_NAME_MAX_LENGTH));

/** One segment id, as GetSegments gives it ("12") or as a number. */
export const segmentIdDetail = z
  .union([z.string(), z.number()], {
    error: (issue) => (issue.input === undefined ? "is required" : `${quote(issue.input)} is not a segment id`),
  })
  .transform((value, ctx) => {
    const id = typeof value === "number" ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(id) || id <= 0) {
      ctx.addIssue({ code: "custom", message: `${quote(value)} is not a segment id` });
      return z.NEVER;
    }
    return id;
  });

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * A tree past RULE_LIMITS' depth or size, measured without recursion: a 1 MiB body can nest groups far deeper
 * than a recursive parse survives. Measured as segmentRules does, so that both refuse the same trees.
 */
function overRuleLimits(tree: unknown): string | undefined {
  let rules = 0;
  const stack: Array<{ node: unknown; depth: number }> = [{ node: tree, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (!isObject(node) || !Array.isArray(node.rules)) continue;
    if (depth > RULE_LIMITS.depth) return `groups may nest at most ${RULE_LIMITS.depth} deep`;
    rules += node.rules.length;
    if (rules > RULE_LIMITS.rules) return `a segment may have at most ${RULE_LIMITS.rules} rules`;
    for (const child of node.rules) stack.push({ node: child, depth: depth + 1 });
  }
  return undefined;
}

/**
 * A place in a tree as the client wrote it: ["rules", 1, "rules", 0, "value"] is "rules[1].rules[0].value".
 * Returned as one path segment, because describeIssues joins segments with dots.
 */
function treePath(path: readonly PropertyKey[]): string[] {
  let where = "";
  for (const key of path) where += typeof key === "number" ? `[${key}]` : `${where ? "." : ""}${String(key)}`;
  return where ? [where] : [];
}

interface RuleProblem {
  /** Where in the tree, as zod paths go: ["rules", 1, "value"]. */
  path: readonly PropertyKey[];
  message: string;
}

/** A 400 listing the problems of `details.rules`, as every other 400 lists its fields' problems. */
function rulesRefused(problems: RuleProblem[]): ApiError {
  const issues = problems.map((p) => ({ code: "custom" as const, message: p.message, path: ["rules", ...treePath(p.path)], input: undefined }));
  return new ApiError("BAD_REQUEST", describeIssues(new z.ZodError(issues), "details"));
}

/**
 * `details.rules`: a rule tree in the shape the engine reads (src/segments/rules.ts), within RULE_LIMITS.
 * What depends on the account (its fields, lists and tags; D1's limits) is checked by checkRules.
 */
export const ruleTreeDetail = z
  .unknown()
  .transform((value, ctx): RuleGroup => {
    if (value === undefined) {
      ctx.addIssue({ code: "custom", message: "is required" });
      return z.NEVER;
    }
    const overLimit = overRuleLimits(value);
    if (overLimit) {
      ctx.addIssue({ code: "custom", message: overLimit });
      return z.NEVER;
    }
    const parsed = ruleGroupSchema.safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: treePath(issue.path) });
    return z.NEVER;
  })
  // The reference shows the tree's vocabulary; the transform would hide it from the generated schema.
  .meta({
    type: "object",
    description:
      `A rule tree: a group {match: all|any|none, rules: [...]} whose rules are conditions {field, fieldid?, operator, value?} ` +
      `or nested groups; at most ${RULE_LIMITS.rules} rules, groups nested at most ${RULE_LIMITS.depth} deep (docs/segments.md)`,
    required: ["match", "rules"],
    properties: {
      match: { enum: ["all", "any", "none"] },
      rules: {
        type: "array",
        maxItems: RULE_LIMITS.rules,
        items: {
          type: "object",
          description: "A condition, or a nested group",
          properties: {
            field: { enum: [...CONDITION_FIELDS] },
            fieldid: { type: "integer", minimum: 1, description: 'The custom field\'s id, for field "customfield"' },
            operator: { enum: [...OPERATORS] },
            value: { description: "A text, a number, or a list of them (in, between)" },
            match: { enum: ["all", "any", "none"] },
            rules: { type: "array" },
          },
        },
      },
    },
  });

type ValueKind = keyof typeof OPERATORS_BY_KIND;

/** The kind of value a condition's field holds (undefined: no such custom field), as the compiler resolves it. */
function kindOf(condition: Condition, fieldTypes: FieldTypes): ValueKind | undefined {
  switch (condition.field) {
    case "list":
    case "status":
    case "tag":
      return condition.field;
    case "email":
      return "text";
    case "subscribedate":
      return "date";
    case "customfield":
      return condition.fieldid === undefined ? undefined : fieldTypes.get(condition.fieldid);
  }
}

/**
 * Which key of a condition the compiler refused: the field, else the operator, else the value. The compiler checks
 * them in that order; this names the key in the path, while the message stays the compiler's own.
 */
function keyAtFault(condition: Condition, fieldTypes: FieldTypes): "fieldid" | "operator" | "value" {
  const kind = kindOf(condition, fieldTypes);
  if (kind === undefined) return "fieldid";
  const allowed: readonly Operator[] = OPERATORS_BY_KIND[kind];
  return allowed.includes(condition.operator) ? "value" : "operator";
}

function conditionsOf(group: RuleGroup, path: PropertyKey[] = []): Array<{ condition: Condition; path: PropertyKey[] }> {
  return group.rules.flatMap((rule, i) =>
    isGroup(rule) ? conditionsOf(rule, [...path, "rules", i]) : [{ condition: rule, path: [...path, "rules", i] }],
  );
}

/** The problem of one condition, compiled alone by the engine's compiler; undefined when it compiles. */
function compileProblem(condition: Condition, path: PropertyKey[], fieldTypes: FieldTypes, name: string): RuleProblem | undefined {
  try {
    compileRules({ match: "all", rules: [condition] }, { customFieldTypes: fieldTypes, now: new Date(), segmentName: name });
    return undefined;
  } catch (error) {
    if (!(error instanceof DomainError) || error.code !== "RULES_INVALID") throw error;
    // The compiler's message names the segment and the rule ("Segment "x" rules[0]: …"); the path here says where.
    const prefix = `Segment ${segmentLabel(name)} rules[0]: `;
    const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    return { path: [...path, keyAtFault(condition, fieldTypes)], message };
  }
}

/**
 * The list or tag ids a condition names. The compiler only binds them: another account's id would match nobody,
 * silently, so a stored tree must name ids of its own account.
 */
function referencedIds(condition: Condition): Array<{ id: number; path: PropertyKey[] }> {
  if (condition.field !== "list" && condition.field !== "tag") return [];
  if (condition.operator === "is_empty" || condition.operator === "is_not_empty" || condition.value === undefined) return [];
  const value = condition.value;
  return Array.isArray(value) ? value.map((v, i) => ({ id: Number(v), path: ["value", i] })) : [{ id: Number(value), path: ["value"] }];
}

/** Which of `ids` are rows of the account in `table`. One bound JSON array, so any number of ids is one parameter. */
async function idsInAccount(db: DrizzleD1Database, table: typeof lists | typeof tags, accountId: number, ids: number[]) {
  if (ids.length === 0) return new Set<number>();
  const rows = await db
    .select({ id: table.id })
    .from(table)
    .where(and(eq(table.accountId, accountId), sql`${table.id} IN (SELECT value FROM json_each(${JSON.stringify([...new Set(ids)])}))`));
  return new Set(rows.map((r) => r.id));
}

/** A segment for the engine's queries: a new one has no id yet, and the id is not part of any query. */
const asSegment = (id: number | undefined, name: string, rules: RuleGroup) => ({ id: id ?? 0, name, rules });

/**
 * The engine's queries of a segment with these rules alone: GetSegments' count, and its export with a status
 * filter, tags and every custom field of the account in each format (the most an export of this one segment
 * binds). Built as the engine builds them, so that a tree over D1's parameter or length limit is a 422 here,
 * as an export's is.
 */
function engineQueries(
  accountId: number,
  name: string,
  rules: RuleGroup,
  fields: Array<{ id: number; name: string }>,
  fieldTypes: FieldTypes,
  now: Date,
): SQL[] {
  const segment = asSegment(undefined, name, rules);
  const tooLarge = (error: unknown, what: string): never => {
    if (error instanceof DomainError && error.code === "QUERY_TOO_LARGE") {
      throw new ApiError("UNPROCESSABLE", `details.rules: ${what}${error.message}`, { cause: error });
    }
    throw error;
  };
  const queries: SQL[] = [];
  try {
    queries.push(countQuery(accountId, matchPredicate([segment], "any", now, fieldTypes)));
  } catch (error) {
    tooLarge(error, "");
  }
  for (const format of EXPORT_FORMATS) {
    const widest: ExportSpec = {
      segmentIds: [segment.id],
      segments: [segment],
      status: "active",
      includeMembership: true,
      customFields: fields,
      format,
      requestedAt: now.toISOString(),
    };
    try {
      queries.push(pageQuery(widest, accountId, fieldTypes)(0, 1));
    } catch (error) {
      tooLarge(error, "an export of this segment with a status filter, tags and every custom field would not run: ");
    }
  }
  return queries;
}

/**
 * Has D1 prepare each query without running it. SQLite refuses some statements only when it parses them (an
 * expression nested over 100 deep, a statement over its length limits), and the compiler's own budgets measure
 * parameters and SQL length, not that. Conditions are joined as balanced trees (src/segments/compile.ts), so no
 * tree within RULE_LIMITS comes near the depth limit; this is the net under that, so that a tree D1 would refuse
 * is a 422 now rather than a failed count or export later.
 */
async function assertD1Prepares(db: DrizzleD1Database, queries: SQL[]) {
  for (const query of queries) {
    try {
      await db.run(sql`EXPLAIN QUERY PLAN ${query}`);
    } catch (error) {
      // SQLITE_ERROR and SQLITE_TOOBIG are about the statement; anything else (D1 unreachable) is not the client's.
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : "";
      if (!/SQLITE_(ERROR|TOOBIG)/.test(reason)) throw error;
      const problem = reason.replace(/^D1_ERROR: /, "").replace(/: SQLITE_\w+$/, "");
      throw new ApiError(
        "UNPROCESSABLE",
        `details.rules: D1 cannot run these rules: ${truncate(problem, 200)}. Use fewer or simpler rules.`,
        { cause: error },
      );
    }
  }
}

/**
 * Checks a tree (already in the engine's shape, see ruleTreeDetail) against the account, and returns it as the
 * engine reads it (segmentRules), with the account's custom field types. Refuses with a 400 naming each place
 * that is wrong: a condition the compiler refuses (an unknown custom field, an operator that does not apply to
 * the field, a value it cannot use), a list or tag id that is not this account's. Refuses with a 422 a tree
 * over D1's limits.
 */
export async function checkRules(
  shard: Shard,
  accountId: number,
  name: string,
  tree: RuleGroup,
  now: Date,
): Promise<{ rules: RuleGroup; fieldTypes: FieldTypes }> {
  const fields = await shard.db
    .select({ id: customFields.id, name: customFields.name, type: customFields.type })
    .from(customFields)
    .where(eq(customFields.accountId, accountId))
    .orderBy(customFields.id);
  const fieldTypes = new Map<number, CustomFieldType>(fields.map((f) => [f.id, f.type]));

  const conditions = conditionsOf(tree).map(({ condition, path }) => ({
    condition,
    path,
    problem: compileProblem(condition, path, fieldTypes, name),
  }));
  // Ids are looked up only in conditions that compile: those hold ids, not "abc".
  const referenced = (field: "list" | "tag") =>
    conditions.filter((c) => !c.problem && c.condition.field === field).flatMap((c) => referencedIds(c.condition).map((r) => r.id));
  const [knownLists, knownTags] = await Promise.all([
    idsInAccount(shard.db, lists, accountId, referenced("list")),
    idsInAccount(shard.db, tags, accountId, referenced("tag")),
  ]);
  // In the order of the tree, so that the first problem listed is the first one in it.
  const problems = conditions.flatMap(({ condition, path, problem }): RuleProblem[] => {
    if (problem) return [problem];
    const known = condition.field === "list" ? knownLists : knownTags;
    return referencedIds(condition)
      .filter((r) => !known.has(r.id))
      .map((r) => ({ path: [...path, ...r.path], message: `${condition.field} ${r.id} does not exist in this account` }));
  });
  if (problems.length > 0) throw rulesRefused(problems);

  await assertD1Prepares(shard.db, engineQueries(accountId, name, tree, fields, fieldTypes, now));
  // The engine's own reading of the tree, as GetSegments and exports will read it.
  return { rules: segmentRules({ name, rules: tree }), fieldTypes };
}

/** How many of the account's subscribers a segment with these rules holds now: GetSegments' count, not stored. */
export async function countMatching(
  db: DrizzleD1Database,
  accountId: number,
  segment: { id?: number; name: string; rules: RuleGroup },
  fieldTypes: FieldTypes,
  now: Date,
): Promise<number> {
  const predicate = matchPredicate([asSegment(segment.id, segment.name, segment.rules)], "any", now, fieldTypes);
  const [[count] = [0]] = await db.values<[number]>(countQuery(accountId, predicate));
  return Number(count);
}

/** The account's segment, or a 404: another account's segment is as unknown as a missing one. */
export async function findSegment(db: DrizzleD1Database, accountId: number, segmentId: number): Promise<Segment> {
  const segment = await db
    .select()
    .from(segments)
    .where(and(eq(segments.id, segmentId), eq(segments.accountId, accountId)))
    .get();
  if (!segment) throw segmentNotFound(segmentId);
  return segment;
}

export const segmentNotFound = (segmentId: number) =>
  new ApiError("NOT_FOUND", `details.segmentid: no segment ${segmentId} in this account`);

export const nameTaken = (name: string) =>
  new ApiError("CONFLICT", `details.name: this account already has a segment named ${quote(name)}`);

/** Refuses a name another segment of the account has (names compare exactly, after trimming). */
export async function assertNameFree(db: DrizzleD1Database, accountId: number, name: string, exceptId?: number) {
  const holder = await db
    .select({ id: segments.id })
    .from(segments)
    .where(and(eq(segments.accountId, accountId), eq(segments.name, name)))
    .all();
  if (holder.some((s) => s.id !== exceptId)) throw nameTaken(name);
}

export const storedCount = (segment: Segment): SegmentCount => ({
  contacts: segment.contactsCount,
  countedAt: segment.countedAt,
  error: segment.countError,
});

/** A segment's stored count, or a fresh one when it is older than GetSegments would answer with (the same rule). */
export async function currentCount(db: DrizzleD1Database, segment: Segment, config: Config, now: number): Promise<SegmentCount> {
  const oldest = now - config.SEGMENT_COUNT_MAX_AGE_SECONDS * 1000;
  if (segment.countedAt > 0 && segment.countedAt >= oldest) return storedCount(segment);
  return countSegment(db, segment, await loadCustomFieldTypes(db, segment.accountId), now);
}

/** A segment as the definition methods answer it: GetSegments' item, with its rules. */
export function segmentView(segment: Segment, account: Account, count: SegmentCount) {
  return {
    segmentid: String(segment.id),
    segmentname: segment.name,
    ownerid: account.username,
    createdate: segment.createdAt,
    contacts: count.error === null ? count.contacts : null,
    counted_at: count.countedAt > 0 ? new Date(count.countedAt).toISOString() : null,
    rules: segment.rules,
    ...(count.error !== null ? { errormessage: count.error } : {}),
  };
}

/** The SQL of a segment insert that does nothing when the account already has a segment of that name. */
export const insertUnlessNameTaken = (id: number, accountId: number, name: string, rules: RuleGroup): SQL =>
  sql`INSERT INTO segments (id, account_id, name, rules)
      SELECT ${id}, ${accountId}, ${name}, ${JSON.stringify(rules)}
      WHERE NOT EXISTS (SELECT 1 FROM segments WHERE account_id = ${accountId} AND name = ${name})`;
