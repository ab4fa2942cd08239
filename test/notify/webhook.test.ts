import { exports } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Config } from "../../src/config";
import type { DnsResolver } from "../../src/notify/dns";
import type { ExportEvent } from "../../src/notify/event";
import { sendWebhook, type WebhookDelivery } from "../../src/notify/webhook";
import { PRODUCTION_WEBHOOK_POLICY } from "../../src/notify/webhook_url";
import {
  answer,
  createJob,
  harness as baseHarness,
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
    files: [{ url: "https://exports.test/exports/job-1?expires=1&signature=ab", count: 3, bytes: 300 }],
    expires_at: "2026-03-08T12:00:00.000Z",
    format: "json",
    segmentid: ["7"],
  },
};

/**
 * A fake DNS: the A and AAAA answers of each name (a name not listed has none); an Error answer makes the
 * lookup fail. Records what it was asked.
 */
export function fakeDns(answers: Record<string, { A?: string[]; AAAA?: string[] } | Error>) {
  const asked: string[] = [];
  const resolve: DnsResolver = async (name, type) => {
    asked.push(`${type} ${name}`);
    const answer = answers[name];
    if (answer instanceof Error) throw answer;
    return answer?.[type] ?? [];
  };
  return { resolve, asked };
}

/** hooks.example.com as public DNS has it. */
const publicDns = fakeDns({ "hooks.example.com": { A: ["93.184.215.14"], AAAA: ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"] } });

const delivery = (overrides: Partial<WebhookDelivery>): WebhookDelivery => ({
  url: HOOK,
  secret: SECRET,
  messageId: "msg_job-1",
  event: completedEvent,
  timeoutMs: 1_000,
  now: new Date("2026-03-01T12:00:05Z"),
  policy: PRODUCTION_WEBHOOK_POLICY,
  resolveDns: publicDns.resolve,
  ...overrides,
});

/** The consumer harness as production runs it: the DNS check on, against a fake DNS (public answers by default). */
function harness(overrides: { fetch?: typeof fetch; config?: Partial<Config>; resolveDns?: DnsResolver } = {}) {
  const h = baseHarness({ ...overrides, config: { WEBHOOK_DNS_CHECK: true, ALLOW_PRIVATE_WEBHOOKS: false, ...overrides.config } });
  h.deps.resolveDns = overrides.resolveDns ?? publicDns.resolve;
  return h;
}

/** What lasterror holds: a category and a reference to the log line, nothing the target said. */
const categorized = (category: string) => new RegExp(`^${category.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(ref [0-9a-f]{8}\\)$`);

afterEach(() => {
  vi.restoreAllMocks();
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
        files: [{ url: status.url, count: 3, bytes: job.bytesWritten }],
        expires_at: status.expires_at,
        format: "json",
        segmentid: [String(scenario.segmentId)],
      },
    });
    // The link's expiry, to the second, is the one the status call reports.
    expect(Date.parse(status.expires_at!) - Date.parse(job.linkExpiresAt!)).toBeLessThan(1000);
    expect(status.url).toMatch(new RegExp(`^https://exports\\.test/exports/${jobId}\\?expires=\\d+&kid=[A-Za-z0-9_-]+&signature=[0-9a-f]+$`));
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
    const attemptTimes = [h.clock.now()];
    // runNotify moves the clock to each retry's due time (5 s, then 5 min, ±10 %) before the attempt.
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    attemptTimes.push(h.clock.now());
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    attemptTimes.push(h.clock.now());

    expect(hook.requests).toHaveLength(3);
    const [first, second, third] = hook.requests as [typeof hook.requests[0], typeof hook.requests[0], typeof hook.requests[0]];
    expect(new Set(hook.requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`msg_${jobId}`]));
    expect(hook.requests.map((r) => r.headers["webhook-timestamp"])).toEqual(attemptTimes.map((t) => String(Math.floor(t / 1000))));
    expect(attemptTimes[1]! - attemptTimes[0]!).toBeGreaterThanOrEqual(4_500);
    expect(attemptTimes[2]! - attemptTimes[1]!).toBeGreaterThanOrEqual(270_000);
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

  it.each([301, 302, 307, 308])("counts a %i redirect as a retryable failure, without the exact status", async (status) => {
    const hook = recordingFetch(answer(status, { location: "http://169.254.169.254/latest/meta-data" }));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({
      ok: false,
      retryable: true,
      error: expect.stringMatching(categorized("HTTP 3xx: redirects are not followed")),
    });
    expect(hook.requests).toHaveLength(1);
  });

  it.each([200, 201, 202, 204, 299])("counts HTTP %i as delivered", async (status) => {
    const hook = recordingFetch(answer(status));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({ ok: true, detail: `HTTP ${status}` });
  });

  it.each([
    [400, "HTTP 4xx"],
    [401, "HTTP 4xx"],
    [404, "HTTP 4xx"],
    [410, "HTTP 4xx"],
    [500, "HTTP 5xx"],
    [502, "HTTP 5xx"],
  ])("counts HTTP %i as a retryable failure, stored as its class %s", async (status, category) => {
    const hook = recordingFetch(answer(status));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({
      ok: false,
      retryable: true,
      error: expect.stringMatching(categorized(category)),
    });
  });

  it("reports a fetch rejected with a TimeoutError as a retryable timeout", async () => {
    const hook = recordingFetch(() => {
      throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
    });
    expect(await sendWebhook(delivery({ fetch: hook.fetch, timeoutMs: 15_000 }))).toEqual({
      ok: false,
      retryable: true,
      error: expect.stringMatching(categorized("timeout")),
    });
  });

  it("gives up waiting on a host that never answers after the timeout", async () => {
    const hook = recordingFetch(silentHost);
    expect(await sendWebhook(delivery({ fetch: hook.fetch, timeoutMs: 20 }))).toEqual({
      ok: false,
      retryable: true,
      error: expect.stringMatching(categorized("timeout")),
    });
  });

  it("reports a network error as a retryable connection failure; its message goes to the log only", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const hook = recordingFetch(() => {
      throw new TypeError("Network connection lost.");
    });
    const result = await sendWebhook(delivery({ fetch: hook.fetch }));
    expect(result).toEqual({ ok: false, retryable: true, error: expect.stringMatching(categorized("connection failed")) });
    const ref = (result as { error: string }).error.match(/ref ([0-9a-f]{8})/)![1]!;
    const logged = warn.mock.calls.map((c) => c.join(" ")).filter((line) => line.includes(ref));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain("Network connection lost.");
  });

  it.each([429, 503])("honours Retry-After in seconds on %i", async (status) => {
    const hook = recordingFetch(answer(status, { "retry-after": "120" }));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({
      ok: false,
      retryable: true,
      error: expect.stringMatching(categorized(status === 429 ? "HTTP 4xx" : "HTTP 5xx")),
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
    expect(h.queue.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId, drive: 1 }]);
    expect(await jobRow(jobId)).toMatchObject({
      notifyState: "pending",
      notifyAttempts: 1,
      notifyError: expect.stringMatching(categorized("timeout")),
    });

    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "delivered", notifyAttempts: 2, notifyError: null });
  });

  it("waits as long as a 429's Retry-After asks before the next attempt", async () => {
    const hook = recordingFetch(answer(429, { "retry-after": "90" }));
    const h = harness({ fetch: hook.fetch });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    await runExport(h, jobId);
    expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId, drive: 1 }, options: { delaySeconds: 90 } }]);
    // The second retry's schedule step (5 min ± 10 %) is longer than the 90 s asked for: the longer wait wins.
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(h.queue.sent).toEqual([{ body: { kind: "notify", jobId, drive: 2 }, options: { delaySeconds: expect.any(Number) } }]);
    expect(h.queue.sent[0]!.options!.delaySeconds).toBeGreaterThanOrEqual(270);
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
    expect(h.queue.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId, drive: 1 }]);
    expect((await statusOf(scenario, jobId)).notification).toEqual({
      type: "webhook",
      status: "pending",
      attempts: 1,
      lasterror: expect.stringMatching(categorized("HTTP 3xx: redirects are not followed")),
    });
  });
});

