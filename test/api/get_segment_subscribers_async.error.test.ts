import { beforeAll, describe, expect, it } from "vitest";
import { callApi, createField, createSegment, dataOf, request, seedScenario } from "../fixtures";
import type { RuleGroup } from "../../src/segments/rules";
import { EMAIL_NOTIFY, expectError, exportJobCount, waitForDelivered, type Scenario } from "./helpers";

let s: Scenario;
let other: Scenario;
beforeAll(async () => {
  s = await seedScenario();
  other = await seedScenario();
});

/** Calls GetSegmentSubscribersAsync and checks the exact error, and that no job was written for the account. */
async function expectRefused(details: unknown, status: number, errormessage: string) {
  const before = await exportJobCount(s.account.id);
  expectError(await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsync", details)), status, errormessage);
  expect(await exportJobCount(s.account.id)).toBe(before);
}

/** A request that would succeed, with one part changed. */
const valid = (overrides: Record<string, unknown>) => ({ segmentid: [s.segments.customers], notify: EMAIL_NOTIFY, ...overrides });

describe("GetSegmentSubscribersAsync refuses, writing no job: segmentid", () => {
  it("without segmentid", async () => {
    await expectRefused({ notify: EMAIL_NOTIFY }, 400, "details.segmentid: is required");
  });

  it("without any details at all, naming both required fields", async () => {
    await expectRefused(undefined, 400, "details.segmentid: is required; details.notify: is required: {type: email|webhook, value}");
  });

  it("with an empty segmentid array", async () => {
    await expectRefused(valid({ segmentid: [] }), 400, "details.segmentid: must name at least one segment");
  });

  it("with an element that is not an id, naming the element", async () => {
    await expectRefused(valid({ segmentid: [s.segments.customers, "twelve"] }), 400, 'details.segmentid.1: "twelve" is not a segment id');
  });

  it("with several elements that are not ids, naming each", async () => {
    await expectRefused(
      valid({ segmentid: [0, -3, 1.5, null, true, "12a"] }),
      400,
      "details.segmentid.0: 0 is not a segment id; details.segmentid.1: -3 is not a segment id; " +
        "details.segmentid.2: 1.5 is not a segment id; details.segmentid.3: null is not a segment id; " +
        'details.segmentid.4: true is not a segment id; details.segmentid.5: "12a" is not a segment id',
    );
  });

  it.each([
    ["a word", "all", '"all" is not a segment id'],
    ["an object", { id: 1 }, '{"id":1} is not a segment id'],
    ["a comma-separated string", "1,2", '"1,2" is not a segment id'],
  ])("with segmentid %s", async (_, segmentid, message) => {
    await expectRefused(valid({ segmentid }), 400, `details.segmentid.0: ${message}`);
  });

  it("with a segment of another account, 404 naming the id", async () => {
    await expectRefused(
      valid({ segmentid: [other.segments.vip] }),
      404,
      `details.segmentid: no segment ${other.segments.vip} in this account`,
    );
  });

  it("with known and unknown ids mixed, 404 naming only the unknown ones", async () => {
    await expectRefused(
      valid({ segmentid: [s.segments.customers, 987_654_321, String(other.segments.acme), s.segments.vip] }),
      404,
      `details.segmentid: no segment 987654321, ${other.segments.acme} in this account`,
    );
  });

  it("with a segment whose rules cannot run, 422 naming the segment and the rule", async () => {
    const broken = await createSegment(
      s.account.id,
      { match: "all", rules: [{ field: "tag", operator: "equals", value: s.tags.vip }, { field: "customfield", fieldid: 999_999, operator: "equals", value: "x" }] },
      "Broken",
    );
    await expectRefused(
      valid({ segmentid: [broken] }),
      422,
      'Segment "Broken" rules[1]: custom field 999999 does not exist in this account',
    );
  });
});

describe("GetSegmentSubscribersAsync refuses a segment whose stored rule tree is malformed", () => {
  it("with 422 naming the segment and where the tree is wrong, not a 500", async () => {
    const malformed = await createSegment(s.account.id, { match: "sometimes", rules: [] } as unknown as RuleGroup, "Malformed");
    await expectRefused(
      valid({ segmentid: [malformed] }),
      422,
      'Segment "Malformed" has rules that cannot run: rules.match: Invalid option: expected one of "all"|"any"|"none"',
    );
  });
});

describe("GetSegmentSubscribersAsync refuses, writing no job: options", () => {
  it("with an unknown custom field, naming it", async () => {
    await expectRefused(valid({ customfields: ["First Name", "Shoe Size"] }), 400, 'details.customfields: unknown custom field "Shoe Size"');
  });

  it("with several unknown custom fields, naming each", async () => {
    await expectRefused(
      valid({ customfields: ["Shoe Size", "Company", "Hat"] }),
      400,
      'details.customfields: unknown custom fields "Shoe Size", "Hat"',
    );
  });

  it("with a custom field of another account", async () => {
    await createField(other.account.id, "Only Theirs");
    await expectRefused(valid({ customfields: ["Only Theirs"] }), 400, 'details.customfields: unknown custom field "Only Theirs"');
  });

  it.each([
    ["a string other than all", "First Name"],
    ["a number", 3],
  ])("with customfields %s", async (_, customfields) => {
    await expectRefused(valid({ customfields }), 400, 'details.customfields: must be an array of custom field names, or "all"');
  });

  it("with an empty custom field name", async () => {
    await expectRefused(valid({ customfields: ["Company", " "] }), 400, "details.customfields.1: a field name must not be empty");
  });

  it.each(["gone", "subscribed", ""])("with status %j", async (status) => {
    await expectRefused(
      valid({ status }),
      400,
      "details.status: must be one of any, active, inactive, bounced, unsubscribed",
    );
  });

  it.each([
    ["maybe", '"maybe"'],
    ["", '""'],
    [2, "2"],
    ["y", '"y"'],
  ])("with include_membership %j", async (include_membership, shown) => {
    await expectRefused(
      valid({ include_membership }),
      400,
      `details.include_membership: must be one of true, false, 1, 0, yes, no (got ${shown})`,
    );
  });

  it.each(["xml", "jsonl", ""])("with format %j", async (format) => {
    await expectRefused(valid({ format }), 400, "details.format: must be one of json, csv, ndjson");
  });
});

describe("GetSegmentSubscribersAsync refuses, writing no job: notify", () => {
  it("without notify", async () => {
    await expectRefused({ segmentid: [s.segments.customers] }, 400, "details.notify: is required: {type: email|webhook, value}");
  });

  it.each([
    ["a string", "someone@example.com"],
    ["an array", [EMAIL_NOTIFY]],
  ])("with notify as %s", async (_, notify) => {
    await expectRefused(valid({ notify }), 400, "details.notify: must be {type: email|webhook, value}");
  });

  it.each(["sms", "slack", ""])("with notify.type %j", async (type) => {
    await expectRefused(
      valid({ notify: { type, value: "someone@example.com" } }),
      400,
      "details.notify.type: must be one of email, webhook",
    );
  });

  it("without notify.value", async () => {
    await expectRefused(valid({ notify: { type: "email" } }), 400, "details.notify.value: must be a string");
  });

  it("with an empty notify.value", async () => {
    await expectRefused(valid({ notify: { type: "email", value: "  " } }), 400, "details.notify.value: must not be empty");
  });

  it.each(["not-an-email", "someone@", "@example.com", "two@at@example.com", "https://example.com/hook"])(
    "with an invalid email address %j",
    async (value) => {
      await expectRefused(
        valid({ notify: { type: "email", value } }),
        400,
        `details.notify.value: "${value}" is not a valid email address`,
      );
    },
  );

  it("with a plain http webhook URL (https is required)", async () => {
    await expectRefused(
      valid({ notify: { type: "webhook", value: "http://hooks.example.com/exports" } }),
      400,
      "details.notify.value: the webhook URL must use https",
    );
  });

  it.each(["ftp://hooks.example.com/x", "javascript:alert(1)"])("with a webhook URL of another scheme: %s", async (value) => {
    await expectRefused(
      valid({ notify: { type: "webhook", value } }),
      400,
      "details.notify.value: the webhook URL must use https",
    );
  });

  it.each([
    ["https://127.0.0.1/x", '"127.0.0.1" is a loopback address'],
    ["https://10.0.0.1/x", '"10.0.0.1" is a private address'],
    ["https://172.16.5.4/x", '"172.16.5.4" is a private address'],
    ["https://192.168.1.20/x", '"192.168.1.20" is a private address'],
    ["https://169.254.169.254/latest/meta-data", '"169.254.169.254" is a link-local address'],
    ["https://100.64.0.1/x", '"100.64.0.1" is a private address (shared, carrier-grade NAT)'],
    ["https://0.0.0.0/x", '"0.0.0.0" is the unspecified address'],
    ["https://[::1]/x", '"[::1]" is a loopback address'],
    ["https://[fd00::1]/x", '"[fd00::1]" is a private address (unique-local)'],
    ["https://[::ffff:7f00:1]/x", '"[::ffff:7f00:1]" is a loopback address (IPv4-mapped 127.0.0.1)'],
    ["https://localhost/x", '"localhost" is a special-use name (.localhost)'],
    ["https://api.localhost/x", '"api.localhost" is a special-use name (.localhost)'],
    ["https://2130706433/x", '"127.0.0.1" is a loopback address'],
    ["https://0x7f.1/x", '"127.0.0.1" is a loopback address'],
  ])("with a webhook to a loopback, private or link-local address: %s", async (value, problem) => {
    // The wording is src/notify/webhook_url.ts's (test/notify/ssrf.test.ts has the full table).
    await expectRefused(valid({ notify: { type: "webhook", value } }), 400, `details.notify.value: the webhook host ${problem}`);
  });

  it("with credentials in the webhook URL", async () => {
    await expectRefused(
      valid({ notify: { type: "webhook", value: "https://user:secret@hooks.example.com/x" } }),
      400,
      "details.notify.value: the webhook URL must not contain credentials",
    );
  });

  it.each(["not a url", "hooks.example.com/exports", "/relative/path"])("with a webhook value that is not a URL: %j", async (value) => {
    await expectRefused(
      valid({ notify: { type: "webhook", value } }),
      400,
      `details.notify.value: "${value}" is not an absolute URL`,
    );
  });
});

describe("GetSegmentSubscribersAsync: a refused request leaves the account able to export", () => {
  it("accepts the corrected request after refusals", async () => {
    await expectRefused(valid({ format: "xml" }), 400, "details.format: must be one of json, csv, ndjson");
    const before = await exportJobCount(s.account.id);
    const res = await callApi(request(s.account, "Segments", "GetSegmentSubscribersAsync", valid({})));
    expect(await exportJobCount(s.account.id)).toBe(before + 1);
    await waitForDelivered(s.account, dataOf<{ jobid: string }>(res).jobid);
  });
});
