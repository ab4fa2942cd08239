/**
 * The body of a queue message: a job id and what to do with it, never data (a message is at most 128 KB).
 * "export" runs the next slice of the job, if `drive` is still the job's drive (see export_jobs.drive):
 * a message whose drive has moved on is a stale duplicate and is dropped. "notify" delivers its notification.
 */
export type ExportMessage = { kind: "export"; jobId: string; drive: number } | { kind: "notify"; jobId: string };

export const isExportMessage = (body: unknown): body is ExportMessage => {
  if (typeof body !== "object" || body === null) return false;
  const message = body as Record<string, unknown>;
  if (typeof message.jobId !== "string") return false;
  if (message.kind === "notify") return true;
  return message.kind === "export" && Number.isSafeInteger(message.drive);
};