describe("the target is checked again at delivery (WEBHOOK_DNS_CHECK)", () => {
  it("refuses a name whose A record is private, without any POST, and does not retry", async () => {
    const dns = fakeDns({ "hooks.example.com": { A: ["10.0.0.5"], AAAA: [] } });
    const hook = recordingFetch(answer(200));
    expect(await sendWebhook(delivery({ fetch: hook.fetch, resolveDns: dns.resolve }))).toEqual({
      ok: false,
      retryable: false,
      error: expect.stringMatching(categorized("refused: private address")),
    });
    expect(hook.requests).toHaveLength(0);
    expect(dns.asked.sort()).toEqual(["A hooks.example.com", "AAAA hooks.example.com"]);
  });

  it.each([
    ["127.0.0.1", "A"],
    ["169.254.169.254", "A"],
    ["100.100.100.200", "A"],
    ["::1", "AAAA"],
    ["fd00:ec2::254", "AAAA"],
    ["::ffff:169.254.169.254", "AAAA"],
    ["64:ff9b::a9fe:a9fe", "AAAA"],
  ] as const)("refuses a name with one private answer among public ones: %s (%s)", async (address, type) => {
    const answers = { A: ["93.184.215.14"], AAAA: ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"] };
    answers[type] = [...answers[type], address];
    const hook = recordingFetch(answer(200));
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const result = await sendWebhook(delivery({ fetch: hook.fetch, resolveDns: fakeDns({ "hooks.example.com": answers }).resolve }));
    expect(result).toMatchObject({ ok: false, retryable: false, error: expect.stringMatching(categorized("refused: private address")) });
    expect(hook.requests).toHaveLength(0);
    // The log says which answer it was; the stored text does not.
    expect(warn.mock.calls.flat().join(" ")).toContain(`resolves to ${address}`);
  });

  it("delivers to a name whose answers are all public", async () => {
    const hook = recordingFetch(answer(200));
    expect(await sendWebhook(delivery({ fetch: hook.fetch }))).toEqual({ ok: true, detail: "HTTP 200" });
    expect(hook.requests).toHaveLength(1);
  });

  it("counts a failed lookup as a retryable connection failure, without any POST", async () => {
    const dns = fakeDns({ "hooks.example.com": new Error("DNS-over-HTTPS answered HTTP 502") });
    const hook = recordingFetch(answer(200));
    expect(await sendWebhook(delivery({ fetch: hook.fetch, resolveDns: dns.resolve }))).toEqual({
      ok: false,
      retryable: true,
      error: expect.stringMatching(categorized("connection failed")),
    });
    expect(hook.requests).toHaveLength(0);
  });

  it("counts a name without addresses (NXDOMAIN) as a retryable connection failure, without any POST", async () => {
    const hook = recordingFetch(answer(200));
    const result = await sendWebhook(delivery({ url: "https://gone.example.com/x", fetch: hook.fetch }));
    expect(result).toEqual({ ok: false, retryable: true, error: expect.stringMatching(categorized("connection failed")) });
    expect(hook.requests).toHaveLength(0);
  });

  it("does not look up an IP-literal host", async () => {
    const dns = fakeDns({});
    const hook = recordingFetch(answer(200));
    for (const url of ["https://93.184.216.34/", "https://[2606:2800:220:1:248:1893:25c8:1946]/"]) {
      expect(await sendWebhook(delivery({ url, fetch: hook.fetch, resolveDns: dns.resolve }))).toEqual({ ok: true, detail: "HTTP 200" });
    }
    expect(dns.asked).toEqual([]);
    expect(hook.requests).toHaveLength(2);
  });

  it("does not look up anything when WEBHOOK_DNS_CHECK is off", async () => {
    const dns = fakeDns({ "hooks.example.com": { A: ["10.0.0.5"] } });
    const hook = recordingFetch(answer(200));
    const policy = { ...PRODUCTION_WEBHOOK_POLICY, dnsCheck: false };
    expect(await sendWebhook(delivery({ fetch: hook.fetch, resolveDns: dns.resolve, policy }))).toEqual({ ok: true, detail: "HTTP 200" });
    expect(dns.asked).toEqual([]);
  });

  it("refuses, without any POST, a stored URL the policy no longer allows (a job accepted before the checks)", async () => {
    const hook = recordingFetch(answer(200));
    for (const [url, category] of [
      ["https://[::7f00:1]/hook", "refused: private address"],
      ["https://metadata/computeMetadata/v1/", "refused: special-use name"],
      ["https://hooks.example.com:6379/", "refused: port not allowed"],
      ["http://hooks.example.com/", "refused: URL not allowed"],
    ] as const) {
      expect(await sendWebhook(delivery({ url, fetch: hook.fetch }))).toEqual({
        ok: false,
        retryable: false,
        error: expect.stringMatching(categorized(category)),
      });
    }
    expect(hook.requests).toHaveLength(0);
  });

  it("with ALLOW_HTTP_WEBHOOKS only, still refuses an http target on a private address", async () => {
    const hook = recordingFetch(answer(200));
    const policy = { ...PRODUCTION_WEBHOOK_POLICY, allowHttp: true };
    expect(await sendWebhook(delivery({ url: "http://127.0.0.1:8443/hook", fetch: hook.fetch, policy }))).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringMatching(categorized("refused: private address")),
    });
    expect(hook.requests).toHaveLength(0);
  });

  it("with ALLOW_HTTP_WEBHOOKS and ALLOW_PRIVATE_WEBHOOKS, delivers to http://127.0.0.1 on any port, with no lookup", async () => {
    const dns = fakeDns({});
    const hook = recordingFetch(answer(200));
    const policy = { ...PRODUCTION_WEBHOOK_POLICY, allowHttp: true, allowPrivate: true };
    for (const url of ["http://127.0.0.1:8788/hooks/exports", "http://localhost:8791/hook"]) {
      expect(await sendWebhook(delivery({ url, fetch: hook.fetch, policy, resolveDns: dns.resolve }))).toEqual({ ok: true, detail: "HTTP 200" });
    }
    expect(dns.asked).toEqual([]);
  });

  it("through the consumer: a private answer fails the notification at once, and the status call says only that", async () => {
    const hook = recordingFetch(answer(200));
    const dns = fakeDns({ "hooks.example.com": { A: ["169.254.169.254"] } });
    const h = harness({ fetch: hook.fetch, resolveDns: dns.resolve });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });
    expect(hook.requests).toHaveLength(0);
    expect(h.queue.sent.filter((m) => m.body.kind === "notify")).toEqual([]);
    expect((await statusOf(scenario, jobId)).notification).toEqual({
      type: "webhook",
      status: "failed",
      attempts: 1,
      lasterror: expect.stringMatching(categorized("refused: private address")),
    });
  });
});

