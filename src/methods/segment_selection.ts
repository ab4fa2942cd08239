import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { ApiError } from "../api/errors";
import type { Account, ExportFormat } from "../db/control_schema";
import { customFields, segments, SUBSCRIBER_STATUSES } from "../db/shard_schema";
import { pageQuery } from "../export/query";
import type { FieldTypes } from "../segments/counts";
import type { ExportSpec } from "../export/spec";
import { segmentRules } from "../segments/rules";
import type { Shard } from "../shards/directory";

/**
 * What both GetSegmentSubscribersAsync (a file) and GetSegmentSubscribers (pages) select: the segments, the
 * status filter, whether tags are included, and the custom fields. One schema and one resolution, so that the
 * pages of the synchronous call hold exactly the records of the file.
 */

const TRUE_WORDS = ["true", "1", "yes"];
const FALSE_WORDS = ["false", "0", "no"];

/** true/1/yes or false/0/no, as a string (any case), boolean or number. */
export const booleanish = z.union([z.boolean(), z.number(), z.string()]).transform((value, ctx) => {
  const word = String(value).trim().toLowerCase();
  if (TRUE_WORDS.includes(word)) return true;
  if (FALSE_WORDS.includes(word)) return false;
  ctx.addIssue({ code: "custom", message: `must be one of true, false, 1, 0, yes, no (got ${quote(value)})` });
  return z.NEVER;
});

const segmentId = z.union([z.string(), z.number()], { error: (issue) => `${quote(issue.input)} is not a segment id` }).transform((value, ctx) => {
  const id = typeof value === "number" ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(id) || id <= 0) {
    ctx.addIssue({ code: "custom", message: `${quote(value)} is not a segment id` });
    return z.NEVER;
  }
  return id;
});

export const caseInsensitiveEnum = <T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string({ error: `must be one of ${values.join(", ")}` })
    // The reference shows the values; the transform would hide them from the generated schema.
    .meta({ enum: [...values], description: `one of ${values.join(", ")}, in any case` })
    .transform((v) => v.trim().toLowerCase())
    .pipe(z.enum(values, { error: `must be one of ${values.join(", ")}` }));

/**
 * Bounds of the details. 50 segments keep the lookup and the export's one statement within D1's 100 bound
 * parameters; 500 custom fields is past any account's (the account's own count is checked when the names are
 * resolved); 2048 characters is the longest URL browsers and most servers accept, and past any email address.
 */
export const DETAILS_LIMITS = {
  segments: 50,
  customFields: 500,
  customFieldNameLength: 200,
  notifyValueLength: 2048,
} as const;

/** The first names of a list as a message shows them: at most 5, each quoted and cut, then how many more. */
const someOf = (names: readonly string[]) =>
  names.slice(0, 5).map(quote).join(", ") + (names.length > 5 ? ` and ${names.length - 5} more` : "");

const customFieldNames = z
  .array(z.unknown(), { error: 'must be an array of custom field names, or "all"' })
  .max(DETAILS_LIMITS.customFields, {
    error: (issue) =>
      `at most ${DETAILS_LIMITS.customFields} custom fields per request (got ${Array.isArray(issue.input) ? issue.input.length : "more"})`,
  })
  .pipe(
    z.array(
      z
        .string({ error: "a field name must be a string" })
        .trim()
        .min(1, "a field name must not be empty")
        .max(DETAILS_LIMITS.customFieldNameLength, tooLong(DETAILS_LIMITS.customFieldNameLength)),
    ),
  );

