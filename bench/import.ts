/**
 * `npm run bench -- --import`: imports N contacts end to end through local wrangler dev
 * (Subscribers/ImportSubscribersAsync → PUT to the upload link → R2 → queue → export worker → D1 → webhook),
 * checks that the shard holds exactly the file's records, exports them again (a segment over the list, NDJSON)
 * and checks that the export gives back the file's records, then loads the same rows with one sqlite3 process
 * into a fresh SQLite file of the same schema and compares the times. See bench/README.md ("Import benchmark").
 *
 *   npm run bench -- --import                       # N = 100,000 then 1,000,000
 *   npm run bench -- --import --contacts 20000      # one size (or a comma-separated list)
 *   npm run bench -- --import --keep                # keep .bench/import-<N>/ (the file is reused next time)
 *   npm run bench -- --import --gzip-only           # skip the second, uncompressed import
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { hashToken } from "../src/api/auth";
import { readJob } from "./baseline";
import { api, apiReady, describeProbe, download, fmt, log, makeProbers, measureIdle, met, mib, ms, sessionVars, verifyWebhook, withTimeout } from "./common";
import { BENCH_TOKEN, BENCH_USERNAME, FIELDS, ROOT } from "./dataset";
import {
  baselineSchemaSql,
  checkContactsFile,
  compareStoredRows,
  describeImportDataset,
  gzipFile,
  IMPORT_DATASET_VERSION,
  importDatasetProblems,
  sha256File,
  TAG_NAMES,
  timeSqlite3,
  writeBaselineScript,
  writeContactsFile,
  type ImportDatasetStats,
  type ImportIds,
  type StoredCheck,
} from "./import_dataset";
import { CONTROL_BINDING, d1Bindings, migrateStateDir } from "./layout";
import type { ProbeStats } from "./probes";
import type { RssReport } from "./processes";
import { sqlite, sqliteJson, sqlString } from "./sqlite";
import { canonicalJson } from "./verify";
import { logErrors, SERVICE_CONFIGS, startWranglerDev, WebhookReceiver, workerdV8Flags, type DevServer, type WebhookArrival } from "./wrangler_dev";

export interface ImportBenchOptions {
  sizes: number[];
  keep: boolean;
  /** Skip the second import of each size, of the uncompressed file. */
  gzipOnly: boolean;
  port: number;
  webhookPort: number;
  timeoutMs: number;
  progressSeconds: number;
  probeRate: number;
  userVars: ReadonlyArray<readonly [string, string]>;
  benchDir: string;
  sessionDir: string;
  registryDir: string;
  historyFile: string;
}

/** Targets of issue 10, item 5. */
export const IMPORT_TARGETS = {
  importOverSqlite3: 4,
  rssGrowth: 1.3,
  /** The export benchmark's latency targets, printed for reference. */
  apiTestP99Ms: 250,
  unknownPathP99Ms: 100,
};

const LIST_NAME = "Import benchmark";
const SEGMENT_NAME = "Everyone on the import benchmark's list";

interface ImportRun {
  compression: "gzip" | "none";
  fileBytes: number;
  jobId?: string;
  acceptSeconds?: number;
  /** The PUT: request start → its answer (the worker has stored the file in R2 and queued the import). */
  uploadSeconds?: number;
  uploadAnswer?: unknown;
  /** PUT start → the webhook's arrival. */
  importSeconds?: number;
  /** Date.now() when the PUT began. */
  putStartedAtMs?: number;
  /** export_jobs.started_at → completed_at (the worker's own clock). */
  jobSeconds?: number;
  /** PUT answered → started_at: the queue's delivery. */
  queueSeconds?: number;
  /** completed_at → webhook's arrival. */
  notifySeconds?: number;
  slices?: number;
  rowsPerSecond?: number;
  /** With --progress: the status call's rows, seconds after the PUT began (answered between the import's batches). */
  progress?: Array<{ seconds: number; rows: number; status: string }>;
  webhook?: { verified: boolean; type: string; data: Record<string, unknown> };
  /** Webhooks about the import received by the end of its session (one expected). */
  webhooks?: number;
  status?: Record<string, unknown>;
  counts?: { rows: number; added: number; updated: number; rejected: number };
  countsOk?: boolean;
  memory?: { idleBytes: number; afterUploadBytes: number; peakBytes: number; peakTotalRssBytes: number; perProcess: RssReport["perProcess"]; samples: number };
  api?: { idle: ProbeStats[]; during: ProbeStats[] };
  stored?: StoredCheck;
  /** Rows of the account on the other shards (must be 0), and ledger rows left (forgotten when the import ends). */
  elsewhere?: Record<string, number>;
  ledgerRowsLeft?: number;
  wranglerLog: string;
  logErrors: string[];
  error?: string;
}

interface RoundTrip {
  segmentId: string;
  jobId: string;
  exportSeconds: number;
  count: number;
  bytes: number;
  /** Records equal to the file's line at the same position, subscriberid removed: as text, and as canonical JSON. */
  exactText: number;
  equalJson: number;
  records: number;
  lines: number;
  ascendingIds: boolean;
  problems: string[];
  ok: boolean;
}

interface ImportResult {
  n: number;
  ok: boolean;
  /** The machine's load average (1, 5, 15 min) when the size began and ended: other work on the machine. */
  load?: { start: number[]; end: number[] };
  error?: string;
  dataset: { reused: boolean; generateSeconds: number; gzipSeconds: number; ndjsonBytes: number; gzipBytes: number; stats: ImportDatasetStats };
  ids?: ImportIds;
  gzip?: ImportRun;
  plain?: ImportRun;
  roundTrip?: RoundTrip;
  sqlite3?: { seconds: number; scriptBytes: number; scriptSeconds: number; rows: number; memberships: number; check: StoredCheck };
  /** gzip import (PUT → webhook) / sqlite3; and the job alone (started_at → completed_at) / sqlite3. */
  ratio?: number;
  jobRatio?: number;
}

