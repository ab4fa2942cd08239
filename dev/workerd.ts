/**
 * V8 flags for the local workerd (wrangler dev, the benchmark, the tests), through miniflare's
 * MINIFLARE_WORKERD_V8_FLAGS (patched into the pinned wrangler's miniflare: patches/).
 *
 * `--single-threaded-gc`: on a machine with few cores, the local workerd can spin forever at 100 % CPU in
 * V8's cppgc sweeper. After each event workerd runs V8's foreground tasks until none is left; cppgc's
 * low-priority sweep task re-posts itself at once while a concurrent sweep job has not run, and that job
 * waits for a V8 worker thread, which on a 2-core machine (one worker thread) can be parked waiting for a
 * GC that only the spinning main thread would do. Measured here (bench/README.md, "The local workerd's
 * GC livelock"): 1M exports in 3 s slices hung after their 2nd or 3rd slice without the flag (3 of 3 runs);
 * with it, all 3 runs completed (8, 13 and 8 slices).
 * Single-threaded GC never posts the concurrent job, so the sweep task finishes. Production runs its
 * own platform with CPU limits, and is not affected by this setting.
 */
export const WORKERD_V8_FLAGS = "--single-threaded-gc";

/** `env` with the local workerd's V8 flags, unless it names its own (an empty value runs without any). */
export function withWorkerdFlags(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, MINIFLARE_WORKERD_V8_FLAGS: env.MINIFLARE_WORKERD_V8_FLAGS ?? WORKERD_V8_FLAGS };
}
