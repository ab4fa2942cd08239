import { and, eq, sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { Config } from "../config";
import { accounts, exportJobs, type ExportJob } from "../db/control_schema";
import { notifiedDownloadLinks, notifiedRejectsLink } from "../export/link";
import { storedFiles } from "../export/stored_files";
import { sendExportEmail } from "./email";
import { exportEvent, importEvent, type JobEvent } from "./event";
import { notifyRetryDelay } from "./backoff";
import type { DeliveryResult } from "./result";
import type { DnsResolver } from "./dns";
import { sendWebhook } from "./webhook";
import { webhookPolicy } from "./webhook_url";

export interface NotifyDeps {
  env: Env;
  config: Config;
  db: DrizzleD1Database;
  now: () => number;
  fetch?: typeof fetch;
  /** The DNS lookup of the webhook SSRF check (WEBHOOK_DNS_CHECK); DNS-over-HTTPS unless overridden. */
  resolveDns?: DnsResolver;
}

export type NotifyOutcome =
  | { action: "done"; state: "delivered" | "failed" | "not-pending" }
  /** Send a notify message carrying `drive` (the job's new notify drive), due in `delaySeconds`. */
  | { action: "retry"; delaySeconds: number; drive: number };

/** The longest a receiver's Retry-After may hold a notification back. */
export const MAX_RETRY_AFTER_SECONDS = 24 * 3600;

/** The webhook-id of a job's notification: one event per job, the same on every retry. */
export const webhookMessageId = (jobId: string) => `msg_${jobId}`;

/** The event a finished job announces, or why there is nothing left to announce. */
async function eventOf(deps: NotifyDeps, job: ExportJob, now: Date): Promise<JobEvent | { expired: true }> {
  if (job.kind === "import") {
    const rejects = job.state === "complete" && job.rowsRejected > 0 ? await notifiedRejectsLink(job, deps.config, now) : null;
    if (job.state === "complete" && job.rowsRejected > 0 && !rejects) return { expired: true };
    return importEvent(job, rejects);
  }
  const files = job.state === "complete" ? await storedFiles(deps.db, job) : [];
  const links = await notifiedDownloadLinks(job, files, deps.config, now);
  // Retries never outlive a 7-day link, but a shorter DOWNLOAD_LINK_TTL_SECONDS could: then there is
  // nothing left to announce, and the event must not change type under the same webhook-id.
  if (job.state === "complete" && !links) return { expired: true };
  return exportEvent(job, links);
}

async function attempt(deps: NotifyDeps, job: ExportJob): Promise<DeliveryResult> {
  const now = new Date(deps.now());
  const event = await eventOf(deps, job, now);
  if ("expired" in event) {
    return { ok: false, retryable: false, error: "the download link expired before the notification was delivered" };
  }
  if (job.notifyType === "email") return sendExportEmail(deps.env.MAILER, job.notifyTarget, event);
  const account = await deps.db
    .select({ secret: accounts.webhookSecret })
    .from(accounts)
    .where(eq(accounts.id, job.accountId))
    .get();
  if (!account) return { ok: false, retryable: false, error: "the account no longer exists" };
  return sendWebhook({
    url: job.notifyTarget,
    secret: account.secret,
    messageId: webhookMessageId(job.id),
    event,
    timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS,
    now,
    policy: webhookPolicy(deps.config),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.resolveDns ? { resolveDns: deps.resolveDns } : {}),
  });
}

/**
 * Makes one attempt to deliver a finished job's notification and records the outcome on the job.
 * Says when to try again, or that it is done (delivered, or given up after NOTIFY_MAX_ATTEMPTS).
 *
 * A retry waits for the schedule's step or the receiver's Retry-After (capped at 24 h), whichever is longer:
 * a receiver cannot make us use up the attempts early, and only the schedule decides when to give up.
 * Scheduling a retry moves the job's notify drive on, so the one message sent for it is the only live one;
 * if another attempt recorded its outcome meanwhile (same drive read), this one schedules nothing.
 */
export async function deliverNotification(deps: NotifyDeps, job: ExportJob): Promise<NotifyOutcome> {
  if (job.notifyState !== "pending") return { action: "done", state: "not-pending" };
  const result = await attempt(deps, job);
  const attempts = job.notifyAttempts + 1;
  const giveUp = !result.ok && (!result.retryable || attempts >= deps.config.NOTIFY_MAX_ATTEMPTS);
  const state = result.ok ? "delivered" : giveUp ? "failed" : "pending";
  const delaySeconds =
    result.ok || giveUp
      ? 0
      : Math.max(notifyRetryDelay(attempts), Math.min(result.retryAfterSeconds ?? 0, MAX_RETRY_AFTER_SECONDS));
  const [recorded] = await deps.db
    .update(exportJobs)
    .set({
      notifyAttempts: sql`${exportJobs.notifyAttempts} + 1`,
      notifyState: state,
      notifyError: result.ok ? null : result.error,
      // When the retry is due: until then the sweeper leaves it alone, and a late export message does not jump it.
      notifyDueAt: state === "pending" ? deps.now() + delaySeconds * 1000 : 0,
      notifyDrive: sql`${exportJobs.notifyDrive} + 1`,
      ...(result.ok ? { notifiedAt: new Date(deps.now()).toISOString() } : {}),
    })
    .where(
      and(eq(exportJobs.id, job.id), eq(exportJobs.notifyState, "pending"), eq(exportJobs.notifyDrive, job.notifyDrive)),
    )
    .returning({ drive: exportJobs.notifyDrive });
  if (!recorded) return { action: "done", state: "not-pending" };
  if (result.ok) return { action: "done", state: "delivered" };
  if (giveUp) {
    console.warn(`job ${job.id}: notification given up after ${attempts} attempt(s): ${result.error}`);
    return { action: "done", state: "failed" };
  }
  return { action: "retry", delaySeconds, drive: recorded.drive };
}
