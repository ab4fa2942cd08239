import { and, eq, ne, notExists, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import { z } from "zod";
import { defineMethod } from "../api/method";
import { segments } from "../db/shard_schema";
import { loadCustomFieldTypes } from "../export/query";
import { segmentRules } from "../segments/rules";
import { booleanish } from "./segment_selection";
import {
  assertNameFree,
  checkRules,
  countMatching,
  findSegment,
  nameTaken,
  ruleTreeDetail,
  segmentIdDetail,
  segmentNameDetail,
  segmentView,
  storedCount,
} from "./segment_definition";

export const updateSegmentDetails = z
  .object({
    segmentid: segmentIdDetail,
    name: segmentNameDetail.optional(),
    rules: ruleTreeDetail.optional(),
    dryrun: booleanish.default(false),
  })
  .refine((details) => details.name !== undefined || details.rules !== undefined, "give name, rules or both to change");

/**
 * Segments / UpdateSegment: renames a segment and/or replaces its rules, checked as CreateSegment checks them.
 * New rules reset the stored count (GetSegments counts them again); a rename keeps it. Exports already
 * accepted keep the rules they were accepted with.
 *
 * `dryrun` runs every check and answers `{count}` for the rules the segment would have, saving nothing.
 */
export const updateSegment = defineMethod({
  requesttype: "Segments",
  requestmethod: "UpdateSegment",
  summary: "Renames a segment and/or replaces its rules; new rules reset its stored count (dryrun: only counts).",
  details: updateSegmentDetails,
  example: {
    segmentid: "12",
    name: "Acme or Globex, joined in the last 30 days",
    rules: {
      match: "all",
      rules: [
        {
          match: "any",
          rules: [
            { field: "customfield", fieldid: 3, operator: "contains", value: "acme" },
            { field: "customfield", fieldid: 3, operator: "contains", value: "globex" },
          ],
        },
        { field: "subscribedate", operator: "within_last_days", value: 30 },
      ],
    },
  },
  async handle(context, details) {
    const { account } = context;
    const shard = details.dryrun ? await context.shard() : await context.writableShard();
    const now = new Date();
    const segment = await findSegment(shard.db, account.id, details.segmentid);
    const name = details.name ?? segment.name;
    const checked = details.rules === undefined ? undefined : await checkRules(shard, account.id, name, details.rules, now);
    if (name !== segment.name) await assertNameFree(shard.db, account.id, name, segment.id);
    if (details.dryrun) {
      const rules = checked?.rules ?? segmentRules(segment);
      const fieldTypes = checked?.fieldTypes ?? (await loadCustomFieldTypes(shard.db, account.id));
      return { count: await countMatching(shard.db, account.id, { id: segment.id, name, rules }, fieldTypes, now) };
    }

    const other = alias(segments, "other");
    const [updated] = await shard.db
      .update(segments)
      .set({
        name,
        // Counted for the old rules: GetSegments (or the cron) counts the new ones.
        ...(checked ? { rules: checked.rules, contactsCount: null, countedAt: 0, countError: null } : {}),
      })
      .where(
        and(
          eq(segments.id, segment.id),
          eq(segments.accountId, account.id),
          // A new name is checked again in the update itself, so that a racing call cannot take it too.
          name === segment.name
            ? undefined
            : notExists(
                shard.db
                  .select({ one: sql`1` })
                  .from(other)
                  .where(and(eq(other.accountId, account.id), eq(other.name, name), ne(other.id, segment.id))),
              ),
        ),
      )
      .returning();
    if (!updated) {
      // Deleted meanwhile (404), or the name was taken meanwhile.
      await findSegment(shard.db, account.id, segment.id);
      throw nameTaken(name);
    }
    return segmentView(updated, account, storedCount(updated));
  },
});
