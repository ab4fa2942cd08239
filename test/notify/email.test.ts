import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import Mailer, { type ExportEmail, type SendResult } from "../../mailer/src/index";
import { renderExportEmail } from "../../mailer/src/render";
import { sendExportEmail } from "../../src/notify/email";
import type { ExportEvent } from "../../src/notify/event";
import { createJob, harness, jobRow, notifyScenario, runExport, runNotify, statusOf, type NotifyScenario } from "./helpers";

const completed: Extract<ExportEmail, { kind: "completed" }> = {
  kind: "completed",
  to: "owner@example.com",
  jobId: "job-42",
  count: 1234567,
  format: "csv",
  files: [{ url: "https://exports.test/exports/job-42?expires=1767225600&signature=abc123", count: 1234567, bytes: 98_765_432 }],
  expiresAt: "2026-01-01T00:00:00.000Z",
};

const failed: Extract<ExportEmail, { kind: "failed" }> = {
  kind: "failed",
  to: "owner@example.com",
  jobId: "job-43",
  reason: "Export failed after 5 attempts: <D1> & friends went away",
};

describe("rendering the export email", () => {
  it("gives the count in the subject, and the link, count, format and expiry in the text", () => {
    const email = renderExportEmail(completed);
    expect(email.subject).toBe("Your segment export is ready (1,234,567 contacts)");
    expect(email.text).toBe(
      [
        "Your segment export job-42 is ready.",
        "",
        "Contacts: 1234567",
        "Format: CSV",
        "Download: https://exports.test/exports/job-42?expires=1767225600&signature=abc123",
        "The link expires on Thu, 01 Jan 2026 00:00:00 GMT.",
      ].join("\n"),
    );
  });

  it("puts the link, count and expiry in the html, with the link's & escaped", () => {
    const { html } = renderExportEmail(completed);
    expect(html).toContain(
      '<a href="https://exports.test/exports/job-42?expires=1767225600&#38;signature=abc123">Download the file</a>',
    );
    expect(html).toContain("Contacts: <strong>1234567</strong>");
    expect(html).toContain("The link expires on Thu, 01 Jan 2026 00:00:00 GMT.");
    expect(html).not.toContain("&signature");
  });

  it("tells of a finished import: its counts, and the rejects file's link when rows were rejected", () => {
    const done = renderExportEmail({
      kind: "import_completed",
      to: "owner@example.com",
      jobId: "imp-1",
      listId: "12",
      rows: 1500,
      added: 1200,
      updated: 290,
      rejected: 10,
      rejectsUrl: "https://exports.test/imports/imp-1/rejects?expires=1767225600&kid=k1&signature=aa",
      expiresAt: "2026-01-01T00:00:00.000Z",
    });
    expect(done.subject).toBe("Your import is done (1,200 added, 290 updated, 10 rejected)");
    expect(done.text).toBe(
      [
        "Your import imp-1 into list 12 is done.",
        "",
        "Rows read: 1500",
        "Added: 1200",
        "Updated: 290",
        "Rejected: 10",
        "",
        "The rejected rows, each with its reason: https://exports.test/imports/imp-1/rejects?expires=1767225600&kid=k1&signature=aa",
        "The link expires on Thu, 01 Jan 2026 00:00:00 GMT.",
      ].join("\n"),
    );
    expect(done.html).toContain('<a href="https://exports.test/imports/imp-1/rejects?expires=1767225600&#38;kid=k1&#38;signature=aa">');
    const clean = renderExportEmail({ kind: "import_completed", to: "o@example.com", jobId: "imp-2", listId: "3", rows: 2, added: 2, updated: 0, rejected: 0, rejectsUrl: null, expiresAt: null });
    expect(clean.text).not.toContain("rejected rows");
    expect(renderExportEmail({ kind: "import_failed", to: "o@example.com", jobId: "imp-3", reason: "the CSV header has no email column" }).text).toBe(
      "Your import imp-3 failed.\n\nReason: the CSV header has no email column",
    );
  });

  it("lists every file of a split export, in order, with its records and size", () => {
    const split = {
      ...completed,
      count: 2500,
      files: [
        { url: "https://exports.test/exports/job-42/1?expires=1767225600&kid=k1&signature=aa", count: 1000, bytes: 5_242_880 },
        { url: "https://exports.test/exports/job-42/2?expires=1767225600&kid=k1&signature=bb", count: 1000, bytes: 5_100_000 },
        { url: "https://exports.test/exports/job-42/3?expires=1767225600&kid=k1&signature=cc", count: 500, bytes: 2_048 },
      ],
    };
    const email = renderExportEmail(split);
    expect(email.text).toBe(
      [
        "Your segment export job-42 is ready.",
        "",
        "Contacts: 2500",
        "Format: CSV",
        "Files: 3",
        "",
        "File 1 of 3: 1,000 contacts, 5.0 MB",
        "https://exports.test/exports/job-42/1?expires=1767225600&kid=k1&signature=aa",
        "",
        "File 2 of 3: 1,000 contacts, 4.9 MB",
        "https://exports.test/exports/job-42/2?expires=1767225600&kid=k1&signature=bb",
        "",
        "File 3 of 3: 500 contacts, 2.0 KB",
        "https://exports.test/exports/job-42/3?expires=1767225600&kid=k1&signature=cc",
        "",
        "The links expire on Thu, 01 Jan 2026 00:00:00 GMT.",
      ].join("\n"),
    );
    expect(email.html).toContain(
      '<li><a href="https://exports.test/exports/job-42/2?expires=1767225600&#38;kid=k1&#38;signature=bb">File 2 of 3: 1,000 contacts, 4.9 MB</a></li>',
    );
    expect(email.html.match(/<li>/g)).toHaveLength(3);
  });

  it("escapes markup in what it puts into the html", () => {
    const { html } = renderExportEmail({
      ...completed,
      jobId: `<script>"x"</script>`,
      files: [{ url: `https://x.test/"><img src=x onerror=alert(1)>`, count: 1, bytes: 10 }],
    });
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<img");
    expect(html).toContain("&#60;script&#62;&#34;x&#34;&#60;/script&#62;");
    expect(html).toContain('href="https://x.test/&#34;&#62;&#60;img src=x onerror=alert(1)&#62;"');
  });

  it("says contact, not contacts, for one", () => {
    expect(renderExportEmail({ ...completed, count: 1 }).subject).toBe("Your segment export is ready (1 contact)");
  });

  it("gives the reason of a failed export in the text and, escaped, in the html", () => {
    const email = renderExportEmail(failed);
    expect(email.subject).toBe("Your segment export failed");
    expect(email.text).toBe(
      "Your segment export job-43 failed.\n\nReason: Export failed after 5 attempts: <D1> & friends went away",
    );
    expect(email.html).toContain("<p>Reason: Export failed after 5 attempts: &#60;D1&#62; &#38; friends went away</p>");
    expect(email.html).toContain("<code>job-43</code>");
  });
});

