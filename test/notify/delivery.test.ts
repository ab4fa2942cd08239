import type { ExportMessage } from "../../src/export/message";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handleExportMessage } from "../../src/export/consumer";
import { deliverNotification } from "../../src/notify/deliver";
import {
  answer,
  createJob,
  harness,
  jobRow,
  notifyScenario,
  recordingFetch,
  runExport,
  runNotify,
  statusOf,
  type NotifyScenario,
} from "./helpers";

const HOOK = "https://hooks.example.com/exports";

let scenario: NotifyScenario;
beforeAll(async () => {
  scenario = await notifyScenario(4);
});

// Jitter at its midpoint, so that delays are exactly the schedule's.
const noJitter = () => vi.spyOn(Math, "random").mockReturnValue(0.5);
afterEach(() => vi.restoreAllMocks());

describe("a webhook that fails", () => {
  it("acks the export message and enqueues a notify message delayed by the first backoff step", async () => {
    noJitter();
    const hook = recordingFetch(answer(500));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });

    expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId, drive: 1 }, options: { delaySeconds: 5 } }]);
    expect(await jobRow(jobId)).toMatchObject({
      state: "complete",
      notifyState: "pending",
      notifyAttempts: 1,
      notifyError: expect.stringMatching(/^HTTP 5xx \(ref [0-9a-f]{8}\)$/),
      notifiedAt: null,
    });
  });

  it("schedules each retry as the one next notify message, further along the schedule", async () => {
    noJitter();
    const hook = recordingFetch(answer(502));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);

    for (const [drive, delaySeconds] of [[2, 300], [3, 1800], [4, 7200]] as const) {
      expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
      expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId, drive }, options: { delaySeconds } }]);
    }
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "pending", notifyAttempts: 4, notifyDrive: 4 });
  });

  it("drops a notify message whose drive has moved on: one live notify message per job", async () => {
    const hook = recordingFetch(answer(500), answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId); // attempt 1 fails; the retry is drive 1
    h.clock.advance(10 * 60_000);
    expect(await handleExportMessage({ kind: "notify", jobId, drive: 0 }, h.deps)).toEqual({ action: "ack" });
    expect(hook.requests).toHaveLength(1);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(hook.requests).toHaveLength(2);
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "delivered", notifyAttempts: 2 });
  });

  it("waits the longer of Retry-After and the schedule, so a receiver cannot use up the attempts", async () => {
    noJitter();
    const hook = recordingFetch(
      answer(503, { "retry-after": "1" }),
      answer(503, { "retry-after": "36000" }),
      answer(429, { "retry-after": String(30 * 24 * 3600) }),
    );
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);
    expect(h.queue.sent.map((m) => m.options)).toEqual([{ delaySeconds: 5 }]); // max(1, 5)
    await runNotify(h, jobId);
    expect(h.queue.sent.map((m) => m.options)).toEqual([{ delaySeconds: 36000 }]); // max(36000, 300)
    const thirdAttemptAt = (await jobRow(jobId)).notifyDueAt;
    await runNotify(h, jobId);
    // Retry-After is capped at 24 h; the queue delays a message at most 12 h, so it is re-delayed on arrival.
    expect((await jobRow(jobId)).notifyDueAt).toBe(thirdAttemptAt + 24 * 3600 * 1000);
    expect(h.queue.sent.map((m) => m.options)).toEqual([{ delaySeconds: 12 * 3600 }]);
    const early = h.queue.sent[0]!.body;
    h.clock.advance(12 * 3600 * 1000);
    expect(await handleExportMessage(early as ExportMessage, h.deps)).toEqual({ action: "retry", delaySeconds: 12 * 3600 });
    expect(hook.requests).toHaveLength(3);
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "pending", notifyAttempts: 3 });
  });

  it("is marked delivered when a later attempt succeeds, with every attempt counted", async () => {
    const hook = recordingFetch(answer(500), answer(503), answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(h.queue.sent).toEqual([]);

    const job = await jobRow(jobId);
    expect(job).toMatchObject({ notifyState: "delivered", notifyAttempts: 3, notifyError: null });
    expect(job.notifiedAt).toBe(new Date(h.clock.now()).toISOString());
    expect((await statusOf(scenario, jobId)).notification).toEqual({ type: "webhook", status: "delivered", attempts: 3 });
  });

  it("is given up after NOTIFY_MAX_ATTEMPTS, recording state failed and the last error", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const hook = recordingFetch(answer(500), answer(500), answer(404));
    const h = harness({ fetch: hook.fetch, config: { NOTIFY_MAX_ATTEMPTS: 3 } });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    await runExport(h, jobId);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });

    expect(hook.requests).toHaveLength(3);
    expect(h.queue.sent).toEqual([]);
    const lastError = expect.stringMatching(/^HTTP 4xx \(ref [0-9a-f]{8}\)$/);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(new RegExp(`^job ${jobId}: notification given up after 3 attempt\\(s\\): HTTP 4xx \\(ref`)));
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", notifyState: "failed", notifyAttempts: 3, notifyError: lastError });
    const status = await statusOf(scenario, jobId);
    expect(status.status).toBe("complete");
    expect(status.notification).toEqual({ type: "webhook", status: "failed", attempts: 3, lasterror: lastError });
  });

  it("sends nothing more once the notification is settled, even if a notify message comes again", async () => {
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);

    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    // A redelivered export message of a finished job does not notify twice either.
    expect(await runExport(h, jobId)).toEqual({ action: "ack" });
    expect(hook.requests).toHaveLength(1);
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "delivered", notifyAttempts: 1 });
  });

  it("acks a notify message of a job that does not exist", async () => {
    const h = harness({ fetch: recordingFetch(answer(200)).fetch });
    expect(await runNotify(h, "no-such-job")).toEqual({ action: "ack" });
  });

  it("reports a stale job snapshot as not pending without sending", async () => {
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);
    const job = await jobRow(jobId);

    expect(await deliverNotification(h.deps, job)).toEqual({ action: "done", state: "not-pending" });
    expect(hook.requests).toHaveLength(1);
  });
});

