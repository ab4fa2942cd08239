import { and, eq } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { ApiError } from "../api/errors";
import { lists } from "../db/shard_schema";

/** The account's list `listId`, or a 404 naming `path` (a list id of another account is unknown here). */
export async function ownList(shard: DrizzleD1Database, accountId: number, listId: number, path: string) {
  const list = await shard
    .select({ id: lists.id, name: lists.name })
    .from(lists)
    .where(and(eq(lists.id, listId), eq(lists.accountId, accountId)))
    .get();
  if (!list) throw new ApiError("NOT_FOUND", `${path}: no list ${listId} in this account`);
  return list;
}
