/**
 * Placement (src/shards/placement.ts): a new account goes to the shard it is given, or else to the open shard
 * holding the fewest contacts. `chooseShard` is the rule alone (pure); `placeAccount` applies it to the
 * directory on the pool's D1, where the test shards SHARD_0 and SHARD_1 are registered as open.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { accountDirectory, shards } from "../../src/db/control_schema";
import { DomainError } from "../../src/errors";
import { chooseShard, placeAccount, shardContacts } from "../../src/shards/placement";
import { allocateIds } from "../../src/shards/ids";
import { createAccount, createList, db, type TestShard, unplacedAccount } from "../fixtures";

type Candidate = Parameters<typeof chooseShard>[0][number];
const open = (name: string, contacts: number): Candidate => ({ name, placement: "open", contacts });
const reserved = (name: string, contacts: number): Candidate => ({ name, placement: "reserved", contacts });

describe("chooseShard", () => {
  it("chooses the open shard with the fewest contacts, wherever it is in the list", () => {
    expect(chooseShard([open("SHARD_0", 500), open("SHARD_1", 20), open("SHARD_2", 300)])).toBe("SHARD_1");
    expect(chooseShard([open("SHARD_0", 5), open("SHARD_1", 20), open("SHARD_2", 300)])).toBe("SHARD_0");
    expect(chooseShard([open("SHARD_0", 500), open("SHARD_1", 20), open("SHARD_2", 3)])).toBe("SHARD_2");
  });

  it("breaks a tie on contacts by name, the first by name winning, whatever the order given", () => {
    expect(chooseShard([open("SHARD_3", 10), open("SHARD_1", 10), open("SHARD_2", 10)])).toBe("SHARD_1");
    expect(chooseShard([open("SHARD_2", 10), open("SHARD_3", 10), open("SHARD_0", 99)])).toBe("SHARD_2");
  });

  it("never chooses a reserved shard on its own, however empty it is", () => {
    expect(chooseShard([reserved("SHARD_0", 0), open("SHARD_1", 1_000_000), reserved("SHARD_2", 0)])).toBe("SHARD_1");
  });

  it("chooses a requested shard, reserved or open, whatever the load", () => {
    const candidates = [reserved("SHARD_0", 0), open("SHARD_1", 1_000_000), open("SHARD_2", 0)];
    expect(chooseShard(candidates, "SHARD_0")).toBe("SHARD_0");
    expect(chooseShard(candidates, "SHARD_1")).toBe("SHARD_1");
  });

  it("refuses a requested shard that is not registered, listing the registered ones", () => {
    const candidates = [open("SHARD_0", 0), reserved("SHARD_1", 0)];
    expect(() => chooseShard(candidates, "SHARD_9")).toThrow(
      "shard SHARD_9 is not in the directory's shards (registered: SHARD_0, SHARD_1)",
    );
    expect(() => chooseShard([], "SHARD_0")).toThrow("shard SHARD_0 is not in the directory's shards (registered: none)");
  });

  it("refuses to choose when no shard is open", () => {
    const message = "no open shard to place the account on: register one (docs/shards.md)";
    expect(() => chooseShard([reserved("SHARD_0", 0), reserved("SHARD_1", 0)])).toThrow(message);
    expect(() => chooseShard([])).toThrow(message);
  });
});


const directoryEntry = (accountId: number) =>
  db().select().from(accountDirectory).where(eq(accountDirectory.accountId, accountId)).get();

/** Both shards' subscribers, counted here (other test files may have written some). */
async function contactsOnEachShard(): Promise<Record<TestShard, number>> {
  const count = async (binding: TestShard) =>
    Number((await env[binding].prepare("SELECT count(*) AS n FROM subscribers").first<{ n: number }>())!.n);
  return { SHARD_0: await count("SHARD_0"), SHARD_1: await count("SHARD_1") };
}

