import type { Config } from "../config";
import type { ExportJob } from "../db/control_schema";
import { currentSigningKey, signDownloadLink, signRejectsLink, type SignedLink } from "../download/signed_url";
import type { StoredFile } from "./stored_files";

/**
 * When a link signed at `now` expires: DOWNLOAD_LINK_TTL_SECONDS later, but never after the file is deleted
 * (`retainedUntil`). Whole seconds, since the link carries its expiry in seconds.
 */
export function linkExpiry(now: number, retainedUntil: number, config: Config): Date {
  return new Date(Math.floor(Math.min(now + config.DOWNLOAD_LINK_TTL_SECONDS * 1000, retainedUntil) / 1000) * 1000);
}

type LinkedJob = Pick<ExportJob, "id" | "state" | "linkExpiresAt" | "retainedUntil" | "completedAt">;

/** A file of an export as the notification and the status call list it: its signed link, records and bytes. */
export interface FileLink {
  url: string;
  count: number;
  bytes: number;
}

/** The links to an export's files, all with the same expiry. */
export interface DownloadLinks {
  expiresAt: Date;
  files: FileLink[];
}

async function signFiles(config: Config, jobId: string, files: readonly StoredFile[], expiresAt: Date): Promise<DownloadLinks> {
  const key = currentSigningKey(config);
  const signed = await Promise.all(
    files.map(async (file) => ({
      url: (await signDownloadLink(config.PUBLIC_BASE_URL, jobId, expiresAt, key, file.fileIndex)).url,
      count: file.count,
      bytes: file.bytes,
    })),
  );
  return { expiresAt: new Date(Math.floor(expiresAt.getTime() / 1000) * 1000), files: signed };
}

/**
 * The links the notification carries: their expiry was fixed when the job completed, so every attempt sends the
 * same URLs (signed with the current key, DOWNLOAD_SIGNING_KEY_ID). Past the expiry there are none.
 */
export async function notifiedDownloadLinks(
  job: LinkedJob,
  files: readonly StoredFile[],
  config: Config,
  now = new Date(),
): Promise<DownloadLinks | null> {
  if (job.state !== "complete" || !job.linkExpiresAt) return null;
  const expiresAt = new Date(job.linkExpiresAt);
  if (expiresAt <= now) return null;
  return signFiles(config, job.id, files, expiresAt);
}

/**
 * Fresh links, for the status call: valid DOWNLOAD_LINK_TTL_SECONDS from now (capped at the files' retention),
 * so a client whose notified link expired, or who read the email late, still gets the files while they are
 * kept. None once the retention is over.
 */
export async function freshDownloadLinks(
  job: LinkedJob,
  files: readonly StoredFile[],
  config: Config,
  now = new Date(),
): Promise<DownloadLinks | null> {
  if (job.state !== "complete") return null;
  const retainedUntil = retentionEnd(job, config);
  if (retainedUntil <= now.getTime()) return null;
  const expiresAt = linkExpiry(now.getTime(), retainedUntil, config);
  if (expiresAt <= now) return null;
  return signFiles(config, job.id, files, expiresAt);
}

/** An import's rejects file link, as its notification carries it (the expiry fixed at completion). */
export async function notifiedRejectsLink(job: LinkedJob, config: Config, now = new Date()): Promise<SignedLink | null> {
  if (job.state !== "complete" || !job.linkExpiresAt) return null;
  const expiresAt = new Date(job.linkExpiresAt);
  if (expiresAt <= now) return null;
  return signRejectsLink(config.PUBLIC_BASE_URL, job.id, expiresAt, currentSigningKey(config));
}

/** A fresh link to an import's rejects file, for the status call, while the file is kept. */
export async function freshRejectsLink(job: LinkedJob, config: Config, now = new Date()): Promise<SignedLink | null> {
  if (job.state !== "complete") return null;
  const retainedUntil = retentionEnd(job, config);
  if (retainedUntil <= now.getTime()) return null;
  return signRejectsLink(config.PUBLIC_BASE_URL, job.id, linkExpiry(now.getTime(), retainedUntil, config), currentSigningKey(config));
}

/** ms since the epoch; jobs completed before retention was recorded keep theirs from their completion. */
export function retentionEnd(job: Pick<ExportJob, "retainedUntil" | "completedAt">, config: Config): number {
  if (job.retainedUntil !== null) return job.retainedUntil;
  return Date.parse(job.completedAt ?? "1970-01-01T00:00:00Z") + config.EXPORT_RETENTION_DAYS * 86_400_000;
}