interface Marker {
  version: number;
  n: number;
  ndjson: { sha256: string; bytes: number };
  gzip: { sha256: string; bytes: number };
  stats: ImportDatasetStats;
  generateSeconds: number;
  gzipSeconds: number;
}

/** The file of N contacts (and its gzip), generated and checked, or reused when kept and unchanged. */
async function ensureImportDataset(n: number, dir: string, reuse: boolean): Promise<ImportResult["dataset"] & { file: string; gzFile: string }> {
  const file = join(dir, "contacts.ndjson");
  const gzFile = `${file}.gz`;
  const markerFile = join(dir, "dataset.json");
  if (reuse && existsSync(markerFile) && existsSync(file) && existsSync(gzFile)) {
    const marker = JSON.parse(readFileSync(markerFile, "utf8")) as Marker;
    if (marker.version === IMPORT_DATASET_VERSION && marker.n === n && statSync(file).size === marker.ndjson.bytes && statSync(gzFile).size === marker.gzip.bytes) {
      log(`reusing the file ${relative(ROOT, file)} (kept by an earlier --keep run); checking that it is the one that was checked`);
      const [a, b] = await Promise.all([sha256File(file), sha256File(gzFile)]);
      if (a === marker.ndjson.sha256 && b === marker.gzip.sha256) {
        for (const line of describeImportDataset(marker.stats)) log(`  ${line}`);
        return { reused: true, generateSeconds: marker.generateSeconds, gzipSeconds: marker.gzipSeconds, ndjsonBytes: marker.ndjson.bytes, gzipBytes: marker.gzip.bytes, stats: marker.stats, file, gzFile };
      }
      log("  its sha-256 differs from the checked file's: generating it again");
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`generating ${fmt(n)} contacts as NDJSON in ${relative(ROOT, file)}`);
  let started = performance.now();
  await writeContactsFile(file, n);
  const generateSeconds = (performance.now() - started) / 1000;
  log(`  written in ${fmt(generateSeconds, 1)} s (${mib(statSync(file).size)}); checking what it holds (read back from disk)`);
  const stats = await checkContactsFile(file);
  for (const line of describeImportDataset(stats)) log(`  ${line}`);
  const problems = importDatasetProblems(stats, n);
  if (problems.length) throw new Error(`the generated file does not hold its claims:\n  ${problems.join("\n  ")}`);
  log(`  claims hold (checked in ${fmt(stats.seconds, 1)} s): ${fmt(n)} lines, ${fmt(n)} distinct emails, every field's values of its type, the statuses, dates and tags above`);
  started = performance.now();
  await gzipFile(file, gzFile);
  const gzipSeconds = (performance.now() - started) / 1000;
  // The gzip must give back the file: gunzip (the CLI, as a client would check it) and compare.
  const same = spawnSync("bash", ["-c", 'gunzip -c "$1" | cmp -s - "$2"', "compare", gzFile, file]);
  if (same.status !== 0) throw new Error(`gunzip of ${gzFile} is not ${file}`);
  log(`  gzip (node:zlib, level 6) in ${fmt(gzipSeconds, 1)} s: ${mib(statSync(gzFile).size)} (${fmt((100 * statSync(gzFile).size) / stats.bytes, 1)} % of ${mib(stats.bytes)}); gunzip gives the file back`);
  const marker: Marker = {
    version: IMPORT_DATASET_VERSION,
    n,
    ndjson: { sha256: stats.sha256, bytes: stats.bytes },
    gzip: { sha256: await sha256File(gzFile), bytes: statSync(gzFile).size },
    stats,
    generateSeconds,
    gzipSeconds,
  };
  writeFileSync(markerFile, JSON.stringify(marker, null, 2));
  return { reused: false, generateSeconds, gzipSeconds, ndjsonBytes: stats.bytes, gzipBytes: marker.gzip.bytes, stats, file, gzFile };
}

/** A fresh state: the migrations (as npm run dev applies them), one account placed on SHARD_0, every shard registered. */
async function freshState(stateDir: string): Promise<{ files: Record<string, string>; account: { username: string; usertoken: string; webhookSecret: string; id: number } }> {
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true });
  const files = migrateStateDir(stateDir, log);
  const tokenSalt = randomBytes(16).toString("hex");
  const webhookSecret = `whsec_${randomBytes(32).toString("base64")}`;
  const id = 1;
  sqlite(
    files[CONTROL_BINDING]!,
    `PRAGMA foreign_keys = ON;
.bail on
BEGIN;
INSERT INTO shards (name) VALUES ${d1Bindings().shards.map((s) => `(${sqlString(s)})`).join(", ")};
INSERT INTO accounts (id, username, token_salt, token_hash, webhook_secret)
  VALUES (${id}, ${sqlString(BENCH_USERNAME)}, ${sqlString(tokenSalt)}, ${sqlString(await hashToken(tokenSalt, BENCH_TOKEN))}, ${sqlString(webhookSecret)});
INSERT INTO account_directory (account_id, shard, updated_at) VALUES (${id}, 'SHARD_0', 0);
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
`,
  );
  log(`account ${id} (${BENCH_USERNAME}) written into the control database, placed on SHARD_0`);
  return { files, account: { username: BENCH_USERNAME, usertoken: BENCH_TOKEN, webhookSecret, id } };
}

/** An API call that must succeed; its data. */
async function must(baseUrl: string, account: { username: string; usertoken: string }, type: string, method: string, details?: unknown): Promise<any> {
  const res = await api(baseUrl, account, type, method, details);
  if (res.status !== 200 || res.response.status !== "SUCCESS") throw new Error(`${type}/${method} answered ${res.status}: ${JSON.stringify(res.response).slice(0, 400)}`);
  return res.response.data;
}

