import { createScheduledController, createMessageBatch, getQueueResult, createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { exportJobs } from "../../src/db/schema";
import { DEAD_LETTER_QUEUE_NAME, EXPORT_QUEUE_NAME, handleDeadLetter } from "../../src/export/consumer";
import type { QueueMessage } from "../../src/export/message";
import { sweepStrandedJobs } from "../../src/export/sweeper";
import exporterModule from "../../src/workers/exporter";
import { addSubscriber, createAccount, createList, createSegment, db, type TestAccount } from "../fixtures";
import { createJob, exportedJson, handle, harness, jobRow, runToEnd, type Harness } from "./driver";

/**
 * The sweeper is the export worker's every-minute cron. Queue messages can be lost (the isolate dies between
 * the job insert and the send; a local queue loses in-flight messages on a crash; a message is dead-lettered);
 * the sweeper finds every job nobody is working on and drives it again, so no job is ever stranded.
 */
let account: TestAccount;
let segmentId: number;
const EMAILS = Array.from({ length: 30 }, (_, i) => `swept${String(i).padStart(2, "0")}@example.com`);

beforeAll(async () => {
  account = await createAccount();
  const list = await createList(account.id);
  for (const email of EMAILS) await addSubscriber(account.id, list, { email });
  segmentId = await createSegment(account.id, { match: "all", rules: [{ field: "list", operator: "equals", value: list }] });
});

const LOST_AFTER_MS = 120_000;
/** Slices of two 7-row pages: 30 rows take three slices. */
const smallSlices = () => harness({ EXPORT_SLICE_MAX_PAGES: 2, SWEEP_LOST_AFTER_SECONDS: LOST_AFTER_MS / 1000 });
const newJob = (h: Harness) => createJob(h, account, { segmentid: [segmentId] });

/** A fault hook that kills the slice (its promise never settles, like a dead isolate) the first `times` times. */
function killAt(point: string, times = 1) {
  let kills = 0;
  const hook = (reached: string) => {
    if (reached === point && kills < times) {
      kills++;
      return new Promise<void>(() => {});
    }
  };
  return { hook, kills: () => kills };
}

async function expectExactFile(jobId: string) {
  const job = await jobRow(jobId);
  expect(job.state).toBe("complete");
  const file = await exportedJson(jobId);
  expect(file.response.data.subscribers.map((s) => s.emailaddress)).toEqual(EMAILS);
  expect(file.response.data.count).toBe(EMAILS.length);
}

const completedWebhooks = (h: Harness) => h.webhooks.filter((w) => JSON.parse(w.body).type === "segment_export.completed");

describe("the sweeper re-drives a job whose message was lost", () => {
  it("when the API inserted the job but its message never reached the queue", async () => {
    const h = smallSlices();
    const jobId = await newJob(h); // its message went to the recorder, and is dropped here: lost

    h.clock.now += LOST_AFTER_MS - 1000;
    expect(await sweepStrandedJobs(h.deps)).toMatchObject({ redriven: 0 });
    expect(h.sent).toEqual([]);

    h.clock.now += 2000;
    expect(await sweepStrandedJobs(h.deps)).toEqual({ redriven: 1, deaths: 0, failed: 0, notifications: 0 });
    expect(h.sent.map((m) => m.body)).toEqual([{ kind: "export", jobId, drive: 0 }]);
    h.sent.length = 0;

    await runToEnd(h, jobId);
    await expectExactFile(jobId);
    expect(completedWebhooks(h)).toHaveLength(1);
  });

  it("when a continuation between two slices was lost", async () => {
    const h = smallSlices();
    const jobId = await newJob(h);
    expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" });
    expect(h.sent.map((m) => m.body)).toEqual([{ kind: "export", jobId, drive: 1 }]);
    h.sent.length = 0; // the continuation is lost

    h.clock.now += LOST_AFTER_MS + 1000;
    await sweepStrandedJobs(h.deps);
    expect(h.sent.map((m) => m.body)).toEqual([{ kind: "export", jobId, drive: 1 }]);
    h.sent.length = 0;
    await runToEnd(h, jobId);
    await expectExactFile(jobId);
    expect((await jobRow(jobId)).redrives).toBe(0); // a lost message is not a death
  });

  it("when the dead-letter queue holds its export message: the job fails and the user is told", async () => {
    const h = smallSlices();
    const jobId = await newJob(h);
    expect(await handleDeadLetter({ kind: "export", jobId, drive: 0 }, h.deps)).toEqual({ action: "ack" });
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "failed", errorMessage: "The export was abandoned after repeated failures", notifyState: "delivered" });
    expect(h.webhooks.map((w) => JSON.parse(w.body).type)).toEqual(["segment_export.failed"]);
  });

  it("ignores a dead-lettered duplicate whose drive has moved on: the job's live message goes on", async () => {
    const h = smallSlices();
    const jobId = await newJob(h);
    await handle(h, { kind: "export", jobId, drive: 0 }); // one slice; the job is at drive 1 now
    expect(await handleDeadLetter({ kind: "export", jobId, drive: 0 }, h.deps)).toEqual({ action: "ack" });
    expect((await jobRow(jobId)).state).toBe("running");
    h.sent.length = 0;
    await runToEnd(h, jobId);
    await expectExactFile(jobId);
  });
});

