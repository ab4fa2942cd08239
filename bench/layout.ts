/**
 * The local D1 databases of a benchmark state directory: the control database (binding DB) and the data shards
 * (SHARD_0, SHARD_1, …), one SQLite file each, and the checks that the benchmark's accounts sit where the
 * layout says (directory, rows per shard, ids unique across shards, the id allocator).
 *
 * Local D1 keeps each database in <state>/v3/d1/miniflare-D1DatabaseObject/<hash>.sqlite, the hash derived from
 * the binding's database_id. Rather than re-deriving miniflare's hash, the benchmark migrates the databases one
 * at a time and records which file each one created (migrateStateDir).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ALLOCATED_TABLES, type AllocatedTable } from "../src/db/shard_schema";
import { sqliteJson } from "./sqlite";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const wranglerBin = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

export const CONTROL_BINDING = "DB";
const SHARD_NAME = /^SHARD_\d{1,4}$/;

/** The D1 bindings of wrangler.toml, in file order: DB and the SHARD_n data shards. */
export function d1Bindings(): { control: string; shards: string[] } {
  const text = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const bindings = text
    .split(/^\s*\[\[d1_databases\]\]\s*$/m)
    .slice(1)
    .map((block) => /^\s*binding\s*=\s*"([^"]+)"/m.exec(block.split(/^\s*\[/m)[0]!)?.[1])
    .filter((b): b is string => !!b);
  const shards = bindings.filter((b) => SHARD_NAME.test(b));
  if (!bindings.includes(CONTROL_BINDING) || shards.length === 0) {
    throw new Error(`wrangler.toml must bind ${CONTROL_BINDING} and at least one SHARD_n (it binds: ${bindings.join(", ") || "nothing"})`);
  }
  return { control: CONTROL_BINDING, shards };
}

const d1Dir = (stateDir: string) => join(stateDir, "v3", "d1", "miniflare-D1DatabaseObject");

/** The D1 SQLite files of a state directory (metadata.sqlite is miniflare's own). */
function d1Files(stateDir: string): string[] {
  const dir = d1Dir(stateDir);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite") : [];
}

/**
 * Applies every database's migrations to a fresh state directory, as scripts/migrate.ts does for `npm run dev`
 * (the control set on DB, the shard set on each SHARD_n), one database at a time, and returns the file each
 * one created, by binding. The control file must have the control tables, each shard file the shard tables.
 */
