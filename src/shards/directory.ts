import { asc, eq } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { accountDirectory, shards, type ShardPlacement } from "../db/control_schema";
import { DomainError } from "../errors";

/**
 * Routing: the one module that turns an account into the D1 database holding its contacts. Every data query
 * goes through a Shard from here; no other code names a shard binding.
 *
 * The control database (the DB binding) keeps the directory: `shards` lists the shards in service, and
 * `account_directory` says which one holds each account. A shard's name is its D1 binding's name (SHARD_0,
 * SHARD_1, ...), the same in the API and the export worker.
 */

/** A data shard, opened: its name in the directory, its binding, and drizzle over it. */
export interface Shard {
  name: string;
  d1: D1Database;
  db: DrizzleD1Database;
}

const SHARD_NAME = /^SHARD_\d{1,4}$/;

export const isShardName = (name: string) => SHARD_NAME.test(name);

const isD1Database = (value: unknown): value is D1Database =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as D1Database).prepare === "function" &&
  typeof (value as D1Database).batch === "function";

/**
 * Opens a shard by name. A name that is not a D1 binding of this worker is a configuration error, never a
 * reason to use another shard.
 */
export function openShard(env: Env, name: string): Shard {
  const binding = isShardName(name) ? (env as unknown as Record<string, unknown>)[name] : undefined;
  if (!isD1Database(binding)) {
    throw new DomainError(
      "SHARD_UNAVAILABLE",
      isShardName(name)
        ? `data shard ${name} has no D1 binding in this worker: add a [[d1_databases]] entry with binding = "${name}" to its wrangler config (docs/shards.md)`
        : `"${name}" is not a data shard name (SHARD_<number>)`,
    );
  }
  return { name, d1: binding, db: drizzle(binding) };
}

/** The shard that holds an account's contacts, from the directory. */
export async function shardOfAccount(env: Env, control: DrizzleD1Database, accountId: number): Promise<Shard> {
  const entry = await control
    .select({ shard: accountDirectory.shard })
    .from(accountDirectory)
    .where(eq(accountDirectory.accountId, accountId))
    .get();
  if (!entry) throw new DomainError("SHARD_UNAVAILABLE", `account ${accountId} has no entry in the shard directory`);
  return openShard(env, entry.shard);
}

/**
 * The shard to write an account's contacts to. While a move switches the account to another shard its writes
 * are frozen: refused with ACCOUNT_MOVING (a 503 with Retry-After), so that nothing is written to a copy
 * being verified. Reads need no such check: the source stays complete until the switch.
 */
export async function shardForWriting(env: Env, control: DrizzleD1Database, accountId: number): Promise<Shard> {
  const entry = await control.select().from(accountDirectory).where(eq(accountDirectory.accountId, accountId)).get();
  if (!entry) throw new DomainError("SHARD_UNAVAILABLE", `account ${accountId} has no entry in the shard directory`);
  if (entry.writesFrozen) {
    throw new DomainError(
      "ACCOUNT_MOVING",
      "This account's contacts are being moved to another database; changes are paused for a moment. Reads still work. Try again in 30 seconds.",
    );
  }
  return openShard(env, entry.shard);
}

export interface RegisteredShard {
  name: string;
  placement: ShardPlacement;
}

/** The shards in service, by name. */
export function registeredShards(control: DrizzleD1Database): Promise<RegisteredShard[]> {
  return control.select({ name: shards.name, placement: shards.placement }).from(shards).orderBy(asc(shards.name));
}

/**
 * Long reads (export scans, counts) go through a D1 session that may be served by a read replica where read
 * replication is on: "first-unconstrained" lets the first query go to any replica, and later queries of the
 * session see at least what it saw. Exports read a snapshot frozen at request time by keyset, so a replica a
 * few seconds behind the primary changes nothing a client could tell from the primary's answer of that
 * moment. Writes (API methods, counts stored) stay on the binding itself: primary consistency.
 */
export function readSession(shard: Shard): DrizzleD1Database {
  // drizzle needs only prepare() and batch(), which a session has.
  return drizzle(shard.d1.withSession("first-unconstrained") as unknown as D1Database);
}
