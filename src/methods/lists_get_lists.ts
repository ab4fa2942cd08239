import { asc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { defineMethod } from "../api/method";
import { lists } from "../db/shard_schema";

/**
 * Lists / GetLists: the account's lists with Pinpointe's fields, and their subscribers by status. The counts come
 * from the (list_id, status) index in one grouped statement, without reading the subscriber rows.
 */
export const getLists = defineMethod({
  requesttype: "Lists",
  requestmethod: "GetLists",
  summary: "The account's lists, with their subscribers counted by status.",
  details: z.unknown(),
  example: {},
  async handle({ account, shard }) {
    const { db } = await shard();
    const rows = await db.select().from(lists).where(eq(lists.accountId, account.id)).orderBy(asc(lists.id));
    const counts = await db.all<{ list_id: number; status: string; n: number }>(sql`
      SELECT s.list_id, s.status, count(*) AS n FROM subscribers s INDEXED BY subscribers_list_status_idx
      WHERE s.list_id IN (SELECT id FROM lists WHERE account_id = ${account.id})
      GROUP BY s.list_id, s.status`);
    const countOf = (listId: number, status: string) => Number(counts.find((c) => c.list_id === listId && c.status === status)?.n ?? 0);
    return rows.map((list) => ({
      listid: String(list.id),
      name: list.name,
      createdate: list.createdAt,
      subscribecount: countOf(list.id, "active"),
      unsubscribecount: countOf(list.id, "unsubscribed"),
      bouncecount: countOf(list.id, "bounced"),
      inactivecount: countOf(list.id, "inactive"),
    }));
  },
});
