/**
 * `npm run bench`: exports N contacts end to end through wrangler dev (request → queue → R2 → webhook),
 * then runs the same query with Debian's sqlite3 on the D1 file of the shard the account is on, checks that
 * both hold the same records, and prints time, throughput, output size, peak workerd memory, the API's latency
 * during the export and GetSegments' time for each size. See bench/README.md.
 *
 *   npm run bench                         # N = 100,000 then 1,000,000
 *   npm run bench -- --contacts 20000     # one size (or a comma-separated list)
 *   npm run bench -- --keep               # keep .bench/state-<N> and reuse it next time
 *   npm run bench -- --var EXPORT_PAGE_SIZE:20000   # settings for every worker (through --env-file)
 *   npm run bench -- --contacts 1000000 --kill-after 6   # kill -9 wrangler dev mid-export, restart, sweep
 *   npm run bench -- --shards 2           # two accounts exported at once, on one shard and on two (shards.ts)
 *   npm run bench -- --import             # the import benchmark: N contacts imported, checked, exported again (import.ts)
 *
 * Results also go to .bench/results.json (this run) and .bench/results-history.jsonl (one line per size and
 * run). The exit code is non-zero if an export fails or its records differ from sqlite3's.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";
import { baselineSql, readJob, runBaseline } from "./baseline";
import { api, apiReady, describeProbe, download, fmt, log, makeProbers, measureIdle, met, mib, ms, sessionVars, sleep, verifyWebhook, withTimeout } from "./common";
import { ensureDataset, ROOT, type Dataset } from "./dataset";
import type { DatasetStats } from "./dataset_check";
import type { LayoutCheck } from "./layout";
import { percentile, type ProbeStats } from "./probes";
import { runImportBench } from "./import";
import { runShards } from "./shards";
import type { RssReport } from "./processes";
import { sqliteJson, sqlString } from "./sqlite";
import { compareOutputs, type Comparison } from "./verify";
import {
  logErrors,
  CLOCK_CONFIG,
  SERVICE_CONFIGS,
  startWranglerDev,
  stopAllWranglerDev,
  WebhookReceiver,
  workerdV8Flags,
  type DevServer,
  type WebhookArrival,
} from "./wrangler_dev";

const { values: flags } = parseArgs({
  options: {
    contacts: { type: "string" },
    keep: { type: "boolean", default: false },
    port: { type: "string", default: "8790" },
    "webhook-port": { type: "string", default: "8791" },
    "clock-port": { type: "string", default: "8792" },
    var: { type: "string", multiple: true, default: [] },
    timeout: { type: "string", default: "3600" },
    progress: { type: "string", default: "0" },
    "probe-rate": { type: "string", default: "4" },
    "segments-calls": { type: "string", default: "5" },
    "kill-after": { type: "string" },
    shards: { type: "string" },
    import: { type: "boolean", default: false },
    "gzip-only": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  console.log(`usage: npm run bench -- [--contacts N[,N…]] [--keep] [--port 8790] [--webhook-port 8791] [--clock-port 8792]
                          [--var KEY:VALUE …] [--timeout SECONDS] [--progress SECONDS]
                          [--probe-rate PER_SECOND] [--segments-calls N] [--kill-after SECONDS]
       npm run bench -- --shards 2 [--contacts N] [--keep] [ports, --var, --timeout, --probe-rate as above]
       npm run bench -- --import [--contacts N[,N…]] [--keep] [--gzip-only] [--port, --webhook-port, --var, --timeout, --progress, --probe-rate as above]
Default sizes: 100000 then 1000000 (--shards: 1000000 per account). See bench/README.md.`);
  process.exit(0);
}

const sizes = (flags.contacts ?? (flags.shards !== undefined ? "1000000" : "100000,1000000")).split(",").map((s) => {
  const n = Number(s.replaceAll("_", "").trim());
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--contacts: "${s}" is not a positive whole number`);
  return n;
});
const port = Number(flags.port);
const webhookPort = Number(flags["webhook-port"]);
const clockPort = Number(flags["clock-port"]);
const timeoutMs = Number(flags.timeout) * 1000;
const progressSeconds = Number(flags.progress);
const probeRate = Number(flags["probe-rate"]);
const segmentsCalls = Number(flags["segments-calls"]);
const killAfterSeconds = flags["kill-after"] === undefined ? undefined : Number(flags["kill-after"]);
if (!(probeRate >= 0 && probeRate <= 20)) throw new Error("--probe-rate: 0 (off) to 20 requests per second");
if (!(Number.isSafeInteger(segmentsCalls) && segmentsCalls >= 1)) throw new Error("--segments-calls: a whole number >= 1");
if (killAfterSeconds !== undefined && !(killAfterSeconds > 0)) throw new Error("--kill-after: a number of seconds > 0");
const userVars = flags.var.map((v) => {
  const m = /^([A-Z0-9_]+):(.*)$/s.exec(v);
  if (!m) throw new Error(`--var "${v}": expected KEY:VALUE`);
  return [m[1]!, m[2]!] as const;
});

if (flags.import && (flags.shards !== undefined || killAfterSeconds !== undefined)) throw new Error("--import goes with neither --shards nor --kill-after");
if (flags["gzip-only"] && !flags.import) throw new Error("--gzip-only is an option of --import");
if (flags.shards !== undefined) {
  if (killAfterSeconds !== undefined) throw new Error("--shards and --kill-after do not go together");
  if (sizes.length !== 1) throw new Error("--shards: one --contacts size (contacts per account)");
}

/** Targets of the issues the benchmark checks. */
const TARGETS = {
  exportOverSqlite3: 3,
  rssGrowth: 1.3,
  apiTestP99Ms: 250,
  unknownPathP99Ms: 100,
  getSegmentsMs: 200,
  multiSliceMinSlices: 3,
  multiSliceRssOver1M: 1.3,
  /** The sweeper re-drives a dead slice once its lease (60 s budget + 120 s) has run out... */
  leaseSeconds: 180,
  /** ...on a tick (every 60 s) after that, plus the export itself. */
  restartToWebhookMarginSeconds: 120,
  /** How long the kill test listens for a second completed webhook after the first. */
  duplicateListenSeconds: 30,
};
/** The sweeper's tick, as scripts/dev.sh runs it. */
const SWEEP_EVERY_MS = 60_000;

