/**
 * Split exports (details.max_file_size, details.max_rows_per_file): several files, each complete and valid on
 * its own, that together hold exactly the records of the unsplit export, in order; listed with their links,
 * counts and sizes in the status call, the webhook and the job list; each downloadable by its own link only.
 */
import { env, exports } from "cloudflare:workers";
import { asc, eq, sql } from "drizzle-orm";
import { Gunzip } from "fflate";
import { describe, expect, it } from "vitest";
import { exportFiles } from "../../src/db/schema";
import { cancelExport } from "../../src/export/cancel";
import { deleteExpiredFiles } from "../../src/export/sweeper";
import type { FaultPoint } from "../../src/export/slice";
import { allocateIds } from "../../src/shards/ids";
import { requestMove } from "../../src/shards/move";
import {
  callApi,
  createAccount,
  createField,
  createList,
  createSegment,
  createTag,
  dataOf,
  db,
  request,
  shardDb,
  TEST_SHARDS,
  type TestAccount,
} from "../fixtures";
import { parseCsv, type JobStatus } from "../api/helpers";
import { createJob, dieAt, harness, handle, jobRow, playQueue, runToEnd, type Harness } from "./driver";

const MiB = 1024 * 1024;
const utf8 = new TextEncoder();
const byteLength = (text: string) => utf8.encode(text).byteLength;

interface Dataset {
  account: Awaited<ReturnType<typeof createAccount>>;
  segment: number;
  rows: number;
  /** The first subscriber's id; the others follow. */
  firstId: number;
  filler: string;
}

const STATUSES = ["active", "inactive", "bounced", "unsubscribed"] as const;

/** What the export of everything, with every field and the tags, must hold for seedMany's data, in order. */
function seededRecords(data: Dataset, format: "json" | "csv" | "ndjson"): unknown[] {
  return Array.from({ length: data.rows }, (_, i) => {
    const subscriber = {
      subscriberid: data.firstId + i,
      emailaddress: `person${String(i).padStart(6, "0")}@example.com`,
      status: STATUSES[i % 4]!,
      subscribedate: "2025-01-15T10:00:00Z",
      customfields: { Bio: `${i}: ${data.filler}`, Score: i },
      tags: i % 5 === 0 ? ["vip"] : [],
    };
    if (format === "json") return subscriber;
    if (format === "ndjson") return JSON.stringify(subscriber);
    const { subscriberid, emailaddress, status, subscribedate, customfields, tags } = subscriber;
    return [String(subscriberid), emailaddress, status, subscribedate, customfields.Bio, String(customfields.Score), tags.join("; ")];
  });
}

/**
 * `rows` subscribers in one list (one segment holds them all), each with a Bio of about `bioChars` characters
 * (with 2-, 3- and 4-byte UTF-8 characters, so that byte limits cannot be met by counting characters), a Score,
 * and every fifth one the tag "vip". Inserted by SQL in one statement, as the seed of a big dataset must be.
 */
async function seedMany(rows: number, bioChars: number): Promise<Dataset> {
  const account = await createAccount();
  const list = await createList(account.id);
  const bio = await createField(account.id, "Bio", "text");
  const score = await createField(account.id, "Score", "number");
  const vip = await createTag(account.id, "vip");
  // Whole repeats, so that no 4-byte character is cut in half.
  const filler = "Grüße aus Köln, 5 € pro Stück 😀 ".repeat(Math.max(1, Math.round(bioChars / 30)));
  const segment = await createSegment(account.id, { match: "all", rules: [{ field: "list", operator: "equals", value: list }] });
  if (rows === 0) return { account, segment, rows, firstId: 0, filler };
  const first = await allocateIds(env.DB, "subscribers", rows);
  const shard = await shardDb(account.id);
  await shard.run(sql`
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${rows})
    INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields)
    SELECT ${first} + i, ${account.id}, ${list}, printf('person%06d@example.com', i),
           CASE i % 4 WHEN 0 THEN 'active' WHEN 1 THEN 'inactive' WHEN 2 THEN 'bounced' ELSE 'unsubscribed' END,
           '2025-01-15T10:00:00Z', json_object(${String(bio)}, printf('%d: ', i) || ${filler}, ${String(score)}, i)
    FROM n`);
  await shard.run(sql`
    INSERT INTO subscriber_tags (subscriber_id, tag_id)
    SELECT id, ${vip} FROM subscribers WHERE account_id = ${account.id} AND (id - ${first}) % 5 = 0`);
  return { account, segment, rows, firstId: first, filler };
}

