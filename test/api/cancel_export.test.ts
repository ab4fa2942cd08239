/**
 * Segments / CancelSegmentSubscribersAsync: a queued or running export stops, its upload is aborted, it ends
 * "canceled", and one segment_export.canceled notification is sent.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { accounts } from "../../src/db/control_schema";
import { exportJobs } from "../../src/db/control_schema";
import { cancelSegmentSubscribersAsync } from "../../src/methods/segments_cancel_segment_subscribers_async";
import { callApi, db, methodContext, request, seedScenario } from "../fixtures";
import { createJob, handle, harness, jobRow, runToEnd, type Harness } from "../export/driver";
import { expectError } from "./helpers";

type Scenario = Awaited<ReturnType<typeof seedScenario>>;

const accountRow = async (id: number) => (await db().select().from(accounts).where(eq(accounts.id, id)).get())!;

/** Cancels through the method, with the harness's recording queue (so its messages can be played). */
async function cancel(h: Harness, s: Scenario, jobid: string) {
  return (await cancelSegmentSubscribersAsync.handle(methodContext(h.deps.env, await accountRow(s.account.id)), { jobid })) as Record<string, unknown>;
}

/** Plays every message the harness recorded, and whatever they send, until none is left. */
async function drain(h: Harness) {
  for (let guard = 0; h.sent.length > 0; guard++) {
    if (guard > 50) throw new Error("messages keep coming");
    const { body } = h.sent.shift()!;
    await handle(h, body);
  }
}

const ALL = (s: Scenario) => ({ segmentid: [s.segments.customers, s.segments.vip, s.segments.acme] });

describe("Segments / CancelSegmentSubscribersAsync", () => {
  it("cancels a queued export: it never runs, and one canceled webhook says so", async () => {
    const s = await seedScenario();
    const h = harness();
    const jobId = await createJob(h, s.account, ALL(s));
    const answer = await cancel(h, s, jobId);
    expect(answer).toMatchObject({ jobid: jobId, status: "canceled", count: 0, url: null });

    // The export's own message comes later: it is stale now and runs nothing.
    expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" });
    await drain(h);
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "canceled", slices: 0, notifyState: "delivered", processedCount: 0 });
    expect(await env.EXPORTS.head(job.objectKey)).toBeNull();
    const events = h.webhooks.map((w) => JSON.parse(w.body) as { type: string; data: Record<string, unknown> });
    expect(events).toEqual([
      {
        type: "segment_export.canceled",
        timestamp: job.completedAt,
        data: { jobid: jobId, status: "CANCELED", count: 0, format: "json", segmentid: ALL(s).segmentid.map(String) },
      },
    ]);
  });

  it("stops a running export between slices: no further slice runs and no file is made", async () => {
    const s = await seedScenario();
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 });
    const jobId = await createJob(h, s.account, ALL(s));
    await handle(h, { kind: "export", jobId, drive: 0 });
    const [continuation] = h.sent.splice(0);
    expect((await jobRow(jobId)).processedCount).toBe(7);

    expect(await cancel(h, s, jobId)).toMatchObject({ status: "canceled", count: 7 });
    await handle(h, continuation!.body);
    await drain(h);
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "canceled", slices: 1, processedCount: 7 });
    expect(await env.EXPORTS.head(job.objectKey)).toBeNull();
    expect(h.webhooks.map((w) => JSON.parse(w.body).type)).toEqual(["segment_export.canceled"]);
    expect(JSON.parse(h.webhooks[0]!.body).data.count).toBe(7);
  });

  it("stops a slice at work within its progress interval, before its checkpoint", async () => {
    const s = await seedScenario();
    let canceled = false;
    const h: Harness = harness({}, async (point) => {
      if (point === "after-read" && !canceled) {
        canceled = true;
        await cancel(h, s, jobId);
        // The slice's next progress report is due: it finds the job fenced.
        h.clock.now += 6_000;
      }
    });
    const jobId = await createJob(h, s.account, ALL(s));
    expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" });
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "canceled", cursor: 0, processedCount: 0 });
    expect(await env.EXPORTS.head(job.objectKey)).toBeNull();
    // No continuation: only the canceled notification is queued.
    expect(h.sent.map((m) => m.body.kind)).toEqual(["notify"]);
  });

  it("aborts the export's multipart upload", async () => {
    const s = await seedScenario();
    const h = harness();
    const jobId = await createJob(h, s.account, ALL(s));
    const { objectKey } = await jobRow(jobId);
    const upload = await env.EXPORTS.createMultipartUpload(objectKey);
    const part = await upload.uploadPart(1, "a partial file");
    await db().update(exportJobs).set({ state: "running", uploadId: upload.uploadId }).where(eq(exportJobs.id, jobId));
    await cancel(h, s, jobId);
    await expect(env.EXPORTS.resumeMultipartUpload(objectKey, upload.uploadId).complete([part])).rejects.toThrow();
    expect(await env.EXPORTS.head(objectKey)).toBeNull();
  });

  it("refuses a finished export with 409, and an unknown or another account's job with 404", async () => {
    const s = await seedScenario();
    const other = await seedScenario();
    const h = harness();
    const jobId = await createJob(h, s.account, ALL(s));
    await runToEnd(h, jobId);
    expectError(
      await callApi(request(s.account, "Segments", "CancelSegmentSubscribersAsync", { jobid: jobId })),
      409,
      `details.jobid: export ${jobId} is already complete; only a queued or running export can be canceled`,
    );
    expect((await jobRow(jobId)).state).toBe("complete");
    expectError(
      await callApi(request(other.account, "Segments", "CancelSegmentSubscribersAsync", { jobid: jobId })),
      404,
      `details.jobid: no export job "${jobId}" in this account`,
    );
    expectError(
      await callApi(request(s.account, "Segments", "CancelSegmentSubscribersAsync", { jobid: "no-such-job" })),
      404,
      'details.jobid: no export job "no-such-job" in this account',
    );
  });

  it("cancels through the API, and the status call then says canceled", async () => {
    const s = await seedScenario();
    const h = harness();
    const jobId = await createJob(h, s.account, ALL(s));
    const response = await callApi(request(s.account, "Segments", "CancelSegmentSubscribersAsync", { jobid: jobId }));
    expect(response.status).toBe(200);
    const status = await callApi<{ status: string }>(request(s.account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid: jobId }));
    expect(status.body.response).toMatchObject({ status: "SUCCESS", data: { status: "canceled", percent: 0, eta_seconds: null } });
  });
});
