import type { JobEvent } from "./event";
import type { DeliveryResult } from "./result";

/** Asks the mailer worker (MAILER service binding, RPC) to send the email for an export event. */
export async function sendExportEmail(mailer: Env["MAILER"], to: string, event: JobEvent): Promise<DeliveryResult> {
  const email = emailFor(to, event);
  try {
    const result = await mailer.sendExportEmail(email);
    return result.ok
      ? { ok: true, detail: `message ${result.messageId}` }
      : { ok: false, retryable: result.retryable, error: `${result.code}: ${result.message}` };
  } catch (error) {
    return { ok: false, retryable: true, error: `mailer unreachable: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function emailFor(to: string, event: JobEvent) {
  switch (event.type) {
    case "segment_export.completed":
      return {
        kind: "completed" as const,
        to,
        jobId: event.data.jobid,
        count: event.data.count,
        format: event.data.format,
        files: event.data.files,
        expiresAt: event.data.expires_at,
      };
    case "segment_export.canceled":
      return { kind: "canceled" as const, to, jobId: event.data.jobid, count: event.data.count };
    case "segment_export.failed":
      return { kind: "failed" as const, to, jobId: event.data.jobid, reason: event.data.errormessage };
    case "subscriber_import.completed":
      return {
        kind: "import_completed" as const,
        to,
        jobId: event.data.jobid,
        listId: event.data.listid,
        rows: event.data.rows,
        added: event.data.added,
        updated: event.data.updated,
        rejected: event.data.rejected,
        rejectsUrl: event.data.rejects_url ?? null,
        expiresAt: event.data.expires_at ?? null,
      };
    case "subscriber_import.failed":
      return { kind: "import_failed" as const, to, jobId: event.data.jobid, reason: event.data.errormessage };
  }
}
