/**
 * Custom field values, checked against the field's type before they are stored: a number field holds numbers,
 * a date field "YYYY-MM-DD" days (what segment rules compare), a text field text. Values are stored on the
 * subscriber row as {"<field id>": value}.
 */
import { and, eq } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { quote } from "../api/envelope";
import { customFields, type CustomFieldType } from "../db/shard_schema";
import { RULE_LIMITS } from "../segments/rules";
import { CONTACT_LIMITS, isCalendarDay, isoInstant, type FieldValueInput } from "./input";

export interface AccountField {
  id: number;
  name: string;
  type: CustomFieldType;
  defaultValue: string | null;
  required: boolean;
}

export function loadAccountFields(shard: DrizzleD1Database, accountId: number): Promise<AccountField[]> {
  return shard
    .select({ id: customFields.id, name: customFields.name, type: customFields.type, defaultValue: customFields.defaultValue, required: customFields.required })
    .from(customFields)
    .where(and(eq(customFields.accountId, accountId)));
}

export type StoredValue = string | number | null;
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

const PLAIN_NUMBER = /^\s*-?\d+(\.\d+)?\s*$/;

/** A value for a field of `type`, as it is stored, or why it cannot be. */
export function typedValue(type: CustomFieldType, raw: unknown): Checked<StoredValue> {
  if (raw === null) return { ok: true, value: null };
  switch (type) {
    case "text": {
      if (typeof raw !== "string" && typeof raw !== "number" && typeof raw !== "boolean") return { ok: false, reason: "must be text" };
      const text = String(raw);
      if (text.length > CONTACT_LIMITS.textValue) return { ok: false, reason: `must be at most ${CONTACT_LIMITS.textValue} characters (got ${text.length})` };
      return { ok: true, value: text };
    }
    case "number": {
      const number = typeof raw === "number" ? raw : typeof raw === "string" && PLAIN_NUMBER.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(number)) return { ok: false, reason: `must be a number (got ${quote(raw)})` };
      if (Math.abs(number) > RULE_LIMITS.numberMagnitude) return { ok: false, reason: `must be between -${RULE_LIMITS.numberMagnitude} and ${RULE_LIMITS.numberMagnitude}` };
      return { ok: true, value: number };
    }
    case "date": {
      // A day; a date-time counts as its day in UTC.
      const text = typeof raw === "string" ? raw.trim() : "";
      if (isCalendarDay(text)) return { ok: true, value: text };
      const instant = isoInstant(text);
      if (instant) return { ok: true, value: instant.slice(0, 10) };
      return { ok: false, reason: `must be a date, YYYY-MM-DD or an ISO 8601 date-time (got ${quote(raw)})` };
    }
  }
}

/** A field's default as its typed value (stored as text), or null when it has none. */
export function defaultOf(field: AccountField): StoredValue {
  if (field.defaultValue === null) return null;
  const typed = typedValue(field.type, field.defaultValue);
  return typed.ok ? typed.value : null;
}

/**
 * The values of `entries` (customfield[] of one contact) by field id, or the first problem, with its path under
 * `path()` ("customfield.2.value: must be a number"; made only then).
 */
export function resolveFieldValues(
  entries: readonly FieldValueInput[],
  fields: ReturnType<typeof fieldLookup>,
  path: () => string,
): Checked<Record<string, StoredValue>> {
  const values: Record<string, StoredValue> = {};
  for (const [i, entry] of entries.entries()) {
    const field = entry.fieldid !== undefined ? fields.byId.get(entry.fieldid) : fields.byName(entry.name!);
    if (!field) {
      const named = entry.fieldid !== undefined ? `fieldid ${entry.fieldid}` : `name ${quote(entry.name)}`;
      return { ok: false, reason: `${path()}.${i}: no custom field with ${named} in this account` };
    }
    const typed = typedValue(field.type, entry.value);
    if (!typed.ok) return { ok: false, reason: `${path()}.${i}.value: ${typed.reason} for ${field.type} field ${quote(field.name)}` };
    values[String(field.id)] = typed.value;
  }
  return { ok: true, value: values };
}

/** The lookups resolveFieldValues needs; a name matches exactly, else without regard to case, as the export's do. */
export function fieldLookup(fields: readonly AccountField[]) {
  const exact = new Map(fields.map((f) => [f.name, f]));
  const folded = new Map(fields.map((f) => [f.name.toLowerCase(), f]));
  return {
    all: fields,
    /** What a new subscriber may get without being given it: a default, or a "required" refusal. */
    withDefaultOrRequired: fields.filter((f) => f.defaultValue !== null || f.required),
    byId: new Map(fields.map((f) => [f.id, f])),
    byName: (name: string) => exact.get(name) ?? folded.get(name.toLowerCase()),
  };
}