/** gunzip as the command does it: every member, one after the other. */
function gunzip(bytes: Uint8Array): string {
  const out: Uint8Array[] = [];
  new Gunzip((chunk) => out.push(chunk)).push(bytes, true);
  const all = new Uint8Array(out.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of out) all.set(c, (at += c.length) - c.length);
  return new TextDecoder().decode(all);
}

interface StoredPart {
  fileIndex: number;
  objectKey: string;
  count: number;
  bytes: number;
  text: string;
  raw: Uint8Array;
  contentDisposition: string | undefined;
}

/** A split export's files as recorded, with their stored text (gunzipped when compressed). */
async function storedParts(jobId: string): Promise<StoredPart[]> {
  const rows = await db().select().from(exportFiles).where(eq(exportFiles.jobId, jobId)).orderBy(asc(exportFiles.fileIndex));
  return Promise.all(
    rows.map(async (row) => {
      const object = (await env.EXPORTS.get(row.objectKey))!;
      const raw = new Uint8Array(await object.arrayBuffer());
      const text = row.objectKey.endsWith(".gz") ? gunzip(raw) : new TextDecoder().decode(raw);
      return { ...row, text, raw, contentDisposition: object.httpMetadata?.contentDisposition };
    }),
  );
}

/** The unsplit export of the same details, as the reference. */
async function unsplit(h: Harness, data: Dataset, details: Record<string, unknown>): Promise<string> {
  const jobId = await createJob(h, data.account, { segmentid: [data.segment], include_membership: true, customfields: "all", ...details });
  await runToEnd(h, jobId, 5_000);
  const job = await jobRow(jobId);
  return (await env.EXPORTS.get(job.objectKey))!.text();
}

async function split(h: Harness, data: Dataset, details: Record<string, unknown>) {
  const jobId = await createJob(h, data.account, { segmentid: [data.segment], include_membership: true, customfields: "all", ...details });
  await runToEnd(h, jobId, 5_000);
  return { jobId, job: await jobRow(jobId), parts: await storedParts(jobId) };
}

/** The records of a file of each format, as text: JSON objects, CSV rows without the header, NDJSON lines. */
function recordsOf(format: "json" | "csv" | "ndjson", text: string): unknown[] {
  if (format === "json") return (JSON.parse(text) as { response: { data: { subscribers: unknown[] } } }).response.data.subscribers;
  if (format === "csv") return parseCsv(text).slice(1);
  return text.split("\n").slice(0, -1);
}

/** Checks that each part is a complete file of its format on its own, with `count` records. */
function expectCompleteFile(format: "json" | "csv" | "ndjson", part: StoredPart, header: string) {
  if (format === "json") {
    const file = JSON.parse(part.text) as { response: { status: string; data: { subscribers: unknown[]; count: number } } };
    expect(file.response.status).toBe("SUCCESS");
    expect(file.response.data.count).toBe(part.count);
    expect(file.response.data.subscribers).toHaveLength(part.count);
  } else if (format === "csv") {
    expect(part.text.startsWith(header)).toBe(true);
    expect(parseCsv(part.text)).toHaveLength(part.count + 1);
  } else {
    expect(part.text.endsWith("\n")).toBe(true);
    expect(part.text.split("\n")).toHaveLength(part.count + 1);
  }
}

const csvHeader = (text: string) => text.slice(0, text.indexOf("\r\n") + 2);

