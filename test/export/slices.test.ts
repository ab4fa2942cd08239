import { env } from "cloudflare:workers";
import { asc, eq } from "drizzle-orm";
import { exportFiles } from "../../src/db/schema";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { claimJob, loadCarry, saveCheckpoint } from "../../src/export/checkpoint";
import type { FaultPoint } from "../../src/export/slice";
import {
  addSubscriber,
  createAccount,
  createField,
  createList,
  createSegment,
  createTag,
  db,
  type TestAccount,
} from "../fixtures";
import { createJob, exportedJson, handle, harness, jobRow, runToEnd } from "./driver";

/**
 * An account big enough to cross many pages (7 rows), slices (2 pages each) and R2 parts (5 MiB, the least
 * R2 allows): 90 subscribers with a note of about 170 KB each; those on the "Customers" list or tagged "vip"
 * match: 11 MB of them, two full parts and a last one.
 */
let account: TestAccount;
let segmentIds: number[];
let expectedEmails: string[];

beforeAll(async () => {
  account = await createAccount();
  const customers = await createList(account.id, "Customers");
  const prospects = await createList(account.id, "Prospects");
  const note = await createField(account.id, "Note", "text");
  const vip = await createTag(account.id, "vip");
  const statuses = ["active", "inactive", "bounced", "unsubscribed"] as const;
  expectedEmails = [];
  for (let i = 0; i < 90; i++) {
    const onCustomers = i % 3 !== 1;
    const isVip = i % 5 === 0;
    const email = `slice${String(i).padStart(3, "0")}@example.com`;
    await addSubscriber(account.id, onCustomers ? customers : prospects, {
      email,
      status: statuses[i % 4],
      // Multi-byte text, so part boundaries fall inside UTF-8 sequences.
      fields: { [note]: `Grüße, “${i}” — ${"ÿ".repeat(85_000 + (i % 40) * 7)}` },
      tags: isVip ? [vip] : [],
    });
    if (onCustomers || isVip) expectedEmails.push(email);
  }
  segmentIds = [
    await createSegment(account.id, { match: "all", rules: [{ field: "list", operator: "equals", value: customers }] }),
    await createSegment(account.id, { match: "all", rules: [{ field: "tag", operator: "equals", value: vip }] }),
  ];
});

const request = () => ({ segmentid: segmentIds, customfields: ["Note"], include_membership: true });

/** A harness whose slice (budget 1 s) is out of time at its first page read; the reads after it take "100 ms". */
function outOfTimeAtFirstPage() {
  const h = harness({ EXPORT_SLICE_BUDGET_MS: 1_000 });
  let reads = 0;
  h.deps.fault = (point) => {
    if (point === "after-read") h.clock.now += ++reads === 1 ? 1_000 : 100;
  };
  return { h, reads: () => reads };
}

async function expectCompleteFile(jobId: string) {
  const job = await jobRow(jobId);
  expect(job.state).toBe("complete");
  const file = await exportedJson(jobId);
  const emails = file.response.data.subscribers.map((s) => s.emailaddress);
  expect(emails).toEqual(expectedEmails);
  expect(file.response.data.count).toBe(expectedEmails.length);
  expect(job.processedCount).toBe(expectedEmails.length);
  expect(job.totalCount).toBe(expectedEmails.length);
  const object = await env.EXPORTS.head(job.objectKey);
  expect(object?.size).toBe(job.bytesWritten);
  return { job, file };
}

/** A fault that throws when the slice reaches `point` for the `nth` time, and only then. */
function dieOnce(point: FaultPoint, nth: number) {
  let seen = 0;
  const fault = (reached: FaultPoint) => {
    if (reached === point && ++seen === nth) {
      fault.fired = true;
      throw new Error(`injected failure at ${point}`);
    }
  };
  fault.fired = false;
  return fault;
}