const BENCH_DIR = join(ROOT, ".bench");
mkdirSync(BENCH_DIR, { recursive: true });
const SESSION_DIR = join(BENCH_DIR, "session");
/** wrangler's dev registry for the benchmark's sessions only (see startWranglerDev). */
const REGISTRY_DIR = join(BENCH_DIR, "dev-registry");
const CLOCK_STATE_DIR = join(BENCH_DIR, "clock-state");
const HISTORY_FILE = join(BENCH_DIR, "results-history.jsonl");

interface GetSegmentsReport {
  sweep: { status: number; ms: number; body: string };
  coldMs: number;
  timedMs: number[];
  p50Ms: number;
  maxMs: number;
  /** Per segment: what GetSegments said and what sqlite3 counted when the dataset was built. */
  contacts: Array<{ segmentid: string; api: number | null; dataset: number | null; countedAt?: unknown }>;
  mismatches: string[];
  /** 503s of wrangler's dev proxy ("restarted mid-request") that were sent again. */
  proxyRetries: number;
  error?: string;
}

interface KillReport {
  afterSeconds: number;
  /** The export finished before the kill: nothing was tested. */
  tooLate: boolean;
  jobAtKill?: Record<string, unknown>;
  /** Seconds from the kill until the restarted wrangler dev answered. */
  restartSeconds?: number;
  /** Seconds from the restarted wrangler dev answering to the webhook. */
  restartToWebhookSeconds?: number;
  sweeps: Array<{ atSeconds: number; status: number | string; body: string }>;
  /** Webhooks received for this job over the whole run (before the kill, after the restart, and up to 30 s after the first). */
  webhooks: Array<{ type: string; id: string; atSeconds: number }>;
  listenedAfterFirstSeconds?: number;
  restartLog?: string;
  checks: Array<{ what: string; ok: boolean }>;
}

interface Result {
  n: number;
  ok: boolean;
  error?: string;
  dataset: { reused: boolean; buildSeconds: number; stats?: DatasetStats; shard?: string; layoutChecks?: LayoutCheck[] };
  vars: Record<string, string>;
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
    webhooksReceived: number;
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
    /** In a kill test: of the wrangler dev started after the kill. */
    afterRestart: boolean;
  };
  api?: { idle: ProbeStats[]; during: ProbeStats[]; afterRestart?: ProbeStats[] };
  getSegments?: GetSegmentsReport;
  /** The same export with compression "gzip", after the plain one (not in the kill test). */
  gzip?: GzipReport;
  kill?: KillReport;
  sqlite3?: { seconds: number; outputBytes: number; rowsPerSecond: number };
  ratio?: number;
  check?: Comparison;
  wranglerLog: string;
  logErrors: string[];
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

