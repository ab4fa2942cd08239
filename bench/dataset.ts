/**
 * The benchmark dataset: accounts of N contacts each, 10 custom fields, 5 tags and 3 overlapping segments,
 * written straight into the local D1 SQLite files with the sqlite3 CLI (recursive CTEs, one transaction per
 * file): the contacts into the data shard each account is placed on; the accounts, the shard registry, the
 * directory and the id allocator into the control database. Values come from a fixed hash of the contact's
 * number within its account, so a given N always yields the same data, and every account the same contacts
 * under ids of its own (account k's ids follow account k-1's, per table, so they never meet).
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { hashToken } from "../src/api/auth";
import { ALLOCATED_TABLES, type AllocatedTable, type CustomFieldType, type SubscriberStatus } from "../src/db/shard_schema";
import type { RuleGroup } from "../src/segments/rules";
import { computeDatasetStats, datasetProblems, describeDatasetStats, type DatasetStats } from "./dataset_check";
import { checkLayout, clearJobsSql, CONTROL_BINDING, d1Bindings, existingFiles, migrateStateDir, ROOT, type LayoutCheck } from "./layout";
import { sqlite, sqliteAsync, sqliteJson, sqlString } from "./sqlite";

export { ROOT };

/** Bumped whenever the generated data changes, so that a kept dataset of an older shape is rebuilt. */
const DATASET_VERSION = 3;

export const BENCH_USERNAME = "bench";
/** A local benchmark credential, nothing more (every benchmark account has it, each with its own salt). */
export const BENCH_TOKEN = "bench-token-local-only";

/** Account k (from 0): id k + 1, username bench, bench-2, bench-3, … */
export const accountId = (index: number) => index + 1;
export const accountUsername = (index: number) => (index === 0 ? BENCH_USERNAME : `${BENCH_USERNAME}-${index + 1}`);

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
/** A field's number within its account (1-based); its id is this plus the account's custom_fields offset. */
const FIELD_NO = Object.fromEntries(FIELDS.map((f, i) => [f.name, i + 1])) as Record<string, number>;

/** Tag names and the share of subscribers that carry each (1.5 tags per subscriber on average). */
export const TAGS: ReadonlyArray<{ name: string; perMille: number }> = [
  { name: "vip", perMille: 500 },
  { name: "newsletter", perMille: 400 },
  { name: "webinar-2025", perMille: 300 },
  { name: "churn-risk", perMille: 200 },
  { name: "beta-tester", perMille: 100 },
];

/** The id offsets of one account, per table: its ids are offset + 1, offset + 2, … */
export type IdOffsets = Record<AllocatedTable, number>;

/**
 * Three overlapping segments whose union covers most contacts; they use lists, status, tags, custom fields and
 * dates. The rules name the account's own list, tag and field ids.
 */
export function segmentsOf(o: IdOffsets): Array<{ id: number; name: string; rules: RuleGroup }> {
  const list = (no: number) => o.lists + no;
  const tag = (no: number) => o.tags + no;
  const field = (name: string) => o.custom_fields + FIELD_NO[name]!;
  const segments: Array<{ name: string; rules: RuleGroup }> = [
    {
      name: "Newsletter and customers, not bounced",
      rules: {
        match: "all",
        rules: [
          { field: "list", operator: "in", value: [list(1), list(2)] },
          { field: "status", operator: "not_equals", value: "bounced" },
        ],
      },
    },
    {
      name: "VIPs and high value",
      rules: {
        match: "any",
        rules: [
          { field: "tag", operator: "equals", value: tag(1) },
          { field: "customfield", fieldid: field("Lifetime Value"), operator: "greater_than", value: 600 },
          {
            match: "all",
            rules: [
              { field: "customfield", fieldid: field("First Name"), operator: "starts_with", value: "a" },
              { field: "customfield", fieldid: field("Age"), operator: "between", value: [25, 40] },
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
              { field: "tag", operator: "equals", value: tag(5) },
            ],
          },
        ],
      },
    },
  ];
  return segments.map((s, i) => ({ id: o.segments + i + 1, ...s }));
}
const SEGMENT_COUNT = segmentsOf({ lists: 0, custom_fields: 0, tags: 0, segments: 0, subscribers: 0, import_batches: 0 }).length;

