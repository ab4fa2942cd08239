/**
 * `npm run bench`: exports N contacts end to end through wrangler dev (request → queue → R2 → webhook),
 * then runs the same query with Debian's sqlite3 on the same D1 file, checks that both hold the same
 * records, and prints time, throughput, output size and peak workerd memory for each size.
 *
 *   npm run bench                         # N = 100,000 then 1,000,000
 *   npm run bench -- --contacts 20000     # one size (or a comma-separated list)
 *   npm run bench -- --keep               # keep .bench/state-<N> and reuse it next time
 *   npm run bench -- --var EXPORT_PAGE_SIZE:20000   # extra wrangler dev vars, to try settings
 *
 * Results also go to .bench/results.json. The exit code is non-zero if an export fails or its records
 * differ from sqlite3's.
 */
import { createWriteStream, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, relative } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";
import { baselineSql, readJob, runBaseline } from "./baseline";
import { ensureDataset, ROOT, type Dataset } from "./dataset";
import type { RssReport } from "./processes";
import { compareOutputs, type Comparison } from "./verify";
import { logErrors, startWranglerDev, stopAllWranglerDev, WebhookReceiver, type DevServer } from "./wrangler_dev";

const { values: flags } = parseArgs({
  options: {
    contacts: { type: "string" },
    keep: { type: "boolean", default: false },
    port: { type: "string", default: "8790" },
    "webhook-port": { type: "string", default: "8791" },
    var: { type: "string", multiple: true, default: [] },
    timeout: { type: "string", default: "3600" },
    progress: { type: "string", default: "0" },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  console.log(`usage: npm run bench -- [--contacts N[,N…]] [--keep] [--port 8790] [--webhook-port 8791]
                          [--var KEY:VALUE …] [--timeout SECONDS] [--progress SECONDS]
Default sizes: 100000 then 1000000.`);
  process.exit(0);
}

const sizes = (flags.contacts ?? "100000,1000000").split(",").map((s) => {
  const n = Number(s.replaceAll("_", "").trim());
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--contacts: "${s}" is not a positive whole number`);
  return n;
});
const port = Number(flags.port);
const webhookPort = Number(flags["webhook-port"]);
const timeoutMs = Number(flags.timeout) * 1000;
const progressSeconds = Number(flags.progress);
for (const v of flags.var) if (!/^[A-Z0-9_]+:/.test(v)) throw new Error(`--var "${v}": expected KEY:VALUE`);

const BENCH_DIR = join(ROOT, ".bench");
mkdirSync(BENCH_DIR, { recursive: true });

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes: number) => `${fmt(bytes / 1024 / 1024, 1)} MiB`;
const stamp = () => new Date().toISOString().slice(11, 19);
const log = (line: string) => console.log(`[${stamp()}] ${line}`);

interface Result {
  n: number;
  ok: boolean;
  error?: string;
  dataset: { reused: boolean; buildSeconds: number };
  export?: {
    jobId: string;
    count: number;
    acceptSeconds: number;
    wallSeconds: number;
    rowsPerSecond: number;
    outputBytes: number;
    downloadSeconds: number;
    slices: number;
    webhookVerified: boolean;
  };
  memory?: {
    /** Before the request. */
    idleBytes: number;
    /** Up to the webhook's arrival. */
    peakBytes: number;
    peakTotalRssBytes: number;
    perProcess: RssReport["perProcess"];
    samples: number;
    /** Up to the end of the download. */
    peakWithDownloadBytes: number;
  };
  sqlite3?: { seconds: number; outputBytes: number; rowsPerSecond: number };
  ratio?: number;
  check?: Comparison;
  wranglerLog: string;
  logErrors: string[];
}

async function api(baseUrl: string, dataset: Dataset, requesttype: string, requestmethod: string, details?: unknown) {
  const res = await fetch(`${baseUrl}/apijson.php`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: dataset.username, usertoken: dataset.usertoken, requesttype, requestmethod, details }),
  });
  const body = (await res.json()) as { response: { status: string; data?: any; errormessage?: string } };
  return { status: res.status, response: body.response };
}

/** Resolves with the first value of `promise`, or rejects after ms. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms / 1000} s`)), ms))),
  ]);
}

