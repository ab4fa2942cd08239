/**
 * The files a complete export has in R2: one for an unsplit export (the job's object), several for a split one
 * (export_files). The status call, the job list, the notification and the download route read them from here;
 * cancel, failure and retention delete them from here.
 */
import { asc, eq, inArray } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { exportFiles, type ExportJob } from "../db/control_schema";
import { isSplit } from "./files";
import type { ImportSpec } from "../import/spec";
import type { ExportSpec } from "./spec";

export interface StoredFile {
  /** The number in a split export's file name and link; undefined for an unsplit export's one file. */
  fileIndex: number | undefined;
  objectKey: string;
  count: number;
  bytes: number;
}

type FilesOwner = Pick<ExportJob, "id" | "spec" | "objectKey" | "processedCount" | "bytesWritten">;

const unsplitFile = (job: FilesOwner): StoredFile => ({
  fileIndex: undefined,
  objectKey: job.objectKey,
  count: job.processedCount,
  bytes: job.bytesWritten,
});

/** A complete export's files, in order. */
export async function storedFiles(db: DrizzleD1Database, job: FilesOwner): Promise<StoredFile[]> {
  return (await storedFilesOfJobs(db, [job])).get(job.id) ?? [];
}

/** The files of several complete exports, in one query for the split ones. */
export async function storedFilesOfJobs(db: DrizzleD1Database, jobs: readonly FilesOwner[]): Promise<Map<string, StoredFile[]>> {
  const files = new Map<string, StoredFile[]>();
  const split: string[] = [];
  for (const job of jobs) {
    if (isSplit(job.spec as ExportSpec)) {
      split.push(job.id);
      files.set(job.id, []);
    } else {
      files.set(job.id, [unsplitFile(job)]);
    }
  }
  if (split.length === 0) return files;
  const rows = await db
    .select()
    .from(exportFiles)
    .where(inArray(exportFiles.jobId, split))
    .orderBy(asc(exportFiles.jobId), asc(exportFiles.fileIndex));
  for (const row of rows) {
    files.get(row.jobId)!.push({ fileIndex: row.fileIndex, objectKey: row.objectKey, count: row.count, bytes: row.bytes });
  }
  return files;
}

/** R2 deletes at most this many keys in one call. */
const DELETE_BATCH = 1000;

/**
 * Deletes every object a job stored: an export's recorded files and the object it was writing (which a canceled
 * or failed export may have completed in R2 before it stopped); an import's rejects file and uploaded file. Deleting a missing key is not an error, so this
 * may run again.
 */
export async function deleteStoredObjects(
  bucket: R2Bucket,
  db: DrizzleD1Database,
  job: Pick<ExportJob, "id" | "objectKey"> & Partial<Pick<ExportJob, "kind" | "spec">>,
): Promise<void> {
  const recorded = await db.select({ objectKey: exportFiles.objectKey }).from(exportFiles).where(eq(exportFiles.jobId, job.id));
  // An import's uploaded file is the service's copy, kept only while the import needs it.
  const upload = job.kind === "import" && (job.spec as ImportSpec).source === "upload" ? [(job.spec as ImportSpec).sourceKey] : [];
  const keys = [...new Set([...recorded.map((f) => f.objectKey), job.objectKey, ...upload])];
  for (let i = 0; i < keys.length; i += DELETE_BATCH) await bucket.delete(keys.slice(i, i + DELETE_BATCH));
}
