/**
 * The body of a queue message: a job id and what to do with it, never data (a message is at most 128 KB).
 * "export" runs the next slice of the job, if `drive` is still the job's drive (export_jobs.drive); "notify"
 * makes the next attempt at its notification, if `drive` is still its notify drive (export_jobs.notify_drive).
 * A message whose drive has moved on is a stale copy and is dropped.
 */
export type ExportMessage = { kind: "export" | "notify"; jobId: string; drive: number };

export const isExportMessage = (body: unknown): body is ExportMessage => {
  if (typeof body !== "object" || body === null) return false;
  const message = body as Record<string, unknown>;
  return (
    (message.kind === "export" || message.kind === "notify") &&
    typeof message.jobId === "string" &&
    Number.isSafeInteger(message.drive)
  );
};
