import type { Config } from "../config";
import type { ExportJob } from "../db/control_schema";
import { currentSigningKey, signDownloadLink, type SignedLink } from "../download/signed_url";

/**
 * The download link of a finished job. Its expiry is fixed when the job completes, so the status call and
 * the notification hand out the same URL (both sign with the current key, DOWNLOAD_SIGNING_KEY_ID); past the
 * expiry there is no link. A link asked for again after a key rotation is signed with the new key.
 */
export async function downloadLinkFor(
  job: Pick<ExportJob, "id" | "state" | "linkExpiresAt">,
  config: Config,
  now = new Date(),
): Promise<SignedLink | null> {
  if (job.state !== "complete" || !job.linkExpiresAt) return null;
  const expiresAt = new Date(job.linkExpiresAt);
  if (expiresAt <= now) return null;
  return signDownloadLink(config.PUBLIC_BASE_URL, job.id, expiresAt, currentSigningKey(config));
}
