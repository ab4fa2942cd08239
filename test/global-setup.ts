import path from "node:path";
import { buildSync } from "esbuild";

const root = path.join(import.meta.dirname, "..");

/** The auxiliary workers, bundled for the test pool (auxiliary workers run JavaScript, not TypeScript). */
export const MAILER_TEST_BUNDLE = path.join(root, ".wrangler", "test", "mailer.js");
export const EXPORTER_TEST_BUNDLE = path.join(root, ".wrangler", "test", "exporter.js");

export default function bundleAuxiliaryWorkers() {
  const bundle = (entry: string, outfile: string) =>
    buildSync({
      entryPoints: [path.join(root, entry)],
      outfile,
      bundle: true,
      format: "esm",
      platform: "neutral",
      mainFields: ["module", "main"],
      conditions: ["workerd", "worker", "browser"],
      target: "es2022",
      external: ["cloudflare:*"],
    });
  bundle("mailer/src/index.ts", MAILER_TEST_BUNDLE);
  bundle("src/workers/exporter.ts", EXPORTER_TEST_BUNDLE);
}
