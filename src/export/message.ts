/**
 * The body of a queue message: a job id and what to do with it, never data (a message is at most 128 KB).
 * "export" runs the next slice of the job; "notify" delivers its notification.
 */
export type ExportMessage = { kind: "export"; jobId: string } | { kind: "notify"; jobId: string };

export const isExportMessage = (body: unknown): body is ExportMessage =>
  typeof body === "object" &&
  body !== null &&
  ((body as ExportMessage).kind === "export" || (body as ExportMessage).kind === "notify") &&
  typeof (body as ExportMessage).jobId === "string";
