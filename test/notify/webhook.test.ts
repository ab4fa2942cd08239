import { exports } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { beforeAll, describe, expect, it } from "vitest";
import type { ExportEvent } from "../../src/notify/event";
import { sendWebhook, type WebhookDelivery } from "../../src/notify/webhook";
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
const SECRET = `whsec_${btoa("a test secret of 24+ bytes!!")}`;

const completedEvent: ExportEvent = {
  type: "segment_export.completed",
  timestamp: "2026-03-01T12:00:00.000Z",
  data: {
    jobid: "job-1",
    status: "SUCCESS",
    count: 3,
    url: "https://exports.test/exports/job-1?expires=1&signature=ab",
    expires_at: "2026-03-08T12:00:00.000Z",
    format: "json",
    segmentid: ["7"],
  },
};

const delivery = (overrides: Partial<WebhookDelivery>): WebhookDelivery => ({
  url: HOOK,
  secret: SECRET,
  messageId: "msg_job-1",
  event: completedEvent,
  timeoutMs: 1_000,
  now: new Date("2026-03-01T12:00:05Z"),
  ...overrides,
});

/** A fetch that answers only when its signal aborts, as a real fetch to a silent host does. */
const silentHost = (_req: unknown, init: RequestInit) =>
  new Promise<Response>((_, reject) => {
    init.signal!.addEventListener("abort", () => reject(init.signal!.reason));
  });

let scenario: NotifyScenario;
beforeAll(async () => {
  scenario = await notifyScenario(3);
});

describe("the webhook of a completed export", () => {
  it("POSTs segment_export.completed with the job id, count, download link, expiry, format and segment ids", async () => {
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });

    expect(hook.requests).toHaveLength(1);
    const request = hook.requests[0]!;
    expect(request.url).toBe(HOOK);
    expect(request.method).toBe("POST");
    expect(request.headers["content-type"]).toBe("application/json");
    const job = await jobRow(jobId);
    const status = await statusOf(scenario, jobId);
    expect(JSON.parse(request.body)).toEqual({
      type: "segment_export.completed",
      timestamp: job.completedAt,
      data: {
        jobid: jobId,
        status: "SUCCESS",
        count: 3,
        url: status.url,
        expires_at: status.expires_at,
        format: "json",
        segmentid: [String(scenario.segmentId)],
      },
    });
    // The link's expiry, to the second, is the one the status call reports.
    expect(Date.parse(status.expires_at!) - Date.parse(job.linkExpiresAt!)).toBeLessThan(1000);
    expect(status.url).toMatch(new RegExp(`^https://exports\\.test/exports/${jobId}\\?expires=\\d+&signature=[0-9a-f]+$`));
  });

  it("hands out a link that downloads the file", async () => {
    const hook = recordingFetch(answer(204));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK }, { format: "csv" });
    await runExport(h, jobId);

    const event = JSON.parse(hook.requests[0]!.body);
    expect(event.data.format).toBe("csv");
    const file = await exports.default.fetch(event.data.url);
    expect(file.status).toBe(200);
    const lines = (await file.text()).trim().split(/\r?\n/);
    expect(lines).toHaveLength(1 + 3);
  });

  it("signs the body so that the account's secret verifies it with standardwebhooks", async () => {
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);

    const { headers, body } = hook.requests[0]!;
    expect(headers["webhook-id"]).toBe(`msg_${jobId}`);
    expect(headers["webhook-timestamp"]).toBe(String(Math.floor(h.clock.now() / 1000)));
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+={0,2}$/);
    const verified = new Webhook(scenario.account.webhookSecret).verify(body, headers) as ExportEvent;
    expect(verified.data.jobid).toBe(jobId);
  });

  it("does not verify once the body is tampered with", async () => {
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);

    const { headers, body } = hook.requests[0]!;
    const tampered = body.replace(`"count":3`, `"count":4`);
    expect(tampered).not.toBe(body);
    expect(() => new Webhook(scenario.account.webhookSecret).verify(tampered, headers)).toThrow(/signature/i);
  });

  it("does not verify with another account's secret", async () => {
    const other = await notifyScenario(0);
    const hook = recordingFetch(answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);

    const { headers, body } = hook.requests[0]!;
    expect(() => new Webhook(other.account.webhookSecret).verify(body, headers)).toThrow(/signature/i);
  });

  it("keeps webhook-id across retries while webhook-timestamp and the signature follow each attempt's time", async () => {
    const hook = recordingFetch(answer(500), answer(500), answer(200));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);
    h.clock.advance(5_000);
    expect(await runNotify(h, jobId)).toMatchObject({ action: "retry" });
    h.clock.advance(300_000);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });

    expect(hook.requests).toHaveLength(3);
    const [first, second, third] = hook.requests as [typeof hook.requests[0], typeof hook.requests[0], typeof hook.requests[0]];
    expect(new Set(hook.requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`msg_${jobId}`]));
    expect(Number(second.headers["webhook-timestamp"]) - Number(first.headers["webhook-timestamp"])).toBe(5);
    expect(Number(third.headers["webhook-timestamp"]) - Number(second.headers["webhook-timestamp"])).toBe(300);
    expect(third.headers["webhook-timestamp"]).toBe(String(Math.floor(h.clock.now() / 1000)));
    // The event itself is the same on every attempt; only the envelope's time moves.
    expect(second.body).toBe(first.body);
    expect(third.body).toBe(first.body);
    expect(third.headers["webhook-signature"]).not.toBe(first.headers["webhook-signature"]);
    // Each signature covers its own timestamp (verify() would reject the later ones as too new here).
    const signer = new Webhook(scenario.account.webhookSecret);
    for (const r of hook.requests) {
      const at = new Date(Number(r.headers["webhook-timestamp"]) * 1000);
      expect(r.headers["webhook-signature"]).toBe(signer.sign(`msg_${jobId}`, at, r.body));
    }
  });
});

