/** The API reference: GET /openapi.json (a valid OpenAPI 3.1 document made from the methods' schemas) and GET /docs. */
import { exports } from "cloudflare:workers";
import { validate } from "@hyperjump/json-schema/openapi-3-1";
import { beforeAll, describe, expect, it } from "vitest";
import { METHODS } from "../../src/methods";
import { callApi, request, seedScenario } from "../fixtures";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let document: any;
beforeAll(async () => {
  const res = await exports.default.fetch("https://exports.test/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  document = await res.json();
});

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    expect(document.openapi).toBe("3.1.0");
    const output = await validate("https://spec.openapis.org/oas/3.1/schema-base", document);
    expect(output).toEqual({ valid: true });
  });

  it("an invalid document is caught by the same check (the validator is not a no-op)", async () => {
    const broken = { ...document, paths: { "/apijson.php": { post: { responses: "none" } } } };
    expect((await validate("https://spec.openapis.org/oas/3.1/schema-base", broken)).valid).toBe(false);
  });

  it("describes every method with its details schema, one line and an example the method accepts", () => {
    const examples = document.paths["/apijson.php"].post.requestBody.content["application/json"].examples;
    for (const method of METHODS) {
      const name = `${method.requesttype}.${method.requestmethod}`;
      const schema = document.components.schemas[name];
      expect(schema, name).toBeDefined();
      expect(schema.properties.requesttype.const).toBe(method.requesttype);
      expect(schema.properties.requestmethod.const).toBe(method.requestmethod);
      expect(schema.description).toBe(method.summary);
      expect(examples[name].value.details, name).toEqual(method.example);
      expect(method.details.safeParse(method.example).success, `${name}'s example`).toBe(true);
    }
    expect(document.paths["/apijson.php"].post.requestBody.content["application/json"].schema.oneOf).toHaveLength(METHODS.length);
  });

  it("shows the details as a client sends them: names, bounds and the values of case-insensitive enums", () => {
    const details = document.components.schemas["Segments.GetSegmentSubscribersAsync"].properties.details;
    expect(Object.keys(details.properties)).toEqual(
      expect.arrayContaining(["segmentid", "status", "include_membership", "customfields", "format", "idempotency_key", "notify"]),
    );
    expect(details.properties.format.enum).toEqual(["json", "csv", "ndjson"]);
    expect(details.properties.status.enum).toEqual(["any", "active", "inactive", "bounced", "unsubscribed"]);
    expect(details.required).toContain("notify");
    const sync = document.components.schemas["Segments.GetSegmentSubscribers"].properties.details;
    expect(sync.properties.pagination.properties.limit.maximum).toBe(1000);
  });

  it("has the success and error envelopes, and the download route with ranges and its answers", () => {
    expect(document.components.schemas.SuccessEnvelope.properties.response.properties.status.const).toBe("SUCCESS");
    expect(document.components.schemas.ErrorEnvelope.properties.response.properties.status.const).toBe("ERROR");
    const responses = document.paths["/apijson.php"].post.responses;
    expect(Object.keys(responses)).toEqual(expect.arrayContaining(["200", "400", "401", "404", "409", "422", "429", "503"]));
    const download = document.paths["/exports/{jobid}"];
    expect(Object.keys(download)).toEqual(["get", "head"]);
    expect(Object.keys(download.get.responses)).toEqual(["200", "206", "304", "403", "404", "410", "416"]);
    expect(download.get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["jobid", "expires", "kid", "signature", "Range", "If-None-Match"]),
    );
  });

  it("lists the segment_export.* and subscriber_import.* webhooks with their Standard Webhooks headers", () => {
    expect(Object.keys(document.webhooks)).toEqual([
      "segment_export.completed",
      "segment_export.failed",
      "segment_export.canceled",
      "subscriber_import.completed",
      "subscriber_import.failed",
    ]);
    for (const hook of Object.values(document.webhooks) as Array<{ post: { parameters: Array<{ name: string }> } }>) {
      expect(hook.post.parameters.map((p) => p.name)).toEqual(["webhook-id", "webhook-timestamp", "webhook-signature"]);
    }
  });

  it("the documented examples work against the API itself", async () => {
    const s = await seedScenario();
    const apitest = await callApi(request(s.account, "Authentication", "APITest", {}));
    expect(apitest.status).toBe(200);
    // The examples name the demo's segments; with this account's ids the documented shape is accepted.
    const example = METHODS.find((m) => m.requestmethod === "GetSegmentSubscribers")!.example as Record<string, unknown>;
    const page = await callApi(
      request(s.account, "Segments", "GetSegmentSubscribers", { ...example, segmentid: [String(s.segments.vip)], customfields: ["Company"] }),
    );
    expect(page.status).toBe(200);
  });
});

describe("GET /docs", () => {
  it("serves the reference page, which loads the document and Swagger UI from this worker, not a CDN", async () => {
    const res = await exports.default.fetch("https://exports.test/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('url: "/openapi.json"');
    expect(html).toContain('src="/docs/assets/swagger-ui-bundle.js"');
    expect(html).not.toMatch(/https?:\/\//);
  });
});