/** Adds `n` subscribers to `shard` in one statement (a list of their own, ids from the allocator). */
async function addContacts(shard: TestShard, n: number) {
  const owner = await createAccount(undefined, { shard });
  const list = await createList(owner.id);
  const first = await allocateIds(env.DB, "subscribers", n);
  await env[shard]
    .prepare(
      `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?1)
       INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date)
       SELECT ?2 + i, ?3, ?4, 'filler' || i || '@example.com', 'active', '2025-01-01T00:00:00Z' FROM seq`,
    )
    .bind(n, first, owner.id, list)
    .run();
}

describe("placeAccount", () => {
  it("writes the requested shard into the directory", async () => {
    for (const shard of ["SHARD_1", "SHARD_0"] as const) {
      const accountId = await unplacedAccount();
      expect(await placeAccount(env, db(), accountId, shard)).toBe(shard);
      expect(await directoryEntry(accountId)).toMatchObject({ accountId, shard, writesFrozen: false });
    }
  });

  it("counts a shard's contacts as its subscribers", async () => {
    expect(await shardContacts(env, "SHARD_0")).toBe((await contactsOnEachShard()).SHARD_0);
    expect(await shardContacts(env, "SHARD_1")).toBe((await contactsOnEachShard()).SHARD_1);
  });

  it("without a request, places on the open shard with fewer contacts, and follows the load when it changes", async () => {
    const before = await contactsOnEachShard();
    const lighter: TestShard = before.SHARD_1 < before.SHARD_0 ? "SHARD_1" : "SHARD_0"; // a tie goes to SHARD_0
    const first = await unplacedAccount();
    expect(await placeAccount(env, db(), first)).toBe(lighter);
    expect(await directoryEntry(first)).toMatchObject({ shard: lighter });

    // Make the lighter shard the heavier one: the next account goes to the other.
    const heavier: TestShard = lighter === "SHARD_0" ? "SHARD_1" : "SHARD_0";
    await addContacts(lighter, before[heavier] - before[lighter] + 5);
    const after = await contactsOnEachShard();
    expect(after[lighter]).toBeGreaterThan(after[heavier]);
    const second = await unplacedAccount();
    expect(await placeAccount(env, db(), second)).toBe(heavier);
    expect(await directoryEntry(second)).toMatchObject({ shard: heavier });
  });

  it("refuses to place an account twice, leaving its entry where it was rather than moving it", async () => {
    const accountId = await unplacedAccount();
    await placeAccount(env, db(), accountId, "SHARD_0");
    const entry = await directoryEntry(accountId);
    await expect(placeAccount(env, db(), accountId, "SHARD_1")).rejects.toThrow();
    await expect(placeAccount(env, db(), accountId)).rejects.toThrow();
    expect(await directoryEntry(accountId)).toEqual(entry);
  });

  it("refuses a requested shard that is not registered, listing the registered ones, and writes nothing", async () => {
    const accountId = await unplacedAccount();
    const refusal = placeAccount(env, db(), accountId, "SHARD_9");
    await expect(refusal).rejects.toBeInstanceOf(DomainError);
    await expect(refusal).rejects.toMatchObject({
      code: "SHARD_UNAVAILABLE",
      message: expect.stringMatching(/^shard SHARD_9 is not in the directory's shards \(registered: .*SHARD_0, SHARD_1/),
    });
    expect(await directoryEntry(accountId)).toBeUndefined();
  });

  it("refuses a registered shard this worker has no binding for, before the account points at it", async () => {
    // Registered but unbound: a deploy that registered a shard before binding it. Reserved, so that no other
    // placement picks it meanwhile; removed again at the end.
    await db().insert(shards).values({ name: "SHARD_7", placement: "reserved" }).onConflictDoNothing();
    try {
      const accountId = await unplacedAccount();
      await expect(placeAccount(env, db(), accountId, "SHARD_7")).rejects.toMatchObject({
        code: "SHARD_UNAVAILABLE",
        message: expect.stringContaining("SHARD_7 has no D1 binding"),
      });
      expect(await directoryEntry(accountId)).toBeUndefined();
    } finally {
      await db().delete(shards).where(eq(shards.name, "SHARD_7"));
    }
  });
});