/** The list, the fields and the tags, through the API, as a client would set them up. */
async function setUpAccount(baseUrl: string, account: { id: number; username: string; usertoken: string }): Promise<ImportIds> {
  const list = await must(baseUrl, account, "Lists", "CreateList", { name: LIST_NAME });
  const fieldIds: Record<string, number> = {};
  for (const f of FIELDS) fieldIds[f.name] = Number((await must(baseUrl, account, "Lists", "CreateCustomField", { name: f.name, type: f.type })).fieldid);
  const tagIds: Record<string, number> = {};
  for (const t of TAG_NAMES) tagIds[t] = Number((await must(baseUrl, account, "Tags", "CreateTags", { name: t })).tagid);
  const ids = { accountId: account.id, listId: Number(list.listid), fieldIds, tagIds };
  log(`through the API: list ${ids.listId} (CreateList), fields ${Object.values(fieldIds).join(", ")} (CreateCustomField), tags ${Object.values(tagIds).join(", ")} (CreateTags)`);
  return ids;
}

/** The next webhook about `jobId` (verified with the account's secret); others (or unverifiable ones) are passed over. */
async function webhookFor(receiver: WebhookReceiver, secret: string, jobId: string): Promise<WebhookArrival> {
  for (;;) {
    const arrival = await receiver.next();
    if (verifyWebhook(secret, arrival)?.data?.jobid === jobId) return arrival;
    log(`  a webhook not about job ${jobId} arrived (passed over): ${arrival.body.slice(0, 200)}`);
  }
}

/** PUTs a file to the upload link on a connection of its own; the answer's status and JSON. */
function putFile(url: string, file: string, contentType: string): Promise<{ status: number; body: any; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "PUT", agent: false, headers: { "content-type": contentType, "content-length": statSync(file).size } }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: any;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, text });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    createReadStream(file, { highWaterMark: 1024 * 1024 }).on("error", reject).pipe(req);
  });
}

/**
 * One import in a fresh wrangler dev session: set-up through the API, idle probes, ImportSubscribersAsync, the PUT,
 * the webhook (probing the API meanwhile), the status call; with `roundTrip`, then the segment's export. Then
 * wrangler dev is stopped, and the job row and the shard are read with sqlite3.
 */
