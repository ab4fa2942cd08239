/** The process tree of the wrangler dev this benchmark starts: finding its workerd processes, their memory, and ending it. */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
}

function readProc(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid …"; comm may hold spaces or parentheses, so split at the last ")".
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const ppid = Number(stat.slice(close + 2).split(" ")[1]);
    return { pid, ppid, comm };
  } catch {
    return null;
  }
}

/** Every live descendant of `root` (not root itself). */
export function descendants(root: number): ProcInfo[] {
  const all: ProcInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProc(Number(entry));
    if (info) all.push(info);
  }
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const found: ProcInfo[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

interface Memory {
  /** VmHWM: the kernel's record of the peak resident set. */
  hwm: number;
  rss: number;
  /** The resident set split up: anonymous memory (heaps), file-backed pages (binaries, mmap'ed files), shared memory. */
  anon: number;
  file: number;
  shmem: number;
}

/** A process's memory from /proc/<pid>/status, in bytes; null once it has exited. */
function memory(pid: number): Memory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    return { hwm: kb("VmHWM"), rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile"), shmem: kb("RssShmem") };
  } catch {
    return null;
  }
}

export interface RssReport {
  /** Largest VmHWM seen of any workerd process of the tree. */
  peakBytes: number;
  /** Largest sum of the workerd processes' VmRSS at one sample. */
  peakTotalRssBytes: number;
  /** Per process: its VmHWM, and the split of its largest sampled VmRSS. */
  perProcess: Array<{ pid: number; peakBytes: number; sampledPeak: { rss: number; anon: number; file: number; shmem: number } }>;
  samples: number;
}

/**
 * Samples the workerd descendants of `root` every `intervalMs`, keeping each one's VmHWM, so the peak is
 * known even for a process that exits before the end.
 */
export class WorkerdMemorySampler {
  private peaks = new Map<number, number>();
  private sampledPeaks = new Map<number, Memory>();
  private peakTotal = 0;
  private samples = 0;
  private timer: NodeJS.Timeout;
  private known: number[] = [];
  private lastTreeScan = 0;

  constructor(
    private readonly root: number,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Rescans the tree at most once a second; in between only the known workerd processes are read. */
  sample(): void {
    const now = Date.now();
    if (now - this.lastTreeScan >= 1000 || this.known.length === 0) {
      this.known = descendants(this.root)
        .filter((p) => p.comm === "workerd")
        .map((p) => p.pid);
      this.lastTreeScan = now;
    }
    let total = 0;
    for (const pid of this.known) {
      const m = memory(pid);
      if (!m) continue;
      if (m.hwm > (this.peaks.get(pid) ?? 0)) this.peaks.set(pid, m.hwm);
      if (m.rss > (this.sampledPeaks.get(pid)?.rss ?? -1)) this.sampledPeaks.set(pid, m);
      total += m.rss;
    }
    this.peakTotal = Math.max(this.peakTotal, total);
    this.samples++;
  }

  /** The current reading, without stopping. */
  report(): RssReport {
    const perProcess = [...this.peaks].map(([pid, peakBytes]) => {
      const { rss, anon, file, shmem } = this.sampledPeaks.get(pid)!;
      return { pid, peakBytes, sampledPeak: { rss, anon, file, shmem } };
    });
    return {
      peakBytes: Math.max(0, ...perProcess.map((p) => p.peakBytes)),
      peakTotalRssBytes: this.peakTotal,
      perProcess,
      samples: this.samples,
    };
  }

  stop(): RssReport {
    this.sample();
    clearInterval(this.timer);
    return this.report();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Ends `root` and everything under it: SIGTERM to its process group and to each descendant, then SIGKILL
 * to whatever is left after `graceMs`. Only this tree is touched.
 */
export async function killTree(root: number, graceMs = 5000): Promise<void> {
  const tree = [...descendants(root).map((p) => p.pid), root];
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-root, sig); // the group we created with detached: true
    } catch {
      // already gone
    }
    for (const pid of tree) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && tree.some(isAlive)) await sleep(100);
  if (tree.some(isAlive)) signal("SIGKILL");
}

