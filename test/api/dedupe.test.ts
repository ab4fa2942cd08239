/**
 * Identical requests and idempotency keys for GetSegmentSubscribersAsync.
 *
 * - An identical request from the same account while its job is queued or running gets that job back,
 *   `{jobid, status: <its state>, deduplicated: true}`, instead of a second job. A new job answers
 *   `{jobid, status: "queued", deduplicated: false}`.
 * - `details.idempotency_key` (1..200 characters): the same key within 24 h returns the same job whatever its
 *   state; the same key with other details is a 409. Keys are per account and expire after 24 h.
 *
 * Most tests use a recording queue so that jobs stay in the state the test puts them in.
 */
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { deleteExpiredIdempotencyKeys, IDEMPOTENCY_KEY_TTL_MS } from "../../src/export/admission";
import { canonicalRequest, requestHash } from "../../src/export/request_hash";
import { exportJobs, idempotencyKeys } from "../../src/db/schema";
import { callApi, dataOf, db } from "../fixtures";
import {
  asyncRequest,
  callWith,
  jobRows,
  keyRows,
  recordingQueue,
  setJobState,
  smallAccount,
  type CallResult,
  type SmallAccount,
} from "./admission_helpers";
import { EMAIL_NOTIFY, expectError, exportJobCount } from "./helpers";

