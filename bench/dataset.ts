/**
 * The benchmark dataset: one account with N contacts, 10 custom fields, 5 tags and 3 overlapping segments,
 * written straight into the local D1 SQLite file with the sqlite3 CLI (recursive CTEs, one transaction).
 * Values come from a fixed hash of the subscriber id, so a given N always yields the same data.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { hashToken } from "../src/api/auth";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { CustomFieldType, SubscriberStatus } from "../src/db/schema";
import type { RuleGroup } from "../src/segments/rules";
import { computeDatasetStats, datasetProblems, describeDatasetStats, type DatasetStats } from "./dataset_check";
import { sqlite, sqliteJson, sqlString } from "./sqlite";

/** Bumped whenever the generated data changes, so that a kept dataset of an older shape is rebuilt. */
const DATASET_VERSION = 2;

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const wranglerBin = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

export const ACCOUNT_ID = 1;
export const BENCH_USERNAME = "bench";
/** A local benchmark credential, nothing more. */
export const BENCH_TOKEN = "bench-token-local-only";

const LISTS = ["Newsletter", "Customers", "Leads"];

export const FIELDS: ReadonlyArray<{ name: string; type: CustomFieldType }> = [
  { name: "First Name", type: "text" },
  { name: "Last Name", type: "text" },
  { name: "Company", type: "text" },
  { name: "City", type: "text" },
  { name: "Phone", type: "text" },
  { name: "Age", type: "number" },
  { name: "Lifetime Value", type: "number" },
  { name: "Orders", type: "number" },
  { name: "Birthday", type: "date" },
  { name: "Last Purchase", type: "date" },
];
const FIELD_ID = Object.fromEntries(FIELDS.map((f, i) => [f.name, i + 1])) as Record<string, number>;

/** Tag names and the share of subscribers that carry each (1.5 tags per subscriber on average). */
const TAGS: ReadonlyArray<{ name: string; perMille: number }> = [
  { name: "vip", perMille: 500 },
  { name: "newsletter", perMille: 400 },
  { name: "webinar-2025", perMille: 300 },
  { name: "churn-risk", perMille: 200 },
  { name: "beta-tester", perMille: 100 },
];

/** Three overlapping segments whose union covers most contacts; they use lists, status, tags, custom fields and dates. */
export const SEGMENTS: ReadonlyArray<{ name: string; rules: RuleGroup }> = [
  {
    name: "Newsletter and customers, not bounced",
    rules: {
      match: "all",
      rules: [
        { field: "list", operator: "in", value: [1, 2] },
        { field: "status", operator: "not_equals", value: "bounced" },
      ],
    },
  },
  {
    name: "VIPs and high value",
    rules: {
      match: "any",
      rules: [
        { field: "tag", operator: "equals", value: 1 },
        { field: "customfield", fieldid: FIELD_ID["Lifetime Value"]!, operator: "greater_than", value: 600 },
        {
          match: "all",
          rules: [
            { field: "customfield", fieldid: FIELD_ID["First Name"]!, operator: "starts_with", value: "a" },
            { field: "customfield", fieldid: FIELD_ID["Age"]!, operator: "between", value: [25, 40] },
          ],
        },
      ],
    },
  },
  {
    name: "Recent sign-ups outside test domains",
    rules: {
      match: "all",
      rules: [
        { field: "subscribedate", operator: "after", value: "2021-12-31" },
        {
          match: "none",
          rules: [
            { field: "email", operator: "ends_with", value: ".test" },
            { field: "tag", operator: "equals", value: 5 },
          ],
        },
      ],
    },
  },
];

const FIRST_NAMES = [
  "Anna", "Aaron", "Abigail", "Ahmed", "Alice", "Bob", "Carla", "David", "Elena", "Farid", "Grace", "Hiro",
  "Ingrid", "José", "Kim", "Liam", "María", "Noah", "Olivia", "Pádraig", "Quinn", "Rosa", "Sven", "Tomás",
  "Uma", "Viktor", "Wen", "Xavier", "Yara", "Zoë", "Ørjan", "Émilie",
];
const LAST_NAMES = [
  "Smith", "Johnson", "O'Brien", "Müller", "García", "Nguyễn", "Kowalski", "Rossi", "Dubois", "Jensen",
  "Tanaka", "Kim", "Patel", "Silva", "Novák", "Andersson", "Cohen", "Okafor", "Ivanova", "Van der Berg",
];
const COMPANIES = [
  "Acme Corp", 'Acme "Rockets" Inc.', "Smith & Sons", "Globex", "Initech", "Umbrella GmbH", "Stark Industries",
  "Wayne Enterprises", "Müller Logistik", "Tyrell, Inc.", "=SUM(A1) Ltd", "Hooli", "Pied Piper", "Vandelay",
];
const CITIES = [
  "New York", "London", "Berlin", "Paris", "São Paulo", "Tokyo", "Zürich", "Lagos", "Mumbai", "Sydney",
  "Toronto", "Kraków", "Reykjavík", "Austin", "Dublin", "Seoul",
];
const DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "inbox.test", "example.co.uk", "post.example"];

