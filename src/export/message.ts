/**
 * The body of a queue message: a job id and what to do with it, never data (a message is at most 128 KB).
 * "export" runs the next slice of the job, if `drive` is still the job's drive (export_jobs.drive); "notify"
 * makes the next attempt at its notification, if `drive` is still its notify drive (export_jobs.notify_drive).
 * A message whose drive has moved on is a stale copy and is dropped. The same queue carries account moves.
 */
export type ExportMessage = { kind: "export" | "notify"; jobId: string; drive: number };

/** The next slice of an account move (src/shards/move.ts), if `drive` is still the move's drive. */
export type MoveMessage = { kind: "move"; moveId: number; drive: number };

/** Every message of the export queue. */
export type QueueMessage = ExportMessage | MoveMessage;

export const isQueueMessage = (body: unknown): body is QueueMessage => {
  if (typeof body !== "object" || body === null) return false;
  const message = body as Record<string, unknown>;
  if (!Number.isSafeInteger(message.drive)) return false;
  if (message.kind === "move") return Number.isSafeInteger(message.moveId);
  return (message.kind === "export" || message.kind === "notify") && typeof message.jobId === "string";
};
