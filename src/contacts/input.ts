/**
 * What a client may send about a contact, as zod schemas shared by every write method (AddSubscriberToList,
 * AddOrUpdateSubscribers, UpdateSubscriber) and the bulk import: an email address, a list, custom field values
 * by field id or name, tags by id or name, a status or Pinpointe's `confirmed`, a subscribe date.
 */
import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { SUBSCRIBER_STATUSES } from "../db/shard_schema";
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
  nameLength: 200,
  /** Contacts per AddOrUpdateSubscribers call: one D1 batch. */
  contactsPerCall: 1_000,
  /** Subscriber ids per TagSubscribers / UntagSubscribers call. */
  idsPerCall: 1_000,
} as const;

const validEmail = z.email();

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
    const at = email.lastIndexOf("@");
    return `${email.slice(0, at)}@${email.slice(at + 1).toLowerCase()}`;
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
export const tagRef = z.union([z.number(), z.string()], { error: "must be a tag id or a tag name" }).transform((value, ctx): TagRef => {
  if (typeof value === "number" || /^\s*\d{1,16}\s*$/.test(value)) {
    const id = Number(value);
    if (Number.isSafeInteger(id) && id > 0) return { id };
    ctx.addIssue({ code: "custom", message: `${quote(value)} is not a tag id` });
    return z.NEVER;
  }
  const name = value.trim();
  if (name.length === 0 || name.length > CONTACT_LIMITS.nameLength) {
    ctx.addIssue({ code: "custom", message: `must be a tag id or a tag name of 1 to ${CONTACT_LIMITS.nameLength} characters` });
    return z.NEVER;
  }
  return { name };
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
    const stored = isoInstant(text);
    if (stored === null) {
      ctx.addIssue({ code: "custom", message: `${quote(text)} is not an ISO 8601 date (YYYY-MM-DD) or date-time with a zone` });
      return z.NEVER;
    }
    if (stored < "1970-01-01" || Date.parse(stored) > Date.now() + 86_400_000) {
      ctx.addIssue({ code: "custom", message: `${quote(text)} is out of range (1970 to today)` });
      return z.NEVER;
    }
    return stored;
  });

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Whether "YYYY-MM-DD" is a day of the calendar (not 2025-02-30). */
export function isCalendarDay(text: string): boolean {
  const match = DAY.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** An ISO 8601 date or date-time with a zone, as UTC "YYYY-MM-DDTHH:MM:SSZ"; null if it is not one. */
export function isoInstant(text: string): string | null {
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
