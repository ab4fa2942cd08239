/**
 * Moving an account between shards (src/shards/move.ts): the copy is exact and keeps the ids, the source is
 * emptied, writes are frozen only around the switch, a crash at any step is resumed, exports either finish on
 * the old shard or restart on the new one, and a move that cannot finish rolls back.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { accountDirectory, accountMoves } from "../../src/db/control_schema";
import { claimJob } from "../../src/export/checkpoint";
import { openShard, shardForWriting } from "../../src/shards/directory";
import { allocateIds } from "../../src/shards/ids";
import { redriveMoves, requestMove, runMoveSlice, type MoveFaultPoint } from "../../src/shards/move";
import { MOVED_TABLES } from "../../src/shards/moved_tables";
import { createAccount, db, seedScenario, TEST_SHARDS, type TestShard } from "../fixtures";
import { createJob, exportedJson, handle, harness, jobRow, playQueue, runToEnd, type Harness } from "../export/driver";

/** Small pages, so that every table takes several pages and slices resume mid-table. */
const MOVE_SETTINGS = { MOVE_PAGE_ROWS: 5 };

/** Every row the account has on a shard, table by table, in key order: what a move must carry over exactly. */
async function dump(shard: string, accountId: number) {
  const d1 = openShard(env, shard).d1;
  const out: Record<string, unknown[]> = {};
  for (const table of MOVED_TABLES) {
    const { results } = await d1
      .prepare(`SELECT ${table.columns.map((c) => `t.${c}`).join(", ")} ${table.scope} ORDER BY ${table.key.map((c) => `t.${c}`).join(", ")}`)
      .bind(accountId)
      .all();
    out[table.name] = results;
  }
  return out;
}

const otherShard = (shard: TestShard): TestShard => (shard === "SHARD_0" ? "SHARD_1" : "SHARD_0");

const directoryOf = (accountId: number) =>
  db().select().from(accountDirectory).where(eq(accountDirectory.accountId, accountId)).get().then((r) => r!);

const moveRow = (moveId: number) =>
  db().select().from(accountMoves).where(eq(accountMoves.id, moveId)).get().then((r) => r!);

/** Plays the move's messages (and whatever else they send) until the queue is empty. */
async function runMove(h: Harness, moveId: number) {
  const { drive } = await moveRow(moveId);
  await playQueue(h, [{ kind: "move", moveId, drive }], 2_000);
  return moveRow(moveId);
}

/** A populated account (lists, fields, tags, 24 subscribers with tags, 3 segments) on one shard. */
async function populated(shard: TestShard) {
  const s = await seedScenario({ shard });
  return { ...s, shard, target: otherShard(shard) };
}

