import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { callApi, createAccount, dataOf, request, type TestAccount } from "../fixtures";
import { expectError } from "./helpers";

let account: TestAccount;
beforeAll(async () => {
  account = await createAccount();
});

const envelope = (overrides: Record<string, unknown>) => ({
  username: account.username,
  usertoken: account.usertoken,
  requesttype: "Authentication",
  requestmethod: "APITest",
  ...overrides,
});

describe("POST /apijson.php: the success envelope", () => {
  it('answers HTTP 200 with {"response":{"status":"SUCCESS","data":…}}', async () => {
    const res = await exports.default.fetch("https://exports.test/apijson.php", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request(account, "Authentication", "APITest")),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      response: { status: "SUCCESS", data: { authenticated: true, username: account.username } },
    });
  });

  it("accepts a body without a content-type header", async () => {
    const res = await exports.default.fetch("https://exports.test/apijson.php", {
      method: "POST",
      body: JSON.stringify(request(account, "Authentication", "APITest")),
    });
    expect(res.status).toBe(200);
  });

  it("treats details: null like absent details", async () => {
    const res = await callApi(request(account, "Segments", "GetSegments", null));
    expect(dataOf(res)).toEqual([]);
  });
});

describe("POST /apijson.php: method dispatch", () => {
  it.each([
    ["Authentication", "APITest"],
    ["authentication", "apitest"],
    ["AUTHENTICATION", "APITEST"],
    ["aUtHeNtIcAtIoN", "ApItEsT"],
    [" Authentication ", " APITest "],
  ])("matches requesttype %j and requestmethod %j without regard to case", async (requesttype, requestmethod) => {
    const res = await callApi(request(account, requesttype, requestmethod));
    expect(dataOf(res)).toEqual({ authenticated: true, username: account.username });
  });

  it.each(["Segments", "segments", "SEGMENTS", "Segment", "seg", "SEG", "Segm"])(
    "selects the segment methods with requesttype %j",
    async (requesttype) => {
      const res = await callApi(request(account, requesttype, "GetSegments"));
      expect(res.status).toBe(200);
      expect(dataOf(res)).toEqual([]);
    },
  );

  it("selects the authentication methods with requesttype \"auth\"", async () => {
    const res = await callApi(request(account, "auth", "apitest"));
    expect(dataOf(res)).toEqual({ authenticated: true, username: account.username });
  });

  it("rejects an unknown requesttype with 400 naming it and listing the known ones", async () => {
    expectError(
      await callApi(request(account, "Campaigns", "GetCampaigns")),
      400,
      'Unknown requesttype "Campaigns". Known request types: Authentication, Segments, Lists, Subscribers, Tags',
    );
  });

  it("does not take a prefix shorter than three letters as a requesttype", async () => {
    expectError(
      await callApi(request(account, "se", "GetSegments")),
      400,
      'Unknown requesttype "se". Known request types: Authentication, Segments, Lists, Subscribers, Tags',
    );
  });

  it("rejects an unknown requestmethod with 400 naming it and listing the methods of the type", async () => {
    expectError(
      await callApi(request(account, "seg", "GetSegmentMembers")),
      400,
      'Unknown requestmethod "GetSegmentMembers" for requesttype Segments. ' +
        "Known methods: GetSegments, GetSegmentSubscribers, GetSegmentSubscribersAsync, GetSegmentSubscribersAsyncStatus, GetSegmentSubscribersAsyncJobs, CancelSegmentSubscribersAsync, GetSegment, CreateSegment, UpdateSegment, DeleteSegment",
    );
    expectError(
      await callApi(request(account, "Authentication", "Login")),
      400,
      'Unknown requestmethod "Login" for requesttype Authentication. Known methods: APITest',
    );
  });

  it("echoes an unknown name cut to 100 characters", async () => {
    const name = `Get${"X".repeat(97)}`;
    expectError(
      await callApi(request(account, "Segments", name)),
      400,
      `Unknown requestmethod "${name.slice(0, 98)}… for requesttype Segments. ` +
        "Known methods: GetSegments, GetSegmentSubscribers, GetSegmentSubscribersAsync, GetSegmentSubscribersAsyncStatus, GetSegmentSubscribersAsyncJobs, CancelSegmentSubscribersAsync, GetSegment, CreateSegment, UpdateSegment, DeleteSegment",
    );
    expectError(
      await callApi(request(account, `"quoted" ${"T".repeat(91)}`, "x")),
      400,
      `Unknown requesttype "\\"quoted\\" ${"T".repeat(87)}…. Known request types: Authentication, Segments, Lists, Subscribers, Tags`,
    );
  });

  it("does not find a method under another requesttype", async () => {
    expectError(
      await callApi(request(account, "Authentication", "GetSegments")),
      400,
      'Unknown requestmethod "GetSegments" for requesttype Authentication. Known methods: APITest',
    );
  });
});

