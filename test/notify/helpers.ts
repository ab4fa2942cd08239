/** Builders for the notification tests: a finished-job pipeline driven by hand, with injected fetch, clock and queue. */
import type { ExportMessage } from "../../src/export/message";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { loadConfig, type Config } from "../../src/config";
import { accounts, exportJobs } from "../../src/db/schema";
import { consumerDeps, handleExportMessage, type ConsumerDeps, type QueueAction } from "../../src/export/consumer";
import { getSegmentSubscribersAsyncStatus } from "../../src/methods/segments_get_segment_subscribers_async_status";
import { acceptExport, queueRecorder, type QueueRecorder } from "../export/driver";
import { addSubscriber, createAccount, createList, createSegment, db, methodContext, type TestAccount } from "../fixtures";

export { jobRow, queueRecorder, type QueueRecorder } from "../export/driver";

/** A clock the test moves by hand, starting now (so that download links are still valid for the status call). */
export function testClock(start = Date.now()) {
  let time = start;
  return {
    now: () => time,
    advance(ms: number) {
      time += ms;
    },
  };
}

export interface CapturedRequest {
  url: string;
  method: string;
  redirect: RequestInit["redirect"];
  headers: Record<string, string>;
  body: string;
}

/**
 * A fetch for `deps.fetch` that records each request and answers with the next of `answers` (the last one
 * repeats). An answer is a Response factory, or a function that may throw or never settle.
 */
export function recordingFetch(...answers: Array<(request: CapturedRequest, init: RequestInit) => Response | Promise<Response>>) {
  const requests: CapturedRequest[] = [];
  const fetch = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const captured: CapturedRequest = {
      url: String(input),
      method: init.method ?? "GET",
      redirect: init.redirect,
      headers: Object.fromEntries(new Headers(init.headers).entries()),
      body: typeof init.body === "string" ? init.body : await new Response(init.body).text(),
    };
    requests.push(captured);
    const answer = answers[Math.min(requests.length - 1, answers.length - 1)]!;
    return answer(captured, init);
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

export const answer = (status: number, headers: Record<string, string> = {}) => () =>
  new Response(status === 204 || (status >= 300 && status < 400) ? null : "answer", { status, headers });

export interface NotifyScenario {
  account: TestAccount;
  accountRow: typeof accounts.$inferSelect;
  segmentId: number;
  /** The subscribers the segment matches. */
  count: number;
}

/** An account with one list of `count` active subscribers and a segment that matches all of them. */
export async function notifyScenario(count = 3): Promise<NotifyScenario> {
  const account = await createAccount();
  const list = await createList(account.id);
  for (let i = 0; i < count; i++) {
    await addSubscriber(account.id, list, { email: `member${i}@example.com` });
  }
  const segmentId = await createSegment(account.id, {
    match: "all",
    rules: [{ field: "list", operator: "equals", value: list }],
  });
  const accountRow = (await db().select().from(accounts).where(eq(accounts.id, account.id)).get())!;
  return { account, accountRow, segmentId, count };
}

export interface Harness {
  deps: ConsumerDeps;
  queue: QueueRecorder;
  clock: ReturnType<typeof testClock>;
}

/** Consumer deps like the real ones, with a recording queue, a hand-moved clock and the given overrides. */
export function harness(
  overrides: { fetch?: typeof fetch; config?: Partial<Config>; mailer?: unknown; fault?: ConsumerDeps["fault"] } = {},
): Harness {
  const queue = queueRecorder();
  const clock = testClock();
  const testEnv = {
    ...env,
    EXPORT_QUEUE: queue,
    ...(overrides.mailer ? { MAILER: overrides.mailer } : {}),
  } as unknown as Env;
  const base = consumerDeps(testEnv);
  const deps: ConsumerDeps = {
    ...base,
    config: { ...base.config, ...overrides.config },
    now: clock.now,
    ...(overrides.fetch ? { fetch: overrides.fetch } : {}),
    ...(overrides.fault ? { fault: overrides.fault } : {}),
  };
  return { deps, queue, clock };
}

/** Creates an export job through the API method itself, its queue message going to the recorder. */
export const createJob = (
  scenario: NotifyScenario,
  h: Harness,
  notify: { type: "webhook" | "email"; value: string },
  details: Record<string, unknown> = {},
): Promise<string> =>
  acceptExport(h.deps.env, h.queue, scenario.account.id, { segmentid: [String(scenario.segmentId)], notify, ...details });

/**
 * Runs the job's export messages as the queue would (each continuation in turn) until one does not
 * enqueue another export slice. Returns the last action; notify messages it enqueued stay in the recorder.
 */
export async function runExport(h: Harness, jobId: string): Promise<QueueAction> {
  let message: ExportMessage = { kind: "export", jobId, drive: 0 };
  for (let slices = 0; slices < 100; slices++) {
    const action = await handleExportMessage(message, h.deps);
    const next = h.queue.sent.findIndex((m) => m.body.kind === "export");
    if (next === -1) return action;
    message = h.queue.sent.splice(next, 1)[0]!.body as ExportMessage;
  }
  throw new Error("the export did not finish in 100 slices");
}

/**
 * Delivers the job's live notify message (the one carrying its current notify drive) once it is due: moves
 * the clock to the attempt's due time, as the queue's delay would, and runs the message.
 */
export async function runNotify(h: Harness, jobId: string) {
  const job = await db().select().from(exportJobs).where(eq(exportJobs.id, jobId)).get();
  if (job && job.notifyDueAt > h.clock.now()) h.clock.advance(job.notifyDueAt - h.clock.now());
  h.queue.sent.splice(0);
  return handleExportMessage({ kind: "notify", jobId, drive: job?.notifyDrive ?? 0 }, h.deps);
}

/** What GetSegmentSubscribersAsyncStatus answers for the job. */
export async function statusOf(scenario: NotifyScenario, jobId: string) {
  return (await getSegmentSubscribersAsyncStatus.handle(
    methodContext(env, scenario.accountRow),
    { jobid: jobId },
  )) as {
    status: string;
    url: string | null;
    expires_at: string | null;
    notification: { type: string; status: string; attempts: number; lasterror?: string };
  };
}