/** Reads the job's row straight from the control database's file (every column, so that new ones show up too). */
function jobRow(controlFile: string, jobId: string): Record<string, unknown> | undefined {
  try {
    const [row] = sqliteJson<Record<string, unknown>>(controlFile, `SELECT * FROM export_jobs WHERE id = ${sqlString(jobId)};`);
    if (row) {
      delete row.spec;
      delete row.parts;
    }
    return row;
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/** The sweeper once, through the gateway's GET /__scheduled. */
async function sweepOnce(baseUrl: string): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  const res = await fetch(`${baseUrl}/__scheduled`, { signal: AbortSignal.timeout(120_000) });
  const body = await res.text();
  return { status: res.status, ms: performance.now() - started, body: body.slice(0, 500) };
}

/** Triggers the sweeper, then times GetSegments and checks its counts against the dataset's. */
async function timeGetSegments(dev: DevServer, clock: DevServer, dataset: Dataset): Promise<GetSegmentsReport> {
  const sweep = await sweepOnce(clock.baseUrl);
  log(`sweeper (GET /__scheduled): ${sweep.status} in ${ms(sweep.ms)}: ${sweep.body.slice(0, 200)}`);
  const times: number[] = [];
  let last: any;
  let proxyRetries = 0;
  for (let i = 0; i <= segmentsCalls; i++) {
    const started = performance.now();
    let res;
    try {
      res = await api(dev.baseUrl, dataset, "Segments", "GetSegments");
    } catch (error) {
      // wrangler's dev proxy sometimes answers 503 "Your worker restarted mid-request" (no JSON) on a pooled
      // connection the runtime had closed; it asks to send the request again. Retried, and counted.
      if (error instanceof Error && /restarted mid-request/.test(error.message) && proxyRetries < 3) {
        proxyRetries++;
        log(`GetSegments: wrangler's proxy answered 503 "restarted mid-request"; sending it again`);
        i--;
        continue;
      }
      throw error;
    }
    times.push(performance.now() - started);
    if (res.status !== 200 || res.response.status !== "SUCCESS") {
      throw new Error(`GetSegments answered ${res.status}: ${JSON.stringify(res.response).slice(0, 300)}`);
    }
    last = res.response.data;
  }
  const [coldMs, ...timedMs] = times as [number, ...number[]];
  const sorted = [...timedMs].sort((a, b) => a - b);
  const segments: any[] = Array.isArray(last) ? last : Array.isArray(last?.segments) ? last.segments : [];
  const contacts = dataset.stats.segments.map((s) => {
    const got = segments.find((g) => String(g.segmentid) === String(s.id));
    return { segmentid: String(s.id), api: got ? (got.contacts ?? null) : null, dataset: s.contacts, countedAt: got?.counted_at };
  });
  const mismatches = contacts.filter((c) => c.api !== c.dataset).map((c) => `segment ${c.segmentid}: GetSegments says ${c.api}, sqlite3 counted ${c.dataset}`);
  for (const g of segments) {
    if (!contacts.some((c) => c.segmentid === String(g.segmentid))) mismatches.push(`GetSegments lists segment ${g.segmentid}, which the dataset does not have`);
  }
  return { sweep, coldMs, timedMs, p50Ms: percentile(sorted, 50)!, maxMs: sorted[sorted.length - 1]!, contacts, mismatches, proxyRetries };
}

function webhookSummary(dataset: Dataset, jobId: string, arrivals: WebhookArrival[], origin: number) {
  return arrivals.map((a) => {
    let type = "unverified";
    let about = "";
    try {
      const event = new Webhook(dataset.webhookSecret).verify(a.body, a.headers as Record<string, string>) as any;
      type = String(event?.type);
      about = String(event?.data?.jobid);
    } catch {
      // counted as unverified
    }
    return { type: about === jobId || type === "unverified" ? type : `${type} (job ${about})`, id: String(a.headers["webhook-id"] ?? ""), atSeconds: (a.arrivedAt - origin) / 1000 };
  });
}

/** What every benchmark export asks for: the dataset's segments, every field, tags, JSON. */
const exportDetails = (dataset: Dataset) => ({
  segmentid: dataset.segmentIds.map(String),
  customfields: "all",
  include_membership: "yes",
  format: "json",
});

interface GzipReport {
  wallSeconds: number;
  bytes: number;
  plainBytes: number;
  plainSeconds: number;
  /** gunzip -c of the file is the plain file, byte for byte. */
  identical: boolean;
  error?: string;
}

/**
 * The gzip variant: the same request with compression "gzip", timed from request to webhook like the plain one,
 * its file downloaded and gunzipped with the gzip CLI (which reads every member) and compared byte for byte with
 * the plain file.
 */
async function gzipVariant(baseUrl: string, dataset: Dataset, receiver: WebhookReceiver, plainFile: string, plainSeconds: number, plainBytes: number): Promise<GzipReport> {
  const started = performance.now();
  const accepted = await api(baseUrl, dataset, "Segments", "GetSegmentSubscribersAsync", {
    ...exportDetails(dataset),
    compression: "gzip",
    notify: { type: "webhook", value: receiver.url },
  });
  if (accepted.status !== 200 || accepted.response.status !== "SUCCESS") {
    throw new Error(`the gzip request answered ${accepted.status}: ${JSON.stringify(accepted.response)}`);
  }
  const arrival = await withTimeout(receiver.next(), 30 * 60_000, "the gzip export's webhook");
  const wallSeconds = (arrival.arrivedAt - started) / 1000;
  const event = verifyWebhook(dataset.webhookSecret, arrival);
  if (event?.type !== "segment_export.completed") throw new Error(`the gzip export's webhook: ${event ? event.type : "signature does not verify"}`);
  const gzFile = `${plainFile}.gz`;
  const { bytes } = await download(event.data.url, gzFile);
  const compare = spawnSync("bash", ["-c", 'gunzip -c "$1" | cmp -s - "$2"', "compare", gzFile, plainFile]);
  rmSync(gzFile, { force: true });
  return { wallSeconds, bytes, plainBytes, plainSeconds, identical: compare.status === 0 };
}

async function exportThroughWrangler(dataset: Dataset, result: Result, outFile: string): Promise<void> {
  currentStateDir = dataset.stateDir;
  const receiver = new WebhookReceiver(webhookPort);
  await receiver.listen();
  let dev: DevServer | undefined;
  let clock: DevServer | undefined;
  const makeReady = () => apiReady(dataset);
  const probers = makeProbers(() => dev!.baseUrl, dataset, probeRate);
  let ticker: NodeJS.Timeout | undefined;
  try {
    log(`starting wrangler dev on port ${port} (API, export and mailer workers; configs and settings in ${relative(ROOT, SESSION_DIR)}/; workerd V8 flags: ${workerdV8Flags() || "none"}; log: ${relative(ROOT, result.wranglerLog)})`);
    dev = await startService(result.wranglerLog, result.vars, makeReady());
    log(`starting the dev clock on port ${clockPort} (log: ${relative(ROOT, clockLog(result))})`);
    clock = await startWranglerDev({
      configs: [CLOCK_CONFIG],
      stateDir: CLOCK_STATE_DIR,
      port: clockPort,
      registryDir: REGISTRY_DIR,
      logFile: clockLog(result),
      // Its only other route answers 404 with a line about itself; /__scheduled would run a sweep.
      ready: async (baseUrl) => {
        const res = await fetch(`${baseUrl}/`);
        return res.status === 404 && /dev clock/.test(await res.text());
      },
    });
    // Workerd's memory once settled is the baseline of the peak; then the API's idle latency.
    const { idleBytes, idle } = await measureIdle(dev, probers, probeRate);
    result.api = { idle, during: [] };

    const started = performance.now();
    const accepted = await api(dev.baseUrl, dataset, "Segments", "GetSegmentSubscribersAsync", {
      ...exportDetails(dataset),
      notify: { type: "webhook", value: receiver.url },
    });
    const acceptSeconds = (performance.now() - started) / 1000;
    if (accepted.status !== 200 || accepted.response.status !== "SUCCESS") {
      throw new Error(`GetSegmentSubscribersAsync answered ${accepted.status}: ${JSON.stringify(accepted.response)}`);
    }
    const jobId = accepted.response.data.jobid as string;
    log(`job ${jobId} accepted in ${fmt(acceptSeconds * 1000)} ms; waiting for the webhook${probers.length ? " (probing the API meanwhile)" : ""}`);
    for (const p of probers) p.start("during export");

    // Optional progress: status calls share the local D1 with the export, so they are off by default.
    let polling = false;
    const progress =
      progressSeconds > 0
        ? setInterval(() => {
            if (polling || !dev) return;
            polling = true;
            api(dev.baseUrl, dataset, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid: jobId })
              .then(({ response }) => {
                const d = response.data;
                if (d) log(`  ${d.status}: ${fmt(d.count)} rows after ${fmt((performance.now() - started) / 1000, 1)} s`);
              })
              .catch(() => {})
              .finally(() => (polling = false));
          }, progressSeconds * 1000)
        : undefined;

    let arrival: WebhookArrival;
    let restartedAt: number | undefined;
    let reloads = dev.watchReloads();
    try {
      const first = Promise.race([receiver.next(), reloads.reloaded]);
      if (killAfterSeconds !== undefined) {
        const kill: KillReport = { afterSeconds: killAfterSeconds, tooLate: false, sweeps: [], webhooks: [], checks: [] };
        result.kill = kill;
        const early = await Promise.race([first.then(() => true), sleep(killAfterSeconds * 1000).then(() => false)]);
        if (early) {
          kill.tooLate = true;
          log(`KILL TEST NOT RUN: the webhook arrived before ${killAfterSeconds} s; use a larger --contacts or a smaller --kill-after`);
        } else {
          result.api.during = await Promise.all(probers.map((p) => p.abandon()));
          const killedAt = performance.now();
          await dev.crash();
          kill.jobAtKill = jobRow(dataset.controlFile, jobId);
          const lease = Number(kill.jobAtKill?.lease_expires_at ?? 0);
          log(
            `kill -9 of the wrangler dev tree after ${fmt((killedAt - started) / 1000, 1)} s; the job then: ` +
              JSON.stringify(pick(kill.jobAtKill, ["state", "processed_count", "cursor", "bytes_written", "slices", "version", "drive", "redrives"])) +
              (lease > 0 ? ` (its lease runs out in ${fmt((lease - Date.now()) / 1000, 0)} s)` : ""),
          );
          kill.restartLog = result.wranglerLog.replace(/\.log$/, "-restart.log");
          log(`restarting wrangler dev on the same state (log: ${relative(ROOT, kill.restartLog)})`);
          reloads.stop();
          dev = await startService(kill.restartLog, result.vars, makeReady());
          reloads = dev.watchReloads();
          restartedAt = performance.now();
          kill.restartSeconds = (restartedAt - killedAt) / 1000;
          log(`wrangler dev is back after ${fmt(kill.restartSeconds, 1)} s; calling GET /__scheduled every ${SWEEP_EVERY_MS / 1000} s until the webhook arrives`);
          for (const p of probers) p.start("after restart");
          const tick = () => {
            const at = (performance.now() - restartedAt!) / 1000;
            sweepOnce(clock!.baseUrl)
              .then((r) => {
                kill.sweeps.push({ atSeconds: at, status: r.status, body: r.body });
                log(`  sweep at +${fmt(at)} s: ${r.status} ${r.body.slice(0, 160)}; job: ${JSON.stringify(pick(jobRow(dataset.controlFile, jobId), ["state", "processed_count", "slices", "redrives", "drive"]))}`);
              })
              .catch((e) => kill.sweeps.push({ atSeconds: at, status: String(e), body: "" }));
          };
          ticker = setInterval(tick, SWEEP_EVERY_MS);
        }
      }
      arrival = await withTimeout(Promise.race([first, reloads.reloaded]), timeoutMs, "the webhook");
    } finally {
      clearInterval(progress);
      clearInterval(ticker);
      reloads.stop();
    }
    const phaseStats = await Promise.all(probers.map((p) => p.stop()));
    if (restartedAt !== undefined) result.api.afterRestart = phaseStats;
    else result.api.during = phaseStats;
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
    if (result.kill && restartedAt !== undefined) {
      result.kill.restartToWebhookSeconds = (arrival.arrivedAt - restartedAt) / 1000;
      result.kill.checks.push({ what: `webhook verifies and says completed (${event?.type})`, ok: webhookVerified && event?.type === "segment_export.completed" && event?.data?.jobid === jobId });
    }
    if (event?.data?.jobid !== jobId) throw new Error(`the webhook is about job ${event?.data?.jobid}, not ${jobId}`);
    if (event.type !== "segment_export.completed") {
      throw new Error(`the export failed: ${event.type}: ${event.data?.errormessage ?? JSON.stringify(event.data)}`);
    }
    log(`webhook ${event.type} (signature verified) after ${fmt(wallSeconds, 2)} s: count ${fmt(event.data.count)}`);

    const { bytes: outputBytes, seconds: downloadSeconds } = await download(event.data.url, outFile);
    log(`downloaded ${mib(outputBytes)} in ${fmt(downloadSeconds, 2)} s`);

    const withDownload = dev.memory.stop();
    result.memory = {
      idleBytes,
      peakBytes: rss.peakBytes,
      peakTotalRssBytes: rss.peakTotalRssBytes,
      perProcess: rss.perProcess,
      samples: rss.samples,
      peakWithDownloadBytes: withDownload.peakBytes,
      afterRestart: restartedAt !== undefined,
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
      webhooksReceived: 0,
    };

    try {
      result.getSegments = await timeGetSegments(dev, clock, dataset);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`GetSegments: ${message}`);
      result.getSegments = { sweep: { status: 0, ms: 0, body: "" }, coldMs: NaN, timedMs: [], p50Ms: NaN, maxMs: NaN, contacts: [], mismatches: [], proxyRetries: 0, error: message };
    }

    if (result.kill && restartedAt !== undefined) {
      // A second completed webhook (a slice re-driven although it had finished, a notification sent twice)
      // would come soon after the first: keep listening for a while.
      const wait = TARGETS.duplicateListenSeconds * 1000 - (performance.now() - arrival.arrivedAt);
      if (wait > 0) {
        log(`listening ${fmt(wait / 1000)} s more for a second webhook`);
        await sleep(wait);
      }
      result.kill.listenedAfterFirstSeconds = (performance.now() - arrival.arrivedAt) / 1000;
    }
    const webhooks = webhookSummary(dataset, jobId, receiver.received, started);
    result.export.webhooksReceived = webhooks.length;
    if (result.kill) {
      result.kill.webhooks = webhooks;
      const completed = webhooks.filter((w) => w.type === "segment_export.completed");
      if (restartedAt !== undefined) {
        result.kill.checks.push({
          what: `exactly one completed webhook (${completed.length} completed, ${webhooks.length} in all, listened ${fmt(result.kill.listenedAfterFirstSeconds ?? 0)} s after the first and across the restart)`,
          ok: completed.length === 1 && webhooks.length === 1,
        });
        const limit = TARGETS.leaseSeconds + TARGETS.restartToWebhookMarginSeconds;
        result.kill.checks.push({
          what: `restart -> webhook ${fmt(result.kill.restartToWebhookSeconds ?? NaN, 1)} s (target <= lease ${TARGETS.leaseSeconds} s + ${TARGETS.restartToWebhookMarginSeconds} s = ${limit} s)`,
          ok: (result.kill.restartToWebhookSeconds ?? Infinity) <= limit,
        });
      }
    } else {
      if (webhooks.length !== 1) log(`NOTE: ${webhooks.length} webhooks arrived for this export: ${JSON.stringify(webhooks)}`);
      // After the plain export's webhooks are counted, so that the variant's own is not taken for a second one.
      log("the same export with compression gzip (one gzip member per slice)");
      try {
        result.gzip = await gzipVariant(dev.baseUrl, dataset, receiver, outFile, wallSeconds, outputBytes);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        log(`gzip variant: ${message}`);
        result.gzip = { wallSeconds: NaN, bytes: NaN, plainBytes: outputBytes, plainSeconds: wallSeconds, identical: false, error: message };
      }
    }
  } finally {
    clearInterval(ticker);
    await Promise.all([dev?.stop(), clock?.stop()]);
    if (dev) log("wrangler dev stopped");
    await receiver.close();
  }
}

