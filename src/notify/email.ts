import type { ExportEvent } from "./event";
import type { DeliveryResult } from "./result";

/** Asks the mailer worker (MAILER service binding, RPC) to send the email for an export event. */
export async function sendExportEmail(mailer: Env["MAILER"], to: string, event: ExportEvent): Promise<DeliveryResult> {
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

function emailFor(to: string, event: ExportEvent) {
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
  }
}