/** Rows per table of one account of n contacts. */
export function rowsPerAccount(n: number): Record<AllocatedTable, number> {
  // The dataset is written directly, not imported: no import batches.
  return { lists: LISTS.length, custom_fields: FIELDS.length, tags: TAGS.length, segments: SEGMENT_COUNT, subscribers: n, import_batches: 0 };
}

/** Account k's offsets: after the ids of accounts 0 … k-1, table by table. */
export function offsetsOf(index: number, n: number): IdOffsets {
  const rows = rowsPerAccount(n);
  return Object.fromEntries(ALLOCATED_TABLES.map((t) => [t, index * rows[t]])) as IdOffsets;
}

export const FIRST_NAMES = [
  "Anna", "Aaron", "Abigail", "Ahmed", "Alice", "Bob", "Carla", "David", "Elena", "Farid", "Grace", "Hiro",
  "Ingrid", "José", "Kim", "Liam", "María", "Noah", "Olivia", "Pádraig", "Quinn", "Rosa", "Sven", "Tomás",
  "Uma", "Viktor", "Wen", "Xavier", "Yara", "Zoë", "Ørjan", "Émilie",
];
export const LAST_NAMES = [
  "Smith", "Johnson", "O'Brien", "Müller", "García", "Nguyễn", "Kowalski", "Rossi", "Dubois", "Jensen",
  "Tanaka", "Kim", "Patel", "Silva", "Novák", "Andersson", "Cohen", "Okafor", "Ivanova", "Van der Berg",
];
export const COMPANIES = [
  "Acme Corp", 'Acme "Rockets" Inc.', "Smith & Sons", "Globex", "Initech", "Umbrella GmbH", "Stark Industries",
  "Wayne Enterprises", "Müller Logistik", "Tyrell, Inc.", "=SUM(A1) Ltd", "Hooli", "Pied Piper", "Vandelay",
];
export const CITIES = [
  "New York", "London", "Berlin", "Paris", "São Paulo", "Tokyo", "Zürich", "Lagos", "Mumbai", "Sydney",
  "Toronto", "Kraków", "Reykjavík", "Austin", "Dublin", "Seoul",
];
export const DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "inbox.test", "example.co.uk", "post.example"];

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

export const STATUS_BY_PERCENT: Array<[number, SubscriberStatus]> = [
  [70, "active"],
  [80, "inactive"],
  [90, "bounced"],
  [100, "unsubscribed"],
];

const epoch = (iso: string) => Date.parse(iso) / 1000;

/**
 * One account's rows for its shard: lists, custom fields, tags, segments, n subscribers and their tags. Every
 * value is hashed from i, the contact's number within the account (1..n), so every account gets the same
 * contacts; ids (and the field ids keying custom_fields, and the ids the rules name) are the account's own.
 */
