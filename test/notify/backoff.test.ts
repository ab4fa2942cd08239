import { describe, expect, it } from "vitest";
import { clampDelay, exportRetryDelay, MAX_QUEUE_DELAY_SECONDS, notifyRetryDelay } from "../../src/notify/backoff";

const mid = () => 0.5;
const lowest = () => 0;
const highest = () => 0.999_999;

describe("the notification retry schedule", () => {
  it("waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h before retries 1 to 6 (jitter at its midpoint)", () => {
    expect([1, 2, 3, 4, 5, 6].map((retry) => notifyRetryDelay(retry, mid))).toEqual([5, 300, 1800, 7200, 18000, 36000]);
  });

  it("keeps waiting 10 h after the schedule runs out", () => {
    expect([7, 8, 20, 50].map((retry) => notifyRetryDelay(retry, mid))).toEqual([36000, 36000, 36000, 36000]);
  });

  it("treats a retry number below 1 as the first retry", () => {
    expect(notifyRetryDelay(0, mid)).toBe(5);
  });

  it("jitters each wait by at most 10 % either way", () => {
    expect(notifyRetryDelay(2, lowest)).toBe(270);
    expect(notifyRetryDelay(2, highest)).toBe(330);
    expect(notifyRetryDelay(6, lowest)).toBe(32400);
    expect(notifyRetryDelay(6, highest)).toBe(39600);
  });

  it("stays within the jitter bounds with the real random source", () => {
    for (let i = 0; i < 200; i++) {
      const delay = notifyRetryDelay(3);
      expect(delay).toBeGreaterThanOrEqual(1620);
      expect(delay).toBeLessThanOrEqual(1980);
    }
  });

  it("never asks the queue for more than 12 hours", () => {
    for (let retry = 1; retry <= 50; retry++) {
      expect(notifyRetryDelay(retry, highest)).toBeLessThanOrEqual(MAX_QUEUE_DELAY_SECONDS);
    }
    expect(MAX_QUEUE_DELAY_SECONDS).toBe(12 * 3600);
  });
});

describe("clamping a delay", () => {
  it("rounds to whole seconds, caps at 12 hours and never goes below zero", () => {
    expect(clampDelay(4.4)).toBe(4);
    expect(clampDelay(4.6)).toBe(5);
    expect(clampDelay(43_200)).toBe(43_200);
    expect(clampDelay(7 * 24 * 3600)).toBe(43_200);
    expect(clampDelay(-30)).toBe(0);
  });
});

describe("the export slice retry schedule", () => {
  it("doubles from 10 s and caps at 10 minutes", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((attempt) => exportRetryDelay(attempt, mid))).toEqual([
      10, 20, 40, 80, 160, 320, 600, 600, 600,
    ]);
  });

  it("jitters by at most 10 % either way", () => {
    expect(exportRetryDelay(1, lowest)).toBe(9);
    expect(exportRetryDelay(1, highest)).toBe(11);
    expect(exportRetryDelay(10, highest)).toBe(660);
  });
});
