import { eq, sql, type SQL } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { customFields, type CustomFieldType } from "../db/shard_schema";
import { assertParameterBudget, compileRules, joinBalanced } from "../segments/compile";
import type { ExportSpec } from "./spec";

/** Custom field ids are integers from our own table; they are the only values written into the SQL text. */
const fieldPath = (id: number): SQL => {
  if (!Number.isSafeInteger(id)) throw new Error(`custom field id ${id} is not an integer`);
  return sql.raw(`'$."${id}"'`);
};

export async function loadCustomFieldTypes(db: DrizzleD1Database, accountId: number) {
  const rows = await db
    .select({ id: customFields.id, type: customFields.type })
    .from(customFields)
    .where(eq(customFields.accountId, accountId));
  return new Map<number, CustomFieldType>(rows.map((r) => [r.id, r.type]));
}

/** The union of the segments, narrowed by the status filter: one predicate over `subscribers s`. */
export function matchPredicate(
  segmentList: ExportSpec["segments"],
  status: ExportSpec["status"],
  now: Date,
  fieldTypes: ReadonlyMap<number, CustomFieldType>,
): SQL {
  // Balanced, as a group's rules are: a flat "a OR b OR …" would nest one level deeper per segment.
  const union = joinBalanced(
    segmentList.map((segment) =>
      compileRules(segment.rules, { customFieldTypes: fieldTypes, now, segmentName: segment.name }),
    ),
    "OR",
  );
  return status === "any" ? sql`(${union})` : sql`(${union}) AND s.status = ${status}`;
}

/**
 * Tags as a JSON array of names, looked up per row through the (subscriber_id, tag_id) primary key,
 * so that tags never multiply the rows of the scan.
 */
const TAGS_JSON = sql`(SELECT json_group_array(t.name) FROM subscriber_tags st JOIN tags t ON t.id = st.tag_id WHERE st.subscriber_id = s.id)`;

/**
 * The columns of one page: [id, record]. For JSON the record is the finished JSON object, built by SQLite
 * (faster than building objects in the isolate and stringifying them). For CSV it is a JSON array of the
 * cells, which the encoder quotes.
 */
function recordColumn(spec: ExportSpec): SQL {
  const values = spec.customFields.map((f) => sql`s.custom_fields ->> ${fieldPath(f.id)}`);
  if (spec.format === "csv") {
    const cells = [sql`s.id`, sql`s.email`, sql`s.status`, sql`s.subscribe_date`, ...values];
    if (spec.includeMembership) cells.push(TAGS_JSON);
    return sql`json_array(${sql.join(cells, sql`, `)})`;
  }
  // Field names come from one bound JSON array (a constant subquery SQLite evaluates once),
  // so any number of fields costs one bound parameter.
  const customFieldsObject = sql`json_object(${sql.join(
    spec.customFields.map((_, i) => sql`(SELECT n ->> ${sql.raw(String(i))} FROM field_names), ${values[i]!}`),
    sql`, `,
  )})`;
  const members = [
    sql`'subscriberid', s.id`,
    sql`'emailaddress', s.email`,
    sql`'status', s.status`,
    sql`'subscribedate', s.subscribe_date`,
    sql`'customfields', ${customFieldsObject}`,
  ];
  if (spec.includeMembership) members.push(sql`'tags', ${TAGS_JSON}`);
  return sql`json_object(${sql.join(members, sql`, `)})`;
}

export interface PageQuery {
  (afterId: number, limit: number): SQL;
}

/** Builds the keyset page query of an export; throws a clear error if it would bind too many parameters. */
export function pageQuery(
  spec: ExportSpec,
  accountId: number,
  fieldTypes: ReadonlyMap<number, CustomFieldType>,
): PageQuery {
  const predicate = matchPredicate(spec.segments, spec.status, new Date(spec.requestedAt), fieldTypes);
  const names = JSON.stringify(spec.customFields.map((f) => f.name));
  const record = recordColumn(spec);
  const build: PageQuery = (afterId, limit) => sql`WITH field_names(n) AS (SELECT ${names})
SELECT s.id, ${record}
FROM subscribers s
WHERE s.account_id = ${accountId} AND s.id > ${afterId} AND ${predicate}
ORDER BY s.id
LIMIT ${limit}`;
  assertParameterBudget(build(0, 1), "This export");
  return build;
}

/**
 * Counts the matching subscribers after `afterId`, at most `limit` of them, and the last id counted: one
 * bounded step of a count that must not hold the database (or, locally, the one thread) for long.
 */
export function countChunkQuery(accountId: number, predicate: SQL) {
  const build = (afterId: number, limit: number) =>
    sql`SELECT count(*), max(id) FROM (SELECT s.id AS id FROM subscribers s
      WHERE s.account_id = ${accountId} AND s.id > ${afterId} AND ${predicate} ORDER BY s.id LIMIT ${limit})`;
  assertParameterBudget(build(0, 1), "Counting this export");
  return build;
}

/** How many of an account's subscribers match a predicate. */
export function countQuery(accountId: number, predicate: SQL): SQL {
  const query = sql`SELECT count(*) FROM subscribers s WHERE s.account_id = ${accountId} AND ${predicate}`;
  assertParameterBudget(query, "Counting this segment");
  return query;
}
