/**
 * Fair sharing between accounts: the per-account request rate (Workers' rate-limiting binding) and the cap on
 * queued plus running exports per account (enforced in D1). Over either: 429, the ERROR envelope naming the
 * limit, a Retry-After header, and nothing written.
 */
import { env, exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { callApi, createAccount, dataOf, request, type TestAccount } from "../fixtures";
import {
  asyncRequest,
  callWith,
  fakeLimiter,
  jobRows,
  recordingQueue,
  setJobState,
  smallAccount,
  type SmallAccount,
} from "./admission_helpers";
import { EMAIL_NOTIFY, expectError, exportJobCount } from "./helpers";

const RATE_MESSAGE =
  "Too many requests: this account may make at most 600 requests per 60 seconds. Retry after 60 seconds.";
const capMessage = (active: number, cap: number) =>
  `Too many exports: this account has ${active} exports queued or running, and may have at most ${cap} at once. ` +
  "Retry after 60 seconds, when one has finished.";

// The limit quoted in the message comes from these variables (they must match the binding's settings).
const RATE_VARS = { ACCOUNT_RATE_LIMIT: "600", ACCOUNT_RATE_PERIOD_SECONDS: "60" };

describe("request rate per account", () => {
  let account: TestAccount;
  beforeEach(async () => {
    account = await createAccount();
  });

  it("answers 429 with the ERROR envelope naming the limit, and Retry-After, when the limiter says no", async () => {
    const { limiter } = fakeLimiter(false);
    const res = await callWith({ ...RATE_VARS, ACCOUNT_RATE_LIMITER: limiter }, request(account, "Authentication", "APITest"));
    expectError(res, 429, RATE_MESSAGE);
    expect(res.headers.get("Retry-After")).toBe("60");
  });

  it("quotes the configured limit and period", async () => {
    const { limiter } = fakeLimiter(false);
    const res = await callWith(
      { ACCOUNT_RATE_LIMIT: "30", ACCOUNT_RATE_PERIOD_SECONDS: "10", ACCOUNT_RATE_LIMITER: limiter },
      request(account, "Authentication", "APITest"),
    );
    expectError(res, 429, "Too many requests: this account may make at most 30 requests per 10 seconds. Retry after 10 seconds.");
    expect(res.headers.get("Retry-After")).toBe("10");
  });

  it("refuses GetSegmentSubscribersAsync over the rate without writing a job or sending a message", async () => {
    const s = await smallAccount();
    const { limiter } = fakeLimiter(false);
    const { queue, sent } = recordingQueue();
    const res = await callWith({ ...RATE_VARS, ACCOUNT_RATE_LIMITER: limiter, EXPORT_QUEUE: queue }, asyncRequest(s));
    expectError(res, 429, RATE_MESSAGE);
    expect(res.headers.get("Retry-After")).toBe("60");
    expect(await exportJobCount(s.account.id)).toBe(0);
    expect(sent).toEqual([]);
  });

  it.each([
    ["Authentication", "APITest", undefined],
    ["Segments", "GetSegments", undefined],
    ["Segments", "GetSegmentSubscribersAsyncStatus", { jobid: "no-such-job" }],
  ])("counts %s / %s against the account, keyed by the account id", async (type, method, details) => {
    const { limiter, calls } = fakeLimiter(true);
    await callWith({ ACCOUNT_RATE_LIMITER: limiter }, request(account, type, method, details));
    expect(calls).toEqual([{ key: String(account.id) }]);
  });

  it("counts only after authentication: bad credentials get 401 and spend nothing of the account's quota", async () => {
    const { limiter, calls } = fakeLimiter(false);
    const res = await callWith(
      { ACCOUNT_RATE_LIMITER: limiter },
      request({ username: account.username, usertoken: "wrong" }, "Authentication", "APITest"),
    );
    expectError(res, 401, "Invalid username or usertoken");
    expect(res.headers.get("Retry-After")).toBeNull();
    expect(calls).toEqual([]);
  });

  it("lets requests through if the limiter itself fails (the limiter must not take the API down)", async () => {
    const { limiter, calls } = fakeLimiter("throw");
    const res = await callWith({ ACCOUNT_RATE_LIMITER: limiter }, request(account, "Authentication", "APITest"));
    expect(dataOf(res)).toEqual({ authenticated: true, username: account.username });
    expect(calls).toHaveLength(1);
  });

  it("is wired to the real ACCOUNT_RATE_LIMITER binding, per account", async () => {
    // The binding counts in fixed windows aligned to the clock; start well inside one so it cannot roll over.
    const intoWindow = Date.now() % 60_000;
    if (intoWindow > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoWindow + 100));
    const other = await createAccount();
    // Spend this account's whole quota on the real binding, under the key the API uses.
    let spent = 0;
    while ((await env.ACCOUNT_RATE_LIMITER.limit({ key: String(account.id) })).success) {
      spent++;
      expect(spent).toBeLessThanOrEqual(600);
    }
    const res = await exports.default.fetch("https://exports.test/apijson.php", {
      method: "POST",
      body: JSON.stringify(request(account, "Authentication", "APITest")),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get("Retry-After")).toBe("60");
    expect(await res.json()).toEqual({ response: { status: "ERROR", errormessage: RATE_MESSAGE } });
    // Another account is not affected.
    expect(dataOf(await callApi(request(other, "Authentication", "APITest")))).toEqual({ authenticated: true, username: other.username });
  });
});

describe("concurrent exports per account", () => {
  let s: SmallAccount;
  let q: ReturnType<typeof recordingQueue>;
  beforeEach(async () => {
    s = await smallAccount();
    q = recordingQueue();
  });

  /** Distinct requests (a different notify address each), so that none is deduplicated onto another. */
  const nth = (n: number, extra: Record<string, unknown> = {}) =>
    asyncRequest(s, { notify: { type: "email", value: `export${n}@example.com` }, ...extra });
  const start = (n: number, overrides: Partial<Env> = {}) => callWith({ EXPORT_QUEUE: q.queue, ...overrides }, nth(n));

  it("accepts 5 queued exports; the 6th gets 429 naming the cap and the count, Retry-After, no job and no message", async () => {
    for (let n = 1; n <= 5; n++) {
      const res = await start(n);
      expect(res.status).toBe(200);
      expect(dataOf(res)).toMatchObject({ status: "queued", deduplicated: false });
    }
    const res = await start(6);
    expectError(res, 429, capMessage(5, 5));
    expect(res.headers.get("Retry-After")).toBe("60");
    expect(await exportJobCount(s.account.id)).toBe(5);
    expect(q.sent).toHaveLength(5);
    expect((await jobRows(s.account.id)).map((j) => j.notifyTarget).sort()).toEqual(
      [1, 2, 3, 4, 5].map((n) => `export${n}@example.com`),
    );
  });

  it("counts running exports as well as queued ones", async () => {
    for (let n = 1; n <= 5; n++) await setJobState(dataOf<{ jobid: string }>(await start(n)).jobid, "running");
    expectError(await start(6), 429, capMessage(5, 5));
    expect(await exportJobCount(s.account.id)).toBe(5);
  });

  it.each(["complete", "failed"] as const)("frees a slot when an export ends %s", async (state) => {
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) ids.push(dataOf<{ jobid: string }>(await start(n)).jobid);
    expectError(await start(6), 429, capMessage(5, 5));
    await setJobState(ids[2]!, state);
    const res = await start(6);
    expect(dataOf(res)).toMatchObject({ status: "queued", deduplicated: false });
    expectError(await start(7), 429, capMessage(5, 5));
    expect(await exportJobCount(s.account.id)).toBe(6);
  });

  it("is per account: another account at 0 is not held back by one at the cap", async () => {
    for (let n = 1; n <= 5; n++) expect((await start(n)).status).toBe(200);
    expectError(await start(6), 429, capMessage(5, 5));
    const other = await smallAccount();
    const res = await callWith({ EXPORT_QUEUE: q.queue }, asyncRequest(other));
    expect(dataOf(res)).toMatchObject({ status: "queued", deduplicated: false });
  });

  it("is configurable with EXPORT_MAX_ACTIVE_PER_ACCOUNT", async () => {
    const two = { EXPORT_MAX_ACTIVE_PER_ACCOUNT: "2" };
    expect((await start(1, two)).status).toBe(200);
    expect((await start(2, two)).status).toBe(200);
    const res = await start(3, two);
    expectError(res, 429, capMessage(2, 2));
    expect(res.headers.get("Retry-After")).toBe("60");
  });

  it("holds under concurrency: of 12 different requests at once, exactly 5 get a job", async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, n) => start(n + 1)));
    const accepted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(accepted).toHaveLength(5);
    expect(refused).toHaveLength(7);
    for (const r of refused) expectError(r, 429, capMessage(5, 5));
    expect(await exportJobCount(s.account.id)).toBe(5);
    expect(new Set(q.sent.map((m) => m.jobId))).toEqual(new Set(accepted.map((r) => dataOf<{ jobid: string }>(r).jobid)));
  });

  it("writes nothing for a request that fails validation, even below the cap", async () => {
    const res = await callWith({ EXPORT_QUEUE: q.queue }, asyncRequest(s, { customfields: ["Shoe Size"] }));
    expectError(res, 400, 'details.customfields: unknown custom field "Shoe Size"');
    expect(await exportJobCount(s.account.id)).toBe(0);
    expect(q.sent).toEqual([]);
  });

  it("through the real queue: a new job is sent as drive 0 and is due now", async () => {
    const before = Date.now();
    const res = await callApi(asyncRequest(s, { notify: EMAIL_NOTIFY }));
    const { jobid } = dataOf<{ jobid: string }>(res);
    const [job] = await jobRows(s.account.id);
    expect(job).toMatchObject({ id: jobid, drive: 0, requestHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(job!.dueAt).toBeGreaterThanOrEqual(before);
    expect(job!.dueAt).toBeLessThanOrEqual(Date.now());
  });
});