describe("the sweeper re-drives a job whose slice died", () => {
  it("only after the dead slice's lease ran out, and the job completes with one notification", async () => {
    const kill = killAt("mid-part");
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 2, SWEEP_LOST_AFTER_SECONDS: 120 }, kill.hook);
    const jobId = await createJob(h, account, { segmentid: [segmentId] });
    void handle(h, { kind: "export", jobId, drive: 0 }); // dies mid-slice, holding the lease
    await expect.poll(() => kill.kills()).toBe(1);

    h.clock.now += LOST_AFTER_MS + 1000;
    expect(await sweepStrandedJobs(h.deps)).toMatchObject({ redriven: 0 }); // the lease is still live
    const { leaseExpiresAt } = await jobRow(jobId);
    h.clock.now = leaseExpiresAt + 1;
    expect(await sweepStrandedJobs(h.deps)).toEqual({ redriven: 1, deaths: 1, failed: 0, notifications: 0 });
    expect(h.sent.map((m) => m.body)).toEqual([{ kind: "export", jobId, drive: 0 }]);
    // Swept once, a job is not swept again while its new message is on time.
    expect(await sweepStrandedJobs(h.deps)).toMatchObject({ redriven: 0 });
    h.sent.length = 0;

    await runToEnd(h, jobId);
    await expectExactFile(jobId);
    expect(completedWebhooks(h)).toHaveLength(1);
    expect((await jobRow(jobId)).redrives).toBe(1);
  });

  it("fails a job whose slices keep dying after EXPORT_MAX_REDRIVES, and notifies the failure once", async () => {
    const kill = killAt("after-read", 100);
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 2, EXPORT_MAX_REDRIVES: 2, SWEEP_LOST_AFTER_SECONDS: 120 }, kill.hook);
    const jobId = await createJob(h, account, { segmentid: [segmentId] });
    for (let death = 1; death <= 3; death++) {
      void handle(h, { kind: "export", jobId, drive: 0 });
      await expect.poll(() => kill.kills()).toBe(death);
      h.clock.now = (await jobRow(jobId)).leaseExpiresAt + 1;
      h.sent.length = 0;
      const report = await sweepStrandedJobs(h.deps);
      expect(report).toMatchObject(death <= 2 ? { redriven: 1, deaths: 1 } : { redriven: 0, failed: 1 });
    }
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "failed", errorMessage: "The export was interrupted 3 times and has been stopped" });
    expect(h.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId, drive: 0 }]);
    await handle(h, { kind: "notify", jobId, drive: 0 });
    await handle(h, { kind: "notify", jobId, drive: 0 }); // delivered twice by the queue: told once
    expect(h.webhooks.map((w) => JSON.parse(w.body).type)).toEqual(["segment_export.failed"]);
  });

  it("leaves a live slice alone, however late its message looks", async () => {
    let resume: () => void = () => {};
    let paused = false;
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 2, SWEEP_LOST_AFTER_SECONDS: 120 }, (point) => {
      if (point === "after-read" && !paused) {
        paused = true;
        return new Promise<void>((resolve) => (resume = resolve));
      }
    });
    const jobId = await createJob(h, account, { segmentid: [segmentId] });
    const slice = handle(h, { kind: "export", jobId, drive: 0 });
    await expect.poll(() => paused).toBe(true);
    h.clock.now += LOST_AFTER_MS + 5000; // well past due, but the lease (budget + 2 min) holds
    expect(await sweepStrandedJobs(h.deps)).toMatchObject({ redriven: 0, deaths: 0 });
    resume();
    expect(await slice).toEqual({ action: "ack" });
    expect(h.sent.map((m) => m.body)).toEqual([{ kind: "export", jobId, drive: 1 }]);
  });

  it("drops the original message if it turns up after the sweeper's copy ran: one slice per drive", async () => {
    const h = smallSlices();
    const jobId = await newJob(h);
    h.sent.length = 0;
    h.clock.now += LOST_AFTER_MS + 1000;
    await sweepStrandedJobs(h.deps); // the original message is merely late; the sweeper sends a copy
    const copy = h.sent.splice(0)[0]!.body;
    expect(await handle(h, copy)).toEqual({ action: "ack" }); // runs the first slice
    const before = await jobRow(jobId);
    expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" }); // the late original
    const after = await jobRow(jobId);
    expect(after.slices).toBe(before.slices);
    expect(after.version).toBe(before.version);
    expect(h.sent).toHaveLength(1); // only the copy's continuation
  });
});

