import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// The same generated SQL that `wrangler d1 migrations apply` runs for dev and deploy.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
