import type { DrizzleD1Database } from "drizzle-orm/d1";
import { accountDirectory } from "../db/control_schema";
import { DomainError } from "../errors";
import { openShard, registeredShards, type RegisteredShard } from "./directory";

/**
 * Where a new account goes: the shard it is given (`requested`, which may be a reserved shard, e.g. a large
 * customer's own), or else the open shard with the fewest contacts (ties: the first by name). Shared by the
 * account:create script and the tests' fixtures, so both place accounts by the same rule.
 */
export function chooseShard(candidates: ReadonlyArray<RegisteredShard & { contacts: number }>, requested?: string): string {
  if (requested !== undefined) {
    if (!candidates.some((c) => c.name === requested)) {
      const known = candidates.map((c) => c.name).join(", ") || "none";
      throw new Error(`shard ${requested} is not in the directory's shards (registered: ${known})`);
    }
    return requested;
  }
  const open = candidates.filter((c) => c.placement === "open");
  if (open.length === 0) throw new Error("no open shard to place the account on: register one (docs/shards.md)");
  const byLoad = [...open].sort((a, b) => a.contacts - b.contacts || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return byLoad[0]!.name;
}

/** How many contacts a shard holds, for placement. */
export async function shardContacts(env: Env, name: string): Promise<number> {
  const row = await openShard(env, name).d1.prepare("SELECT count(*) AS n FROM subscribers").first<{ n: number }>();
  return Number(row?.n ?? 0);
}

/** Places an account (which has no directory entry yet) on a shard, by `chooseShard`'s rule. Returns the shard. */
export async function placeAccount(env: Env, control: DrizzleD1Database, accountId: number, requested?: string): Promise<string> {
  const registered = await registeredShards(control);
  const candidates = await Promise.all(
    registered.map(async (shard) => ({
      ...shard,
      // Only open shards compete on load; a requested one needs no count.
      contacts: requested === undefined && shard.placement === "open" ? await shardContacts(env, shard.name) : 0,
    })),
  );
  let name: string;
  try {
    name = chooseShard(candidates, requested);
  } catch (error) {
    throw new DomainError("SHARD_UNAVAILABLE", (error as Error).message);
  }
  openShard(env, name); // a shard this worker cannot open is refused before the account points at it
  await control.insert(accountDirectory).values({ accountId, shard: name, updatedAt: Date.now() });
  return name;
}
