/**
 * Subscribers / ImportSubscribersAsync: a CSV or NDJSON file (gzip or not) into a list, in resumable slices,
 * with a result for every row (added, updated, or rejected into the rejects file with its reason), counts in
 * the status call and the notification, and the same exact result whatever dies along the way.
 */
import { env } from "cloudflare:workers";
import { gzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { eq, sql } from "drizzle-orm";
import { accountDirectory } from "../../src/db/control_schema";
import { callApi, createAccount, createField, createList, createTag, dataOf, db, request, seedScenario, shardDb, type TestAccount } from "../fixtures";
import { createJob, dieAt, handle, harness, jobRow, runToEnd } from "../export/driver";
import type { FaultPoint } from "../../src/export/slice";
import { parseCsv } from "../api/helpers";
import { acceptImport, listMembers, storeImportFile } from "./helpers";

/** An account with a list, fields Company (text), Score (number), Birthday (date), and tags vip, trial. */
async function importTarget() {
  const account = await createAccount();
  const list = await createList(account.id, "Imported");
  const fields = {
    company: await createField(account.id, "Company", "text"),
    score: await createField(account.id, "Score", "number"),
    birthday: await createField(account.id, "Birthday", "date"),
  };
  const tags = { vip: await createTag(account.id, "vip"), trial: await createTag(account.id, "trial") };
  return { account, list, fields, tags };
}

async function status(account: TestAccount, jobid: string) {
  return dataOf<Record<string, any>>(await callApi(request(account, "Subscribers", "ImportSubscribersAsyncStatus", { jobid })));
}

async function rejectsOf(jobId: string): Promise<string[][]> {
  const job = await jobRow(jobId);
  const object = await env.EXPORTS.get(job.objectKey);
  return object ? parseCsv(await object.text()) : [];
}

const CSV = [
  "\ufeffemail,Company,Score,Birthday,tags,status",
  "ada@example.com,Analytical Engines,42,1815-12-10,vip; trial,active",
  '"grace@EXAMPLE.com","Navy, US",7.5,,vip,',
  "broken-address,Nowhere,1,,,",
  "alan@example.com,Bletchley,lots,,,",
  '"linus@example.com","Multi\r\nline",3,,,inactive',
  "margaret@example.com,NASA,,,nope,",
  "ada@example.com,Analytical Engines Ltd,,,,",
  "last@example.com,No line end,9,,,",
].join("\r\n");

describe("importing a CSV file", () => {
  it("adds, updates and rejects row by row; the rejects file says which row and why", async () => {
    const t = await importTarget();
    const h = harness();
    const key = await storeImportFile(t.account.id, "contacts.csv", CSV);
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: key } });
    await runToEnd(h, jobId);

    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "complete", processedCount: 8, rowsAdded: 4, rowsUpdated: 1, rowsRejected: 3 });
    const members = await listMembers(t.account.id, t.list);
    expect([...members.keys()]).toEqual(["ada@example.com", "grace@example.com", "linus@example.com", "last@example.com"]);
    expect(members.get("ada@example.com")).toMatchObject({
      status: "active",
      custom_fields: { [t.fields.company]: "Analytical Engines Ltd", [t.fields.score]: 42, [t.fields.birthday]: "1815-12-10" },
      tags: ["trial", "vip"],
    });
    expect(members.get("grace@example.com")).toMatchObject({ custom_fields: { [t.fields.company]: "Navy, US", [t.fields.score]: 7.5 }, tags: ["vip"] });
    expect(members.get("linus@example.com")).toMatchObject({ status: "inactive", custom_fields: { [t.fields.company]: "Multi\r\nline", [t.fields.score]: 3 } });
    expect(members.get("last@example.com")!.custom_fields).toEqual({ [t.fields.company]: "No line end", [t.fields.score]: 9 });

    expect(await rejectsOf(jobId)).toEqual([
      ["row", "email", "reason"],
      ["3", "broken-address", 'row 3.email: "broken-address" is not a valid email address'],
      ["4", "alan@example.com", 'row 4.customfield.1.value: must be a number (got "lots") for number field "Score"'],
      ["6", "margaret@example.com", 'row 6.tag.0: no tag "nope" in this account'],
    ]);
  });

  it("fails at once, saying why, when the header names no email column or a field the account lacks", async () => {
    const t = await importTarget();
    const h = harness();
    for (const [header, reason] of [
      ["name,Company", "the CSV header has no email (or emailaddress) column"],
      ["email,Company,Shoe Size,Hat", 'the CSV header names columns that are not a custom field of this account: "Shoe Size", "Hat" (create them with CreateCustomField first)'],
      ["email,company,Company", 'the CSV header names column "Company" twice'],
    ] as const) {
      const key = await storeImportFile(t.account.id, `bad-${crypto.randomUUID()}.csv`, `${header}\nada@example.com,x,y,z\n`);
      const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: key } });
      await runToEnd(h, jobId);
      expect(await jobRow(jobId)).toMatchObject({ state: "failed", errorMessage: `The import cannot run: ${reason}` });
    }
    expect((await listMembers(t.account.id, t.list)).size).toBe(0);
  });

  it("with update_if_exists false, rejects contacts already in the list", async () => {
    const t = await importTarget();
    const h = harness();
    const first = await storeImportFile(t.account.id, "first.csv", "email,Company\nada@example.com,One\n");
    await runToEnd(h, await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: first } }));
    const second = await storeImportFile(t.account.id, "second.csv", "email,Company\nada@example.com,Two\nnew@example.com,Three\n");
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", update_if_exists: false, source: { object: second } });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ rowsAdded: 1, rowsUpdated: 0, rowsRejected: 1 });
    expect((await rejectsOf(jobId))[1]).toEqual(["1", "ada@example.com", expect.stringMatching(/^row 1\.email: "ada@example.com" is already in list \d+ \(subscriber id \d+\)$/)]);
    expect((await listMembers(t.account.id, t.list)).get("ada@example.com")!.custom_fields).toEqual({ [t.fields.company]: "One" });
  });
});

