import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { listId } from "../contacts/input";
import { ownList } from "../contacts/lists";
import type { Config } from "../config";
import { exportJobs, type ExportJob } from "../db/control_schema";
import { currentSigningKey, signUploadLink } from "../download/signed_url";
import { admitJob, withdrawJob } from "../export/admission";
import { isSplit } from "../export/files";
import type { ExportMessage } from "../export/message";
import { COMPRESSIONS, type ExportSpec } from "../export/spec";
import { toHex } from "../hex";
import { IMPORT_FORMATS, rejectsKey, uploadKey, type ImportSpec } from "../import/spec";
import { webhookPolicy } from "../notify/webhook_url";
import { booleanish, caseInsensitiveEnum } from "./segment_selection";
import { CAP_RETRY_AFTER_SECONDS, checkNotifyTarget, idempotencyKey, notifyDetails } from "./segments_get_segment_subscribers_async";

const source = z.union(
  [
    z.literal("upload"),
    z.object({ object: z.string().trim().min(1, "must not be empty").max(1024) }).strict(),
    z.object({ exportjobid: z.string().trim().min(1, "must not be empty").max(100) }).strict(),
  ],
  { error: 'must be "upload", {object: "<R2 key>"} or {exportjobid: "<an export\'s jobid>"}' },
);

const details = z.object({
  list: listId,
  format: caseInsensitiveEnum(IMPORT_FORMATS).optional(),
  compression: caseInsensitiveEnum(COMPRESSIONS).optional(),
  update_if_exists: booleanish.default(true),
  source: source.default("upload"),
  notify: notifyDetails,
  idempotency_key: idempotencyKey,
});

/** When an import's upload link, fixed at its creation, expires. */
export const uploadExpiry = (createdAtMs: number, ttlSeconds: number) => new Date(createdAtMs + ttlSeconds * 1000);

/**
 * Subscribers / ImportSubscribersAsync: imports a CSV or NDJSON file (optionally gzip-compressed) of any size
 * into a list, in the background, like an export. The file is uploaded to a signed PUT link on this worker
 * (source "upload", the default: no R2 credentials needed), or is an object already stored under the account's
 * imports/<account id>/ prefix, or is the file of one of the account's exports (an NDJSON or CSV export
 * re-imports as is). Rejected rows are listed in a rejects file; the notification carries the counts.
 */
