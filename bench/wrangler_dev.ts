/** `wrangler dev` for both workers on a benchmark state directory, and the benchmark's webhook receiver. */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import { ROOT } from "./dataset";
import { killTree, WorkerdMemorySampler } from "./processes";

const wranglerBin = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

export interface DevServer {
  baseUrl: string;
  pid: number;
  memory: WorkerdMemorySampler;
  logFile: string;
  stop(): Promise<void>;
}

/** Whether something already listens on 127.0.0.1:port. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every wrangler dev started here and not yet stopped, so that an interrupted run can end them. */
const live = new Set<() => Promise<void>>();

export async function stopAllWranglerDev(): Promise<void> {
  await Promise.all([...live].map((stop) => stop()));
}

/**
 * Starts `wrangler dev -c wrangler.toml -c mailer/wrangler.toml` on the state directory, in its own process
 * group, with its output in `logFile`; resolves once the API answers `ready` with 200.
 */
export async function startWranglerDev(options: {
  stateDir: string;
  port: number;
  vars: string[];
  logFile: string;
  ready: (baseUrl: string) => Promise<boolean>;
  timeoutMs?: number;
}): Promise<DevServer> {
  const baseUrl = `http://127.0.0.1:${options.port}`;
  if (await portInUse(options.port)) throw new Error(`port ${options.port} is in use; pick another with --port`);
  const args = [
    wranglerBin,
    "dev",
    "-c", "wrangler.toml",
    "-c", "mailer/wrangler.toml",
    "--ip", "127.0.0.1",
    "--port", String(options.port),
    "--inspector-port", "0",
    "--persist-to", options.stateDir,
    "--show-interactive-dev-session=false",
    "--var", "ALLOW_HTTP_WEBHOOKS:true",
    "--var", `PUBLIC_BASE_URL:${baseUrl}`,
    ...options.vars.flatMap((v) => ["--var", v]),
  ];
  const log = openSync(options.logFile, "w");
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, {
      cwd: ROOT,
      detached: true, // its own process group, so that stop() ends exactly this tree
      stdio: ["ignore", log, log],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start wrangler dev");
  let exited: string | null = null;
  child.on("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));

  const memory = new WorkerdMemorySampler(pid);
  const stop = async () => {
    live.delete(stop);
    memory.stop();
    await killTree(pid);
  };
  live.add(stop);

  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`wrangler dev ${exited} before it was ready; see ${options.logFile}:\n${tail(options.logFile)}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev was not ready within ${(options.timeoutMs ?? 180_000) / 1000} s; see ${options.logFile}:\n${tail(options.logFile)}`);
    }
    if (await options.ready(baseUrl).catch(() => false)) break;
    await sleep(300);
  }
  return { baseUrl, pid, memory, logFile: options.logFile, stop };
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Lines of a wrangler log that report errors, minus the known harmless one about Request.cf (no internet). */
export function logErrors(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const lines = text.split("\n");
  const found: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/ENOTFOUND workers\.cloudflare\.com|Unable to fetch the `Request\.cf` object/.test(line)) {
      // Skip its stack trace too.
      while (i + 1 < lines.length && /^\s+at /.test(lines[i + 1]!)) i++;
      continue;
    }
    if (/\berror\b|✘|uncaught|exception|\bfailed\b/i.test(line)) found.push(line.trim());
  }
  return found;
}

export interface WebhookArrival {
  /** performance.now() when the request's headers arrived. */
  arrivedAt: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local webhook target: answers 200 to every POST and hands each one over, with its arrival time. */
export class WebhookReceiver {
  private server: Server;
  private waiting: Array<(arrival: WebhookArrival) => void> = [];
  private arrived: WebhookArrival[] = [];

  constructor(readonly port: number) {
    this.server = createServer((req, res) => {
      const arrivedAt = performance.now();
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
        const arrival = { arrivedAt, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
        const waiter = this.waiting.shift();
        if (waiter) waiter(arrival);
        else this.arrived.push(arrival);
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/bench-webhook`;
  }

  async listen(): Promise<void> {
    if (await portInUse(this.port)) throw new Error(`port ${this.port} is in use; pick another with --webhook-port`);
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  /** The next webhook POST (one already received first). */
  next(): Promise<WebhookArrival> {
    const ready = this.arrived.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
