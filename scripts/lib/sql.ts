/** SQL literals for the scripts that write SQL for `wrangler d1 execute` (which cannot bind parameters). */

/** A string literal: single quotes doubled. NUL cannot be written in SQL text, so it is refused. */
export function sqlString(value: string): string {
  if (value.includes("\0")) throw new Error(`cannot write a NUL character into SQL: ${JSON.stringify(value)}`);
  return `'${value.replaceAll("'", "''")}'`;
}