/** A send_email binding that records messages, or throws an error with the given code. */
function emailBinding(failWith?: string) {
  const sent: unknown[] = [];
  const binding = {
    sent,
    async send(message: unknown) {
      sent.push(message);
      if (failWith) throw Object.assign(new Error(`send failed: ${failWith}`), { code: failWith });
      return { messageId: `<m${sent.length}@segment-export.test>` };
    },
  };
  return binding;
}

const mailerWith = (binding: ReturnType<typeof emailBinding>) =>
  new Mailer(createExecutionContext(), {
    EMAIL: binding,
    MAIL_FROM: "exports@segment-export.test",
    MAIL_FROM_NAME: "Segment Export",
  } as unknown as MailerEnv);

describe("the Mailer worker", () => {
  it("sends the rendered email from the configured sender to the recipient", async () => {
    const binding = emailBinding();
    const result = await mailerWith(binding).sendExportEmail(completed);

    expect(result).toEqual({ ok: true, messageId: "<m1@segment-export.test>" });
    const rendered = renderExportEmail(completed);
    expect(binding.sent).toEqual([
      {
        from: { email: "exports@segment-export.test", name: "Segment Export" },
        to: "owner@example.com",
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
      },
    ]);
  });

  it.each(["E_RECIPIENT_SUPPRESSED", "E_SENDER_NOT_VERIFIED", "E_RECIPIENT_NOT_ALLOWED", "E_VALIDATION_ERROR"])(
    "reports %s as a failure no retry can fix",
    async (code) => {
      expect(await mailerWith(emailBinding(code)).sendExportEmail(failed)).toEqual({
        ok: false,
        code,
        message: `send failed: ${code}`,
        retryable: false,
      });
    },
  );

  it("reports a rate limit as retryable", async () => {
    expect(await mailerWith(emailBinding("E_RATE_LIMIT_EXCEEDED")).sendExportEmail(completed)).toEqual({
      ok: false,
      code: "E_RATE_LIMIT_EXCEEDED",
      message: "send failed: E_RATE_LIMIT_EXCEEDED",
      retryable: true,
    });
  });

  it("reports an error without a code as a retryable E_SEND_FAILED", async () => {
    const binding = {
      async send() {
        throw new Error("connection reset");
      },
    };
    const mailer = new Mailer(createExecutionContext(), { EMAIL: binding, MAIL_FROM: "a@b.test", MAIL_FROM_NAME: "A" } as unknown as MailerEnv);
    expect(await mailer.sendExportEmail(completed)).toEqual({
      ok: false,
      code: "E_SEND_FAILED",
      message: "connection reset",
      retryable: true,
    });
  });
});

