/**
 * Routing (src/shards/directory.ts): an account's contacts are read from the shard its directory entry names,
 * opened by binding name, and from nowhere else. A name this worker has no D1 binding for is the operator's
 * configuration error: it is refused (SHARD_UNAVAILABLE), never answered from another shard; the API answers
 * 503 without naming the shard, and an export waits for the repair instead of failing.
 *
 * "SHARD_7" is a well-formed shard name with no binding in the tests' workers (vitest.config.ts binds SHARD_0
 * and SHARD_1). Tests that need it registered in `shards` register it for themselves and remove it again.
 */
import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { afterEach, describe, expect, it, vi } from "vitest";
import { accountDirectory, shards } from "../../src/db/control_schema";
import { lists } from "../../src/db/shard_schema";
import { DomainError } from "../../src/errors";
import { OPERATOR_RETRY_SECONDS } from "../../src/export/consumer";
import { openShard, shardOfAccount } from "../../src/shards/directory";
import { allocateIds } from "../../src/shards/ids";
import { addSubscriber, callApi, createAccount, createList, createSegment, dataOf, db, request, unique, type TestShard, unplacedAccount } from "../fixtures";
import { EMAIL_NOTIFY, exportJobCount } from "../api/helpers";
import { createJob, exportedJson, handle, harness, jobRow, runToEnd } from "../export/driver";

const UNBOUND = "SHARD_7";

afterEach(() => vi.restoreAllMocks());

/** What `fn` threw, for checking a DomainError's code and message (fails the test if nothing was thrown). */
async function thrownBy(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw, but nothing was thrown");
}


const pointAccountAt = (accountId: number, shard: string) =>
  db().update(accountDirectory).set({ shard, updatedAt: Date.now() }).where(eq(accountDirectory.accountId, accountId));

/**
 * Runs `fn` with SHARD_7 registered in the directory (reserved, so that no placement picks it), then puts every
 * account it was given back on `home` and unregisters it, so that the rest of the suite sees two shards again.
 * (The directory's foreign key keeps the shard row while an account points at it.)
 */
async function withUnboundShardRegistered(accountsToRestore: Array<{ id: number; home: TestShard }>, fn: () => Promise<void>) {
  await db().insert(shards).values({ name: UNBOUND, placement: "reserved" }).onConflictDoNothing();
  try {
    await fn();
  } finally {
    for (const { id, home } of accountsToRestore) await pointAccountAt(id, home);
    await db().delete(shards).where(eq(shards.name, UNBOUND));
  }
}

describe("openShard", () => {
  it.each(["SHARD_0", "SHARD_1"] as const)("opens %s on its own binding: a row written through it is in that database only", async (name) => {
    const shard = openShard(env, name);
    expect(shard.name).toBe(name);
    const id = await allocateIds(env.DB, "lists");
    await shard.db.insert(lists).values({ id, accountId: 0, name: unique("routing-probe") });
    const other = name === "SHARD_0" ? "SHARD_1" : "SHARD_0";
    const on = async (binding: TestShard) => drizzle(env[binding]).select().from(lists).where(eq(lists.id, id)).get();
    expect(await on(name)).toMatchObject({ id, accountId: 0 });
    expect(await on(other)).toBeUndefined();
    await shard.db.delete(lists).where(eq(lists.id, id));
  });

  it("opens a shard by its binding's name, whatever database the binding holds", () => {
    // Names are binding names, not positions: an env that binds SHARD_7 to SHARD_1's database routes there.
    const rebound = { ...env, SHARD_7: env.SHARD_1 } as unknown as Env;
    expect(openShard(rebound, UNBOUND).d1).toBe(env.SHARD_1);
  });

  it("refuses a well-formed shard name with no binding, naming the binding to add, instead of using another shard", async () => {
    const error = await thrownBy(() => openShard(env, UNBOUND));
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: "SHARD_UNAVAILABLE", retryable: true, operator: true });
    expect((error as Error).message).toContain(`data shard ${UNBOUND} has no D1 binding in this worker`);
    expect((error as Error).message).toContain(`binding = "${UNBOUND}"`);
  });

  it("refuses a binding under a shard name that is not a D1 database", async () => {
    const miswired = { ...env, SHARD_5: env.EXPORTS } as unknown as Env;
    expect(await thrownBy(() => openShard(miswired, "SHARD_5"))).toMatchObject({ code: "SHARD_UNAVAILABLE" });
  });

  // "DB" is a real D1 binding (the control database): only the shard-name check keeps it from being opened.
  it.each(["DB", "shard_0", "SHARD_", "SHARD_0 ", " SHARD_0", "SHARD_x", "SHARD_12345", "", "EXPORTS", "__proto__"])(
    "refuses %j, which is not a shard name, even where a binding of that name exists",
    async (name) => {
      const error = await thrownBy(() => openShard(env, name));
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ code: "SHARD_UNAVAILABLE", message: `"${name}" is not a data shard name (SHARD_<number>)` });
    },
  );
});