describe("an export in slices", () => {
  it("checkpoints after a few pages, continues through the queue, and writes each subscriber once", async () => {
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 2 });
    const jobId = await createJob(h, account, request());
    const messages = await runToEnd(h, jobId);
    const { job, file } = await expectCompleteFile(jobId);
    expect(messages).toBeGreaterThan(4);
    expect(job.slices).toBe(messages);
    expect(job.parts.length).toBe(3);
    expect(file.response.data.subscribers[1]!.customfields).toEqual({ Note: `Grüße, “2” — ${"ÿ".repeat(85_014)}` });
    expect(h.webhooks).toHaveLength(1);
  });

  it("stops a slice when its time budget runs out", async () => {
    const h = harness({ EXPORT_SLICE_BUDGET_MS: 1_000 });
    const jobId = await createJob(h, account, request());
    // Each page read takes "400 ms": the budget is spent after three pages.
    h.deps.fault = (point) => {
      if (point === "after-read") h.clock.now += 400;
    };
    const first = await handle(h, { kind: "export", jobId, drive: 0 });
    expect(first).toEqual({ action: "ack" });
    expect(h.sent).toEqual([{ body: { kind: "export", jobId, drive: 1 } }]);
    const checkpoint = await jobRow(jobId);
    expect(checkpoint.state).toBe("running");
    expect(checkpoint.processedCount).toBeGreaterThan(0);
    expect(checkpoint.processedCount).toBeLessThan(expectedEmails.length);
    expect(checkpoint.leaseExpiresAt).toBe(0);
    h.sent.length = 0;
    await runToEnd(h, jobId);
    await expectCompleteFile(jobId);
  });

  it("out of time, goes on to the end of the part it is filling: the checkpoint carries less than one record", async () => {
    const { h, reads } = outOfTimeAtFirstPage();
    const jobId = await createJob(h, account, request());
    // A part (5 MiB) takes about 30 records of 170 KB, over four or five pages: well inside the drain's 500 ms.
    await handle(h, { kind: "export", jobId, drive: 0 });
    const checkpoint = await jobRow(jobId);
    expect(checkpoint.state).toBe("running");
    expect(reads()).toBeGreaterThan(2);
    expect(checkpoint.parts).toHaveLength(1);
    // Cut where the part ended: at most the tail of the record that straddled it (records are under 200 KB).
    expect(checkpoint.carryBytes).toBeGreaterThan(0);
    expect(checkpoint.carryBytes).toBeLessThan(200_000);
    expect(checkpoint.bytesWritten).toBe(5 * 1024 * 1024 + checkpoint.carryBytes);
    h.sent.length = 0;
    await runToEnd(h, jobId);
    await expectCompleteFile(jobId);
  });

  it("out of time, stops at half its budget more if the part is not full by then, and carries what it has", async () => {
    const h = harness({ EXPORT_SLICE_BUDGET_MS: 1_000 });
    const jobId = await createJob(h, account, request());
    // Each page read takes "1,000 ms": out of time at the first page, out of drain at the second (14 records:
    // under a part).
    let reads = 0;
    h.deps.fault = (point) => {
      if (point === "after-read") {
        reads++;
        h.clock.now += 1_000;
      }
    };
    await handle(h, { kind: "export", jobId, drive: 0 });
    expect(reads).toBe(2);
    const checkpoint = await jobRow(jobId);
    expect(checkpoint.parts).toEqual([]);
    expect(checkpoint.processedCount).toBe(14);
    expect(checkpoint.carryBytes).toBe(checkpoint.bytesWritten);
    expect(checkpoint.carryBytes).toBeGreaterThan(2_000_000);
    h.deps.fault = undefined;
    await runToEnd(h, jobId);
    await expectCompleteFile(jobId);
  });

  it("out of time, ends where a split export's next file begins if that comes before the part's end", async () => {
    const { h } = outOfTimeAtFirstPage();
    // Files of at most 5 MiB (about 30 records): the first file ends before its part is full.
    const jobId = await createJob(h, account, { ...request(), format: "ndjson", max_file_size: 5 * 1024 * 1024 });
    await handle(h, { kind: "export", jobId, drive: 0 });
    const checkpoint = await jobRow(jobId);
    expect(checkpoint.state).toBe("running");
    // Cut after the record that began the next file: the carry is that one record.
    expect(checkpoint.fileIndex).toBe(2);
    expect(checkpoint.fileRows).toBe(1);
    expect(checkpoint.carryBytes).toBeGreaterThan(0);
    expect(checkpoint.carryBytes).toBeLessThan(200_000);
    h.sent.length = 0;
    await runToEnd(h, jobId);
    const files = await db().select().from(exportFiles).where(eq(exportFiles.jobId, jobId)).orderBy(asc(exportFiles.fileIndex));
    expect(files.length).toBeGreaterThan(1);
    const emails: string[] = [];
    for (const f of files) {
      const lines = (await (await env.EXPORTS.get(f.objectKey))!.text()).split("\n").slice(0, -1);
      expect(lines).toHaveLength(f.count);
      emails.push(...lines.map((line) => (JSON.parse(line) as { emailaddress: string }).emailaddress));
    }
    expect(emails).toEqual(expectedEmails);
  });

  it("keeps the bytes that do not fill a part in D1, in chunks under D1's value limit", async () => {
    const h = harness();
    const jobId = await createJob(h, account, request());
    const claim = await claimJob(db(), jobId, 0, Date.now(), 60_000);
    if (!claim.claimed) throw new Error("could not claim");
    const big = new Uint8Array(3_000_000).map((_, i) => (i * 31 + (i >> 8)) & 255);
    await saveCheckpoint(env.DB, jobId, claim.job.version, {
      cursor: 1,
      processedCount: 1,
      bytesWritten: big.length,
      uploadId: null,
      parts: [],
      carry: big,
      finalizing: false,
      fileRows: 1,
      fileTextBytes: big.length,
    }, { kind: "handover", now: Date.now() });
    const job = await jobRow(jobId);
    expect(job.carryBytes).toBe(big.length);
    const chunks = await env.DB.prepare("SELECT length(data) AS n FROM export_carry WHERE job_id = ?").bind(jobId).all<{ n: number }>();
    expect(chunks.results.length).toBeGreaterThan(1);
    for (const chunk of chunks.results) expect(chunk.n).toBeLessThan(2_000_000);
    const loaded = await loadCarry(db(), job);
    expect(loaded.byteLength).toBe(big.byteLength);
    expect(loaded.every((byte, i) => byte === big[i])).toBe(true);
  });
});

