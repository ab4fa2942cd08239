import { sql } from "drizzle-orm";
import { defineMethod } from "../api/method";
import { resolveTagging, tagAndSubscribers } from "./tags_tag_subscribers";

/** Tags / UntagSubscribers {tag, subscriberid[]}: removes a tag from subscribers of the account. */
export const untagSubscribers = defineMethod({
  requesttype: "Tags",
  requestmethod: "UntagSubscribers",
  summary: "Removes a tag (by id or name) from up to 1,000 subscribers (by id).",
  details: tagAndSubscribers,
  example: { tag: "vip", subscriberid: ["1017"] },
  async handle({ account, writableShard }, details) {
    const shard = await writableShard();
    const { tag, ids, notFound } = await resolveTagging(shard, account.id, details);
    const removed = ids.length === 0 ? [] : await shard.db.all<{ id: number }>(sql`
      DELETE FROM subscriber_tags WHERE tag_id = ${tag.id} AND subscriber_id IN (SELECT value FROM json_each(${JSON.stringify(ids)}))
      RETURNING subscriber_id AS id`);
    return { tagid: String(tag.id), untagged: removed.length, nottagged: ids.length - removed.length, notfound: notFound };
  },
});
