/**
 * File retention and fresh links: a file is kept EXPORT_RETENTION_DAYS after its export completes; the status
 * call signs a fresh link on every call until then; afterwards the sweeper deletes it, the job says "expired"
 * and its links get 410.
 */
import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { accounts, exportJobs } from "../../src/db/control_schema";
import { deleteExpiredFiles } from "../../src/export/sweeper";
import { getSegmentSubscribersAsyncStatus } from "../../src/methods/segments_get_segment_subscribers_async_status";
import { db, methodContext, seedScenario } from "../fixtures";
import { createJob, harness, jobRow, runToEnd } from "./driver";

const DAY = 86_400_000;

async function completedExport(overrides: Parameters<typeof harness>[0] = {}) {
  const s = await seedScenario();
  const h = harness(overrides);
  const jobId = await createJob(h, s.account, { segmentid: [s.segments.vip] });
  h.clock.now = Date.now();
  await runToEnd(h, jobId);
  const account = (await db().select().from(accounts).where(eq(accounts.id, s.account.id)).get())!;
  const status = async (config = loadConfig(env)) =>
    (await getSegmentSubscribersAsyncStatus.handle(methodContext(env, account, config), { jobid: jobId })) as {
      status: string;
      url: string | null;
      expires_at: string | null;
      retained_until: string | null;
    };
  return { s, h, jobId, status };
}

const download = (url: string) => exports.default.fetch(url);

describe("retention and fresh links", () => {
  it("keeps the file EXPORT_RETENTION_DAYS after completion, and never lets the notified link outlive it", async () => {
    const { jobId } = await completedExport({ EXPORT_RETENTION_DAYS: 2, DOWNLOAD_LINK_TTL_SECONDS: 30 * 86_400 });
    const job = await jobRow(jobId);
    const completed = Date.parse(job.completedAt!);
    expect(job.retainedUntil).toBe(completed + 2 * DAY);
    // A 30-day link on a file kept 2 days lasts 2 days (to the second).
    expect(Date.parse(job.linkExpiresAt!)).toBe(Math.floor((completed + 2 * DAY) / 1000) * 1000);
  });

  it("signs a fresh link on every status call, valid for the link lifetime, capped at the retention", async () => {
    const { jobId, status } = await completedExport();
    const config = { ...loadConfig(env), DOWNLOAD_LINK_TTL_SECONDS: 3_600 };
    const first = await status(config);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const second = await status(config);
    expect(first.status).toBe("complete");
    expect(second.url).not.toBe(first.url);
    const expires = (link: string) => Number(new URL(link).searchParams.get("expires"));
    expect(expires(second.url!)).toBeGreaterThan(expires(first.url!));
    expect(Math.abs(expires(second.url!) * 1000 - (Date.now() + 3_600_000))).toBeLessThan(5_000);
    expect(second.retained_until).toBe(new Date((await jobRow(jobId)).retainedUntil!).toISOString());
    expect((await download(second.url!)).status).toBe(200);
  });

  it("gives a client whose notified link has expired a working link while the file is kept", async () => {
    const { jobId, status } = await completedExport();
    // The notified link expired long ago (an email read late); the file is kept for another day.
    await db()
      .update(exportJobs)
      .set({ linkExpiresAt: new Date(Date.now() - DAY).toISOString(), retainedUntil: Date.now() + DAY })
      .where(eq(exportJobs.id, jobId));
    const now = await status();
    expect(now.url).not.toBeNull();
    expect(Date.parse(now.expires_at!)).toBeLessThanOrEqual(Date.now() + DAY);
    const res = await download(now.url!);
    expect(res.status).toBe(200);
    expect((JSON.parse(await res.text()) as { response: { data: { count: number } } }).response.data.count).toBeGreaterThan(0);
  });

  it("deletes the file once the retention is over: the job is expired, has no link, and old links get 410", async () => {
    const { h, jobId, status } = await completedExport();
    const link = (await status()).url!;
    const { objectKey } = await jobRow(jobId);
    // Still kept: the sweeper leaves it.
    expect(await deleteExpiredFiles(h.deps)).toBe(0);
    expect(await env.EXPORTS.head(objectKey)).not.toBeNull();

    await db().update(exportJobs).set({ retainedUntil: Date.now() - 1_000 }).where(eq(exportJobs.id, jobId));
    // Past its retention, the file is no longer served, even before the sweeper has run.
    const early = await download(link);
    expect(early.status).toBe(410);
    await early.body?.cancel();

    h.clock.now = Date.now();
    expect(await deleteExpiredFiles(h.deps)).toBeGreaterThanOrEqual(1);
    expect(await env.EXPORTS.head(objectKey)).toBeNull();
    expect(await status()).toMatchObject({ status: "expired", url: null, expires_at: null, retained_until: expect.any(String) });
    const res = await download(link);
    expect(res.status).toBe(410);
    expect(await res.json()).toEqual({
      response: { status: "ERROR", errormessage: `The file of export ${jobId} was deleted at the end of its retention (7 days)` },
    });
    // Done once: a second sweep has nothing left to delete for it.
    expect((await jobRow(jobId)).state).toBe("expired");
  });
});
