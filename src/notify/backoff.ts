/** Waits before retry n (1-based), after Standard Webhooks' schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h … */
const SCHEDULE_SECONDS = [5, 300, 1800, 7200, 18000, 36000];
/** Queues delay a message by at most 12 hours (the more cautious of the documented limits). */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** With ±10 % jitter, so that retries of many jobs do not arrive together. */
export function notifyRetryDelay(retry: number, random = Math.random): number {
  const base = SCHEDULE_SECONDS[Math.min(retry, SCHEDULE_SECONDS.length) - 1] ?? SCHEDULE_SECONDS[0]!;
  return clampDelay(base * (0.9 + 0.2 * random()));
}

/** Export slices that fail are retried sooner: 10 s, 20 s, 40 s … up to 10 minutes. */
export function exportRetryDelay(attempt: number, random = Math.random): number {
  return clampDelay(Math.min(600, 10 * 2 ** Math.max(0, attempt - 1)) * (0.9 + 0.2 * random()));
}

export const clampDelay = (seconds: number): number =>
  Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(0, Math.round(seconds)));
