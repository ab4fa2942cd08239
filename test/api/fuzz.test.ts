/**
 * Property-based fuzzing of POST /apijson.php (fast-check). Every generated request is invalid by
 * construction; each must get a 4xx with exactly the ERROR envelope {"response":{"status","errormessage"}},
 * a message of at most 300 characters, and must write nothing (export_jobs and idempotency_keys are counted
 * before and after). Never a 5xx, never SUCCESS.
 *
 * The runs are reproducible: the seed is fixed and printed. Set FUZZ_SEED to try another.
 */
import { env } from "cloudflare:workers";
import { count, eq } from "drizzle-orm";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/api/app";
import { exportJobs, idempotencyKeys } from "../../src/db/schema";
import { db, seedScenario } from "../fixtures";
import type { Scenario } from "./helpers";

const SEED = Number((globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.FUZZ_SEED ?? 20_260_517);

const app = createApp();
// Always allows: the fuzz account sends over a thousand requests, and a 429 would hide what the validation says.
const limiter: RateLimit = { limit: async () => ({ success: true }) };
// Records instead of exporting: nothing here may be accepted, and if something were, no export should run.
const sent: unknown[] = [];
const queue = { send: async (m: unknown) => void sent.push(m), sendBatch: async () => undefined } as unknown as Queue;

let s: Scenario;
beforeAll(async () => {
  s = await seedScenario();
  console.log(`fuzz seed ${SEED} (set FUZZ_SEED to change it)`);
});

/** Posts a raw body and checks the answer is a 4xx ERROR envelope; returns it for the property to log. */
async function post(body: string): Promise<{ status: number; text: string }> {
  const res = await app.fetch(
    new Request("https://exports.test/apijson.php", { method: "POST", headers: { "content-type": "application/json" }, body }),
    { ...env, ACCOUNT_RATE_LIMITER: limiter, EXPORT_QUEUE: queue },
  );
  const text = await res.text();
  const context = `HTTP ${res.status} ${text.slice(0, 300)} for ${body.slice(0, 300)}`;
  expect(res.status, context).toBeGreaterThanOrEqual(400);
  expect(res.status, context).toBeLessThan(500);
  const parsed = JSON.parse(text) as { response: { status: string; errormessage: string } };
  expect(Object.keys(parsed), context).toEqual(["response"]);
  expect(Object.keys(parsed.response).sort(), context).toEqual(["errormessage", "status"]);
  expect(parsed.response.status, context).toBe("ERROR");
  expect(typeof parsed.response.errormessage, context).toBe("string");
  expect(parsed.response.errormessage.length, context).toBeGreaterThan(0);
  expect(parsed.response.errormessage.length, context).toBeLessThanOrEqual(300);
  return { status: res.status, text };
}

async function rowCounts() {
  const [jobs] = await db().select({ n: count() }).from(exportJobs).where(eq(exportJobs.accountId, s.account.id));
  const [keys] = await db().select({ n: count() }).from(idempotencyKeys).where(eq(idempotencyKeys.accountId, s.account.id));
  return { jobs: jobs!.n, keys: keys!.n, sent: sent.length };
}

// ---- Hostile values ----

const PROTO_KEYS = ["__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty"];
const hostileStrings = fc.constantFrom(
  "",
  " ",
  "\t\r\n",
  "\u0000",
  "NaN",
  "Infinity",
  "-Infinity",
  "undefined",
  "null",
  "true",
  "0",
  "-1",
  "1e309",
  "0x10",
  "1_000",
  "٣",
  "１２",
  "' OR 1=1 --",
  "1; DROP TABLE export_jobs; --",
  '"); DELETE FROM accounts; --',
  "../../etc/passwd",
  "..\\..\\windows\\win.ini",
  "/dev/null",
  "file:///etc/passwd",
  "https://169.254.169.254/latest/meta-data",
  "http://localhost/",
  "javascript:alert(1)",
  "<script>alert(1)</script>",
  "${7*7}",
  "{{7*7}}",
  "%00",
  "=cmd|' /C calc'!A0",
  "\u202e\u0644\u0627",
  "👩‍👩‍👧‍👦".repeat(40),
  "\ud800",
  ...PROTO_KEYS,
);
const hugeStrings = fc
  .tuple(fc.constantFrom("x", "é", "😀", "\u0000", "\\", '"', "9"), fc.constantFrom(101, 201, 2049, 100_000, 300_000))
  .map(([c, n]) => c.repeat(Math.ceil(n / c.length)));
const anyString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 4, arbitrary: hostileStrings },
  { weight: 1, arbitrary: hugeStrings },
);
const numbersAndJunk = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, -1, 1.5, 2 ** 53, 2 ** 53 + 2, 1e308, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER),
  fc.boolean(),
  fc.constant(null),
);
/** Deeply nested arrays and objects, including prototype keys. */
const nested: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    numbersAndJunk,
    anyString,
    fc.array(tie("node"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 8 })), tie("node"), { maxKeys: 4 }),
  ),
})).node;
const deepArray = fc.integer({ min: 50, max: 2_000 }).map((depth) => {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
});
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: anyString },
  { weight: 2, arbitrary: numbersAndJunk },
  { weight: 2, arbitrary: nested },
  { weight: 1, arbitrary: deepArray },
);

/** A value or, now and then, no value at all (the key is left out). */
const MISSING = Symbol("missing");
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: arb }, { weight: 1, arbitrary: fc.constant(MISSING) });

/** An object from entries, leaving out MISSING ones. __proto__ etc. become own keys, as JSON.parse makes them. */
function objectOf(entries: Array<[string, unknown]>): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    if (value !== MISSING) Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return object;
}
const junkKeys = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 10 })), hostile), { maxLength: 3 });