describe("POST /apijson.php: malformed requests", () => {
  it("rejects a body that is not JSON with 400", async () => {
    const res = await callApi('{"username": "x",');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      response: { status: "ERROR", errormessage: expect.stringMatching(/^The request body is not valid JSON: \S/) },
    });
  });

  it("rejects an empty body with 400", async () => {
    const res = await callApi("");
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      response: { status: "ERROR", errormessage: expect.stringMatching(/^The request body is not valid JSON: \S/) },
    });
  });

  it.each([
    ["a JSON array", "[1,2]"],
    ["JSON null", "null"],
    ["a JSON number", "42"],
    ["a JSON string", '"APITest"'],
  ])("rejects %s as the body with 400", async (_, body) => {
    expectError(
      await callApi(body),
      400,
      "The request body must be a JSON object with username, usertoken, requesttype, requestmethod and details",
    );
  });

  it.each(["username", "usertoken", "requesttype", "requestmethod"])("rejects a request without %s, naming it", async (field) => {
    const body: Record<string, unknown> = envelope({});
    delete body[field];
    expectError(await callApi(body), 400, `${field}: is required`);
  });

  it("names every missing field at once", async () => {
    expectError(
      await callApi({}),
      400,
      "username: is required; usertoken: is required; requesttype: is required; requestmethod: is required",
    );
  });

  it.each([
    ["usertoken", 12345],
    ["username", 42],
    ["requesttype", ["Segments"]],
    ["requestmethod", { name: "APITest" }],
    ["usertoken", null],
  ])("rejects %s of the wrong type (%j), naming it", async (field, value) => {
    expectError(await callApi(envelope({ [field]: value })), 400, `${field}: must be a string`);
  });

  it.each(["username", "usertoken", "requesttype", "requestmethod"])("rejects an empty %s, naming it", async (field) => {
    expectError(await callApi(envelope({ [field]: "" })), 400, `${field}: must not be empty`);
  });

  it.each([
    ["username", 200],
    ["usertoken", 200],
    ["requesttype", 100],
    ["requestmethod", 100],
  ])("rejects a %s over %i characters, giving the length and not the value", async (field, max) => {
    expectError(await callApi(envelope({ [field]: "x".repeat(max + 1) })), 400, `${field}: must be at most ${max} characters (got ${max + 1})`);
  });

  it("answers a 900 KB requestmethod with a short message", async () => {
    expectError(
      await callApi(envelope({ requestmethod: "A".repeat(900_000) })),
      400,
      "requestmethod: must be at most 100 characters (got 900000)",
    );
  });

  it("rejects a blank username (spaces only)", async () => {
    expectError(await callApi(envelope({ username: "   " })), 400, "username: must not be empty");
  });

  it.each(["GetSegmentSubscribersAsync", "GetSegmentSubscribersAsyncStatus"])(
    "rejects details that are a string for %s, naming details",
    async (method) => {
      expectError(
        await callApi(request(account, "Segments", method, "segmentid=1")),
        400,
        "details: Invalid input: expected object, received string",
      );
    },
  );

  it("rejects details that are an array, naming details", async () => {
    expectError(
      await callApi(request(account, "Segments", "GetSegmentSubscribersAsyncStatus", ["job"])),
      400,
      "details: Invalid input: expected object, received array",
    );
  });
});

describe("HTTP routing", () => {
  it.each(["GET", "PUT", "DELETE"])("answers %s /apijson.php with 405 in the ERROR envelope", async (method) => {
    const res = await exports.default.fetch("https://exports.test/apijson.php", { method });
    expect(res.status).toBe(405);
    expect(await res.json()).toEqual({ response: { status: "ERROR", errormessage: "Use POST with a JSON body" } });
  });

  it.each([
    ["GET", "/"],
    ["POST", "/api.php"],
    ["GET", "/apijson.php/extra"],
    ["POST", "/exports"],
  ])("answers %s %s with 404 in the ERROR envelope", async (method, path) => {
    const res = await exports.default.fetch(`https://exports.test${path}`, { method });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      response: { status: "ERROR", errormessage: "Not found: the API is at POST /apijson.php" },
    });
  });

  it("rejects a body over 1 MiB with 413", async () => {
    const body = JSON.stringify(envelope({ details: { padding: "x".repeat(1024 * 1024) } }));
    expect(body.length).toBeGreaterThan(1024 * 1024);
    const res = await exports.default.fetch("https://exports.test/apijson.php", { method: "POST", body });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      response: { status: "ERROR", errormessage: "The request body is larger than 1048576 bytes" },
    });
  });

  it("accepts a body of exactly 1 MiB", async () => {
    const base = JSON.stringify(envelope({ details: { padding: "" } }));
    const body = JSON.stringify(envelope({ details: { padding: "x".repeat(1024 * 1024 - base.length) } }));
    expect(body.length).toBe(1024 * 1024);
    const res = await exports.default.fetch("https://exports.test/apijson.php", { method: "POST", body });
    expect(res.status).toBe(200);
  });
});
