/**
 * The demo account for local development, as SQL for the control database (accounts are not an API method):
 *
 *   npx tsx scripts/seed.ts control SHARD_0 > control.sql     # for `wrangler d1 execute DB --local --file`
 *
 * It creates the demo account with its published token and webhook secret (scripts/demo-account.ts), places it
 * on the named data shard, and moves the control database's segment id sequence to just below the demo's
 * segment ids (12, 13, 14: the README's example request names 12 and 13), so that the demo data's
 * CreateSegment calls get them. scripts/dev.sh runs it once, when the demo account is not in the local database
 * yet; everything else of the demo (lists, fields, tags, subscribers, segments) is written through the API by
 * scripts/seed-demo.ts once `wrangler dev` answers.
 */
import { hashToken } from "../src/api/auth";
import { isShardName } from "../src/shards/directory";
import { DEMO_ACCOUNT, DEMO_SEGMENT_IDS } from "./demo-account";
import { sqlString } from "./lib/sql";

const HEADER = "-- The demo account for local development (scripts/seed.ts). Not for production.";

/** The demo account, its directory entry, and the segment id sequence set for the demo's segment ids. */
async function controlSql(shard: string): Promise<string> {
  const tokenHash = await hashToken(DEMO_ACCOUNT.tokenSalt, DEMO_ACCOUNT.usertoken);
  const statements = [
    `INSERT INTO accounts (username, token_salt, token_hash, webhook_secret) VALUES (${[
      DEMO_ACCOUNT.username,
      DEMO_ACCOUNT.tokenSalt,
      tokenHash,
      DEMO_ACCOUNT.webhookSecret,
    ]
      .map(sqlString)
      .join(", ")});`,
    `INSERT INTO account_directory (account_id, shard, updated_at)
       SELECT id, ${sqlString(shard)}, 0 FROM accounts WHERE username = ${sqlString(DEMO_ACCOUNT.username)};`,
    // The next segment the allocator hands out is 12 (never lowered: ids already handed out stay used).
    `INSERT INTO id_sequences (name, last_id) VALUES ('segments', ${Math.min(...DEMO_SEGMENT_IDS) - 1})
       ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id);`,
  ];
  return `${HEADER}\n${statements.join("\n")}\n`;
}

const [part, arg] = process.argv.slice(2);
if (part === "control" && arg && isShardName(arg)) process.stdout.write(await controlSql(arg));
else {
  console.error("usage: tsx scripts/seed.ts control <SHARD_n>   (the demo's data is written through the API: scripts/seed-demo.ts)");
  process.exit(1);
}