describe("the sweeper re-drives a notification whose message was lost", () => {
  it("delivers it once, after the slice died between completing the file and notifying", async () => {
    const kill = killAt("before-notify");
    const h = harness({ SWEEP_LOST_AFTER_SECONDS: 120 }, kill.hook);
    const jobId = await createJob(h, account, { segmentid: [segmentId] });
    void handle(h, { kind: "export", jobId, drive: 0 });
    await expect.poll(() => kill.kills()).toBe(1);
    await expect.poll(async () => (await jobRow(jobId)).state).toBe("complete");
    expect((await jobRow(jobId)).notifyState).toBe("pending");

    h.clock.now += LOST_AFTER_MS + 1000;
    expect(await sweepStrandedJobs(h.deps)).toEqual({ redriven: 0, deaths: 0, failed: 0, notifications: 1 });
    expect(h.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId, drive: 0 }]);
    await handle(h, h.sent[0]!.body);
    expect(completedWebhooks(h)).toHaveLength(1);
    expect((await jobRow(jobId)).notifyState).toBe("delivered");
    expect(await sweepStrandedJobs(h.deps)).toMatchObject({ notifications: 0 });
  });

  it("leaves a notification alone while its retry is scheduled", async () => {
    const h = harness({ SWEEP_LOST_AFTER_SECONDS: 120 });
    h.deps.fetch = (async () => new Response("busy", { status: 503, headers: { "retry-after": "3600" } })) as typeof fetch;
    const jobId = await createJob(h, account, { segmentid: [segmentId] });
    // The slice completes; the webhook answers 503, and a retry is scheduled an hour on.
    expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" });
    const job = await jobRow(jobId);
    expect(job.notifyState).toBe("pending");
    expect(job.notifyDueAt).toBe(h.clock.now + 3600_000);
    h.sent.length = 0;
    h.clock.now += 3600_000 - 1000;
    expect(await sweepStrandedJobs(h.deps)).toMatchObject({ notifications: 0 });
    // And an export message redelivered meanwhile does not jump the queue's backoff.
    expect(await handle(h, { kind: "export", jobId, drive: job.drive })).toEqual({ action: "ack" });
    expect((await jobRow(jobId)).notifyAttempts).toBe(1);
  });
});