/** The selection's details: segmentid, status, include_membership, customfields. */
export const selectionFields = {
  // A single id counts as a one-element array; a union here would hide which element is wrong.
  segmentid: z
    .preprocess(
      (value) => (value === undefined || Array.isArray(value) ? value : [value]),
      // The count is checked before the elements, so that 100,000 bad ids give one short message.
      z
        .array(z.unknown(), { error: (issue) => (issue.input === undefined ? "is required" : "must be an array of segment ids") })
        .max(DETAILS_LIMITS.segments, {
          error: (issue) =>
            `at most ${DETAILS_LIMITS.segments} segments per request (got ${Array.isArray(issue.input) ? issue.input.length : "more"})`,
        })
        .pipe(z.array(segmentId)),
    )
    .refine((ids) => ids.length > 0, "must name at least one segment")
    .transform((ids) => [...new Set(ids)]),
  status: caseInsensitiveEnum(["any", ...SUBSCRIBER_STATUSES] as const).default("any"),
  include_membership: booleanish.default(false),
  customfields: z
    .unknown()
    .transform((value, ctx): "all" | "ALL" | string[] => {
      if (value === "all" || value === "ALL") return value;
      // Not a union: its one message would hide which name, or how many, was wrong.
      const parsed = customFieldNames.safeParse(value);
      if (parsed.success) return parsed.data;
      for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
      return z.NEVER;
    })
    .optional(),
};
export const selectionSchema = z.object(selectionFields);
export type SegmentSelection = z.output<typeof selectionSchema>;

/**
 * The export spec of a selection on the account's shard: its segments' rules (as stored now), the named
 * custom fields, the format and the moment the rules are evaluated at. Refuses unknown segments (404) and
 * fields (400), and compiles the page query now, so that rules that cannot run and queries over D1's
 * parameter limit are refused (422) before anything else happens.
 */
export async function resolveSelection(
  shard: Shard,
  account: Account,
  selection: SegmentSelection,
  format: ExportFormat,
  requestedAt: Date,
): Promise<{ spec: ExportSpec; fieldTypes: FieldTypes }> {
  // The account's fields, read once: to resolve the requested names and to compile the rules.
  const fields = await shard.db
    .select({ id: customFields.id, name: customFields.name, type: customFields.type })
    .from(customFields)
    .where(eq(customFields.accountId, account.id))
    .orderBy(customFields.id);
  const fieldTypes: FieldTypes = new Map(fields.map((f) => [f.id, f.type]));
  const spec: ExportSpec = {
    segmentIds: selection.segmentid,
    segments: await loadSegments(shard, account, selection.segmentid),
    status: selection.status,
    includeMembership: selection.include_membership,
    customFields: resolveCustomFields(fields, selection.customfields),
    format,
    requestedAt: requestedAt.toISOString(),
  };
  pageQuery(spec, account.id, fieldTypes);
  return { spec, fieldTypes };
}

async function loadSegments({ db }: Shard, account: Account, ids: number[]) {
  const rows = await db
    .select({ id: segments.id, name: segments.name, rules: segments.rules })
    .from(segments)
    .where(and(eq(segments.accountId, account.id), inArray(segments.id, ids)));
  const missing = ids.filter((id) => !rows.some((r) => r.id === id));
  if (missing.length > 0) {
    throw new ApiError(
      "NOT_FOUND",
      `details.segmentid: no segment ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ` and ${missing.length - 10} more` : ""} in this account`,
    );
  }
  // Keep the order the client asked for.
  return ids.map((id) => {
    const row = rows.find((r) => r.id === id)!;
    return { id: row.id, name: row.name, rules: segmentRules(row) };
  });
}

function resolveCustomFields(fields: ReadonlyArray<{ id: number; name: string }>, requested: SegmentSelection["customfields"]) {
  if (requested === undefined) return [];
  const all = fields.map(({ id, name }) => ({ id, name }));
  const names = Array.isArray(requested) ? requested : [requested];
  if (names.some((name) => name.toLowerCase() === "all")) return all;
  // More distinct names than the account has fields cannot all be fields: say so without a lookup per name.
  const distinct = new Set(names.map((name) => name.toLowerCase())).size;
  if (distinct > all.length) {
    throw new ApiError(
      "BAD_REQUEST",
      `details.customfields: names ${distinct} fields, but this account has ${all.length} custom field${all.length === 1 ? "" : "s"}`,
    );
  }
  const byName = (name: string) =>
    all.find((f) => f.name === name) ?? all.find((f) => f.name.toLowerCase() === name.toLowerCase());
  const unknown = names.filter((name) => !byName(name));
  if (unknown.length > 0) {
    throw new ApiError(
      "BAD_REQUEST",
      `details.customfields: unknown custom field${unknown.length > 1 ? "s" : ""} ${someOf(unknown)}`,
    );
  }
  const chosen = names.map((name) => byName(name)!);
  return chosen.filter((field, i) => chosen.findIndex((f) => f.id === field.id) === i);
}

