import { Hono } from "hono";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { HonoEnv } from "../api/app";
import { ApiError } from "../api/errors";
import { loadConfig } from "../config";
import { exportJobs } from "../db/control_schema";
import { contentType, exportFileName, fileKindOf } from "../export/files";
import type { ExportSpec } from "../export/spec";
import { retentionEnd } from "../export/link";
import { answerRange, notModified } from "./range";
import { acceptedSigningKeys, verifyDownloadLink } from "./signed_url";

export const downloadRoute = new Hono<HonoEnv>();

/**
 * GET and HEAD /exports/<jobid>?expires=…&kid=…&signature=…: the file of a completed export, to the holder of a
 * signed link. Supports one byte range (206, 416), ETag with If-None-Match (304) and If-Range, so that large
 * downloads resume and caches revalidate.
 */
downloadRoute.on(["GET", "HEAD"], "/exports/:jobid", async (c) => {
  const jobId = c.req.param("jobid");
  const config = loadConfig(c.env);
  // The raw query string: the link's parameters are checked as written, each exactly once.
  const check = await verifyDownloadLink(jobId, new URL(c.req.url).search, acceptedSigningKeys(config));
  if (!check.ok) throw new ApiError("FORBIDDEN", check.reason);

  const job = await drizzle(c.env.DB)
    .select({
      objectKey: exportJobs.objectKey,
      format: exportJobs.format,
      spec: exportJobs.spec,
      state: exportJobs.state,
      retainedUntil: exportJobs.retainedUntil,
      completedAt: exportJobs.completedAt,
    })
    .from(exportJobs)
    .where(eq(exportJobs.id, jobId))
    .get();
  if (job?.state === "expired" || (job?.state === "complete" && retentionEnd(job, config) <= Date.now())) {
    throw new ApiError("GONE", `The file of export ${jobId} was deleted at the end of its retention (${config.EXPORT_RETENTION_DAYS} days)`);
  }
  if (job?.state !== "complete") throw new ApiError("NOT_FOUND", `Export ${jobId} has no file`);

  const stored = await c.env.EXPORTS.head(job.objectKey);
  if (!stored) throw new ApiError("NOT_FOUND", `The file of export ${jobId} is no longer stored`);

  const headers = new Headers({
    "Content-Type": contentType(fileKindOf(job.spec as ExportSpec)),
    // Send the stored bytes as they are: no on-the-fly compression, so lengths and ranges stay exact.
    "Content-Encoding": "identity",
    "Content-Disposition": `attachment; filename="${exportFileName(jobId, fileKindOf(job.spec as ExportSpec))}"`,
    ETag: stored.httpEtag,
    "Accept-Ranges": "bytes",
    "Cache-Control": "private, no-store",
  });
  if (notModified(c.req.header("If-None-Match") ?? null, stored.httpEtag)) return new Response(null, { status: 304, headers });

  const range = answerRange(c.req.header("Range") ?? null, c.req.header("If-Range") ?? null, stored.size, stored.httpEtag);
  if (range.kind === "unsatisfiable") {
    headers.set("Content-Range", `bytes */${stored.size}`);
    headers.delete("Content-Disposition");
    return new Response(null, { status: 416, headers });
  }
  const offset = range.kind === "partial" ? range.offset : 0;
  const length = range.kind === "partial" ? range.length : stored.size;
  headers.set("Content-Length", String(length));
  if (range.kind === "partial") headers.set("Content-Range", `bytes ${offset}-${offset + length - 1}/${stored.size}`);
  const status = range.kind === "partial" ? 206 : 200;
  if (c.req.method === "HEAD") return new Response(null, { status, headers });

  // The same version that was measured: a file replaced in between fails the precondition and is not mixed.
  const object = await c.env.EXPORTS.get(job.objectKey, {
    ...(range.kind === "partial" ? { range: { offset, length } } : {}),
    onlyIf: { etagMatches: stored.etag },
  });
  if (!object || !("body" in object)) throw new ApiError("NOT_FOUND", `The file of export ${jobId} is no longer stored`);
  return new Response(object.body, { status, headers });
});
