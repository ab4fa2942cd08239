import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { EXPORT_FORMATS, type Account } from "../db/control_schema";
import { customFields, segments, SUBSCRIBER_STATUSES } from "../db/shard_schema";
import { admitExport, withdrawJob } from "../export/admission";
import { exportObjectKey } from "../export/files";
import type { ExportMessage } from "../export/message";
import { loadCustomFieldTypes, pageQuery } from "../export/query";
import { canonicalRequest, requestHash } from "../export/request_hash";
import type { ExportSpec } from "../export/spec";
import { checkWebhookUrl, webhookPolicy, type WebhookPolicy } from "../notify/webhook_url";
import { segmentRules } from "../segments/rules";
import type { Shard } from "../shards/directory";

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

const caseInsensitiveEnum = <T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string({ error: `must be one of ${values.join(", ")}` })
    .transform((v) => v.trim().toLowerCase())
    .pipe(z.enum(values, { error: `must be one of ${values.join(", ")}` }));

export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

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

export const detailsSchema = z.object({
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
  format: caseInsensitiveEnum(EXPORT_FORMATS).default("json"),
  // Optional: the same key within 24 hours returns the same job. Opaque, compared exactly (not trimmed).
  idempotency_key: z
    .string({ error: "must be a string" })
    .refine((key) => key.length >= 1 && key.length <= MAX_IDEMPOTENCY_KEY_LENGTH, {
      error: (issue) => `must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters (got ${String(issue.input).length})`,
    })
    .optional(),
  notify: z.object(
    {
      type: caseInsensitiveEnum(["email", "webhook"] as const),
      value: z
        .string({ error: "must be a string" })
        .trim()
        .min(1, "must not be empty")
        .max(DETAILS_LIMITS.notifyValueLength, tooLong(DETAILS_LIMITS.notifyValueLength)),
    },
    { error: (issue) => (issue.input === undefined ? "is required: {type: email|webhook, value}" : "must be {type: email|webhook, value}") },
  ),
});
export type AsyncExportDetails = z.output<typeof detailsSchema>;

const email = z.email();

/** RFC 5321: a forward path holds at most 254 characters. */
const MAX_EMAIL_LENGTH = 254;

function checkNotifyTarget(notify: AsyncExportDetails["notify"], policy: WebhookPolicy): string {
  if (notify.type === "email") {
    if (notify.value.length > MAX_EMAIL_LENGTH || !email.safeParse(notify.value).success) {
      throw new ApiError("BAD_REQUEST", `details.notify.value: ${quote(notify.value)} is not a valid email address`);
    }
    return notify.value;
  }
  const problem = checkWebhookUrl(notify.value, policy);
  if (problem) throw new ApiError("BAD_REQUEST", `details.notify.value: ${problem}`);
  return new URL(notify.value).toString();
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

async function resolveCustomFields({ db }: Shard, account: Account, requested: AsyncExportDetails["customfields"]) {
  if (requested === undefined) return [];
  const all = await db
    .select({ id: customFields.id, name: customFields.name })
    .from(customFields)
    .where(eq(customFields.accountId, account.id))
    .orderBy(customFields.id);
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

/**
 * Why an account at the cap should wait 60 s: a slot frees only when one of its exports finishes, which takes
 * from seconds to minutes; and a job whose worker died is re-driven (or failed) by the sweeper, which runs
 * once a minute. Retrying sooner would mostly meet the same answer.
 */
export const CAP_RETRY_AFTER_SECONDS = 60;

/**
 * Segments / GetSegmentSubscribersAsync: accepts an export, records it as a queued job and hands only the
 * job id to the queue. The consumer (src/export) builds the file and sends the notification.
 *
 * An identical request while its job is queued or running, or a request repeating an idempotency key of the
 * last 24 hours, gets the earlier job back (`deduplicated: true`) instead of a new one. An account may have
 * EXPORT_MAX_ACTIVE_PER_ACCOUNT exports queued or running; past that it gets a 429. See src/export/admission.ts.
 */
export const getSegmentSubscribersAsync = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegmentSubscribersAsync",
  details: detailsSchema,
  async handle(context, details) {
    const { env, account, config } = context;
    const notifyTarget = checkNotifyTarget(details.notify, webhookPolicy(config));
    const shard = await context.shard();
    const spec: ExportSpec = {
      segmentIds: details.segmentid,
      segments: await loadSegments(shard, account, details.segmentid),
      status: details.status,
      includeMembership: details.include_membership,
      customFields: await resolveCustomFields(shard, account, details.customfields),
      format: details.format,
      requestedAt: new Date().toISOString(),
    };
    // Compiling now refuses rules that cannot run, and queries over D1's parameter limit, before any job exists.
    pageQuery(spec, account.id, await loadCustomFieldTypes(shard.db, account.id));

    const jobId = crypto.randomUUID();
    const now = Date.now();
    const admission = await admitExport(env.DB, {
      id: jobId,
      accountId: account.id,
      shard: shard.name,
      spec,
      notifyType: details.notify.type,
      notifyTarget,
      objectKey: exportObjectKey(account.id, jobId, spec.format),
      requestHash: await requestHash(canonicalRequest(account.id, spec, details.notify.type, notifyTarget)),
      idempotencyKey: details.idempotency_key,
      maxActive: config.EXPORT_MAX_ACTIVE_PER_ACCOUNT,
      now,
    });
    switch (admission.kind) {
      case "existing":
        return { jobid: admission.jobId, status: admission.state, deduplicated: true };
      case "key_conflict":
        throw new ApiError(
          "CONFLICT",
          `details.idempotency_key: this key was used in the last 24 hours for a request with different details ` +
            `(job ${admission.jobId}). Send the same details to get that job, or use a new key.`,
        );
      case "at_capacity":
        throw new ApiError(
          "TOO_MANY_REQUESTS",
          `Too many exports: this account has ${admission.active} exports queued or running, and may have at most ` +
            `${config.EXPORT_MAX_ACTIVE_PER_ACCOUNT} at once. Retry after ${CAP_RETRY_AFTER_SECONDS} seconds, when one has finished.`,
          { retryAfterSeconds: CAP_RETRY_AFTER_SECONDS },
        );
      case "created":
        break;
    }
    try {
      await env.EXPORT_QUEUE.send({ kind: "export", jobId, drive: 0 } satisfies ExportMessage);
    } catch (error) {
      // No queue message means no export: take the job (and any idempotency key bound to it) back rather
      // than leave it queued until the sweeper notices.
      await withdrawJob(env.DB, jobId);
      throw new ApiError("UNAVAILABLE", "The export queue is unavailable; no job was created. Try again shortly.", {
        cause: error,
      });
    }
    return { jobid: jobId, status: "queued", deduplicated: false };
  },
});