describe("max_rows_per_file", () => {
  for (const format of ["json", "csv", "ndjson"] as const) {
    for (const compression of ["none", "gzip"] as const) {
      it(`${format}${compression === "gzip" ? ".gz" : ""}: files of at most that many records, each complete, together the unsplit export in order`, async () => {
        const data = await seedMany(1_050, 40);
        // 128-row pages, one a slice: files begin mid-page and span slices.
        const h = harness({ EXPORT_PAGE_SIZE: 128, EXPORT_SLICE_MAX_PAGES: 1 });
        const reference = await unsplit(h, data, { format });
        const { job, parts } = await split(h, data, { format, compression, max_rows_per_file: 300 });

        expect(parts.map((p) => p.count)).toEqual([300, 300, 300, 150]);
        expect(job.processedCount).toBe(1_050);
        expect(job.slices).toBeGreaterThan(8);
        const extension = `${format}${compression === "gzip" ? ".gz" : ""}`;
        parts.forEach((part, i) => {
          const name = `segment-export-${job.id}-part-000${i + 1}.${extension}`;
          expect(part.objectKey).toBe(`exports/${data.account.id}/${name}`);
          expect(part.contentDisposition).toBe(`attachment; filename="${name}"`);
          expect(part.bytes).toBe(part.raw.byteLength);
          expectCompleteFile(format, part, csvHeader(reference));
        });
        expect(recordsOf(format, reference)).toEqual(seededRecords(data, format));
        expect(parts.flatMap((p) => recordsOf(format, p.text))).toEqual(recordsOf(format, reference));
        if (format === "ndjson") expect(parts.map((p) => p.text).join("")).toBe(reference);
        expect(job.bytesWritten).toBe(parts.reduce((n, p) => n + p.bytes, 0));
      });
    }
  }

  it("an export that fits in one file still has it numbered and listed, and its link is also the url", async () => {
    const data = await seedMany(120, 10);
    const h = harness({ EXPORT_PAGE_SIZE: 50 });
    const { job, parts } = await split(h, data, { max_rows_per_file: 500 });
    expect(parts.map((p) => ({ fileIndex: p.fileIndex, count: p.count }))).toEqual([{ fileIndex: 1, count: 120 }]);
    const status = await statusOf(data.account, job.id);
    expect(status.files).toHaveLength(1);
    expect(status.url).toBe(status.files[0]!.url);
    expect(new URL(status.url!).pathname).toBe(`/exports/${job.id}/1`);
  });

  it("an export that matches nothing has one valid, empty file", async () => {
    const empty = await seedMany(0, 10);
    const { parts } = await split(harness(), empty, { max_rows_per_file: 100 });
    expect(parts.map((p) => [p.count, JSON.parse(p.text)])).toEqual([[0, { response: { status: "SUCCESS", data: { subscribers: [], count: 0 } } }]]);
  });
});

/**
 * About 9.7 MB of JSON (8.5 MB of CSV): two files under a 6 MiB limit, the first a multipart upload (the
 * tests' parts are 5 MiB).
 */
const BIG = { rows: 9_000, bio: 700, limit: 6 * MiB };

describe("max_file_size", () => {
  for (const format of ["ndjson", "csv", "json"] as const) {
    it(`${format}: no file is over the limit, each is as full as the next record allows, and together they are the unsplit export`, async () => {
      const data = await seedMany(BIG.rows, BIG.bio);
      const h = harness({ EXPORT_PAGE_SIZE: 500 });
      const reference = await unsplit(h, data, { format });
      expect(byteLength(reference)).toBeGreaterThan(BIG.limit);
      const { parts } = await split(h, data, { format, max_file_size: BIG.limit });

      expect(parts).toHaveLength(2);
      for (const part of parts) {
        expect(part.bytes).toBeLessThanOrEqual(BIG.limit);
        expect(part.bytes).toBe(byteLength(part.text));
        expectCompleteFile(format, part, csvHeader(reference));
      }
      expect(parts.flatMap((p) => recordsOf(format, p.text))).toEqual(recordsOf(format, reference));
      if (format !== "json") {
        // The next file's first record, with its line end, would not have fitted.
        const nextRecord = format === "ndjson" ? parts[1]!.text.split("\n")[0]! + "\n" : parts[1]!.text.split("\r\n")[1]! + "\r\n";
        expect(parts[0]!.bytes + byteLength(nextRecord)).toBeGreaterThan(BIG.limit);
      } else {
        // The next record and its comma would not have fitted, with the envelope's end counting one more.
        const next = JSON.stringify((JSON.parse(parts[1]!.text) as { response: { data: { subscribers: unknown[] } } }).response.data.subscribers[0]);
        expect(parts[0]!.bytes + 1 + byteLength(next)).toBeGreaterThan(BIG.limit - String(parts[0]!.count + 1).length + String(parts[0]!.count).length);
      }
    });
  }

  it("gzip: the limit counts uncompressed bytes, so each .gz file is the plain split's file, compressed", async () => {
    const data = await seedMany(BIG.rows, BIG.bio);
    const h = harness({ EXPORT_PAGE_SIZE: 500 });
    const plain = await split(h, data, { format: "csv", max_file_size: BIG.limit });
    const gzip = await split(h, data, { format: "csv", max_file_size: BIG.limit, compression: "gzip" });
    expect(gzip.parts.map((p) => p.text)).toEqual(plain.parts.map((p) => p.text));
    for (const part of gzip.parts) expect(part.bytes).toBeLessThan(part.text.length / 2);
  });
});

