import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { segments } from "../db/schema";
import { countQuery, loadCustomFieldTypes, matchPredicate } from "../export/query";
import { segmentRules } from "../segments/rules";

/** Segments / GetSegments: the account's segments, each with how many contacts it holds now. */
export const getSegments = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegments",
  details: z.unknown(),
  async handle({ db, account }) {
    const rows = await db.select().from(segments).where(eq(segments.accountId, account.id)).orderBy(asc(segments.id));
    const fieldTypes = await loadCustomFieldTypes(db, account.id);
    const now = new Date();
    return Promise.all(
      rows.map(async (segment) => {
        let contacts: number | null = null;
        let errormessage: string | undefined;
        try {
          const predicate = matchPredicate([{ ...segment, rules: segmentRules(segment) }], "any", now, fieldTypes);
          const [[count] = [0]] = await db.values<[number]>(countQuery(account.id, predicate));
          contacts = Number(count);
        } catch (error) {
          // One segment whose rules no longer compile must not hide the others.
          if (!(error instanceof ApiError)) throw error;
          errormessage = error.message;
        }
        return {
          segmentid: String(segment.id),
          segmentname: segment.name,
          createdate: segment.createdAt,
          contacts,
          ...(errormessage ? { errormessage } : {}),
        };
      }),
    );
  },
});