async function importSession(
  o: ImportBenchOptions,
  n: number,
  label: string,
  stateDir: string,
  file: string,
  compression: "gzip" | "none",
  contactsFile: string,
  roundTripFile: string | null,
): Promise<{ run: ImportRun; ids?: ImportIds; roundTrip?: RoundTrip; shardFile?: string }> {
  const run: ImportRun = { compression, fileBytes: statSync(file).size, wranglerLog: join(o.benchDir, `wrangler-import-${label}.log`), logErrors: [] };
  let ids: ImportIds | undefined;
  let roundTrip: RoundTrip | undefined;
  let shardFile: string | undefined;
  const { files, account } = await freshState(stateDir);
  const controlFile = files[CONTROL_BINDING]!;
  shardFile = files.SHARD_0!;
  const receiver = new WebhookReceiver(o.webhookPort);
  await receiver.listen();
  let dev: DevServer | undefined;
  const probers = makeProbers(() => dev!.baseUrl, account, o.probeRate);
  let exportJobId: string | undefined;
  try {
    log(`starting wrangler dev on port ${o.port} (state ${relative(ROOT, stateDir)}; workerd V8 flags: ${workerdV8Flags() || "none"}; log ${relative(ROOT, run.wranglerLog)})`);
    dev = await startWranglerDev({
      configs: SERVICE_CONFIGS,
      stateDir,
      port: o.port,
      vars: sessionVars(o.port, o.userVars),
      sessionDir: o.sessionDir,
      registryDir: o.registryDir,
      logFile: run.wranglerLog,
      ready: apiReady(account),
    });
    ids = await setUpAccount(dev.baseUrl, account);
    const { idleBytes, idle } = await measureIdle(dev, probers, o.probeRate);
    run.api = { idle, during: [] };

    const asked = performance.now();
    const accepted = await must(dev.baseUrl, account, "Subscribers", "ImportSubscribersAsync", {
      list: String(ids.listId),
      format: "ndjson",
      compression,
      update_if_exists: true,
      source: "upload",
      notify: { type: "webhook", value: receiver.url },
    });
    run.acceptSeconds = (performance.now() - asked) / 1000;
    const jobId = String(accepted.jobid);
    run.jobId = jobId;
    if (accepted.status !== "awaiting_upload" || !accepted.upload?.url) throw new Error(`ImportSubscribersAsync answered no upload link: ${JSON.stringify(accepted)}`);
    log(`import ${jobId} accepted in ${ms(run.acceptSeconds * 1000)}; PUT of ${mib(run.fileBytes)} (${compression === "gzip" ? "gzip" : "uncompressed"} NDJSON) to its upload link`);

    const reloads = dev.watchReloads();
    for (const p of probers) p.start("during import");
    const started = performance.now();
    run.putStartedAtMs = Date.now();
    let polling = false;
    const progress =
      o.progressSeconds > 0
        ? setInterval(() => {
            if (polling || !dev) return;
            polling = true;
            api(dev.baseUrl, account, "Subscribers", "ImportSubscribersAsyncStatus", { jobid: jobId })
              .then(({ response }) => {
                const d = response.data;
                if (!d) return;
                const seconds = (performance.now() - started) / 1000;
                (run.progress ??= []).push({ seconds, rows: d.rows ?? 0, status: String(d.status) });
                log(`  ${d.status}: ${fmt(d.rows ?? 0)} rows (added ${fmt(d.added ?? 0)}) after ${fmt(seconds, 1)} s`);
              })
              .catch(() => {})
              .finally(() => (polling = false));
          }, o.progressSeconds * 1000)
        : undefined;
    let arrival;
    try {
      const put = await Promise.race([putFile(accepted.upload.url, file, compression === "gzip" ? "application/gzip" : "application/x-ndjson"), reloads.reloaded]);
      run.uploadSeconds = (performance.now() - started) / 1000;
      run.uploadAnswer = put.body ?? put.text.slice(0, 300);
      if (put.status !== 200 || put.body?.response?.status !== "SUCCESS") throw new Error(`the PUT answered ${put.status}: ${put.text.slice(0, 400)}`);
      if (put.body.response.data.bytes !== run.fileBytes) throw new Error(`the PUT stored ${put.body.response.data.bytes} bytes of ${run.fileBytes}`);
      dev.memory.sample();
      const afterUploadBytes = dev.memory.report().peakBytes;
      log(`uploaded in ${fmt(run.uploadSeconds, 2)} s (${put.body.response.data.status}); waiting for the webhook${probers.length ? " (probing the API meanwhile)" : ""}`);
      arrival = await withTimeout(Promise.race([webhookFor(receiver, account.webhookSecret, jobId), reloads.reloaded]), o.timeoutMs, "the import's webhook");
      run.importSeconds = (arrival.arrivedAt - started) / 1000;
      dev.memory.sample();
      const rss = dev.memory.report();
      run.memory = { idleBytes, afterUploadBytes, peakBytes: rss.peakBytes, peakTotalRssBytes: rss.peakTotalRssBytes, perProcess: rss.perProcess, samples: rss.samples };
    } finally {
      clearInterval(progress);
      reloads.stop();
      run.api.during = await Promise.all(probers.map((p) => p.stop()));
    }
    const event = verifyWebhook(account.webhookSecret, arrival);
    run.webhook = { verified: !!event, type: String(event?.type), data: event?.data ?? {} };
    if (!event) throw new Error("the import's webhook does not verify");
    if (event.data?.jobid !== jobId) throw new Error(`the webhook is about job ${event.data?.jobid}, not ${jobId}`);
    if (event.type !== "subscriber_import.completed") throw new Error(`the import failed: ${event.type}: ${event.data?.errormessage ?? JSON.stringify(event.data)}`);
    run.rowsPerSecond = n / run.importSeconds!;
    log(`webhook ${event.type} (signature verified) ${fmt(run.importSeconds!, 2)} s after the PUT began: rows ${fmt(event.data.rows)}, added ${fmt(event.data.added)}, updated ${fmt(event.data.updated)}, rejected ${fmt(event.data.rejected)}`);

    const status = await must(dev.baseUrl, account, "Subscribers", "ImportSubscribersAsyncStatus", { jobid: jobId });
    run.status = status;
    run.counts = { rows: status.rows, added: status.added, updated: status.updated, rejected: status.rejected };
    run.countsOk =
      status.status === "complete" &&
      status.rows === n &&
      status.added === n &&
      status.updated === 0 &&
      status.rejected === 0 &&
      event.data.rows === n &&
      event.data.added === n &&
      event.data.rejected === 0;
    log(`ImportSubscribersAsyncStatus: ${status.status}, rows ${fmt(status.rows)}, added ${fmt(status.added)}, updated ${fmt(status.updated)}, rejected ${fmt(status.rejected)}: ${run.countsOk ? "as expected" : "NOT as expected"}`);

    if (roundTripFile) {
      log("the round trip: a segment over the list, exported as NDJSON");
      const segment = await must(dev.baseUrl, account, "Segments", "CreateSegment", {
        name: SEGMENT_NAME,
        rules: { match: "all", rules: [{ field: "list", operator: "equals", value: ids.listId }] },
      });
      const exportStarted = performance.now();
      const exp = await must(dev.baseUrl, account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: [String(segment.segmentid)],
        customfields: "all",
        include_membership: "yes",
        format: "ndjson",
        notify: { type: "webhook", value: receiver.url },
      });
      exportJobId = String(exp.jobid);
      const reloads2 = dev.watchReloads();
      let exportArrival;
      try {
        exportArrival = await withTimeout(Promise.race([webhookFor(receiver, account.webhookSecret, exportJobId), reloads2.reloaded]), o.timeoutMs, "the export's webhook");
      } finally {
        reloads2.stop();
      }
      const exportSeconds = (exportArrival.arrivedAt - exportStarted) / 1000;
      const exportEvent = verifyWebhook(account.webhookSecret, exportArrival);
      if (exportEvent?.type !== "segment_export.completed" || exportEvent.data?.jobid !== exportJobId) {
        throw new Error(`the export's webhook: ${exportEvent ? `${exportEvent.type} for ${exportEvent.data?.jobid}` : "signature does not verify"}`);
      }
      const { bytes } = await download(exportEvent.data.url, roundTripFile);
      log(`exported ${fmt(exportEvent.data.count)} records in ${fmt(exportSeconds, 2)} s (${mib(bytes)}); comparing them with the file`);
      roundTrip = { ...(await compareRoundTrip(roundTripFile, contactsFile)), segmentId: String(segment.segmentid), jobId: exportJobId, exportSeconds, count: exportEvent.data.count, bytes };
      roundTrip.ok &&= roundTrip.count === n;
    }
  } catch (error) {
    run.error = error instanceof Error ? error.message : String(error);
    log(`FAILED: ${run.error}`);
  } finally {
    await dev?.stop();
    if (dev) log("wrangler dev stopped");
    await receiver.close();
    if (run.jobId) run.webhooks = receiver.received.filter((a) => verifyWebhook(account.webhookSecret, a)?.data?.jobid === run.jobId).length;
    run.logErrors = logErrors(run.wranglerLog);
  }

  // After wrangler dev: the job row (the worker's clock) and the shard, read with sqlite3.
  if (run.jobId) {
    try {
      const job = readJob(controlFile, run.jobId);
      run.slices = job.slices;
      if (job.startedAt !== null && job.completedAt !== null) run.jobSeconds = (job.completedAt - job.startedAt) / 1000;
      if (job.startedAt !== null && run.putStartedAtMs !== undefined && run.uploadSeconds !== undefined) {
        run.queueSeconds = (job.startedAt - run.putStartedAtMs) / 1000 - run.uploadSeconds;
      }
      if (job.completedAt !== null && run.putStartedAtMs !== undefined && run.importSeconds !== undefined) {
        run.notifySeconds = run.importSeconds - (job.completedAt - run.putStartedAtMs) / 1000;
      }
      if (job.shard !== "SHARD_0") run.error ??= `the import ran on ${job.shard}, not SHARD_0 (the account's directory entry)`;
    } catch (error) {
      run.error ??= `reading the job: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  if (ids && run.countsOk !== undefined) {
    log(`comparing SHARD_0's subscribers (sqlite3 on ${relative(ROOT, shardFile)}) with the file, record by record`);
    run.stored = await compareStoredRows(shardFile, contactsFile, ids);
    log(`  ${describeStored(run.stored)}`);
    run.elsewhere = {};
    for (const shard of d1Bindings().shards.filter((s) => s !== "SHARD_0")) {
      run.elsewhere[shard] = sqliteJson<{ n: number }>(files[shard]!, `SELECT count(*) AS n FROM subscribers;`)[0]!.n;
    }
    run.ledgerRowsLeft = sqliteJson<{ n: number }>(shardFile, `SELECT count(*) AS n FROM import_batches;`)[0]!.n;
  }
  return { run, ids, roundTrip, shardFile };
}

