declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    TEST_SHARD_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** Webhooks the export worker sent during tests, as the sink worker stored them (see vitest.config.ts). */
    WEBHOOK_SINK: R2Bucket;
  }
}
