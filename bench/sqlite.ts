/** Debian's sqlite3 CLI, used to fill the benchmark database and as the baseline the export is measured against. */
import { spawn, spawnSync } from "node:child_process";

export const SQLITE3 = "/usr/bin/sqlite3";

/** Runs SQL text (several statements and dot-commands allowed) against a database file; returns stdout. */
export function sqlite(file: string, script: string, args: string[] = []): string {
  const run = spawnSync(SQLITE3, [...args, file], {
    input: script,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw run.error;
  if (run.status !== 0 || run.stderr.trim()) {
    throw new Error(`sqlite3 failed (exit ${run.status}): ${run.stderr.trim()}\n--- script start ---\n${script.slice(0, 2000)}`);
  }
  return run.stdout;
}

/** Rows of one SELECT, as objects (sqlite3 -json). */
export function sqliteJson<T = Record<string, unknown>>(file: string, select: string): T[] {
  const out = sqlite(file, select, ["-json", "-bail"]).trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

/** A SQL string literal. NUL cannot be written in SQL text. */
export function sqlString(value: string): string {
  if (value.includes("\0")) throw new Error(`cannot write a NUL character into SQL: ${JSON.stringify(value)}`);
  return `'${value.replaceAll("'", "''")}'`;
}

/** A SQL literal for a bound parameter: string, finite number, boolean, null or bigint. */
export function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} into SQL`);
    // "42", "0.5", "1e-7": SQLite reads each back as the same number. Negatives in parentheses, so that
    // no "-" of the query and of the literal can meet as a "--" comment.
    return value < 0 || Object.is(value, -0) ? `(${value.toString()})` : value.toString();
  }
  if (typeof value === "string") return sqlString(value);
  throw new Error(`cannot write a parameter of type ${typeof value} into SQL`);
}

/**
 * Replaces the `?` placeholders of a query with literals, skipping `?` inside string literals, quoted
 * identifiers and comments (drizzle's SQLite dialect writes plain `?` placeholders).
 */
export function inlineParams(query: string, params: readonly unknown[]): string {
  let out = "";
  let next = 0;
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (c === "'" || c === '"' || c === "`") {
      const end = closingQuote(query, i, c);
      out += query.slice(i, end + 1);
      i = end;
    } else if (c === "-" && query[i + 1] === "-") {
      const end = query.indexOf("\n", i);
      const stop = end === -1 ? query.length : end;
      out += query.slice(i, stop);
      i = stop - 1;
    } else if (c === "/" && query[i + 1] === "*") {
      const end = query.indexOf("*/", i + 2);
      if (end === -1) throw new Error("unterminated comment in query");
      out += query.slice(i, end + 2);
      i = end + 1;
    } else if (c === "?") {
      if (/\d/.test(query[i + 1] ?? "")) throw new Error("numbered placeholders (?NNN) are not supported");
      if (next >= params.length) throw new Error(`query has more placeholders than its ${params.length} parameters`);
      out += sqlLiteral(params[next++]);
    } else {
      out += c;
    }
  }
  if (next !== params.length) throw new Error(`query used ${next} of its ${params.length} parameters`);
  return out;
}

/** Index of the quote closing the one at `start`; a doubled quote is an escaped quote. */
function closingQuote(text: string, start: number, quote: string): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) i++;
      else return i;
    }
  }
  throw new Error(`unterminated ${quote} quote in query`);
}

/** sqlite(), without blocking: several files can be filled at once (one sqlite3 process each). */
export function sqliteAsync(file: string, script: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(SQLITE3, [...args, file], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0 || err.trim()) reject(new Error(`sqlite3 failed on ${file} (exit ${code}): ${err.trim()}\n--- script start ---\n${script.slice(0, 2000)}`));
      else resolve(out);
    });
    child.stdin.end(script);
  });
}