describe("moving an account to another shard", () => {
  it("copies every row with its id, points the directory at the target, and empties the source", async () => {
    const s = await populated("SHARD_0");
    const neighbour = await seedScenario({ shard: "SHARD_1" }); // already on the target: must not be touched
    const before = await dump(s.shard, s.account.id);
    const neighbourBefore = await dump("SHARD_1", neighbour.account.id);
    expect(before.subscribers).toHaveLength(24);
    expect(before.subscriber_tags!.length).toBeGreaterThan(10);

    const h = harness(MOVE_SETTINGS);
    const moveId = await requestMove(db(), s.account.id, s.target, h.clock.now);
    const move = await runMove(h, moveId);

    expect(move).toMatchObject({ state: "done", error: null, source: "SHARD_0", target: "SHARD_1" });
    expect(await directoryOf(s.account.id)).toMatchObject({ shard: "SHARD_1", writesFrozen: false });
    expect(await dump(s.target, s.account.id)).toEqual(before);
    expect(Object.values(await dump(s.shard, s.account.id)).flat()).toEqual([]);
    expect(await dump("SHARD_1", neighbour.account.id)).toEqual(neighbourBefore);
    // The verification the switch relied on: equal counts and checksums, table by table.
    for (const table of MOVED_TABLES) {
      const entry = move.verification[table.name]!;
      expect(entry.sourceRows, table.name).toBe(before[table.name]!.length);
      expect(entry.targetRows, table.name).toBe(entry.sourceRows);
      expect(entry.targetHash, table.name).toBe(entry.sourceHash);
    }
    expect(move.deletedRows).toBe(Object.values(before).flat().length);
  });

  it("serves the same export after the move as before it", async () => {
    const s = await populated("SHARD_1");
    const h = harness(MOVE_SETTINGS);
    const details = { segmentid: [s.segments.customers, s.segments.vip], customfields: ["all"], include_membership: true };
    const first = await createJob(h, s.account, details);
    await runToEnd(h, first);
    await runMove(h, await requestMove(db(), s.account.id, s.target, h.clock.now));
    const second = await createJob(h, s.account, details);
    await runToEnd(h, second);
    expect((await jobRow(second)).shard).toBe(s.target);
    expect((await exportedJson(second)).response.data).toEqual((await exportedJson(first)).response.data);
  });

  it("repairs the copy when the source changes while it is being copied", async () => {
    const s = await populated("SHARD_0");
    const source = openShard(env, s.shard).d1;
    const [a, b, c, d] = s.people;
    let pages = 0;
    // Halfway through the copy (writes are still open), the account changes in every way a client could.
    const h = harness(MOVE_SETTINGS, undefined, async (point) => {
      if (point !== "after-page" || ++pages !== 6) return;
      const newSubscriber = await allocateIds(env.DB, "subscribers");
      await source.batch([
        source.prepare("UPDATE lists SET name = 'Renamed' WHERE id = ?").bind(s.lists.newsletter),
        source.prepare("UPDATE subscribers SET status = 'bounced', custom_fields = '{}' WHERE id = ?").bind(a!.id),
        // b's email goes to a new subscriber, and b takes another: the copy holds b's old (list, email).
        source.prepare("UPDATE subscribers SET email = 'b-renamed@example.com' WHERE id = ?").bind(b!.id),
        source
          .prepare("INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date) VALUES (?, ?, ?, ?, 'active', '2025-03-01T00:00:00Z')")
          .bind(newSubscriber, s.account.id, b!.listId, b!.email),
        source.prepare("DELETE FROM subscribers WHERE id = ?").bind(c!.id),
        source.prepare("DELETE FROM tags WHERE id = ?").bind(s.tags.churned),
        source.prepare("INSERT OR IGNORE INTO subscriber_tags (subscriber_id, tag_id) VALUES (?, ?)").bind(d!.id, s.tags.vip),
        source.prepare("UPDATE segments SET name = 'Customers (renamed)' WHERE id = ?").bind(s.segments.customers),
      ]);
    });
    const moveId = await requestMove(db(), s.account.id, s.target, h.clock.now);
    const before = await dump(s.shard, s.account.id); // for the size check below, before the changes
    const move = await runMove(h, moveId);
    expect(pages).toBeGreaterThan(6);
    expect(move.state).toBe("done");
    const moved = await dump(s.target, s.account.id);
    expect(moved.subscribers).toHaveLength(before.subscribers!.length); // one deleted, one added
    expect(moved.lists).toContainEqual(expect.objectContaining({ id: s.lists.newsletter, name: "Renamed" }));
    expect(moved.subscribers).toContainEqual(expect.objectContaining({ id: a!.id, status: "bounced", custom_fields: "{}" }));
    expect(moved.subscribers).toContainEqual(expect.objectContaining({ id: b!.id, email: "b-renamed@example.com" }));
    expect(moved.subscribers).toContainEqual(expect.objectContaining({ email: b!.email, list_id: b!.listId }));
    expect(moved.subscribers!.some((row) => (row as { id: number }).id === c!.id)).toBe(false);
    expect(moved.tags!.some((row) => (row as { id: number }).id === s.tags.churned)).toBe(false);
    expect(moved.subscriber_tags).toContainEqual({ subscriber_id: d!.id, tag_id: s.tags.vip });
    expect(moved.segments).toContainEqual(expect.objectContaining({ id: s.segments.customers, name: "Customers (renamed)" }));
  });

  it("freezes the account's writes from the end of the copy to the switch; reads go on", async () => {
    const s = await populated("SHARD_1");
    const stopAt = (wanted: MoveFaultPoint) => (point: MoveFaultPoint) => {
      if (point === wanted) throw new Error(`stopped at ${wanted}`);
    };
    const copying = harness(MOVE_SETTINGS, undefined, stopAt("after-freeze"));
    const moveId = await requestMove(db(), s.account.id, s.target, copying.clock.now);
    // While copying, writes go to the source.
    expect((await shardForWriting(env, db(), s.account.id)).name).toBe(s.shard);
    await runMoveSlice(copying.deps, moveId, 0).catch(() => {});
    expect(await directoryOf(s.account.id)).toMatchObject({ shard: s.shard, writesFrozen: true });
    await expect(shardForWriting(env, db(), s.account.id)).rejects.toMatchObject({ code: "ACCOUNT_MOVING" });

    // The slice "died" holding its lease; once it runs out, the sweeper drives the move on.
    const h = harness(MOVE_SETTINGS);
    h.clock.now = copying.clock.now + 10 * 60_000;
    expect(await redriveMoves(h.deps)).toBe(1);
    const [message] = h.sent.splice(0).map((m) => m.body);
    await playQueue(h, [message!], 2_000);
    expect(await moveRow(moveId)).toMatchObject({ state: "done" });
    expect((await shardForWriting(env, db(), s.account.id)).name).toBe(s.target);
  });

  describe("a slice that dies anywhere is resumed, with the same result", () => {
    const points: Array<[MoveFaultPoint, number]> = [
      ["after-page", 3],
      ["after-page", 20],
      ["before-checkpoint", 1],
      ["after-freeze", 1],
      ["before-switch", 1],
      ["after-switch", 1],
      ["after-fence", 1],
    ];
    it.each(points)("dies at %s (occurrence %i)", async (point, occurrence) => {
      const s = await populated("SHARD_0");
      const before = await dump(s.shard, s.account.id);
      let seen = 0;
      let died = false;
      // A slice budget of 0 makes every page its own slice, so "before-checkpoint" comes up too.
      const h = harness({ ...MOVE_SETTINGS, MOVE_SLICE_BUDGET_MS: point === "before-checkpoint" ? 0 : 60_000 }, undefined, (at) => {
        if (at === point && ++seen === occurrence && !died) {
          died = true;
          throw new Error(`the isolate died at ${point}`);
        }
      });
      const moveId = await requestMove(db(), s.account.id, s.target, h.clock.now);
      // The first slice dies without any cleanup (a killed isolate): its lease is left to run out.
      await expect(runMoveSlice(h.deps, moveId, 0)).rejects.toThrow(`the isolate died at ${point}`);
      expect(died).toBe(true);
      h.clock.now += 10 * 60_000;
      expect(await redriveMoves(h.deps)).toBe(1);
      await playQueue(h, h.sent.splice(0).map((m) => m.body), 2_000);

      expect(await moveRow(moveId)).toMatchObject({ state: "done" });
      expect(await directoryOf(s.account.id)).toMatchObject({ shard: s.target, writesFrozen: false });
      expect(await dump(s.target, s.account.id)).toEqual(before);
      expect(Object.values(await dump(s.shard, s.account.id)).flat()).toEqual([]);
    });
  });

  it("lets an export slice that reads the source finish before deleting it, then restarts the export on the target", async () => {
    const s = await populated("SHARD_0");
    const h = harness({ ...MOVE_SETTINGS, EXPORT_SLICE_MAX_PAGES: 1 });
    const jobId = await createJob(h, s.account, { segmentid: [s.segments.customers, s.segments.vip, s.segments.acme] });
    // A slice on the source claims the job and is still running (it holds a live lease).
    const job = await jobRow(jobId);
    const claim = await claimJob(db(), jobId, job.drive, h.clock.now, 60_000);
    expect(claim.claimed).toBe(true);

    const moveId = await requestMove(db(), s.account.id, s.target, h.clock.now);
    // The move keeps polling (on the queue's clock) for as long as the lease is live: play a few rounds only.
    const { drive } = await moveRow(moveId);
    await expect(playQueue(h, [{ kind: "move", moveId, drive }], 40)).rejects.toThrow("did not empty");
    // Switched, but draining: the source is intact while the slice may still read it.
    expect(await moveRow(moveId)).toMatchObject({ state: "draining" });
    expect(await directoryOf(s.account.id)).toMatchObject({ shard: s.target });
    expect((await dump(s.shard, s.account.id)).subscribers).toHaveLength(24);

    // The lease runs out (the slice finished or died): the move fences the job and deletes the source.
    h.clock.now += 61_000;
    await runMove(h, moveId);
    expect(await moveRow(moveId)).toMatchObject({ state: "done" });
    expect((await jobRow(jobId)).version).toBe(claim.claimed ? claim.job.version + 1 : -1);

    // The job's next slice finds the account on the target and starts over there; the file is whole: the
    // same as a new export of the same segments on the target.
    h.clock.now += 1_000;
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", shard: s.target });
    const fresh = await createJob(h, s.account, { segmentid: [s.segments.customers, s.segments.vip, s.segments.acme] });
    await runToEnd(h, fresh);
    const file = (await exportedJson(jobId)).response.data;
    expect(file.count).toBeGreaterThan(7); // more than the one page read before the move
    expect(file).toEqual((await exportedJson(fresh)).response.data);
  });

  it("never mixes shards in one file: an export whose account moved mid-way restarts from the first row", async () => {
    const s = await populated("SHARD_1");
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 });
    const jobId = await createJob(h, s.account, { segmentid: [s.segments.customers, s.segments.vip, s.segments.acme] });
    // One slice (one 7-row page) on the source, which hands over to a continuation.
    await handle(h, { kind: "export", jobId, drive: 0 });
    expect(h.sent.splice(0).map((m) => m.body.kind)).toEqual(["export"]);
    expect((await jobRow(jobId)).cursor).toBeGreaterThan(0);

    // The account's rows reach the other shard in a different state (here by hand, as if changed after a
    // move): the earliest subscriber's email differs there. A resumed export would miss that change.
    const copy = await dump(s.shard, s.account.id);
    const target = openShard(env, s.target).d1;
    for (const table of MOVED_TABLES) {
      const rows = copy[table.name] as Record<string, unknown>[];
      for (const row of rows) {
        const columns = Object.keys(row);
        await target
          .prepare(`INSERT INTO ${table.name} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`)
          .bind(...columns.map((c) => row[c]))
          .run();
      }
    }
    const first = s.people[0]!;
    await target.prepare("UPDATE subscribers SET email = 'first-on-target@example.com' WHERE id = ?").bind(first.id).run();
    await db().update(accountDirectory).set({ shard: s.target }).where(eq(accountDirectory.accountId, s.account.id));

    await runToEnd(h, jobId);
    const file = (await exportedJson(jobId)).response.data;
    const emails = file.subscribers.map((r) => r.emailaddress);
    expect(emails).toContain("first-on-target@example.com");
    expect(emails).not.toContain(first.email);
    expect(file.count).toBe(new Set(emails).size);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", shard: s.target });
  });

  it("rolls back a move that keeps failing before the switch: the copy is deleted and writes unfrozen", async () => {
    const s = await populated("SHARD_0");
    const before = await dump(s.shard, s.account.id);
    const h = harness({ ...MOVE_SETTINGS, EXPORT_MAX_ATTEMPTS: 3 }, undefined, async (point) => {
      const move = await db().select().from(accountMoves).where(eq(accountMoves.accountId, s.account.id)).get();
      if (point === "after-page" && move?.state === "reconciling") throw new Error("the target keeps timing out");
    });
    const moveId = await requestMove(db(), s.account.id, s.target, h.clock.now);
    const move = await runMove(h, moveId);
    expect(move).toMatchObject({ state: "failed", error: "the target keeps timing out" });
    expect(await directoryOf(s.account.id)).toMatchObject({ shard: s.shard, writesFrozen: false });
    expect(Object.values(await dump(s.target, s.account.id)).flat()).toEqual([]);
    expect(await dump(s.shard, s.account.id)).toEqual(before);
    // A new move of the account may start.
    await expect(requestMove(db(), s.account.id, s.target, h.clock.now)).resolves.toBeGreaterThan(moveId);
  });

  it("refuses a move to the account's own shard, to an unregistered shard, and a second move at once", async () => {
    const account = await createAccount(undefined, { shard: "SHARD_0" });
    await expect(requestMove(db(), account.id, "SHARD_0", Date.now())).rejects.toThrow("already on SHARD_0");
    await expect(requestMove(db(), account.id, "SHARD_9", Date.now())).rejects.toThrow("SHARD_9 is not a registered shard");
    await requestMove(db(), account.id, "SHARD_1", Date.now());
    await expect(requestMove(db(), account.id, "SHARD_1", Date.now())).rejects.toThrow("already being moved");
    expect(TEST_SHARDS).toContain("SHARD_1");
  });
});