/**
 * A pseudo-random value in [0, 2^24) from an integer SQL expression: multiply, rotate, multiply again.
 * Every product stays below 2^63, so SQLite never switches to floating point.
 */
const MULTIPLIERS = [2654435761, 2246822519, 3266489917, 668265263, 374761393, 1103515245, 3432918353, 461845907];
function hash(expr: string, stream: number): string {
  const m = MULTIPLIERS[stream % MULTIPLIERS.length]!;
  const x1 = `((((${expr}) + ${stream * 7919}) * ${m}) % 4294967296)`;
  const rotated = `(((${x1}) >> 16) | (((${x1}) & 65535) << 16))`;
  return `((((${rotated}) * 1597334677) % 4294967296) >> 8)`;
}

/** One value of a list, picked by an integer expression: fixed-width slots of one literal, so no lookups. */
function pick(values: readonly string[], indexExpr: string): string {
  const width = Math.max(...values.map((v) => v.length));
  const packed = values.map((v) => v.padEnd(width, " ")).join("");
  for (const v of values) if (v !== v.trim()) throw new Error(`pick(): "${v}" has surrounding spaces`);
  return `rtrim(substr(${sqlString(packed)}, ((${indexExpr}) % ${values.length}) * ${width} + 1, ${width}))`;
}

const STATUS_BY_PERCENT: Array<[number, SubscriberStatus]> = [
  [70, "active"],
  [80, "inactive"],
  [90, "bounced"],
  [100, "unsubscribed"],
];

const epoch = (iso: string) => Date.parse(iso) / 1000;

/** The SQL that fills a freshly migrated database with N contacts. */
export function fillScript(
  n: number,
  credentials: { tokenSalt: string; tokenHash: string; webhookSecret: string },
  dropIndexes: readonly string[],
): string {
  const h = (stream: number) => hash("i", stream);
  const dateFrom = epoch("2018-01-01T00:00:00Z");
  const dateSpan = epoch("2026-11-01T00:00:00Z") - dateFrom;
  // One hash gives only 2^24 values (194 days of seconds): two streams make a 48-bit value, so the dates
  // spread evenly over the whole span (2^48 is 10^6 times the span, so the modulo bias is negligible).
  const subscribeOffset = `((${h(4)} * 16777216 + ${h(21)}) % ${dateSpan})`;
  const status = `CASE ${STATUS_BY_PERCENT.map(([upTo, s]) => `WHEN ${h(3)} % 100 < ${upTo} THEN '${s}'`).join(" ")} END`;
  // Custom field values, keyed by field id; some fields are missing (null) on part of the contacts.
  const values: Record<string, string> = {
    "First Name": pick(FIRST_NAMES, h(10)),
    "Last Name": pick(LAST_NAMES, h(11)),
    Company: `CASE WHEN ${h(12)} % 100 < 15 THEN NULL ELSE ${pick(COMPANIES, `${h(12)} / 100`)} END`,
    City: pick(CITIES, h(13)),
    Phone: `printf('+1-555-%04d', ${h(14)} % 10000)`,
    Age: `18 + ${h(15)} % 62`,
    "Lifetime Value": `round((${h(16)} % 100000) / 100.0, 2)`,
    Orders: `CASE WHEN ${h(17)} % 100 < 20 THEN NULL ELSE ${h(17)} / 100 % 50 END`,
    Birthday: `date(${epoch("1950-01-01T00:00:00Z")} + (${h(18)} % 20440) * 86400, 'unixepoch')`,
    "Last Purchase": `CASE WHEN ${h(19)} % 100 < 25 THEN NULL ELSE date(${epoch("2023-01-01T00:00:00Z")} + (${h(19)} / 100 % 1400) * 86400, 'unixepoch') END`,
  };
  const customFieldsJson = `json_object(${FIELDS.map((f, i) => `'${i + 1}', ${values[f.name]}`).join(", ")})`;
  const tagCase = `CASE t.id ${TAGS.map((t, i) => `WHEN ${i + 1} THEN ${t.perMille}`).join(" ")} END`;

  return `
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
PRAGMA temp_store = MEMORY;
PRAGMA foreign_keys = OFF;
.bail on
BEGIN;
INSERT INTO accounts (id, username, token_salt, token_hash, webhook_secret) VALUES
  (${ACCOUNT_ID}, ${sqlString(BENCH_USERNAME)}, ${sqlString(credentials.tokenSalt)}, ${sqlString(credentials.tokenHash)}, ${sqlString(credentials.webhookSecret)});
INSERT INTO lists (id, account_id, name) VALUES
  ${LISTS.map((name, i) => `(${i + 1}, ${ACCOUNT_ID}, ${sqlString(name)})`).join(",\n  ")};
INSERT INTO custom_fields (id, account_id, name, type) VALUES
  ${FIELDS.map((f, i) => `(${i + 1}, ${ACCOUNT_ID}, ${sqlString(f.name)}, '${f.type}')`).join(",\n  ")};
INSERT INTO tags (id, account_id, name) VALUES
  ${TAGS.map((t, i) => `(${i + 1}, ${ACCOUNT_ID}, ${sqlString(t.name)})`).join(",\n  ")};
INSERT INTO segments (id, account_id, name, rules) VALUES
  ${SEGMENTS.map((s, i) => `(${i + 1}, ${ACCOUNT_ID}, ${sqlString(s.name)}, ${sqlString(JSON.stringify(s.rules))})`).join(",\n  ")};

-- Secondary indexes are rebuilt after the load (faster than maintaining them row by row),
-- from the very DDL the migration wrote (see recreateIndexes).
${dropIndexes.map((name) => `DROP INDEX "${name.replaceAll('"', '""')}";`).join("\n")}

INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields)
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n})
SELECT
  i,
  ${ACCOUNT_ID},
  1 + ${h(1)} % ${LISTS.length},
  'contact' || i || '@' || ${pick(DOMAINS, h(2))},
  ${status},
  strftime('%Y-%m-%dT%H:%M:%SZ', ${dateFrom} + ${subscribeOffset}, 'unixepoch'),
  ${customFieldsJson}
