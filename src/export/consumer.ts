import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { loadConfig } from "../config";
import { exportJobs, type ExportJob } from "../db/control_schema";
import { describeForLog, DomainError } from "../errors";
import { clampDelay, exportRetryDelay, notifyRetryDelay } from "../notify/backoff";
import { deliverNotification, type NotifyDeps } from "../notify/deliver";
import { abortUploads } from "./r2_writer";
import { deleteStoredObjects } from "./stored_files";
import { failJob, isFinished, LeaseLostError, markRetryDue, recordSliceFailure } from "./checkpoint";
import { isQueueMessage, type ExportMessage, type QueueMessage } from "./message";
import { handleMoveMessage, type MoveDeps } from "../shards/move";
import { runExportSlice, type SliceDeps } from "./slice";

/** The queues the export worker consumes, by their exact names in wrangler.exporter.toml. */
export const EXPORT_QUEUE_NAME = "segment-export-jobs";
export const DEAD_LETTER_QUEUE_NAME = "segment-export-dlq";

export type QueueAction = { action: "ack" } | { action: "retry"; delaySeconds: number };

const ACK: QueueAction = { action: "ack" };

export type ConsumerDeps = SliceDeps & NotifyDeps & MoveDeps;

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
export async function handleExportMessage(message: ExportMessage, deps: ConsumerDeps): Promise<QueueAction> {
  if (message.kind === "notify") return handleNotifyMessage(deps, message);
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
        await sendMessage(deps, { kind: "export", jobId: message.jobId, drive: outcome.drive });
        return ACK;
      case "finished":
        // A retry of the notification is already scheduled: let it keep its backoff.
        if (outcome.job.notifyDueAt > deps.now()) return ACK;
        return notifyJob(deps, outcome.job);
      case "complete":
        await deps.fault?.("before-notify");
        return notifyJob(deps, outcome.job);
    }
  } catch (error) {
    if (error instanceof LeaseLostError) {
      console.warn(error.message);
      return ACK;
    }
    return sliceFailed(deps, message.jobId, error);
  }
}

/**
 * A slice threw. A permanent error (rules that cannot run, a damaged checkpoint) fails the job at once; any
 * other is retried with backoff until EXPORT_MAX_ATTEMPTS slices in a row failed. Only failures count: a
 * message that found the job busy, or a redelivery, does not. The user sees a category and a reference; the
 * log has the details.
 */
async function sliceFailed(deps: ConsumerDeps, jobId: string, error: unknown): Promise<QueueAction> {
  const reference = crypto.randomUUID();
  if (error instanceof DomainError && error.operator) return waitWithoutFailing(deps, jobId, error, reference, OPERATOR_RETRY_SECONDS);
  // A passing condition (an import's account being moved: its writes are paused): wait it out, not a failure.
  if (error instanceof DomainError && error.retryAfterSeconds !== undefined) {
    return waitWithoutFailing(deps, jobId, error, reference, error.retryAfterSeconds);
  }
  const permanent = isPermanent(error);
  const failures = await recordSliceFailure(deps.db, jobId);
  console.error(`job ${jobId}: slice failed (${permanent ? "permanent" : `failure ${failures}`}, reference ${reference}): ${describeForLog(error)}`);
  // The job finished before the slice failed (it died between completing and notifying): the redelivered
  // message finds it finished and delivers the notification.
  if (failures === 0) return { action: "retry", delaySeconds: exportRetryDelay(1) };
  if (!permanent && failures < deps.config.EXPORT_MAX_ATTEMPTS) {
    const delaySeconds = exportRetryDelay(failures);
    await markRetryDue(deps.db, jobId, deps.now() + delaySeconds * 1000);
    return { action: "retry", delaySeconds };
  }
  const job = await deps.db.select({ kind: exportJobs.kind }).from(exportJobs).where(eq(exportJobs.id, jobId)).get();
  const reason = permanent
    ? `The ${job?.kind ?? "export"} cannot run: ${(error as Error).message}`
    : `The export failed after ${failures} attempts (internal error, reference ${reference})`;
  const failed = await abandonJob(deps, jobId, reason);
  return failed ? notifyJob(deps, failed) : ACK;
}

/** How often an export blocked by the service's own configuration (a shard without binding) looks again. */
export const OPERATOR_RETRY_SECONDS = 300;

/**
 * A slice failed because of the service's configuration (the account's shard has no binding): the client is
 * not to blame and the export must not fail for it. It waits, without counting a failure, and tries again every
 * OPERATOR_RETRY_SECONDS until the configuration is repaired, as a fresh message (a retried one would reach
 * the queue's max_retries and be dead-lettered). The log says what to fix.
 */
async function waitWithoutFailing(
  deps: ConsumerDeps,
  jobId: string,
  error: DomainError,
  reference: string,
  seconds: number,
): Promise<QueueAction> {
  const why = error.operator ? "waiting for the operator" : "waiting";
  console.error(`job ${jobId}: ${why} (reference ${reference}): ${error.code}: ${error.message}`);
  const job = await deps.db.select({ drive: exportJobs.drive }).from(exportJobs).where(eq(exportJobs.id, jobId)).get();
  if (!job) return ACK;
  await markRetryDue(deps.db, jobId, deps.now() + seconds * 1000);
  await sendMessage(deps, { kind: "export", jobId, drive: job.drive }, seconds);
  return ACK;
}

/** Errors no retry can fix: the domain's permanent ones (rules that cannot run, a damaged checkpoint). */
const isPermanent = (error: unknown) => error instanceof DomainError && !error.retryable;