/** `count` CSV rows (with every fifth one invalid) for the multi-slice tests. */
function bigCsv(count: number): string {
  const lines = ["email,Company,Score,tags"];
  for (let i = 0; i < count; i++) lines.push(i % 5 === 4 ? `person${i}@example.com,Co ${i},not-a-number,` : `person${i}@example.com,Co ${i},${i},${i % 2 ? "vip" : ""}`);
  return lines.join("\n") + "\n";
}

describe("an import in many slices", () => {
  const ROWS = 2_100; // three batches of up to 1,000 rows (set below); one batch a slice

  async function reference() {
    const t = await importTarget();
    const key = await storeImportFile(t.account.id, "big.csv", bigCsv(ROWS));
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1, IMPORT_BATCH_ROWS: 1_000 });
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: key } });
    await runToEnd(h, jobId);
    return { t, key, jobId, job: await jobRow(jobId), members: await listMembers(t.account.id, t.list), rejects: await rejectsOf(jobId) };
  }

  it("writes every row once, in batches and slices, with exact counts", async () => {
    const r = await reference();
    expect(r.job).toMatchObject({ state: "complete", processedCount: ROWS, rowsAdded: ROWS - ROWS / 5, rowsUpdated: 0, rowsRejected: ROWS / 5 });
    expect(r.job.slices).toBe(3);
    expect(r.members.size).toBe(ROWS - ROWS / 5);
    expect(r.members.get("person1@example.com")).toMatchObject({ custom_fields: { [r.t.fields.company]: "Co 1", [r.t.fields.score]: 1 }, tags: ["vip"] });
    expect(r.rejects).toHaveLength(ROWS / 5 + 1);
    expect(r.rejects[1]).toEqual(["5", "person4@example.com", 'row 5.customfield.1.value: must be a number (got "not-a-number") for number field "Score"']);
  });

  for (const point of ["after-read", "after-batch", "mid-part", "before-checkpoint", "before-complete", "after-complete", "before-notify"] as FaultPoint[]) {
    it(`dies ${point}: the same list, counts and rejects as an undisturbed import`, async () => {
      const r = await reference();
      const list = await createList(r.t.account.id, `again-${point}`);
      const death = dieAt(point, point === "before-complete" || point === "after-complete" || point === "before-notify" ? 1 : 2);
      const h = harness({ EXPORT_SLICE_MAX_PAGES: 1, IMPORT_BATCH_ROWS: 1_000 }, death.fault);
      const jobId = await acceptImport(h, r.t.account, { list, format: "csv", source: { object: r.key } });
      await runToEnd(h, jobId);
      expect(death.died).toBe(true);
      const job = await jobRow(jobId);
      expect(job).toMatchObject({ state: "complete", processedCount: ROWS, rowsAdded: r.job.rowsAdded, rowsUpdated: 0, rowsRejected: r.job.rowsRejected });
      const members = await listMembers(r.t.account.id, list);
      expect([...members.values()].map(({ email, custom_fields, tags }) => ({ email, custom_fields, tags }))).toEqual(
        [...r.members.values()].map(({ email, custom_fields, tags }) => ({ email, custom_fields, tags })),
      );
      expect(await rejectsOf(jobId)).toEqual(r.rejects);
    });
  }

  it("a gzip file in many slices, one dying after a batch: the same list, counts and rejects as the plain file", async () => {
    const r = await reference();
    const list = await createList(r.t.account.id, "from-gzip");
    const key = await storeImportFile(r.t.account.id, "big.csv.gz", gzipSync(new TextEncoder().encode(bigCsv(ROWS))));
    const death = dieAt("after-batch", 2);
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1, IMPORT_BATCH_ROWS: 1_000 }, death.fault);
    const jobId = await acceptImport(h, r.t.account, { list, format: "csv", source: { object: key } });
    await runToEnd(h, jobId);
    expect(death.died).toBe(true);
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "complete", processedCount: ROWS, rowsAdded: r.job.rowsAdded, rowsRejected: r.job.rowsRejected, slices: 4 });
    expect([...(await listMembers(r.t.account.id, list)).values()].map(({ email, custom_fields, tags }) => ({ email, custom_fields, tags }))).toEqual(
      [...r.members.values()].map(({ email, custom_fields, tags }) => ({ email, custom_fields, tags })),
    );
    expect(await rejectsOf(jobId)).toEqual(r.rejects);
  });

  it("a message delivered twice, or a slice run again from its checkpoint, changes nothing", async () => {
    const r = await reference();
    const list = await createList(r.t.account.id, "twice");
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1, IMPORT_BATCH_ROWS: 1_000 });
    const jobId = await acceptImport(h, r.t.account, { list, format: "csv", source: { object: r.key } });
    const first = { kind: "export" as const, jobId, drive: 0 };
    await handle(h, first);
    const next = h.sent.splice(0)[0]!.body;
    expect(await handle(h, first)).toEqual({ action: "ack" }); // a stale copy
    await handle(h, next);
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ rowsAdded: r.job.rowsAdded, rowsRejected: r.job.rowsRejected });
  });
});