FROM seq;

INSERT INTO subscriber_tags (subscriber_id, tag_id)
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n})
-- CROSS JOIN keeps seq as the outer loop, so rows arrive in primary-key order without a sort.
SELECT i, t.id FROM seq CROSS JOIN tags t
WHERE t.account_id = ${ACCOUNT_ID} AND ${hash("i * 8 + t.id", 5)} % 1000 < ${tagCase};
COMMIT;
`;
}

/**
 * Rebuilds the indexes fillScript dropped, from the DDL read before the load. No ANALYZE: the planner sees
 * the database as the migrations leave it.
 */
function recreateIndexes(file: string, ddl: string[]) {
  sqlite(file, `PRAGMA cache_size = -262144;\n.bail on\nBEGIN;\n${ddl.map((d) => `${d};`).join("\n")}\nCOMMIT;\nPRAGMA wal_checkpoint(TRUNCATE);\n`);
}

export interface Dataset {
  n: number;
  stateDir: string;
  dbFile: string;
  username: string;
  usertoken: string;
  webhookSecret: string;
  segmentIds: number[];
  /** Seconds spent building it; 0 when a kept dataset was reused. */
  buildSeconds: number;
  reused: boolean;
  /** Segment sizes, overlaps and date span, as sqlite3 counted them when the dataset was built. */
  stats: DatasetStats;
}

interface Marker {
  version: number;
  n: number;
  /** A kept dataset is rebuilt when the migrations change. */
  migrations: string;
  webhookSecret: string;
  stats?: DatasetStats;
}

function migrationsHash(): string {
  const dir = join(ROOT, "migrations");
  const hash = createHash("sha256");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    hash.update(file).update("\0").update(readFileSync(join(dir, file))).update("\0");
  }
  return hash.digest("hex");
}

/** The D1 SQLite file of a wrangler state directory (metadata.sqlite is miniflare's own). */
export function findD1File(stateDir: string): string {
  const dir = join(stateDir, "v3", "d1", "miniflare-D1DatabaseObject");
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite") : [];
  if (files.length !== 1) throw new Error(`expected one D1 database in ${dir}, found ${files.length}: ${files.join(", ")}`);
  return join(dir, files[0]!);
}

/** Builds the dataset of N contacts in .bench/state-<N>, or reuses it when kept from an earlier run. */
export async function ensureDataset(n: number, options: { reuse: boolean; log: (line: string) => void }): Promise<Dataset> {
  const stateDir = join(ROOT, ".bench", `state-${n}`);
  const markerFile = join(stateDir, "bench-dataset.json");
  const base = { n, stateDir, username: BENCH_USERNAME, usertoken: BENCH_TOKEN, segmentIds: SEGMENTS.map((_, i) => i + 1) };

  if (options.reuse && existsSync(markerFile)) {
    const marker = JSON.parse(readFileSync(markerFile, "utf8")) as Marker;
    if (marker.version === DATASET_VERSION && marker.n === n && marker.migrations === migrationsHash()) {
      const dbFile = findD1File(stateDir);
      options.log(`reusing the dataset in ${relative(ROOT, stateDir)} (kept by an earlier --keep run)`);
      // Earlier runs' jobs and files go, so that every run starts from the same state (and disk use stays flat).
      sqlite(dbFile, "DELETE FROM export_carry; DELETE FROM export_jobs; PRAGMA wal_checkpoint(TRUNCATE);");
      rmSync(join(stateDir, "v3", "r2"), { recursive: true, force: true });
      const stats = marker.stats ?? checkDataset(dbFile, n, options.log);
      if (marker.stats) for (const line of describeDatasetStats(stats)) options.log(`  ${line}`);
      return { ...base, dbFile, webhookSecret: marker.webhookSecret, buildSeconds: 0, reused: true, stats };
    }
  }

  const started = performance.now();
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true });
  options.log(`applying migrations to ${relative(ROOT, stateDir)}`);
  const migrate = spawnSync(
    process.execPath,
    [wranglerBin, "d1", "migrations", "apply", "DB", "--local", "--persist-to", stateDir],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" } },
  );
  if (migrate.status !== 0) {
    throw new Error(`wrangler d1 migrations apply failed (exit ${migrate.status}):\n${migrate.stdout}\n${migrate.stderr}`);
  }
  const dbFile = findD1File(stateDir);

  const tokenSalt = randomBytes(16).toString("hex");
  // The same scheme the worker checks tokens with.
  const tokenHash = await hashToken(tokenSalt, BENCH_TOKEN);
  const webhookSecret = `whsec_${randomBytes(32).toString("base64")}`;

  options.log(`filling ${relative(ROOT, dbFile)} with ${n.toLocaleString("en-US")} contacts`);
  // Explicit indexes only (sql IS NOT NULL): primary keys stay.
  const indexes = sqliteJson<{ name: string; sql: string }>(
    dbFile,
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('subscribers', 'subscriber_tags');",
  );
  sqlite(dbFile, fillScript(n, { tokenSalt, tokenHash, webhookSecret }, indexes.map((i) => i.name)));
  options.log("building indexes");
  recreateIndexes(dbFile, indexes.map((i) => i.sql));

  const [counts] = sqliteJson<{ subscribers: number; memberships: number }>(
    dbFile,
    "SELECT (SELECT count(*) FROM subscribers) AS subscribers, (SELECT count(*) FROM subscriber_tags) AS memberships;",
  );
  if (counts?.subscribers !== n) throw new Error(`expected ${n} subscribers, the database holds ${counts?.subscribers}`);
  const stats = checkDataset(dbFile, n, options.log);
  const marker: Marker = { version: DATASET_VERSION, n, migrations: migrationsHash(), webhookSecret, stats };
  writeFileSync(markerFile, JSON.stringify(marker, null, 2));
  const buildSeconds = (performance.now() - started) / 1000;
  options.log(
    `dataset ready in ${buildSeconds.toFixed(1)} s: ${n.toLocaleString("en-US")} contacts, ` +
      `${counts.memberships.toLocaleString("en-US")} tag memberships (${(counts.memberships / n).toFixed(2)} per contact)`,
  );
  return { ...base, dbFile, webhookSecret, buildSeconds, reused: false, stats };
}

/**
 * Counts the segments, their overlaps and union, and the date span with sqlite3, prints them, and throws if
 * a claim of the dataset does not hold (an empty segment, segments that do not overlap, dates out of range).
 */
function checkDataset(dbFile: string, n: number, log: (line: string) => void): DatasetStats {
  log("checking the dataset with sqlite3 (segment sizes with the product's rule compiler, overlaps, union, dates)");
  const stats = computeDatasetStats(
    dbFile,
    ACCOUNT_ID,
    SEGMENTS.map((s, i) => ({ id: i + 1, name: s.name, rules: s.rules })),
    FIELDS.map((f, i) => ({ id: i + 1, type: f.type })),
  );
  for (const line of describeDatasetStats(stats)) log(`  ${line}`);
  const problems = datasetProblems(stats, n);
  if (problems.length) throw new Error(`the dataset does not hold its claims:\n  ${problems.join("\n  ")}`);
  log(`  claims hold (checked in ${stats.seconds.toFixed(1)} s)`);
  return stats;
}