async function statusOf(account: TestAccount, jobid: string): Promise<JobStatus> {
  return dataOf(await callApi<JobStatus>(request(account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid })));
}

describe("the files of a split export, as the client sees them", () => {
  it("are listed with url, count and bytes by the status call, the job list and the webhook; url alone is null", async () => {
    const data = await seedMany(700, 20);
    const h = harness({ EXPORT_PAGE_SIZE: 200 });
    const { job, parts } = await split(h, data, { max_rows_per_file: 250 });

    const status = await statusOf(data.account, job.id);
    expect(status.url).toBeNull();
    expect(status.files.map(({ count, bytes }) => ({ count, bytes }))).toEqual(parts.map(({ count, bytes }) => ({ count, bytes })));
    expect(status.files.map((f) => new URL(f.url).pathname)).toEqual([1, 2, 3].map((n) => `/exports/${job.id}/${n}`));
    expect(status.bytes).toBe(parts.reduce((n, p) => n + p.bytes, 0));
    expect(status.count).toBe(700);
    expect((status as unknown as Record<string, unknown>).max_rows_per_file).toBe(250);

    const list = dataOf(await callApi<{ jobs: JobStatus[] }>(request(data.account, "Segments", "GetSegmentSubscribersAsyncJobs", {})));
    const listed = list.jobs.find((j) => j.jobid === job.id)!;
    expect(listed.files.map((f) => f.count)).toEqual([250, 250, 200]);

    const [webhook] = h.webhooks.filter((w) => JSON.parse(w.body).data.jobid === job.id);
    const event = JSON.parse(webhook!.body) as { type: string; data: Record<string, unknown> & { files: JobStatus["files"] } };
    expect(event.type).toBe("segment_export.completed");
    expect(event.data).not.toHaveProperty("url");
    expect(event.data.count).toBe(700);
    expect(event.data.files.map(({ count, bytes }) => ({ count, bytes }))).toEqual(parts.map(({ count, bytes }) => ({ count, bytes })));
  });

  it("each link downloads its own file (with its name, ranges and ETag) and no other", async () => {
    const data = await seedMany(700, 20);
    const h = harness({ EXPORT_PAGE_SIZE: 200 });
    const { job, parts } = await split(h, data, { max_rows_per_file: 250, format: "csv" });
    const { files } = await statusOf(data.account, job.id);

    for (const [i, file] of files.entries()) {
      const response = await exports.default.fetch(file.url);
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Disposition")).toBe(`attachment; filename="segment-export-${job.id}-part-000${i + 1}.csv"`);
      expect(await response.text()).toBe(parts[i]!.text);
    }
    const ranged = await exports.default.fetch(files[1]!.url, { headers: { Range: "bytes=0-9" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("Content-Range")).toBe(`bytes 0-9/${parts[1]!.bytes}`);
    expect(await ranged.text()).toBe(parts[1]!.text.slice(0, 10));

    // File 1's signature, presented for file 2 or for the whole job, opens nothing.
    const first = new URL(files[0]!.url);
    for (const path of [`/exports/${job.id}/2`, `/exports/${job.id}`]) {
      const forged = await exports.default.fetch(`${first.origin}${path}${first.search}`);
      expect({ status: forged.status, body: await forged.json() }).toEqual({
        status: 403,
        body: { response: { status: "ERROR", errormessage: "This download link's signature is not valid" } },
      });
    }
    const noSuchFile = await exports.default.fetch(`${first.origin}/exports/${job.id}/01${first.search}`);
    expect(noSuchFile.status).toBe(404);
  });
});


const FAULT_POINTS: FaultPoint[] = ["after-read", "mid-part", "after-part-upload", "before-checkpoint", "before-complete", "after-complete"];

describe("a split export whose slice dies", () => {
  it("anywhere around a file's end (small files, stored with one put): the same files, every record once", async () => {
    const data = await seedMany(1_050, 40);
    const reference = await split(harness({ EXPORT_PAGE_SIZE: 128, EXPORT_SLICE_MAX_PAGES: 2 }), data, { format: "ndjson", max_rows_per_file: 300 });
    for (const point of FAULT_POINTS.filter((p) => p !== "after-part-upload")) {
      for (const nth of [1, 2]) {
        const death = dieAt(point, nth);
        const h = harness({ EXPORT_PAGE_SIZE: 128, EXPORT_SLICE_MAX_PAGES: 2 }, death.fault);
        const { parts } = await split(h, data, { format: "ndjson", max_rows_per_file: 300 });
        expect(death.died, `${point} #${nth}`).toBe(true);
        expect(parts.map((p) => [p.count, p.text]), `${point} #${nth}`).toEqual(reference.parts.map((p) => [p.count, p.text]));
      }
    }
  });

  it("anywhere around a file's end (multipart files): the same files, every record once", async () => {
    const data = await seedMany(BIG.rows, BIG.bio);
    const reference = await split(harness({ EXPORT_PAGE_SIZE: 1_000 }), data, { format: "ndjson", max_file_size: BIG.limit });
    expect(reference.parts).toHaveLength(2);
    for (const point of FAULT_POINTS) {
      const death = dieAt(point, 1);
      const h = harness({ EXPORT_PAGE_SIZE: 1_000 }, death.fault);
      const { job, parts } = await split(h, data, { format: "ndjson", max_file_size: BIG.limit });
      expect(death.died, point).toBe(true);
      expect(job.state).toBe("complete");
      expect(parts.map((p) => [p.count, p.bytes, p.text]), point).toEqual(reference.parts.map((p) => [p.count, p.bytes, p.text]));
    }
  });
});

describe("a split export whose account moves to another shard mid-way", () => {
  it("starts over on the new shard from file 1: the files it had are replaced, none is left over or mixed", async () => {
    const data = await seedMany(1_050, 40);
    const h = harness({ EXPORT_PAGE_SIZE: 128, EXPORT_SLICE_MAX_PAGES: 1, MOVE_PAGE_ROWS: 500 });
    const details = { segmentid: [data.segment], include_membership: true, customfields: "all", max_rows_per_file: 300, format: "ndjson" };
    const jobId = await createJob(h, data.account, details);
    let message = { kind: "export" as const, jobId, drive: 0 };
    for (let slice = 0; slice < 6; slice++) {
      await handle(h, message);
      message = h.sent.splice(0)[0]!.body as typeof message;
    }
    expect((await jobRow(jobId)).fileIndex).toBe(3);

    const target = TEST_SHARDS.find((shard) => shard !== data.account.shard)!;
    const moveId = await requestMove(db(), data.account.id, target, h.clock.now);
    await playQueue(h, [{ kind: "move", moveId, drive: 0 }], 2_000);
    // Changed on the new shard after the move: only an export that starts over there sees it.
    const moved = await shardDb(data.account.id);
    await moved.run(sql`UPDATE subscribers SET email = 'moved-first@example.com' WHERE id = (SELECT min(id) FROM subscribers WHERE account_id = ${data.account.id})`);

    await runToEnd(h, jobId, 5_000);
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "complete", shard: target, processedCount: 1_050 });
    const parts = await storedParts(jobId);
    const fresh = await split(harness({ EXPORT_PAGE_SIZE: 128 }), data, details);
    expect(parts.map((p) => [p.fileIndex, p.count, p.text])).toEqual(fresh.parts.map((p) => [p.fileIndex, p.count, p.text]));
    expect(parts[0]!.text).toContain("moved-first@example.com");
    expect(await objectsOf(data.account.id, jobId)).toHaveLength(4);
  });
});