describe("shardOfAccount", () => {
  it.each(["SHARD_0", "SHARD_1"] as const)("opens the shard of an account placed on %s", async (home) => {
    const account = await createAccount(undefined, { shard: home });
    const shard = await shardOfAccount(env, db(), account.id);
    expect(shard.name).toBe(home);
    expect(shard.d1).toBe(env[home]);
  });

  it("follows the directory: an account whose entry changes is read from the new shard", async () => {
    const account = await createAccount(undefined, { shard: "SHARD_0" });
    await pointAccountAt(account.id, "SHARD_1");
    try {
      expect((await shardOfAccount(env, db(), account.id)).name).toBe("SHARD_1");
    } finally {
      await pointAccountAt(account.id, "SHARD_0");
    }
  });

  it("refuses an account with no directory entry, rather than guessing a shard", async () => {
    const accountId = await unplacedAccount();
    const error = await thrownBy(() => shardOfAccount(env, db(), accountId));
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({
      code: "SHARD_UNAVAILABLE",
      message: `account ${accountId} has no entry in the shard directory`,
    });
  });

  it("refuses an account whose entry names a shard with no binding", async () => {
    const account = await createAccount(undefined, { shard: "SHARD_0" });
    await withUnboundShardRegistered([{ id: account.id, home: "SHARD_0" }], async () => {
      await pointAccountAt(account.id, UNBOUND);
      const error = await thrownBy(() => shardOfAccount(env, db(), account.id));
      expect(error).toMatchObject({ code: "SHARD_UNAVAILABLE", message: expect.stringContaining(UNBOUND) });
    });
  });
});

/** POSTs like callApi, but keeps the response's headers. */
async function post(body: unknown) {
  const response = await exports.default.fetch("https://exports.test/apijson.php", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as any };
}

describe("the API, for an account whose shard has no binding", () => {
  /** A 503 the client can only wait out: Retry-After, the ERROR envelope, and nothing of the configuration. */
  function expectUnavailable(response: Awaited<ReturnType<typeof post>>) {
    expect(response.status).toBe(503);
    expect(response.retryAfter).toMatch(/^[1-9]\d*$/);
    expect(response.body).toEqual({ response: { status: "ERROR", errormessage: expect.any(String) } });
    const message: string = response.body.response.errormessage;
    expect(message).toMatch(/try again later/);
    expect(message).not.toContain(UNBOUND);
    expect(message).not.toMatch(/binding/i);
    expect(message).not.toMatch(/shard/i);
    return message;
  }

  it("answers Segments/GetSegments with 503 and Retry-After, logs the details under the reference, and recovers once repaired", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const account = await createAccount(undefined, { shard: "SHARD_0" });
    const segment = await createSegment(account.id, { match: "all", rules: [] }, "Everyone");
    await withUnboundShardRegistered([{ id: account.id, home: "SHARD_0" }], async () => {
      await pointAccountAt(account.id, UNBOUND);
      const message = expectUnavailable(await post(request(account, "Segments", "GetSegments")));
      // The operator finds what the client was not told, by the reference the client was given.
      const reference = /reference ([0-9a-f-]{36})/.exec(message)?.[1];
      expect(reference).toBeDefined();
      const line = logged.mock.calls.map((args) => args.join(" ")).find((text) => text.includes(reference!));
      expect(line).toContain("SHARD_UNAVAILABLE");
      expect(line).toContain(UNBOUND);
    });
    // Back on its shard, the same call answers from it: the 503 was the configuration, not the account.
    const rows = dataOf<Array<{ segmentid: string }>>(await callApi(request(account, "Segments", "GetSegments")));
    expect(rows.map((r) => r.segmentid)).toEqual([String(segment)]);
  });

  it("answers Segments/GetSegmentSubscribersAsync with 503 and Retry-After, and creates no export job", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const account = await createAccount(undefined, { shard: "SHARD_1" });
    const list = await createList(account.id);
    await addSubscriber(account.id, list, { email: "waiting@example.com" });
    const segment = await createSegment(account.id, { match: "all", rules: [] }, "Everyone");
    await withUnboundShardRegistered([{ id: account.id, home: "SHARD_1" }], async () => {
      await pointAccountAt(account.id, UNBOUND);
      const details = { segmentid: [segment], notify: EMAIL_NOTIFY };
      expectUnavailable(await post(request(account, "Segments", "GetSegmentSubscribersAsync", details)));
      expect(await exportJobCount(account.id)).toBe(0);
    });
  });

  it("still answers Authentication/APITest, which reads no contacts", async () => {
    const account = await createAccount(undefined, { shard: "SHARD_0" });
    await withUnboundShardRegistered([{ id: account.id, home: "SHARD_0" }], async () => {
      await pointAccountAt(account.id, UNBOUND);
      const response = await callApi(request(account, "Authentication", "APITest"));
      expect(response.status).toBe(200);
      expect(dataOf(response)).toEqual({ authenticated: true, username: account.username });
    });
  });
});