/**
 * SIGKILL to `root`'s process group and every descendant at once, with no grace period (a crash, as
 * `kill -9` of the tree); resolves once they are all gone (or after `waitMs`).
 */
export async function killTreeNow(root: number, waitMs = 10_000): Promise<void> {
  const tree = [...descendants(root).map((p) => p.pid), root];
  try {
    process.kill(-root, "SIGKILL");
  } catch {
    // already gone
  }
  for (const pid of tree) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && tree.some(isAlive)) await sleep(50);
}

/** Clock ticks per second of /proc's CPU times. */
let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
    clockTicks = Number(out.stdout?.trim()) || 100;
  }
  return clockTicks;
}

/** CPU ticks (user + system) of every thread of a process, by thread id; empty once it has exited. */
function threadTicks(pid: number): Map<number, { ticks: number; name: string }> {
  const threads = new Map<number, { ticks: number; name: string }>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const name = stat.slice(stat.indexOf("(") + 1, close);
      // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
      const fields = stat.slice(close + 2).split(" ");
      threads.set(Number(tid), { ticks: Number(fields[11]) + Number(fields[12]), name });
    } catch {
      // the thread ended
    }
  }
  return threads;
}

export interface ThreadReport {
  wallSeconds: number;
  /** Every thread of the workerd processes that used CPU, busiest first. */
  threads: Array<{ pid: number; tid: number; name: string; cpuSeconds: number }>;
  /** Sampling intervals (of about a second each). */
  intervals: number;
  /** Intervals in which the busiest thread ran at least 90 % of the time. */
  intervalsOneThreadSaturated: number;
  /** Intervals in which two or more threads each ran at least 50 % of the time. */
  intervalsTwoThreadsBusy: number;
}

/**
 * The CPU time of each thread of the workerd processes under `root`, sampled every `intervalMs` from
 * /proc/<pid>/task/<tid>/stat: whether the work ran on one thread or on several at once.
 */
export class ThreadCpuSampler {
  private readonly started = performance.now();
  private last = new Map<string, number>();
  private totals = new Map<string, { pid: number; tid: number; name: string; ticks: number }>();
  private lastAt = performance.now();
  private intervals = 0;
  private saturated = 0;
  private twoBusy = 0;
  private timer: NodeJS.Timeout;

  constructor(
    private readonly root: number,
    intervalMs = 1000,
  ) {
    this.read(false);
    this.timer = setInterval(() => this.read(true), intervalMs);
  }

  private read(count: boolean): void {
    const now = performance.now();
    const seconds = (now - this.lastAt) / 1000;
    this.lastAt = now;
    const busy: number[] = [];
    for (const p of descendants(this.root).filter((d) => d.comm === "workerd")) {
      for (const [tid, t] of threadTicks(p.pid)) {
        const key = `${p.pid}/${tid}`;
        const before = this.last.get(key);
        this.last.set(key, t.ticks);
        if (before === undefined) {
          this.totals.set(key, { pid: p.pid, tid, name: t.name, ticks: 0 });
          continue;
        }
        const delta = t.ticks - before;
        this.totals.get(key)!.ticks += delta;
        if (count && seconds > 0) busy.push(delta / ticksPerSecond() / seconds);
      }
    }
    // (A last, short interval at stop() would give noisy shares: its ticks count in the totals only.)
    if (!count || seconds < 0.5) return;
    busy.sort((a, b) => b - a);
    this.intervals++;
    if ((busy[0] ?? 0) >= 0.9) this.saturated++;
    if ((busy[1] ?? 0) >= 0.5) this.twoBusy++;
  }

  stop(): ThreadReport {
    clearInterval(this.timer);
    this.read(true);
    const threads = [...this.totals.values()]
      .filter((t) => t.ticks > 0)
      .map((t) => ({ pid: t.pid, tid: t.tid, name: t.name, cpuSeconds: t.ticks / ticksPerSecond() }))
      .sort((a, b) => b.cpuSeconds - a.cpuSeconds);
    return {
      wallSeconds: (performance.now() - this.started) / 1000,
      threads,
      intervals: this.intervals,
      intervalsOneThreadSaturated: this.saturated,
      intervalsTwoThreadsBusy: this.twoBusy,
    };
  }
}