describe("batches a slice wrote before it died", () => {
  /** 1,000 good rows, 1,000 rows all rejected (no address), 500 good rows: three batches, the middle one with nothing to record. */
  function csvWithRejectedBatch(): string {
    const lines = ["email,Company"];
    for (let i = 0; i < 1_000; i++) lines.push(`first${i}@example.com,One`);
    for (let i = 0; i < 1_000; i++) lines.push(`not-an-address-${i},Two`);
    for (let i = 0; i < 500; i++) lines.push(`third${i}@example.com,Three`);
    return lines.join("\n") + "\n";
  }

  it("are all found in the ledger by the next slice, across a batch of rejected rows only: each row counted once", async () => {
    const t = await importTarget();
    const key = await storeImportFile(t.account.id, "three-batches.csv", csvWithRejectedBatch());
    // One slice writes all three batches and dies before it completes the job: the next starts at the checkpoint
    // of the accepted job, the file's start.
    const death = dieAt("before-complete", 1);
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 10, IMPORT_BATCH_ROWS: 1_000 }, death.fault);
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: key } });
    await runToEnd(h, jobId);
    expect(death.died).toBe(true);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", processedCount: 2_500, rowsAdded: 1_500, rowsUpdated: 0, rowsRejected: 1_000 });
    expect((await listMembers(t.account.id, t.list)).size).toBe(1_500);
    const rejects = await rejectsOf(jobId);
    expect(rejects).toHaveLength(1_001);
    expect(rejects[1]).toEqual(["1001", "not-an-address-0", 'row 1001.email: "not-an-address-0" is not a valid email address']);
  });
});