export function accountRowsSql(n: number, index: number): string {
  const id = accountId(index);
  const o = offsetsOf(index, n);
  const h = (stream: number) => hash("i", stream);
  const plus = (offset: number, expr: string) => (offset ? `${offset} + ${expr}` : expr);
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
  const customFieldsJson = `json_object(${FIELDS.map((f, i) => `'${o.custom_fields + i + 1}', ${values[f.name]}`).join(", ")})`;
  // A tag's number within the account (1..5) picks its share and feeds the hash, as the tag id did before offsets.
  const tagNo = o.tags ? `(t.id - ${o.tags})` : "t.id";
  const tagCase = `CASE ${tagNo} ${TAGS.map((t, i) => `WHEN ${i + 1} THEN ${t.perMille}`).join(" ")} END`;

  return `
-- account ${id} (${accountUsername(index)}): ids after offsets ${JSON.stringify(o)}
INSERT INTO lists (id, account_id, name) VALUES
  ${LISTS.map((name, i) => `(${o.lists + i + 1}, ${id}, ${sqlString(name)})`).join(",\n  ")};
INSERT INTO custom_fields (id, account_id, name, type) VALUES
  ${FIELDS.map((f, i) => `(${o.custom_fields + i + 1}, ${id}, ${sqlString(f.name)}, '${f.type}')`).join(",\n  ")};
INSERT INTO tags (id, account_id, name) VALUES
  ${TAGS.map((t, i) => `(${o.tags + i + 1}, ${id}, ${sqlString(t.name)})`).join(",\n  ")};
INSERT INTO segments (id, account_id, name, rules) VALUES
  ${segmentsOf(o).map((s) => `(${s.id}, ${id}, ${sqlString(s.name)}, ${sqlString(JSON.stringify(s.rules))})`).join(",\n  ")};

INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields)
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n})
SELECT
  ${plus(o.subscribers, "i")},
  ${id},
  ${plus(o.lists, `1 + ${h(1)} % ${LISTS.length}`)},
  'contact' || (${plus(o.subscribers, "i")}) || '@' || ${pick(DOMAINS, h(2))},
  ${status},
  strftime('%Y-%m-%dT%H:%M:%SZ', ${dateFrom} + ${subscribeOffset}, 'unixepoch'),
  ${customFieldsJson}
FROM seq;

INSERT INTO subscriber_tags (subscriber_id, tag_id)
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n})
-- CROSS JOIN keeps seq as the outer loop, so rows arrive in primary-key order without a sort.
SELECT ${plus(o.subscribers, "i")}, t.id FROM seq CROSS JOIN tags t
WHERE t.account_id = ${id} AND ${hash(`i * 8 + ${tagNo}`, 5)} % 1000 < ${tagCase};
`;
}

