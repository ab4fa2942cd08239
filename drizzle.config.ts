import { defineConfig } from "drizzle-kit";

// Migrations are generated SQL (`npm run db:generate`) and applied by wrangler everywhere:
// `wrangler d1 migrations apply` for dev and deploy, readD1Migrations/applyD1Migrations in tests.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
