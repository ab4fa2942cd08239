/**
 * Applies the migrations to every database of wrangler.toml, the same way everywhere:
 *
 *   npm run db:migrate:local     # the databases of `npm run dev`
 *   npm run db:migrate:remote    # the deployed ones (npm run deploy runs it)
 *
 * The control database (DB) gets migrations/control; every data shard (each SHARD_n binding) gets
 * migrations/shard, as its binding's migrations_dir says. A shard added to wrangler.toml is migrated by the
 * next run, before it is registered in the directory (docs/shards.md).
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { unstable_readConfig } from "wrangler";
import { isShardName } from "../src/shards/directory";
import { ROOT } from "./lib/wrangler";

const target = process.argv[2];
if (target !== "--local" && target !== "--remote") {
  console.error("usage: tsx scripts/migrate.ts --local | --remote");
  process.exit(1);
}

const config = unstable_readConfig({ config: path.join(ROOT, "wrangler.toml") });
const databases: string[] = config.d1_databases.map((d: { binding: string }) => d.binding);
const shards = databases.filter(isShardName);
if (!databases.includes("DB") || shards.length === 0) {
  console.error(`wrangler.toml must bind DB and at least one SHARD_n (it binds: ${databases.join(", ") || "nothing"})`);
  process.exit(1);
}

const wrangler = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");
for (const binding of ["DB", ...shards]) {
  console.log(`migrate: ${binding} (${target.slice(2)})`);
  const run = spawnSync(process.execPath, [wrangler, "d1", "migrations", "apply", binding, target], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