/** The export worker's entry module, as the runtime sees it. */
const exporter = exporterModule as Required<Pick<ExportedHandler<Env>, "queue" | "scheduled">>;

describe("the export worker's entry point", () => {
  it("runs the sweeper on its Cron Trigger", async () => {
    const h = smallSlices();
    const jobId = await newJob(h);
    // Make the job look overdue to the real clock the worker uses.
    await db().update(exportJobs).set({ dueAt: Date.now() - 10 * 60_000 }).where(eq(exportJobs.id, jobId));
    const ctx = createExecutionContext();
    await exporter.scheduled(createScheduledController({ cron: "* * * * *", scheduledTime: new Date() }), env, ctx);
    const job = await jobRow(jobId);
    // The real queue got the re-drive (the export worker consumes it); the job is on time again.
    expect(job.dueAt).toBeGreaterThan(Date.now() - 60_000);
  });

  it("dispatches on exact queue names, and refuses a queue it does not know", async () => {
    const ctx = createExecutionContext();
    const body: QueueMessage = { kind: "export", jobId: "no-such-job", drive: 0 };
    const batch = createMessageBatch(EXPORT_QUEUE_NAME, [{ id: "m1", timestamp: new Date(), attempts: 1, body }]);
    await exporter.queue(batch, env, ctx);
    expect(await getQueueResult(batch, ctx)).toMatchObject({ explicitAcks: ["m1"], retryMessages: [] });

    const dead = createMessageBatch(DEAD_LETTER_QUEUE_NAME, [{ id: "m2", timestamp: new Date(), attempts: 1, body }]);
    await exporter.queue(dead, env, ctx);
    expect(await getQueueResult(dead, ctx)).toMatchObject({ explicitAcks: ["m2"] });

    const stray = createMessageBatch("segment-export-jobs-dlq", [{ id: "m3", timestamp: new Date(), attempts: 1, body }]);
    await expect(exporter.queue(stray, env, ctx)).rejects.toThrow('the export worker does not consume queue "segment-export-jobs-dlq"');
  });
});

describe("fair sharing of the queue between accounts", () => {
  it("a small export of another account waits at most one slice of a large export", async () => {
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 }); // the large job: 30 rows, one 7-row page a slice
    const large = await createJob(h, account, { segmentid: [segmentId] });
    const other = await createAccount();
    const otherList = await createList(other.id);
    await addSubscriber(other.id, otherList, { email: "small@example.com" });
    const otherSegment = await createSegment(other.id, { match: "all", rules: [{ field: "list", operator: "equals", value: otherList }] });

    // The queue, first in first out. The large job's first slice runs, then the small request arrives.
    const queue: QueueMessage[] = [{ kind: "export", jobId: large, drive: 0 }];
    const ran: string[] = [];
    const step = async () => {
      const message = queue.shift()!;
      if (message.kind !== "move") ran.push(message.jobId);
      await handle(h, message);
      queue.push(...h.sent.splice(0).map((m) => m.body));
    };
    await step();
    const small = await createJob(h, other, { segmentid: [otherSegment] });
    queue.push({ kind: "export", jobId: small, drive: 0 });
    while ((await jobRow(small)).state !== "complete") await step();

    const afterSmallArrived = ran.slice(1);
    expect(afterSmallArrived.filter((id) => id === large)).toHaveLength(1);
    expect(afterSmallArrived.at(-1)).toBe(small);
    expect((await jobRow(large)).state).toBe("running"); // the large job goes on afterwards
  });
});
