/**
 * What a client may send about a contact, as zod schemas shared by every write method (AddSubscriberToList,
 * AddOrUpdateSubscribers, UpdateSubscriber) and the bulk import: an email address, a list, custom field values
 * by field id or name, tags by id or name, a status or Pinpointe's `confirmed`, a subscribe date.
 */
import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { SUBSCRIBER_STATUSES, type SubscriberStatus } from "../db/shard_schema";
import { booleanish, caseInsensitiveEnum } from "../methods/segment_selection";

/** RFC 5321: a forward path holds at most 254 characters. */
export const MAX_EMAIL_LENGTH = 254;

/**
 * Bounds of one contact. A text value of 10,000 characters is past any custom field a person fills in; 500
 * fields is the request-side bound of the export too; 100 tags per contact is far past real use.
 */
export const CONTACT_LIMITS = {
  textValue: 10_000,
  fieldsPerContact: 500,
  tagsPerContact: 100,
  /**
   * A subscriber's custom field values, as stored (JSON), in bytes: a D1 row holds at most 2 MB, and 256 KiB is
   * far past what anyone keeps on a contact (500 fields of 500 characters).
   */
  storedFieldsBytes: 256 * 1024,
  nameLength: 200,
  /** Contacts per AddOrUpdateSubscribers call: one D1 batch. */
  contactsPerCall: 1_000,
  /** Subscriber ids per TagSubscribers / UntagSubscribers call. */
  idsPerCall: 1_000,
} as const;

/** zod's own email pattern, named so that the schema and parseContact's quick path use the very same one. */
const EMAIL_PATTERN = z.regexes.email;
const validEmail = z.email({ pattern: EMAIL_PATTERN });

/** A valid address as stored: its domain lower-cased. */
const withLowerDomain = (email: string) => {
  const at = email.lastIndexOf("@");
  return `${email.slice(0, at)}@${email.slice(at + 1).toLowerCase()}`;
};

/**
 * An email address, normalised: trimmed, its domain lower-cased (the local part is left as sent: RFC 5321 lets a
 * mail server tell "Ada" from "ada", although few do).
 */
export const emailAddress = z
  .string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") })
  .trim()
  .min(1, "must not be empty")
  .max(MAX_EMAIL_LENGTH, tooLong(MAX_EMAIL_LENGTH))
  .transform((email, ctx) => {
    if (!validEmail.safeParse(email).success) {
      ctx.addIssue({ code: "custom", message: `${quote(email)} is not a valid email address` });
      return z.NEVER;
    }
    return withLowerDomain(email);
  });

/** A positive whole id, as a number or digits; `what` names it in the message ("a list id"). */
export const entityId = (what: string) =>
  z
    .union([z.number(), z.string()], { error: (issue) => (issue.input === undefined ? "is required" : `${quote(issue.input)} is not ${what}`) })
    .transform((value, ctx) => {
      const id = typeof value === "number" ? value : /^\s*\d{1,16}\s*$/.test(value) ? Number(value) : NaN;
      if (!Number.isSafeInteger(id) || id <= 0) {
        ctx.addIssue({ code: "custom", message: `${quote(value)} is not ${what}` });
        return z.NEVER;
      }
      return id;
    });

export const listId = entityId("a list id");

/** A name of a list, tag, custom field or segment: trimmed, 1 to 200 characters. */
export const entityName = z
  .string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") })
  .trim()
  .min(1, "must not be empty")
  .max(CONTACT_LIMITS.nameLength, tooLong(CONTACT_LIMITS.nameLength));

/** A tag named by id (a number or digits) or by name. */
export type TagRef = { id: number } | { name: string };
/** A tag id or name as a TagRef, or what is wrong with it. */
function tagRefOf(value: number | string): TagRef | { problem: string } {
  if (typeof value === "number" || /^\s*\d{1,16}\s*$/.test(value)) {
    const id = Number(value);
    return Number.isSafeInteger(id) && id > 0 ? { id } : { problem: `${quote(value)} is not a tag id` };
  }
  const name = value.trim();
  if (name.length === 0 || name.length > CONTACT_LIMITS.nameLength) {
    return { problem: `must be a tag id or a tag name of 1 to ${CONTACT_LIMITS.nameLength} characters` };
  }
  return { name };
}

