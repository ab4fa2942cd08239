import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { loadConfig } from "../config";
import { exportJobs, type ExportJob } from "../db/schema";
import { exportRetryDelay } from "../notify/backoff";
import { deliverNotification, type NotifyDeps } from "../notify/deliver";
import { failJob, LeaseLostError } from "./checkpoint";
import { isExportMessage, type ExportMessage } from "./message";
import { runExportSlice, type SliceDeps } from "./slice";

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
 * a finished job only has its notification delivered (if it is still pending).
 */
export async function handleExportMessage(message: ExportMessage, attempts: number, deps: ConsumerDeps): Promise<QueueAction> {
  if (message.kind === "notify") return notify(deps, message.jobId, "notify");

  try {
    const outcome = await runExportSlice(deps, message.jobId);
    switch (outcome.kind) {
      case "missing":
        console.warn(`job ${message.jobId}: no such job; message dropped`);
        return ACK;
      case "busy":
        // Another slice holds the job. If it dies, its lease runs out and this message takes over.
        return { action: "retry", delaySeconds: Math.ceil(outcome.retryInMs / 1000) + 1 };
      case "continue":
        await deps.env.EXPORT_QUEUE.send({ kind: "export", jobId: message.jobId } satisfies ExportMessage);
        return ACK;
      case "complete":
      case "finished":
        await deps.fault?.("before-notify");
        return notifyJob(deps, outcome.job, "export");
    }
  } catch (error) {
    if (error instanceof LeaseLostError) {
      console.warn(error.message);
      return ACK;
    }
    console.error(`job ${message.jobId}: slice failed (attempt ${attempts}):`, error);
    if (attempts < deps.config.EXPORT_MAX_ATTEMPTS) return { action: "retry", delaySeconds: exportRetryDelay(attempts) };
    const failed = await failJob(deps.db, message.jobId, `Export failed after ${attempts} attempts: ${errorText(error)}`, deps.now());
    if (!failed) return ACK;
    await abortUpload(deps.env, failed);
    return notifyJob(deps, failed, "export");
  }
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

/** The queue handler: one message at a time, each acked or retried as `handleExportMessage` decides. */
export async function consumeExportBatch(batch: MessageBatch<unknown>, env: Env, deps = consumerDeps(env)): Promise<void> {
  const deadLetters = batch.queue.endsWith("-dlq");
  for (const message of batch.messages) {
    if (!isExportMessage(message.body)) {
      console.error("dropping a message that is not an export message:", JSON.stringify(message.body).slice(0, 200));
      message.ack();
      continue;
    }
    const action = deadLetters
      ? await handleDeadLetter(message.body, deps)
      : await handleExportMessage(message.body, message.attempts, deps);
    if (action.action === "ack") message.ack();
    else message.retry({ delaySeconds: action.delaySeconds });
  }
}

/** A message the queue gave up on: the job fails (if it had not finished) and the user is told. */
async function handleDeadLetter(message: ExportMessage, deps: ConsumerDeps): Promise<QueueAction> {
  const failed = await failJob(deps.db, message.jobId, "The export was abandoned after repeated failures", deps.now());
  if (!failed) return ACK;
  await abortUpload(deps.env, failed);
  return notifyJob(deps, failed, "export");
}
