import { WorkerEntrypoint } from "cloudflare:workers";
import { renderExportEmail, type ExportEmail } from "./render";

export type { ExportEmail } from "./render";

export type SendResult =
  | { ok: true; messageId: string }
  | { ok: false; code: string; message: string; retryable: boolean };

// Email Service errors that a later attempt cannot fix.
const PERMANENT_CODES = new Set([
  "E_RECIPIENT_SUPPRESSED",
  "E_SENDER_NOT_VERIFIED",
  "E_RECIPIENT_NOT_ALLOWED",
  "E_VALIDATION_ERROR",
]);

/**
 * The email-sending worker. The API worker calls `sendExportEmail` over its MAILER service binding;
 * this worker owns the send_email binding and the wording of the messages. Failures come back as values,
 * because an error's `code` does not survive the RPC boundary.
 */
export default class Mailer extends WorkerEntrypoint<MailerEnv> {
  override async fetch(): Promise<Response> {
    return new Response("segment-export-mailer is reached over RPC only\n", { status: 404 });
  }

  async sendExportEmail(email: ExportEmail): Promise<SendResult> {
    const message = renderExportEmail(email);
    try {
      const sent = await this.env.EMAIL.send({
        from: { email: this.env.MAIL_FROM, name: this.env.MAIL_FROM_NAME },
        to: email.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
      });
      return { ok: true, messageId: sent.messageId };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const codeText = typeof code === "string" ? code : "E_SEND_FAILED";
      return {
        ok: false,
        code: codeText,
        message: error instanceof Error ? error.message : String(error),
        retryable: !PERMANENT_CODES.has(codeText),
      };
    }
  }
}