export const tagRef = z.union([z.number(), z.string()], { error: "must be a tag id or a tag name" }).transform((value, ctx): TagRef => {
  const ref = tagRefOf(value);
  if ("problem" in ref) {
    ctx.addIssue({ code: "custom", message: ref.problem });
    return z.NEVER;
  }
  return ref;
});

export const tagRefs = z
  .array(tagRef, { error: "must be an array of tag ids or names" })
  .max(CONTACT_LIMITS.tagsPerContact, { error: `at most ${CONTACT_LIMITS.tagsPerContact} tags` });

/** {fieldid, value} or {name, value}: a custom field value as Pinpointe's customfield[] carries it. */
const fieldValue = z
  .object(
    {
      fieldid: entityId("a custom field id").optional(),
      name: entityName.optional(),
      value: z.unknown(),
    },
    { error: "must be {fieldid or name, value}" },
  )
  .refine((entry) => (entry.fieldid === undefined) !== (entry.name === undefined), { error: "must name the field by fieldid or by name (one of them)" })
  .refine((entry) => entry.value !== undefined, { error: "needs a value (null clears it)", path: ["value"] });
export type FieldValueInput = z.output<typeof fieldValue>;

export const fieldValues = z
  .array(fieldValue, { error: "must be an array of {fieldid or name, value}" })
  .max(CONTACT_LIMITS.fieldsPerContact, { error: `at most ${CONTACT_LIMITS.fieldsPerContact} custom field values` });

export const subscriberStatus = caseInsensitiveEnum(SUBSCRIBER_STATUSES);

/**
 * A subscribe date: an ISO 8601 date ("2025-03-14", midnight UTC) or date-time with a zone ("…T09:26:53Z",
 * "…+02:00"), stored as UTC "YYYY-MM-DDTHH:MM:SSZ", between 1970 and a day from now.
 */
export const subscribeDate = z
  .string({ error: "must be an ISO 8601 date or date-time" })
  .trim()
  .transform((text, ctx) => {
    const stored = storedSubscribeDate(text);
    if (typeof stored !== "string") {
      ctx.addIssue({ code: "custom", message: stored.problem });
      return z.NEVER;
    }
    return stored;
  });

let latest = { text: "", until: 0 };

/** A day from now, in the stored form (which compares as text), worked out once a second rather than per contact. */
function latestSubscribeDate(): string {
  const now = Date.now();
  if (now >= latest.until) latest = { text: `${new Date(now + 86_400_000).toISOString().slice(0, 19)}Z`, until: now - (now % 1000) + 1000 };
  return latest.text;
}

