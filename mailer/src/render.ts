/** What the API worker asks the mailer to send about one export. */
export type ExportEmail =
  | {
      kind: "completed";
      to: string;
      jobId: string;
      count: number;
      format: "json" | "csv" | "ndjson";
      url: string;
      /** ISO 8601 */
      expiresAt: string;
    }
  | {
      kind: "canceled";
      to: string;
      jobId: string;
      /** Rows written before it was stopped. */
      count: number;
    }
  | {
      kind: "failed";
      to: string;
      jobId: string;
      reason: string;
    };

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const formatExpiry = (iso: string): string => new Date(iso).toUTCString();

export function renderExportEmail(email: ExportEmail): RenderedEmail {
  if (email.kind === "completed") {
    const contacts = `${email.count.toLocaleString("en-US")} contact${email.count === 1 ? "" : "s"}`;
    const expiry = formatExpiry(email.expiresAt);
    return {
      subject: `Your segment export is ready (${contacts})`,
      text: [
        `Your segment export ${email.jobId} is ready.`,
        "",
        `Contacts: ${email.count}`,
        `Format: ${email.format.toUpperCase()}`,
        `Download: ${email.url}`,
        `The link expires on ${expiry}.`,
      ].join("\n"),
      html: [
        `<p>Your segment export <code>${escapeHtml(email.jobId)}</code> is ready.</p>`,
        `<p>Contacts: <strong>${email.count}</strong><br>Format: ${email.format.toUpperCase()}</p>`,
        `<p><a href="${escapeHtml(email.url)}">Download the file</a></p>`,
        `<p>The link expires on ${escapeHtml(expiry)}.</p>`,
      ].join("\n"),
    };
  }
  if (email.kind === "canceled") {
    return {
      subject: "Your segment export was canceled",
      text: [`Your segment export ${email.jobId} was canceled at your request.`, "", "No file was kept."].join("\n"),
      html: [
        `<p>Your segment export <code>${escapeHtml(email.jobId)}</code> was canceled at your request.</p>`,
        "<p>No file was kept.</p>",
      ].join("\n"),
    };
  }
  return {
    subject: "Your segment export failed",
    text: [`Your segment export ${email.jobId} failed.`, "", `Reason: ${email.reason}`].join("\n"),
    html: [
      `<p>Your segment export <code>${escapeHtml(email.jobId)}</code> failed.</p>`,
      `<p>Reason: ${escapeHtml(email.reason)}</p>`,
    ].join("\n"),
  };
}