/** Each export record, subscriberid removed, against the file's line at the same position. */
async function compareRoundTrip(exportFile: string, contactsFile: string): Promise<Omit<RoundTrip, "segmentId" | "jobId" | "exportSeconds" | "count" | "bytes">> {
  const a = createInterface({ input: createReadStream(exportFile, { highWaterMark: 4 * 1024 * 1024 }), crlfDelay: Infinity })[Symbol.asyncIterator]();
  const b = createInterface({ input: createReadStream(contactsFile, { highWaterMark: 4 * 1024 * 1024 }), crlfDelay: Infinity })[Symbol.asyncIterator]();
  let records = 0;
  let lines = 0;
  let exactText = 0;
  let equalJson = 0;
  let lastId = 0;
  let ascendingIds = true;
  const problems: string[] = [];
  const problem = (t: string) => problems.length < 10 && problems.push(t);
  for (;;) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done && y.done) break;
    if (!x.done) records++;
    if (!y.done) lines++;
    if (x.done || y.done) {
      problem(x.done ? `line ${lines} of the file: no record left in the export` : `export record ${records}: no line of the file left`);
      continue;
    }
    const m = /^\{"subscriberid":(\d+),/.exec(x.value);
    const id = m ? Number(m[1]) : NaN;
    if (!(id > lastId)) ascendingIds = false;
    lastId = id;
    const stripped = m ? `{${x.value.slice(m[0].length)}` : x.value;
    if (stripped === y.value) {
      exactText++;
      equalJson++;
      continue;
    }
    const record = JSON.parse(x.value);
    delete record.subscriberid;
    if (canonicalJson(record) === canonicalJson(JSON.parse(y.value))) equalJson++;
    else problem(`record ${records}: ${x.value.slice(0, 300)}\n      file: ${y.value.slice(0, 300)}`);
  }
  return { exactText, equalJson, records, lines, ascendingIds, problems, ok: records === lines && equalJson === lines && ascendingIds };
}

function describeStored(s: StoredCheck): string {
  return (
    `${fmt(s.stored)} rows of the list, ${fmt(s.expected)} lines in the file; ${fmt(s.matching)} equal (email, status, date, every field value by field id, tags), ${fmt(s.mismatched)} differ; ` +
    `ids ${s.firstId} .. ${s.lastId}, ${s.ascending ? "in the file's order" : "NOT in the file's order"}${s.consecutive ? ", consecutive" : ""}; ${fmt(s.memberships)} tag memberships; ${fmt(s.seconds, 1)} s` +
    (s.problems.length ? `\n    ${s.problems.join("\n    ")}` : "")
  );
}

