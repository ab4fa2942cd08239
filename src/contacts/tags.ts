import { sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { quote } from "../api/envelope";
import type { Checked } from "./fields";
import type { TagRef } from "./input";

/**
 * The account's tags among those named (by id or name), looked up in one statement. With `known` (what earlier
 * calls found, as an import keeps it from batch to batch), only the refs it lacks are looked up, and what is found
 * is added to it.
 */
export async function loadNamedTags(shard: DrizzleD1Database, accountId: number, refs: readonly TagRef[], known?: TagLookup): Promise<TagLookup> {
  const tags: TagLookup = known ?? { byId: new Map(), byName: new Map() };
  const ids = [...new Set(refs.flatMap((ref) => ("id" in ref && !tags.byId.has(ref.id) ? [ref.id] : [])))];
  const names = [...new Set(refs.flatMap((ref) => ("name" in ref && !tags.byName.has(ref.name) ? [ref.name] : [])))];
  if (ids.length + names.length === 0) return tags;
  const found = await shard.all<{ id: number; name: string }>(sql`
    SELECT id, name FROM tags WHERE account_id = ${accountId}
      AND (id IN (SELECT value FROM json_each(${JSON.stringify(ids)})) OR name IN (SELECT value FROM json_each(${JSON.stringify(names)})))`);
  for (const tag of found) {
    tags.byId.set(tag.id, tag);
    tags.byName.set(tag.name, tag);
  }
  return tags;
}

export interface TagLookup {
  byId: Map<number, { id: number; name: string }>;
  byName: Map<string, { id: number; name: string }>;
}

/** The ids of one contact's tags, or the first one that is not a tag of the account, with its path (`path()`, made only then). */
export function resolveTagIds(refs: readonly TagRef[], tags: TagLookup, path: () => string): Checked<number[]> {
  const ids = new Set<number>();
  for (const [i, ref] of refs.entries()) {
    const tag = "id" in ref ? tags.byId.get(ref.id) : tags.byName.get(ref.name);
    if (!tag) return { ok: false, reason: `${path()}.${i}: no tag ${"id" in ref ? ref.id : quote(ref.name)} in this account` };
    ids.add(tag.id);
  }
  return { ok: true, value: [...ids] };
}
