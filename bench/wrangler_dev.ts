/** `wrangler dev` for the service's workers on a benchmark state directory, and the benchmark's webhook receiver. */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { ROOT } from "./layout";
import { killTree, killTreeNow, WorkerdMemorySampler } from "./processes";
import { withWorkerdFlags } from "../dev/workerd";

/** The V8 flags the local workerd gets (dev/workerd.ts), as the results record them. */
export const workerdV8Flags = () => withWorkerdFlags(process.env).MINIFLARE_WORKERD_V8_FLAGS ?? "";

const wranglerBin = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

export interface DevServer {
  baseUrl: string;
  pid: number;
  memory: WorkerdMemorySampler;
  logFile: string;
  /** Ends the whole tree gracefully (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** `kill -9` of the whole tree at once, as a crash would; resolves when every process is gone. */
  crash(): Promise<void>;
  /**
   * Rejects when wrangler logs that it reloads the workers (a file its bundler watches changed, e.g. an
   * `npm install` into node_modules): that restarts workerd and kills a running slice. Checked every second
   * from the moment this is called; `stop` ends the watch.
   */
  watchReloads(): { reloaded: Promise<never>; stop(): void };
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
 * The service's workers in one local session, as scripts/dev.sh starts them: the first (the API worker) owns the
 * port. (The first worker must be the API: in wrangler 4.86 the other workers of a session lose their
 * rate-limit bindings.)
 */
export const SERVICE_CONFIGS = ["wrangler.toml", "wrangler.exporter.toml", "mailer/wrangler.toml"];
/**
 * The dev clock, a session of its own: GET /__scheduled on it runs the export worker's cron (the sweeper) in
 * the service's session, which it reaches through wrangler's dev registry.
 */
export const CLOCK_CONFIG = "dev/clock.wrangler.toml";

/**
 * Writes a dotenv file (for `--env-file` and as a `.dev.vars`). Plain values when safe; else single quotes
 * (dotenv takes them literally), else double quotes.
 */
export function writeEnvFile(file: string, vars: Record<string, string>): void {
  const lines = Object.entries(vars).map(([key, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`env file: "${key}" is not a variable name`);
    if (/[\r\n]/.test(value)) throw new Error(`env file: the value of ${key} spans lines`);
    if (/^[A-Za-z0-9_.:/@,+=-]*$/.test(value)) return `${key}=${value}`;
    if (!value.includes("'")) return `${key}='${value}'`;
    return `${key}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  });
  writeFileSync(file, `# Written by npm run bench for its wrangler dev session; rewritten on every run.\n${lines.join("\n")}\n`, { mode: 0o600 });
}

/** Keys of a wrangler config whose values are paths relative to the config file. */
const PATH_KEYS = ["main", "migrations_dir", "tsconfig", "directory", "base_dir", "watch_dir", "cwd"];

/**
 * The benchmark's copies of `configs`, in `sessionDir`, with a `.dev.vars` beside them holding `vars`.
 *
 * Why copies: wrangler 4.86 hands `--env-file` (and `--var`) only to the first worker of a multi-config
 * session. Each other worker reads the `.dev.vars` beside its own config file instead (for
 * wrangler.exporter.toml, the developer's ./.dev.vars), so settings meant for the export worker would never
 * reach it. The copies are the configs as they are, with their relative paths made absolute, all in one
 * directory whose `.dev.vars` is the benchmark's. The first worker gets the same file through `--env-file`.
 */
export function writeSessionConfigs(sessionDir: string, configs: readonly string[], vars: Record<string, string>): { configs: string[]; envFile: string } {
  rmSync(sessionDir, { recursive: true, force: true });
  mkdirSync(sessionDir, { recursive: true });
  const envFile = join(sessionDir, ".dev.vars");
  writeEnvFile(envFile, vars);
  const copies = configs.map((config, i) => {
    const source = join(ROOT, config);
    const dir = dirname(source);
    const text = readFileSync(source, "utf8").replace(
      new RegExp(`^(\\s*(?:${PATH_KEYS.join("|")})\\s*=\\s*)"([^"]*)"`, "gm"),
      (_, lead: string, value: string) => `${lead}${JSON.stringify(isAbsolute(value) ? value : resolve(dir, value))}`,
    );
    const folder = basename(dirname(config));
    const target = join(sessionDir, `${i + 1}-${folder === "." ? "" : `${folder}-`}${basename(config)}`);
    writeFileSync(target, `# Copied by npm run bench from ${config}, with absolute paths (see bench/wrangler_dev.ts).\n${text}`);
    return target;
  });
  return { configs: copies, envFile };
}

/**
 * Starts `wrangler dev` with `configs` on a state directory, in its own process group, with its output in
 * `logFile`; resolves once `ready` says so. With `vars`, the configs are copied into `sessionDir` with the
 * settings beside them (see writeSessionConfigs). `registryDir` is wrangler's dev registry
 * (WRANGLER_REGISTRY_PATH): a directory of the benchmark's own, so that its sessions find each other and not the
 * workers of an `npm run dev` running on the same machine (they have the same names).
 */
export async function startWranglerDev(options: {
  configs: readonly string[];
  stateDir: string;
  port: number;
  vars?: Record<string, string>;
  sessionDir?: string;
  registryDir: string;
  logFile: string;
  /** true: ready; false: not yet; a string: it never will be (the reason). */
  ready: (baseUrl: string) => Promise<boolean | string>;
  timeoutMs?: number;
}): Promise<DevServer> {
  const baseUrl = `http://127.0.0.1:${options.port}`;
  if (await portInUse(options.port)) throw new Error(`port ${options.port} is in use; pick another port (see --help)`);
  let configs = options.configs.map((c) => join(ROOT, c));
  let envArgs: string[] = [];
  if (options.vars) {
    if (!options.sessionDir) throw new Error("startWranglerDev: vars need a sessionDir");
    const session = writeSessionConfigs(options.sessionDir, options.configs, options.vars);
    configs = session.configs;
    envArgs = ["--env-file", session.envFile];
  }
  mkdirSync(options.registryDir, { recursive: true });
  const args = [
    wranglerBin,
    "dev",
    ...configs.flatMap((c) => ["-c", c]),
    ...envArgs,
    "--ip", "127.0.0.1",
    "--port", String(options.port),
    "--inspector-port", "0",
    "--persist-to", options.stateDir,
    "--show-interactive-dev-session=false",
  ];
  const log = openSync(options.logFile, "w");
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, {
      cwd: ROOT,
      detached: true, // its own process group, so that stop() ends exactly this tree
      stdio: ["ignore", log, log],
      env: { ...withWorkerdFlags(process.env), WRANGLER_SEND_METRICS: "false", WRANGLER_REGISTRY_PATH: options.registryDir, NO_COLOR: "1", FORCE_COLOR: "0" },
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
  const crash = async () => {
    live.delete(stop);
    memory.stop();
    await killTreeNow(pid);
  };

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
    const ready = await options.ready(baseUrl).catch(() => false);
    if (typeof ready === "string") {
      await stop();
      throw new Error(`wrangler dev started, but ${ready}; see ${options.logFile}:\n${tail(options.logFile)}`);
    }
    if (ready) break;
    await sleep(300);
  }
  const watchReloads = () => {
    let from = fileSize(options.logFile);
    let timer: NodeJS.Timeout | undefined;
    const reloaded = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        const size = fileSize(options.logFile);
        if (size <= from) return;
        const text = readFileSync(options.logFile).subarray(from, size).toString("utf8");
        from = size;
        if (/Reloading local server/.test(text)) {
          clearInterval(timer);
          reject(
            new Error(
              `wrangler reloaded the workers during the run (a file its bundler watches changed, e.g. npm install into ` +
                `node_modules, or an edit under src/): the running slice was killed and the figures would mean nothing; run again (${options.logFile})`,
            ),
          );
        }
      }, 1000);
    });
    reloaded.catch(() => {}); // handled by whoever races it
    return { reloaded, stop: () => clearInterval(timer) };
  };
  return { baseUrl, pid, memory, logFile: options.logFile, stop, crash, watchReloads };
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
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
    // ("failed" as a JSON key, e.g. in the sweeper's report {"failed":0}, is not an error.)
    if (/\berror\b|✘|uncaught|exception|(?<!")\bfailed\b(?!")/i.test(line)) found.push(line.trim());
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
  /** Every POST received so far, in order, whether handed over by next() or not. */
  readonly received: WebhookArrival[] = [];

  constructor(readonly port: number) {
    this.server = createServer((req, res) => {
      const arrivedAt = performance.now();
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
        const arrival = { arrivedAt, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
        this.received.push(arrival);
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
