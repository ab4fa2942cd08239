import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import { defineMethod } from "../api/method";
import { segments, type Segment } from "../db/shard_schema";
import { loadCustomFieldTypes } from "../export/query";
import { countSegment, type FieldTypes, type SegmentCount } from "../segments/counts";

/** How many stale segments one GetSegments call recounts at once. */
const RECOUNT_CONCURRENCY = 4;

/**
 * Segments / GetSegments: the account's segments, by id, each with its stored contact count and when it was
 * taken. Counts older than SEGMENT_COUNT_MAX_AGE_SECONDS (or never taken) are recounted now and stored, so
 * only the first call after a count goes stale pays for a scan; the export worker's cron keeps the rest fresh.
 */
export const getSegments = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegments",
  summary: "The account's segments, each with its stored contact count and when it was counted.",
  details: z.unknown(),
  example: {},
  async handle({ shard, config, account }) {
    const { db } = await shard();
    const rows = await db.select().from(segments).where(eq(segments.accountId, account.id)).orderBy(asc(segments.id));
    const now = Date.now();
    const oldest = now - config.SEGMENT_COUNT_MAX_AGE_SECONDS * 1000;
    const stored = (segment: Segment): SegmentCount => ({
      contacts: segment.contactsCount,
      countedAt: segment.countedAt,
      error: segment.countError,
    });

    let fieldTypes: Promise<FieldTypes> | undefined;
    const counts = await mapWithConcurrency(rows, RECOUNT_CONCURRENCY, async (segment) => {
      if (segment.countedAt > 0 && segment.countedAt >= oldest) return stored(segment);
      fieldTypes ??= loadCustomFieldTypes(db, account.id);
      return countSegment(db, segment, await fieldTypes, now);
    });

    return rows.map((segment, i) => {
      const { contacts, countedAt, error } = counts[i]!;
      return {
        segmentid: String(segment.id),
        segmentname: segment.name,
        ownerid: account.username,
        createdate: segment.createdAt,
        contacts: error === null ? contacts : null,
        counted_at: countedAt > 0 ? new Date(countedAt).toISOString() : null,
        ...(error !== null ? { errormessage: error } : {}),
      };
    });
  },
});

/** Maps in order, with at most `limit` calls of `fn` running at once. */
async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