async function benchImportSize(o: ImportBenchOptions, n: number): Promise<ImportResult> {
  console.log(`\n=== import, N = ${fmt(n)} ===`);
  const dir = join(o.benchDir, `import-${n}`);
  const outDir = join(dir, "out");
  const stateDir = join(o.benchDir, `import-state-${n}`);
  const plainStateDir = join(o.benchDir, `import-state-${n}-plain`);
  const result: ImportResult = { n, ok: false, load: { start: loadavg(), end: [] }, dataset: { reused: false, generateSeconds: 0, gzipSeconds: 0, ndjsonBytes: 0, gzipBytes: 0, stats: undefined as never } };
  try {
    const ds = await ensureImportDataset(n, dir, o.keep);
    const { file, gzFile, ...dataset } = ds;
    result.dataset = dataset;
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });

    // 1. The gzip import, then the round trip.
    console.log(`--- the gzip import (${mib(ds.gzipBytes)}: the NDJSON gzip-compressed with node:zlib before the upload) ---`);
    const g = await importSession(o, n, `${n}-gzip`, stateDir, gzFile, "gzip", file, join(outDir, "roundtrip.ndjson"));
    result.gzip = g.run;
    result.ids = g.ids;
    result.roundTrip = g.roundTrip;
    if (g.run.error) throw new Error(`the gzip import: ${g.run.error}`);

    // 2. The baseline: one sqlite3 process loads the same rows into a fresh file of the same schema.
    if (g.ids && g.run.stored) {
      const baselineFile = join(outDir, "baseline.sqlite");
      const scriptFile = join(outDir, "baseline-load.sql");
      rmSync(baselineFile, { force: true });
      sqlite(baselineFile, baselineSchemaSql(g.ids, LIST_NAME));
      log(`sqlite3 baseline: a fresh ${relative(ROOT, baselineFile)} with the shard migrations; writing the rows as SQL (not timed)`);
      const scriptStarted = performance.now();
      const firstId = g.run.stored.firstId ?? 1;
      const script = await writeBaselineScript(file, scriptFile, g.ids, firstId);
      const scriptSeconds = (performance.now() - scriptStarted) / 1000;
      log(`  ${relative(ROOT, scriptFile)}: ${mib(script.bytes)}, ${fmt(script.rows)} subscribers and ${fmt(script.memberships)} tag memberships, ids from ${firstId} (as the import gave them), in ${fmt(scriptSeconds, 1)} s`);
      log("  timing one sqlite3 process: BEGIN; INSERT subscribers …; INSERT subscriber_tags …; COMMIT");
      const seconds = await timeSqlite3(baselineFile, scriptFile);
      log(`  sqlite3 loaded them in ${fmt(seconds, 2)} s; comparing its rows with the file`);
      const check = await compareStoredRows(baselineFile, file, g.ids);
      log(`  ${describeStored(check)}`);
      result.sqlite3 = { seconds, scriptBytes: script.bytes, scriptSeconds, rows: script.rows, memberships: script.memberships, check };
      if (g.run.importSeconds) result.ratio = g.run.importSeconds / seconds;
      if (g.run.jobSeconds) result.jobRatio = g.run.jobSeconds / seconds;
      if (!o.keep) rmSync(scriptFile, { force: true });
    }

    // 3. The same file uncompressed, in a fresh session of its own (an empty list again).
    if (!o.gzipOnly) {
      console.log(`--- the uncompressed import (${mib(ds.ndjsonBytes)}) ---`);
      const p = await importSession(o, n, `${n}-plain`, plainStateDir, file, "none", file, null);
      result.plain = p.run;
    }
    result.ok =
      !!g.run.countsOk &&
      !!g.run.stored?.ok &&
      Object.values(g.run.elsewhere ?? {}).every((c) => c === 0) &&
      !!result.roundTrip?.ok &&
      !!result.sqlite3?.check.ok &&
      (!result.plain || (!result.plain.error && !!result.plain.countsOk && !!result.plain.stored?.ok));
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    result.load!.end = loadavg();
    if (!o.keep) {
      rmSync(dir, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(plainStateDir, { recursive: true, force: true });
    }
  }
  printImportResult(result);
  return result;
}

function describeRun(r: ImportRun, n: number): Array<[string, string]> {
  const lines: Array<[string, string]> = [];
  const what = r.compression === "gzip" ? "gzip" : "uncompressed";
  if (r.uploadSeconds !== undefined) lines.push([`${what}: upload (PUT)`, `${fmt(r.uploadSeconds, 2)} s for ${mib(r.fileBytes)} (${mib(r.fileBytes / r.uploadSeconds)}/s)`]);
  if (r.importSeconds !== undefined) {
    lines.push([
      `${what}: PUT -> webhook`,
      `${fmt(r.importSeconds, 2)} s, ${fmt(n / r.importSeconds)} rows/s; job started_at -> completed_at ${r.jobSeconds !== undefined ? `${fmt(r.jobSeconds, 2)} s (${fmt(n / r.jobSeconds)} rows/s)` : "-"}; ${r.slices ?? "-"} slice(s); ` +
        `PUT answered -> started_at ${r.queueSeconds !== undefined ? `${fmt(r.queueSeconds, 2)} s` : "-"}, completed_at -> webhook ${r.notifySeconds !== undefined ? `${fmt(r.notifySeconds, 2)} s` : "-"}`,
    ]);
  }
  if (r.webhooks !== undefined && r.webhooks !== 1) lines.push([`${what}: webhooks`, `NOTE: ${r.webhooks} webhooks about the import arrived (one expected)`]);
  if (r.counts) lines.push([`${what}: counts`, `rows ${fmt(r.counts.rows)}, added ${fmt(r.counts.added)}, updated ${fmt(r.counts.updated)}, rejected ${fmt(r.counts.rejected)} (webhook and status): ${r.countsOk ? "added = N, rejected = 0" : "NOT added = N, rejected = 0"}`]);
  if (r.memory) {
    lines.push([
      `${what}: peak RSS of workerd`,
      `${mib(r.memory.peakBytes)} (VmHWM; idle before ${mib(r.memory.idleBytes)}, after the upload ${mib(r.memory.afterUploadBytes)}; ${r.memory.perProcess.length} workerd processes: ${r.memory.perProcess.map((p) => mib(p.peakBytes)).join(", ")})`,
    ]);
  }
  for (const [phase, list] of [["idle", r.api?.idle ?? []], ["during import", r.api?.during ?? []]] as const) {
    for (const p of list) {
      lines.push([`${what}: API ${phase}: ${p.name}`, describeProbe(p)]);
      if (phase === "during import" && p.slowest?.length) {
        lines.push(["  slowest (sent at, after the PUT began)", p.slowest.map((c) => `${ms(c.ms)} at ${fmt(c.sentAtSeconds, 1)} s`).join(", ")]);
      }
    }
  }
  if (r.stored) lines.push([`${what}: SHARD_0 vs the file`, `${r.stored.ok ? "EXACT" : "MISMATCH"}: ${describeStored(r.stored)}`]);
  if (r.elsewhere) lines.push([`${what}: other shards`, Object.entries(r.elsewhere).map(([s, c]) => `${s}: ${fmt(c)} subscribers`).join(", ") + `; import_batches ledger rows left: ${r.ledgerRowsLeft}`]);
  if (r.error) lines.push([`${what}: FAILED`, r.error]);
  lines.push([`${what}: wrangler log`, `${relative(ROOT, r.wranglerLog)} (${r.logErrors.length} error line(s))`]);
  for (const l of r.logErrors.slice(0, 5)) lines.push(["", `  ${l.slice(0, 300)}`]);
  return lines;
}

