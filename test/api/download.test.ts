import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { LINK_MESSAGES, signDownloadLink, type SigningKey } from "../../src/download/signed_url";
import worker from "../../src/workers/api";
import { seedScenario } from "../fixtures";
import { insertJob, membersOf, parseCsv, startExport, waitForDelivered, type Scenario } from "./helpers";

/** The key the test workers sign with: DOWNLOAD_SIGNING_SECRET of vitest.config.ts, under the default id. */
const CURRENT: SigningKey = { id: "k1", secret: "test-download-signing-secret" };
const BASE = "https://exports.test";
const IN_AN_HOUR = () => new Date(Date.now() + 3_600_000);

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

/** The API worker as deployed in tests (its env from vitest.config.ts). */
const get = (url: string) => exports.default.fetch(url);

/**
 * The same worker entry with other key settings, as after `wrangler secret put`: the real route, the real
 * bindings, only the download keys changed.
 */
const getWithKeys = (url: string, keys: { DOWNLOAD_SIGNING_KEY_ID?: string; DOWNLOAD_SIGNING_SECRET?: string; DOWNLOAD_PREVIOUS_SIGNING_KEYS?: string }) =>
  worker.fetch(new Request(url), { ...env, ...keys });

/** The link with one query parameter replaced (or removed, for null), written into the query string as is. */
function withParam(url: string, name: string, raw: string | null) {
  const u = new URL(url);
  const parts = u.search.slice(1).split("&").filter((part) => part.split("=")[0] !== name);
  if (raw !== null) parts.push(`${name}=${raw}`);
  return `${u.origin}${u.pathname}?${parts.join("&")}`;
}

/** The link with a query parameter added at the end (written as is). */
const appendParam = (url: string, name: string, raw: string) => `${url}&${name}=${raw}`;

const param = (url: string, name: string) => new URL(url).searchParams.get(name)!;

async function expectForbidden(response: Response | Promise<Response>, errormessage: string) {
  const res = await response;
  expect({ status: res.status, body: await res.json() }).toEqual({
    status: 403,
    body: { response: { status: "ERROR", errormessage } },
  });
}

async function expectDownload(response: Response | Promise<Response>) {
  const res = await response;
  expect(res.status).toBe(200);
  const file = JSON.parse(await res.text());
  expect(file.response.data.count).toBe(membersOf(s, ["vip"]).length);
}

const INVALID = "This download link's signature is not valid";
const INCOMPLETE = "This download link is incomplete: it needs expires, kid and signature";
const BAD_EXPIRES = "This download link is malformed: expires must be unix seconds, as digits without a sign or leading zeros";
const BAD_KID = "This download link is malformed: kid must be 1-32 letters, digits, _ or -";
const BAD_SIGNATURE = "This download link is malformed: signature must be 64 lowercase hex digits";
const twice = (name: string) => `This download link is malformed: ${name} is given more than once`;
const unknownKey = (kid: string) => `This download link was signed with key "${kid}", which is not (or no longer) accepted`;