// wrangler dev runs in its own process group, so Ctrl-C does not reach it: end it here.
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping wrangler dev`);
    void stopAllWranglerDev().finally(() => process.exit(130));
  });
}

async function exportThroughWrangler(dataset: Dataset, result: Result, outFile: string): Promise<void> {
  const receiver = new WebhookReceiver(webhookPort);
  await receiver.listen();
  let dev: DevServer | undefined;
  try {
    log(`starting wrangler dev on port ${port} (log: ${relative(ROOT, result.wranglerLog)})`);
    dev = await startWranglerDev({
      stateDir: dataset.stateDir,
      port,
      vars: flags.var,
      logFile: result.wranglerLog,
      ready: async (baseUrl) => (await api(baseUrl, dataset, "Authentication", "APITest")).status === 200,
    });
    // Give workerd a moment to settle, then take its memory before the export as the baseline.
    await new Promise((r) => setTimeout(r, 1000));
    dev.memory.sample();
    const idleBytes = dev.memory.report().peakBytes;
    log(`wrangler dev is up; workerd peak RSS so far ${mib(idleBytes)}`);

    const started = performance.now();
    const accepted = await api(dev.baseUrl, dataset, "Segments", "GetSegmentSubscribersAsync", {
      segmentid: dataset.segmentIds.map(String),
      customfields: "all",
      include_membership: "yes",
      format: "json",
      notify: { type: "webhook", value: receiver.url },
    });
    const acceptSeconds = (performance.now() - started) / 1000;
    if (accepted.status !== 200 || accepted.response.status !== "SUCCESS") {
      throw new Error(`GetSegmentSubscribersAsync answered ${accepted.status}: ${JSON.stringify(accepted.response)}`);
    }
    const jobId = accepted.response.data.jobid as string;
    log(`job ${jobId} accepted in ${fmt(acceptSeconds * 1000)} ms; waiting for the webhook`);

    // Optional progress: status calls share the local D1 with the export, so they are off by default.
    let polling = false;
    const progress =
      progressSeconds > 0
        ? setInterval(() => {
            if (polling) return;
            polling = true;
            api(dev!.baseUrl, dataset, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid: jobId })
              .then(({ response }) => {
                const d = response.data;
                if (d) log(`  ${d.status}: ${fmt(d.count)} rows after ${fmt((performance.now() - started) / 1000, 1)} s`);
              })
              .catch(() => {})
              .finally(() => (polling = false));
          }, progressSeconds * 1000)
        : undefined;
    let arrival;
    try {
      arrival = await withTimeout(receiver.next(), timeoutMs, "the webhook");
    } finally {
      clearInterval(progress);
    }
    const wallSeconds = (arrival.arrivedAt - started) / 1000;
    // The export's memory is read now: serving the download afterwards is another workload.
    dev.memory.sample();
    const rss = dev.memory.report();

    let webhookVerified = false;
    let event: any;
    try {
      event = new Webhook(dataset.webhookSecret).verify(arrival.body, arrival.headers as Record<string, string>);
      webhookVerified = true;
    } catch (error) {
      throw new Error(`the webhook's signature does not verify: ${error instanceof Error ? error.message : error}`);
    }
    if (event?.data?.jobid !== jobId) throw new Error(`the webhook is about job ${event?.data?.jobid}, not ${jobId}`);
    if (event.type !== "segment_export.completed") {
      throw new Error(`the export failed: ${event.type}: ${event.data?.errormessage ?? JSON.stringify(event.data)}`);
    }
    log(`webhook ${event.type} (signature verified) after ${fmt(wallSeconds, 2)} s: count ${fmt(event.data.count)}`);

    const downloadStarted = performance.now();
    // identity: workerd would otherwise gzip the JSON on the fly (and drop Content-Length); we want the stored bytes.
    const res = await fetch(event.data.url, { headers: { "accept-encoding": "identity" } });
    if (res.status !== 200 || !res.body) throw new Error(`the download link answered ${res.status}: ${await res.text()}`);
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(outFile));
    const downloadSeconds = (performance.now() - downloadStarted) / 1000;
    const outputBytes = statSync(outFile).size;
    const contentLength = Number(res.headers.get("content-length"));
    if (contentLength !== outputBytes) throw new Error(`downloaded ${outputBytes} bytes, Content-Length said ${contentLength}`);
    log(`downloaded ${mib(outputBytes)} in ${fmt(downloadSeconds, 2)} s`);

    const withDownload = dev.memory.stop();
    result.memory = {
      idleBytes,
      peakBytes: rss.peakBytes,
      peakTotalRssBytes: rss.peakTotalRssBytes,
      perProcess: rss.perProcess,
      samples: rss.samples,
      peakWithDownloadBytes: withDownload.peakBytes,
    };
    result.export = {
      jobId,
      count: event.data.count,
      acceptSeconds,
      wallSeconds,
      rowsPerSecond: event.data.count / wallSeconds,
      outputBytes,
      downloadSeconds,
      slices: 0,
      webhookVerified,
    };
  } finally {
    if (dev) {
      await dev.stop();
      log("wrangler dev stopped");
    }
    await receiver.close();
  }
}

