import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { consumeDeadLetters, consumeExportBatch, consumerDeps, EXPORT_QUEUE_NAME, DEAD_LETTER_QUEUE_NAME } from "../../src/export/consumer";
import { addSubscriber, createAccount, createList, createSegment } from "../fixtures";
import { createJob, handle, harness, jobRow } from "./driver";

/**
 * The glue between the queue and the consumer's decisions: real message batches in, the queue's record of
 * acks and retries out (createMessageBatch / getQueueResult).
 */
afterEach(() => vi.restoreAllMocks());

const message = (id: string, body: unknown, attempts = 1) => ({ id, timestamp: new Date(), attempts, body });

/** The delays the handler asked for, by message id (the queue's own record keeps only which were retried). */
function retryDelays(batch: MessageBatch<unknown>) {
  const delays: Record<string, number | undefined> = {};
  for (const m of batch.messages) {
    const retry = m.retry.bind(m);
    m.retry = (options?: QueueRetryOptions) => {
      delays[m.id] = options?.delaySeconds;
      retry(options);
    };
  }
  return delays;
}

/** Consumer dependencies whose database fails every query: whatever the consumer does, it throws. */
function brokenDatabaseDeps() {
  const deps = consumerDeps(env);
  const failing = new Proxy({}, { get: () => () => { throw new Error("D1 is unreachable"); } });
  return { ...deps, db: failing as typeof deps.db };
}

describe("the export queue's handler", () => {
  it("acks (drops) a message that is not an export message, and logs it", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const ctx = createExecutionContext();
    const batch = createMessageBatch(EXPORT_QUEUE_NAME, [
      message("junk-1", "hello"),
      message("junk-2", { kind: "export", jobId: "j" }), // no drive
      message("junk-3", { kind: "reindex", jobId: "j", drive: 0 }),
    ]);
    await consumeExportBatch(batch, consumerDeps(env));
    expect(await getQueueResult(batch, ctx)).toMatchObject({ explicitAcks: ["junk-1", "junk-2", "junk-3"], retryMessages: [] });
    expect(error).toHaveBeenCalledTimes(3);
  });

  it("turns any throw into a retry on the export schedule, never an immediate redelivery", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const ctx = createExecutionContext();
    const batch = createMessageBatch(EXPORT_QUEUE_NAME, [
      message("first", { kind: "export", jobId: "j1", drive: 0 }, 1),
      message("third", { kind: "export", jobId: "j2", drive: 0 }, 3),
    ]);
    const delays = retryDelays(batch);
    await consumeExportBatch(batch, brokenDatabaseDeps());
    expect(await getQueueResult(batch, ctx)).toMatchObject({ explicitAcks: [], retryMessages: [{ msgId: "first" }, { msgId: "third" }] });
    expect(delays).toEqual({ first: 10, third: 40 });
  });

  it("turns a throw in the notify path into a retry on the notification schedule", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const ctx = createExecutionContext();
    const batch = createMessageBatch(EXPORT_QUEUE_NAME, [message("n", { kind: "notify", jobId: "j", drive: 0 }, 2)]);
    const delays = retryDelays(batch);
    await consumeExportBatch(batch, brokenDatabaseDeps());
    expect(await getQueueResult(batch, ctx)).toMatchObject({ retryMessages: [{ msgId: "n" }] });
    expect(delays).toEqual({ n: 300 });
  });

  it("applies the consumer's own retry delay, as decided (a job busy with another slice)", async () => {
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 }, (point) => (point === "after-read" ? new Promise(() => {}) : undefined));
    const account = await createAccount();
    const list = await createList(account.id);
    await addSubscriber(account.id, list, { email: "busy@example.com" });
    const segment = await createSegment(account.id, { match: "all", rules: [] });
    const jobId = await createJob(h, account, { segmentid: [segment] });
    void handle(h, { kind: "export", jobId, drive: 0 }); // holds the lease, and never lets go
    await expect.poll(async () => (await jobRow(jobId)).leaseExpiresAt).toBeGreaterThan(0);

    const ctx = createExecutionContext();
    const batch = createMessageBatch(EXPORT_QUEUE_NAME, [message("again", { kind: "export", jobId, drive: 0 }, 2)]);
    const delays = retryDelays(batch);
    await consumeExportBatch(batch, h.deps);
    const { leaseExpiresAt } = await jobRow(jobId);
    expect((await getQueueResult(batch, ctx)).retryMessages).toEqual([{ msgId: "again" }]);
    expect(delays).toEqual({ again: Math.ceil((leaseExpiresAt - h.clock.now) / 1000) + 1 });
    expect((await jobRow(jobId)).sliceFailures).toBe(0); // waiting is not failing
  });
});

describe("the dead-letter queue's handler", () => {
  it("marks a dead notification failed, and the status shows it", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const h = harness();
    h.deps.fetch = (async () => new Response("down", { status: 500 })) as typeof fetch;
    const account = await createAccount();
    const list = await createList(account.id);
    await addSubscriber(account.id, list, { email: "dead@example.com" });
    const segment = await createSegment(account.id, { match: "all", rules: [] });
    const jobId = await createJob(h, account, { segmentid: [segment] });
    await handle(h, { kind: "export", jobId, drive: 0 }); // completes; the webhook fails; notify drive 1 is scheduled

    const ctx = createExecutionContext();
    const stale = createMessageBatch(DEAD_LETTER_QUEUE_NAME, [message("old", { kind: "notify", jobId, drive: 0 })]);
    await consumeDeadLetters(stale, h.deps);
    expect((await jobRow(jobId)).notifyState).toBe("pending"); // a stale copy died: the live message goes on

    const live = createMessageBatch(DEAD_LETTER_QUEUE_NAME, [message("live", { kind: "notify", jobId, drive: 1 })]);
    await consumeDeadLetters(live, h.deps);
    expect(await getQueueResult(live, ctx)).toMatchObject({ explicitAcks: ["live"] });
    expect(await jobRow(jobId)).toMatchObject({
      state: "complete",
      notifyState: "failed",
      notifyError: "undeliverable: the queue gave up on it",
    });
  });
});