afterEach(() => vi.restoreAllMocks());

describe("a slice that dies", () => {
  it("after reporting progress past its checkpoint: the retry counts from the checkpoint, not the progress", async () => {
    let pages = 0;
    let failed = false;
    const h = harness({}, (point) => {
      // Each page takes "6 s", so the slice reports its progress (every 5 s) after every page...
      if (point === "after-read") {
        pages++;
        h.clock.now += 6_000;
      }
      // ...and fails on its fourth page, long before its first checkpoint.
      if (point === "mid-part" && pages === 4 && !failed) {
        failed = true;
        throw new Error("the isolate went away");
      }
    });
    vi.spyOn(console, "error").mockImplementation(() => {});
    const jobId = await createJob(h, account, request());
    await runToEnd(h, jobId);
    expect(failed).toBe(true);
    // The file is valid JSON (no stray separator) with every subscriber once, and its count is right.
    await expectCompleteFile(jobId);
  });

  const points: FaultPoint[] = [
    "after-read",
    "mid-part",
    "after-part-upload",
    "before-checkpoint",
    "before-complete",
    "after-complete",
    "before-notify",
  ];

  it.each(points)("with an error %s: the job still completes with every subscriber exactly once", async (point) => {
    const fault = dieOnce(point, point === "before-complete" || point === "after-complete" || point === "before-notify" ? 1 : 2);
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 2 }, fault);
    const jobId = await createJob(h, account, request());
    await runToEnd(h, jobId);
    expect(fault.fired).toBe(true);
    await expectCompleteFile(jobId);
    expect(h.webhooks).toHaveLength(1);
    expect(JSON.parse(h.webhooks[0]!.body).data.count).toBe(expectedEmails.length);
  });

  it.each(["mid-part", "after-part-upload", "before-complete"] as FaultPoint[])(
    "when its isolate is killed %s: the lease runs out and a redelivery finishes the job",
    async (point) => {
      let killed = false;
      const h = harness({}, (reached) => {
        if (reached === point && !killed) {
          killed = true;
          return new Promise<void>(() => {}); // never returns, like an isolate that was killed
        }
      });
      const jobId = await createJob(h, account, request());
      void handle(h, { kind: "export", jobId, drive: 0 }); // the killed slice: abandoned
      await expect.poll(() => killed).toBe(true);

      // The redelivered message finds the job leased and waits for the lease to run out.
      const redelivery = await handle(h, { kind: "export", jobId, drive: 0 });
      expect(redelivery.action).toBe("retry");
      const wait = redelivery.action === "retry" ? redelivery.delaySeconds : 0;
      expect(wait).toBeGreaterThan(60);

      h.clock.now += (wait + 1) * 1000;
      h.sent.length = 0;
      await runToEnd(h, jobId);
      await expectCompleteFile(jobId);
      expect(h.webhooks).toHaveLength(1);
    },
  );
});

