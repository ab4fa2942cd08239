/**
 * Checks the benchmark dataset's claims with sqlite3 on the shard's D1 file: each segment's size, their pairwise
 * overlaps, their union, and the span of subscribe dates. The predicates are not written by hand: each
 * segment's predicate comes from the product's own rule compiler (`matchPredicate`, as the export and
 * GetSegments use it), and the union is also counted with the export's own `countQuery`, as a cross-check.
 */
import { sql, type SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import type { CustomFieldType } from "../src/db/schema";
import { countQuery, matchPredicate } from "../src/export/query";
import type { RuleGroup } from "../src/segments/rules";
import { inlineParams, sqliteJson } from "./sqlite";

export interface DatasetStats {
  contacts: number;
  segments: Array<{ id: number; name: string; contacts: number }>;
  /** Contacts in both segments a and b (ids). */
  overlaps: Array<{ a: number; b: number; contacts: number }>;
  /** Contacts in all the segments. */
  inAll: number;
  /** Contacts in at least one segment, from the per-row flags. */
  union: number;
  /** The same, counted with the export's countQuery over the union predicate. */
  unionByExportQuery: number;
  minSubscribeDate: string;
  maxSubscribeDate: string;
  /** Contacts per subscribe year. */
  perYear: Record<string, number>;
  seconds: number;
}

const dialect = new SQLiteAsyncDialect();
const toSql = (fragment: SQL) => {
  const q = dialect.sqlToQuery(fragment);
  return inlineParams(q.sql, q.params);
};

export function computeDatasetStats(
  dbFile: string,
  accountId: number,
  segments: ReadonlyArray<{ id: number; name: string; rules: RuleGroup }>,
  fields: ReadonlyArray<{ id: number; type: CustomFieldType }>,
): DatasetStats {
  const started = performance.now();
  const fieldTypes = new Map(fields.map((f) => [f.id, f.type]));
  const now = new Date();
  const predicate = (list: typeof segments) => matchPredicate([...list], "any", now, fieldTypes);
  // One scan: a 0/1 flag per segment and row, grouped, gives every cell of the Venn diagram.
  const flags = segments.map((s, i) => sql`CASE WHEN ${predicate([s])} THEN 1 ELSE 0 END AS ${sql.raw(`f${i}`)}`);
  const names = segments.map((_, i) => `f${i}`).join(", ");
  const venn = sqliteJson<Record<string, number>>(
    dbFile,
    toSql(sql`SELECT ${sql.raw(names)}, count(*) AS n FROM (SELECT ${sql.join(flags, sql`, `)} FROM subscribers s WHERE s.account_id = ${accountId}) GROUP BY ${sql.raw(names)};`),
  );
  const sum = (test: (row: Record<string, number>) => boolean) => venn.filter(test).reduce((t, r) => t + r.n!, 0);
  const contacts = sum(() => true);
  const stats: DatasetStats = {
    contacts,
    segments: segments.map((s, i) => ({ id: s.id, name: s.name, contacts: sum((r) => r[`f${i}`] === 1) })),
    overlaps: [],
    inAll: sum((r) => segments.every((_, i) => r[`f${i}`] === 1)),
    union: sum((r) => segments.some((_, i) => r[`f${i}`] === 1)),
    unionByExportQuery: 0,
    minSubscribeDate: "",
    maxSubscribeDate: "",
    perYear: {},
    seconds: 0,
  };
  for (let a = 0; a < segments.length; a++) {
    for (let b = a + 1; b < segments.length; b++) {
      stats.overlaps.push({ a: segments[a]!.id, b: segments[b]!.id, contacts: sum((r) => r[`f${a}`] === 1 && r[`f${b}`] === 1) });
    }
  }
  const [union] = sqliteJson<{ n: number }>(dbFile, `SELECT (${toSql(countQuery(accountId, predicate(segments)))}) AS n;`);
  stats.unionByExportQuery = union?.n ?? -1;
  const years = sqliteJson<{ year: string; n: number; lo: string; hi: string }>(
    dbFile,
    `SELECT substr(subscribe_date, 1, 4) AS year, count(*) AS n, min(subscribe_date) AS lo, max(subscribe_date) AS hi
     FROM subscribers WHERE account_id = ${accountId} GROUP BY 1 ORDER BY 1;`,
  );
  stats.perYear = Object.fromEntries(years.map((y) => [y.year, y.n]));
  stats.minSubscribeDate = years[0]?.lo ?? "";
  stats.maxSubscribeDate = years[years.length - 1]?.hi ?? "";
  stats.seconds = (performance.now() - started) / 1000;
  return stats;
}

/** The claims the benchmark depends on; an empty list means they all hold. */
export function datasetProblems(stats: DatasetStats, expectedContacts: number): string[] {
  const problems: string[] = [];
  if (stats.contacts !== expectedContacts) problems.push(`${stats.contacts} contacts, expected ${expectedContacts}`);
  for (const s of stats.segments) if (s.contacts === 0) problems.push(`segment ${s.id} ("${s.name}") is empty`);
  for (const o of stats.overlaps) if (o.contacts === 0) problems.push(`segments ${o.a} and ${o.b} do not overlap`);
  if (stats.union !== stats.unionByExportQuery) {
    problems.push(`the union is ${stats.union} from the per-segment flags but ${stats.unionByExportQuery} by the export's countQuery`);
  }
  const largest = Math.max(...stats.segments.map((s) => s.contacts));
  if (stats.union <= largest && stats.segments.length > 1) problems.push("one segment holds the whole union: the segments do not add to each other");
  // The data claim subscribe dates over 2018-01-01 .. 2026-11-01; at any size above a few thousand every year shows.
  if (stats.minSubscribeDate < "2018-01-01" || stats.maxSubscribeDate >= "2026-11-01") {
    problems.push(`subscribe dates ${stats.minSubscribeDate} .. ${stats.maxSubscribeDate} leave 2018-01-01 .. 2026-11-01`);
  }
  if (expectedContacts >= 10_000) {
    const years = Object.keys(stats.perYear);
    for (let y = 2018; y <= 2026; y++) if (!years.includes(String(y))) problems.push(`no contact subscribed in ${y}`);
  }
  return problems;
}

/** The stats as printable lines. */
export function describeDatasetStats(stats: DatasetStats): string[] {
  const fmt = (n: number) => n.toLocaleString("en-US");
  const pct = (n: number) => `${((100 * n) / stats.contacts).toFixed(1)} %`;
  return [
    ...stats.segments.map((s) => `segment ${s.id} ${JSON.stringify(s.name)}: ${fmt(s.contacts)} (${pct(s.contacts)})`),
    ...stats.overlaps.map((o) => `segments ${o.a} and ${o.b} overlap: ${fmt(o.contacts)} (${pct(o.contacts)})`),
    `in all ${stats.segments.length} segments: ${fmt(stats.inAll)} (${pct(stats.inAll)})`,
    `union: ${fmt(stats.union)} (${pct(stats.union)}); by the export's countQuery: ${fmt(stats.unionByExportQuery)}`,
    `subscribe dates: ${stats.minSubscribeDate} .. ${stats.maxSubscribeDate}; per year: ${Object.entries(stats.perYear)
      .map(([y, n]) => `${y} ${pct(n)}`)
      .join(", ")}`,
  ];
}