/** The service's session: API (first, it owns the port), export worker and mailer, with the run's settings. */
function startService(logFile: string, vars: Record<string, string>, ready: (baseUrl: string) => Promise<boolean | string>) {
  return startWranglerDev({ configs: SERVICE_CONFIGS, stateDir: currentStateDir!, port, vars, sessionDir: SESSION_DIR, registryDir: REGISTRY_DIR, logFile, ready });
}
let currentStateDir: string | undefined;

const clockLog = (r: Result) => r.wranglerLog.replace(/\.log$/, "-clock.log");

function pick(row: Record<string, unknown> | undefined, keys: string[]) {
  return row ? Object.fromEntries(keys.filter((k) => k in row).map((k) => [k, row[k]])) : row;
}

async function benchOne(n: number): Promise<Result> {
  console.log(`\n=== N = ${fmt(n)} ===`);
  const outDir = join(BENCH_DIR, `out-${n}`);
  mkdirSync(outDir, { recursive: true });
  const result: Result = {
    n,
    ok: false,
    dataset: { reused: false, buildSeconds: 0 },
    vars: sessionVars(port, userVars),
    wranglerLog: join(BENCH_DIR, `wrangler-${n}.log`),
    logErrors: [],
  };
  const exportFile = join(outDir, "export.json");
  const baselineFile = join(outDir, "sqlite3.ndjson");
  let dataset: Dataset | undefined;
  try {
    dataset = await ensureDataset(n, { reuse: flags.keep, log });
    result.dataset = { reused: dataset.reused, buildSeconds: dataset.buildSeconds, stats: dataset.stats, shard: dataset.shard, layoutChecks: dataset.layoutChecks };
    try {
      await exportThroughWrangler(dataset, result, exportFile);
    } finally {
      result.logErrors = logErrors(result.wranglerLog);
      result.logErrors.push(...logErrors(clockLog(result)).map((l) => `(dev clock) ${l}`));
      if (result.kill?.restartLog) result.logErrors.push(...logErrors(result.kill.restartLog).map((l) => `(after the restart) ${l}`));
    }
    const job = readJob(dataset.controlFile, result.export!.jobId);
    result.export!.slices = job.slices;
    if (job.shard !== dataset.shard) throw new Error(`job ${job.id} read ${job.shard}, but the account's directory entry says ${dataset.shard}`);

    log("running the same query with sqlite3");
    const baseline = await runBaseline(dataset.shardFile, baselineSql(dataset.shardFile, job), join(outDir, "sqlite3.sql"), baselineFile);
    result.sqlite3 = { seconds: baseline.seconds, outputBytes: baseline.outputBytes, rowsPerSecond: 0 };
    log(`sqlite3 wrote ${mib(baseline.outputBytes)} in ${fmt(baseline.seconds, 2)} s`);

    log("comparing the export with sqlite3's records");
    result.check = await compareOutputs(exportFile, baselineFile);
    result.sqlite3.rowsPerSecond = result.check.baselineCount / baseline.seconds;
    result.ratio = result.export!.wallSeconds / baseline.seconds;
    result.ok = result.check.ok;
    if (result.kill && !result.kill.tooLate) {
      result.kill.checks.splice(1, 0, { what: "the file is identical to sqlite3's records (count, emails, records)", ok: result.check.ok });
      result.ok &&= result.kill.checks.every((c) => c.ok);
    }
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    if (!flags.keep) {
      rmSync(outDir, { recursive: true, force: true });
      if (dataset) rmSync(dataset.stateDir, { recursive: true, force: true });
    }
  }
  printResult(result);
  return result;
}