describe("sending a webhook", () => {
  it("does not follow redirects", async () => {
    const hook = recordingFetch(answer(200));
    await sendWebhook(delivery({ fetch: hook.fetch }));
    expect(hook.requests[0]!.redirect).toBe("manual");
  });

  it.each([301, 302, 307, 308])("counts a %i redirect as a retryable failure", async (status) => {
    const hook = recordingFetch(answer(status, { location: "http://169.254.169.254/latest/meta-data" }));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({
      ok: false,
      retryable: true,
      error: `HTTP ${status}: redirects are not followed`,
    });
    expect(hook.requests).toHaveLength(1);
  });

  it.each([200, 201, 202, 204, 299])("counts HTTP %i as delivered", async (status) => {
    const hook = recordingFetch(answer(status));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({ ok: true, detail: `HTTP ${status}` });
  });

  it.each([400, 401, 404, 410, 500, 502])("counts HTTP %i as a retryable failure", async (status) => {
    const hook = recordingFetch(answer(status));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({ ok: false, retryable: true, error: `HTTP ${status}` });
  });

  it("reports a fetch rejected with a TimeoutError as a retryable timeout", async () => {
    const hook = recordingFetch(() => {
      throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
    });
    expect(await sendWebhook(delivery({ fetch: hook.fetch, timeoutMs: 15_000 }))).toEqual({
      ok: false,
      retryable: true,
      error: "no answer within 15000 ms",
    });
  });

  it("gives up waiting on a host that never answers after the timeout", async () => {
    const hook = recordingFetch(silentHost);
    expect(await sendWebhook(delivery({ fetch: hook.fetch, timeoutMs: 20 }))).toEqual({
      ok: false,
      retryable: true,
      error: "no answer within 20 ms",
    });
  });

  it("reports a network error as retryable, with its message", async () => {
    const hook = recordingFetch(() => {
      throw new TypeError("Network connection lost.");
    });
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({
      ok: false,
      retryable: true,
      error: "request failed: Network connection lost.",
    });
  });

  it.each([429, 503])("honours Retry-After in seconds on %i", async (status) => {
    const hook = recordingFetch(answer(status, { "retry-after": "120" }));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({
      ok: false,
      retryable: true,
      error: `HTTP ${status}`,
      retryAfterSeconds: 120,
    });
  });

  it("honours Retry-After given as an HTTP date, counted from the attempt's time", async () => {
    const now = new Date("2026-03-01T12:00:00Z");
    const hook = recordingFetch(answer(503, { "retry-after": "Sun, 01 Mar 2026 12:10:00 GMT" }));
    expect(await sendWebhook(delivery({ fetch: hook.fetch, now }))).toMatchObject({ retryAfterSeconds: 600 });
  });

  it("ignores Retry-After on other statuses and when it cannot be read", async () => {
    const on500 = recordingFetch(answer(500, { "retry-after": "120" }));
    expect(await sendWebhook(delivery({ fetch: on500.fetch }))).not.toHaveProperty("retryAfterSeconds");
    const garbled = recordingFetch(answer(429, { "retry-after": "soon" }));
    expect(await sendWebhook(delivery({ fetch: garbled.fetch }))).not.toHaveProperty("retryAfterSeconds");
  });
});

describe("webhook failures through the queue consumer", () => {
  it("retries a webhook that timed out (a host that never answers, with WEBHOOK_TIMEOUT_MS 20)", async () => {
    const hook = recordingFetch(silentHost, answer(200));
    const h = harness({ fetch: hook.fetch, config: { WEBHOOK_TIMEOUT_MS: 20 } });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });
    expect(h.queue.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId }]);
    expect(await jobRow(jobId)).toMatchObject({
      notifyState: "pending",
      notifyAttempts: 1,
      notifyError: "no answer within 20 ms",
    });

    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "delivered", notifyAttempts: 2, notifyError: null });
  });

  it("waits as long as a 429's Retry-After asks before the next attempt", async () => {
    const hook = recordingFetch(answer(429, { "retry-after": "90" }));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    await runExport(h, jobId);
    expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId }, options: { delaySeconds: 90 } }]);
    expect(await runNotify(h, jobId)).toEqual({ action: "retry", delaySeconds: 90 });
  });

  it("caps a Retry-After beyond the queue's longest delay at 12 hours", async () => {
    const hook = recordingFetch(answer(503, { "retry-after": String(7 * 24 * 3600) }));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    await runExport(h, jobId);
    expect(h.queue.sent[0]!.options).toEqual({ delaySeconds: 43_200 });
  });

  it("treats a 302 answer as a failed attempt and keeps the notification pending", async () => {
    const hook = recordingFetch(answer(302, { location: "https://elsewhere.example.com/" }));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    await runExport(h, jobId);
    expect(hook.requests).toHaveLength(1);
    expect(h.queue.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId }]);
    expect((await statusOf(scenario, jobId)).notification).toEqual({
      type: "webhook",
      status: "pending",
      attempts: 1,
      lasterror: "HTTP 302: redirects are not followed",
    });
  });
});
