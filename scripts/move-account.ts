/**
 * Moves an account's contacts to another data shard:
 *
 *   npm run account:move -- <username> <SHARD_n> [--remote | --local] [--no-wait]
 *   npm run account:move -- <username> --abort [--remote | --local]
 *
 * Records the move in the control database; the export worker does the work (src/shards/move.ts): it copies
 * the rows by keyset pages, freezes the account's writes, verifies counts and checksums, switches the directory,
 * lets exports still reading the old shard finish, and deletes the old rows. Its sweeper starts a new move
 * within a minute (locally this script asks the dev clock to sweep at once). The script then follows the move
 * until it is done or failed; --no-wait returns at once. --abort rolls back a move that has not switched yet.
 */
import { parseArgs } from "node:util";
import { isShardName } from "../src/shards/directory";
import { d1Execute, type Target } from "./lib/wrangler";
import { sqlString } from "./lib/sql";

const USAGE = `usage: npm run account:move -- <username> <SHARD_n> [--remote | --local] [--no-wait]
       npm run account:move -- <username> --abort [--remote | --local]`;
const POLL_MS = 2_000;

function fail(message: string): never {
  console.error(`account:move: ${message}\n${USAGE}`);
  process.exit(1);
}

function parse() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        remote: { type: "boolean", default: false },
        local: { type: "boolean", default: false },
        abort: { type: "boolean", default: false },
        "no-wait": { type: "boolean", default: false },
      },
      strict: true,
    });
  } catch (error) {
    fail((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [username, shard, ...rest] = positionals;
  if (!username) fail("the account's username is required");
  if (rest.length > 0) fail(`unexpected arguments: ${rest.join(" ")}`);
  if (values.abort && shard) fail("--abort takes no shard");
  if (!values.abort && !shard) fail("the target shard is required (e.g. SHARD_1)");
  if (shard && !isShardName(shard)) fail(`"${shard}" is not a shard name (SHARD_<number>)`);
  if (values.remote && values.local) fail("choose one of --remote and --local");
  const target: Target = values.remote ? "remote" : "local";
  return { username, shard, target, abort: values.abort, wait: !values["no-wait"] };
}

const one = (target: Target, sql: string) => d1Execute(target, sql)[0]?.results[0];

interface MoveRow {
  id: number;
  state: string;
  source: string;
  target: string;
  copied_rows: number;
  deleted_rows: number;
  error: string | null;
  cursor: string;
}

function activeMove(target: Target, username: string): MoveRow | undefined {
  return one(
    target,
    `SELECT m.id, m.state, m.source, m.target, m.copied_rows, m.deleted_rows, m.error, m.cursor
     FROM account_moves m JOIN accounts a ON a.id = m.account_id
     WHERE a.username = ${sqlString(username)} ORDER BY m.id DESC LIMIT 1`,
  ) as MoveRow | undefined;
}

function start(target: Target, username: string, shard: string): number {
  const account = one(
    target,
    `SELECT a.id, d.shard, (SELECT count(*) FROM shards WHERE name = ${sqlString(shard)}) AS registered,
       (SELECT count(*) FROM account_moves m WHERE m.account_id = a.id AND m.state NOT IN ('done', 'failed')) AS moving
     FROM accounts a LEFT JOIN account_directory d ON d.account_id = a.id WHERE a.username = ${sqlString(username)}`,
  );
  if (!account) fail(`no account "${username}"`);
  if (!account.shard) fail(`account "${username}" has no entry in the shard directory`);
  if (account.shard === shard) fail(`account "${username}" is already on ${shard}`);
  if (Number(account.registered) === 0) fail(`${shard} is not a registered shard (docs/shards.md: adding a shard)`);
  if (Number(account.moving) > 0) fail(`account "${username}" is already being moved (see its progress: run this again without --abort)`);
  // The unique index on unfinished moves refuses a second one, should two operators race.
  d1Execute(
    target,
    `INSERT INTO account_moves (account_id, source, target, updated_at)
     VALUES (${Number(account.id)}, ${sqlString(String(account.shard))}, ${sqlString(shard)}, ${Date.now()})`,
  );
  const move = activeMove(target, username)!;
  console.log(`account:move: move ${move.id} of "${username}" from ${move.source} to ${move.target} recorded`);
  return move.id;
}

function abort(target: Target, username: string) {
  const move = activeMove(target, username);
  if (!move || !["copying", "reconciling"].includes(move.state)) {
    fail(move ? `move ${move.id} is ${move.state}: only a move that has not switched yet can be rolled back` : `no move of "${username}"`);
  }
  // Fenced like the worker's own roll-back: a slice still running loses its lease; the rollback starts when it ends.
  d1Execute(
    target,
    `UPDATE account_moves SET state = 'rolling_back', cursor = '{"step":0,"after":null}', version = version + 1,
       drive = drive + 1, due_at = 0, updated_at = ${Date.now()}
     WHERE id = ${move.id} AND state IN ('copying', 'reconciling')`,
  );
  console.log(`account:move: move ${move.id} is rolling back: the copy on ${move.target} is deleted and writes unfrozen`);
}

/** Locally, asks the dev clock (npm run dev) to sweep now, so that the move starts without waiting a minute. */
async function sweepNow(target: Target) {
  if (target !== "local") return;
  const port = process.env.DEV_CLOCK_PORT ?? "8799";
  try {
    await fetch(`http://127.0.0.1:${port}/__scheduled`, { signal: AbortSignal.timeout(30_000) });
  } catch {
    console.log("account:move: the dev clock is not running (npm run dev); the move starts at the next sweep");
  }
}

async function follow(target: Target, username: string, moveId: number) {
  let last = "";
  for (;;) {
    const move = activeMove(target, username);
    if (!move || move.id !== moveId) fail(`move ${moveId} is gone`);
    const cursor = JSON.parse(move.cursor) as { step: number };
    const line = `${move.state} (step ${cursor.step}): ${move.copied_rows} rows written to ${move.target}, ${move.deleted_rows} deleted${move.error ? `; last error: ${move.error}` : ""}`;
    if (line !== last) console.log(`account:move: ${line}`);
    last = line;
    if (move.state === "done") return console.log(`account:move: "${username}" is on ${move.target}`);
    if (move.state === "failed") {
      console.error(`account:move: move ${moveId} failed and was rolled back; "${username}" stays on ${move.source}`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function main() {
  const { username, shard, target, abort: aborting, wait } = parse();
  if (aborting) {
    abort(target, username);
    await sweepNow(target);
    return;
  }
  const moveId = start(target, username, shard!);
  await sweepNow(target);
  if (wait) await follow(target, username, moveId);
}

main().catch((error: unknown) => {
  console.error(`account:move: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
