/**
 * The baseline: the export's own query, run by Debian's sqlite3 CLI on the D1 SQLite file of the shard the
 * account lives on, writing one JSON record per line. The SQL comes from the project's query builder with the
 * job's frozen spec (read from the control database), so both sides select and build exactly the same records.
 */
import { spawn } from "node:child_process";
import { openSync, closeSync, statSync, writeFileSync } from "node:fs";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import type { CustomFieldType } from "../src/db/shard_schema";
import { pageQuery } from "../src/export/query";
import type { ExportSpec } from "../src/export/spec";
import { inlineParams, SQLITE3, sqliteJson, sqlString } from "./sqlite";

export interface JobRow {
  id: string;
  accountId: number;
  spec: ExportSpec;
  state: string;
  processedCount: number;
  bytesWritten: number;
  slices: number;
  /** The shard the job read (export_jobs.shard, from the directory when a slice claimed it). */
  shard: string | null;
  /** When its first slice claimed it, and when it completed (ms since the epoch; null if not). */
  startedAt: number | null;
  completedAt: number | null;
}

/** The job as the worker recorded it in the control database, with the spec frozen at request time. */
export function readJob(controlFile: string, jobId: string): JobRow {
  const [row] = sqliteJson<{
    id: string;
    account_id: number;
    spec: string;
    state: string;
    processed_count: number;
    bytes_written: number;
    slices: number;
    shard: string | null;
    started_at: string | null;
    completed_at: string | null;
  }>(
    controlFile,
    `SELECT id, account_id, spec, state, processed_count, bytes_written, slices, shard, started_at, completed_at FROM export_jobs WHERE id = ${sqlString(jobId)};`,
  );
  if (!row) throw new Error(`job ${jobId} is not in ${controlFile}`);
  const time = (iso: string | null) => (iso ? Date.parse(iso) : null);
  return {
    id: row.id,
    accountId: row.account_id,
    spec: JSON.parse(row.spec) as ExportSpec,
    state: row.state,
    processedCount: row.processed_count,
    bytesWritten: row.bytes_written,
    slices: row.slices,
    shard: row.shard,
    startedAt: time(row.started_at),
    completedAt: time(row.completed_at),
  };
}

/**
 * The whole export as one statement: the page query from afterId 0 without a limit (-1), its parameters
 * written in as literals, wrapped so that sqlite3 prints only the record column. The custom fields' types come
 * from the shard file the statement will run on.
 */
export function baselineSql(shardFile: string, job: JobRow): string {
  const fields = sqliteJson<{ id: number; type: CustomFieldType }>(
    shardFile,
    `SELECT id, type FROM custom_fields WHERE account_id = ${job.accountId};`,
  );
  const fieldTypes = new Map(fields.map((f) => [f.id, f.type]));
  const query = new SQLiteAsyncDialect().sqlToQuery(pageQuery(job.spec, job.accountId, fieldTypes)(0, -1));
  const statement = inlineParams(query.sql, query.params);
  // The page query selects (id, record); as a named CTE it keeps its own WITH clause and ORDER BY.
  return `WITH bench_page(id, rec) AS (\n${statement}\n)\nSELECT rec FROM bench_page;`;
}

export interface BaselineRun {
  seconds: number;
  outputBytes: number;
  sqlFile: string;
  outFile: string;
}

/** Runs the statement with sqlite3 (read-only) on the shard file, stdout to a file, and times it from spawn to exit. */
export async function runBaseline(shardFile: string, statement: string, sqlFile: string, outFile: string): Promise<BaselineRun> {
  const script = `.mode list\n.headers off\n${statement}\n`;
  writeFileSync(sqlFile, script);
  const out = openSync(outFile, "w");
  const started = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(SQLITE3, ["-readonly", "-bail", "-init", "/dev/null", shardFile, `.read ${sqlFile}`], {
        stdio: ["ignore", out, "pipe"],
      });
      let err = "";
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 && !err.trim() ? resolve() : reject(new Error(`sqlite3 exited ${code}: ${err.trim()}`))));
    });
  } finally {
    closeSync(out);
  }
  const seconds = (performance.now() - started) / 1000;
  return { seconds, outputBytes: statSync(outFile).size, sqlFile, outFile };
}