/**
 * Imports a file into the target's list undisturbed (the reference), then into a new list with the slice dying
 * after its first batch, so that the next slice takes that batch's outcomes from the ledger.
 */
async function importUndisturbedThenDying(t: Awaited<ReturnType<typeof importTarget>>, key: string) {
  const undisturbed = harness();
  const reference = await acceptImport(undisturbed, t.account, { list: t.list, format: "csv", source: { object: key } });
  await runToEnd(undisturbed, reference);
  const list = await createList(t.account.id, "again");
  const death = dieAt("after-batch", 1);
  const h = harness({}, death.fault);
  const jobId = await acceptImport(h, t.account, { list, format: "csv", source: { object: key } });
  await runToEnd(h, jobId);
  expect(death.died).toBe(true);
  return { reference, list, jobId };
}

describe("a batch of new subscribers, taken from the ledger", () => {
  it("gives each row the outcome it had: added, merged into an earlier row of the file (updated), or rejected", async () => {
    const t = await importTarget();
    // New addresses, each fifth row repeating the row before it (merged: "updated"), each seventh rejected.
    const lines = ["email,Company,Score"];
    for (let i = 0; i < 1_000; i++) {
      const email = i % 5 === 4 ? `row${i - 1}@example.com` : `row${i}@example.com`;
      lines.push(i % 7 === 6 ? `${email},Co ${i},not-a-number` : `${email},Co ${i},${i}`);
    }
    const key = await storeImportFile(t.account.id, "merged.csv", lines.join("\n") + "\n");
    const { reference, list, jobId } = await importUndisturbedThenDying(t, key);
    const expected = await jobRow(reference);
    expect(expected.rowsUpdated).toBeGreaterThan(100);
    expect(expected.rowsRejected).toBeGreaterThan(100);
    expect(await jobRow(jobId)).toMatchObject({
      state: "complete",
      processedCount: 1_000,
      rowsAdded: expected.rowsAdded,
      rowsUpdated: expected.rowsUpdated,
      rowsRejected: expected.rowsRejected,
    });
    expect(await rejectsOf(jobId)).toEqual(await rejectsOf(reference));
    const members = (m: Awaited<ReturnType<typeof listMembers>>) => [...m.values()].map(({ email, custom_fields }) => ({ email, custom_fields }));
    expect(members(await listMembers(t.account.id, list))).toEqual(members(await listMembers(t.account.id, t.list)));
  });
});

describe("a batch's reasons in the ledger", () => {
  it("are cut to their share when together they pass 256 Ki characters, and the rows are still counted once", async () => {
    const t = await importTarget();
    // One good row and 1,999 rows naming a tag that does not exist, each reason about 140 characters.
    const lines = ["email,tags", "good@example.com,vip"];
    for (let i = 0; i < 1_999; i++) lines.push(`nope${i}@example.com,${"no-such-tag-".repeat(13)}${i}`);
    const key = await storeImportFile(t.account.id, "long-reasons.csv", lines.join("\n") + "\n");
    const { reference, jobId } = await importUndisturbedThenDying(t, key);
    const full = await rejectsOf(reference);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", rowsAdded: 1, rowsRejected: 1_999 });
    const cut = await rejectsOf(jobId);
    expect(cut.map((r) => r.slice(0, 2))).toEqual(full.map((r) => r.slice(0, 2)));
    const share = Math.floor((256 * 1024) / 1_999);
    for (const [i, row] of cut.slice(1).entries()) {
      const whole = full[i + 1]![2]!;
      expect(whole.length).toBeGreaterThan(share);
      expect(row[2]).toBe(`${whole.slice(0, share - 1)}…`);
    }
  });
});

