import { Webhook } from "standardwebhooks";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
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

    expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId }, options: { delaySeconds: 5 } }]);
    expect(await jobRow(jobId)).toMatchObject({
      state: "complete",
      notifyState: "pending",
      notifyAttempts: 1,
      notifyError: "HTTP 500",
      notifiedAt: null,
    });
  });

  it("has each failed notify attempt retry its own message, further along the schedule", async () => {
    noJitter();
    const hook = recordingFetch(answer(502));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);
    h.queue.sent.length = 0;

    expect(await runNotify(h, jobId)).toEqual({ action: "retry", delaySeconds: 300 });
    expect(await runNotify(h, jobId)).toEqual({ action: "retry", delaySeconds: 1800 });
    expect(await runNotify(h, jobId)).toEqual({ action: "retry", delaySeconds: 7200 });
    // A notify message retries itself; it does not enqueue another.
    expect(h.queue.sent).toEqual([]);
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "pending", notifyAttempts: 4, notifyError: "HTTP 502" });
  });

  it("is marked delivered when a later attempt succeeds, with every attempt counted", async () => {
    const hook = recordingFetch(answer(500), answer(503), answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);
    expect(await runNotify(h, jobId)).toMatchObject({ action: "retry" });
    h.clock.advance(60_000);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });

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
    expect(await runNotify(h, jobId)).toMatchObject({ action: "retry" });
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });

    expect(hook.requests).toHaveLength(3);
    expect(warn).toHaveBeenCalledWith(`job ${jobId}: notification given up after 3 attempt(s): HTTP 404`);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", notifyState: "failed", notifyAttempts: 3, notifyError: "HTTP 404" });
    const status = await statusOf(scenario, jobId);
    expect(status.status).toBe("complete");
    expect(status.notification).toEqual({ type: "webhook", status: "failed", attempts: 3, lasterror: "HTTP 404" });
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
        errormessage: "Export failed after 1 attempts: D1 went away",
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

    expect(await runExport(h, jobId, 2)).toMatchObject({ action: "retry" });
    expect(hook.requests).toHaveLength(0);
    expect(await runExport(h, jobId, 3)).toEqual({ action: "ack" });
    expect(hook.requests).toHaveLength(1);
    expect(JSON.parse(hook.requests[0]!.body).data.errormessage).toBe("Export failed after 3 attempts: D1 went away");
  });

  it("retries the failure notice through a notify message when the webhook fails", async () => {
    noJitter();
    const hook = recordingFetch(answer(500), answer(200));
    const h = harness({ fetch: hook.fetch, fault: failingSlice, config: { EXPORT_MAX_ATTEMPTS: 1 } });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });
    expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId }, options: { delaySeconds: 5 } }]);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });

    expect(hook.requests.map((r) => JSON.parse(r.body).type)).toEqual(["segment_export.failed", "segment_export.failed"]);
    const status = await statusOf(scenario, jobId);
    expect(status.status).toBe("failed");
    expect(status.notification).toEqual({ type: "webhook", status: "delivered", attempts: 2 });
  });
});
