import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { EXPORT_FORMATS } from "../db/control_schema";
import { COMPRESSIONS } from "../export/spec";
import { admitJob, withdrawJob } from "../export/admission";
import { exportObjectKey, fileKindOf, fileNumber } from "../export/files";
import { MAX_FILE_BYTES, MAX_ROWS_PER_FILE, MIN_FILE_BYTES, MIN_ROWS_PER_FILE } from "../export/split";
import type { ExportSpec } from "../export/spec";
import type { ExportMessage } from "../export/message";
import { canonicalRequest, requestHash } from "../export/request_hash";
import { checkWebhookUrl, webhookPolicy, type WebhookPolicy } from "../notify/webhook_url";
import { wholeNumber } from "./paging";
import { caseInsensitiveEnum, DETAILS_LIMITS, resolveSelection, selectionFields } from "./segment_selection";

export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/** Who hears when a background job (an export, an import) ends: `{type: email|webhook, value}`. */
export const notifyDetails = z.object(
  {
    type: caseInsensitiveEnum(["email", "webhook"] as const),
    value: z
      .string({ error: "must be a string" })
      .trim()
      .min(1, "must not be empty")
      .max(DETAILS_LIMITS.notifyValueLength, tooLong(DETAILS_LIMITS.notifyValueLength)),
  },
  { error: (issue) => (issue.input === undefined ? "is required: {type: email|webhook, value}" : "must be {type: email|webhook, value}") },
);

/** Optional: the same key within 24 hours returns the same job. Opaque, compared exactly (not trimmed). */
export const idempotencyKey = z
  .string({ error: "must be a string" })
  .refine((key) => key.length >= 1 && key.length <= MAX_IDEMPOTENCY_KEY_LENGTH, {
    error: (issue) => `must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters (got ${String(issue.input).length})`,
  })
  .optional();

export const detailsSchema = z.object({
  ...selectionFields,
  format: caseInsensitiveEnum(EXPORT_FORMATS).default("json"),
  compression: caseInsensitiveEnum(COMPRESSIONS).default("none"),
  // Split the export into files of at most this many (uncompressed) bytes, or records; see src/export/split.ts.
  max_file_size: wholeNumber(MIN_FILE_BYTES, MAX_FILE_BYTES, " bytes").optional(),
  max_rows_per_file: wholeNumber(MIN_ROWS_PER_FILE, MAX_ROWS_PER_FILE).optional(),
  idempotency_key: idempotencyKey,
  notify: notifyDetails,
});
export type AsyncExportDetails = z.output<typeof detailsSchema>;

const email = z.email();

/** RFC 5321: a forward path holds at most 254 characters. */
const MAX_EMAIL_LENGTH = 254;

/** The notification's target, normalised, or a 400 saying what is wrong with it. */
export function checkNotifyTarget(notify: AsyncExportDetails["notify"], policy: WebhookPolicy): string {
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
  summary: "Exports the subscribers of segments to a file in the background; a signed link is sent by webhook or email.",
  details: detailsSchema,
  example: {
    segmentid: ["12", "13"],
    status: "active",
    include_membership: "yes",
    customfields: ["First Name", "Company"],
    format: "json",
    notify: { type: "webhook", value: "https://example.com/hooks/exports" },
  },
  async handle(context, details) {
    const { env, account, config } = context;
    const notifyTarget = checkNotifyTarget(details.notify, webhookPolicy(config));
    const shard = await context.shard();
    const { spec: selected } = await resolveSelection(shard, account, details, details.format, new Date());
    const spec: ExportSpec = {
      ...selected,
      compression: details.compression,
      ...(details.max_file_size !== undefined ? { maxFileBytes: details.max_file_size } : {}),
      ...(details.max_rows_per_file !== undefined ? { maxRowsPerFile: details.max_rows_per_file } : {}),
    };

    const jobId = crypto.randomUUID();
    const now = Date.now();
    const admission = await admitJob(env.DB, {
      id: jobId,
      kind: "export",
      state: "queued",
      format: spec.format,
      accountId: account.id,
      shard: shard.name,
      spec,
      notifyType: details.notify.type,
      notifyTarget,
      objectKey: exportObjectKey(account.id, jobId, fileKindOf(spec), fileNumber(spec, 1)),
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