describe("the link's form", () => {
  it("is /exports/<jobid>?expires=<unix seconds>&kid=<current key id>&signature=<64 lowercase hex>", () => {
    expect(json.url).toMatch(new RegExp(`^https://exports\\.test/exports/${json.jobid}\\?expires=[1-9]\\d{9}&kid=k1&signature=[0-9a-f]{64}$`));
  });

  it("keeps its messages in one place (the route and these tests agree)", () => {
    expect([LINK_MESSAGES.incomplete, LINK_MESSAGES.invalid, LINK_MESSAGES.expires, LINK_MESSAGES.kid, LINK_MESSAGES.signature]).toEqual([
      INCOMPLETE,
      INVALID,
      BAD_EXPIRES,
      BAD_KID,
      BAD_SIGNATURE,
    ]);
    expect(LINK_MESSAGES.unknownKey("k0")).toBe(unknownKey("k0"));
    expect(LINK_MESSAGES.duplicate("kid")).toBe(twice("kid"));
  });
});

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
    const signature = param(json.url, "signature");
    const flipped = signature.slice(0, -1) + (signature.endsWith("0") ? "1" : "0");
    await expectForbidden(get(withParam(json.url, "signature", flipped)), INVALID);
  });

  it("refuses a tampered expiry (pushed later)", async () => {
    await expectForbidden(get(withParam(json.url, "expires", String(Number(param(json.url, "expires")) + 3600))), INVALID);
  });

  it("refuses one job's signature on another job's id", async () => {
    const swapped = new URL(`/exports/${csv.jobid}`, BASE);
    swapped.search = new URL(json.url).search;
    await expectForbidden(get(swapped.toString()), INVALID);
  });

  it("refuses a tampered job id", async () => {
    const tampered = json.url.replace(`/exports/${json.jobid}?`, `/exports/${json.jobid.slice(0, -1)}${json.jobid.endsWith("0") ? "1" : "0"}?`);
    expect(tampered).not.toBe(json.url);
    await expectForbidden(get(tampered), INVALID);
  });

  it("refuses a link signed with another secret under the current key id", async () => {
    const forged = await signDownloadLink(BASE, json.jobid, IN_AN_HOUR(), { id: "k1", secret: "some-other-secret-of-enough-length" });
    await expectForbidden(get(forged.url), INVALID);
  });

  it("refuses an expired link, saying when it expired", async () => {
    const expired = await signDownloadLink(BASE, json.jobid, new Date(Date.now() - 60_000), CURRENT);
    await expectForbidden(get(expired.url), `This download link expired at ${expired.expiresAt.toISOString()}`);
  });

  it("refuses a key id that is not listed, naming it", async () => {
    const other = await signDownloadLink(BASE, json.jobid, IN_AN_HOUR(), { id: "k0", secret: CURRENT.secret });
    await expectForbidden(get(other.url), unknownKey("k0"));
  });

  it.each([
    ["signature", (url: string) => withParam(url, "signature", null)],
    ["expires", (url: string) => withParam(url, "expires", null)],
    ["kid (as links made before key ids had)", (url: string) => withParam(url, "kid", null)],
    ["any parameter", (url: string) => url.split("?")[0]!],
    ["an empty signature", (url: string) => withParam(url, "signature", "")],
    ["an empty expires", (url: string) => withParam(url, "expires", "")],
    ["an empty kid", (url: string) => withParam(url, "kid", "")],
    ["a value for expires", (url: string) => withParam(url, "expires", null) + "&expires"],
  ])("refuses a link without %s", async (_, strip) => {
    await expectForbidden(get(strip(json.url)), INCOMPLETE);
  });

  it("refuses the pre-key-id form ?expires=…&signature=… even with a valid old-style signature", async () => {
    // What links looked like before key ids: HMAC of "<jobid>.<expires>", no kid. Nothing was deployed with it.
    const expires = param(json.url, "expires");
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(CURRENT.secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${json.jobid}.${expires}`)));
    const hex = Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
    await expectForbidden(get(`${BASE}/exports/${json.jobid}?expires=${expires}&signature=${hex}`), INCOMPLETE);
  });
});

describe("GET /exports/<jobid>: non-canonical parameters are refused with 403", () => {
  const expires = () => param(json.url, "expires");

  it.each([
    ["a leading zero", (e: string) => `0${e}`],
    ["a plus sign", (e: string) => `%2B${e}`],
    ["a raw + (a space in forms)", (e: string) => `+${e}`],
    ["a minus sign", (e: string) => `-${e}`],
    ["a leading space", (e: string) => `%20${e}`],
    ["a trailing space", (e: string) => `${e}%20`],
    ["a decimal part", (e: string) => `${e}.0`],
    ["an exponent", (e: string) => `${Number(e) / 1e9}e9`],
    ["hex", (e: string) => `0x${Number(e).toString(16)}`],
    ["percent-encoded digits", (e: string) => [...e].map((d) => `%3${d}`).join("")],
    ["13 digits", (e: string) => `${e}000`],
    ["zero", () => "0"],
    ["a word", () => "never"],
  ])("refuses expires with %s", async (_, rewrite) => {
    const value = rewrite(expires());
    expect(value).not.toBe(expires());
    await expectForbidden(get(withParam(json.url, "expires", value)), BAD_EXPIRES);
  });

  it.each([
    ["not hex", () => "not-a-signature"],
    ["in upper case", (sig: string) => sig.toUpperCase()],
    ["one digit short", (sig: string) => sig.slice(1)],
    ["one digit long", (sig: string) => `${sig}0`],
    ["twice as long", (sig: string) => sig + sig],
    ["percent-encoded", (sig: string) => `%3${sig[0]}${sig.slice(1)}`],
  ])("refuses a signature %s", async (_, rewrite) => {
    const signature = param(json.url, "signature");
    await expectForbidden(get(withParam(json.url, "signature", rewrite(signature))), BAD_SIGNATURE);
  });

  it.each([
    ["with a dot", "k.1"],
    ["with a space", "k%201"],
    ["percent-encoded", "%6B1"],
    ["of 33 characters", "k".repeat(33)],
    ["with a quote", "k1%22"],
  ])("refuses a kid %s", async (_, kid) => {
    await expectForbidden(get(withParam(json.url, "kid", kid)), BAD_KID);
  });

  it.each(["expires", "kid", "signature"])("refuses %s given twice, even with the same value", async (name) => {
    await expectForbidden(get(appendParam(json.url, name, param(json.url, name))), twice(name));
  });

  it("refuses a second expires spelled with percent-encoding in its name", async () => {
    await expectForbidden(get(appendParam(json.url, "%65xpires", param(json.url, "expires"))), twice("expires"));
  });

  it("ignores parameters that are not its own (a mail client's tracking tags)", async () => {
    await expectDownload(get(`${json.url}&utm_source=newsletter`));
  });
});

describe("GET /exports/<jobid>: key rotation", () => {
  const OLD = CURRENT;
  const NEW: SigningKey = { id: "k2", secret: "the-next-download-signing-secret" };
  /** Step 1 of the rotation: the new key is current, the old one listed as previous. */
  const ROTATED = { DOWNLOAD_SIGNING_KEY_ID: NEW.id, DOWNLOAD_SIGNING_SECRET: NEW.secret, DOWNLOAD_PREVIOUS_SIGNING_KEYS: `${OLD.id}:${OLD.secret}` };
  /** Step 2, a link lifetime later: the old key is gone. */
  const RETIRED = { DOWNLOAD_SIGNING_KEY_ID: NEW.id, DOWNLOAD_SIGNING_SECRET: NEW.secret, DOWNLOAD_PREVIOUS_SIGNING_KEYS: "" };

  it("serves the current key's links through the same worker entry (the baseline)", async () => {
    await expectDownload(getWithKeys(json.url, {}));
  });

  it("still serves a link signed with the old key while the old key is listed as previous", async () => {
    expect(param(json.url, "kid")).toBe("k1");
    await expectDownload(getWithKeys(json.url, ROTATED));
  });

  it("serves links signed with the new key", async () => {
    const fresh = await signDownloadLink(BASE, json.jobid, IN_AN_HOUR(), NEW);
    await expectDownload(getWithKeys(fresh.url, ROTATED));
    await expectDownload(getWithKeys(fresh.url, RETIRED));
  });

  it("accepts any of several listed previous keys", async () => {
    const older: SigningKey = { id: "k0", secret: "an-even-older-signing-secret" };
    const keys = { ...ROTATED, DOWNLOAD_PREVIOUS_SIGNING_KEYS: `${older.id}:${older.secret},${OLD.id}:${OLD.secret}` };
    await expectDownload(getWithKeys((await signDownloadLink(BASE, json.jobid, IN_AN_HOUR(), older)).url, keys));
    await expectDownload(getWithKeys(json.url, keys));
  });

  it("refuses the old key's links once the old key is removed, naming the key", async () => {
    await expectForbidden(getWithKeys(json.url, RETIRED), unknownKey("k1"));
  });

  it("refuses a new-key link on a worker that does not know the new key yet", async () => {
    const fresh = await signDownloadLink(BASE, json.jobid, IN_AN_HOUR(), NEW);
    await expectForbidden(get(fresh.url), unknownKey("k2"));
  });

  it("refuses a signature made with key A presented under key B (both listed)", async () => {
    // The old key's signature relabelled as the new key, and the other way round.
    await expectForbidden(getWithKeys(withParam(json.url, "kid", NEW.id), ROTATED), INVALID);
    const fresh = await signDownloadLink(BASE, json.jobid, IN_AN_HOUR(), NEW);
    await expectForbidden(getWithKeys(withParam(fresh.url, "kid", OLD.id), ROTATED), INVALID);
  });

  it("refuses a signature under key B even when both keys share a secret: the key id is signed", async () => {
    const sameSecret = { DOWNLOAD_SIGNING_KEY_ID: "k2", DOWNLOAD_SIGNING_SECRET: OLD.secret, DOWNLOAD_PREVIOUS_SIGNING_KEYS: `${OLD.id}:${OLD.secret}` };
    await expectDownload(getWithKeys(json.url, sameSecret));
    await expectForbidden(getWithKeys(withParam(json.url, "kid", "k2"), sameSecret), INVALID);
  });

  it("refuses an old-key link when the listed previous key has another secret", async () => {
    const wrong = { ...ROTATED, DOWNLOAD_PREVIOUS_SIGNING_KEYS: `${OLD.id}:not-the-secret-it-was-signed-with` };
    await expectForbidden(getWithKeys(json.url, wrong), INVALID);
  });

  it("checks the signature before the expiry: an expired old-key link says it expired only while its key is listed", async () => {
    const expired = await signDownloadLink(BASE, json.jobid, new Date(Date.now() - 60_000), OLD);
    await expectForbidden(getWithKeys(expired.url, ROTATED), `This download link expired at ${expired.expiresAt.toISOString()}`);
    await expectForbidden(getWithKeys(expired.url, RETIRED), unknownKey("k1"));
  });
});

describe("GET /exports/<jobid>: validly signed links without a file", () => {
  const signedFor = async (jobid: string) =>
    (await signDownloadLink(BASE, jobid, IN_AN_HOUR(), CURRENT)).url;

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
    const jobid = await insertJob(s.account.id, {
      state: "complete",
      linkExpiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      retainedUntil: Date.now() + 3_600_000,
    });
    const res = await get(await signedFor(jobid));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      response: { status: "ERROR", errormessage: `The file of export ${jobid} is no longer stored` },
    });
  });
});

describe("GET and HEAD /exports/<jobid>: ranges, HEAD and revalidation (large downloads resume)", () => {
  let whole: Uint8Array;
  let etag: string;
  beforeAll(async () => {
    const res = await get(json.url);
    whole = new Uint8Array(await res.arrayBuffer());
    etag = res.headers.get("etag")!;
  });
  const ranged = (range: string, extra: Record<string, string> = {}) =>
    exports.default.fetch(json.url, { headers: { Range: range, ...extra } });
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

  it("announces byte ranges and an ETag on every download", async () => {
    const res = await get(json.url);
    await res.body?.cancel();
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(etag).toMatch(/^"[0-9a-f-]+"$/);
    expect(whole.length).toBeGreaterThan(500);
  });

  it("answers HEAD with the headers of the download and no body", async () => {
    const res = await exports.default.fetch(json.url, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(whole.length));
    expect(res.headers.get("etag")).toBe(etag);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it("serves one range with 206 and Content-Range: first bytes, an open end, and a suffix", async () => {
    const first = await ranged("bytes=0-99");
    expect(first.status).toBe(206);
    expect(first.headers.get("content-range")).toBe(`bytes 0-99/${whole.length}`);
    expect(first.headers.get("content-length")).toBe("100");
    expect(text(new Uint8Array(await first.arrayBuffer()))).toBe(text(whole.slice(0, 100)));

    const rest = await ranged("bytes=100-");
    expect(rest.status).toBe(206);
    expect(rest.headers.get("content-range")).toBe(`bytes 100-${whole.length - 1}/${whole.length}`);
    expect(new Uint8Array(await rest.arrayBuffer())).toEqual(whole.slice(100));

    const tail = await ranged("bytes=-50");
    expect(tail.headers.get("content-range")).toBe(`bytes ${whole.length - 50}-${whole.length - 1}/${whole.length}`);
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(whole.slice(-50));
  });

  it("resumes a download: the ranges put together are the file byte for byte", async () => {
    const cut = Math.floor(whole.length / 3);
    const parts = await Promise.all([`bytes=0-${cut - 1}`, `bytes=${cut}-${2 * cut - 1}`, `bytes=${2 * cut}-`].map(async (r) => new Uint8Array(await (await ranged(r)).arrayBuffer())));
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) joined.set(part, (at += part.length) - part.length);
    expect(joined).toEqual(whole);
  });

  it("clamps a range that runs past the end to the end", async () => {
    const res = await ranged(`bytes=${whole.length - 10}-${whole.length + 1000}`);
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes ${whole.length - 10}-${whole.length - 1}/${whole.length}`);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(whole.slice(-10));
  });

  it("answers 416 with the size for a range that starts past the end, and for an empty suffix", async () => {
    for (const range of [`bytes=${whole.length}-`, `bytes=${whole.length + 5}-${whole.length + 9}`, "bytes=-0"]) {
      const res = await ranged(range);
      expect(res.status, range).toBe(416);
      expect(res.headers.get("content-range"), range).toBe(`bytes */${whole.length}`);
      await res.body?.cancel();
    }
  });

  it("serves the whole file for several ranges at once and for a Range it cannot read", async () => {
    for (const range of ["bytes=0-9,20-29", "bytes=abc", "items=0-9", "bytes=20-10", "bytes=-"]) {
      const res = await ranged(range);
      expect(res.status, range).toBe(200);
      expect(new Uint8Array(await res.arrayBuffer()), range).toEqual(whole);
    }
  });

  it("answers 304 without a body when If-None-Match names the current ETag, and 200 for another", async () => {
    const fresh = await exports.default.fetch(json.url, { headers: { "If-None-Match": etag } });
    expect(fresh.status).toBe(304);
    expect(fresh.headers.get("etag")).toBe(etag);
    expect((await fresh.arrayBuffer()).byteLength).toBe(0);
    const listed = await exports.default.fetch(json.url, { headers: { "If-None-Match": `"other", W/${etag}` } });
    expect(listed.status).toBe(304);
    await listed.body?.cancel();
    const stale = await exports.default.fetch(json.url, { headers: { "If-None-Match": '"an-older-version"' } });
    expect(stale.status).toBe(200);
    expect(new Uint8Array(await stale.arrayBuffer())).toEqual(whole);
  });

  it("honours If-Range: the range while the ETag matches, the whole file once it does not", async () => {
    const same = await ranged("bytes=0-9", { "If-Range": etag });
    expect(same.status).toBe(206);
    await same.body?.cancel();
    const changed = await ranged("bytes=0-9", { "If-Range": '"an-older-version"' });
    expect(changed.status).toBe(200);
    expect(new Uint8Array(await changed.arrayBuffer())).toEqual(whole);
  });

  it("answers HEAD with a Range as the GET would, without the bytes", async () => {
    const res = await exports.default.fetch(json.url, { method: "HEAD", headers: { Range: "bytes=10-19" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 10-19/${whole.length}`);
    expect(res.headers.get("content-length")).toBe("10");
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it("checks the link before anything else: a forged link gets 403 on HEAD and on a ranged GET", async () => {
    const forged = withParam(json.url, "signature", "0".repeat(64));
    expect((await exports.default.fetch(forged, { method: "HEAD" })).status).toBe(403);
    const res = await exports.default.fetch(forged, { headers: { Range: "bytes=0-9" } });
    expect(res.status).toBe(403);
    await res.body?.cancel();
  });
});