/** A (trimmed) subscribe date as stored, or what is wrong with it. */
function storedSubscribeDate(text: string): string | { problem: string } {
  const stored = isoInstant(text);
  if (stored === null) return { problem: `${quote(text)} is not an ISO 8601 date (YYYY-MM-DD) or date-time with a zone` };
  if (stored < "1970-01-01" || stored > latestSubscribeDate()) return { problem: `${quote(text)} is out of range (1970 to today)` };
  return stored;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Whether "YYYY-MM-DD" is a day of the calendar (not 2025-02-30), from year 100 on (years 0–99 never were: the
 * first version asked Date.UTC, which reads them as 1900–1999; no contact has them). Arithmetic, not a Date:
 * an import checks millions.
 */
export function isCalendarDay(text: string): boolean {
  const match = DAY.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (year < 100 || month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!);
}

/** "YYYY-MM-DDTHH:MM:SSZ", the form dates are stored in (and exports write): its own UTC form when it is a time. */
const STORED_INSTANT = /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/;

/** An ISO 8601 date or date-time with a zone, as UTC "YYYY-MM-DDTHH:MM:SSZ"; null if it is not one. */
export function isoInstant(text: string): string | null {
  if (STORED_INSTANT.test(text)) return isCalendarDay(text.slice(0, 10)) ? text : null;
  if (isCalendarDay(text)) return `${text}T00:00:00Z`;
  const match = DATE_TIME.exec(text);
  if (!match || !isCalendarDay(match[1]!)) return null;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return null;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** `confirmed` (Pinpointe): a confirmed subscriber is active, an unconfirmed one inactive until confirmed. */
export const confirmedFlag = booleanish;

/**
 * One contact of AddSubscriberToList, AddOrUpdateSubscribers and UpdateSubscriber: an email, then optionally a
 * status (or Pinpointe's `confirmed`), a subscribe date, custom field values and tags.
 */
export const contactFields = {
  email: emailAddress,
  status: subscriberStatus.optional(),
  confirmed: confirmedFlag.optional(),
  subscribedate: subscribeDate.optional(),
  customfield: fieldValues.default([]),
  tag: tagRefs.default([]),
};

type ContactDetails = { status?: (typeof SUBSCRIBER_STATUSES)[number] | undefined; confirmed?: boolean | undefined };

/** status, or what `confirmed` means; both at once is a contradiction the schema refuses. */
export const statusOf = (contact: ContactDetails) =>
  contact.status ?? (contact.confirmed === undefined ? undefined : contact.confirmed ? ("active" as const) : ("inactive" as const));

export const oneStatus = {
  check: (contact: ContactDetails) => contact.status === undefined || contact.confirmed === undefined,
  error: { error: "give status or confirmed, not both", path: ["confirmed"] as PropertyKey[] },
};

export const contactSchema = z.object(contactFields).refine(oneStatus.check, oneStatus.error);

export type ParsedContact = z.output<typeof contactSchema>;

/**
 * One contact, as contactSchema parses it. Most contacts are plain (strings where strings belong, fields by
 * name or numeric id, tags as names or ids): those take a quick path of the same checks, written out, which is
 * about ten times faster than the schema (a bulk import parses millions). Anything else, and every contact with
 * a problem, goes through the schema, which says what is wrong and where. The two agree on every contact the
 * quick path takes (test/contacts/parse_contact.test.ts checks it on generated contacts).
 */
export function parseContact(raw: unknown): z.ZodSafeParseResult<ParsedContact> {
  const quick = plainContact(raw);
  return quick ? { success: true, data: quick } : contactSchema.safeParse(raw);
}

const STATUS_WORDS: ReadonlySet<string> = new Set(SUBSCRIBER_STATUSES);

/** The quick path of parseContact: the contact, or null to leave it to the schema. */
export function plainContact(raw: unknown): ParsedContact | null {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const { email: rawEmail, status: rawStatus, confirmed, subscribedate, customfield, tag } = raw as Record<string, unknown>;

  if (typeof rawEmail !== "string") return null;
  const trimmed = rawEmail.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_EMAIL_LENGTH || !EMAIL_PATTERN.test(trimmed)) return null;
  const contact: ParsedContact = { email: withLowerDomain(trimmed), customfield: [], tag: [] };

  if (rawStatus !== undefined) {
    if (typeof rawStatus !== "string") return null;
    const status = rawStatus.trim().toLowerCase();
    if (!STATUS_WORDS.has(status)) return null;
    contact.status = status as SubscriberStatus;
  }
  if (confirmed !== undefined) {
    if (typeof confirmed !== "boolean" || rawStatus !== undefined) return null;
    contact.confirmed = confirmed;
  }
  if (subscribedate !== undefined) {
    if (typeof subscribedate !== "string") return null;
    const stored = storedSubscribeDate(subscribedate.trim());
    if (typeof stored !== "string") return null;
    contact.subscribedate = stored;
  }
  if (customfield !== undefined) {
    if (!Array.isArray(customfield) || customfield.length > CONTACT_LIMITS.fieldsPerContact) return null;
    for (const entry of customfield as unknown[]) {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return null;
      const { fieldid, name, value } = entry as Record<string, unknown>;
      if (value === undefined) return null;
      if (name === undefined && typeof fieldid === "number" && Number.isSafeInteger(fieldid) && fieldid > 0) {
        contact.customfield.push({ fieldid, value });
        continue;
      }
      if (fieldid !== undefined || typeof name !== "string") return null;
      const trimmedName = name.trim();
      if (trimmedName.length === 0 || trimmedName.length > CONTACT_LIMITS.nameLength) return null;
      contact.customfield.push({ name: trimmedName, value });
    }
  }
  if (tag !== undefined) {
    if (!Array.isArray(tag) || tag.length > CONTACT_LIMITS.tagsPerContact) return null;
    for (const value of tag as unknown[]) {
      if (typeof value !== "number" && typeof value !== "string") return null;
      const ref = tagRefOf(value);
      if ("problem" in ref) return null;
      contact.tag.push(ref);
    }
  }
  return contact;
}
