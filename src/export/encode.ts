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

// Cells a spreadsheet would read as a formula (OWASP: = + - @ tab CR) get a leading apostrophe.
const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^-?\d+(\.\d+)?$/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One CSV cell per RFC 4180, safe from spreadsheet formula injection. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  let text = Array.isArray(value) ? value.join("; ") : String(value);
  if (FORMULA_START.test(text) && !(typeof value === "number" || PLAIN_NUMBER.test(text))) text = `'${text}`;
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

export const encoderFor = (spec: ExportSpec): Encoder => (spec.format === "csv" ? csvEncoder(spec) : jsonEncoder);