describe("what lasterror says: a category and a log reference, never what the target answered", () => {
  const networkError = () => {
    throw new TypeError("Network connection lost.");
  };
  it.each([
    ["a host that never answers", silentHost, "timeout"],
    ["a network error", networkError, "connection failed"],
    ["a 302", answer(302, { location: "http://10.0.0.1/" }), "HTTP 3xx: redirects are not followed"],
    ["a 404", answer(404), "HTTP 4xx"],
    ["a 429", answer(429, { "retry-after": "10" }), "HTTP 4xx"],
    ["a 503", answer(503), "HTTP 5xx"],
    ["a 500", answer(500), "HTTP 5xx"],
  ] as const)("after %s: %s", async (_what, reply, category) => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const hook = recordingFetch(reply);
    const h = harness({ fetch: hook.fetch, config: { WEBHOOK_TIMEOUT_MS: 20 } });
    const jobId = await createJob(scenario, h, { type: "webhook", value: HOOK });
    await runExport(h, jobId);

    const { lasterror } = (await statusOf(scenario, jobId)).notification;
    expect(lasterror).toMatch(categorized(category));
    expect(lasterror).not.toMatch(/Network|lost|\b(302|404|429|500|503)\b|10\.0\.0\.1|ms\b/);
    // The details are in the log, under the same reference.
    const ref = lasterror!.match(/ref ([0-9a-f]{8})/)![1]!;
    const logged = warn.mock.calls.map((c) => c.join(" ")).filter((line) => line.includes(`ref ${ref}`));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain(`msg_${jobId}`);
  });
});
