/**
 * Compressed exports (details.compression "gzip"): one gzip member per slice, so the file stays resumable;
 * gunzipping it gives the plain file byte for byte, in every format, in one slice or many.
 */
import { env } from "cloudflare:workers";
import { Gunzip } from "fflate";
import { describe, expect, it } from "vitest";
import { callApi, request, seedScenario } from "../fixtures";
import { createJob, exportedFile, harness, jobRow, runToEnd, type Harness } from "./driver";

/** gunzip as the command and zlib do it: every member, one after the other. */
function gunzipAll(bytes: Uint8Array): string {
  const out: Uint8Array[] = [];
  new Gunzip((chunk) => out.push(chunk)).push(bytes, true);
  return new TextDecoder().decode(concat(out));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) all.set(c, (at += c.length) - c.length);
  return all;
}

/** How many gzip members a file holds (fflate calls onmember at the start of every member after the first). */
function members(bytes: Uint8Array): number {
  let count = 1;
  const gunzip = new Gunzip(() => {});
  gunzip.onmember = () => count++;
  gunzip.push(bytes, true);
  return count;
}

async function storedBytes(jobId: string) {
  const job = await jobRow(jobId);
  const object = (await env.EXPORTS.get(job.objectKey))!;
  return { job, object, bytes: new Uint8Array(await object.arrayBuffer()) };
}

async function exportBoth(h: Harness, account: Awaited<ReturnType<typeof seedScenario>>["account"], details: Record<string, unknown>) {
  const plain = await createJob(h, account, details);
  const gzip = await createJob(h, account, { ...details, compression: "GZIP" });
  await runToEnd(h, plain);
  await runToEnd(h, gzip);
  return { plain: await exportedFile(plain), gzip: await storedBytes(gzip) };
}

describe("gzip-compressed exports", () => {
  for (const format of ["json", "csv", "ndjson"] as const) {
    it(`${format}: gunzipped, the file is the plain file byte for byte, named .${format}.gz and typed application/gzip`, async () => {
      const s = await seedScenario();
      const { plain, gzip } = await exportBoth(harness(), s.account, {
        segmentid: [s.segments.customers, s.segments.vip, s.segments.acme],
        include_membership: true,
        customfields: "all",
        format,
      });
      expect(plain.length).toBeGreaterThan(500);
      expect(gunzipAll(gzip.bytes)).toBe(plain);
      expect(gzip.job.objectKey).toMatch(new RegExp(`\\.${format}\\.gz$`));
      expect(gzip.object.httpMetadata?.contentType).toBe("application/gzip");
      expect(gzip.object.httpMetadata?.contentDisposition).toBe(`attachment; filename="segment-export-${gzip.job.id}.${format}.gz"`);
      expect(gzip.job.bytesWritten).toBe(gzip.bytes.length);
      expect(members(gzip.bytes)).toBe(1);
    });
  }

  it("across many slices: one member per slice, and gunzip gives the plain file byte for byte", async () => {
    const s = await seedScenario();
    const { plain, gzip } = await exportBoth(harness({ EXPORT_SLICE_MAX_PAGES: 1 }), s.account, {
      segmentid: [s.segments.customers, s.segments.vip, s.segments.acme],
      customfields: ["Company", "Score"],
    });
    expect(gzip.job.slices).toBe(4); // 24 rows, 7-row pages, a page a slice
    expect(members(gzip.bytes)).toBe(4);
    expect(gunzipAll(gzip.bytes)).toBe(plain);
    expect(JSON.parse(plain).response.data.count).toBe(24);
  });

  it("survives a slice that dies mid-member: the resumed slice starts a new member, nothing is doubled", async () => {
    const s = await seedScenario();
    let died = false;
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 2 }, (point) => {
      if (point === "mid-part" && !died) {
        died = true;
        throw new Error("the isolate died mid-member");
      }
    });
    const details = { segmentid: [s.segments.customers, s.segments.vip, s.segments.acme], format: "csv" };
    const gzip = await createJob(h, s.account, { ...details, compression: "gzip" });
    await runToEnd(h, gzip);
    expect(died).toBe(true);
    const reference = await createJob(harness(), s.account, details);
    await runToEnd(harness(), reference);
    expect(gunzipAll((await storedBytes(gzip)).bytes)).toBe(await exportedFile(reference));
  });

  it("an empty export is a valid gzip file of the empty (or envelope-only) file", async () => {
    const s = await seedScenario();
    const h = harness();
    const { plain, gzip } = await exportBoth(h, s.account, { segmentid: [s.segments.vip], status: "bounced", format: "ndjson" });
    expect(plain).toBe("");
    expect(gunzipAll(gzip.bytes)).toBe("");
  });

  it("is refused for an unknown compression, naming the ones there are", async () => {
    const s = await seedScenario();
    const response = await callApi(
      request(s.account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: [s.segments.vip],
        compression: "zip",
        notify: { type: "email", value: "exports@example.com" },
      }),
    );
    expect(response).toEqual({ status: 400, body: { response: { status: "ERROR", errormessage: "details.compression: must be one of none, gzip" } } });
  });
});