describe("at-least-once delivery", () => {
  it("runs one slice when the same message is delivered twice at once; the other waits", async () => {
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 2 });
    const jobId = await createJob(h, account, request());
    const [a, b] = await Promise.all([handle(h, { kind: "export", jobId, drive: 0 }), handle(h, { kind: "export", jobId, drive: 0 })]);
    const actions = [a.action, b.action].sort();
    expect(actions).toEqual(["ack", "retry"]);
    expect(h.sent).toHaveLength(1); // one continuation, from the slice that ran
    h.sent.length = 0;
    await runToEnd(h, jobId);
    await expectCompleteFile(jobId);
  });

  it("does nothing more for a message redelivered after the job completed and was notified", async () => {
    const h = harness();
    const jobId = await createJob(h, account, request());
    await runToEnd(h, jobId);
    const before = await jobRow(jobId);
    expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" });
    expect(h.webhooks).toHaveLength(1);
    const after = await jobRow(jobId);
    expect(after.version).toBe(before.version);
    expect(after.slices).toBe(before.slices);
  });

  it("refuses the work of a slice that lost its lease, and keeps the finished file", async () => {
    let release: () => void = () => {};
    let paused = false;
    const h = harness({}, (point) => {
      if (point === "after-read" && !paused) {
        paused = true;
        return new Promise<void>((resolve) => (release = resolve));
      }
    });
    const jobId = await createJob(h, account, request());
    const zombie = handle(h, { kind: "export", jobId, drive: 0 });
    await expect.poll(() => paused).toBe(true);

    h.clock.now += 10 * 60 * 1000; // the zombie's lease runs out
    await runToEnd(h, jobId);
    const { job } = await expectCompleteFile(jobId);

    release(); // the zombie wakes up and tries to carry on
    await zombie;
    const after = await jobRow(jobId);
    expect(after.version).toBe(job.version);
    await expectCompleteFile(jobId);
    expect(h.webhooks).toHaveLength(1);
  });
});

describe("export failure", () => {
  afterEach(() => vi.restoreAllMocks());

  it("fails the job after EXPORT_MAX_ATTEMPTS failed slices and notifies the failure", async () => {
    const h = harness({ EXPORT_MAX_ATTEMPTS: 3 }, (point) => {
      if (point === "after-read") throw new Error("D1 is on fire");
    });
    const jobId = await createJob(h, account, request());
    const handled = await runToEnd(h, jobId);
    expect(handled).toBe(3);
    const job = await jobRow(jobId);
    expect(job.state).toBe("failed");
    // A category and a reference for the user; "D1 is on fire" is only in the log.
    expect(job.errorMessage).toMatch(/^The export failed after 3 attempts \(internal error, reference [0-9a-f-]{36}\)$/);
    expect(h.webhooks).toHaveLength(1);
    const event = JSON.parse(h.webhooks[0]!.body);
    expect(event.type).toBe("segment_export.failed");
    expect(event.data).toMatchObject({ jobid: jobId, status: "ERROR", errormessage: job.errorMessage });
  });

  it("aborts the multipart upload of a job that fails after parts were uploaded", async () => {
    let sliceNumber = 0;
    const h = harness({ EXPORT_MAX_ATTEMPTS: 2, EXPORT_SLICE_MAX_PAGES: 6 }, (point) => {
      // The first slice runs (and uploads parts); every later one fails.
      if (point === "after-read" && sliceNumber > 1) throw new Error("R2 is on fire");
    });
    const jobId = await createJob(h, account, request());
    sliceNumber = 1;
    await handle(h, { kind: "export", jobId, drive: 0 });
    const midway = await jobRow(jobId);
    expect(midway.uploadId).not.toBeNull();
    expect(midway.parts.length).toBeGreaterThan(0);
    sliceNumber = 2;
    h.sent.length = 0;
    await runToEnd(h, jobId);
    expect((await jobRow(jobId)).state).toBe("failed");
    // The upload is gone: no part can be added to it any more.
    const upload = env.EXPORTS.resumeMultipartUpload(midway.objectKey, midway.uploadId!);
    await expect(upload.uploadPart(99, "x")).rejects.toThrow();
    expect(await env.EXPORTS.head(midway.objectKey)).toBeNull();
  });

  it("fails at once, without retries, when the job's checkpoint is damaged (a permanent error)", async () => {
    const h = harness({ EXPORT_MAX_ATTEMPTS: 5, EXPORT_SLICE_MAX_PAGES: 2 });
    const jobId = await createJob(h, account, request());
    await handle(h, { kind: "export", jobId, drive: 0 });
    // The carried bytes no longer match what the checkpoint says.
    await env.DB.prepare("UPDATE export_jobs SET carry_bytes = carry_bytes + 1 WHERE id = ?").bind(jobId).run();
    h.sent.length = 0;
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await handle(h, { kind: "export", jobId, drive: 1 })).toEqual({ action: "ack" });
    const job = await jobRow(jobId);
    expect(job.state).toBe("failed");
    expect(job.errorMessage).toMatch(/^The export cannot run: checkpoint of job .* is damaged/);
    expect(h.webhooks.map((w) => JSON.parse(w.body).type)).toEqual(["segment_export.failed"]);
  });
});
