import type { ExportSpec } from "./spec";

/**
 * Turns query records into the text of the file: head, then each record (with the separator between
 * records), then tail. The count is only known at the end, so the JSON envelope puts it after the subscribers:
 *   {"response":{"status":"SUCCESS","data":{"subscribers":[…],"count":N}}}
 */
export interface Encoder {
  head(): string;
  /** Written between two records. */
  separator: string;
  record(record: string): string;
  tail(count: number): string;
}

const jsonEncoder: Encoder = {
  head: () => `{"response":{"status":"SUCCESS","data":{"subscribers":[`,
  separator: ",",
  // Each record is already the subscriber's JSON object, built by SQLite.
  record: (record) => record,
  tail: (count) => `],"count":${count}}}}`,
};

/**
 * NDJSON (newline-delimited JSON): one subscriber object per line, the same object as in the JSON file, and
 * nothing else: no envelope, so the file can be split, streamed and appended to line by line. The count
 * travels in the notification and the status call.
 */
const ndjsonEncoder: Encoder = {
  head: () => "",
  separator: "",
  record: (record) => `${record}\n`,
  tail: () => "",
};

/**
 * Formula injection (OWASP "CSV Injection"). A spreadsheet may run a cell as a formula when, after any leading
 * whitespace, it starts with = + - @ (also | and %, which some spreadsheets treat as DDE or operators, and
 * their full-width forms ＝ ＋ － ＠, which some convert on input); a tab or CR in the leading run can also
 * start one. Such a cell gets a leading apostrophe, which spreadsheets show as text and do not display.
 *
 * A plain number is left as it is: an optional "-", digits, and optional decimals ("-12.5"), and any
 * JSON number. Decided cases: "+1" is prefixed (a "+" only ever starts a formula, and the apostrophe keeps a
 * phone number "+1 415…" as text); "1e5" and " 12" need nothing (they start with a digit or a space and a
 * digit); "-1e5" and "-.5" are prefixed (not plain numbers in the sense above).
 */
const LEADING_RUN = /^[\s\u200b\ufeff]*/;
const FORMULA_TRIGGER = /^[=+\-@|%\uff1d\uff0b\uff0d\uff20]/;
const TAB_OR_CR = /[\t\r]/;
const PLAIN_NUMBER = /^-?\d+(\.\d+)?$/;
const NEEDS_QUOTES = /[",\r\n]/;

/** Whether a text cell could run as a formula in a spreadsheet (see above). */
export function isFormulaLike(text: string): boolean {
  const run = LEADING_RUN.exec(text)![0];
  if (TAB_OR_CR.test(run)) return true;
  const rest = text.slice(run.length);
  return FORMULA_TRIGGER.test(rest) && !PLAIN_NUMBER.test(rest);
}

/** One CSV cell per RFC 4180, safe from spreadsheet formula injection. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  let text = Array.isArray(value) ? value.join("; ") : String(value);
  if (typeof value !== "number" && isFormulaLike(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

const csvRow = (cells: readonly unknown[]) => cells.map(csvCell).join(",") + "\r\n";

function csvEncoder(spec: ExportSpec): Encoder {
  const header = [
    "subscriberid",
    "emailaddress",
    "status",
    "subscribedate",
    ...spec.customFields.map((f) => f.name),
    ...(spec.includeMembership ? ["tags"] : []),
  ];
  return {
    head: () => csvRow(header),
    separator: "",
    // Each record is a JSON array of the row's cells, built by SQLite.
    record: (record) => csvRow(JSON.parse(record) as unknown[]),
    tail: () => "",
  };
}

export function encoderFor(spec: ExportSpec): Encoder {
  switch (spec.format) {
    case "csv":
      return csvEncoder(spec);
    case "ndjson":
      return ndjsonEncoder;
    case "json":
      return jsonEncoder;
  }
}
