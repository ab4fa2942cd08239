/**
 * ImportSubscribersAsync through the API worker: the signed upload link, the status call, the rejects file's
 * link, the notification; the refusals around them; and the round trip import → segment → export.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { expireUploadSlots } from "../../src/export/sweeper";
import { callApi, createAccount, createField, createList, createTag, dataOf, request, seedScenario, type TestAccount } from "../fixtures";
import { expectError, parseCsv } from "../api/helpers";
import { createJob, exportedFile, harness, jobRow, runToEnd } from "../export/driver";
import { listMembers, storeImportFile } from "./helpers";

const EMAIL = { type: "email", value: "imports@example.com" } as const;
const ask = (account: TestAccount, details: Record<string, unknown>) => callApi(request(account, "Subscribers", "ImportSubscribersAsync", { notify: EMAIL, ...details }));
const statusOf = async (account: TestAccount, jobid: string) =>
  dataOf<Record<string, any>>(await callApi(request(account, "Subscribers", "ImportSubscribersAsyncStatus", { jobid })));
const put = (url: string, body: BodyInit | null) => exports.default.fetch(url, { method: "PUT", body, headers: { "Content-Type": "text/csv" } });

async function target() {
  const account = await createAccount();
  const list = await createList(account.id, "Imported");
  await createField(account.id, "Company", "text");
  await createTag(account.id, "vip");
  return { account, list };
}

describe("uploading an import's file to its signed link", () => {
  it("imports it end to end: queued on upload, counted in the status, rejects downloadable, notified by email", async () => {
    const t = await target();
    const asked = dataOf<{ jobid: string; status: string; upload: { url: string; method: string; expires_at: string } }>(await ask(t.account, { list: t.list, format: "csv" }));
    expect(asked).toMatchObject({ status: "awaiting_upload", deduplicated: false, upload: { method: "PUT" } });
    expect(new URL(asked.upload.url).pathname).toBe(`/imports/${asked.jobid}`);
    expect((await statusOf(t.account, asked.jobid)).upload.url).toBe(asked.upload.url);

    const file = "email,Company,tags\nada@example.com,Acme,vip\nnot-an-email,X,\ngrace@example.com,Navy,\n";
    const response = await put(asked.upload.url, file);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ response: { status: "SUCCESS", data: { jobid: asked.jobid, status: "queued", bytes: file.length } } });

    const done = await vi.waitUntil(
      async () => {
        const s = await statusOf(t.account, asked.jobid);
        return s.status === "complete" && s.notification.status !== "pending" ? s : false;
      },
      { timeout: 20_000, interval: 100 },
    );
    expect(done).toMatchObject({ status: "complete", rows: 3, added: 2, updated: 0, rejected: 1, percent: 100, notification: { type: "email", status: "delivered" } });
    expect(done).not.toHaveProperty("upload");
    const rejects = await exports.default.fetch(done.rejects.url);
    expect(rejects.status).toBe(200);
    expect(rejects.headers.get("Content-Disposition")).toBe(`attachment; filename="subscriber-import-${asked.jobid}-rejects.csv"`);
    expect(parseCsv(await rejects.text())).toEqual([
      ["row", "email", "reason"],
      ["2", "not-an-email", 'row 2.email: "not-an-email" is not a valid email address'],
    ]);
    // The uploaded file is deleted once imported.
    const kept = await env.EXPORTS.list({ prefix: `imports/${t.account.id}/${asked.jobid}` });
    expect(kept.objects.map((o) => o.key)).toEqual([`imports/${t.account.id}/${asked.jobid}-rejects.csv`]);
  });

  it("stores a file of more than one part exactly, whatever the size of the chunks its body arrives in", async () => {
    const t = await target();
    const asked = dataOf<{ jobid: string; upload: { url: string } }>(await ask(t.account, { list: t.list, format: "csv" }));
    // 3,000 rows of about 2 KB (6 MB: two 5 MiB parts, and many turns of the upload's read loop), each row's
    // Company naming its row, so that a byte lost or repeated anywhere makes a row invalid or a value wrong.
    const rows = Array.from({ length: 3_000 }, (_, i) => `row${i}@example.com,${String(i).padStart(6, "0").repeat(333)}\n`);
    const file = new TextEncoder().encode(`email,Company\n${rows.join("")}`);
    const chunkBytes = 60_001;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < file.length; at += chunkBytes) controller.enqueue(file.slice(at, at + chunkBytes));
        controller.close();
      },
    });
    const response = await put(asked.upload.url, body);
    expect(await response.json()).toEqual({ response: { status: "SUCCESS", data: { jobid: asked.jobid, status: "queued", bytes: file.length } } });

    const done = await vi.waitUntil(
      async () => {
        const s = await statusOf(t.account, asked.jobid);
        return s.status === "complete" ? s : false;
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(done).toMatchObject({ rows: 3_000, added: 3_000, rejected: 0 });
    const members = await listMembers(t.account.id, t.list);
    const wrong = rows.filter((row) => {
      const [email, company] = row.trimEnd().split(",");
      return Object.values(members.get(email!)?.custom_fields ?? {})[0] !== company;
    });
    expect({ members: members.size, wrong: wrong.length }).toEqual({ members: 3_000, wrong: 0 });
  });

  it("refuses a second upload, a forged link, an empty file, and a link used as another import's", async () => {
    const t = await target();
    const a = dataOf<{ jobid: string; upload: { url: string } }>(await ask(t.account, { list: t.list, format: "csv" }));
    const b = dataOf<{ jobid: string; upload: { url: string } }>(await ask(t.account, { list: t.list, format: "ndjson" }));
    const empty = await put(a.upload.url, "");
    expect({ status: empty.status, body: await empty.json() }).toEqual({
      status: 400,
      body: { response: { status: "ERROR", errormessage: "The file is empty: send its bytes as the body of this PUT" } },
    });
    const url = new URL(a.upload.url);
    const forged = await put(`${url.origin}/imports/${b.jobid}${url.search}`, "email\nx@example.com\n");
    expect({ status: forged.status, body: await forged.json() }).toEqual({ status: 403, body: { response: { status: "ERROR", errormessage: "This upload link's signature is not valid" } } });
    expect((await put(a.upload.url, "email\nx@example.com\n")).status).toBe(200);
    const again = await put(a.upload.url, "email\ny@example.com\n");
    expect(again.status).toBe(409);
    expect(((await again.json()) as any).response.errormessage).toMatch(new RegExp(`^The file of import ${a.jobid} was uploaded already`));
    // A download link's signature is not an upload link's.
    const download = new URL(url);
    download.pathname = `/exports/${a.jobid}`;
    expect((await exports.default.fetch(download.toString())).status).toBe(403);
  });

  it("ends an import whose file never came, once its link expires, and frees its place", async () => {
    const t = await target();
    const h = harness();
    const asked = dataOf<{ jobid: string }>(await ask(t.account, { list: t.list, format: "csv" }));
    h.clock.now = Date.now() + 3_600_000 + 1_000;
    expect(await expireUploadSlots(h.deps)).toBeGreaterThanOrEqual(1);
    expect(await jobRow(asked.jobid)).toMatchObject({ state: "failed", errorMessage: "No file was uploaded within 3600 seconds; ask for a new import" });
    expect(h.sent.map((m) => m.body)).toContainEqual({ kind: "notify", jobId: asked.jobid, drive: 0 });
  });
});

describe("asking for an import", () => {
  it("refuses another account's list, keys outside the account's prefix, other accounts' exports, and a missing format", async () => {
    const t = await target();
    const other = await seedScenario();
    expectError(await ask(t.account, { list: other.lists.customers, format: "csv" }), 404, `details.list: no list ${other.lists.customers} in this account`);
    expectError(await ask(t.account, { list: t.list, format: "csv", source: { object: `imports/${other.account.id}/x.csv` } }), 400, `details.source.object: must be a key under imports/${t.account.id}/`);
    expectError(await ask(t.account, { list: t.list, format: "csv", source: { object: `imports/${t.account.id}/missing.csv` } }), 404, `details.source.object: no object "imports/${t.account.id}/missing.csv" is stored`);
    expectError(await ask(t.account, { list: t.list, source: { exportjobid: "nope" } }), 404, 'details.source.exportjobid: no export "nope" in this account');
    expectError(await ask(t.account, { list: t.list }), 400, "details.format: is required: csv or ndjson");
    expectError(await ask(t.account, { list: t.list, format: "xlsx" }), 400, "details.format: must be one of csv, ndjson");
  });

  it("counts imports against the account's cap on jobs, with exports", async () => {
    const t = await target();
    for (let i = 0; i < 5; i++) dataOf(await ask(t.account, { list: t.list, format: "csv" }));
    const refused = await ask(t.account, { list: t.list, format: "csv" });
    expect(refused.status).toBe(429);
    expect((refused.body.response as { errormessage: string }).errormessage).toMatch(/^Too many jobs: this account has 5 exports and imports waiting or running/);
  });
});

describe("the round trip", () => {
  it("imports a file, defines a segment over it, and exports exactly what was imported, with fields and tags", async () => {
    const t = await target();
    const h = harness();
    const lines = Array.from({ length: 40 }, (_, i) => `person${i}@example.com,Company ${i % 3},${i % 4 === 0 ? "vip" : ""}`);
    const key = await storeImportFile(t.account.id, "round.csv", ["email,Company,tags", ...lines].join("\n"));
    const asked = dataOf<{ jobid: string }>(await ask(t.account, { list: t.list, format: "csv", source: { object: key } }));
    await vi.waitUntil(async () => (await statusOf(t.account, asked.jobid)).status === "complete", { timeout: 20_000, interval: 100 });
    const segment = dataOf<{ segmentid: string }>(
      await callApi(request(t.account, "Segments", "CreateSegment", { name: "Everyone imported", rules: { match: "all", rules: [{ field: "list", operator: "equals", value: t.list }] } })),
    );
    const exportId = await createJob(h, t.account, { segmentid: [segment.segmentid], include_membership: true, customfields: "all", format: "csv" });
    await runToEnd(h, exportId);
    const rows = parseCsv(await exportedFile(exportId));
    expect(rows[0]).toEqual(["subscriberid", "emailaddress", "status", "subscribedate", "Company", "tags"]);
    expect(rows.slice(1).map((r) => [r[1], r[2], r[4], r[5]])).toEqual(lines.map((line) => [line.split(",")[0], "active", line.split(",")[1], line.split(",")[2]]));
  });
});

describe("an import's job, seen from elsewhere", () => {
  it("is not another account's to see, and is neither an export's status nor in the export list", async () => {
    const t = await target();
    const other = await createAccount();
    const asked = dataOf<{ jobid: string }>(await ask(t.account, { list: t.list, format: "csv" }));
    expectError(
      await callApi(request(other, "Subscribers", "ImportSubscribersAsyncStatus", { jobid: asked.jobid })),
      404,
      `details.jobid: no import job "${asked.jobid}" in this account`,
    );
    expectError(
      await callApi(request(t.account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid: asked.jobid })),
      404,
      `details.jobid: no export job "${asked.jobid}" in this account`,
    );
    const jobs = dataOf<{ jobs: Array<{ jobid: string }> }>(await callApi(request(t.account, "Segments", "GetSegmentSubscribersAsyncJobs", {})));
    expect(jobs.jobs.map((j) => j.jobid)).not.toContain(asked.jobid);
    expect((await callApi(request(t.account, "Segments", "CancelSegmentSubscribersAsync", { jobid: asked.jobid }))).status).toBe(404);
  });
});
