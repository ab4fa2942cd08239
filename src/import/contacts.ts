/**
 * An import's records as contacts, in the shape AddOrUpdateSubscribers takes (src/contacts/input.ts), so that
 * one schema checks every contact however it arrives.
 *
 * CSV: a header row names the columns: `email` (or `emailaddress`, as exports write it), optionally `status`,
 * `confirmed`, `subscribedate` and `tags` (names joined by "; ", as exports write them), any custom field by
 * name, and `subscriberid` (ignored: ids are the service's). A blank cell gives nothing (it clears nothing).
 * NDJSON: one object per line, the export's own shape: {emailaddress, status, subscribedate, customfields:
 * {name: value}, tags: [names]}; `email` is accepted for `emailaddress`.
 */
import { quote } from "../api/envelope";
import type { AccountField } from "../contacts/fields";
import { DomainError } from "../errors";

const RESERVED = ["email", "emailaddress", "status", "confirmed", "subscribedate", "tags", "subscriberid"] as const;
type Reserved = (typeof RESERVED)[number];

export interface CsvLayout {
  columns: Array<{ reserved: Reserved } | { field: string }>;
}

/** The header row's meaning; an import whose header cannot be used fails at once, saying why. */
export function csvLayout(header: readonly string[], fields: readonly AccountField[]): CsvLayout {
  const seen = new Set<string>();
  const unknown: string[] = [];
  const columns = header.map((raw) => {
    const name = raw.trim();
    const folded = name.toLowerCase();
    if (seen.has(folded)) throw new DomainError("IMPORT_INVALID", `the CSV header names column ${quote(name)} twice`);
    seen.add(folded);
    const reserved = RESERVED.find((r) => r === folded);
    if (reserved) return { reserved };
    const field = fields.find((f) => f.name === name) ?? fields.find((f) => f.name.toLowerCase() === folded);
    if (!field) unknown.push(name);
    return { field: field?.name ?? name };
  });
  if (seen.has("email") && seen.has("emailaddress")) throw new DomainError("IMPORT_INVALID", "the CSV header has both email and emailaddress columns");
  if (!seen.has("email") && !seen.has("emailaddress")) throw new DomainError("IMPORT_INVALID", "the CSV header has no email (or emailaddress) column");
  if (unknown.length > 0) {
    throw new DomainError(
      "IMPORT_INVALID",
      `the CSV header names ${unknown.length === 1 ? "a column that is" : "columns that are"} not a custom field of this account: ${unknown.slice(0, 5).map(quote).join(", ")}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ""} (create them with CreateCustomField first)`,
    );
  }
  return { columns };
}

/** A CSV record's cells as a contact; `problem` when the record has too many cells. */
export function csvContact(cells: readonly string[], layout: CsvLayout): { contact: Record<string, unknown> } | { problem: string } {
  if (cells.length > layout.columns.length) return { problem: `has ${cells.length} cells, the header ${layout.columns.length}` };
  const contact: Record<string, unknown> = { customfield: [] as Array<{ name: string; value: string }>, tag: [] as string[] };
  layout.columns.forEach((column, i) => {
    const cell = cells[i] ?? "";
    if (cell.trim() === "") return;
    if ("field" in column) (contact.customfield as Array<{ name: string; value: string }>).push({ name: column.field, value: cell });
    else if (column.reserved === "email" || column.reserved === "emailaddress") contact.email = cell;
    else if (column.reserved === "tags") contact.tag = cell.split(";").map((t) => t.trim()).filter(Boolean);
    else if (column.reserved !== "subscriberid") contact[column.reserved] = cell.trim();
  });
  return { contact };
}

/** An NDJSON line as a contact. */
export function ndjsonContact(text: string): { contact: Record<string, unknown> } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: `is not valid JSON (${error instanceof Error ? error.message.slice(0, 100) : "parse error"})` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { problem: "is not a JSON object" };
  const record = value as Record<string, unknown>;
  const contact: Record<string, unknown> = { email: record.emailaddress ?? record.email };
  if (record.status !== undefined) contact.status = record.status;
  if (record.confirmed !== undefined) contact.confirmed = record.confirmed;
  if (record.subscribedate !== undefined) contact.subscribedate = record.subscribedate;
  if (record.customfields !== undefined) {
    if (typeof record.customfields !== "object" || record.customfields === null || Array.isArray(record.customfields)) {
      return { problem: "customfields must be an object of field names and values" };
    }
    const values = record.customfields as Record<string, unknown>;
    const customfield: Array<{ name: string; value: unknown }> = [];
    for (const name in values) customfield.push({ name, value: values[name] });
    contact.customfield = customfield;
  }
  if (record.tags !== undefined) contact.tag = record.tags;
  return { contact };
}
