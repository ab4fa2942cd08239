/** What the single-account benchmark (run.ts) and the shards benchmark (shards.ts) share: formatting, API calls, probes, downloads. */
import { randomBytes } from "node:crypto";
import { createWriteStream, statSync } from "node:fs";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { pipeline } from "node:stream/promises";
import { Webhook } from "standardwebhooks";
import { Prober, type ProbeStats } from "./probes";

export const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const mib = (bytes: number) => `${fmt(bytes / 1024 / 1024, 1)} MiB`;
export const ms = (v: number | null | undefined) => (v === null || v === undefined ? "-" : `${fmt(v, v < 10 ? 1 : 0)} ms`);
export const met = (ok: boolean) => (ok ? "met" : "NOT met");
const stamp = () => new Date().toISOString().slice(11, 19);
export const log = (line: string) => console.log(`[${stamp()}] ${line}`);
export const sleep = (msec: number) => new Promise((resolve) => setTimeout(resolve, msec));

/** An account's API credentials. */
export interface Credentials {
  username: string;
  usertoken: string;
}

export async function api(baseUrl: string, account: Credentials, requesttype: string, requestmethod: string, details?: unknown, signal?: AbortSignal) {
  const res = await fetch(`${baseUrl}/apijson.php`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: account.username, usertoken: account.usertoken, requesttype, requestmethod, details }),
    signal,
  });
  const text = await res.text();
  let body: { response: { status: string; data?: any; errormessage?: string } };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${requesttype}/${requestmethod} answered ${res.status} with no JSON: ${text.slice(0, 300)}`);
  }
  return { status: res.status, response: body.response };
}

/** Resolves with the first value of `promise`, or rejects after ms. */
export function withTimeout<T>(promise: Promise<T>, msec: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${msec / 1000} s`)), msec))),
  ]);
}

/** The settings every worker gets, through --env-file (in a multi-config session --var reaches only the first). */
export function sessionVars(port: number, userVars: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  return {
    DOWNLOAD_SIGNING_SECRET: `bench-${randomBytes(24).toString("hex")}`,
    // The webhook receiver is http://127.0.0.1:<webhook-port>: http, a loopback address, any port, and no
    // DNS-over-HTTPS check (offline). Production leaves all three off.
    ALLOW_HTTP_WEBHOOKS: "true",
    ALLOW_PRIVATE_WEBHOOKS: "true",
    WEBHOOK_DNS_CHECK: "false",
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    ...Object.fromEntries(userVars),
  };
}

/** The two latency probes: an authenticated APITest, and a path no route serves (404). */
export function makeProbers(baseUrl: () => string, account: Credentials, probeRate: number): Prober[] {
  if (probeRate === 0) return [];
  return [
    new Prober({
      name: "APITest",
      send: (signal) =>
        fetch(`${baseUrl()}/apijson.php`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: account.username, usertoken: account.usertoken, requesttype: "Authentication", requestmethod: "APITest" }),
          signal,
        }),
      accept: (status, body) => status === 200 && /"status"\s*:\s*"SUCCESS"/.test(body),
    }, probeRate),
    new Prober({
      name: "unknown path",
      send: (signal) => fetch(`${baseUrl()}/no-such-path`, { signal }),
      accept: (status) => status === 404,
    }, probeRate),
  ];
}

/** Ready once APITest answers 200 through the gateway; an API that keeps answering 5xx will not get better. */
export function apiReady(account: Credentials) {
  let failing = 0;
  return async (baseUrl: string): Promise<boolean | string> => {
    const res = await fetch(`${baseUrl}/apijson.php`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: account.username, usertoken: account.usertoken, requesttype: "Authentication", requestmethod: "APITest" }),
    });
    const body = await res.text();
    if (res.status === 200) return true;
    if (res.status >= 500 && ++failing >= 10) return `Authentication/APITest answered ${res.status} ten times in a row: ${body.slice(0, 300)}`;
    return false;
  };
}

export function describeProbe(p: ProbeStats): string {
  const f = p.failures;
  const failures = f.total
    ? `${f.total} failed (${[f.wrongStatus && `${f.wrongStatus} wrong status`, f.status5xx && `${f.status5xx} 5xx`, f.timeouts && `${f.timeouts} timeouts`, f.errors && `${f.errors} errors`].filter(Boolean).join(", ")}; statuses ${JSON.stringify(p.statuses)})`
    : "0 failed";
  const extra = [p.skipped && `${p.skipped} sends skipped at the in-flight cap`, p.abandoned && `${p.abandoned} cut off by the kill`].filter(Boolean);
  return `p50 ${ms(p.p50Ms)}, p99 ${ms(p.p99Ms)}, max ${ms(p.maxMs)}; ${fmt(p.calls)} calls in ${fmt(p.seconds, 1)} s, ${failures}${extra.length ? `; ${extra.join("; ")}` : ""}`;
}

/** The webhook's event, if its signature verifies with the secret; undefined if not. */
export function verifyWebhook(secret: string, arrival: { body: string; headers: Record<string, unknown> }): any {
  try {
    return new Webhook(secret).verify(arrival.body, arrival.headers as Record<string, string>);
  } catch {
    return undefined;
  }
}

/**
 * Downloads an export through its signed link, checks the size against Content-Length; returns bytes and seconds.
 * On a connection of its own, not fetch's pool: a second 330 MB download sent on the connection that had just
 * carried the first got its headers only after about 200 s (twice, in `--shards 2`), and a POST sent there got
 * wrangler's 503 "Your worker restarted mid-request"; on fresh connections the same downloads began within 50 ms.
 */
export async function download(url: string, outFile: string): Promise<{ bytes: number; seconds: number }> {
  const started = performance.now();
  const get = url.startsWith("https:") ? httpsGet : httpGet;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    // identity: workerd would otherwise gzip the JSON on the fly (and drop Content-Length); we want the stored bytes.
    get(url, { agent: false, headers: { "accept-encoding": "identity" } }, resolve).on("error", reject);
  });
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    throw new Error(`the download link answered ${res.statusCode}: ${Buffer.concat(chunks).toString("utf8").slice(0, 300)}`);
  }
  await pipeline(res, createWriteStream(outFile));
  const seconds = (performance.now() - started) / 1000;
  const bytes = statSync(outFile).size;
  const contentLength = Number(res.headers["content-length"]);
  if (contentLength !== bytes) throw new Error(`downloaded ${bytes} bytes, Content-Length said ${contentLength}`);
  return { bytes, seconds };
}

/**
 * What a run measures before its export: workerd's memory once it has settled (the baseline of the peak), and
 * the API's latency idle, probed for 5 s. `who` says what the probes call as, for the log.
 */
export async function measureIdle(
  dev: { memory: { sample(): void; report(): { peakBytes: number } } },
  probers: Prober[],
  probeRate: number,
  who = "",
): Promise<{ idleBytes: number; idle: ProbeStats[] }> {
  await sleep(1000);
  dev.memory.sample();
  const idleBytes = dev.memory.report().peakBytes;
  log(`wrangler dev is up; workerd peak RSS so far ${mib(idleBytes)}`);
  if (probers.length === 0) return { idleBytes, idle: [] };
  log(`probing the API idle for 5 s (${probers.map((p) => `${probeRate}/s ${p.name}${who}`).join(", ")})`);
  for (const p of probers) p.start("idle");
  await sleep(5000);
  const idle = await Promise.all(probers.map((p) => p.stop()));
  for (const s of idle) log(`  idle ${s.name}: ${describeProbe(s)}`);
  return { idleBytes, idle };
}
