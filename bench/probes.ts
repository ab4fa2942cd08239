/**
 * Open-loop latency probes: a request sent at a fixed rate whether or not the earlier ones were answered
 * (up to a cap of requests in flight), each timed from send to the end of its body, with a timeout.
 * Used to measure how the API answers while an export runs.
 */

export interface ProbeCall {
  /** ms from send to the end of the body (the timeout for a call that timed out). */
  ms: number;
  /** When it was sent: seconds after the phase began. */
  sentAtSeconds?: number;
  status: number | null;
  /** Why it counts as a failure; undefined when it succeeded. */
  failure?: "wrong status" | "5xx" | "timeout" | "error";
  detail?: string;
}

export interface ProbeStats {
  name: string;
  phase: string;
  seconds: number;
  calls: number;
  ok: number;
  failures: { total: number; wrongStatus: number; status5xx: number; timeouts: number; errors: number };
  /** Sends skipped because `maxInFlight` calls were still open. */
  skipped: number;
  /** Calls cut off by a kill of wrangler dev: neither counted nor timed. */
  abandoned: number;
  statuses: Record<string, number>;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** A few failure details, for the log. */
  examples: string[];
  /** The five slowest calls: when each was sent (seconds after the phase began) and how long it took. */
  slowest?: Array<{ sentAtSeconds: number; ms: number }>;
}

/** The nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface ProbeTarget {
  name: string;
  /** Sends one request; the signal aborts it (timeout or kill). */
  send: (signal: AbortSignal) => Promise<Response>;
  /** Whether an answered request succeeded; given the status and the body text. */
  accept: (status: number, body: string) => boolean;
}

export class Prober {
  private calls: ProbeCall[] = [];
  private inFlight = new Set<AbortController>();
  private pending = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private skipped = 0;
  private abandoned = 0;
  private startedAt = 0;
  private phase = "";
  private aborting = false;

  constructor(
    private readonly target: ProbeTarget,
    private readonly perSecond = 4,
    private readonly maxInFlight = 32,
    private readonly timeoutMs = 30_000,
  ) {}

  get name(): string {
    return this.target.name;
  }

  start(phase: string): void {
    if (this.timer) throw new Error(`${this.target.name}: already probing`);
    this.calls = [];
    this.skipped = 0;
    this.abandoned = 0;
    this.aborting = false;
    this.phase = phase;
    this.startedAt = performance.now();
    this.fire();
    this.timer = setInterval(() => this.fire(), 1000 / this.perSecond);
  }

  private fire(): void {
    if (this.inFlight.size >= this.maxInFlight) {
      this.skipped++;
      return;
    }
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(new Error("timeout")), this.timeoutMs);
    this.inFlight.add(controller);
    const sent = performance.now();
    const call = (async (): Promise<ProbeCall> => {
      try {
        const res = await this.target.send(controller.signal);
        const body = await res.text();
        const ms = performance.now() - sent;
        if (res.status >= 500) return { ms, status: res.status, failure: "5xx", detail: `${res.status} ${body.slice(0, 200)}` };
        if (!this.target.accept(res.status, body)) {
          return { ms, status: res.status, failure: "wrong status", detail: `${res.status} ${body.slice(0, 200)}` };
        }
        return { ms, status: res.status };
      } catch (error) {
        const ms = performance.now() - sent;
        if (controller.signal.aborted && controller.signal.reason instanceof Error && controller.signal.reason.message === "timeout") {
          return { ms: this.timeoutMs, status: null, failure: "timeout", detail: `no answer in ${this.timeoutMs / 1000} s` };
        }
        return { ms, status: null, failure: "error", detail: error instanceof Error ? `${error.message}${error.cause ? `: ${String(error.cause)}` : ""}` : String(error) };
      } finally {
        clearTimeout(timeout);
        this.inFlight.delete(controller);
      }
    })();
    const sentAtSeconds = (sent - this.startedAt) / 1000;
    const done = call.then((c) => {
      if (this.aborting) this.abandoned++;
      else this.calls.push({ ...c, sentAtSeconds });
    });
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Stops sending, waits for the calls in flight (each ends by its timeout at the latest), and reports. */
  async stop(): Promise<ProbeStats> {
    clearInterval(this.timer);
    this.timer = undefined;
    const seconds = (performance.now() - this.startedAt) / 1000;
    await Promise.all([...this.pending]);
    return this.report(seconds);
  }

  /** Stops sending and drops the calls in flight (wrangler dev is about to be killed): they are not counted. */
  async abandon(): Promise<ProbeStats> {
    clearInterval(this.timer);
    this.timer = undefined;
    const seconds = (performance.now() - this.startedAt) / 1000;
    this.aborting = true;
    for (const c of this.inFlight) c.abort(new Error("abandoned"));
    await Promise.all([...this.pending]);
    return this.report(seconds);
  }

  private report(seconds: number): ProbeStats {
    const sorted = this.calls.map((c) => c.ms).sort((a, b) => a - b);
    const failed = this.calls.filter((c) => c.failure);
    const count = (f: ProbeCall["failure"]) => failed.filter((c) => c.failure === f).length;
    const statuses: Record<string, number> = {};
    for (const c of this.calls) statuses[c.status ?? c.failure!] = (statuses[c.status ?? c.failure!] ?? 0) + 1;
    return {
      name: this.target.name,
      phase: this.phase,
      seconds,
      calls: this.calls.length,
      ok: this.calls.length - failed.length,
      failures: { total: failed.length, wrongStatus: count("wrong status"), status5xx: count("5xx"), timeouts: count("timeout"), errors: count("error") },
      skipped: this.skipped,
      abandoned: this.abandoned,
      statuses,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length ? sorted[sorted.length - 1]! : null,
      examples: [...new Set(failed.map((c) => `${c.failure}: ${c.detail ?? ""}`))].slice(0, 3),
      slowest: [...this.calls]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 5)
        .map((c) => ({ sentAtSeconds: c.sentAtSeconds ?? NaN, ms: c.ms })),
    };
  }
}