/** Every object stored under the export's name (its parts, and any object of a part it was writing). */
async function objectsOf(accountId: number, jobId: string): Promise<string[]> {
  const listed = await env.EXPORTS.list({ prefix: `exports/${accountId}/segment-export-${jobId}` });
  return listed.objects.map((o) => o.key);
}

describe("a split export keeps no files it should not", () => {
  it("canceled after two files were stored: both are deleted", async () => {
    const data = await seedMany(1_050, 40);
    const h = harness({ EXPORT_PAGE_SIZE: 128, EXPORT_SLICE_MAX_PAGES: 1 });
    const jobId = await createJob(h, data.account, { segmentid: [data.segment], max_rows_per_file: 300 });
    let message = { kind: "export" as const, jobId, drive: 0 };
    for (let slice = 0; slice < 6; slice++) {
      await handle(h, message);
      message = h.sent.splice(0)[0]!.body as typeof message;
    }
    expect(await objectsOf(data.account.id, jobId)).toHaveLength(2);
    const outcome = await cancelExport(h.deps.env, db(), data.account.id, jobId, Date.now());
    expect(outcome.kind).toBe("canceled");
    expect(await objectsOf(data.account.id, jobId)).toEqual([]);
  });

  it("at the end of its retention: every file is deleted, and the status says expired", async () => {
    const data = await seedMany(700, 20);
    const h = harness({ EXPORT_PAGE_SIZE: 200 });
    const { job } = await split(h, data, { max_rows_per_file: 250 });
    expect(await objectsOf(data.account.id, job.id)).toHaveLength(3);
    h.clock.now = job.retainedUntil! + 1;
    await deleteExpiredFiles(h.deps);
    expect(await objectsOf(data.account.id, job.id)).toEqual([]);
    expect((await jobRow(job.id)).state).toBe("expired");
  });

  it("needing more files than EXPORT_MAX_FILES: fails at the start when the row limit tells, naming the limit to raise", async () => {
    const data = await seedMany(1_050, 40);
    const h = harness({ EXPORT_PAGE_SIZE: 128, EXPORT_MAX_FILES: 3 });
    const { job } = await split(h, data, { max_rows_per_file: 300 });
    expect(job.state).toBe("failed");
    expect(job.errorMessage).toBe("The export cannot run: it would need more than 3 files; raise max_rows_per_file (300) (1050 rows match)");
    expect(await objectsOf(data.account.id, job.id)).toEqual([]);
    const [webhook] = h.webhooks.filter((w) => JSON.parse(w.body).data.jobid === job.id);
    expect(JSON.parse(webhook!.body).type).toBe("segment_export.failed");
  });

  it("needing more files than EXPORT_MAX_FILES by size: fails when it gets there, and the files it made are deleted", async () => {
    const data = await seedMany(6_000, 700);
    const h = harness({ EXPORT_PAGE_SIZE: 1_000, EXPORT_MAX_FILES: 1 });
    const { job } = await split(h, data, { max_file_size: 5 * MiB, format: "ndjson" });
    expect(job.state).toBe("failed");
    expect(job.errorMessage).toBe(`The export cannot run: it would need more than 1 files; raise max_file_size (${5 * MiB})`);
    expect(await objectsOf(data.account.id, job.id)).toEqual([]);
  });
});

