/**
 * Helpers for the tests of the limits and dedupe (test/api/limits.test.ts, test/api/dedupe.test.ts): the app
 * called with some bindings replaced (a queue that records or refuses, a rate limiter that says no), and a
 * small account to export from.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { createApp } from "../../src/api/app";
import type { ExportMessage } from "../../src/export/message";
import { exportJobs, idempotencyKeys } from "../../src/db/schema";
import { addSubscriber, createAccount, createField, createList, createSegment, db, request, type ApiResponse, type TestAccount } from "../fixtures";
import { EMAIL_NOTIFY } from "./helpers";

const app = createApp();

export interface CallResult<T = any> extends ApiResponse<T> {
  headers: Headers;
}

/** POSTs to /apijson.php through the app, with some bindings or variables of the environment replaced. */
export async function callWith<T = any>(overrides: Partial<Env>, body: unknown): Promise<CallResult<T>> {
  const res = await app.fetch(
    new Request("https://exports.test/apijson.php", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
    { ...env, ...overrides },
  );
  return { status: res.status, headers: res.headers, body: (await res.json()) as ApiResponse<T>["body"] };
}

/** A queue that keeps what is sent to it, so that jobs stay queued and messages can be counted. */
export function recordingQueue(options: { fail?: boolean } = {}) {
  const sent: ExportMessage[] = [];
  const queue = {
    async send(body: ExportMessage) {
      if (options.fail) throw new Error("queue unavailable (test)");
      sent.push(body);
    },
    async sendBatch(messages: Iterable<{ body: ExportMessage }>) {
      if (options.fail) throw new Error("queue unavailable (test)");
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue;
  return { queue, sent };
}

/** A rate limiter that records its calls and answers as told. */
export function fakeLimiter(answer: boolean | "throw") {
  const calls: RateLimitOptions[] = [];
  const limiter: RateLimit = {
    async limit(options) {
      calls.push(options);
      if (answer === "throw") throw new Error("rate limiter down (test)");
      return { success: answer };
    },
  };
  return { limiter, calls };
}

export interface SmallAccount {
  account: TestAccount;
  segments: { all: number; vip: number };
}

/** An account with two segments and two custom fields, enough to tell requests apart. */
export async function smallAccount(): Promise<SmallAccount> {
  const account = await createAccount();
  const list = await createList(account.id);
  await createField(account.id, "First Name");
  await createField(account.id, "Company");
  await addSubscriber(account.id, list, { email: "ada@example.com" });
  const all = await createSegment(account.id, { match: "all", rules: [{ field: "list", operator: "equals", value: list }] });
  const vip = await createSegment(account.id, { match: "all", rules: [{ field: "email", operator: "starts_with", value: "ada" }] });
  return { account, segments: { all, vip } };
}

/** A GetSegmentSubscribersAsync request of the small account, with details added or replaced. */
export const asyncRequest = (s: SmallAccount, details: Record<string, unknown> = {}) =>
  request(s.account, "Segments", "GetSegmentSubscribersAsync", { segmentid: [s.segments.all], notify: EMAIL_NOTIFY, ...details });

export async function jobRows(accountId: number) {
  return db().select().from(exportJobs).where(eq(exportJobs.accountId, accountId)).orderBy(exportJobs.createdAt);
}

export async function keyRows(accountId: number) {
  return db().select().from(idempotencyKeys).where(eq(idempotencyKeys.accountId, accountId));
}

/** Moves a job to another state, as the export worker would. */
export async function setJobState(jobId: string, state: "queued" | "running" | "complete" | "failed") {
  await db().update(exportJobs).set({ state }).where(eq(exportJobs.id, jobId));
}