async function benchOne(n: number): Promise<Result> {
  console.log(`\n=== N = ${fmt(n)} ===`);
  const outDir = join(BENCH_DIR, `out-${n}`);
  mkdirSync(outDir, { recursive: true });
  const dataset = await ensureDataset(n, { reuse: flags.keep, log });
  const result: Result = {
    n,
    ok: false,
    dataset: { reused: dataset.reused, buildSeconds: dataset.buildSeconds },
    wranglerLog: join(BENCH_DIR, `wrangler-${n}.log`),
    logErrors: [],
  };
  const exportFile = join(outDir, "export.json");
  const baselineFile = join(outDir, "sqlite3.ndjson");
  try {
    try {
      await exportThroughWrangler(dataset, result, exportFile);
    } finally {
      result.logErrors = logErrors(result.wranglerLog);
    }
    const job = readJob(dataset.dbFile, result.export!.jobId);
    result.export!.slices = job.slices;

    log("running the same query with sqlite3");
    const baseline = await runBaseline(dataset.dbFile, baselineSql(dataset.dbFile, job), join(outDir, "sqlite3.sql"), baselineFile);
    result.sqlite3 = { seconds: baseline.seconds, outputBytes: baseline.outputBytes, rowsPerSecond: 0 };
    log(`sqlite3 wrote ${mib(baseline.outputBytes)} in ${fmt(baseline.seconds, 2)} s`);

    log("comparing the export with sqlite3's records");
    result.check = await compareOutputs(exportFile, baselineFile);
    result.sqlite3.rowsPerSecond = result.check.baselineCount / baseline.seconds;
    result.ratio = result.export!.wallSeconds / baseline.seconds;
    result.ok = result.check.ok;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    if (!flags.keep) {
      rmSync(outDir, { recursive: true, force: true });
      rmSync(dataset.stateDir, { recursive: true, force: true });
    }
  }
  printResult(result);
  return result;
}

