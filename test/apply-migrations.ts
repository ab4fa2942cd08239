import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { TEST_SHARDS } from "./fixtures";

// The same generated SQL that `wrangler d1 migrations apply` runs for dev and deploy: the control set on DB,
// the shard set on every shard, which is then registered in the directory as `npm run dev` does.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
for (const shard of TEST_SHARDS) await applyD1Migrations(env[shard], env.TEST_SHARD_MIGRATIONS);
await env.DB.prepare("INSERT OR IGNORE INTO shards (name) VALUES (?1), (?2)").bind(...TEST_SHARDS).run();