function printResult(r: Result) {
  const lines: Array<[string, string]> = [["N", fmt(r.n)]];
  const stats = r.dataset.stats;
  if (stats) {
    lines.push([
      "dataset (sqlite3)",
      `segments ${stats.segments.map((s) => `${s.id}: ${fmt(s.contacts)}`).join(", ")}; overlaps ${stats.overlaps.map((o) => `${o.a}&${o.b}: ${fmt(o.contacts)}`).join(", ")}; ` +
        `union ${fmt(stats.union)} (${fmt((100 * stats.union) / stats.contacts, 1)} %); subscribed ${stats.minSubscribeDate.slice(0, 10)} .. ${stats.maxSubscribeDate.slice(0, 10)}`,
    ]);
  }
  if (r.dataset.layoutChecks) {
    lines.push([
      "layout (sqlite3)",
      `account on ${r.dataset.shard}, accounts and jobs in the control database (DB); ${r.dataset.layoutChecks.filter((c) => c.ok).length}/${r.dataset.layoutChecks.length} checks hold (directory, rows only on ${r.dataset.shard}, id_sequences)`,
    ]);
  }
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
      `${mib(r.memory.peakBytes)} (idle before the request ${mib(r.memory.idleBytes)}; ${r.memory.perProcess.length} workerd processes: ${r.memory.perProcess.map((p) => mib(p.peakBytes)).join(", ")})` +
        (r.memory.afterRestart ? " [of the wrangler dev restarted after the kill]" : ""),
    ]);
    lines.push(["  with the download", mib(r.memory.peakWithDownloadBytes)]);
    if (top) {
      const { rss, anon, file, shmem } = top.sampledPeak;
      lines.push(["  its largest sample", `${mib(rss)}: anonymous ${mib(anon)}, file-backed ${mib(file)}, shared ${mib(shmem)}`]);
    }
  }
  if (r.api) {
    for (const [phase, list] of [["idle", r.api.idle], ["during export", r.api.during], ["after restart", r.api.afterRestart ?? []]] as const) {
      for (const p of list) lines.push([`API ${phase}: ${p.name}`, describeProbe(p)]);
    }
    const targets = apiTargets(r);
    if (targets.length) lines.push(["API targets (during export)", targets.map((t) => `${t.what}: ${met(t.ok)}`).join("; ")]);
  }
  if (r.gzip) {
    const z = r.gzip;
    lines.push([
      "gzip variant",
      z.error
        ? `FAILED: ${z.error}`
        : `${fmt(z.wallSeconds, 2)} s (plain ${fmt(z.plainSeconds, 2)} s, ${fmt(z.wallSeconds / z.plainSeconds, 2)} x); ` +
          `${mib(z.bytes)} (plain ${mib(z.plainBytes)}, ${fmt((100 * z.bytes) / z.plainBytes, 1)} %); gunzip = the plain file: ${z.identical ? "yes" : "NO"}`,
    ]);
  }
  if (r.getSegments) {
    const g = r.getSegments;
    if (g.error) lines.push(["GetSegments", `FAILED: ${g.error}`]);
    else {
      lines.push(["sweeper (GET /__scheduled)", `${g.sweep.status} in ${ms(g.sweep.ms)}`]);
      if (g.proxyRetries) lines.push(["  GetSegments retried", `${g.proxyRetries} time(s) after wrangler's proxy answered 503 "restarted mid-request"`]);
      lines.push([
        "GetSegments",
        `first call ${ms(g.coldMs)}; then ${g.timedMs.length} calls: p50 ${ms(g.p50Ms)}, max ${ms(g.maxMs)} ` +
          `(target <= ${TARGETS.getSegmentsMs} ms${r.n === 1_000_000 ? "" : ", stated for 1M"}: p50 ${met(g.p50Ms <= TARGETS.getSegmentsMs)}, max ${met(g.maxMs <= TARGETS.getSegmentsMs)}, first ${met(g.coldMs <= TARGETS.getSegmentsMs)})`,
      ]);
      lines.push([
        "  contacts vs dataset",
        g.mismatches.length ? `MISMATCH: ${g.mismatches.join("; ")}` : `match (${g.contacts.map((c) => `${c.segmentid}: ${fmt(c.api ?? 0)}`).join(", ")})`,
      ]);
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
  if (r.kill) {
    const k = r.kill;
    if (k.tooLate) lines.push(["kill test", `NOT RUN: the export finished before ${k.afterSeconds} s`]);
    else {
      lines.push([
        "kill test",
        `kill -9 after ${k.afterSeconds} s; back in ${fmt(k.restartSeconds ?? NaN, 1)} s; webhook ${fmt(k.restartToWebhookSeconds ?? NaN, 1)} s after the restart; ` +
          `${k.sweeps.length} sweeper tick(s); webhooks: ${k.webhooks.map((w) => `${w.type} at ${fmt(w.atSeconds, 1)} s`).join(", ") || "none"}`,
      ]);
      for (const c of k.checks) lines.push(["  check", `${c.what}: ${met(c.ok)}`]);
    }
  }
  if (r.error) lines.push(["FAILED", r.error]);
  lines.push(["wrangler log", `${relative(ROOT, r.wranglerLog)}${r.kill?.restartLog ? ` and ${relative(ROOT, r.kill.restartLog)}` : ""} (${r.logErrors.length} error line(s))`]);
  for (const line of r.logErrors.slice(0, 5)) lines.push(["", `  ${line.slice(0, 300)}`]);
  const width = Math.max(...lines.map(([k]) => k.length));
  console.log(lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n"));
}

/** The API latency targets, checked on the during-export probes. */
function apiTargets(r: Result): Array<{ what: string; ok: boolean }> {
  const during = r.api?.during ?? [];
  const apiTest = during.find((p) => p.name === "APITest");
  const unknown = during.find((p) => p.name === "unknown path");
  if (!apiTest || !unknown) return [];
  const all = [...(r.api?.idle ?? []), ...during, ...(r.api?.afterRestart ?? [])];
  const fivexx = all.reduce((t, p) => t + p.failures.status5xx, 0);
  return [
    { what: `APITest p99 ${ms(apiTest.p99Ms)} <= ${TARGETS.apiTestP99Ms} ms`, ok: apiTest.p99Ms !== null && apiTest.p99Ms <= TARGETS.apiTestP99Ms },
    { what: `unknown path p99 ${ms(unknown.p99Ms)} <= ${TARGETS.unknownPathP99Ms} ms`, ok: unknown.p99Ms !== null && unknown.p99Ms <= TARGETS.unknownPathP99Ms },
    { what: `no 5xx (${fivexx})`, ok: fivexx === 0 },
    { what: `no failures (${apiTest.failures.total + unknown.failures.total})`, ok: apiTest.failures.total + unknown.failures.total === 0 },
  ];
}

interface HistoryLine {
  startedAt: string;
  /** Set on the lines of `--shards` runs (shards-one, shards-two), which are not single-account runs. */
  mode?: string;
  n: number;
  ok: boolean;
  vars: Record<string, string>;
  killAfter?: number;
  wallSeconds?: number;
  peakBytes?: number;
  slices?: number;
  ratio?: number;
}

function readHistory(): HistoryLine[] {
  if (!existsSync(HISTORY_FILE)) return [];
  return readFileSync(HISTORY_FILE, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        const line = JSON.parse(l) as HistoryLine;
        return line.mode ? [] : [line];
      } catch {
        return [];
      }
    });
}