/** The SQL that fills a freshly migrated shard with the given accounts (by index), n contacts each. */
export function shardFillScript(n: number, accountIndexes: readonly number[], dropIndexes: readonly string[]): string {
  return `
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
PRAGMA temp_store = MEMORY;
PRAGMA foreign_keys = OFF;
.bail on
BEGIN;
-- Secondary indexes are rebuilt after the load (faster than maintaining them row by row),
-- from the very DDL the migration wrote (see recreateIndexes).
${dropIndexes.map((name) => `DROP INDEX "${name.replaceAll('"', '""')}";`).join("\n")}
${accountIndexes.map((index) => accountRowsSql(n, index)).join("\n")}
COMMIT;
`;
}

interface Credentials {
  tokenSalt: string;
  tokenHash: string;
  webhookSecret: string;
}

/**
 * The control database's part: the accounts, every shard of wrangler.toml registered (as scripts/dev.sh does),
 * each account's directory entry, and id_sequences past the highest id of each table.
 */
export function controlScript(n: number, placements: readonly string[], credentials: readonly Credentials[], shards: readonly string[]): string {
  const highest = Object.fromEntries(
    ALLOCATED_TABLES.map((t) => [t, Math.max(...placements.map((_, k) => offsetsOf(k, n)[t] + rowsPerAccount(n)[t]))]),
  ) as Record<AllocatedTable, number>;
  return `
PRAGMA foreign_keys = ON;
.bail on
BEGIN;
INSERT OR IGNORE INTO shards (name) VALUES ${shards.map((s) => `(${sqlString(s)})`).join(", ")};
${placements
  .map((shard, k) => {
    const c = credentials[k]!;
    return `INSERT INTO accounts (id, username, token_salt, token_hash, webhook_secret) VALUES
  (${accountId(k)}, ${sqlString(accountUsername(k))}, ${sqlString(c.tokenSalt)}, ${sqlString(c.tokenHash)}, ${sqlString(c.webhookSecret)});
INSERT INTO account_directory (account_id, shard, updated_at) VALUES (${accountId(k)}, ${sqlString(shard)}, 0);`;
  })
  .join("\n")}
${ALLOCATED_TABLES.map(
  (t) => `INSERT INTO id_sequences (name, last_id) VALUES (${sqlString(t)}, ${highest[t]}) ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id);`,
).join("\n")}
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
`;
}

/**
 * Rebuilds the indexes shardFillScript dropped, from the DDL read before the load. No ANALYZE: the planner sees
 * the database as the migrations leave it.
 */
function recreateIndexes(file: string, ddl: string[]): Promise<string> {
  return sqliteAsync(file, `PRAGMA cache_size = -262144;\n.bail on\nBEGIN;\n${ddl.map((d) => `${d};`).join("\n")}\nCOMMIT;\nPRAGMA wal_checkpoint(TRUNCATE);\n`);
}

/** One account of a benchmark state. */
export interface BenchAccount {
  index: number;
  id: number;
  username: string;
  usertoken: string;
  webhookSecret: string;
  /** The shard its directory entry names, and that shard's file. */
  shard: string;
  shardFile: string;
  offsets: IdOffsets;
  segmentIds: number[];
  /** Its subscriber_tags rows. */
  memberships: number;
  /** Segment sizes, overlaps and date span, as sqlite3 counted them when the dataset was built. */
  stats: DatasetStats;
}

/** A benchmark state directory: the local D1 files, and the accounts placed on the shards. */
export interface BenchState {
  /** Contacts per account. */
  n: number;
  stateDir: string;
  /** The D1 file of each binding (DB, SHARD_0, …). */
  files: Record<string, string>;
  controlFile: string;
  accounts: BenchAccount[];
  /** What was checked of the layout on this run (see checkLayout), every one held. */
  layoutChecks: LayoutCheck[];
  /** Seconds spent building it; 0 when a kept dataset was reused. */
  buildSeconds: number;
  reused: boolean;
}

/** The single-account benchmark's dataset: the state, and its one account's fields at the top level. */
export type Dataset = BenchState & BenchAccount;

interface Marker {
  version: number;
  n: number;
  /** The shard of each account, by index. */
  placements: string[];
  /** A kept dataset is rebuilt when the migrations change. */
  migrations: string;
  /** The D1 file name of each binding. */
  files: Record<string, string>;
  accounts: Array<{ username: string; webhookSecret: string; memberships: number; stats: DatasetStats }>;
}

function migrationsHash(): string {
  const hash = createHash("sha256");
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith(".sql")) hash.update(relative(ROOT, path)).update("\0").update(readFileSync(path)).update("\0");
    }
  };
  walk(join(ROOT, "migrations"));
  return hash.digest("hex");
}

/** The single-account dataset of N contacts, on SHARD_0, in .bench/state-<N>. */
export async function ensureDataset(n: number, options: { reuse: boolean; log: (line: string) => void }): Promise<Dataset> {
  const state = await ensureState({ stateDir: join(ROOT, ".bench", `state-${n}`), n, placements: ["SHARD_0"] }, options);
  return { ...state, ...state.accounts[0]! };
}

/**
 * Builds a state of accounts of N contacts each, account k on placements[k], in stateDir, or reuses it when kept
 * from an earlier run with the same layout. Checks the layout every time (checkLayout) and the segments' claims
 * when built; throws if any does not hold.
 */
export async function ensureState(
  plan: { stateDir: string; n: number; placements: readonly string[] },
  options: { reuse: boolean; log: (line: string) => void },
): Promise<BenchState> {
  const { stateDir, n, placements } = plan;
  const { shards } = d1Bindings();
  for (const shard of placements) if (!shards.includes(shard)) throw new Error(`${shard} is not a data shard of wrangler.toml (${shards.join(", ")})`);
  const markerFile = join(stateDir, "bench-dataset.json");
  const accountsOf = (files: Record<string, string>, meta: Marker["accounts"]): BenchAccount[] =>
    placements.map((shard, k) => {
      const offsets = offsetsOf(k, n);
      return {
        index: k,
        id: accountId(k),
        username: accountUsername(k),
        usertoken: BENCH_TOKEN,
        webhookSecret: meta[k]!.webhookSecret,
        shard,
        shardFile: files[shard]!,
        offsets,
        segmentIds: segmentsOf(offsets).map((s) => s.id),
        memberships: meta[k]!.memberships,
        stats: meta[k]!.stats,
      };
    });
  const layout = (files: Record<string, string>, accounts: BenchAccount[]) => {
    options.log(`checking the layout with sqlite3 (directory, rows per shard, disjoint ids, id_sequences)`);
    const started = performance.now();
    const checks = checkLayout(
      files,
      accounts.map((a) => ({ id: a.id, username: a.username, shard: a.shard, rows: rowsPerAccount(n), memberships: a.memberships })),
    );
    for (const c of checks) options.log(`  ${c.ok ? "holds" : "DOES NOT HOLD"}: ${c.what}${c.detail ? ` (${c.detail})` : ""}`);
    const failed = checks.filter((c) => !c.ok);
    if (failed.length) throw new Error(`the layout does not hold its claims:\n  ${failed.map((c) => `${c.what}: ${c.detail ?? ""}`).join("\n  ")}`);
    options.log(`  layout holds (checked in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
    return checks;
  };

  if (options.reuse && existsSync(markerFile)) {
    const marker = JSON.parse(readFileSync(markerFile, "utf8")) as Marker;
    const files = existingFiles(stateDir, marker.files);
    if (
      files &&
      marker.version === DATASET_VERSION &&
      marker.n === n &&
      JSON.stringify(marker.placements) === JSON.stringify(placements) &&
      marker.migrations === migrationsHash()
    ) {
      options.log(`reusing the dataset in ${relative(ROOT, stateDir)} (kept by an earlier --keep run)`);
      const controlFile = files[CONTROL_BINDING]!;
      // Earlier runs' jobs and files go, so that every run starts from the same state (and disk use stays flat).
      sqlite(controlFile, clearJobsSql(controlFile));
      rmSync(join(stateDir, "v3", "r2"), { recursive: true, force: true });
      const accounts = accountsOf(files, marker.accounts);
      for (const a of accounts) {
        options.log(`  account ${a.id} (${a.username}) on ${a.shard}:`);
        for (const line of describeDatasetStats(a.stats)) options.log(`    ${line}`);
      }
      const layoutChecks = layout(files, accounts);
      return { n, stateDir, files, controlFile, accounts, layoutChecks, buildSeconds: 0, reused: true };
    }
  }

  const started = performance.now();
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true });
  const files = migrateStateDir(stateDir, options.log);
  const controlFile = files[CONTROL_BINDING]!;

  const credentials: Credentials[] = [];
  for (let k = 0; k < placements.length; k++) {
    const tokenSalt = randomBytes(16).toString("hex");
    // The same scheme the worker checks tokens with.
    credentials.push({ tokenSalt, tokenHash: await hashToken(tokenSalt, BENCH_TOKEN), webhookSecret: `whsec_${randomBytes(32).toString("base64")}` });
  }

  // Each shard's accounts in one transaction; different shard files are filled at the same time.
  const used = [...new Set(placements)];
  await Promise.all(
    used.map(async (shard) => {
      const file = files[shard]!;
      const on = placements.flatMap((s, k) => (s === shard ? [k] : []));
      options.log(`filling ${shard} (${relative(ROOT, file)}) with ${on.map((k) => `account ${accountId(k)} (${accountUsername(k)})`).join(" and ")}: ${(n * on.length).toLocaleString("en-US")} contacts`);
      // Explicit indexes only (sql IS NOT NULL): primary keys stay.
      const indexes = sqliteJson<{ name: string; sql: string }>(
        file,
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('subscribers', 'subscriber_tags');",
      );
      await sqliteAsync(file, shardFillScript(n, on, indexes.map((i) => i.name)));
      options.log(`building ${shard}'s indexes`);
      await recreateIndexes(file, indexes.map((i) => i.sql));
    }),
  );
  options.log(`writing the accounts, the shard registry, the directory and id_sequences into the control database (${relative(ROOT, controlFile)})`);
  sqlite(controlFile, controlScript(n, placements, credentials, d1Bindings().shards));

  const meta: Marker["accounts"] = [];
  for (let k = 0; k < placements.length; k++) {
    const file = files[placements[k]!]!;
    const [counts] = sqliteJson<{ subscribers: number; memberships: number }>(
      file,
      `SELECT (SELECT count(*) FROM subscribers WHERE account_id = ${accountId(k)}) AS subscribers,
              (SELECT count(*) FROM subscriber_tags st JOIN subscribers s ON s.id = st.subscriber_id WHERE s.account_id = ${accountId(k)}) AS memberships;`,
    );
    if (counts?.subscribers !== n) throw new Error(`expected ${n} subscribers of account ${accountId(k)} on ${placements[k]}, found ${counts?.subscribers}`);
    options.log(`account ${accountId(k)} (${accountUsername(k)}) on ${placements[k]}:`);
    const stats = checkDataset(file, k, n, (line) => options.log(`  ${line}`));
    if (k > 0) {
      // The same contacts under other ids: every count must equal the first account's.
      const strip = (s: DatasetStats) => JSON.stringify({ ...s, segments: s.segments.map((x) => x.contacts), overlaps: s.overlaps.map((x) => x.contacts), seconds: 0 });
      if (strip(stats) !== strip(meta[0]!.stats)) {
        throw new Error(`account ${accountId(k)}'s segment counts differ from account 1's, though it holds the same contacts under other ids (ids, rules or field keys are off):\n  ${strip(stats)}\n  ${strip(meta[0]!.stats)}`);
      }
      options.log(`  the same segment sizes, overlaps, union and dates as account 1 (the same contacts under ids of its own)`);
    }
    meta.push({ username: accountUsername(k), webhookSecret: credentials[k]!.webhookSecret, memberships: counts.memberships, stats });
  }
  const accounts = accountsOf(files, meta);
  const layoutChecks = layout(files, accounts);
  const marker: Marker = {
    version: DATASET_VERSION,
    n,
    placements: [...placements],
    migrations: migrationsHash(),
    files: Object.fromEntries(Object.entries(files).map(([b, f]) => [b, basename(f)])),
    accounts: meta,
  };
  writeFileSync(markerFile, JSON.stringify(marker, null, 2));
  const buildSeconds = (performance.now() - started) / 1000;
  options.log(
    `dataset ready in ${buildSeconds.toFixed(1)} s: ${accounts.length} account(s) of ${n.toLocaleString("en-US")} contacts, ` +
      meta.map((m) => `${m.memberships.toLocaleString("en-US")} tag memberships (${(m.memberships / n).toFixed(2)} per contact)`).join(", "),
  );
  return { n, stateDir, files, controlFile, accounts, layoutChecks, buildSeconds, reused: false };
}

/**
 * Counts account k's segments, their overlaps and union, and the date span with sqlite3 on its shard file,
 * prints them, and throws if a claim of the dataset does not hold (an empty segment, segments that do not
 * overlap, dates out of range).
 */
function checkDataset(file: string, k: number, n: number, log: (line: string) => void): DatasetStats {
  log("checking the dataset with sqlite3 (segment sizes with the product's rule compiler, overlaps, union, dates)");
  const o = offsetsOf(k, n);
  const stats = computeDatasetStats(
    file,
    accountId(k),
    segmentsOf(o),
    FIELDS.map((f, i) => ({ id: o.custom_fields + i + 1, type: f.type })),
  );
  for (const line of describeDatasetStats(stats)) log(`  ${line}`);
  const problems = datasetProblems(stats, n);
  if (problems.length) throw new Error(`the dataset of account ${accountId(k)} does not hold its claims:\n  ${problems.join("\n  ")}`);
  log(`  claims hold (checked in ${stats.seconds.toFixed(1)} s)`);
  return stats;
}
