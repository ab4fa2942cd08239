import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { defineConfig } from "vitest/config";
import { EXPORTER_TEST_BUNDLE, MAILER_TEST_BUNDLE } from "./test/global-setup.ts";
import { withWorkerdFlags } from "./dev/workerd.ts";

// The pool's workerd takes the same V8 flags as wrangler dev (dev/workerd.ts): its miniflare reads them from here.
process.env.MINIFLARE_WORKERD_V8_FLAGS = withWorkerdFlags(process.env).MINIFLARE_WORKERD_V8_FLAGS;

/** Settings both the API worker (the tests' own worker) and the export worker run with in tests. */
const TEST_VARS = {
  DOWNLOAD_SIGNING_SECRET: "test-download-signing-secret",
  PUBLIC_BASE_URL: "https://exports.test",
  ALLOW_HTTP_WEBHOOKS: "false",
  // .dev.vars (which the pool reads) lifts these for local development; the tests run as production does,
  // except that there is no DNS to ask (tests that check it fake the resolver).
  ALLOW_PRIVATE_WEBHOOKS: "false",
  WEBHOOK_DNS_CHECK: "false",
  // Small pages, so that tests cross page and slice boundaries with little data. Parts are the smallest R2 allows.
  EXPORT_PAGE_SIZE: "7",
  EXPORT_PART_SIZE: String(5 * 1024 * 1024),
};

/** Where the export worker's outbound requests (webhooks) land in tests: a bucket the tests read. */
const WEBHOOK_SINK = { WEBHOOK_SINK: "webhook-sink" };

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations/control"));
  const shardMigrations = await readD1Migrations(path.join(import.meta.dirname, "migrations/shard"));
  // The export worker runs as its own worker, with the bindings of its real wrangler config.
  const exporter = unstable_getMiniflareWorkerOptions(path.join(import.meta.dirname, "wrangler.exporter.toml")).workerOptions;
  // Both workers must bind the same databases (the control database and every shard, by the same ids): a
  // shard missing from one of them would only show when an account on it is used.
  const api = unstable_getMiniflareWorkerOptions(path.join(import.meta.dirname, "wrangler.toml")).workerOptions;
  const databases = (options: typeof api) => JSON.stringify(Object.entries(options.d1Databases ?? {}).sort());
  if (databases(api) !== databases(exporter)) {
    throw new Error(`wrangler.toml and wrangler.exporter.toml bind different D1 databases: ${databases(api)} vs ${databases(exporter)}`);
  }
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: { TEST_MIGRATIONS: migrations, TEST_SHARD_MIGRATIONS: shardMigrations, ...TEST_VARS },
          // Tests also drive the export worker's handlers directly (test/export/driver.ts), with this worker's env.
          serviceBindings: { MAILER: "segment-export-mailer" },
          r2Buckets: WEBHOOK_SINK,
          workers: [
            {
              name: "segment-export-exporter",
              compatibilityDate: exporter.compatibilityDate,
              compatibilityFlags: exporter.compatibilityFlags,
              d1Databases: exporter.d1Databases,
              r2Buckets: exporter.r2Buckets,
              queueProducers: exporter.queueProducers,
              queueConsumers: exporter.queueConsumers,
              serviceBindings: exporter.serviceBindings,
              modules: true,
              scriptPath: EXPORTER_TEST_BUNDLE,
              bindings: { ...exporter.bindings, ...TEST_VARS },
              // Webhooks go to the sink worker instead of the network.
              outboundService: "webhook-sink",
            },
            {
              name: "webhook-sink",
              modules: true,
              script: `export default {
                async fetch(request, env) {
                  const id = request.headers.get("webhook-id") ?? "no-webhook-id";
                  const key = id + "/" + Date.now() + "-" + crypto.randomUUID();
                  const received = { url: request.url, headers: Object.fromEntries(request.headers), body: await request.text() };
                  await env.WEBHOOK_SINK.put(key, JSON.stringify(received));
                  return new Response("ok");
                },
              };`,
              compatibilityDate: "2026-05-01",
              r2Buckets: WEBHOOK_SINK,
            },
            {
              name: "segment-export-mailer",
              modules: true,
              scriptPath: MAILER_TEST_BUNDLE,
              compatibilityDate: "2026-05-01",
              bindings: { MAIL_FROM: "exports@segment-export.test", MAIL_FROM_NAME: "Segment Export" },
              email: { send_email: [{ name: "EMAIL" }] },
            },
          ],
        },
      }),
    ],
    test: {
      globalSetup: ["./test/global-setup.ts"],
      setupFiles: ["./test/apply-migrations.ts"],
      // Some tests export several MB through the local R2; the machine is small and may be busy.
      testTimeout: 60_000,
      // The JSON report lets .ci/run print a plain "N passed, N failed" line.
      reporters: ["default", "json"],
      outputFile: { json: ".wrangler/test/vitest-report.json" },
    },
  };
});