describe("asking for a split export", () => {
  const ask = (data: Dataset, details: Record<string, unknown>) =>
    callApi(
      request(data.account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: [data.segment],
        notify: { type: "email", value: "exports@example.com" },
        ...details,
      }),
    );
  const refused = (errormessage: string) => ({ status: 400, body: { response: { status: "ERROR", errormessage } } });

  it("refuses sizes under 5 MiB, and anything but a whole number, saying the range", async () => {
    const data = await seedMany(1, 10);
    const range = "details.max_file_size: must be a whole number of bytes from 5242880 to 5497558138880";
    for (const value of [5 * MiB - 1, 1.5 * MiB * 4 + 0.5, "ten megabytes", "", true, -1, "6e6"]) {
      expect(await ask(data, { max_file_size: value }), String(value)).toEqual(refused(range));
    }
    const rows = "details.max_rows_per_file: must be a whole number from 100 to 100000000";
    for (const value of [0, 99, 12.5, "1,000", null]) {
      expect(await ask(data, { max_rows_per_file: value }), String(value)).toEqual(refused(rows));
    }
  });

  it("takes a whole number as a number or as digits; the limits are part of the request an idempotency key is bound to", async () => {
    const data = await seedMany(1, 10);
    const key = crypto.randomUUID();
    const first = dataOf<{ jobid: string; deduplicated: boolean }>(await ask(data, { max_file_size: "10485760", idempotency_key: key }));
    const again = dataOf<{ jobid: string; deduplicated: boolean }>(await ask(data, { max_file_size: 10 * MiB, idempotency_key: key }));
    expect(again).toEqual({ jobid: first.jobid, status: expect.any(String), deduplicated: true });
    expect((await jobRow(first.jobid)).spec).toMatchObject({ maxFileBytes: 10 * MiB });
    const other = await ask(data, { max_file_size: 10 * MiB, max_rows_per_file: 1000, idempotency_key: key });
    expect(other.status).toBe(409);
  });
});
