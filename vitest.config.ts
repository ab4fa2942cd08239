import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { MAILER_TEST_BUNDLE } from "./test/global-setup.ts";

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            DOWNLOAD_SIGNING_SECRET: "test-download-signing-secret",
            PUBLIC_BASE_URL: "https://exports.test",
            ALLOW_HTTP_WEBHOOKS: "false",
            // Small pages, so that tests cross page and slice boundaries with little data. Parts are the smallest R2 allows.
            EXPORT_PAGE_SIZE: "7",
            EXPORT_PART_SIZE: String(5 * 1024 * 1024),
          },
          // The email-sending worker, bundled by test/global-setup.ts, behind the MAILER service binding.
          workers: [
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
