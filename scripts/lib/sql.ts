/** SQL literals for the scripts that write SQL for `wrangler d1 execute` (which cannot bind parameters). */

/** A string literal: single quotes doubled. NUL cannot be written in SQL text, so it is refused. */
export function sqlString(value: string): string {
  if (value.includes("\0")) throw new Error(`cannot write a NUL character into SQL: ${JSON.stringify(value)}`);
  return `'${value.replaceAll("'", "''")}'`;
}

/** A literal for a string, a finite number or null. */
export function sqlValue(value: string | number | null): string {
  if (value === null) return "NULL";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} into SQL`);
    return String(value);
  }
  return sqlString(value);
}

/** `INSERT INTO table (columns) VALUES (...), (...);` in statements of at most `perStatement` rows. */
export function insertRows(
  table: string,
  columns: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string>>,
  perStatement = 200,
): string[] {
  const statements: string[] = [];
  for (let i = 0; i < rows.length; i += perStatement) {
    const values = rows.slice(i, i + perStatement).map((row) => `  (${row.join(", ")})`);
    statements.push(`INSERT INTO ${table} (${columns.join(", ")}) VALUES\n${values.join(",\n")};`);
  }
  return statements;
}
