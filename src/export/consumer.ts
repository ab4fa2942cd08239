import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { loadConfig } from "../config";
import { exportJobs, type ExportJob } from "../db/schema";
import { exportRetryDelay } from "../notify/backoff";
import { deliverNotification, type NotifyDeps } from "../notify/deliver";
import { failJob, LeaseLostError, markRetryDue } from "./checkpoint";
import { isExportMessage, type ExportMessage } from "./message";
import { runExportSlice, type SliceDeps } from "./slice";

/** The queues the export worker consumes, by their exact names in wrangler.exporter.toml. */
export const EXPORT_QUEUE_NAME = "segment-export-jobs";
export const DEAD_LETTER_QUEUE_NAME = "segment-export-dlq";

export type QueueAction = { action: "ack" } | { action: "retry"; delaySeconds: number };

const ACK: QueueAction = { action: "ack" };

export type ConsumerDeps = SliceDeps & NotifyDeps;

export function consumerDeps(env: Env): ConsumerDeps {
  return { env, config: loadConfig(env), db: drizzle(env.DB), now: Date.now };
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 500);

/**
 * Decides what happens to one queue message. A plain function: the queue handler applies its answer
 * (ack, or retry with a delay), and tests call it directly.
 *
 * Delivery is at least once, so every step is safe to repeat: a slice resumes from the last checkpoint,
 * a message whose drive has moved on is dropped, a finished job only has its notification delivered
 * (if it is still pending and no retry of it is scheduled).
 */
export async function handleExportMessage(message: ExportMessage, attempts: number, deps: ConsumerDeps): Promise<QueueAction> {
  if (message.kind === "notify") return notify(deps, message.jobId, "notify");

  try {
    const outcome = await runExportSlice(deps, message.jobId, message.drive);
    switch (outcome.kind) {
      case "missing":
        console.warn(`job ${message.jobId}: no such job; message dropped`);
        return ACK;
      case "stale":
        return ACK;
      case "busy":
        // Another slice holds the job. If it dies, its lease runs out and this message takes over.
        return { action: "retry", delaySeconds: Math.ceil(outcome.retryInMs / 1000) + 1 };
      case "continue":
        // At the back of the queue: other jobs' messages sent meanwhile run first.
        await deps.env.EXPORT_QUEUE.send({ kind: "export", jobId: message.jobId, drive: outcome.drive } satisfies ExportMessage);
        return ACK;
      case "finished":
        // A retry of the notification is already scheduled: let it keep its backoff.
        if (outcome.job.notifyDueAt > deps.now()) return ACK;
        return notifyJob(deps, outcome.job, "export");
      case "complete":
        await deps.fault?.("before-notify");
        return notifyJob(deps, outcome.job, "export");
    }
  } catch (error) {
    if (error instanceof LeaseLostError) {
      console.warn(error.message);
      return ACK;
    }
    console.error(`job ${message.jobId}: slice failed (attempt ${attempts}):`, error);
    if (attempts < deps.config.EXPORT_MAX_ATTEMPTS) {
      const delaySeconds = exportRetryDelay(attempts);
      await markRetryDue(deps.db, message.jobId, deps.now() + delaySeconds * 1000);
      return { action: "retry", delaySeconds };
    }
    const failed = await abandonJob(deps, message.jobId, `Export failed after ${attempts} attempts: ${errorText(error)}`);
    return failed ? notifyJob(deps, failed, "export") : ACK;
  }
}

/**
 * Fails an unfinished job (unless a slice holds a live lease on it) and aborts its upload. Returns the failed
 * job, whose notification the caller delivers or schedules; undefined if the job had finished or is held.
 */
export async function abandonJob(deps: Pick<ConsumerDeps, "db" | "env" | "now">, jobId: string, reason: string) {
  const failed = await failJob(deps.db, jobId, reason, deps.now());
  if (failed) await abortUpload(deps.env, failed);
  return failed;
}

async function abortUpload(env: Env, job: ExportJob) {
  if (!job.uploadId) return;
  try {
    await env.EXPORTS.resumeMultipartUpload(job.objectKey, job.uploadId).abort();
  } catch {
    // R2 aborts abandoned uploads after 7 days anyway.
  }
}

async function notify(deps: ConsumerDeps, jobId: string, from: ExportMessage["kind"]): Promise<QueueAction> {
  const job = await deps.db.select().from(exportJobs).where(eq(exportJobs.id, jobId)).get();
  if (!job) return ACK;
  return notifyJob(deps, job, from);
}

/**
 * Delivers the notification of a finished job. A failed attempt is retried through the queue: a notify
 * message retries itself; an export message hands over to a new, delayed notify message.
 */
async function notifyJob(deps: ConsumerDeps, job: ExportJob, from: ExportMessage["kind"]): Promise<QueueAction> {
  const outcome = await deliverNotification(deps, job);
  if (outcome.action === "done") return ACK;
  if (from === "notify") return outcome;
  await deps.env.EXPORT_QUEUE.send({ kind: "notify", jobId: job.id } satisfies ExportMessage, {
    delaySeconds: outcome.delaySeconds,
  });
  return ACK;
}

/** Applies a handler's decision to each message of a batch; drops (acks) a body that is not ours, after logging it. */
async function consumeEach(
  batch: MessageBatch<unknown>,
  handle: (body: ExportMessage, attempts: number) => Promise<QueueAction>,
): Promise<void> {
  for (const message of batch.messages) {
    if (!isExportMessage(message.body)) {
      console.error("dropping a message that is not an export message:", JSON.stringify(message.body).slice(0, 200));
      message.ack();
      continue;
    }
    const action = await handle(message.body, message.attempts);
    if (action.action === "ack") message.ack();
    else message.retry({ delaySeconds: action.delaySeconds });
  }
}

/** The export queue's handler: one message at a time, each acked or retried as `handleExportMessage` decides. */
export function consumeExportBatch(batch: MessageBatch<unknown>, deps: ConsumerDeps): Promise<void> {
  return consumeEach(batch, (body, attempts) => handleExportMessage(body, attempts, deps));
}

/** The dead-letter queue's handler. */
export function consumeDeadLetters(batch: MessageBatch<unknown>, deps: ConsumerDeps): Promise<void> {
  return consumeEach(batch, (body) => handleDeadLetter(body, deps));
}

/**
 * A message the queue gave up on: the job fails (if it had not finished) and the user is told. A dead export
 * message whose drive has moved on was a duplicate: the job's current message is alive, so it is left alone.
 */
export async function handleDeadLetter(message: ExportMessage, deps: ConsumerDeps): Promise<QueueAction> {
  if (message.kind === "export") {
    const job = await deps.db.select({ drive: exportJobs.drive }).from(exportJobs).where(eq(exportJobs.id, message.jobId)).get();
    if (!job || job.drive !== message.drive) return ACK;
  }
  const failed = await abandonJob(deps, message.jobId, "The export was abandoned after repeated failures");
  return failed ? notifyJob(deps, failed, "export") : ACK;
}