describe("an export that fails", () => {
  // The consumer logs each failed slice; the tests check what it does instead.
  beforeEach(() => void vi.spyOn(console, "error").mockImplementation(() => {}));
  const failingSlice = () => {
    throw new Error("D1 went away");
  };

  it("sends segment_export.failed with status ERROR and the reason, signed like any webhook", async () => {
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch, fault: failingSlice, config: { EXPORT_MAX_ATTEMPTS: 1 } });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });

    expect(hook.requests).toHaveLength(1);
    const { body, headers } = hook.requests[0]!;
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "failed", notifyState: "delivered", notifyAttempts: 1 });
    expect(JSON.parse(body)).toEqual({
      type: "segment_export.failed",
      timestamp: job.completedAt,
      data: {
        jobid: jobId,
        status: "ERROR",
        errormessage: expect.stringMatching(/^The export failed after 1 attempts \(internal error, reference [0-9a-f-]{36}\)$/),
        format: "json",
        segmentid: [String(scenario.segmentId)],
      },
    });
    expect(new Webhook(scenario.account.webhookSecret).verify(body, headers)).toMatchObject({ type: "segment_export.failed" });
  });

  it("retries the slice, without notifying, while attempts remain", async () => {
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch, fault: failingSlice, config: { EXPORT_MAX_ATTEMPTS: 3 } });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    // Failures are counted on the job (a message that only found the job busy is no failure).
    expect(await runExport(h, jobId)).toMatchObject({ action: "retry" });
    expect(await runExport(h, jobId)).toMatchObject({ action: "retry" });
    expect((await jobRow(jobId)).sliceFailures).toBe(2);
    expect(hook.requests).toHaveLength(0);
    expect(await runExport(h, jobId)).toEqual({ action: "ack" });
    expect(hook.requests).toHaveLength(1);
    const { errormessage } = JSON.parse(hook.requests[0]!.body).data;
    // The user gets a category and a reference; the cause ("D1 went away") stays in the log.
    expect(errormessage).toMatch(/^The export failed after 3 attempts \(internal error, reference [0-9a-f-]{36}\)$/);
  });

  it("retries the failure notice through a notify message when the webhook fails", async () => {
    noJitter();
    const hook = recordingFetch(answer(500), answer(200));
    const h = harness({ fetch: hook.fetch, fault: failingSlice, config: { EXPORT_MAX_ATTEMPTS: 1 } });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });
    expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId, drive: 1 }, options: { delaySeconds: 5 } }]);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });

    expect(hook.requests.map((r) => JSON.parse(r.body).type)).toEqual(["segment_export.failed", "segment_export.failed"]);
    const status = await statusOf(scenario, jobId);
    expect(status.status).toBe("failed");
    expect(status.notification).toEqual({ type: "webhook", status: "delivered", attempts: 2 });
  });
});
