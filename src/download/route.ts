import { Hono } from "hono";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { HonoEnv } from "../api/app";
import { ApiError } from "../api/errors";
import { loadConfig } from "../config";
import { exportJobs } from "../db/control_schema";
import { exportFileName, CONTENT_TYPES } from "../export/files";
import { acceptedSigningKeys, verifyDownloadLink } from "./signed_url";

export const downloadRoute = new Hono<HonoEnv>();

downloadRoute.get("/exports/:jobid", async (c) => {
  const jobId = c.req.param("jobid");
  const config = loadConfig(c.env);
  // The raw query string: the link's parameters are checked as written, each exactly once.
  const check = await verifyDownloadLink(jobId, new URL(c.req.url).search, acceptedSigningKeys(config));
  if (!check.ok) throw new ApiError("FORBIDDEN", check.reason);

  const job = await drizzle(c.env.DB)
    .select({ objectKey: exportJobs.objectKey, format: exportJobs.format })
    .from(exportJobs)
    .where(and(eq(exportJobs.id, jobId), eq(exportJobs.state, "complete")))
    .get();
  if (!job) throw new ApiError("NOT_FOUND", `Export ${jobId} has no file`);

  const object = await c.env.EXPORTS.get(job.objectKey);
  if (!object) throw new ApiError("NOT_FOUND", `The file of export ${jobId} is no longer stored`);

  return new Response(object.body, {
    headers: {
      "Content-Type": CONTENT_TYPES[job.format],
      "Content-Length": String(object.size),
      // Send the stored bytes as they are: no on-the-fly compression, so Content-Length stays exact.
      "Content-Encoding": "identity",
      "Content-Disposition": `attachment; filename="${exportFileName(jobId, job.format)}"`,
      ETag: object.httpEtag,
      "Cache-Control": "private, no-store",
    },
  });
});
