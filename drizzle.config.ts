import { defineConfig } from "drizzle-kit";

// Two databases, two migration sets, generated SQL for both (`npm run db:generate`), applied by wrangler
// everywhere: `wrangler d1 migrations apply` for dev and deploy, readD1Migrations/applyD1Migrations in tests.
// DRIZZLE_DATABASE picks the set: "control" (the DB binding) or "shard" (every SHARD_n binding alike).
const database = process.env.DRIZZLE_DATABASE ?? "control";
if (database !== "control" && database !== "shard") throw new Error(`DRIZZLE_DATABASE must be control or shard, not ${database}`);

export default defineConfig({
  dialect: "sqlite",
  schema: `./src/db/${database}_schema.ts`,
  out: `./migrations/${database}`,
});
