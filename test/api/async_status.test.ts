import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { exportJobs } from "../../src/db/schema";
import { callApi, createAccount, dataOf, db, request, seedScenario } from "../fixtures";
import {
  download,
  expectError,
  insertJob,
  jobStatus,
  membersOf,
  startExport,
  waitForDelivered,
  type Scenario,
} from "./helpers";

const LINK_TTL_MS = 604_800 * 1000;

let s: Scenario;
beforeAll(async () => {
  s = await seedScenario();
});

const createdAt = async (jobid: string) =>
  (await db().select({ createdAt: exportJobs.createdAt }).from(exportJobs).where(eq(exportJobs.id, jobid)).get())!.createdAt;

describe("Segments / GetSegmentSubscribersAsyncStatus", () => {
  it("describes a queued job: nothing counted yet, no link", async () => {
    const jobid = await insertJob(s.account.id);
    expect(dataOf(await jobStatus(s.account, jobid))).toEqual({
      jobid,
      status: "queued",
      count: 0,
      total: null,
      percent: 0,
      eta_seconds: null,
      format: "json",
      compression: "none",
      segmentid: ["1"],
      createdate: await createdAt(jobid),
      completedate: null,
      bytes: null,
      url: null,
      files: [],
      expires_at: null,
      retained_until: null,
      notification: { type: "email", status: "pending", attempts: 0 },
    });
  });

  it("describes a running job with the contacts counted so far, no size and no link", async () => {
    const jobid = await insertJob(s.account.id, {
      state: "running",
      processedCount: 14,
      bytesWritten: 2048,
      startedAt: "2026-01-01T00:00:01Z",
    });
    expect(dataOf(await jobStatus(s.account, jobid))).toMatchObject({
      jobid,
      status: "running",
      count: 14,
      total: null,
      completedate: null,
      bytes: null,
      url: null,
      expires_at: null,
      notification: { type: "email", status: "pending", attempts: 0 },
    });
  });

  it("describes a complete job with count, total, size, a download link and when it expires, and the notification", async () => {
    const jobid = await startExport(s.account, { segmentid: [s.segments.customers, String(s.segments.acme)], format: "csv" });
    const status = await waitForDelivered(s.account, jobid);
    const expected = membersOf(s, ["customers", "acme"]).length;
    expect(status).toEqual({
      jobid,
      status: "complete",
      count: expected,
      total: expected,
      percent: 100,
      eta_seconds: 0,
      format: "csv",
      compression: "none",
      segmentid: [String(s.segments.customers), String(s.segments.acme)],
      createdate: await createdAt(jobid),
      completedate: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      bytes: expect.any(Number),
      url: expect.stringMatching(new RegExp(`^https://exports\\.test/exports/${jobid}\\?expires=\\d+&kid=k1&signature=[0-9a-f]{64}$`)),
      // One file (the export is not split): the same link, its records and its size.
      files: [{ url: expect.any(String), count: expected, bytes: expect.any(Number) }],
      expires_at: expect.any(String),
      retained_until: expect.any(String),
      notification: { type: "email", status: "delivered", attempts: 1 },
    });
    // The file is kept EXPORT_RETENTION_DAYS (7) from completion; a link signed now lasts
    // DOWNLOAD_LINK_TTL_SECONDS (7 days) but not past that, to the second.
    const retainedUntil = Date.parse(status.completedate!) + 7 * 86_400_000;
    expect(status.retained_until).toBe(new Date(retainedUntil).toISOString());
    const expires = Number(new URL(status.url!).searchParams.get("expires"));
    expect(status.expires_at).toBe(new Date(expires * 1000).toISOString());
    expect(expires * 1000).toBeLessThanOrEqual(retainedUntil);
    expect(expires * 1000).toBeGreaterThan(Math.min(retainedUntil, Date.now() + LINK_TTL_MS) - 5_000);
    expect(status.files).toEqual([{ url: status.url, count: expected, bytes: status.bytes }]);
    // bytes is the size of the file the link serves.
    const { response, text } = await download(status.url!);
    expect(response.status).toBe(200);
    expect(status.bytes).toBe(new TextEncoder().encode(text).length);
  });

  it("signs a working link on every call (test/export/retention.test.ts has the details)", async () => {
    const jobid = await startExport(s.account, { segmentid: [s.segments.vip] });
    const first = await waitForDelivered(s.account, jobid);
    const second = dataOf(await jobStatus(s.account, jobid));
    expect(second.url).toMatch(/^https:\/\/exports\.test\/exports\//);
    expect((await download(second.url!)).response.status).toBe(200);
    expect((await download(first.url!)).response.status).toBe(200);
  });

  it("gives no link once the file's retention is over, even before the sweeper deletes it", async () => {
    const jobid = await insertJob(s.account.id, {
      state: "complete",
      processedCount: 3,
      totalCount: 3,
      bytesWritten: 321,
      completedAt: "2026-01-01T00:00:05.000Z",
      linkExpiresAt: "2026-01-08T00:00:05.000Z",
      notifyState: "delivered",
      notifyAttempts: 1,
    });
    expect(dataOf(await jobStatus(s.account, jobid))).toMatchObject({
      status: "complete",
      count: 3,
      total: 3,
      bytes: 321,
      url: null,
      expires_at: null,
      retained_until: "2026-01-08T00:00:05.000Z",
    });
  });

  it("describes a failed job with its error and the notification's last error", async () => {
    const jobid = await insertJob(s.account.id, {
      state: "failed",
      processedCount: 7,
      errorMessage: "Export failed after 5 attempts: boom",
      completedAt: "2026-01-01T00:00:05.000Z",
      notifyState: "failed",
      notifyAttempts: 8,
      notifyError: "E_RECIPIENT_SUPPRESSED: suppressed",
    });
    expect(dataOf(await jobStatus(s.account, jobid))).toMatchObject({
      status: "failed",
      count: 7,
      bytes: null,
      url: null,
      errormessage: "Export failed after 5 attempts: boom",
      notification: { type: "email", status: "failed", attempts: 8, lasterror: "E_RECIPIENT_SUPPRESSED: suppressed" },
    });
  });

  it("answers 404 for a job of another account, naming the job id", async () => {
    const stranger = await createAccount();
    const jobid = await insertJob(s.account.id);
    expectError(
      await jobStatus(stranger, jobid),
      404,
      `details.jobid: no export job "${jobid}" in this account`,
    );
  });

  it("answers 404 for a job id that does not exist", async () => {
    expectError(
      await jobStatus(s.account, "00000000-0000-4000-8000-000000000000"),
      404,
      'details.jobid: no export job "00000000-0000-4000-8000-000000000000" in this account',
    );
  });

  it("answers 400 without a jobid", async () => {
    expectError(
      await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsyncStatus", {})),
      400,
      "details.jobid: is required",
    );
    expectError(
      await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsyncStatus")),
      400,
      "details.jobid: is required",
    );
  });

  it("answers 400 for a jobid that is not a string, or is empty", async () => {
    expectError(
      await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid: 42 })),
      400,
      "details.jobid: must be a string",
    );
    expectError(
      await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid: "  " })),
      400,
      "details.jobid: must not be empty",
    );
  });

  it("is reachable as seg / getsegmentsubscribersasyncstatus", async () => {
    const jobid = await insertJob(s.account.id, { notifyType: "webhook", notifyTarget: "https://hooks.example.com/x" });
    const res = await callApi(request(s.account, "seg", "getsegmentsubscribersasyncstatus", { jobid }));
    expect(dataOf(res)).toMatchObject({ jobid, status: "queued", notification: { type: "webhook" } });
  });
});
