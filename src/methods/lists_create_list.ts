import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { entityName } from "../contacts/input";
import { lists } from "../db/shard_schema";
import { allocateIds } from "../shards/ids";

/**
 * Lists / CreateList {name}: a new, empty list, so that an account can start from nothing. Names are unique in
 * the account: a second CreateList with the same name (a retry after a lost answer) gets 409 and the list's id.
 */
export const createList = defineMethod({
  requesttype: "Lists",
  requestmethod: "CreateList",
  summary: "Creates an empty list; its name must be new in the account.",
  details: z.object({ name: entityName }),
  example: { name: "Newsletter" },
  async handle({ env, account, writableShard }, { name }) {
    const { db } = await writableShard();
    const id = await allocateIds(env.DB, "lists", 1);
    // ON CONFLICT: two calls at once with one name make one list; the other gets the 409 below.
    const [created] = await db
      .insert(lists)
      .values({ id, accountId: account.id, name })
      .onConflictDoNothing()
      .returning({ id: lists.id, createdAt: lists.createdAt });
    if (!created) {
      const existing = await db.select({ id: lists.id }).from(lists).where(and(eq(lists.accountId, account.id), eq(lists.name, name))).get();
      throw new ApiError("CONFLICT", `details.name: the account already has a list named ${quote(name)} (listid ${existing?.id ?? "unknown"})`);
    }
    return { listid: String(created.id), name, createdate: created.createdAt };
  },
});
