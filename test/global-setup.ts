import path from "node:path";
import { buildSync } from "esbuild";

/** The mailer worker, bundled for the test pool (auxiliary workers run JavaScript, not TypeScript). */
export const MAILER_TEST_BUNDLE = path.join(import.meta.dirname, "..", ".wrangler", "test", "mailer.js");

export default function bundleMailer() {
  buildSync({
    entryPoints: [path.join(import.meta.dirname, "..", "mailer", "src", "index.ts")],
    outfile: MAILER_TEST_BUNDLE,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    external: ["cloudflare:*"],
  });
}