describe("a tag deleted while an import runs", () => {
  it("is not given to the rows after it (the slice looked it up earlier), and the import goes on", async () => {
    const t = await importTarget();
    const lines = ["email,tags"];
    for (let i = 0; i < 2_500; i++) lines.push(`tagged${i}@example.com,vip; trial`);
    const key = await storeImportFile(t.account.id, "tagged.csv", lines.join("\n") + "\n");
    let deleted = false;
    // After the first batch of the (only) slice: the tag goes, its memberships with it.
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 10 }, async (point) => {
      if (point !== "mid-part" || deleted) return;
      deleted = true;
      await (await shardDb(t.account.id)).run(sql`DELETE FROM tags WHERE id = ${t.tags.vip}`);
    });
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: key } });
    await runToEnd(h, jobId);
    expect(deleted).toBe(true);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", rowsAdded: 2_500, rowsRejected: 0, slices: 1 });
    const members = await listMembers(t.account.id, t.list);
    expect(new Set([...members.values()].map((m) => m.tags.join("|")))).toEqual(new Set(["trial"]));
  });
});

describe("importing NDJSON, and an export as is", () => {
  it("re-imports an NDJSON export into another account's list: the same subscribers, fields and tags", async () => {
    const s = await seedScenario();
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 });
    const exportId = await createJob(h, s.account, { segmentid: [s.segments.customers, s.segments.vip], include_membership: true, customfields: "all", format: "ndjson", compression: "gzip" });
    await runToEnd(h, exportId);
    const exported = (await gunzipText(exportId)).trim().split("\n").map((line) => JSON.parse(line));

    // Into a fresh list of the same account, straight from the export's (multi-member gzip) file.
    const list = await createList(s.account.id, "Copy");
    const jobId = await acceptImport(h, s.account, { list, source: { exportjobid: exportId } });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", rowsAdded: exported.length, rowsRejected: 0 });
    const members = await listMembers(s.account.id, list);
    const names: Record<number, string> = { [s.fields.firstName]: "First Name", [s.fields.company]: "Company", [s.fields.score]: "Score" };
    expect(
      [...members.values()].map((m) => ({
        emailaddress: m.email,
        status: m.status,
        subscribedate: m.subscribe_date,
        customfields: Object.fromEntries(Object.entries(m.custom_fields).map(([id, v]) => [names[Number(id)], v])),
        tags: m.tags,
      })),
    ).toEqual(exported.map(({ subscriberid: _, customfields, tags, ...rest }) => ({ ...rest, customfields, tags: [...tags].sort() })));
  });

  it("rejects lines that are not JSON objects, naming the row", async () => {
    const t = await importTarget();
    const h = harness();
    const key = await storeImportFile(t.account.id, "lines.ndjson", ['{"emailaddress":"a@example.com","customfields":{"Score":1}}', "not json", "[1,2]", '{"email":"b@example.com","tags":["vip"]}', ""].join("\n"));
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "ndjson", source: { object: key } });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ rowsAdded: 2, rowsRejected: 2 });
    expect((await rejectsOf(jobId)).slice(1).map((r) => r.slice(0, 2))).toEqual([["2", ""], ["3", ""]]);
    expect((await rejectsOf(jobId))[1]![2]).toMatch(/^row 2 is not valid JSON/);
  });

  it("reads a gzip file whole, every member", async () => {
    const t = await importTarget();
    const h = harness();
    const part = (from: number) => gzipSync(new TextEncoder().encode(Array.from({ length: 3 }, (_, i) => JSON.stringify({ email: `g${from + i}@example.com` })).join("\n") + "\n"));
    const members = [part(0), part(3)];
    const bytes = new Uint8Array(members[0]!.length + members[1]!.length);
    bytes.set(members[0]!);
    bytes.set(members[1]!, members[0]!.length);
    const key = await storeImportFile(t.account.id, "two-members.ndjson.gz", bytes);
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "ndjson", source: { object: key } });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ rowsAdded: 6 });
  });

  it("reads a file of several gzip members in many slices, each resuming inside one: the same as the plain file", async () => {
    const t = await importTarget();
    const text = bigCsv(2_100);
    const lines = text.split("\n");
    // Members cut mid-batch and mid-slice: the header and 700 rows, 900 rows, the rest.
    const cuts = [lines.slice(0, 701), lines.slice(701, 1_601), lines.slice(1_601)].map((part, i, all) => part.join("\n") + (i < all.length - 1 ? "\n" : ""));
    const members = cuts.map((part) => gzipSync(new TextEncoder().encode(part)));
    const bytes = new Uint8Array(members.reduce((n, m) => n + m.length, 0));
    members.reduce((at, m) => (bytes.set(m, at), at + m.length), 0);
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1, IMPORT_BATCH_ROWS: 1_000 });
    const plain = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: await storeImportFile(t.account.id, "plain.csv", text) } });
    await runToEnd(h, plain);
    const list = await createList(t.account.id, "from-members");
    const jobId = await acceptImport(h, t.account, { list, format: "csv", source: { object: await storeImportFile(t.account.id, "members.csv.gz", bytes) } });
    await runToEnd(h, jobId);
    const expected = await jobRow(plain);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", processedCount: 2_100, rowsAdded: expected.rowsAdded, rowsRejected: expected.rowsRejected, slices: 3 });
    const members_ = (id: number) => listMembers(t.account.id, id).then((m) => [...m.values()].map(({ email, custom_fields, tags }) => ({ email, custom_fields, tags })));
    expect(await members_(list)).toEqual(await members_(t.list));
    expect(await rejectsOf(jobId)).toEqual(await rejectsOf(plain));
  });

  it("fails, saying why, on a file that is not gzip or ends early", async () => {
    const t = await importTarget();
    const h = harness();
    const whole = gzipSync(new TextEncoder().encode(Array.from({ length: 2_000 }, (_, i) => JSON.stringify({ email: `cut${i}@example.com` })).join("\n")));
    for (const [name, bytes, reason] of [
      ["not-gzip.ndjson.gz", new TextEncoder().encode('{"email":"ada@example.com"}\n'), /^The import cannot run: the file is not valid gzip: /],
      ["cut.ndjson.gz", whole.subarray(0, Math.floor(whole.length / 2)), /^The import cannot run: the gzip file ends early: /],
    ] as const) {
      const jobId = await acceptImport(h, t.account, { list: t.list, format: "ndjson", compression: "gzip", source: { object: await storeImportFile(t.account.id, name, bytes) } });
      await runToEnd(h, jobId);
      expect(await jobRow(jobId)).toMatchObject({ state: "failed", errorMessage: expect.stringMatching(reason) });
    }
  });
});