describe("the real mailer worker behind the MAILER service binding", () => {
  it("sends a completed-export email and answers ok with a message id", async () => {
    const result = await env.MAILER.sendExportEmail(completed);
    expect(result.ok).toBe(true);
    expect(result.ok && result.messageId).toMatch(/\S/);
  });

  it("sends a failed-export email", async () => {
    const result = await env.MAILER.sendExportEmail(failed);
    expect(result).toMatchObject({ ok: true });
  });

  it("answers plain fetches with 404: it is reached over RPC only", async () => {
    const res = await env.MAILER.fetch("https://mailer/");
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("segment-export-mailer is reached over RPC only\n");
  });
});

/** A MAILER binding that records each request and answers with the next of `answers` (the last repeats). */
function recordingMailer(...answers: Array<SendResult | Error>) {
  const calls: ExportEmail[] = [];
  const mailer = {
    calls,
    async sendExportEmail(email: ExportEmail): Promise<SendResult> {
      calls.push(email);
      const answer = answers[Math.min(calls.length - 1, answers.length - 1)]!;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return mailer;
}

const SENT: SendResult = { ok: true, messageId: "<sent@segment-export.test>" };

describe("sending the email of an export event", () => {
  const event: ExportEvent = {
    type: "segment_export.completed",
    timestamp: "2026-01-01T00:00:00.000Z",
    data: {
      jobid: "job-1",
      status: "SUCCESS",
      count: 9,
      url: "https://exports.test/exports/job-1?expires=1&signature=ab",
      files: [{ url: "https://exports.test/exports/job-1?expires=1&signature=ab", count: 9, bytes: 900 }],
      expires_at: "2026-01-08T00:00:00.000Z",
      format: "json",
      segmentid: ["1"],
    },
  };

  it("reports a mailer that cannot be reached as a retryable failure", async () => {
    const mailer = recordingMailer(new Error("Service binding is unavailable"));
    expect(await sendExportEmail(mailer as unknown as Env["MAILER"], "a@example.com", event)).toEqual({
      ok: false,
      retryable: true,
      error: "mailer unreachable: Service binding is unavailable",
    });
  });

  it("passes on the mailer's code, message and retryability", async () => {
    const mailer = recordingMailer({ ok: false, code: "E_RECIPIENT_SUPPRESSED", message: "suppressed", retryable: false });
    expect(await sendExportEmail(mailer as unknown as Env["MAILER"], "a@example.com", event)).toEqual({
      ok: false,
      retryable: false,
      error: "E_RECIPIENT_SUPPRESSED: suppressed",
    });
  });
});

describe("an export notified by email", () => {
  let scenario: NotifyScenario;
  beforeAll(async () => {
    scenario = await notifyScenario(5);
  });
  afterEach(() => vi.restoreAllMocks());

  it("asks the mailer for a completed email with the count, link and expiry", async () => {
    const mailer = recordingMailer(SENT);
    const h = harness({ mailer });
    const jobId = await createJob(scenario, h, { type: "email", value: "owner@example.com" }, { format: "csv" });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });

    const status = await statusOf(scenario, jobId);
    expect(mailer.calls).toEqual([
      {
        kind: "completed",
        to: "owner@example.com",
        jobId,
        count: 5,
        format: "csv",
        files: [{ url: status.url, count: 5, bytes: (await jobRow(jobId)).bytesWritten }],
        expiresAt: status.expires_at,
      },
    ]);
    expect(status.notification).toEqual({ type: "email", status: "delivered", attempts: 1 });
    expect((await jobRow(jobId)).notifiedAt).toBe(new Date(h.clock.now()).toISOString());
  });

  it("asks the mailer for a failed email with the reason when the export fails", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const mailer = recordingMailer(SENT);
    const h = harness({
      mailer,
      config: { EXPORT_MAX_ATTEMPTS: 1 },
      fault: () => {
        throw new Error("R2 is down");
      },
    });
    const jobId = await createJob(scenario, h, { type: "email", value: "owner@example.com" });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });
    expect(mailer.calls).toEqual([
      {
        kind: "failed",
        to: "owner@example.com",
        jobId,
        reason: expect.stringMatching(/^The export failed after 1 attempts \(internal error, reference [0-9a-f-]{36}\)$/),
      },
    ]);
    expect((await jobRow(jobId)).notifyState).toBe("delivered");
  });

  it("gives up at once on a permanent failure (a suppressed recipient), recording the error", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const mailer = recordingMailer({ ok: false, code: "E_RECIPIENT_SUPPRESSED", message: "recipient is suppressed", retryable: false });
    const h = harness({ mailer });
    const jobId = await createJob(scenario, h, { type: "email", value: "bounced@example.com" });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });

    expect(h.queue.sent).toEqual([]);
    expect(mailer.calls).toHaveLength(1);
    expect((await statusOf(scenario, jobId)).notification).toEqual({
      type: "email",
      status: "failed",
      attempts: 1,
      lasterror: "E_RECIPIENT_SUPPRESSED: recipient is suppressed",
    });
  });

  it("retries a rate-limited send later, and records delivery when it goes through", async () => {
    const mailer = recordingMailer(
      { ok: false, code: "E_RATE_LIMIT_EXCEEDED", message: "slow down", retryable: true },
      { ok: false, code: "E_RATE_LIMIT_EXCEEDED", message: "slow down", retryable: true },
      SENT,
    );
    const h = harness({ mailer });
    const jobId = await createJob(scenario, h, { type: "email", value: "owner@example.com" });

    await runExport(h, jobId);
    expect(h.queue.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId, drive: 1 }]);
    expect(h.queue.sent[0]!.options!.delaySeconds).toBeGreaterThanOrEqual(4);
    expect((await jobRow(jobId)).notifyError).toBe("E_RATE_LIMIT_EXCEEDED: slow down");

    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(h.queue.sent.map((m) => m.body)).toEqual([{ kind: "notify", jobId, drive: 2 }]);
    expect(await runNotify(h, jobId)).toEqual({ action: "ack" });
    expect(mailer.calls).toHaveLength(3);
    expect((await statusOf(scenario, jobId)).notification).toEqual({ type: "email", status: "delivered", attempts: 3 });
  });

  it("is delivered through the real mailer worker", async () => {
    const h = harness();
    const jobId = await createJob(scenario, h, { type: "email", value: "owner@example.com" });

    expect(await runExport(h, jobId)).toEqual({ action: "ack" });

    expect(h.queue.sent).toEqual([]);
    expect(await jobRow(jobId)).toMatchObject({ notifyState: "delivered", notifyAttempts: 1, notifyError: null });
  });
});
