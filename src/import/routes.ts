/**
 * The import's own links, served by the API worker:
 *   PUT  /imports/<jobid>?expires=…&kid=…&signature=…          the file of an import waiting for it
 *   GET  /imports/<jobid>/rejects?expires=…&kid=…&signature=…  the rejects file of a finished import
 * Both are signed like download links, each over its own resource (src/download/signed_url.ts).
 */
import { and, eq, lte, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import type { HonoEnv } from "../api/app";
import { successBody } from "../api/envelope";
import { ApiError } from "../api/errors";
import { loadConfig } from "../config";
import { exportJobs } from "../db/control_schema";
import { serveStoredObject } from "../download/route";
import { acceptedSigningKeys, rejectsResource, uploadResource, verifyDownloadLink } from "../download/signed_url";
import type { ExportMessage } from "../export/message";
import { retentionEnd } from "../export/link";
import { yieldToEventLoop } from "../export/checkpoint";
import { abortUploads, R2PartWriter } from "../export/r2_writer";
import { rejectsFileName, uploadKey, type ImportSpec } from "./spec";

export const importRoutes = new Hono<HonoEnv>();

/** How long an upload holds its import: another PUT meanwhile is refused; a dead one frees it after this. */
const UPLOAD_LOCK_MS = 15 * 60 * 1000;

/** Bytes of an upload read between two turns of the event loop. */
const UPLOAD_YIELD_BYTES = 256 * 1024;

importRoutes.put("/imports/:jobid", async (c) => {
  const jobId = c.req.param("jobid");
  const config = loadConfig(c.env);
  const check = await verifyDownloadLink(uploadResource(jobId), new URL(c.req.url).search, acceptedSigningKeys(config));
  if (!check.ok) throw new ApiError("FORBIDDEN", check.reason.replace("download link", "upload link"));
  const db = drizzle(c.env.DB);

  // Take the import for this upload: one upload at a time, and only while it waits for its file.
  const now = Date.now();
  const [locked] = await db
    .update(exportJobs)
    .set({ version: sql`${exportJobs.version} + 1`, leaseExpiresAt: now + UPLOAD_LOCK_MS })
    .where(and(eq(exportJobs.id, jobId), eq(exportJobs.kind, "import"), eq(exportJobs.state, "awaiting_upload"), lte(exportJobs.leaseExpiresAt, now)))
    .returning();
  if (!locked) {
    const job = await db.select({ state: exportJobs.state, kind: exportJobs.kind }).from(exportJobs).where(eq(exportJobs.id, jobId)).get();
    if (!job || job.kind !== "import") throw new ApiError("NOT_FOUND", `No import ${jobId}`);
    if (job.state === "awaiting_upload") throw new ApiError("CONFLICT", `The file of import ${jobId} is being uploaded by another request`);
    if (job.state === "failed") throw new ApiError("GONE", `Import ${jobId} has ended (failed); its upload link can no longer be used`);
    throw new ApiError("CONFLICT", `The file of import ${jobId} was uploaded already (the import is ${job.state})`);
  }
  const release = () =>
    db.update(exportJobs).set({ leaseExpiresAt: 0 }).where(and(eq(exportJobs.id, jobId), eq(exportJobs.version, locked.version)));

  const spec = locked.spec as ImportSpec;
  const sourceKey = uploadKey(locked.accountId, jobId, spec, locked.version);
  const writer = new R2PartWriter(
    c.env.EXPORTS,
    sourceKey,
    {
      partSize: config.EXPORT_PART_SIZE,
      httpMetadata: { contentType: c.req.header("Content-Type") ?? "application/octet-stream" },
      customMetadata: { jobId },
    },
    { uploadId: null, parts: [], carry: new Uint8Array(0) },
  );
  let size = 0;
  try {
    const body = c.req.raw.body;
    if (body) {
      const reader = body.getReader();
      // A read of bytes already received resolves at once, without a turn of the event loop: reading a large
      // file as fast as it arrives held the isolate, and every other request on it, for the whole upload
      // (1.3 s for 45 MB under wrangler dev). A turn every UPLOAD_YIELD_BYTES lets them run.
      let sinceYield = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > config.IMPORT_MAX_BYTES) {
          await reader.cancel();
          throw new ApiError("PAYLOAD_TOO_LARGE", `The file is larger than ${config.IMPORT_MAX_BYTES} bytes (IMPORT_MAX_BYTES)`);
        }
        await writer.write(value);
        sinceYield += value.byteLength;
        if (sinceYield >= UPLOAD_YIELD_BYTES) {
          sinceYield = 0;
          await yieldToEventLoop();
        }
      }
    }
    if (size === 0) throw new ApiError("BAD_REQUEST", "The file is empty: send its bytes as the body of this PUT");
    await writer.sendLastPart();
    await writer.complete();
  } catch (error) {
    const { uploadId } = await writer.state().catch(() => ({ uploadId: null }));
    await abortUploads(c.env.EXPORTS, sourceKey, [uploadId]);
    await release();
    throw error;
  }

  const [queued] = await db
    .update(exportJobs)
    .set({
      state: "queued",
      spec: sql`json_set(${exportJobs.spec}, '$.sourceKey', ${sourceKey})`,
      sourceBytes: size,
      leaseExpiresAt: 0,
      dueAt: Date.now(),
      version: sql`${exportJobs.version} + 1`,
    })
    .where(and(eq(exportJobs.id, jobId), eq(exportJobs.version, locked.version), eq(exportJobs.state, "awaiting_upload")))
    .returning({ drive: exportJobs.drive });
  if (!queued) {
    // Another upload took the import over (this one outlived its lock): its file is the one imported.
    await c.env.EXPORTS.delete(sourceKey);
    throw new ApiError("CONFLICT", `Import ${jobId} changed while its file was uploaded; ask for its status`);
  }
  // If this send is lost, the sweeper finds the queued job overdue and sends another.
  await c.env.EXPORT_QUEUE.send({ kind: "export", jobId, drive: queued.drive } satisfies ExportMessage);
  return c.json(successBody({ jobid: jobId, status: "queued", bytes: size }), 200);
});

importRoutes.on(["GET", "HEAD"], "/imports/:jobid/rejects", async (c) => {
  const jobId = c.req.param("jobid");
  const config = loadConfig(c.env);
  const check = await verifyDownloadLink(rejectsResource(jobId), new URL(c.req.url).search, acceptedSigningKeys(config));
  if (!check.ok) throw new ApiError("FORBIDDEN", check.reason);
  const job = await drizzle(c.env.DB).select().from(exportJobs).where(and(eq(exportJobs.id, jobId), eq(exportJobs.kind, "import"))).get();
  if (job?.state === "expired" || (job?.state === "complete" && retentionEnd(job, config) <= Date.now())) {
    throw new ApiError("GONE", `The rejects file of import ${jobId} was deleted at the end of its retention`);
  }
  if (job?.state !== "complete" || job.rowsRejected === 0) throw new ApiError("NOT_FOUND", `Import ${jobId} has no rejects file`);
  return serveStoredObject(c, job.objectKey, {
    contentType: "text/csv; charset=utf-8",
    fileName: rejectsFileName(jobId),
    gone: `The rejects file of import ${jobId} is no longer stored`,
  });
});
