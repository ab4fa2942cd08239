import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { signDownloadLink } from "../../src/download/signed_url";
import { seedScenario } from "../fixtures";
import { insertJob, membersOf, parseCsv, startExport, waitForDelivered, type Scenario } from "./helpers";

const SECRET = "test-download-signing-secret";
const BASE = "https://exports.test";

let s: Scenario;
let json: { jobid: string; url: string };
let csv: { jobid: string; url: string };
beforeAll(async () => {
  s = await seedScenario();
  const [jsonJob, csvJob] = await Promise.all([
    startExport(s.account, { segmentid: [s.segments.vip], customfields: ["Company"] }),
    startExport(s.account, { segmentid: [s.segments.acme], format: "csv" }),
  ]);
  json = { jobid: jsonJob, url: (await waitForDelivered(s.account, jsonJob)).url! };
  csv = { jobid: csvJob, url: (await waitForDelivered(s.account, csvJob)).url! };
});

const get = (url: string) => exports.default.fetch(url);

/** The link with one query parameter replaced (or removed, for null). */
function withParam(url: string, name: string, value: string | null) {
  const u = new URL(url);
  if (value === null) u.searchParams.delete(name);
  else u.searchParams.set(name, value);
  return u.toString();
}

async function expectForbidden(url: string, errormessage: string) {
  const res = await get(url);
  expect(res.status).toBe(403);
  expect(await res.json()).toEqual({ response: { status: "ERROR", errormessage } });
}

const INVALID = "This download link's signature is not valid";
const INCOMPLETE = "This download link is incomplete: it needs both expires and signature";

describe("GET /exports/<jobid>: a valid link", () => {
  it("streams the JSON file as an attachment named after the job, with its type and length", async () => {
    const res = await get(json.url);
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("content-length")).toBe(String(bytes.length));
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="segment-export-${json.jobid}.json"`);
    const file = JSON.parse(new TextDecoder().decode(bytes));
    expect(file.response.data.count).toBe(membersOf(s, ["vip"]).length);
    expect(file.response.data.subscribers.map((r: { subscriberid: number }) => r.subscriberid)).toEqual(
      membersOf(s, ["vip"]).map((p) => p.id),
    );
  });

  it("streams the CSV file as text/csv with a .csv filename", async () => {
    const res = await get(csv.url);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-length")).toBe(String(new TextEncoder().encode(text).length));
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="segment-export-${csv.jobid}.csv"`);
    expect(parseCsv(text).slice(1).map((r) => r[1])).toEqual(membersOf(s, ["acme"]).map((p) => p.email));
  });

  it("is not cached by shared caches", async () => {
    const res = await get(json.url);
    await res.body?.cancel();
    expect(res.headers.get("cache-control")).toBe("private, no-store");
  });

  it("can be downloaded more than once", async () => {
    const first = await (await get(json.url)).text();
    const second = await (await get(json.url)).text();
    expect(second).toBe(first);
  });
});

describe("GET /exports/<jobid>: links that are refused with 403", () => {
  it("refuses a tampered signature", async () => {
    const signature = new URL(json.url).searchParams.get("signature")!;
    const flipped = signature.slice(0, -1) + (signature.endsWith("0") ? "1" : "0");
    await expectForbidden(withParam(json.url, "signature", flipped), INVALID);
  });

  it("refuses a signature that is not hex", async () => {
    await expectForbidden(withParam(json.url, "signature", "not-a-signature"), INVALID);
  });

  it("refuses a tampered expiry (pushed later)", async () => {
    const expires = Number(new URL(json.url).searchParams.get("expires"));
    await expectForbidden(withParam(json.url, "expires", String(expires + 3600)), INVALID);
  });

  it("refuses an expiry that is not a whole number of seconds", async () => {
    const expires = new URL(json.url).searchParams.get("expires")!;
    await expectForbidden(withParam(json.url, "expires", `${expires}.0`), INVALID);
  });

  it("refuses one job's signature on another job's id", async () => {
    const signed = new URL(json.url);
    const swapped = new URL(`/exports/${csv.jobid}`, BASE);
    swapped.search = signed.search;
    await expectForbidden(swapped.toString(), INVALID);
  });

  it("refuses a link signed with another secret", async () => {
    const forged = await signDownloadLink(BASE, json.jobid, new Date(Date.now() + 3_600_000), "some-other-secret-of-enough-length");
    await expectForbidden(forged.url, INVALID);
  });

  it("refuses an expired link, saying when it expired", async () => {
    const expired = await signDownloadLink(BASE, json.jobid, new Date(Date.now() - 60_000), SECRET);
    await expectForbidden(expired.url, `This download link expired at ${expired.expiresAt.toISOString()}`);
  });

  it.each([
    ["signature", (url: string) => withParam(url, "signature", null)],
    ["expires", (url: string) => withParam(url, "expires", null)],
    ["both parameters", (url: string) => url.split("?")[0]!],
    ["an empty signature", (url: string) => withParam(url, "signature", "")],
  ])("refuses a link without %s", async (_, strip) => {
    await expectForbidden(strip(json.url), INCOMPLETE);
  });
});

describe("GET /exports/<jobid>: validly signed links without a file", () => {
  const signedFor = async (jobid: string) =>
    (await signDownloadLink(BASE, jobid, new Date(Date.now() + 3_600_000), SECRET)).url;

  it("answers 404 for a job that is not complete", async () => {
    const jobid = await insertJob(s.account.id, { state: "running" });
    const res = await get(await signedFor(jobid));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ response: { status: "ERROR", errormessage: `Export ${jobid} has no file` } });
  });

  it("answers 404 for a job id that does not exist", async () => {
    const res = await get(await signedFor("no-such-job"));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ response: { status: "ERROR", errormessage: "Export no-such-job has no file" } });
  });

  it("answers 404 when the job is complete but its file is gone", async () => {
    const jobid = await insertJob(s.account.id, { state: "complete", linkExpiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    const res = await get(await signedFor(jobid));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      response: { status: "ERROR", errormessage: `The file of export ${jobid} is no longer stored` },
    });
  });
});
