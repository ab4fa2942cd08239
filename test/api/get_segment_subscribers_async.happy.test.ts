import { exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { beforeAll, describe, expect, it } from "vitest";
import { exportJobs } from "../../src/db/schema";
import { callApi, dataOf, db, receivedWebhooks, request, seedScenario } from "../fixtures";
import {
  EMAIL_NOTIFY,
  exportCsv,
  exportJson,
  membersOf,
  startExport,
  tagNames,
  waitForDelivered,
  type JsonSubscriber,
  type Person,
  type Scenario,
} from "./helpers";

let s: Scenario;
beforeAll(async () => {
  s = await seedScenario();
});

const FIELD_NAMES = ["First Name", "Company", "Score"] as const;
type FieldName = (typeof FIELD_NAMES)[number];
const fieldId = (name: FieldName) => ({ "First Name": s.fields.firstName, Company: s.fields.company, Score: s.fields.score })[name];

/** What the JSON file should hold for these people. */
const expectedJson = (people: Person[], fields: FieldName[], withTags: boolean): JsonSubscriber[] =>
  people.map((p) => ({
    subscriberid: p.id,
    emailaddress: p.email,
    status: p.status!,
    subscribedate: p.subscribeDate!,
    customfields: Object.fromEntries(fields.map((name) => [name, p.fields![fieldId(name)]!])),
    ...(withTags ? { tags: tagNames(s, p) } : {}),
  }));

/** Tag order inside a row is not part of the contract; sort it before comparing. */
const sortTags = (rows: JsonSubscriber[]) => rows.map((r) => (r.tags ? { ...r, tags: [...r.tags].sort() } : r));

describe("Segments / GetSegmentSubscribersAsync: accepting a request", () => {
  it('answers at once with {jobid, status: "queued"} and records the job for this account', async () => {
    const res = await callApi(
      request(s.account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: [s.segments.customers],
        format: "csv",
        notify: EMAIL_NOTIFY,
      }),
    );
    expect(res.status).toBe(200);
    const data = dataOf<{ jobid: string; status: string }>(res);
    expect(data).toEqual({ jobid: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/), status: "queued", deduplicated: false });
    const job = await db().select().from(exportJobs).where(eq(exportJobs.id, data.jobid)).get();
    expect(job).toMatchObject({
      accountId: s.account.id,
      format: "csv",
      notifyType: "email",
      notifyTarget: EMAIL_NOTIFY.value,
      objectKey: `exports/${s.account.id}/segment-export-${data.jobid}.csv`,
      spec: expect.objectContaining({ segmentIds: [s.segments.customers], status: "any", includeMembership: false }),
    });
    await waitForDelivered(s.account, data.jobid);
  });

  it("completes the job through the queue consumer; the file holds exactly the segment's contacts", async () => {
    const { status, file, subscribers } = await exportJson(s.account, {
      segmentid: [s.segments.customers],
      include_membership: "yes",
      customfields: ["First Name", "Company", "Score"],
    });
    const people = membersOf(s, ["customers"]);
    expect(file.response.status).toBe("SUCCESS");
    expect(file.response.data.count).toBe(people.length);
    expect(sortTags(subscribers)).toEqual(expectedJson(people, ["First Name", "Company", "Score"], true));
    expect(status).toMatchObject({ status: "complete", count: people.length, total: people.length });
  });

  it("notifies a webhook with a signed event whose link downloads the file", async () => {
    const jobid = await startExport(s.account, {
      segmentid: [s.segments.vip],
      notify: { type: "webhook", value: "https://hooks.example.com/exports" },
    });
    const status = await waitForDelivered(s.account, jobid);
    expect(status.notification).toEqual({ type: "webhook", status: "delivered", attempts: 1 });
    const hooks = await receivedWebhooks(`msg_${jobid}`);
    expect(hooks).toHaveLength(1);
    const event = new Webhook(s.account.webhookSecret).verify(hooks[0]!.body, hooks[0]!.headers) as any;
    expect(event).toMatchObject({
      type: "segment_export.completed",
      data: {
        jobid,
        status: "SUCCESS",
        count: membersOf(s, ["vip"]).length,
        format: "json",
        segmentid: [String(s.segments.vip)],
        url: status.url,
        expires_at: status.expires_at,
      },
    });
    const file = await exports.default.fetch(event.data.url);
    expect(file.status).toBe(200);
    expect(((await file.json()) as any).response.data.count).toBe(membersOf(s, ["vip"]).length);
  });

  it("notifies by email through the mailer", async () => {
    const jobid = await startExport(s.account, { segmentid: [s.segments.acme], notify: { type: "EMAIL", value: "someone@example.com" } });
    const status = await waitForDelivered(s.account, jobid);
    expect(status.notification).toEqual({ type: "email", status: "delivered", attempts: 1 });
  });
});