function printResult(r: Result) {
  const lines: Array<[string, string]> = [["N", fmt(r.n)]];
  if (r.export) {
    lines.push(
      ["exported rows", fmt(r.export.count)],
      ["wall time request -> webhook", `${fmt(r.export.wallSeconds, 2)} s (accepted in ${fmt(r.export.acceptSeconds * 1000)} ms, ${r.export.slices} slice(s))`],
      ["rows/s", fmt(r.export.rowsPerSecond)],
      ["output bytes", `${fmt(r.export.outputBytes)} (${mib(r.export.outputBytes)})`],
    );
  }
  if (r.memory) {
    const top = [...r.memory.perProcess].sort((a, b) => b.peakBytes - a.peakBytes)[0];
    lines.push([
      "peak RSS of workerd (VmHWM)",
      `${mib(r.memory.peakBytes)} (idle before the request ${mib(r.memory.idleBytes)}; ${r.memory.perProcess.length} workerd processes: ${r.memory.perProcess.map((p) => mib(p.peakBytes)).join(", ")})`,
    ]);
    lines.push(["  with the download", mib(r.memory.peakWithDownloadBytes)]);
    if (top) {
      const { rss, anon, file, shmem } = top.sampledPeak;
      lines.push(["  its largest sample", `${mib(rss)}: anonymous ${mib(anon)}, file-backed ${mib(file)}, shared ${mib(shmem)}`]);
    }
  }
  if (r.sqlite3) {
    lines.push(["sqlite3 time", `${fmt(r.sqlite3.seconds, 2)} s (${fmt(r.sqlite3.rowsPerSecond)} rows/s, ${mib(r.sqlite3.outputBytes)})`]);
  }
  if (r.ratio !== undefined) lines.push(["export_time / sqlite3_time", fmt(r.ratio, 2)]);
  if (r.check) {
    lines.push([
      "check",
      r.check.ok
        ? `OK (${fmt(r.check.exportCount)} rows both; same emails; same records${r.check.exportAscending ? "" : "; export not in id order"})`
        : `MISMATCH\n    ${r.check.problems.join("\n    ")}`,
    ]);
  }
  if (r.error) lines.push(["FAILED", r.error]);
  lines.push(["wrangler log", `${relative(ROOT, r.wranglerLog)} (${r.logErrors.length} error line(s))`]);
  for (const line of r.logErrors.slice(0, 5)) lines.push(["", `  ${line.slice(0, 300)}`]);
  const width = Math.max(...lines.map(([k]) => k.length));
  console.log(lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n"));
}

function printSummary(results: Result[]) {
  const header = ["N", "rows", "export s", "rows/s", "output", "peak RSS", "sqlite3 s", "ratio", "check"];
  const rows = results.map((r) => [
    fmt(r.n),
    r.export ? fmt(r.export.count) : "-",
    r.export ? fmt(r.export.wallSeconds, 2) : "-",
    r.export ? fmt(r.export.rowsPerSecond) : "-",
    r.export ? mib(r.export.outputBytes) : "-",
    r.memory ? mib(r.memory.peakBytes) : "-",
    r.sqlite3 ? fmt(r.sqlite3.seconds, 2) : "-",
    r.ratio !== undefined ? fmt(r.ratio, 2) : "-",
    r.error ? "FAILED" : r.check?.ok ? "OK" : "MISMATCH",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  console.log("\n=== summary ===");
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));

  const measured = results.filter((r) => r.memory && r.export).sort((a, b) => a.n - b.n);
  if (measured.length >= 2) {
    const small = measured[0]!;
    const large = measured[measured.length - 1]!;
    const growth = large.memory!.peakBytes / small.memory!.peakBytes;
    console.log(
      `RSS growth ${fmt(large.n)} / ${fmt(small.n)}: ${fmt(growth, 2)}x (${mib(large.memory!.peakBytes)} / ${mib(small.memory!.peakBytes)}); ` +
        `time growth ${fmt(large.export!.wallSeconds / small.export!.wallSeconds, 1)}x for ${fmt(large.n / small.n, 1)}x the rows`,
    );
  }
  // The targets of issue 3, for the largest size run (they are stated for 1M and 100k).
  const largest = measured[measured.length - 1];
  if (largest?.ratio !== undefined) {
    const met = (ok: boolean) => (ok ? "met" : "NOT met");
    const targets = [`export/sqlite3 at ${fmt(largest.n)}: ${fmt(largest.ratio, 2)} (target <= 3: ${met(largest.ratio <= 3)})`];
    if (measured.length >= 2) {
      const growth = largest.memory!.peakBytes / measured[0]!.memory!.peakBytes;
      targets.push(`RSS growth: ${fmt(growth, 2)} (target <= 1.3: ${met(growth <= 1.3)})`);
    }
    targets.push(`rows lost or duplicated: ${results.every((r) => r.check?.ok) ? "none" : "SEE MISMATCH ABOVE"}`);
    console.log(`targets: ${targets.join("; ")}`);
  }
}

const results: Result[] = [];
const startedAt = new Date().toISOString();
const loadBefore = loadavg();
for (const n of sizes) {
  const result = await benchOne(n);
  if (interrupted) process.exit(130);
  results.push(result);
}
printSummary(results);

const resultsFile = join(BENCH_DIR, "results.json");
const small = results.filter((r) => r.memory).sort((a, b) => a.n - b.n);
writeFileSync(
  resultsFile,
  JSON.stringify(
    {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, loadAverageAtStart: loadBefore, loadAverageAtEnd: loadavg(), node: process.version },
      options: { sizes, keep: flags.keep, vars: flags.var },
      rssGrowth: small.length >= 2 ? small[small.length - 1]!.memory!.peakBytes / small[0]!.memory!.peakBytes : null,
      results,
    },
    null,
    2,
  ) + "\n",
);
console.log(`results written to ${relative(ROOT, resultsFile)}`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
