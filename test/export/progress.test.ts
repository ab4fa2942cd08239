/**
 * Progress of an export (src/export/slice.ts countTotal, and the status call's percent and ETA): the total is
 * counted at the start of the first slice with the export's own predicate, so a client sees how far it is.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getSegmentSubscribersAsyncStatus, progress } from "../../src/methods/segments_get_segment_subscribers_async_status";
import { accounts } from "../../src/db/control_schema";
import { eq, inArray } from "drizzle-orm";
import { db, methodContext, seedScenario, shardDb } from "../fixtures";
import { countChunkQuery, countQuery, loadCustomFieldTypes, matchPredicate } from "../../src/export/query";
import { countInChunks } from "../../src/export/slice";
import { segmentRules } from "../../src/segments/rules";
import { segments as segmentsTable } from "../../src/db/shard_schema";
import { createJob, handle, harness, jobRow, runToEnd } from "./driver";

const status = async (accountId: number, jobid: string) => {
  const account = (await db().select().from(accounts).where(eq(accounts.id, accountId)).get())!;
  return (await getSegmentSubscribersAsyncStatus.handle(methodContext(env, account), { jobid })) as Record<string, unknown>;
};

describe("export progress", () => {
  it("knows the total after the first slice, and reports count, total, percent and an ETA while running", async () => {
    const s = await seedScenario();
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 }); // 7-row pages: 24 rows take 4 slices
    const jobId = await createJob(h, s.account, { segmentid: [s.segments.customers, s.segments.vip, s.segments.acme] });
    expect(await status(s.account.id, jobId)).toMatchObject({ status: "queued", count: 0, total: null, percent: 0, eta_seconds: null });

    h.clock.now = Date.now();
    await handle(h, { kind: "export", jobId, drive: 0 });
    const after = await jobRow(jobId);
    expect(after.totalCount).toBe(24);
    // The status call measures the pace from the real start time: give it a second of history.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const running = await status(s.account.id, jobId);
    expect(running).toMatchObject({ status: "running", total: 24 });
    expect(running.count).toBe(after.processedCount);
    expect(running.percent).toBe(Math.floor((100 * after.processedCount) / 24));
    expect(running.eta_seconds).toEqual(expect.any(Number));
    expect(running.eta_seconds as number).toBeGreaterThan(0);

    await runToEnd(h, jobId);
    expect(await status(s.account.id, jobId)).toMatchObject({ status: "complete", count: 24, total: 24, percent: 100, eta_seconds: 0 });
  });

  it("counts with the export's filters: a status filter lowers the total", async () => {
    const s = await seedScenario();
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 });
    const jobId = await createJob(h, s.account, { segmentid: [s.segments.customers, s.segments.vip, s.segments.acme], status: "active" });
    await handle(h, { kind: "export", jobId, drive: 0 });
    expect((await jobRow(jobId)).totalCount).toBe(s.people.filter((p) => p.status === "active").length);
  });
});

describe("countInChunks: the total in short statements", () => {
  it.each([1, 5, 7, 24, 25, 1_000])("adds up to the one-statement count with chunks of %i rows", async (chunkRows) => {
    const s = await seedScenario();
    const db = await shardDb(s.account.id);
    const fieldTypes = await loadCustomFieldTypes(db, s.account.id);
    const stored = await db.select().from(segmentsTable).where(inArray(segmentsTable.id, Object.values(s.segments)));
    const segments = stored.map((row) => ({ id: row.id, name: row.name, rules: segmentRules(row) }));
    const predicate = matchPredicate(segments, "active", new Date(), fieldTypes);
    const [[expected] = [0]] = await db.values<[number]>(countQuery(s.account.id, predicate));
    expect(Number(expected)).toBeGreaterThan(5);
    expect(await countInChunks(db, countChunkQuery(s.account.id, predicate), chunkRows)).toBe(Number(expected));
  });
});

describe("progress(): percent and ETA from a job's row", () => {
  const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();
  const now = Date.UTC(2026, 0, 1, 0, 0, 10);
  it.each([
    [{ state: "queued", processedCount: 0, totalCount: null, startedAt: null }, { percent: 0, eta_seconds: null }],
    [{ state: "running", processedCount: 0, totalCount: null, startedAt: at(0) }, { percent: 0, eta_seconds: null }],
    [{ state: "running", processedCount: 0, totalCount: 1000, startedAt: at(0) }, { percent: 0, eta_seconds: null }],
    // 250 of 1,000 in 10 s: 750 left at 25 a second.
    [{ state: "running", processedCount: 250, totalCount: 1000, startedAt: at(0) }, { percent: 25, eta_seconds: 30 }],
    // Rows added since the count: never 100 % before it is complete, and no negative ETA.
    [{ state: "running", processedCount: 1010, totalCount: 1000, startedAt: at(0) }, { percent: 99, eta_seconds: 0 }],
    [{ state: "running", processedCount: 0, totalCount: 0, startedAt: at(0) }, { percent: 0, eta_seconds: null }],
    [{ state: "failed", processedCount: 500, totalCount: 1000, startedAt: at(0) }, { percent: 50, eta_seconds: null }],
    [{ state: "complete", processedCount: 990, totalCount: 990, startedAt: at(0) }, { percent: 100, eta_seconds: 0 }],
  ] as const)("%j → %j", (job, expected) => {
    expect(progress(job, now)).toEqual(expected);
  });
});
