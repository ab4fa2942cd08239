import { and, desc, eq, or, lt, sql } from "drizzle-orm";
import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { exportJobs } from "../db/control_schema";
import { LAST_PAGE, pageLimit } from "./paging";
import { jobStatuses } from "./segments_get_segment_subscribers_async_status";

export const JOB_LIST_LIMITS = { default: 20, max: 100 } as const;


/** The position after a job in the list: its creation time and row id, newest first. */
const positionToken = (createdAt: string, rowid: number) => btoa(`${createdAt}|${rowid}`).replace(/=+$/, "");

function readPosition(token: string): { createdAt: string; rowid: number } | null {
  try {
    const [createdAt, rowid] = atob(token).split("|");
    if (!createdAt || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(createdAt) || !/^[1-9]\d{0,15}$/.test(rowid ?? "")) return null;
    return { createdAt, rowid: Number(rowid) };
  } catch {
    return null;
  }
}

/**
 * Segments / GetSegmentSubscribersAsyncJobs: the account's exports, newest first, each with the status call's
 * fields, `limit` at a time (1 to 100, default 20); `next` continues, "0" says the list is over.
 */
export const getSegmentSubscribersAsyncJobs = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegmentSubscribersAsyncJobs",
  summary: "The account's exports, newest first, with the status call's fields (next continues).",
  example: { limit: 20 },
  details: z.object({
    limit: pageLimit(JOB_LIST_LIMITS.max, JOB_LIST_LIMITS.default),
    next: z.string({ error: "must be the string a previous answer returned as next" }).max(200, "is not a list position").optional(),
  }),
  async handle({ db, account, config }, { limit, next }) {
    let after: { createdAt: string; rowid: number } | null = null;
    if (next !== undefined && next !== "") {
      if (next === LAST_PAGE) throw new ApiError("BAD_REQUEST", `details.next: "${LAST_PAGE}" means the previous answer was the last one; omit next to start from the newest`);
      after = readPosition(next);
      if (!after) throw new ApiError("BAD_REQUEST", `details.next: ${quote(next)} is not a position this call returned`);
    }
    const rowid = sql<number>`${exportJobs}.rowid`;
    const rows = await db
      .select({ job: exportJobs, rowid })
      .from(exportJobs)
      .where(
        and(
          eq(exportJobs.accountId, account.id),
          eq(exportJobs.kind, "export"),
          after
            ? or(lt(exportJobs.createdAt, after.createdAt), and(eq(exportJobs.createdAt, after.createdAt), sql`${exportJobs}.rowid < ${after.rowid}`))
            : undefined,
        ),
      )
      .orderBy(desc(exportJobs.createdAt), desc(rowid))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      count: page.length,
      jobs: await jobStatuses(
        db,
        page.map(({ job }) => job),
        config,
      ),
      next: rows.length > limit && last ? positionToken(last.job.createdAt, last.rowid) : LAST_PAGE,
    };
  },
});