async function gunzipText(jobId: string): Promise<string> {
  const { Gunzip } = await import("fflate");
  const job = await jobRow(jobId);
  const bytes = new Uint8Array(await (await env.EXPORTS.get(job.objectKey))!.arrayBuffer());
  const out: Uint8Array[] = [];
  new Gunzip((c) => out.push(c)).push(bytes, true);
  return out.map((c) => new TextDecoder().decode(c)).join("");
}

describe("an import whose account is being moved", () => {
  it("waits while the account's writes are frozen, without counting a failure, then goes on", async () => {
    const t = await importTarget();
    const h = harness();
    const key = await storeImportFile(t.account.id, "during-move.csv", "email\nfrozen@example.com\n");
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: key } });
    await db().update(accountDirectory).set({ writesFrozen: true }).where(eq(accountDirectory.accountId, t.account.id));
    try {
      expect(await handle(h, { kind: "export", jobId, drive: 0 })).toEqual({ action: "ack" });
      expect(h.sent.splice(0)).toEqual([{ body: { kind: "export", jobId, drive: 0 }, options: { delaySeconds: 30 } }]);
      expect(await jobRow(jobId)).toMatchObject({ state: "running", sliceFailures: 0, rowsAdded: 0 });
    } finally {
      await db().update(accountDirectory).set({ writesFrozen: false }).where(eq(accountDirectory.accountId, t.account.id));
    }
    h.clock.now += 31_000;
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", rowsAdded: 1 });
  });
});

