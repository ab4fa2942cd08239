/** What the API worker asks the mailer to send about one export. */
export type ExportEmail =
  | {
      kind: "completed";
      to: string;
      jobId: string;
      count: number;
      format: "json" | "csv" | "ndjson";
      /** Every file, in order: one, or the parts of a split export. */
      files: Array<{ url: string; count: number; bytes: number }>;
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
    }
  | {
      kind: "import_completed";
      to: string;
      jobId: string;
      listId: string;
      rows: number;
      added: number;
      updated: number;
      rejected: number;
      /** The rejects file, when a row was rejected. */
      rejectsUrl: string | null;
      expiresAt: string | null;
    }
  | {
      kind: "import_failed";
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

/** 1,536 → "1.5 KB"; binary units, as file managers show them. */
function formatBytes(bytes: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

export function renderExportEmail(email: ExportEmail): RenderedEmail {
  if (email.kind === "completed") {
    const contacts = `${email.count.toLocaleString("en-US")} contact${email.count === 1 ? "" : "s"}`;
    const expiry = formatExpiry(email.expiresAt);
    const split = email.files.length > 1;
    const partLabel = (file: { count: number; bytes: number }, i: number) =>
      `File ${i + 1} of ${email.files.length}: ${file.count.toLocaleString("en-US")} contacts, ${formatBytes(file.bytes)}`;
    return {
      subject: `Your segment export is ready (${contacts})`,
      text: [
        `Your segment export ${email.jobId} is ready.`,
        "",
        `Contacts: ${email.count}`,
        `Format: ${email.format.toUpperCase()}`,
        ...(split
          ? [`Files: ${email.files.length}`, "", ...email.files.flatMap((file, i) => [partLabel(file, i), file.url, ""])]
          : [`Download: ${email.files[0]?.url ?? ""}`]),
        `The link${split ? "s expire" : " expires"} on ${expiry}.`,
      ].join("\n"),
      html: [
        `<p>Your segment export <code>${escapeHtml(email.jobId)}</code> is ready.</p>`,
        `<p>Contacts: <strong>${email.count}</strong><br>Format: ${email.format.toUpperCase()}</p>`,
        split
          ? `<ol>\n${email.files.map((file, i) => `<li><a href="${escapeHtml(file.url)}">${escapeHtml(partLabel(file, i))}</a></li>`).join("\n")}\n</ol>`
          : `<p><a href="${escapeHtml(email.files[0]?.url ?? "")}">Download the file</a></p>`,
        `<p>The link${split ? "s expire" : " expires"} on ${escapeHtml(expiry)}.</p>`,
      ].join("\n"),
    };
  }
  if (email.kind === "import_completed") {
    const n = (value: number) => value.toLocaleString("en-US");
    const summary = `${n(email.added)} added, ${n(email.updated)} updated, ${n(email.rejected)} rejected`;
    const rejects =
      email.rejectsUrl === null
        ? { text: [], html: [] }
        : {
            text: ["", `The rejected rows, each with its reason: ${email.rejectsUrl}`, `The link expires on ${formatExpiry(email.expiresAt!)}.`],
            html: [
              `<p><a href="${escapeHtml(email.rejectsUrl)}">The rejected rows, each with its reason</a></p>`,
              `<p>The link expires on ${escapeHtml(formatExpiry(email.expiresAt!))}.</p>`,
            ],
          };
    return {
      subject: `Your import is done (${summary})`,
      text: [`Your import ${email.jobId} into list ${email.listId} is done.`, "", `Rows read: ${email.rows}`, `Added: ${email.added}`, `Updated: ${email.updated}`, `Rejected: ${email.rejected}`, ...rejects.text].join("\n"),
      html: [
        `<p>Your import <code>${escapeHtml(email.jobId)}</code> into list ${escapeHtml(email.listId)} is done.</p>`,
        `<p>Rows read: <strong>${email.rows}</strong><br>Added: ${email.added}<br>Updated: ${email.updated}<br>Rejected: ${email.rejected}</p>`,
        ...rejects.html,
      ].join("\n"),
    };
  }
  if (email.kind === "import_failed") {
    return {
      subject: "Your import failed",
      text: [`Your import ${email.jobId} failed.`, "", `Reason: ${email.reason}`].join("\n"),
      html: [`<p>Your import <code>${escapeHtml(email.jobId)}</code> failed.</p>`, `<p>Reason: ${escapeHtml(email.reason)}</p>`].join("\n"),
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