// ---- Properties ----

const RUNS = { envelopes: 350, details: 450, status: 150, bodies: 100 };

describe(`POST /apijson.php under fuzzing (${Object.values(RUNS).reduce((a, b) => a + b)} generated requests)`, () => {
  it(`hostile envelopes without valid credentials get 4xx ERROR (${RUNS.envelopes} runs)`, async () => {
    const before = await rowCounts();
    // The real username may appear; the token never matches (a random UUID no generator can produce).
    const username = fc.oneof(hostile, fc.constant(s.account.username));
    const requesttype = fc.oneof(hostile, fc.constantFrom("Segments", "seg", "Authentication"));
    const requestmethod = fc.oneof(hostile, fc.constantFrom("GetSegmentSubscribersAsync", "GetSegments", "APITest"));
    await fc.assert(
      fc.asyncProperty(maybe(username), maybe(hostile), maybe(requesttype), maybe(requestmethod), maybe(hostile), junkKeys, async (u, t, rt, rm, details, junk) => {
        const body = objectOf([["username", u], ["usertoken", t], ["requesttype", rt], ["requestmethod", rm], ["details", details], ...junk]);
        await post(JSON.stringify(body));
      }),
      { seed: SEED, numRuns: RUNS.envelopes },
    );
    expect(await rowCounts()).toEqual(before);
  });

  it(`hostile details for GetSegmentSubscribersAsync get 4xx ERROR (${RUNS.details} runs)`, async () => {
    const before = await rowCounts();
    // segmentid is always wrong: not an id, an id of no segment here, an empty list or more than 50.
    const looksLikeId = (v: unknown) => (typeof v === "number" && Number.isSafeInteger(v) && v > 0) || (typeof v === "string" && /^\s*\d+\s*$/.test(v));
    const hasBadElement = (v: unknown) => (Array.isArray(v) ? v.length === 0 || v.some((e) => !looksLikeId(e)) : !looksLikeId(v));
    const badSegmentId = fc.oneof(
      hostile.filter(hasBadElement),
      fc.integer({ min: 2 ** 40, max: 2 ** 50 }),
      fc.integer({ min: 2 ** 40, max: 2 ** 50 }).map(String),
      fc.constant([]),
      fc.array(fc.integer({ min: 1, max: 2 ** 31 }), { minLength: 51, maxLength: 200 }),
      fc.array(fc.oneof(hostile, fc.integer({ min: 2 ** 40, max: 2 ** 50 })), { minLength: 1, maxLength: 60 }).filter((ids) =>
        ids.some((id) => typeof id !== "number" || id > 2 ** 31),
      ),
    );
    const notify = fc.oneof(
      hostile,
      fc.record({ type: fc.oneof(hostile, fc.constantFrom("email", "webhook", "EMAIL")), value: fc.oneof(hostile, fc.constantFrom("a@example.com", "https://hooks.example.com/x")) }),
    );
    const customfields = fc.oneof(
      hostile,
      fc.constantFrom("all", "ALL", ["First Name"]),
      fc.array(fc.oneof(fc.string({ maxLength: 20 }), hostileStrings), { maxLength: 600 }),
    );
    await fc.assert(
      fc.asyncProperty(
        maybe(badSegmentId),
        maybe(notify),
        maybe(fc.oneof(hostile, fc.constantFrom("active", "ANY"))),
        maybe(fc.oneof(hostile, fc.constantFrom("yes", 1, true))),
        maybe(customfields),
        maybe(fc.oneof(hostile, fc.constantFrom("csv", "json"))),
        maybe(hostile),
        junkKeys,
        async (segmentid, n, status, membership, fields, format, key, junk) => {
          const details = objectOf([
            ["segmentid", segmentid],
            ["notify", n],
            ["status", status],
            ["include_membership", membership],
            ["customfields", fields],
            ["format", format],
            ["idempotency_key", key],
            ...junk,
          ]);
          const body = { username: s.account.username, usertoken: s.account.usertoken, requesttype: "Segments", requestmethod: "GetSegmentSubscribersAsync", details };
          await post(JSON.stringify(body));
        },
      ),
      { seed: SEED, numRuns: RUNS.details },
    );
    expect(await rowCounts()).toEqual(before);
  });

  it(`hostile details for GetSegmentSubscribersAsyncStatus get 4xx ERROR (${RUNS.status} runs)`, async () => {
    const before = await rowCounts();
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostile, fc.record({ jobid: hostile }), fc.record({ jobid: fc.uuid() })), async (details) => {
        const body = { username: s.account.username, usertoken: s.account.usertoken, requesttype: "seg", requestmethod: "GetSegmentSubscribersAsyncStatus", details };
        await post(JSON.stringify(body));
      }),
      { seed: SEED, numRuns: RUNS.status },
    );
    expect(await rowCounts()).toEqual(before);
  });

  it(`bodies that are not an envelope get 4xx ERROR (${RUNS.bodies} runs)`, async () => {
    const before = await rowCounts();
    const body = fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      hostile.map((v) => JSON.stringify(v) ?? "undefined"),
      fc.json().filter((text) => {
        const v = JSON.parse(text) as unknown;
        return typeof v !== "object" || v === null || Array.isArray(v);
      }),
      fc.constantFrom("{", '{"username":', "[".repeat(10_000), '{"a":1}'.repeat(3), "\ufeff{}", "{}\u0000"),
    );
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        await post(text);
      }),
      { seed: SEED, numRuns: RUNS.bodies },
    );
    expect(await rowCounts()).toEqual(before);
  });
});