interface Accepted {
  jobid: string;
  status: string;
  deduplicated: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const conflictMessage = (jobid: string) =>
  `details.idempotency_key: this key was used in the last 24 hours for a request with different details (job ${jobid}). ` +
  "Send the same details to get that job, or use a new key.";

let s: SmallAccount;
let q: ReturnType<typeof recordingQueue>;
beforeEach(async () => {
  s = await smallAccount();
  q = recordingQueue();
});

const send = (details: Record<string, unknown> = {}, who: SmallAccount = s) => callWith<Accepted>({ EXPORT_QUEUE: q.queue }, asyncRequest(who, details));
const accepted = async (details: Record<string, unknown> = {}, who: SmallAccount = s) => {
  const res = await send(details, who);
  expect(res.status).toBe(200);
  return dataOf(res);
};

describe("a new job", () => {
  it('answers {jobid, status: "queued", deduplicated: false} through the real API, and stores the request hash', async () => {
    const res = await callApi<Accepted>(asyncRequest(s));
    expect(res.status).toBe(200);
    const data = dataOf(res);
    expect(data).toEqual({ jobid: expect.stringMatching(UUID), status: "queued", deduplicated: false });
    const [job] = await jobRows(s.account.id);
    expect(job!.id).toBe(data.jobid);
    expect(job!.requestHash).toBe(
      await requestHash(canonicalRequest(s.account.id, job!.spec as any, "email", EMAIL_NOTIFY.value)),
    );
  });
});

describe("identical requests while the job is active", () => {
  it("get the same job back with deduplicated: true; one job, one queue message", async () => {
    const first = await accepted();
    const second = await accepted();
    expect(first).toEqual({ jobid: expect.stringMatching(UUID), status: "queued", deduplicated: false });
    expect(second).toEqual({ jobid: first.jobid, status: "queued", deduplicated: true });
    expect(await exportJobCount(s.account.id)).toBe(1);
    expect(q.sent).toEqual([{ kind: "export", jobId: first.jobid, drive: 0 }]);
  });

  it("answer with the job's current state", async () => {
    const first = await accepted();
    await setJobState(first.jobid, "running");
    expect(await accepted()).toEqual({ jobid: first.jobid, status: "running", deduplicated: true });
  });

  it("match whatever the spelling: segment order and duplicates, id types, option case, field name case, defaults", async () => {
    const first = await accepted({
      segmentid: [s.segments.all, s.segments.vip],
      status: "active",
      include_membership: true,
      customfields: ["First Name", "Company"],
    });
    const same = await accepted({
      segmentid: [String(s.segments.vip), s.segments.all, s.segments.vip],
      status: "ACTIVE",
      include_membership: "yes",
      customfields: ["first name", "COMPANY"],
      format: "JSON",
      notify: { type: "EMAIL", value: EMAIL_NOTIFY.value },
    });
    expect(same).toEqual({ jobid: first.jobid, status: "queued", deduplicated: true });
    expect(await exportJobCount(s.account.id)).toBe(1);
  });

  it('match "all" custom fields and the same fields named in the same order', async () => {
    const first = await accepted({ customfields: "all" });
    expect(await accepted({ customfields: ["First Name", "Company"] })).toEqual({ jobid: first.jobid, status: "queued", deduplicated: true });
  });

  it.each<[string, (s: SmallAccount) => Record<string, unknown>]>([
    ["another segment set", (s) => ({ segmentid: [s.segments.vip] })],
    ["another status", () => ({ status: "active" })],
    ["include_membership", () => ({ include_membership: true })],
    ["other custom fields", () => ({ customfields: ["Company"] })],
    ["the same custom fields in another order", () => ({ customfields: ["Company", "First Name"] })],
    ["another format", () => ({ format: "csv" })],
    ["another notify target", () => ({ notify: { type: "email", value: "someone.else@example.com" } })],
    ["another notify type", () => ({ notify: { type: "webhook", value: "https://hooks.example.com/x" } })],
  ])("do not match a request with %s: that is a new job", async (_, change) => {
    const base = { customfields: ["First Name", "Company"] };
    const first = await accepted(base);
    const other = await accepted({ ...base, ...change(s) });
    expect(other).toEqual({ jobid: expect.stringMatching(UUID), status: "queued", deduplicated: false });
    expect(other.jobid).not.toBe(first.jobid);
    expect(await exportJobCount(s.account.id)).toBe(2);
  });

  it.each(["complete", "failed"] as const)("start a new job once the earlier one is %s", async (state) => {
    const first = await accepted();
    await setJobState(first.jobid, state);
    const second = await accepted();
    expect(second).toEqual({ jobid: expect.stringMatching(UUID), status: "queued", deduplicated: false });
    expect(second.jobid).not.toBe(first.jobid);
  });

  it("are per account: the same details from another account are another job", async () => {
    const other = await smallAccount();
    const mine = await accepted();
    const theirs = await accepted({}, other);
    expect(theirs.deduplicated).toBe(false);
    expect(theirs.jobid).not.toBe(mine.jobid);
  });

  it("are answered even at the cap: dedupe comes before the cap", async () => {
    const first = await accepted();
    for (let n = 2; n <= 5; n++) await accepted({ notify: { type: "email", value: `export${n}@example.com` } });
    expect(await accepted()).toEqual({ jobid: first.jobid, status: "queued", deduplicated: true });
  });

  it("sent 10 at once create one job, and all 10 answers name it", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => send({ customfields: ["Company"] })));
    const data = results.map((r) => dataOf(r));
    const jobids = new Set(data.map((d) => d.jobid));
    expect(jobids.size).toBe(1);
    expect(data.filter((d) => !d.deduplicated)).toHaveLength(1);
    expect(await exportJobCount(s.account.id)).toBe(1);
    expect(q.sent).toHaveLength(1);
  });
});