/** Whether a run used the shipped slice budget (no EXPORT_SLICE_BUDGET_MS given). */
const defaultBudget = (vars: Record<string, string>) => !("EXPORT_SLICE_BUDGET_MS" in vars);

function printSummary(results: Result[], history: HistoryLine[]) {
  const header = ["N", "rows", "export s", "rows/s", "output", "peak RSS", "slices", "sqlite3 s", "ratio", "APITest p99", "404 p99", "GetSegments p50", "check"];
  const rows = results.map((r) => {
    const during = (name: string) => r.api?.during.find((p) => p.name === name);
    return [
      fmt(r.n),
      r.export ? fmt(r.export.count) : "-",
      r.export ? fmt(r.export.wallSeconds, 2) : "-",
      r.export ? fmt(r.export.rowsPerSecond) : "-",
      r.export ? mib(r.export.outputBytes) : "-",
      r.memory ? mib(r.memory.peakBytes) : "-",
      r.export ? String(r.export.slices) : "-",
      r.sqlite3 ? fmt(r.sqlite3.seconds, 2) : "-",
      r.ratio !== undefined ? fmt(r.ratio, 2) : "-",
      ms(during("APITest")?.p99Ms),
      ms(during("unknown path")?.p99Ms),
      r.getSegments && !r.getSegments.error ? ms(r.getSegments.p50Ms) : "-",
      r.error ? "FAILED" : r.check?.ok ? (r.ok ? "OK" : "OK; kill checks NOT met") : "MISMATCH",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  console.log("\n=== summary ===");
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));

  const measured = results.filter((r) => r.memory && r.export && !r.memory.afterRestart).sort((a, b) => a.n - b.n);
  if (measured.length >= 2) {
    const small = measured[0]!;
    const large = measured[measured.length - 1]!;
    const growth = large.memory!.peakBytes / small.memory!.peakBytes;
    console.log(
      `RSS growth ${fmt(large.n)} / ${fmt(small.n)}: ${fmt(growth, 2)}x (${mib(large.memory!.peakBytes)} / ${mib(small.memory!.peakBytes)}); ` +
        `time growth ${fmt(large.export!.wallSeconds / small.export!.wallSeconds, 1)}x for ${fmt(large.n / small.n, 1)}x the rows`,
    );
  }
  // Issue 3's targets: export/sqlite3 at 1M (else the largest size run), RSS growth 100k -> 1M (else smallest -> largest).
  const at1M = measured.find((r) => r.n === 1_000_000) ?? measured.filter((r) => r.n <= 1_000_000).pop() ?? measured[measured.length - 1];
  if (at1M?.ratio !== undefined) {
    const targets = [`export/sqlite3 at ${fmt(at1M.n)}: ${fmt(at1M.ratio, 2)} (target <= ${TARGETS.exportOverSqlite3}: ${met(at1M.ratio <= TARGETS.exportOverSqlite3)})`];
    const small = measured[0]!;
    if (small !== at1M) {
      const growth = at1M.memory!.peakBytes / small.memory!.peakBytes;
      targets.push(`RSS growth ${fmt(small.n)} -> ${fmt(at1M.n)}: ${fmt(growth, 2)} (target <= ${TARGETS.rssGrowth}: ${met(growth <= TARGETS.rssGrowth)})`);
    }
    targets.push(`rows lost or duplicated: ${results.every((r) => r.check?.ok) ? "none" : "SEE MISMATCH ABOVE"}`);
    console.log(`targets: ${targets.join("; ")}`);
  }
  for (const r of results) {
    const api = apiTargets(r);
    if (api.length) console.log(`API during the ${fmt(r.n)} export: ${api.map((t) => `${t.what}: ${met(t.ok)}`).join("; ")}`);
    const g = r.getSegments;
    if (g && !g.error) {
      console.log(
        `GetSegments at ${fmt(r.n)}: first ${ms(g.coldMs)}, p50 ${ms(g.p50Ms)}, max ${ms(g.maxMs)} (target <= ${TARGETS.getSegmentsMs} ms at 1M x 3 segments: ` +
          `${met(g.maxMs <= TARGETS.getSegmentsMs)}); counts ${g.mismatches.length ? `MISMATCH (${g.mismatches.join("; ")})` : "match the dataset"}`,
      );
    }
  }
  // Issue 6's multi-slice target, for every size of 10M or more: against the 1M run of this invocation, else
  // the latest successful 1M run (default settings, no kill) in the history.
  for (const big of results.filter((r) => r.n >= 10_000_000)) {
    const here = results.find((r) => r.n === 1_000_000 && r.ok && r.memory && !r.kill);
    const earlier = [...history].reverse().find((h) => h.n === 1_000_000 && h.ok && h.peakBytes && !h.killAfter && Object.keys(h.vars).length === 0);
    const refBytes = here?.memory?.peakBytes ?? earlier?.peakBytes;
    const refWhat = here ? "the 1M run above" : earlier ? `the 1M run of ${earlier.startedAt} (results-history)` : "no 1M run to compare with";
    const checks = [
      `completes: ${met(!!big.export && !big.error)}`,
      `default slice budget: ${met(defaultBudget(big.vars))}${defaultBudget(big.vars) ? "" : ` (EXPORT_SLICE_BUDGET_MS=${big.vars.EXPORT_SLICE_BUDGET_MS})`}`,
      `slices ${big.export?.slices ?? "-"} (target >= ${TARGETS.multiSliceMinSlices}): ${met((big.export?.slices ?? 0) >= TARGETS.multiSliceMinSlices)}`,
      `exact file: ${met(!!big.check?.ok)}`,
      refBytes && big.memory
        ? `peak RSS ${mib(big.memory.peakBytes)} = ${fmt(big.memory.peakBytes / refBytes, 2)}x ${refWhat} (target <= ${TARGETS.multiSliceRssOver1M}x): ${met(big.memory.peakBytes / refBytes <= TARGETS.multiSliceRssOver1M)}`
        : `peak RSS vs 1M: ${refWhat}`,
    ];
    console.log(`multi-slice at ${fmt(big.n)}: ${checks.join("; ")}`);
  }
  for (const r of results.filter((r) => r.kill)) {
    const k = r.kill!;
    if (k.tooLate) console.log(`kill test at ${fmt(r.n)}: NOT RUN (the export finished before ${k.afterSeconds} s)`);
    else if (!k.checks.length) console.log(`kill test at ${fmt(r.n)}: FAILED before its checks: ${r.error ?? "see above"}`);
    else console.log(`kill test at ${fmt(r.n)}: ${k.checks.map((c) => `${c.what}: ${met(c.ok)}`).join("; ")}`);
  }
}

if (flags.import) {
  const code = await runImportBench({
    sizes,
    keep: flags.keep,
    gzipOnly: flags["gzip-only"],
    port,
    webhookPort,
    timeoutMs,
    progressSeconds,
    probeRate,
    userVars,
    benchDir: BENCH_DIR,
    sessionDir: SESSION_DIR,
    registryDir: REGISTRY_DIR,
    historyFile: HISTORY_FILE,
  });
  process.exit(interrupted ? 130 : code);
}

if (flags.shards !== undefined) {
  const code = await runShards({
    accounts: Number(flags.shards),
    n: sizes[0]!,
    keep: flags.keep,
    port,
    webhookPort,
    timeoutMs,
    probeRate,
    userVars,
    benchDir: BENCH_DIR,
    sessionDir: SESSION_DIR,
    registryDir: REGISTRY_DIR,
    historyFile: HISTORY_FILE,
  });
  process.exit(interrupted ? 130 : code);
}

const results: Result[] = [];
const startedAt = new Date().toISOString();
const loadBefore = loadavg();
const history = readHistory();
for (const n of sizes) {
  const result = await benchOne(n);
  if (interrupted) process.exit(130);
  results.push(result);
  const userVarsObject = Object.fromEntries(userVars);
  const entry: HistoryLine = {
    startedAt,
    n,
    ok: result.ok,
    vars: userVarsObject,
    ...(killAfterSeconds !== undefined ? { killAfter: killAfterSeconds } : {}),
    wallSeconds: result.export?.wallSeconds,
    peakBytes: result.memory?.peakBytes,
    slices: result.export?.slices,
    ratio: result.ratio,
  };
  appendFileSync(HISTORY_FILE, `${JSON.stringify(entry)}\n`);
}
printSummary(results, history);

const resultsFile = join(BENCH_DIR, "results.json");
const small = results.filter((r) => r.memory).sort((a, b) => a.n - b.n);
writeFileSync(
  resultsFile,
  JSON.stringify(
    {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, loadAverageAtStart: loadBefore, loadAverageAtEnd: loadavg(), node: process.version, workerdV8Flags: workerdV8Flags() },
      options: { sizes, keep: flags.keep, vars: Object.fromEntries(userVars), probeRate, segmentsCalls, killAfterSeconds: killAfterSeconds ?? null },
      targets: TARGETS,
      rssGrowth: small.length >= 2 ? small[small.length - 1]!.memory!.peakBytes / small[0]!.memory!.peakBytes : null,
      // The signing secret of the session is not kept.
      results: results.map((r) => ({ ...r, vars: Object.fromEntries(Object.entries(r.vars).filter(([k]) => k !== "DOWNLOAD_SIGNING_SECRET")) })),
    },
    null,
    2,
  ) + "\n",
);
console.log(`results written to ${relative(ROOT, resultsFile)}`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
