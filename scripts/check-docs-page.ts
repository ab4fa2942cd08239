/**
 * Looks at the API reference as a person would: loads GET /docs of a running service in headless Chromium,
 * checks that the rendered page shows every method, the download route and the webhooks, and saves a
 * screenshot. Not part of `npm test` (CI has no browser).
 *
 *   npm run dev                     # in one terminal
 *   npm run docs:check              # in another; BASE_URL=http://localhost:8787 by default
 *
 * Needs Debian's chromium (apt-get install chromium), or CHROMIUM=/path/to/chrome.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { METHODS } from "../src/methods";
import { ROOT } from "./lib/wrangler";

const base = process.env.BASE_URL ?? "http://localhost:8787";
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const outDir = join(ROOT, ".wrangler", "docs-check");
const screenshot = join(outDir, "docs.png");

function fail(message: string): never {
  console.error(`docs:check: ${message}`);
  process.exit(1);
}

function runChromium(args: string[]): string {
  const run = spawnSync(
    chromium,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      // Swagger UI renders after its script and the document load: give the page virtual time to settle.
      "--virtual-time-budget=15000",
      ...args,
      `${base}/docs`,
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
  );
  if (run.error) fail(`could not run ${chromium}: ${run.error.message}`);
  if (run.status !== 0) fail(`chromium exited ${run.status}: ${run.stderr.slice(-2000)}`);
  return run.stdout;
}

async function main() {
  if (!existsSync(chromium)) fail(`${chromium} not found: apt-get install chromium, or set CHROMIUM`);
  try {
    const res = await fetch(`${base}/openapi.json`);
    if (!res.ok) fail(`${base}/openapi.json answered ${res.status}`);
  } catch {
    fail(`nothing answers at ${base}: start the service with npm run dev`);
  }
  mkdirSync(outDir, { recursive: true });

  const dom = runChromium(["--dump-dom"]);
  const expected = [
    "Segment Export",
    "/apijson.php",
    "/exports/{jobid}",
    "segment_export.completed",
    "segment_export.canceled",
    ...METHODS.map((m) => `${m.requesttype} / ${m.requestmethod}`),
  ];
  const missing = expected.filter((text) => !dom.includes(text));
  if (!dom.includes("swagger-ui")) fail("the page did not render Swagger UI (is public/docs/assets/ there? npm install copies it)");
  if (missing.length > 0) fail(`the rendered page does not show: ${missing.join(", ")}`);

  runChromium(["--window-size=1280,2200", `--screenshot=${screenshot}`]);
  if (!existsSync(screenshot) || statSync(screenshot).size < 20_000) fail(`no screenshot (or an empty one) at ${screenshot}`);
  console.log(`docs:check: ${base}/docs renders ${METHODS.length} methods, the download route and the webhooks; screenshot: ${screenshot}`);
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
