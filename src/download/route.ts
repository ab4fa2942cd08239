import { Hono, type Context } from "hono";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { HonoEnv } from "../api/app";
import { ApiError } from "../api/errors";
import { loadConfig } from "../config";
import { exportFiles, exportJobs } from "../db/control_schema";
import { contentType, exportFileName, fileKindOf, isSplit } from "../export/files";
import type { ExportSpec } from "../export/spec";
import { retentionEnd } from "../export/link";
import { answerRange, notModified } from "./range";
import { acceptedSigningKeys, linkResource, verifyDownloadLink } from "./signed_url";

export const downloadRoute = new Hono<HonoEnv>();

/**
 * GET and HEAD /exports/<jobid>?expires=…&kid=…&signature=…: the file of a completed export, to the holder of a
 * signed link; /exports/<jobid>/<n>?… for file n of a split export. Supports one byte range (206, 416), ETag
 * with If-None-Match (304) and If-Range, so that large downloads resume and caches revalidate.
 */
downloadRoute.on(["GET", "HEAD"], "/exports/:jobid", (c) => serveExportFile(c, c.req.param("jobid"), undefined));

downloadRoute.on(["GET", "HEAD"], "/exports/:jobid/:file", (c) => {
  const file = c.req.param("file");
  // The canonical number only, as links write it: one accepted form per file.
  if (!FILE_NUMBER.test(file)) throw new ApiError("NOT_FOUND", `Export ${c.req.param("jobid")} has no file ${JSON.stringify(file.slice(0, 20))}`);
  return serveExportFile(c, c.req.param("jobid"), Number(file));
});

const FILE_NUMBER = /^[1-9][0-9]{0,3}$/;

async function serveExportFile(c: Context<HonoEnv>, jobId: string, fileIndex: number | undefined): Promise<Response> {
  const config = loadConfig(c.env);
  // The raw query string: the link's parameters are checked as written, each exactly once.
  const check = await verifyDownloadLink(linkResource(jobId, fileIndex), new URL(c.req.url).search, acceptedSigningKeys(config));
  if (!check.ok) throw new ApiError("FORBIDDEN", check.reason);

  const db = drizzle(c.env.DB);
  const job = await db
    .select({
      kind: exportJobs.kind,
      objectKey: exportJobs.objectKey,
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
  if (job?.state !== "complete" || job.kind !== "export") throw new ApiError("NOT_FOUND", `Export ${jobId} has no file`);
  const spec = job.spec as ExportSpec;
  const kind = fileKindOf(spec);

  let objectKey = job.objectKey;
  if (isSplit(spec) !== (fileIndex !== undefined)) {
    throw new ApiError("NOT_FOUND", isSplit(spec) ? `Export ${jobId} is split into files: each has its own link` : `Export ${jobId} has one file`);
  }
  if (fileIndex !== undefined) {
    const file = await db
      .select({ objectKey: exportFiles.objectKey })
      .from(exportFiles)
      .where(and(eq(exportFiles.jobId, jobId), eq(exportFiles.fileIndex, fileIndex)))
      .get();
    if (!file) throw new ApiError("NOT_FOUND", `Export ${jobId} has no file ${fileIndex}`);
    objectKey = file.objectKey;
  }

  return serveStoredObject(c, objectKey, {
    contentType: contentType(kind),
    fileName: exportFileName(jobId, kind, fileIndex),
    gone: `The file of export ${jobId} is no longer stored`,
  });
}

/**
 * Serves a stored object as a download (GET or HEAD): one byte range (206, 416), ETag with If-None-Match (304)
 * and If-Range, and the stored bytes as they are. The caller has checked the link and the job.
 */
export async function serveStoredObject(
  c: Context<HonoEnv>,
  objectKey: string,
  file: { contentType: string; fileName: string; gone: string },
): Promise<Response> {
  const stored = await c.env.EXPORTS.head(objectKey);
  if (!stored) throw new ApiError("NOT_FOUND", file.gone);

  const headers = new Headers({
    "Content-Type": file.contentType,
    // Send the stored bytes as they are: no on-the-fly compression, so lengths and ranges stay exact.
    "Content-Encoding": "identity",
    "Content-Disposition": `attachment; filename="${file.fileName}"`,
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
  const object = await c.env.EXPORTS.get(objectKey, {
    ...(range.kind === "partial" ? { range: { offset, length } } : {}),
    onlyIf: { etagMatches: stored.etag },
  });
  if (!object || !("body" in object)) throw new ApiError("NOT_FOUND", file.gone);
  return new Response(object.body, { status, headers });
}
