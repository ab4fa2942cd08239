import { sql } from "drizzle-orm";
import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { CONTACT_LIMITS, entityId, tagRef } from "../contacts/input";
import { loadNamedTags } from "../contacts/tags";
import type { Shard } from "../shards/directory";

/** {tag, subscriberid[]}: a tag (by id or name) and up to 1,000 subscribers of the account. */
export const tagAndSubscribers = z.object({
  tag: tagRef,
  subscriberid: z
    .preprocess(
      (value) => (value === undefined || Array.isArray(value) ? value : [value]),
      z
        .array(z.unknown(), { error: (issue) => (issue.input === undefined ? "is required" : "must be an array of subscriber ids") })
        .min(1, "must name at least one subscriber")
        .max(CONTACT_LIMITS.idsPerCall, { error: `at most ${CONTACT_LIMITS.idsPerCall} subscribers per call` })
        .pipe(z.array(entityId("a subscriber id"))),
    )
    .transform((ids) => [...new Set(ids)]),
});
type TagAndSubscribers = z.output<typeof tagAndSubscribers>;

/** The tag's id, or a 404; and which of the ids are subscribers of the account (the others are listed as not found). */
export async function resolveTagging(shard: Shard, accountId: number, details: TagAndSubscribers) {
  const tags = await loadNamedTags(shard.db, accountId, [details.tag]);
  const tag = "id" in details.tag ? tags.byId.get(details.tag.id) : tags.byName.get(details.tag.name);
  if (!tag) throw new ApiError("NOT_FOUND", `details.tag: no tag ${"id" in details.tag ? details.tag.id : quote(details.tag.name)} in this account`);
  const found = await shard.db.all<{ id: number }>(sql`
    SELECT id FROM subscribers WHERE account_id = ${accountId} AND id IN (SELECT value FROM json_each(${JSON.stringify(details.subscriberid)}))`);
  const ids = new Set(found.map((row) => Number(row.id)));
  return { tag, ids: [...ids], notFound: details.subscriberid.filter((id) => !ids.has(id)).map(String) };
}

/**
 * Tags / TagSubscribers {tag, subscriberid[]}: tags subscribers of the account. Ids that are not the account's
 * subscribers are listed in `notfound` (and nothing happens to them); tagging twice is harmless.
 */
export const tagSubscribers = defineMethod({
  requesttype: "Tags",
  requestmethod: "TagSubscribers",
  summary: "Tags up to 1,000 subscribers (by id) with a tag (by id or name).",
  details: tagAndSubscribers,
  example: { tag: "vip", subscriberid: ["1017", "1018"] },
  async handle({ account, writableShard }, details) {
    const shard = await writableShard();
    const { tag, ids, notFound } = await resolveTagging(shard, account.id, details);
    const added = ids.length === 0 ? [] : await shard.db.all<{ id: number }>(sql`
      INSERT OR IGNORE INTO subscriber_tags (subscriber_id, tag_id)
      SELECT value, ${tag.id} FROM json_each(${JSON.stringify(ids)}) WHERE true
      RETURNING subscriber_id AS id`);
    return { tagid: String(tag.id), tagged: added.length, alreadytagged: ids.length - added.length, notfound: notFound };
  },
});