describe("rows too big for one D1 value together", () => {
  it("imports 1,000 rows of 3,000-character values (3 MB, over D1's 2 MB per value) in full, and again as updates", async () => {
    const t = await importTarget();
    const h = harness();
    const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ emailaddress: `big${i}@example.com`, customfields: { Company: `${i}`.padEnd(3000, "x") }, tags: ["vip"] }));
    const key = await storeImportFile(t.account.id, "big.ndjson", lines.join("\n"));
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "ndjson", source: { object: key } });
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", rowsAdded: 1000, rowsRejected: 0 });
    const member = (await listMembers(t.account.id, t.list)).get("big999@example.com")!;
    expect(member).toMatchObject({ custom_fields: { [t.fields.company]: "999".padEnd(3000, "x") }, tags: ["vip"] });

    // Again, into the same list: every row updates its subscriber.
    const again = await acceptImport(h, t.account, { list: t.list, format: "ndjson", source: { object: key } });
    await runToEnd(h, again);
    expect(await jobRow(again)).toMatchObject({ state: "complete", rowsAdded: 0, rowsUpdated: 1000, rowsRejected: 0 });
  });
});

describe("a batch's size", () => {
  it("ends with the row that takes it to IMPORT_BATCH_BYTES of the file, or at IMPORT_BATCH_ROWS rows", async () => {
    const t = await importTarget();
    // 100 rows of 50 bytes each (with the line end) after the header.
    const rows = Array.from({ length: 100 }, (_, i) => `row${String(i).padStart(3, "0")}@example.com,`.padEnd(49, "x"));
    const key = await storeImportFile(t.account.id, "fifty.csv", ["email,Company", ...rows].join("\n") + "\n");
    const slicesWith = async (config: { IMPORT_BATCH_BYTES?: number; IMPORT_BATCH_ROWS?: number }) => {
      const h = harness({ EXPORT_SLICE_MAX_PAGES: 1, ...config });
      const list = await createList(t.account.id);
      const jobId = await acceptImport(h, t.account, { list, format: "csv", source: { object: key } });
      await runToEnd(h, jobId);
      const job = await jobRow(jobId);
      expect(job).toMatchObject({ state: "complete", rowsAdded: 100 });
      return job.slices;
    };
    // One batch a slice, and a last slice that finds the file's end.
    expect(await slicesWith({ IMPORT_BATCH_BYTES: 1_000 })).toBe(6); // 20 rows a batch
    expect(await slicesWith({ IMPORT_BATCH_BYTES: 1_001 })).toBe(5); // 21 rows a batch: the fifth ends the file
    expect(await slicesWith({ IMPORT_BATCH_ROWS: 30 })).toBe(4);
  });

  it("is the job's own: an import requested before the spec kept it runs in batches of 1,000 rows, whatever the settings now", async () => {
    const t = await importTarget();
    const key = await storeImportFile(t.account.id, "older.csv", bigCsv(2_100));
    const h = harness({ EXPORT_SLICE_MAX_PAGES: 1 });
    const jobId = await acceptImport(h, t.account, { list: t.list, format: "csv", source: { object: key } });
    expect((await jobRow(jobId)).spec).toMatchObject({ batching: { rows: 2_000, bytes: 2 * 1024 * 1024 } });
    // As an older deploy stored it: no batching in the spec.
    await db().run(sql`UPDATE export_jobs SET spec = json_remove(spec, '$.batching') WHERE id = ${jobId}`);
    await runToEnd(h, jobId);
    expect(await jobRow(jobId)).toMatchObject({ state: "complete", processedCount: 2_100, rowsAdded: 1_680, rowsRejected: 420, slices: 3 });
  });
});
