/**
 * The id allocator (src/shards/ids.ts): the control database hands out blocks of ids per data table, so that
 * ids are unique across every shard. A block is `count` consecutive ids that no other call ever got.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ALLOCATED_TABLES, type AllocatedTable } from "../../src/db/shard_schema";
import { allocateIds, idsInBlocks } from "../../src/shards/ids";
import { unique } from "../fixtures";

/** The last id handed out for a table (0: none yet), read from the control database. */
async function lastId(table: string): Promise<number> {
  const row = await env.DB.prepare("SELECT last_id FROM id_sequences WHERE name = ?1").bind(table).first<{ last_id: number }>();
  return row?.last_id ?? 0;
}

/** The ids of a block, [first, first + count). */
const block = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);

describe("allocateIds", () => {
  it("hands out one id by default, the one after the last handed out", async () => {
    const last = await lastId("tags");
    const id = await allocateIds(env.DB, "tags");
    expect(id).toBe(last + 1);
    expect(await lastId("tags")).toBe(id);
  });

  it("starts a table that never had an id at 1", async () => {
    // A sequence name of its own, so that the test sees a sequence with no row yet.
    const fresh = unique("never-allocated") as AllocatedTable;
    expect(await allocateIds(env.DB, fresh, 3)).toBe(1);
    expect(await allocateIds(env.DB, fresh, 1)).toBe(4);
  });

  it("hands out consecutive, disjoint blocks: each one starts where the one before ended", async () => {
    const a = await allocateIds(env.DB, "lists", 5);
    const b = await allocateIds(env.DB, "lists", 3);
    const c = await allocateIds(env.DB, "lists", 1000);
    expect(a).toBeGreaterThanOrEqual(1);
    expect(b).toBe(a + 5);
    expect(c).toBe(b + 3);
    expect(await lastId("lists")).toBe(c + 999);
  });

  it("never gives two of 20 concurrent calls of different sizes the same id", async () => {
    const sizes = Array.from({ length: 20 }, (_, i) => ((i * 7) % 13) + 1);
    const before = await lastId("subscribers");
    const firsts = await Promise.all(sizes.map((size) => allocateIds(env.DB, "subscribers", size)));
    const ids = firsts.flatMap((first, i) => block(first, sizes[i]!));
    const total = sizes.reduce((sum, n) => sum + n, 0);
    expect(new Set(ids).size).toBe(total);
    // Nothing lost and nothing handed out twice: together the blocks are exactly the next `total` ids.
    expect([...ids].sort((x, y) => x - y)).toEqual(block(before + 1, total));
    expect(await lastId("subscribers")).toBe(before + total);
  });

  it("keeps a sequence per table: allocating for one table does not move another's", async () => {
    const before = Object.fromEntries(await Promise.all(ALLOCATED_TABLES.map(async (t) => [t, await lastId(t)] as const)));
    await allocateIds(env.DB, "custom_fields", 250);
    for (const table of ALLOCATED_TABLES) {
      expect(await lastId(table)).toBe(before[table]! + (table === "custom_fields" ? 250 : 0));
    }
    // And each table's next id follows its own last one, not another table's.
    expect(await allocateIds(env.DB, "segments")).toBe(before.segments! + 1);
    expect(await allocateIds(env.DB, "custom_fields")).toBe(before.custom_fields! + 251);
  });

  it.each([
    ["zero", 0],
    ["a negative count", -5],
    ["a fraction", 2.5],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a count past the safe integers", 2 ** 53],
  ])("refuses %s, handing out nothing", async (_, count) => {
    const before = await lastId("segments");
    await expect(allocateIds(env.DB, "segments", count)).rejects.toThrow(
      `allocateIds: count must be a positive integer, not ${count}`,
    );
    expect(await lastId("segments")).toBe(before);
  });
});

describe("idsInBlocks", () => {
  it("hands out ids from blocks, asking the control database once per block, none of them twice", async () => {
    const a = idsInBlocks(env.DB, "subscribers", 100);
    const b = idsInBlocks(env.DB, "subscribers", 100);
    const before = await lastId("subscribers");
    const taken: number[] = [];
    for (const [source, count] of [[a, 30], [b, 30], [a, 60], [a, 20], [b, 250], [a, 1]] as const) {
      const first = await source.take(count);
      taken.push(...block(first, count));
    }
    expect(new Set(taken).size).toBe(taken.length);
    // a: a block of 100 (30 + 60), then one of 100 (20 + 1); b: 100 (30), then 250 (a take past the block size).
    expect(await lastId("subscribers")).toBe(before + 100 + 100 + 100 + 250);
    expect(Math.min(...taken)).toBeGreaterThan(before);
  });
});
