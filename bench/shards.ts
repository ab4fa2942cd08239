/**
 * `npm run bench -- --shards 2`: K accounts of N contacts each (default 2 × 1,000,000), exported at the same
 * moment, in two layouts: all accounts on SHARD_0 ("one shard"), and account k on SHARD_k ("two shards").
 * Per layout it prints each export's time (request → its webhook), the wall time (first request → last
 * webhook), rows/s, workerd's peak memory and per-thread CPU, the API's latency during the exports, and checks
 * every file record by record against sqlite3 on the shard the account is on. Then it compares the layouts.
 * See bench/README.md ("The shards comparison").
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, relative } from "node:path";
import { baselineSql, readJob, runBaseline, type JobRow } from "./baseline";
import { api, apiReady, describeProbe, download, fmt, log, makeProbers, measureIdle, mib, ms, sessionVars, sleep, verifyWebhook, withTimeout } from "./common";
import { ensureState, ROOT, type BenchAccount, type BenchState } from "./dataset";
import { d1Bindings, type LayoutCheck } from "./layout";
import type { ProbeStats } from "./probes";
import { ThreadCpuSampler, type RssReport, type ThreadReport } from "./processes";
import { compareOutputs, type Comparison } from "./verify";
import { logErrors, SERVICE_CONFIGS, startWranglerDev, WebhookReceiver, type DevServer, type WebhookArrival } from "./wrangler_dev";

export interface ShardsOptions {
  /** Accounts (and shards in the spread layout). */
  accounts: number;
  /** Contacts per account. */
  n: number;
  keep: boolean;
  port: number;
  webhookPort: number;
  timeoutMs: number;
  probeRate: number;
  userVars: ReadonlyArray<readonly [string, string]>;
  benchDir: string;
  sessionDir: string;
  registryDir: string;
  historyFile: string;
}

interface Layout {
  /** In directory names: state-shards-<N>-<key>. */
  key: string;
  label: string;
  /** The shard of each account. */
  placements: string[];
}

interface ExportReport {
  username: string;
  accountId: number;
  shard: string;
  jobId: string;
  /** The shard the job read (export_jobs.shard). */
  jobShard: string | null;
  count: number;
  acceptSeconds: number;
  /** Request sent → its webhook. */
  seconds: number;
  /** Request sent → its first slice claimed the job, and → the job completed (export_jobs.started_at / completed_at; 1 ms, workerd's clock). */
  startedAfterSeconds: number | null;
  completedAfterSeconds: number | null;
  slices: number;
  outputBytes: number;
  downloadSeconds: number;
  sqlite3AloneSeconds?: number;
  sqlite3TogetherSeconds?: number;
  check?: Comparison;
}

interface LayoutResult {
  layout: Layout;
  n: number;
  ok: boolean;
  error?: string;
  dataset?: { reused: boolean; buildSeconds: number; layoutChecks: LayoutCheck[]; stats: BenchAccount["stats"][] };
  exports: ExportReport[];
  wallSeconds?: number;
  rowsPerSecond?: number;
  memory?: { idleBytes: number; peakBytes: number; perProcess: RssReport["perProcess"]; peakWithDownloadBytes: number };
  threads?: ThreadReport;
  api?: { idle: ProbeStats[]; during: ProbeStats[] };
  sqlite3?: { togetherWallSeconds: number };
  wranglerLog: string;
  logErrors: string[];
  /** "Reloading local server" lines in the log: any before the last webhook fails the layout, so these came after. */
  reloadsAfterWebhooks?: number;
}

const WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