function printImportResult(r: ImportResult) {
  const lines: Array<[string, string]> = [["N", fmt(r.n)]];
  if (r.dataset.stats) {
    lines.push(["file", `${mib(r.dataset.ndjsonBytes)} NDJSON, gzip ${mib(r.dataset.gzipBytes)} (${fmt((100 * r.dataset.gzipBytes) / r.dataset.ndjsonBytes, 1)} %, node:zlib level 6 in ${fmt(r.dataset.gzipSeconds, 1)} s)${r.dataset.reused ? "; reused (--keep)" : ""}`]);
    for (const l of describeImportDataset(r.dataset.stats)) lines.push(["  claims (read back)", l]);
  }
  if (r.gzip) lines.push(...describeRun(r.gzip, r.n));
  if (r.roundTrip) {
    const t = r.roundTrip;
    lines.push([
      "round trip (segment -> NDJSON export)",
      `${t.ok ? "EXACT" : "MISMATCH"}: export ${fmt(t.exportSeconds, 2)} s, ${fmt(t.records)} records for ${fmt(t.lines)} lines; ${fmt(t.equalJson)} equal to their line without subscriberid (${fmt(t.exactText)} byte for byte); ids ${t.ascendingIds ? "ascending" : "NOT ascending"}` +
        (t.problems.length ? `\n    ${t.problems.join("\n    ")}` : ""),
    ]);
  }
  if (r.sqlite3) {
    lines.push(["sqlite3 bulk insert", `${fmt(r.sqlite3.seconds, 2)} s (${fmt(r.sqlite3.rows / r.sqlite3.seconds)} rows/s; ${mib(r.sqlite3.scriptBytes)} of SQL); its rows vs the file: ${r.sqlite3.check.ok ? "EXACT" : "MISMATCH"}`]);
  }
  if (r.ratio !== undefined) lines.push(["import / sqlite3", `${fmt(r.ratio, 2)} (PUT -> webhook); job alone ${r.jobRatio !== undefined ? fmt(r.jobRatio, 2) : "-"} (started_at -> completed_at); target <= ${IMPORT_TARGETS.importOverSqlite3}`]);
  if (r.plain) lines.push(...describeRun(r.plain, r.n));
  if (r.gzip?.importSeconds && r.plain?.importSeconds) lines.push(["uncompressed / gzip", `${fmt(r.plain.importSeconds / r.gzip.importSeconds, 2)} x the time (PUT -> webhook), upload ${fmt(r.plain.uploadSeconds! / r.gzip.uploadSeconds!, 1)} x`]);
  if (r.error) lines.push(["FAILED", r.error]);
  if (r.load) lines.push(["load average (1/5/15 min)", `at the start ${r.load.start.map((l) => l.toFixed(2)).join(" ")}, at the end ${r.load.end.map((l) => l.toFixed(2)).join(" ")} (2 cores; the benchmark itself adds about 1)`]);
  lines.push(["check", r.ok ? "OK" : "NOT OK"]);
  const width = Math.max(...lines.map(([k]) => k.length));
  console.log(lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n"));
}

function apiTargetsOf(run: ImportRun | undefined): Array<{ what: string; ok: boolean }> {
  const apiTest = run?.api?.during.find((p) => p.name === "APITest");
  const unknown = run?.api?.during.find((p) => p.name === "unknown path");
  if (!apiTest || !unknown) return [];
  const fivexx = [...(run!.api!.idle ?? []), ...run!.api!.during].reduce((t, p) => t + p.failures.status5xx, 0);
  return [
    { what: `APITest p99 ${ms(apiTest.p99Ms)} <= ${IMPORT_TARGETS.apiTestP99Ms} ms`, ok: apiTest.p99Ms !== null && apiTest.p99Ms <= IMPORT_TARGETS.apiTestP99Ms },
    { what: `unknown path p99 ${ms(unknown.p99Ms)} <= ${IMPORT_TARGETS.unknownPathP99Ms} ms`, ok: unknown.p99Ms !== null && unknown.p99Ms <= IMPORT_TARGETS.unknownPathP99Ms },
    { what: `no 5xx (${fivexx})`, ok: fivexx === 0 },
  ];
}

function printImportSummary(results: ImportResult[]) {
  const header = ["N", "upload s", "import s", "job s", "slices", "rows/s", "peak RSS", "sqlite3 s", "ratio", "APITest p50/p99", "404 p99", "plain import s", "plain RSS", "check"];
  const rows = results.map((r) => {
    const during = (name: string) => r.gzip?.api?.during.find((p) => p.name === name);
    return [
      fmt(r.n),
      r.gzip?.uploadSeconds !== undefined ? fmt(r.gzip.uploadSeconds, 2) : "-",
      r.gzip?.importSeconds !== undefined ? fmt(r.gzip.importSeconds, 2) : "-",
      r.gzip?.jobSeconds !== undefined ? fmt(r.gzip.jobSeconds, 2) : "-",
      String(r.gzip?.slices ?? "-"),
      r.gzip?.rowsPerSecond !== undefined ? fmt(r.gzip.rowsPerSecond) : "-",
      r.gzip?.memory ? mib(r.gzip.memory.peakBytes) : "-",
      r.sqlite3 ? fmt(r.sqlite3.seconds, 2) : "-",
      r.ratio !== undefined ? fmt(r.ratio, 2) : "-",
      `${ms(during("APITest")?.p50Ms)} / ${ms(during("APITest")?.p99Ms)}`,
      ms(during("unknown path")?.p99Ms),
      r.plain?.importSeconds !== undefined ? fmt(r.plain.importSeconds, 2) : r.plain ? "FAILED" : "-",
      r.plain?.memory ? mib(r.plain.memory.peakBytes) : "-",
      r.error ? "FAILED" : r.ok ? "OK" : "NOT OK",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  console.log("\n=== import: summary (the gzip import; import s = PUT -> webhook) ===");
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));

  const measured = results.filter((r) => r.gzip?.memory && r.ratio !== undefined).sort((a, b) => a.n - b.n);
  const at1M = measured.find((r) => r.n === 1_000_000) ?? measured.filter((r) => r.n <= 1_000_000).pop() ?? measured[measured.length - 1];
  const targets: string[] = [];
  if (at1M) targets.push(`import/sqlite3 at ${fmt(at1M.n)}: ${fmt(at1M.ratio!, 2)} (target <= ${IMPORT_TARGETS.importOverSqlite3}: ${met(at1M.ratio! <= IMPORT_TARGETS.importOverSqlite3)})`);
  const small = measured[0];
  if (small && at1M && small !== at1M) {
    const growth = at1M.gzip!.memory!.peakBytes / small.gzip!.memory!.peakBytes;
    targets.push(`peak RSS ${fmt(small.n)} -> ${fmt(at1M.n)}: ${fmt(growth, 2)}x (${mib(small.gzip!.memory!.peakBytes)} -> ${mib(at1M.gzip!.memory!.peakBytes)}; target <= ${IMPORT_TARGETS.rssGrowth}: ${met(growth <= IMPORT_TARGETS.rssGrowth)})`);
  } else {
    targets.push(`peak RSS growth: needs two sizes up to 1M (default: 100000,1000000)`);
  }
  targets.push(`rows lost, duplicated or altered: ${results.every((r) => r.gzip?.stored?.ok && r.roundTrip?.ok) ? "none (shard and round trip exact)" : "SEE ABOVE"}`);
  console.log(`targets: ${targets.join("; ")}`);
  for (const r of results) {
    const t = apiTargetsOf(r.gzip);
    if (t.length) console.log(`API during the ${fmt(r.n)} import (the export benchmark's targets, for reference): ${t.map((x) => `${x.what}: ${met(x.ok)}`).join("; ")}`);
  }
}

/** Which code ran: the tree's root, its git commit (if it is a checkout), a digest of src/ (so a frozen or patched copy is told apart), and the local workerd's V8 flags. */
function codeInfo(): { root: string; head: string | null; dirtySrcFiles: number | null; srcSha256: string; workerdV8Flags: string } {
  const git = (args: string[]) => {
    const r = spawnSync("git", ["-C", ROOT, ...args], { encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  const head = git(["rev-parse", "--short", "HEAD"]);
  const dirty = head === null ? null : (git(["status", "--porcelain", "--", "src"]) ?? "").split("\n").filter(Boolean).length;
  const hash = createHash("sha256");
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else hash.update(relative(ROOT, path)).update("\0").update(readFileSync(path)).update("\0");
    }
  };
  walk(join(ROOT, "src"));
  return { root: ROOT, head, dirtySrcFiles: dirty, srcSha256: hash.digest("hex").slice(0, 16), workerdV8Flags: workerdV8Flags() };
}

export async function runImportBench(o: ImportBenchOptions): Promise<number> {
  const startedAt = new Date().toISOString();
  const code = codeInfo();
  log(`code: ${code.root}, ${code.head ? `commit ${code.head}${code.dirtySrcFiles ? ` + ${code.dirtySrcFiles} changed file(s) under src/` : ""}` : "not a git checkout"}; src/ sha-256 ${code.srcSha256}; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const loadBefore = loadavg();
  const results: ImportResult[] = [];
  for (const n of o.sizes) {
    const loadAtStart = loadavg();
    const result = await benchImportSize(o, n);
    results.push(result);
    appendFileSync(
      o.historyFile,
      `${JSON.stringify({
        startedAt,
        mode: "import",
        n,
        ok: result.ok,
        code,
        vars: Object.fromEntries(o.userVars),
        loadAverageAtStart: loadAtStart,
        uploadSeconds: result.gzip?.uploadSeconds,
        wallSeconds: result.gzip?.importSeconds,
        jobSeconds: result.gzip?.jobSeconds,
        peakBytes: result.gzip?.memory?.peakBytes,
        slices: result.gzip?.slices,
        sqlite3Seconds: result.sqlite3?.seconds,
        ratio: result.ratio,
        plainWallSeconds: result.plain?.importSeconds,
        plainPeakBytes: result.plain?.memory?.peakBytes,
      })}\n`,
    );
  }
  printImportSummary(results);
  const resultsFile = join(o.benchDir, "results.json");
  writeFileSync(
    resultsFile,
    JSON.stringify(
      {
        mode: "import",
        startedAt,
        finishedAt: new Date().toISOString(),
        machine: { cpus: cpus().length, loadAverageAtStart: loadBefore, loadAverageAtEnd: loadavg(), node: process.version },
        code,
        options: { sizes: o.sizes, keep: o.keep, gzipOnly: o.gzipOnly, vars: Object.fromEntries(o.userVars), probeRate: o.probeRate },
        targets: IMPORT_TARGETS,
        results,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`results written to ${relative(ROOT, resultsFile)}`);
  return results.every((r) => r.ok) ? 0 : 1;
}

