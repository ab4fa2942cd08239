import type { Config } from "../config";
import type { ExportJob } from "../db/schema";
import { signDownloadLink, type SignedLink } from "../download/signed_url";

/**
 * The download link of a finished job. Its expiry is fixed when the job completes, so the status call and
 * the notification hand out the same URL; past the expiry there is no link.
 */
export async function downloadLinkFor(
  job: Pick<ExportJob, "id" | "state" | "linkExpiresAt">,
  config: Config,
  now = new Date(),
): Promise<SignedLink | null> {
  if (job.state !== "complete" || !job.linkExpiresAt) return null;
  const expiresAt = new Date(job.linkExpiresAt);
  if (expiresAt <= now) return null;
  return signDownloadLink(config.PUBLIC_BASE_URL, job.id, expiresAt, config.DOWNLOAD_SIGNING_SECRET);
}