describe("details.idempotency_key", () => {
  it("returns the same job after it completed, with its state, and writes nothing", async () => {
    const first = await accepted({ idempotency_key: "order-1" });
    expect(first.deduplicated).toBe(false);
    await setJobState(first.jobid, "complete");
    expect(await accepted({ idempotency_key: "order-1" })).toEqual({ jobid: first.jobid, status: "complete", deduplicated: true });
    expect(await exportJobCount(s.account.id)).toBe(1);
    expect(q.sent).toHaveLength(1);
  });

  it("returns a failed job as failed", async () => {
    const first = await accepted({ idempotency_key: "order-2" });
    await setJobState(first.jobid, "failed");
    expect(await accepted({ idempotency_key: "order-2" })).toEqual({ jobid: first.jobid, status: "failed", deduplicated: true });
  });

  it("with different details is a 409 naming the field, and writes nothing", async () => {
    const first = await accepted({ idempotency_key: "order-3" });
    const keysBefore = await keyRows(s.account.id);
    const res = await send({ idempotency_key: "order-3", format: "csv" });
    expectError(res, 409, conflictMessage(first.jobid));
    expect(res.headers.get("Retry-After")).toBeNull();
    expect(await exportJobCount(s.account.id)).toBe(1);
    expect(await keyRows(s.account.id)).toEqual(keysBefore);
    expect(q.sent).toHaveLength(1);
  });

  it("with different details is a 409 even after the job finished", async () => {
    const first = await accepted({ idempotency_key: "order-4" });
    await setJobState(first.jobid, "complete");
    expectError(await send({ idempotency_key: "order-4", status: "bounced" }), 409, conflictMessage(first.jobid));
  });

  it.each([
    ["over 200 characters", "k".repeat(201), "details.idempotency_key: must be 1 to 200 characters (got 201)"],
    ["empty", "", "details.idempotency_key: must be 1 to 200 characters (got 0)"],
    ["not a string", 42, "details.idempotency_key: must be a string"],
  ])("is refused with 400 when %s", async (_, key, message) => {
    expectError(await send({ idempotency_key: key }), 400, message);
    expect(await exportJobCount(s.account.id)).toBe(0);
    expect(await keyRows(s.account.id)).toEqual([]);
  });

  it("of exactly 200 characters is accepted, and compared exactly", async () => {
    const key = "k".repeat(199) + "é";
    const first = await accepted({ idempotency_key: key });
    await setJobState(first.jobid, "complete");
    expect((await accepted({ idempotency_key: key })).jobid).toBe(first.jobid);
    expect((await accepted({ idempotency_key: "k".repeat(199) + "e" })).jobid).not.toBe(first.jobid);
  });

  it("older than 24 hours is replaced: the request starts a new job and the key now names it", async () => {
    const first = await accepted({ idempotency_key: "order-5" });
    await setJobState(first.jobid, "complete");
    const stale = Date.now() - IDEMPOTENCY_KEY_TTL_MS - 1000;
    await db().update(idempotencyKeys).set({ createdAt: stale }).where(eq(idempotencyKeys.jobId, first.jobid));
    // Even with different details: the old binding is gone.
    const second = await accepted({ idempotency_key: "order-5", format: "csv" });
    expect(second).toEqual({ jobid: expect.stringMatching(UUID), status: "queued", deduplicated: false });
    expect(second.jobid).not.toBe(first.jobid);
    const keys = await keyRows(s.account.id);
    expect(keys).toEqual([expect.objectContaining({ key: "order-5", jobId: second.jobid })]);
    expect(keys[0]!.createdAt).toBeGreaterThan(Date.now() - 60_000);
  });

  it("is per account: another account's same key is unrelated", async () => {
    const other = await smallAccount();
    const mine = await accepted({ idempotency_key: "shared-key" });
    const theirs = await accepted({ idempotency_key: "shared-key", format: "csv" }, other);
    expect(theirs).toEqual({ jobid: expect.stringMatching(UUID), status: "queued", deduplicated: false });
    expect(theirs.jobid).not.toBe(mine.jobid);
  });

  it("sent with a request deduplicated onto an active job is bound to that job", async () => {
    const first = await accepted();
    expect(await accepted({ idempotency_key: "late-key" })).toEqual({ jobid: first.jobid, status: "queued", deduplicated: true });
    await setJobState(first.jobid, "complete");
    expect(await accepted({ idempotency_key: "late-key" })).toEqual({ jobid: first.jobid, status: "complete", deduplicated: true });
    expect(await exportJobCount(s.account.id)).toBe(1);
  });

  it("a new key with identical details is deduplicated while active, and a new job once finished", async () => {
    const first = await accepted({ idempotency_key: "a" });
    expect((await accepted({ idempotency_key: "b" })).jobid).toBe(first.jobid);
    await setJobState(first.jobid, "complete");
    const third = await accepted({ idempotency_key: "c" });
    expect(third.deduplicated).toBe(false);
    expect(third.jobid).not.toBe(first.jobid);
  });

  it("at the cap still returns its job", async () => {
    const first = await accepted({ idempotency_key: "capped" });
    await setJobState(first.jobid, "complete");
    for (let n = 1; n <= 5; n++) await accepted({ notify: { type: "email", value: `export${n}@example.com` } });
    expect(await accepted({ idempotency_key: "capped" })).toEqual({ jobid: first.jobid, status: "complete", deduplicated: true });
  });

  it("sent 10 times at once with the same details creates one job", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => send({ idempotency_key: "burst" })));
    const data = results.map((r) => dataOf(r));
    expect(new Set(data.map((d) => d.jobid)).size).toBe(1);
    expect(data.filter((d) => !d.deduplicated)).toHaveLength(1);
    expect(await exportJobCount(s.account.id)).toBe(1);
    expect(await keyRows(s.account.id)).toEqual([expect.objectContaining({ key: "burst", jobId: data[0]!.jobid })]);
  });

  it("sent at once with two different details creates one job; the other details get 409", async () => {
    const results: CallResult<Accepted>[] = await Promise.all(
      Array.from({ length: 10 }, (_, i) => send({ idempotency_key: "contested", format: i % 2 === 0 ? "json" : "csv" })),
    );
    const ok = results.filter((r) => r.status === 200);
    const conflicts = results.filter((r) => r.status === 409);
    expect(ok.length + conflicts.length).toBe(10);
    const jobids = new Set(ok.map((r) => dataOf(r).jobid));
    expect(jobids.size).toBe(1);
    const [jobid] = jobids;
    for (const r of conflicts) expectError(r, 409, conflictMessage(jobid!));
    const [job] = await jobRows(s.account.id);
    expect(await exportJobCount(s.account.id)).toBe(1);
    // Exactly the requests with the winning details succeeded.
    const winning = job!.format;
    expect(results.map((r) => r.status === 200)).toEqual(results.map((_, i) => (i % 2 === 0 ? "json" : "csv") === winning));
  });

  it("is removed with its job when the queue send fails: 503, no job, no key; a retry then starts afresh", async () => {
    const failing = recordingQueue({ fail: true });
    const res = await callWith({ EXPORT_QUEUE: failing.queue }, asyncRequest(s, { idempotency_key: "retry-me" }));
    expectError(res, 503, "The export queue is unavailable; no job was created. Try again shortly.");
    expect(await exportJobCount(s.account.id)).toBe(0);
    expect(await keyRows(s.account.id)).toEqual([]);
    const retry = await accepted({ idempotency_key: "retry-me" });
    expect(retry).toEqual({ jobid: expect.stringMatching(UUID), status: "queued", deduplicated: false });
  });
});