/**
 * Fails an unfinished job (unless a slice holds a live lease on it), aborts its upload and deletes its files. Returns the failed
 * job, whose notification the caller delivers or schedules; undefined if the job had finished or is held.
 */
export async function abandonJob(deps: Pick<ConsumerDeps, "db" | "env" | "now">, jobId: string, reason: string) {
  const failed = await failJob(deps.db, jobId, reason, deps.now());
  if (failed) {
    await abortUploads(deps.env.EXPORTS, failed.objectKey, [failed.uploadId, failed.abandonedUploadId]);
    // A failed export keeps no files, not even the finished files of a split one.
    await deleteStoredObjects(deps.env.EXPORTS, deps.db, failed);
  }
  return failed;
}

/**
 * A notify message: the next attempt at a finished job's notification, if the message carries the job's
 * current notify drive (otherwise it is a stale copy). One that arrives before the attempt is due (a wait
 * longer than the queue can delay a message) is put back for the rest of the wait.
 */
async function handleNotifyMessage(deps: ConsumerDeps, message: ExportMessage): Promise<QueueAction> {
  const job = await deps.db.select().from(exportJobs).where(eq(exportJobs.id, message.jobId)).get();
  if (!job || !isFinished(job.state)) return ACK;
  if (job.notifyState !== "pending" || job.notifyDrive !== message.drive) return ACK;
  const waitMs = job.notifyDueAt - deps.now();
  if (waitMs > 1000) return { action: "retry", delaySeconds: clampDelay(Math.ceil(waitMs / 1000)) };
  return notifyJob(deps, job);
}

/**
 * Makes an attempt at a finished job's notification. A failed attempt schedules the next one as a new
 * message carrying the job's new notify drive: there is only ever one live notify message per job.
 */
async function notifyJob(deps: ConsumerDeps, job: ExportJob): Promise<QueueAction> {
  const outcome = await deliverNotification(deps, job);
  if (outcome.action === "retry") {
    await sendMessage(deps, { kind: "notify", jobId: job.id, drive: outcome.drive }, outcome.delaySeconds);
  }
  return ACK;
}

function sendMessage(deps: Pick<ConsumerDeps, "env">, message: ExportMessage, delaySeconds = 0) {
  return deps.env.EXPORT_QUEUE.send(message, delaySeconds > 0 ? { delaySeconds: clampDelay(delaySeconds) } : undefined);
}

/** Applies a handler's decision to each message of a batch; drops (acks) a body that is not ours, after logging it. */
async function consumeEach(
  batch: MessageBatch<unknown>,
  handle: (body: QueueMessage) => Promise<QueueAction>,
): Promise<void> {
  for (const message of batch.messages) {
    const body = message.body;
    if (!isQueueMessage(body)) {
      console.error("dropping a message that is not an export or move message:", JSON.stringify(body).slice(0, 200));
      message.ack();
      continue;
    }
    const action = await handle(body).catch((error: unknown): QueueAction => {
      // Whatever throws (D1, R2, the queue, a bug), the message comes back on the schedule, never at once.
      const reference = crypto.randomUUID();
      const subject = body.kind === "move" ? `move ${body.moveId}` : `job ${body.jobId}`;
      console.error(`${body.kind} message for ${subject} failed (reference ${reference}): ${describeForLog(error)}`);
      const delaySeconds = body.kind === "notify" ? notifyRetryDelay(message.attempts) : exportRetryDelay(message.attempts);
      return { action: "retry", delaySeconds };
    });
    if (action.action === "ack") message.ack();
    else message.retry({ delaySeconds: action.delaySeconds });
  }
}

/** The export queue's handler: one message at a time, each acked or retried as `handleExportMessage` decides. */
export function consumeExportBatch(batch: MessageBatch<unknown>, deps: ConsumerDeps): Promise<void> {
  return consumeEach(batch, (body) => (body.kind === "move" ? handleMoveMessage(body, deps) : handleExportMessage(body, deps)));
}

/** The dead-letter queue's handler. */
export function consumeDeadLetters(batch: MessageBatch<unknown>, deps: ConsumerDeps): Promise<void> {
  return consumeEach(batch, (body) => {
    // A move's row is its truth: the sweeper sends it another message when this one is overdue.
    if (body.kind === "move") {
      console.error(`move ${body.moveId}: a message was dead-lettered; the sweeper will drive the move again`);
      return Promise.resolve(ACK);
    }
    return handleDeadLetter(body, deps);
  });
}

/**
 * A message the queue gave up on. A dead export message fails its job (if unfinished) and the user is told;
 * a dead notify message marks the notification failed, which the status call shows. A dead message whose
 * drive has moved on was a copy: the job's live message goes on, so it is left alone.
 */
export async function handleDeadLetter(message: ExportMessage, deps: ConsumerDeps): Promise<QueueAction> {
  const job = await deps.db.select().from(exportJobs).where(eq(exportJobs.id, message.jobId)).get();
  if (!job) return ACK;
  if (message.kind === "notify") {
    if (job.notifyState !== "pending" || job.notifyDrive !== message.drive) return ACK;
    await deps.db
      .update(exportJobs)
      .set({ notifyState: "failed", notifyError: "undeliverable: the queue gave up on it", notifyDueAt: 0 })
      .where(and(eq(exportJobs.id, job.id), eq(exportJobs.notifyDrive, message.drive), eq(exportJobs.notifyState, "pending")));
    console.error(`job ${job.id}: notification dead-lettered; marked failed`);
    return ACK;
  }
  if (job.drive !== message.drive) return ACK;
  const failed = await abandonJob(deps, message.jobId, "The export was abandoned after repeated failures");
  return failed ? notifyJob(deps, failed) : ACK;
}