describe("Segments / GetSegmentSubscribersAsync: include_membership", () => {
  it.each([true, "TRUE", "true", "yes", "Yes", "YES", 1, "1"])("adds each contact's tags when it is %j", async (value) => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.vip], include_membership: value });
    expect(sortTags(subscribers)).toEqual(expectedJson(membersOf(s, ["vip"]), [], true));
    expect(subscribers.some((r) => r.tags!.length > 1)).toBe(true);
  });

  it.each([false, "false", "FALSE", "no", "No", 0, "0"])("leaves tags out when it is %j", async (value) => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.vip], include_membership: value });
    expect(subscribers).toEqual(expectedJson(membersOf(s, ["vip"]), [], false));
    for (const row of subscribers) expect(row).not.toHaveProperty("tags");
  });

  it("leaves tags out by default", async () => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.vip] });
    expect(subscribers.length).toBeGreaterThan(0);
    for (const row of subscribers) expect(row).not.toHaveProperty("tags");
  });

  it("adds a tags column to CSV when true, with the tag names of each contact", async () => {
    const { rows } = await exportCsv(s.account, { segmentid: [s.segments.vip], include_membership: "yes" });
    expect(rows[0]).toEqual(["subscriberid", "emailaddress", "status", "subscribedate", "tags"]);
    const people = membersOf(s, ["vip"]);
    expect(rows.slice(1).map((r) => [r[0], r[4]!.split("; ").sort()])).toEqual(people.map((p) => [String(p.id), tagNames(s, p)]));
  });
});

describe("Segments / GetSegmentSubscribersAsync: customfields", () => {
  it("exports the named fields, keyed by name, in the order asked for", async () => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.customers], customfields: ["Score", "First Name"] });
    expect(subscribers).toEqual(expectedJson(membersOf(s, ["customers"]), ["Score", "First Name"], false));
    for (const row of subscribers) expect(Object.keys(row.customfields)).toEqual(["Score", "First Name"]);
    expect(subscribers[1]!.customfields).toEqual({ Score: 30, "First Name": "Name 3" });
  });

  it("matches field names without regard to case and labels them with the field's own name", async () => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.customers], customfields: ["company"] });
    expect(subscribers).toEqual(expectedJson(membersOf(s, ["customers"]), ["Company"], false));
  });

  it.each([
    ["\"all\"", "all"],
    ["\"ALL\"", "ALL"],
    ["[\"all\"]", ["all"]],
    ["\"all\" inside a list of names", ["Score", "all"]],
  ])("exports every field of the account for %s", async (_, customfields) => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.customers], customfields });
    expect(subscribers).toEqual(expectedJson(membersOf(s, ["customers"]), ["First Name", "Company", "Score"], false));
    for (const row of subscribers) expect(Object.keys(row.customfields)).toEqual(["First Name", "Company", "Score"]);
  });

  it("exports customfields as {} when none are asked for", async () => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.customers] });
    expect(subscribers.length).toBe(membersOf(s, ["customers"]).length);
    for (const row of subscribers) expect(row.customfields).toEqual({});
  });

  it("exports a field named twice only once", async () => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.customers], customfields: ["Company", "company"] });
    for (const row of subscribers) expect(Object.keys(row.customfields)).toEqual(["Company"]);
  });
});