export async function runShards(o: ShardsOptions): Promise<number> {
  const { shards } = d1Bindings();
  if (!(Number.isSafeInteger(o.accounts) && o.accounts >= 2 && o.accounts <= Math.min(shards.length, WORDS.length - 1))) {
    throw new Error(`--shards: 2 to ${Math.min(shards.length, WORDS.length - 1)} (wrangler.toml binds ${shards.join(", ")})`);
  }
  const layouts: Layout[] = [
    { key: "one", label: "one shard", placements: Array.from({ length: o.accounts }, () => shards[0]!) },
    { key: WORDS[o.accounts]!, label: `${WORDS[o.accounts]} shards`, placements: shards.slice(0, o.accounts) },
  ];
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg();
  console.log(
    `\n=== shards: ${o.accounts} accounts x ${fmt(o.n)} contacts, exported at once; layouts: ${layouts.map((l) => `${l.label} (${l.placements.join(", ")})`).join(" vs ")} ===`,
  );
  log(`load average ${loadBefore.map((l) => l.toFixed(2)).join(", ")} (1, 5, 15 min) on ${cpus().length} CPUs`);

  const results: LayoutResult[] = [];
  for (const layout of layouts) {
    const result = await runLayout(o, layout);
    printLayout(result);
    results.push(result);
    appendFileSync(
      o.historyFile,
      `${JSON.stringify({
        startedAt,
        mode: `shards-${layout.key}`,
        n: o.n,
        accounts: o.accounts,
        ok: result.ok,
        vars: Object.fromEntries(o.userVars),
        wallSeconds: result.wallSeconds,
        exportSeconds: result.exports.map((e) => e.seconds),
        peakBytes: result.memory?.peakBytes,
      })}\n`,
    );
  }
  printComparison(results);
  const loadAfter = loadavg();
  log(`load average ${loadAfter.map((l) => l.toFixed(2)).join(", ")} at the end`);

  const resultsFile = join(o.benchDir, "results.json");
  writeFileSync(
    resultsFile,
    JSON.stringify(
      {
        startedAt,
        finishedAt: new Date().toISOString(),
        mode: "shards",
        machine: { cpus: cpus().length, loadAverageAtStart: loadBefore, loadAverageAtEnd: loadAfter, node: process.version },
        options: { accounts: o.accounts, contactsPerAccount: o.n, keep: o.keep, vars: Object.fromEntries(o.userVars), probeRate: o.probeRate },
        results,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`results written to ${relative(ROOT, resultsFile)}`);
  return results.every((r) => r.ok) ? 0 : 1;
}

async function runLayout(o: ShardsOptions, layout: Layout): Promise<LayoutResult> {
  console.log(`\n=== layout "${layout.label}": ${layout.placements.map((s, k) => `account ${k + 1} on ${s}`).join(", ")} ===`);
  const name = `shards-${o.n}-${layout.key}`;
  const outDir = join(o.benchDir, `out-${name}`);
  mkdirSync(outDir, { recursive: true });
  const result: LayoutResult = { layout, n: o.n, ok: false, exports: [], wranglerLog: join(o.benchDir, `wrangler-${name}.log`), logErrors: [] };
  let state: BenchState | undefined;
  try {
    state = await ensureState({ stateDir: join(o.benchDir, `state-${name}`), n: o.n, placements: layout.placements }, { reuse: o.keep, log });
    result.dataset = { reused: state.reused, buildSeconds: state.buildSeconds, layoutChecks: state.layoutChecks, stats: state.accounts.map((a) => a.stats) };
    try {
      await exportAll(o, state, result, outDir);
    } finally {
      result.logErrors = logErrors(result.wranglerLog);
      result.reloadsAfterWebhooks = countReloads(result.wranglerLog);
    }

    // The jobs as the control database recorded them: which shard each read, when its slices ran.
    const jobs: JobRow[] = result.exports.map((e) => readJob(state!.controlFile, e.jobId));
    for (const [i, e] of result.exports.entries()) {
      const job = jobs[i]!;
      e.jobShard = job.shard;
      e.slices = job.slices;
      if (job.shard !== e.shard) throw new Error(`job ${job.id} of ${e.username} read ${job.shard}, but the directory puts the account on ${e.shard}`);
    }
    result.exports.forEach((e, i) => Object.assign(e, jobTimes(jobs[i]!, requestWallClock.get(e.jobId)!)));

    // The baseline: each account's query alone (its records are the reference), then all of them at once.
    for (const [i, e] of result.exports.entries()) {
      const account = state.accounts[i]!;
      log(`running ${e.username}'s query with sqlite3 on ${account.shard}'s file`);
      const run = await runBaseline(account.shardFile, baselineSql(account.shardFile, jobs[i]!), join(outDir, `sqlite3-${e.username}.sql`), join(outDir, `sqlite3-${e.username}.ndjson`));
      e.sqlite3AloneSeconds = run.seconds;
      log(`  ${mib(run.outputBytes)} in ${fmt(run.seconds, 2)} s`);
    }
    log(`running all ${result.exports.length} queries with sqlite3 at once (one process each: what ${cpus().length} cores do without workerd)`);
    const together = performance.now();
    const runs = await Promise.all(
      result.exports.map((e, i) => {
        const account = state!.accounts[i]!;
        return runBaseline(account.shardFile, baselineSql(account.shardFile, jobs[i]!), join(outDir, `sqlite3-${e.username}-together.sql`), join(outDir, `sqlite3-${e.username}-together.ndjson`));
      }),
    );
    result.sqlite3 = { togetherWallSeconds: (performance.now() - together) / 1000 };
    runs.forEach((r, i) => {
      result.exports[i]!.sqlite3TogetherSeconds = r.seconds;
      rmSync(r.outFile, { force: true });
    });
    log(`  all done in ${fmt(result.sqlite3.togetherWallSeconds, 2)} s (${runs.map((r) => `${fmt(r.seconds, 2)} s`).join(", ")})`);

    for (const e of result.exports) {
      log(`comparing ${e.username}'s export with sqlite3's records`);
      e.check = await compareOutputs(join(outDir, `export-${e.username}.json`), join(outDir, `sqlite3-${e.username}.ndjson`));
    }
    result.ok = result.exports.every((e) => e.check?.ok);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    if (!o.keep) {
      rmSync(outDir, { recursive: true, force: true });
      if (state) rmSync(state.stateDir, { recursive: true, force: true });
    }
  }
  return result;
}

function countReloads(file: string): number {
  try {
    return (readFileSync(file, "utf8").match(/Reloading local server/g) ?? []).length;
  } catch {
    return 0;
  }
}

/** Date.now() when each job's request was sent, to place export_jobs' timestamps (workerd's clock) on the request. */
const requestWallClock = new Map<string, number>();

function jobTimes(job: JobRow, requestedAt: number): Pick<ExportReport, "startedAfterSeconds" | "completedAfterSeconds"> {
  return {
    startedAfterSeconds: job.startedAt === null ? null : (job.startedAt - requestedAt) / 1000,
    completedAfterSeconds: job.completedAt === null ? null : (job.completedAt - requestedAt) / 1000,
  };
}

/** One wrangler dev session: idle probes, then every account's export requested at once, probed until the last webhook. */
async function exportAll(o: ShardsOptions, state: BenchState, result: LayoutResult, outDir: string): Promise<void> {
  const receiver = new WebhookReceiver(o.webhookPort);
  await receiver.listen();
  let dev: DevServer | undefined;
  const first = state.accounts[0]!;
  const probers = makeProbers(() => dev!.baseUrl, first, o.probeRate);
  try {
    log(`starting wrangler dev on port ${o.port} (API, export and mailer workers; log: ${relative(ROOT, result.wranglerLog)})`);
    dev = await startWranglerDev({
      configs: SERVICE_CONFIGS,
      stateDir: state.stateDir,
      port: o.port,
      vars: sessionVars(o.port, o.userVars),
      sessionDir: o.sessionDir,
      registryDir: o.registryDir,
      logFile: result.wranglerLog,
      ready: apiReady(first),
    });
    const { idleBytes, idle } = await measureIdle(dev, probers, o.probeRate, ` as ${first.username}`);
    result.api = { idle, during: [] };

    const reloads = dev.watchReloads();
    const threads = new ThreadCpuSampler(dev.pid);
    let threadReport: ThreadReport | undefined;
    const started = performance.now();
    try {
      // Every request at the same moment: sent together, not one after the other's answer.
      const accepted = await Promise.all(
        state.accounts.map(async (account) => {
          const at = performance.now();
          const wall = Date.now();
          const res = await api(dev!.baseUrl, account, "Segments", "GetSegmentSubscribersAsync", {
            segmentid: account.segmentIds.map(String),
            customfields: "all",
            include_membership: "yes",
            format: "json",
            notify: { type: "webhook", value: receiver.url },
          });
          if (res.status !== 200 || res.response.status !== "SUCCESS") {
            throw new Error(`GetSegmentSubscribersAsync for ${account.username} answered ${res.status}: ${JSON.stringify(res.response)}`);
          }
          const jobId = res.response.data.jobid as string;
          requestWallClock.set(jobId, wall);
          return { account, jobId, at, acceptSeconds: (performance.now() - at) / 1000 };
        }),
      );
      for (const p of probers) p.start("during exports");
      log(`${accepted.map((a) => `${a.account.username}: job ${a.jobId} accepted in ${fmt(a.acceptSeconds * 1000)} ms`).join("; ")}; waiting for ${accepted.length} webhooks`);

      // The webhooks, in any order: each is matched to its job by the account whose secret verifies it.
      const arrivals = new Map<string, { arrival: WebhookArrival; event: any }>();
      const deadline = started + o.timeoutMs;
      while (arrivals.size < accepted.length) {
        const arrival = await withTimeout(Promise.race([receiver.next(), reloads.reloaded]), Math.max(1, deadline - performance.now()), "the webhooks");
        const match = accepted
          .map((a) => ({ a, event: verifyWebhook(a.account.webhookSecret, arrival) }))
          .find((m) => m.event && m.event.data?.jobid === m.a.jobId);
        if (!match) throw new Error(`a webhook that verifies for none of the jobs: ${arrival.body.slice(0, 300)}`);
        if (match.event.type !== "segment_export.completed") {
          throw new Error(`${match.a.account.username}'s export failed: ${match.event.type}: ${match.event.data?.errormessage ?? JSON.stringify(match.event.data)}`);
        }
        if (arrivals.has(match.a.jobId)) throw new Error(`a second completed webhook for ${match.a.account.username}'s job ${match.a.jobId}`);
        arrivals.set(match.a.jobId, { arrival, event: match.event });
        log(`webhook for ${match.a.account.username} (signature verified) after ${fmt((arrival.arrivedAt - match.a.at) / 1000, 2)} s: count ${fmt(match.event.data.count)}`);
      }
      const lastArrival = Math.max(...[...arrivals.values()].map((v) => v.arrival.arrivedAt));
      const firstSent = Math.min(...accepted.map((a) => a.at));
      threadReport = threads.stop();
      result.api.during = await Promise.all(probers.map((p) => p.stop()));
      dev.memory.sample();
      const rss = dev.memory.report();
      result.wallSeconds = (lastArrival - firstSent) / 1000;
      result.threads = threadReport;

      for (const a of accepted) {
        const { arrival, event } = arrivals.get(a.jobId)!;
        const file = join(outDir, `export-${a.account.username}.json`);
        const got = await download(event.data.url, file);
        log(`downloaded ${a.account.username}'s file: ${mib(got.bytes)} in ${fmt(got.seconds, 2)} s`);
        result.exports.push({
          username: a.account.username,
          accountId: a.account.id,
          shard: a.account.shard,
          jobId: a.jobId,
          jobShard: null,
          count: event.data.count,
          acceptSeconds: a.acceptSeconds,
          seconds: (arrival.arrivedAt - a.at) / 1000,
          startedAfterSeconds: null,
          completedAfterSeconds: null,
          slices: 0,
          outputBytes: got.bytes,
          downloadSeconds: got.seconds,
        });
      }
      result.rowsPerSecond = result.exports.reduce((t, e) => t + e.count, 0) / result.wallSeconds;
      const withDownload = dev.memory.stop();
      result.memory = { idleBytes, peakBytes: rss.peakBytes, perProcess: rss.perProcess, peakWithDownloadBytes: withDownload.peakBytes };
      const extra = receiver.received.length - accepted.length;
      if (extra > 0) log(`NOTE: ${receiver.received.length} webhooks arrived for ${accepted.length} exports`);
    } finally {
      reloads.stop();
      if (!threadReport) threads.stop();
    }
  } finally {
    await dev?.stop();
    if (dev) log("wrangler dev stopped");
    await receiver.close();
  }
}

function printLayout(r: LayoutResult) {
  const lines: Array<[string, string]> = [["layout", `${r.layout.label}: ${r.layout.placements.map((s, k) => `account ${k + 1} on ${s}`).join(", ")}; ${fmt(r.n)} contacts each`]];
  if (r.dataset) {
    const [s1, ...others] = r.dataset.stats;
    if (s1) {
      lines.push([
        "dataset (sqlite3)",
        `each account: segments ${s1.segments.map((s) => fmt(s.contacts)).join(", ")}; overlaps ${s1.overlaps.map((x) => fmt(x.contacts)).join(", ")}; union ${fmt(s1.union)} ` +
          `(${fmt((100 * s1.union) / s1.contacts, 1)} %); subscribed ${s1.minSubscribeDate.slice(0, 10)} .. ${s1.maxSubscribeDate.slice(0, 10)}` +
          (others.length ? `; segment ids ${r.dataset.stats.map((s) => s.segments.map((x) => x.id).join("/")).join(" and ")}` : ""),
      ]);
    }
    const held = r.dataset.layoutChecks.filter((c) => c.ok).length;
    lines.push(["layout checks (sqlite3)", `${held}/${r.dataset.layoutChecks.length} hold${r.dataset.reused ? " (kept dataset)" : ` (built in ${fmt(r.dataset.buildSeconds, 1)} s)`}`]);
    for (const c of r.dataset.layoutChecks) lines.push(["", `  ${c.ok ? "holds" : "DOES NOT HOLD"}: ${c.what}${c.detail ? ` (${c.detail})` : ""}`]);
  }
  for (const e of r.exports) {
    lines.push([
      `export ${e.username} (${e.shard})`,
      `${fmt(e.count)} rows in ${fmt(e.seconds, 2)} s, request -> webhook (accepted in ${fmt(e.acceptSeconds * 1000)} ms; ` +
        `first slice began ${e.startedAfterSeconds === null ? "-" : `+${fmt(e.startedAfterSeconds, 1)} s`}, completed ${e.completedAfterSeconds === null ? "-" : `+${fmt(e.completedAfterSeconds, 1)} s`}; ` +
        `${e.slices} slice(s); read ${e.jobShard ?? "-"}); ${mib(e.outputBytes)}`,
    ]);
  }
  if (r.wallSeconds !== undefined) {
    lines.push(["wall time", `${fmt(r.wallSeconds, 2)} s (first request -> last webhook)`]);
    lines.push(["rows/s", `${fmt(r.rowsPerSecond ?? 0)} (all exports' rows / wall time)`]);
  }
  if (r.memory) {
    lines.push(["peak RSS of workerd (VmHWM)", `${mib(r.memory.peakBytes)} (idle before the requests ${mib(r.memory.idleBytes)}; ${r.memory.perProcess.length} workerd processes: ${r.memory.perProcess.map((p) => mib(p.peakBytes)).join(", ")}); with the downloads ${mib(r.memory.peakWithDownloadBytes)}`]);
  }
  if (r.threads) lines.push(["workerd threads (CPU)", describeThreads(r.threads)]);
  if (r.api) {
    for (const [phase, list] of [["idle", r.api.idle], ["during exports", r.api.during]] as const) {
      for (const p of list) lines.push([`API ${phase}: ${p.name}`, describeProbe(p)]);
    }
  }
  if (r.sqlite3) {
    lines.push([
      "sqlite3",
      `alone: ${r.exports.map((e) => `${e.username} ${fmt(e.sqlite3AloneSeconds ?? NaN, 2)} s`).join(", ")}; all at once: ${fmt(r.sqlite3.togetherWallSeconds, 2)} s wall (${r.exports.map((e) => `${fmt(e.sqlite3TogetherSeconds ?? NaN, 2)} s`).join(", ")})`,
    ]);
  }
  for (const e of r.exports) {
    if (!e.check) continue;
    lines.push([
      `check ${e.username}`,
      e.check.ok
        ? `OK (${fmt(e.check.exportCount)} rows both; same emails; same records${e.check.exportAscending ? "" : "; export not in id order"})`
        : `MISMATCH\n    ${e.check.problems.join("\n    ")}`,
    ]);
  }
  if (r.error) lines.push(["FAILED", r.error]);
  lines.push([
    "wrangler log",
    `${relative(ROOT, r.wranglerLog)} (${r.logErrors.length} error line(s))` +
      (r.reloadsAfterWebhooks ? `; wrangler reloaded the workers ${r.reloadsAfterWebhooks} time(s) after the last webhook (a watched file changed, e.g. an npm install): the figures above stop at the webhook, but a download cut by it was slow` : ""),
  ]);
  for (const line of r.logErrors.slice(0, 5)) lines.push(["", `  ${line.slice(0, 300)}`]);
  const width = Math.max(...lines.map(([k]) => k.length));
  console.log(lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n"));
}

function describeThreads(t: ThreadReport): string {
  const [top, second] = t.threads;
  const all = t.threads.reduce((s, x) => s + x.cpuSeconds, 0);
  if (!top) return "no CPU time read";
  return (
    `busiest thread (${top.name}, tid ${top.tid}) ${fmt(top.cpuSeconds, 1)} s CPU in ${fmt(t.wallSeconds, 1)} s (${fmt((100 * top.cpuSeconds) / t.wallSeconds)} %); ` +
    `next ${second ? `${fmt(second.cpuSeconds, 1)} s (${second.name})` : "none"}; all ${t.threads.length} busy threads ${fmt(all, 1)} s; ` +
    `per second: one thread >= 90 % in ${t.intervalsOneThreadSaturated} of ${t.intervals}, two threads >= 50 % at once in ${t.intervalsTwoThreadsBusy}`
  );
}

function printComparison(results: LayoutResult[]) {
  const usernames = results.find((r) => r.exports.length)?.exports.map((e) => e.username) ?? [];
  const header = ["layout", ...usernames.map((u) => `${u} s`), "wall s", "rows/s", "peak RSS", "APITest p50 / p99", "404 p50 / p99", "busiest thread", "sqlite3 alone / at once", "check"];
  const during = (r: LayoutResult, name: string) => r.api?.during.find((p) => p.name === name);
  const rows = results.map((r) => [
    r.layout.label,
    ...usernames.map((u) => {
      const e = r.exports.find((x) => x.username === u);
      return e ? fmt(e.seconds, 2) : "-";
    }),
    r.wallSeconds !== undefined ? fmt(r.wallSeconds, 2) : "-",
    r.rowsPerSecond !== undefined ? fmt(r.rowsPerSecond) : "-",
    r.memory ? mib(r.memory.peakBytes) : "-",
    `${ms(during(r, "APITest")?.p50Ms)} / ${ms(during(r, "APITest")?.p99Ms)}`,
    `${ms(during(r, "unknown path")?.p50Ms)} / ${ms(during(r, "unknown path")?.p99Ms)}`,
    r.threads?.threads[0] ? `${fmt((100 * r.threads.threads[0].cpuSeconds) / r.threads.wallSeconds)} %` : "-",
    r.sqlite3 ? `${fmt(r.exports.reduce((t, e) => t + (e.sqlite3AloneSeconds ?? 0), 0), 1)} / ${fmt(r.sqlite3.togetherWallSeconds, 1)} s` : "-",
    r.error ? "FAILED" : r.ok ? "OK" : "MISMATCH",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  console.log("\n=== shards: summary ===");
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
  console.log(`(sqlite3 alone: the sum of the queries run one after the other; at once: their wall time run together)`);
  const [one, spread] = results;
  if (one?.wallSeconds !== undefined && spread?.wallSeconds !== undefined) {
    console.log(
      `${spread.layout.label} vs ${one.layout.label}: wall time ${fmt(spread.wallSeconds, 2)} s / ${fmt(one.wallSeconds, 2)} s = ${fmt(spread.wallSeconds / one.wallSeconds, 2)} ` +
        `(${spread.wallSeconds < one.wallSeconds ? `${fmt(100 * (1 - spread.wallSeconds / one.wallSeconds), 1)} % faster` : `${fmt(100 * (spread.wallSeconds / one.wallSeconds - 1), 1)} % slower`})`,
    );
  } else {
    console.log(`comparison: not available (a layout failed)`);
  }
  for (const r of results) {
    const ex = r.exports.filter((e) => e.startedAfterSeconds !== null && e.completedAfterSeconds !== null);
    if (ex.length < 2) continue;
    // Did the exports run side by side? From export_jobs: each job's first claim and completion.
    const spans = ex.map((e) => `${e.username} +${fmt(e.startedAfterSeconds!, 1)} .. +${fmt(e.completedAfterSeconds!, 1)} s`);
    const overlap = Math.max(0, Math.min(...ex.map((e) => e.completedAfterSeconds!)) - Math.max(...ex.map((e) => e.startedAfterSeconds!)));
    console.log(`${r.layout.label}: jobs ran ${spans.join(", ")} after the requests; overlap ${fmt(overlap, 1)} s`);
  }
}

