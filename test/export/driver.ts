/**
 * Drives the export consumer by hand: jobs are created through the API method with a recording queue, so the
 * pool's automatic consumer never sees them, and each queue message is handled by calling the consumer.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { loadConfig, type Config } from "../../src/config";
import { accounts, exportJobs, type ExportJob } from "../../src/db/schema";
import { handleExportMessage, type ConsumerDeps, type QueueAction } from "../../src/export/consumer";
import type { QueueMessage } from "../../src/export/message";
import { handleMoveMessage, type MoveFaultPoint } from "../../src/shards/move";
import type { FaultPoint } from "../../src/export/slice";
import {
  detailsSchema,
  getSegmentSubscribersAsync,
} from "../../src/methods/segments_get_segment_subscribers_async";
import { db, methodContext, type TestAccount } from "../fixtures";

export interface SentMessage {
  body: QueueMessage;
  options?: QueueSendOptions;
}

/** Stands in for EXPORT_QUEUE: records what is sent instead of letting the pool's consumer race the test. */
export function queueRecorder() {
  const sent: SentMessage[] = [];
  return {
    sent,
    async send(body: QueueMessage, options?: QueueSendOptions) {
      sent.push({ body, ...(options ? { options } : {}) });
    },
  };
}
export type QueueRecorder = ReturnType<typeof queueRecorder>;

/**
 * Accepts an export request through the API method itself, with `env`'s queue (a recorder), and returns the
 * job id after checking that exactly one export message was queued for it.
 */
export async function acceptExport(testEnv: Env, queue: QueueRecorder, accountId: number, details: Record<string, unknown>) {
  const account = await db().select().from(accounts).where(eq(accounts.id, accountId)).get();
  // These tests leave interrupted jobs behind on purpose, many per account: lift the per-account cap here
  // (test/api/limits.test.ts tests the cap itself).
  const config = { ...loadConfig(env), EXPORT_MAX_ACTIVE_PER_ACCOUNT: 1_000_000 };
  const { jobid } = (await getSegmentSubscribersAsync.handle(
    methodContext(testEnv, account!, config),
    detailsSchema.parse(details),
  )) as { jobid: string };
  const queued = queue.sent.splice(0);
  if (queued.length !== 1 || queued[0]!.body.kind !== "export" || queued[0]!.body.jobId !== jobid) {
    throw new Error(`expected one export message for ${jobid}, got ${JSON.stringify(queued)}`);
  }
  return jobid;
}

export interface Webhook {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface Harness {
  deps: ConsumerDeps;
  queue: QueueRecorder;
  sent: SentMessage[];
  webhooks: Webhook[];
  clock: { now: number };
}

/** Consumer dependencies with a recording queue, a webhook receiver that answers 200, and a settable clock. */
export function harness(
  overrides: Partial<Config> = {},
  fault?: (point: FaultPoint) => void | Promise<void>,
  moveFault?: (point: MoveFaultPoint) => void | Promise<void>,
): Harness {
  const queue = queueRecorder();
  const webhooks: Webhook[] = [];
  // Starts at the real time: the API method stamps new jobs with it (due_at), and the sweeper compares against it.
  const clock = { now: Date.now() };
  const testEnv = { ...env, EXPORT_QUEUE: queue } as unknown as Env;
  const deps: ConsumerDeps = {
    env: testEnv,
    config: { ...loadConfig(env), ...overrides },
    db: db(),
    now: () => clock.now,
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      webhooks.push({ url: request.url, headers: Object.fromEntries(request.headers), body: await request.text() });
      return new Response("ok");
    }) as typeof fetch,
    ...(fault ? { fault } : {}),
    ...(moveFault ? { moveFault } : {}),
  };
  return { deps, queue, sent: queue.sent, webhooks, clock };
}

/** A fault hook that throws at the `nth` time the slice reaches `point`, once. */
export function dieAt(point: FaultPoint, nth: number) {
  let seen = 0;
  let died = false;
  return {
    get died() {
      return died;
    },
    fault: (reached: FaultPoint) => {
      if (reached !== point || died) return;
      if (++seen === nth) {
        died = true;
        throw new Error(`the isolate died at ${point} (${nth})`);
      }
    },
  };
}

/** Accepts an export request the way the API does, without touching the real queue. */
export const createJob = (h: Harness, account: TestAccount, details: Record<string, unknown>): Promise<string> =>
  acceptExport(h.deps.env, h.queue, account.id, {
    // A target of its own, so that a job left running by an earlier test does not absorb this one as a duplicate.
    notify: { type: "webhook", value: `https://hooks.test/exports/${crypto.randomUUID()}` },
    ...details,
  });

/** Handles one message as the export worker's queue handler does (exports, notifications and moves). */
export const handle = (h: Harness, message: QueueMessage): Promise<QueueAction> =>
  message.kind === "move" ? handleMoveMessage(message, h.deps) : handleExportMessage(message, h.deps);

/**
 * Plays the queue: handles the job's message, then every continuation it enqueues, retrying a message the
 * consumer asks to retry, until nothing is left. Returns how many messages ran.
 */
export async function runToEnd(h: Harness, jobId: string, maxMessages = 500): Promise<number> {
  const { drive } = await jobRow(jobId);
  return playQueue(h, [{ kind: "export", jobId, drive }], maxMessages);
}

/** Plays the queue from the given messages until nothing is left; returns how many messages ran. */
export async function playQueue(h: Harness, first: QueueMessage[], maxMessages = 500): Promise<number> {
  const pending = [...first];
  let handled = 0;
  while (pending.length > 0) {
    if (++handled > maxMessages) throw new Error(`the queue did not empty within ${maxMessages} messages`);
    const message = pending.shift()!;
    const action = await handle(h, message);
    for (const next of h.sent.splice(0)) pending.push(next.body);
    if (action.action === "retry") {
      // A retry waits for its delay: let the clock pass it (it also lets an abandoned lease expire).
      h.clock.now += (action.delaySeconds + 1) * 1000;
      pending.push(message);
    }
  }
  return handled;
}

export async function jobRow(jobId: string): Promise<ExportJob> {
  return (await db().select().from(exportJobs).where(eq(exportJobs.id, jobId)).get())!;
}

/** The finished file, read straight from R2. */
export async function exportedFile(jobId: string): Promise<string> {
  const job = await jobRow(jobId);
  const object = await env.EXPORTS.get(job.objectKey);
  if (!object) throw new Error(`no file for job ${jobId}`);
  return object.text();
}

export async function exportedJson(jobId: string) {
  return JSON.parse(await exportedFile(jobId)) as {
    response: {
      status: string;
      data: {
        count: number;
        subscribers: Array<{
          subscriberid: number;
          emailaddress: string;
          status: string;
          subscribedate: string;
          customfields: Record<string, unknown>;
          tags?: string[];
        }>;
      };
    };
  };
}
