/**
 * Creates an API account: npm run account:create -- --username NAME [--shard SHARD_n] [--remote | --local]
 *
 * Generates a strong random usertoken and a Standard Webhooks secret, stores the salted hash of the token
 * (never the token) and the secret in the control database, places the account on a data shard, and prints
 * the token and secret once. The shard is the one named by --shard (any registered shard, also a reserved
 * one: a large customer's own), or else the open shard with the fewest contacts (src/shards/placement.ts).
 * --remote writes to the deployed databases (wrangler must be logged in, or CLOUDFLARE_API_TOKEN set);
 * --local, the default like wrangler's own, writes to the databases of `npm run dev`.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { hashToken } from "../src/api/auth";
import { chooseShard } from "../src/shards/placement";
import { isShardName } from "../src/shards/directory";
import type { ShardPlacement } from "../src/db/control_schema";
import { d1Execute, type Target } from "./lib/wrangler";
import { sqlString } from "./lib/sql";

const USAGE = "usage: npm run account:create -- --username NAME [--shard SHARD_n] [--remote | --local]";
// What a client can send without escaping, and what reads unambiguously in logs.
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$/;

function fail(message: string): never {
  console.error(`account:create: ${message}\n${USAGE}`);
  process.exit(1);
}

function parse(): { username: string; shard: string | undefined; target: Target } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        username: { type: "string" },
        shard: { type: "string" },
        remote: { type: "boolean", default: false },
        local: { type: "boolean", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  const username = values.username?.trim();
  if (!username) fail("--username is required");
  if (!USERNAME.test(username)) {
    fail(`"${username}" is not a valid username: use 2-64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit`);
  }
  if (values.remote && values.local) fail("choose one of --remote and --local");
  const shard = values.shard?.trim();
  if (shard !== undefined && !isShardName(shard)) fail(`--shard "${shard}" is not a shard name (SHARD_<number>)`);
  return { username, shard, target: values.remote ? "remote" : "local" };
}

async function main() {
  const { username, shard: requested, target } = parse();
  const where = target === "remote" ? "the deployed (remote) D1 database" : "the local D1 database of `npm run dev`";

  const existing = d1Execute(target, `SELECT count(*) AS n FROM accounts WHERE username = ${sqlString(username)}`);
  if (Number(existing[0]?.results[0]?.n) > 0) fail(`an account "${username}" already exists in ${where}`);

  const usertoken = randomBytes(32).toString("hex");
  const tokenSalt = randomBytes(16).toString("hex");
  const webhookSecret = `whsec_${randomBytes(32).toString("base64")}`;
  const tokenHash = await hashToken(tokenSalt, usertoken);

  const shard = placeOnShard(target, requested);

  // One command: the account and its directory entry are written together or not at all.
  d1Execute(
    target,
    `INSERT INTO accounts (username, token_salt, token_hash, webhook_secret) VALUES (${[username, tokenSalt, tokenHash, webhookSecret]
      .map(sqlString)
      .join(", ")});
     INSERT INTO account_directory (account_id, shard, updated_at)
       SELECT id, ${sqlString(shard)}, ${Date.now()} FROM accounts WHERE username = ${sqlString(username)};`,
  );

  console.log(`Created account "${username}" in ${where}, on data shard ${shard}.

  username        ${username}
  usertoken       ${usertoken}
  webhook secret  ${webhookSecret}

The usertoken is stored only as a salted hash: this is the one time it is shown. Give it to the account's
owner over a secure channel. Webhook receivers verify signatures with the webhook secret (Standard Webhooks).`);
}

/** The shard for the new account: the requested one, or the open shard with the fewest contacts. */
function placeOnShard(target: Target, requested: string | undefined): string {
  const registered = d1Execute(target, "SELECT name, placement FROM shards ORDER BY name")[0]?.results ?? [];
  const candidates = registered.map((row) => {
    const name = String(row.name);
    const placement = row.placement as ShardPlacement;
    const counted = requested === undefined && placement === "open";
    const contacts = counted ? Number(d1Execute(target, "SELECT count(*) AS n FROM subscribers", name)[0]?.results[0]?.n ?? 0) : 0;
    return { name, placement, contacts };
  });
  try {
    return chooseShard(candidates, requested);
  } catch (error) {
    fail((error as Error).message);
  }
}

main().catch((error: unknown) => {
  console.error(`account:create: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
