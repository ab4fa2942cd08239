import type { Config } from "../config";
import type { ExportJob } from "../db/control_schema";
import { currentSigningKey, signDownloadLink, type SignedLink } from "../download/signed_url";

/**
 * When a link signed at `now` expires: DOWNLOAD_LINK_TTL_SECONDS later, but never after the file is deleted
 * (`retainedUntil`). Whole seconds, since the link carries its expiry in seconds.
 */
export function linkExpiry(now: number, retainedUntil: number, config: Config): Date {
  return new Date(Math.floor(Math.min(now + config.DOWNLOAD_LINK_TTL_SECONDS * 1000, retainedUntil) / 1000) * 1000);
}

type LinkedJob = Pick<ExportJob, "id" | "state" | "linkExpiresAt" | "retainedUntil" | "completedAt">;

/**
 * The link the notification carries: its expiry was fixed when the job completed, so every attempt sends the
 * same URL (signed with the current key, DOWNLOAD_SIGNING_KEY_ID). Past the expiry there is none.
 */
export async function notifiedDownloadLink(job: LinkedJob, config: Config, now = new Date()): Promise<SignedLink | null> {
  if (job.state !== "complete" || !job.linkExpiresAt) return null;
  const expiresAt = new Date(job.linkExpiresAt);
  if (expiresAt <= now) return null;
  return signDownloadLink(config.PUBLIC_BASE_URL, job.id, expiresAt, currentSigningKey(config));
}

/**
 * A fresh link, for the status call: valid DOWNLOAD_LINK_TTL_SECONDS from now (capped at the file's
 * retention), so a client whose notified link expired, or who read the email late, still gets the file while
 * it is kept. None once the retention is over.
 */
export async function freshDownloadLink(job: LinkedJob, config: Config, now = new Date()): Promise<SignedLink | null> {
  if (job.state !== "complete") return null;
  const retainedUntil = retentionEnd(job, config);
  if (retainedUntil <= now.getTime()) return null;
  const expiresAt = linkExpiry(now.getTime(), retainedUntil, config);
  if (expiresAt <= now) return null;
  return signDownloadLink(config.PUBLIC_BASE_URL, job.id, expiresAt, currentSigningKey(config));
}

/** ms since the epoch; jobs completed before retention was recorded keep theirs from their completion. */
export function retentionEnd(job: Pick<ExportJob, "retainedUntil" | "completedAt">, config: Config): number {
  if (job.retainedUntil !== null) return job.retainedUntil;
  return Date.parse(job.completedAt ?? "1970-01-01T00:00:00Z") + config.EXPORT_RETENTION_DAYS * 86_400_000;
}