export const importSubscribersAsync = defineMethod({
  requesttype: "Subscribers",
  requestmethod: "ImportSubscribersAsync",
  summary: "Imports a CSV or NDJSON file of contacts into a list in the background; upload it to the signed link it answers.",
  details,
  example: { list: "12", format: "csv", compression: "none", update_if_exists: true, notify: { type: "webhook", value: "https://example.com/hooks/imports" } },
  async handle(context, request) {
    const { env, account, config, db } = context;
    const notifyTarget = checkNotifyTarget(request.notify, webhookPolicy(config));
    const shard = await context.writableShard();
    await ownList(shard.db, account.id, request.list, "details.list");

    const jobId = crypto.randomUUID();
    const now = Date.now();
    let spec: ImportSpec;
    let sourceBytes: number | null = null;
    const base = {
      kind: "import" as const,
      listId: request.list,
      updateIfExists: request.update_if_exists,
      requestedAt: new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z"),
      batching: { rows: config.IMPORT_BATCH_ROWS, bytes: config.IMPORT_BATCH_BYTES },
    };
    if (request.source === "upload") {
      if (!request.format) throw new ApiError("BAD_REQUEST", "details.format: is required: csv or ndjson");
      const kind = { format: request.format, compression: request.compression ?? "none" } as const;
      spec = { ...base, ...kind, source: "upload", sourceKey: uploadKey(account.id, jobId, kind) };
    } else if ("object" in request.source) {
      const key = request.source.object;
      const prefix = `imports/${account.id}/`;
      if (!key.startsWith(prefix) || key.includes("..")) throw new ApiError("BAD_REQUEST", `details.source.object: must be a key under ${prefix}`);
      if (!request.format) throw new ApiError("BAD_REQUEST", "details.format: is required: csv or ndjson");
      const stored = await env.EXPORTS.head(key);
      if (!stored) throw new ApiError("NOT_FOUND", `details.source.object: no object ${quote(key)} is stored`);
      sourceBytes = stored.size;
      spec = { ...base, format: request.format, compression: request.compression ?? (key.endsWith(".gz") ? "gzip" : "none"), source: "object", sourceKey: key };
    } else {
      const exported = await db
        .select()
        .from(exportJobs)
        .where(and(eq(exportJobs.id, request.source.exportjobid), eq(exportJobs.accountId, account.id), eq(exportJobs.kind, "export")))
        .get();
      if (!exported) throw new ApiError("NOT_FOUND", `details.source.exportjobid: no export ${quote(request.source.exportjobid)} in this account`);
      const exportSpec = exported.spec as ExportSpec;
      if (exported.state !== "complete") throw new ApiError("CONFLICT", `details.source.exportjobid: export ${exported.id} is ${exported.state}, not complete`);
      if (exportSpec.format === "json" || isSplit(exportSpec)) {
        throw new ApiError("BAD_REQUEST", `details.source.exportjobid: only an unsplit CSV or NDJSON export can be imported (this one is ${isSplit(exportSpec) ? "split" : "JSON"})`);
      }
      const stored = await env.EXPORTS.head(exported.objectKey);
      if (!stored) throw new ApiError("GONE", `details.source.exportjobid: the file of export ${exported.id} is no longer stored`);
      sourceBytes = stored.size;
      spec = { ...base, format: exportSpec.format, compression: exportSpec.compression ?? "none", source: "export", sourceKey: exported.objectKey };
    }

    const admission = await admitJob(env.DB, {
      id: jobId,
      kind: "import",
      state: spec.source === "upload" ? "awaiting_upload" : "queued",
      accountId: account.id,
      shard: shard.name,
      spec,
      format: spec.format,
      notifyType: request.notify.type,
      notifyTarget,
      objectKey: rejectsKey(account.id, jobId),
      requestHash: await importRequestHash(account.id, spec, spec.source === "upload" ? jobId : spec.sourceKey, request.notify.type, notifyTarget),
      idempotencyKey: request.idempotency_key,
      maxActive: config.EXPORT_MAX_ACTIVE_PER_ACCOUNT,
      now,
    });
    switch (admission.kind) {
      case "key_conflict":
        throw new ApiError("CONFLICT", `details.idempotency_key: this key was used in the last 24 hours for a request with different details (job ${admission.jobId}). Send the same details to get that job, or use a new key.`);
      case "at_capacity":
        throw new ApiError(
          "TOO_MANY_REQUESTS",
          `Too many jobs: this account has ${admission.active} exports and imports waiting or running, and may have at most ${config.EXPORT_MAX_ACTIVE_PER_ACCOUNT} at once. Retry after ${CAP_RETRY_AFTER_SECONDS} seconds, when one has finished.`,
          { retryAfterSeconds: CAP_RETRY_AFTER_SECONDS },
        );
      case "existing": {
        const job = await db.select().from(exportJobs).where(eq(exportJobs.id, admission.jobId)).get();
        return { jobid: admission.jobId, status: admission.state, deduplicated: true, ...(job ? await uploadLinkOf(job, config) : {}) };
      }
      case "created":
        break;
    }
    if (spec.source !== "upload") {
      if (sourceBytes !== null) await db.update(exportJobs).set({ sourceBytes }).where(eq(exportJobs.id, jobId));
      try {
        await env.EXPORT_QUEUE.send({ kind: "export", jobId, drive: 0 } satisfies ExportMessage);
      } catch (error) {
        await withdrawJob(env.DB, jobId);
        throw new ApiError("UNAVAILABLE", "The job queue is unavailable; no import was created. Try again shortly.", { cause: error });
      }
      return { jobid: jobId, status: "queued", deduplicated: false };
    }
    const link = await signUploadLink(config.PUBLIC_BASE_URL, jobId, uploadExpiry(now, config.IMPORT_UPLOAD_TTL_SECONDS), currentSigningKey(config));
    return { jobid: jobId, status: "awaiting_upload", deduplicated: false, upload: { url: link.url, method: "PUT", expires_at: link.expiresAt.toISOString() } };
  },
});

/** The upload link of an import still waiting for its file (the same expiry on every call). */
export async function uploadLinkOf(job: Pick<ExportJob, "id" | "state" | "dueAt">, config: Config) {
  if (job.state !== "awaiting_upload") return {};
  const expiresAt = uploadExpiry(job.dueAt, config.IMPORT_UPLOAD_TTL_SECONDS);
  if (expiresAt.getTime() <= Date.now()) return {};
  const link = await signUploadLink(config.PUBLIC_BASE_URL, job.id, expiresAt, currentSigningKey(config));
  return { upload: { url: link.url, method: "PUT", expires_at: link.expiresAt.toISOString() } };
}

/**
 * What makes two import requests the same: the account, the list, the file (its key; an upload is always a new
 * file), format, compression, update_if_exists and the notification.
 */
async function importRequestHash(accountId: number, spec: ImportSpec, file: string, notifyType: string, notifyTarget: string) {
  const canonical = JSON.stringify({
    v: 1,
    kind: "import",
    account: accountId,
    list: spec.listId,
    file,
    format: spec.format,
    compression: spec.compression,
    update: spec.updateIfExists,
    notify: { type: notifyType, target: notifyTarget },
  });
  return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
}