describe("Segments / GetSegmentSubscribersAsync: format", () => {
  it("writes CSV with a header, CRLF line ends, quoted cells where needed and the fields asked for", async () => {
    const { text, rows, status } = await exportCsv(s.account, {
      segmentid: [s.segments.customers],
      customfields: ["First Name", "Company", "Score"],
    });
    const people = membersOf(s, ["customers"]);
    expect(text.split("\r\n").slice(0, -1)).toHaveLength(people.length + 1);
    expect(text.endsWith("\r\n")).toBe(true);
    expect(text).toContain(',"Acme, Inc.",');
    expect(rows).toEqual([
      ["subscriberid", "emailaddress", "status", "subscribedate", "First Name", "Company", "Score"],
      ...people.map((p) => [
        String(p.id),
        p.email,
        p.status!,
        p.subscribeDate!,
        String(p.fields![s.fields.firstName]),
        String(p.fields![s.fields.company]),
        String(p.fields![s.fields.score]),
      ]),
    ]);
    expect(status).toMatchObject({ format: "csv", count: people.length });
  });

  it.each(["json", "JSON"])("writes the JSON envelope for format %j", async (format) => {
    const { file, status } = await exportJson(s.account, { segmentid: [s.segments.acme], format });
    const people = membersOf(s, ["acme"]);
    expect(file).toEqual({ response: { status: "SUCCESS", data: { subscribers: expectedJson(people, [], false), count: people.length } } });
    expect(status.format).toBe("json");
  });

  it("accepts format \"CSV\" in capitals", async () => {
    const { rows } = await exportCsv(s.account, { segmentid: [s.segments.acme], format: "CSV" });
    expect(rows.length).toBe(membersOf(s, ["acme"]).length + 1);
  });
});

describe("Segments / GetSegmentSubscribersAsync: segmentid forms", () => {
  const union = () => membersOf(s, ["customers", "vip"]);
  it.each<[string, () => unknown]>([
    ["numbers", () => [s.segments.customers, s.segments.vip]],
    ["strings", () => [String(s.segments.customers), String(s.segments.vip)]],
    ["numbers and strings mixed", () => [String(s.segments.customers), s.segments.vip]],
    ["ids repeated", () => [s.segments.customers, String(s.segments.vip), s.segments.vip, String(s.segments.customers)]],
  ])("exports the union of the segments, each contact once, for ids given as %s", async (_, segmentid) => {
    const { subscribers, status } = await exportJson(s.account, { segmentid: segmentid() });
    expect(subscribers).toEqual(expectedJson(union(), [], false));
    expect(status.segmentid).toEqual([String(s.segments.customers), String(s.segments.vip)]);
  });

  it.each<[string, () => unknown]>([
    ["a number", () => s.segments.vip],
    ["a string", () => String(s.segments.vip)],
  ])("accepts a single segment id given as %s", async (_, segmentid) => {
    const { subscribers, status } = await exportJson(s.account, { segmentid: segmentid() });
    expect(subscribers).toEqual(expectedJson(membersOf(s, ["vip"]), [], false));
    expect(status.segmentid).toEqual([String(s.segments.vip)]);
  });
});

describe("Segments / GetSegmentSubscribersAsync: status", () => {
  it.each(["active", "Unsubscribed"])("exports only contacts whose status is %j", async (wanted) => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.customers, s.segments.vip], status: wanted });
    const people = membersOf(s, ["customers", "vip"]).filter((p) => p.status === wanted.toLowerCase());
    expect(people.length).toBeGreaterThan(0);
    expect(subscribers).toEqual(expectedJson(people, [], false));
  });

  it("exports every status by default", async () => {
    const { subscribers } = await exportJson(s.account, { segmentid: [s.segments.customers] });
    expect(new Set(subscribers.map((r) => r.status))).toEqual(new Set(["active", "inactive", "bounced", "unsubscribed"]));
  });
});
