/**
 * Creates an API account: npm run account:create -- --username NAME [--remote | --local]
 *
 * Generates a strong random usertoken and a Standard Webhooks secret, stores the salted hash of the token
 * (never the token) and the secret in D1, and prints both once. --remote writes to the deployed database
 * (wrangler must be logged in, or CLOUDFLARE_API_TOKEN set); --local, the default like wrangler's own,
 * writes to the database of `npm run dev`.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { hashToken } from "../src/api/auth";
import { d1Execute, type Target } from "./lib/wrangler";
import { sqlString } from "./lib/sql";

const USAGE = "usage: npm run account:create -- --username NAME [--remote | --local]";
// What a client can send without escaping, and what reads unambiguously in logs.
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$/;

function fail(message: string): never {
  console.error(`account:create: ${message}\n${USAGE}`);
  process.exit(1);
}

function parse(): { username: string; target: Target } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        username: { type: "string" },
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
  return { username, target: values.remote ? "remote" : "local" };
}

async function main() {
  const { username, target } = parse();
  const where = target === "remote" ? "the deployed (remote) D1 database" : "the local D1 database of `npm run dev`";

  const existing = d1Execute(target, `SELECT count(*) AS n FROM accounts WHERE username = ${sqlString(username)}`);
  if (Number(existing[0]?.results[0]?.n) > 0) fail(`an account "${username}" already exists in ${where}`);

  const usertoken = randomBytes(32).toString("hex");
  const tokenSalt = randomBytes(16).toString("hex");
  const webhookSecret = `whsec_${randomBytes(32).toString("base64")}`;
  const tokenHash = await hashToken(tokenSalt, usertoken);

  d1Execute(
    target,
    `INSERT INTO accounts (username, token_salt, token_hash, webhook_secret) VALUES (${[username, tokenSalt, tokenHash, webhookSecret]
      .map(sqlString)
      .join(", ")})`,
  );

  console.log(`Created account "${username}" in ${where}.

  username        ${username}
  usertoken       ${usertoken}
  webhook secret  ${webhookSecret}

The usertoken is stored only as a salted hash: this is the one time it is shown. Give it to the account's
owner over a secure channel. Webhook receivers verify signatures with the webhook secret (Standard Webhooks).`);
}

main().catch((error: unknown) => {
  console.error(`account:create: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