describe("deleteExpiredIdempotencyKeys", () => {
  it("deletes the keys older than 24 hours, of every account, and keeps the others", async () => {
    const other = await smallAccount();
    const a = await accepted({ idempotency_key: "old" });
    const b = await accepted({ idempotency_key: "new", format: "csv" });
    const c = await accepted({ idempotency_key: "old-too" }, other);
    const now = Date.now();
    const ages = new Map([[a.jobid, IDEMPOTENCY_KEY_TTL_MS + 1], [b.jobid, IDEMPOTENCY_KEY_TTL_MS - 60_000], [c.jobid, 2 * IDEMPOTENCY_KEY_TTL_MS]]);
    for (const [jobId, age] of ages) {
      await db().update(idempotencyKeys).set({ createdAt: now - age }).where(eq(idempotencyKeys.jobId, jobId));
    }
    expect(await deleteExpiredIdempotencyKeys(db(), now)).toBeGreaterThanOrEqual(2);
    expect((await keyRows(s.account.id)).map((k) => k.key)).toEqual(["new"]);
    expect(await keyRows(other.account.id)).toEqual([]);
    // The jobs themselves stay.
    expect(await db().select({ id: exportJobs.id }).from(exportJobs).where(eq(exportJobs.id, a.jobid))).toHaveLength(1);
  });
});