describe("an export whose account's shard loses its binding", () => {
  /** An account on SHARD_0 with 20 subscribers (three pages of 7) and a segment of them all. */
  async function exportable() {
    const account = await createAccount(undefined, { shard: "SHARD_0" });
    const list = await createList(account.id);
    const emails: string[] = [];
    for (let i = 0; i < 20; i++) {
      const email = `unbound${String(i).padStart(2, "0")}@example.com`;
      await addSubscriber(account.id, list, { email });
      emails.push(email);
    }
    const segment = await createSegment(account.id, { match: "all", rules: [] }, "Everyone");
    return { account, segment, emails };
  }

  /**
   * The slice could not run and the job waits for the operator: no failure is counted, a fresh message comes
   * back in OPERATOR_RETRY_SECONDS (a retried one would end in the dead-letter queue), nobody is notified.
   */
  async function expectWaiting(jobId: string, h: ReturnType<typeof harness>, action: unknown) {
    expect(action).toEqual({ action: "ack" });
    const job = await jobRow(jobId);
    expect(["queued", "running"]).toContain(job.state);
    expect(job).toMatchObject({ errorMessage: null, completedAt: null, sliceFailures: 0, notifyState: "pending" });
    expect(job.dueAt).toBe(h.clock.now + OPERATOR_RETRY_SECONDS * 1000);
    expect(h.sent.splice(0)).toEqual([
      { body: { kind: "export", jobId, drive: job.drive }, options: { delaySeconds: OPERATOR_RETRY_SECONDS } },
    ]);
    expect(h.webhooks).toEqual([]);
  }

  it("is retried, not failed, when the shard is unbound before its first slice; and completes once repaired", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const h = harness();
    const { account, segment, emails } = await exportable();
    const jobId = await createJob(h, account, { segmentid: [segment] });
    await withUnboundShardRegistered([{ id: account.id, home: "SHARD_0" }], async () => {
      await pointAccountAt(account.id, UNBOUND);
      await expectWaiting(jobId, h, await handle(h, { kind: "export", jobId, drive: 0 }));
    });
    await runToEnd(h, jobId);
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "complete", shard: "SHARD_0", processedCount: emails.length });
    const file = await exportedJson(jobId);
    expect(file.response.data.subscribers.map((s) => s.emailaddress)).toEqual(emails);
    expect(file.response.data.count).toBe(emails.length);
  });

  it("waits as long as the binding is missing: many more rounds than EXPORT_MAX_ATTEMPTS never fail the job", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const h = harness({ EXPORT_MAX_ATTEMPTS: 2 });
    const { account, segment, emails } = await exportable();
    const jobId = await createJob(h, account, { segmentid: [segment] });
    await withUnboundShardRegistered([{ id: account.id, home: "SHARD_0" }], async () => {
      await pointAccountAt(account.id, UNBOUND);
      for (let round = 0; round < 6; round++) {
        await expectWaiting(jobId, h, await handle(h, { kind: "export", jobId, drive: 0 }));
        h.clock.now += OPERATOR_RETRY_SECONDS * 1000;
      }
    });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", processedCount: emails.length });
  });

  it("is retried, not failed, when the shard is unbound between two slices; and completes with every row once, once repaired", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 });
    const { account, segment, emails } = await exportable();
    const jobId = await createJob(h, account, { segmentid: [segment] });
    // The first slice reads one page and hands over to a continuation.
    expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" });
    const [continuation] = h.sent.splice(0);
    expect(continuation?.body).toEqual({ kind: "export", jobId, drive: 1 });
    expect((await jobRow(jobId)).cursorCount).toBe(7);

    await withUnboundShardRegistered([{ id: account.id, home: "SHARD_0" }], async () => {
      await pointAccountAt(account.id, UNBOUND);
      await expectWaiting(jobId, h, await handle(h, continuation!.body));
    });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", shard: "SHARD_0", processedCount: emails.length });
    const file = await exportedJson(jobId);
    expect(file.response.data.subscribers.map((s) => s.emailaddress)).toEqual(emails);
  });
});