export function migrateStateDir(stateDir: string, log: (line: string) => void): Record<string, string> {
  const { control, shards } = d1Bindings();
  const files: Record<string, string> = {};
  for (const binding of [control, ...shards]) {
    const before = new Set(d1Files(stateDir));
    log(`applying the ${binding === control ? "control" : "shard"} migrations to ${binding} in ${relative(ROOT, stateDir)}`);
    const run = spawnSync(process.execPath, [wranglerBin, "d1", "migrations", "apply", binding, "--local", "--persist-to", stateDir], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    });
    if (run.status !== 0) throw new Error(`wrangler d1 migrations apply ${binding} failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
    const created = d1Files(stateDir).filter((f) => !before.has(f));
    if (created.length !== 1) throw new Error(`migrating ${binding} created ${created.length} D1 files in ${d1Dir(stateDir)} (expected one): ${created.join(", ")}`);
    files[binding] = join(d1Dir(stateDir), created[0]!);
  }
  const tables = (file: string) => new Set(sqliteJson<{ name: string }>(file, "SELECT name FROM sqlite_master WHERE type = 'table';").map((t) => t.name));
  if (!tables(files[control]!).has("id_sequences")) throw new Error(`${files[control]} (${control}) has no id_sequences table: not the control database`);
  for (const shard of shards) {
    if (!tables(files[shard]!).has("subscribers")) throw new Error(`${files[shard]} (${shard}) has no subscribers table: not a data shard`);
  }
  return files;
}

/** The files recorded for a kept state directory, if they are all still there. */
export function existingFiles(stateDir: string, recorded: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!recorded) return undefined;
  const { control, shards } = d1Bindings();
  const files: Record<string, string> = {};
  for (const binding of [control, ...shards]) {
    const name = recorded[binding];
    if (!name) return undefined;
    const file = join(d1Dir(stateDir), name);
    if (!existsSync(file)) return undefined;
    files[binding] = file;
  }
  return files;
}

/** What the layout checks need to know of an account. */
export interface PlacedAccount {
  id: number;
  username: string;
  shard: string;
  /** Rows the account must have per allocated table. */
  rows: Record<AllocatedTable, number>;
  /** Rows it must have in subscriber_tags (null: not known, only checked to be on the account's shard). */
  memberships?: number | null;
}

export interface LayoutCheck {
  what: string;
  ok: boolean;
  detail?: string;
}

/**
 * Checks, with sqlite3 on the files themselves, that the accounts sit exactly where the layout says:
 * - the control database has each account, registers every shard of wrangler.toml, and its directory puts each
 *   account on its shard, writes not frozen;
 * - every shard holds exactly the rows of the accounts placed on it (per table: the expected count, on its
 *   shard; none on any other shard), and nothing of an unknown account;
 * - the ids of the accounts are disjoint, per table, across all shards (their id ranges do not meet);
 * - tag memberships and list references stay within one account;
 * - id_sequences has handed out at least the highest id of each table.
 */
export function checkLayout(files: Record<string, string>, accounts: readonly PlacedAccount[]): LayoutCheck[] {
  const { control, shards } = d1Bindings();
  const controlFile = files[control]!;
  const checks: LayoutCheck[] = [];
  const ids = accounts.map((a) => a.id).join(", ");

  const registered = new Set(sqliteJson<{ name: string }>(controlFile, "SELECT name FROM shards;").map((r) => r.name));
  const missing = shards.filter((s) => !registered.has(s));
  checks.push({ what: `shards registered in the control database (${shards.join(", ")})`, ok: missing.length === 0, detail: missing.length ? `missing: ${missing.join(", ")}` : undefined });

  const directory = sqliteJson<{ id: number; username: string; shard: string | null; writes_frozen: number | null }>(
    controlFile,
    `SELECT a.id, a.username, d.shard, d.writes_frozen FROM accounts a LEFT JOIN account_directory d ON d.account_id = a.id ORDER BY a.id;`,
  );
  for (const account of accounts) {
    const row = directory.find((r) => r.id === account.id);
    checks.push({
      what: `directory: account ${account.id} (${account.username}) on ${account.shard}`,
      ok: !!row && row.username === account.username && row.shard === account.shard && row.writes_frozen === 0,
      detail: row ? `found ${row.username} on ${row.shard} (writes_frozen ${row.writes_frozen})` : "no such account",
    });
  }
  const strangers = directory.filter((r) => !accounts.some((a) => a.id === r.id));
  checks.push({ what: "no other account in the control database", ok: strangers.length === 0, detail: strangers.map((s) => `${s.id} ${s.username}`).join(", ") || undefined });

  // Rows and id ranges per shard, table and account.
  const ranges = new Map<string, { lo: number; hi: number; shard: string }[]>();
  const maxId: Record<string, number> = {};
  const rowProblems: string[] = [];
  for (const shard of shards) {
    const file = files[shard]!;
    for (const table of ALLOCATED_TABLES) {
      const rows = sqliteJson<{ account_id: number; n: number; lo: number; hi: number }>(
        file,
        `SELECT account_id, count(*) AS n, min(id) AS lo, max(id) AS hi FROM ${table} GROUP BY account_id;`,
      );
      for (const r of rows) {
        maxId[table] = Math.max(maxId[table] ?? 0, r.hi);
        const key = `${table}:${r.account_id}`;
        ranges.set(key, [...(ranges.get(key) ?? []), { lo: r.lo, hi: r.hi, shard }]);
      }
      for (const account of accounts) {
        const got = rows.find((r) => r.account_id === account.id)?.n ?? 0;
        const want = account.shard === shard ? account.rows[table] : 0;
        if (got !== want) rowProblems.push(`${shard}.${table}: ${got} rows of account ${account.id}, expected ${want}`);
      }
      for (const u of rows.filter((r) => !accounts.some((a) => a.id === r.account_id))) rowProblems.push(`${shard}.${table}: ${u.n} rows of account ${u.account_id}`);
    }
    // Memberships: each links a subscriber and a tag of the same account, both on this shard.
    const [links] = sqliteJson<{ orphans: number | null; mixed: number | null }>(
      file,
      `SELECT sum(s.id IS NULL OR t.id IS NULL) AS orphans, sum(s.account_id != t.account_id) AS mixed
       FROM subscriber_tags st LEFT JOIN subscribers s ON s.id = st.subscriber_id LEFT JOIN tags t ON t.id = st.tag_id;`,
    );
    if (links?.orphans || links?.mixed) rowProblems.push(`${shard}.subscriber_tags: ${links.orphans ?? 0} rows without their subscriber or tag, ${links.mixed ?? 0} linking two accounts`);
    const perAccount = sqliteJson<{ account_id: number; n: number }>(
      file,
      `SELECT s.account_id, count(*) AS n FROM subscriber_tags st JOIN subscribers s ON s.id = st.subscriber_id GROUP BY s.account_id;`,
    );
    for (const account of accounts) {
      const got = perAccount.find((r) => r.account_id === account.id)?.n ?? 0;
      const here = account.shard === shard;
      const ok = here ? got > 0 && (account.memberships == null || got === account.memberships) : got === 0;
      if (!ok) rowProblems.push(`${shard}.subscriber_tags: ${got} memberships of account ${account.id}, expected ${here ? (account.memberships ?? "some") : 0}`);
    }
    const [lists] = sqliteJson<{ n: number }>(
      file,
      `SELECT count(*) AS n FROM subscribers s LEFT JOIN lists l ON l.id = s.list_id WHERE l.id IS NULL OR l.account_id != s.account_id;`,
    );
    if (lists?.n) rowProblems.push(`${shard}.subscribers: ${lists.n} rows whose list_id is not a list of the same account`);
  }
  checks.push({
    what: `each account's rows (${ALLOCATED_TABLES.join(", ")}, subscriber_tags) on its shard only, and nothing else on any shard (${shards.join(", ")})`,
    ok: rowProblems.length === 0,
    detail: rowProblems.join("; ") || undefined,
  });

  // Disjoint ids: per table, no two accounts' id ranges meet (so no id is shared, on any shard).
  const overlaps: string[] = [];
  for (const table of ALLOCATED_TABLES) {
    for (let i = 0; i < accounts.length; i++) {
      for (let j = i + 1; j < accounts.length; j++) {
        for (const a of ranges.get(`${table}:${accounts[i]!.id}`) ?? []) {
          for (const b of ranges.get(`${table}:${accounts[j]!.id}`) ?? []) {
            if (a.lo <= b.hi && b.lo <= a.hi) overlaps.push(`${table}: account ${accounts[i]!.id} ${a.lo}..${a.hi} (${a.shard}) and account ${accounts[j]!.id} ${b.lo}..${b.hi} (${b.shard})`);
          }
        }
      }
    }
  }
  if (accounts.length > 1) {
    const spans = ALLOCATED_TABLES.map((t) => `${t} ${accounts.map((a) => (ranges.get(`${t}:${a.id}`) ?? []).map((r) => `${r.lo}..${r.hi}`).join("+") || "-").join(" / ")}`);
    checks.push({ what: `ids disjoint across accounts ${ids} (${spans.join("; ")})`, ok: overlaps.length === 0, detail: overlaps.join("; ") || undefined });
  }

  // The allocator must never hand out an id that is in use.
  const sequences = sqliteJson<{ name: string; last_id: number }>(controlFile, "SELECT name, last_id FROM id_sequences;");
  const behind = ALLOCATED_TABLES.filter((t) => (sequences.find((s) => s.name === t)?.last_id ?? 0) < (maxId[t] ?? 0));
  checks.push({
    what: `id_sequences at least the highest id per table (${ALLOCATED_TABLES.map((t) => `${t} ${sequences.find((s) => s.name === t)?.last_id ?? "-"} >= ${maxId[t] ?? 0}`).join(", ")})`,
    ok: behind.length === 0,
    detail: behind.length ? `behind: ${behind.join(", ")}` : undefined,
  });
  return checks;
}

/** Control-database statements that clear earlier runs' jobs, so that a kept state starts every run the same. */
export function clearJobsSql(controlFile: string): string {
  const tables = new Set(sqliteJson<{ name: string }>(controlFile, "SELECT name FROM sqlite_master WHERE type = 'table';").map((t) => t.name));
  return ["export_carry", "idempotency_keys", "export_jobs"]
    .filter((t) => tables.has(t))
    .map((t) => `DELETE FROM ${t};`)
    .concat("PRAGMA wal_checkpoint(TRUNCATE);")
    .join(" ");
}

