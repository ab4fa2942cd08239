import { z } from "zod";
import { ERROR_STATUS } from "./errors";
import type { ApiMethod } from "./method";

/**
 * The OpenAPI 3.1 document of the API (GET /openapi.json, rendered at GET /docs), made from the methods' own
 * zod schemas with zod 4's z.toJSONSchema, so the reference cannot drift from what the API accepts.
 *
 * Why not @hono/zod-openapi: it describes one route per operation, and Pinpointe's API is one route,
 * POST /apijson.php, whose body names the method. Here each method is one request schema (its requesttype
 * and requestmethod as constants, its details schema) in a oneOf, with an example each.
 */

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of what a client may send: the input side of transforms. */
const inputSchema = (schema: z.ZodType) => {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" });
  return json;
};

const componentName = (method: ApiMethod) => `${method.requesttype}.${method.requestmethod}`;

const envelope = (method: ApiMethod) => ({
  type: "object",
  description: method.summary,
  required: ["username", "usertoken", "requesttype", "requestmethod"],
  properties: {
    username: { type: "string", description: "The account's username" },
    usertoken: { type: "string", description: "The account's API token" },
    requesttype: { const: method.requesttype, description: "Any case; may be shortened to 3 letters or more" },
    requestmethod: { const: method.requestmethod, description: "Any case" },
    details: inputSchema(method.details),
  },
});

const jsonContent = (schema: object, extra: object = {}) => ({ "application/json": { schema, ...extra } });

const ERROR_MEANINGS: Partial<Record<number, string>> = {
  400: "Bad input: the message says what was wrong and where (e.g. details.segmentid: …)",
  401: "Bad credentials",
  404: "An unknown segment or job of this account",
  405: "Not a POST",
  409: "An idempotency key reused with other details, or a job that cannot be canceled",
  413: "A body over 1 MiB",
  415: "Not JSON",
  422: "Segment rules that cannot run, or a query over D1's 100 bound parameters",
  429: "Over the account's request rate or its number of running exports (Retry-After)",
  503: "The queue, or the account's data, briefly unavailable (Retry-After); nothing was created",
};

const WEBHOOK_HEADERS = [
  { name: "webhook-id", in: "header", required: true, schema: { type: "string" }, description: "msg_<jobid>: the same on every retry, so receivers can drop duplicates" },
  { name: "webhook-timestamp", in: "header", required: true, schema: { type: "string" }, description: "Unix seconds of the attempt; reject it if more than 5 minutes off" },
  {
    name: "webhook-signature",
    in: "header",
    required: true,
    schema: { type: "string" },
    description: 'Standard Webhooks: "v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>", keyed with the account\'s whsec_ secret',
  },
];

const event = (type: string, status: string, data: Record<string, object>, required: string[]) => ({
  type: "object",
  required: ["type", "timestamp", "data"],
  properties: {
    type: { const: type },
    timestamp: { type: "string", format: "date-time" },
    data: {
      type: "object",
      required: ["jobid", "status", "format", "segmentid", ...required],
      properties: {
        jobid: { type: "string" },
        status: { const: status },
        format: { enum: ["json", "csv", "ndjson"] },
        segmentid: { type: "array", items: { type: "string" } },
        ...data,
      },
    },
  },
});

const WEBHOOK_EVENTS = {
  "segment_export.completed": event(
    "segment_export.completed",
    "SUCCESS",
    {
      count: { type: "integer", description: "Records in all files" },
      url: { type: "string", format: "uri", description: "The file's link, when the export has one file" },
      files: {
        type: "array",
        description: "Every file in order (several for a split export: max_file_size, max_rows_per_file)",
        items: {
          type: "object",
          required: ["url", "count", "bytes"],
          properties: { url: { type: "string", format: "uri" }, count: { type: "integer" }, bytes: { type: "integer" } },
        },
      },
      expires_at: { type: "string", format: "date-time" },
    },
    ["count", "files", "expires_at"],
  ),
  "segment_export.failed": event("segment_export.failed", "ERROR", { errormessage: { type: "string" } }, ["errormessage"]),
  "segment_export.canceled": event("segment_export.canceled", "CANCELED", { count: { type: "integer" } }, ["count"]),
  "subscriber_import.completed": importEvent("subscriber_import.completed", "SUCCESS", {
    rows: { type: "integer", description: "Source rows read (a CSV header not counted)" },
    added: { type: "integer" },
    updated: { type: "integer" },
    rejected: { type: "integer" },
    rejects_url: { type: "string", format: "uri", description: "The rejects file (row, email, reason), when a row was rejected" },
    expires_at: { type: "string", format: "date-time" },
  }, ["rows", "added", "updated", "rejected"]),
  "subscriber_import.failed": importEvent("subscriber_import.failed", "ERROR", { errormessage: { type: "string" } }, ["errormessage"]),
};

/** An import link's parameters: the job in the path, then the signed query (as download links have). */
const SIGNED_IMPORT_LINK = [
  { name: "jobid", in: "path", required: true, schema: { type: "string" } },
  ...["expires", "kid", "signature"].map((name) => ({ name, in: "query", required: true, schema: { type: "string" } })),
];

function importEvent(type: string, status: string, data: Record<string, object>, required: string[]) {
  return {
    type: "object",
    required: ["type", "timestamp", "data"],
    properties: {
      type: { const: type },
      timestamp: { type: "string", format: "date-time" },
      data: {
        type: "object",
        required: ["jobid", "status", "listid", ...required],
        properties: { jobid: { type: "string" }, status: { const: status }, listid: { type: "string" }, ...data },
      },
    },
  };
}

export function openApiDocument(methods: readonly ApiMethod[], serverUrl: string) {
  const schemas: Record<string, object> = {
    SuccessEnvelope: {
      type: "object",
      required: ["response"],
      properties: {
        response: {
          type: "object",
          required: ["status", "data"],
          properties: { status: { const: "SUCCESS" }, data: { description: "The method's answer (see the README for each method)" } },
        },
      },
    },
    ErrorEnvelope: {
      type: "object",
      required: ["response"],
      properties: {
        response: {
          type: "object",
          required: ["status", "errormessage"],
          properties: { status: { const: "ERROR" }, errormessage: { type: "string", description: "What was wrong, and where" } },
        },
      },
      example: { response: { status: "ERROR", errormessage: "details.segmentid: no segment 99 in this account" } },
    },
  };
  for (const method of methods) schemas[componentName(method)] = envelope(method);

  const errorResponses = Object.fromEntries(
    Object.entries(ERROR_MEANINGS)
      .filter(([status]) => Object.values(ERROR_STATUS).includes(Number(status) as never))
      .map(([status, description]) => [status, { description, content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) }]),
  );

  return {
    openapi: "3.1.0",
    info: {
      title: "Segment Export",
      version: "1.0.0",
      description: [
        "Pinpointe's JSON API for segment exports: `POST /apijson.php` with the envelope " +
          "`{username, usertoken, requesttype, requestmethod, details}`. Exports run in the background; the file's signed " +
          "link is sent by webhook (Standard Webhooks, see Webhooks below) or email, and served by `GET /exports/{jobid}`.",
        "",
        "The methods (each a request schema below, with an example):",
        "",
        ...methods.map((m) => `- **${m.requesttype} / ${m.requestmethod}**: ${m.summary}`),
      ].join("\n"),
    },
    servers: [{ url: serverUrl }],
    paths: {
      "/apijson.php": {
        post: {
          operationId: "apijson",
          summary: "Every API method: the body's requesttype and requestmethod name it",
          description: methods.map((m) => `- **${m.requesttype} / ${m.requestmethod}**: ${m.summary}`).join("\n"),
          requestBody: {
            required: true,
            content: jsonContent(
              { oneOf: methods.map((m) => ({ $ref: `#/components/schemas/${componentName(m)}` })) },
              {
                examples: Object.fromEntries(
                  methods.map((m) => [
                    componentName(m),
                    {
                      summary: `${m.requesttype} / ${m.requestmethod}`,
                      value: { username: "demo", usertoken: "demo-token", requesttype: m.requesttype, requestmethod: m.requestmethod, details: m.example },
                    },
                  ]),
                ),
              },
            ),
          },
          responses: {
            "200": { description: "SUCCESS, with the method's data", content: jsonContent({ $ref: "#/components/schemas/SuccessEnvelope" }) },
            ...errorResponses,
          },
        },
      },
      "/exports/{jobid}": {
        get: downloadOperation("get", false),
        head: downloadOperation("head", false),
      },
      "/exports/{jobid}/{file}": {
        get: downloadOperation("get", true),
        head: downloadOperation("head", true),
      },
      "/imports/{jobid}": {
        put: {
          operationId: "uploadImportFile",
          summary: "Uploads the file of an import (the upload link ImportSubscribersAsync answered); the import is then queued",
          parameters: SIGNED_IMPORT_LINK,
          requestBody: {
            required: true,
            description: "The file's bytes: CSV or NDJSON as the import asked, gzip-compressed if it said so",
            content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
          },
          responses: {
            "200": { description: "Stored; the import is queued", content: jsonContent({ $ref: "#/components/schemas/SuccessEnvelope" }) },
            "400": { description: "An empty file", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
            "403": { description: "A forged, malformed or expired link", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
            "409": { description: "Uploaded already, or an upload is under way", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
            "410": { description: "The import has ended (its link expired unused)", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
            "413": { description: "Larger than IMPORT_MAX_BYTES", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
          },
        },
      },
      "/imports/{jobid}/rejects": {
        get: {
          operationId: "downloadImportRejects",
          summary: "Downloads an import's rejects file (CSV: row, email, reason) with its signed link",
          parameters: SIGNED_IMPORT_LINK,
          responses: {
            "200": { description: "The rejects file, text/csv" },
            "403": { description: "A forged, malformed or expired link", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
            "404": { description: "No such import, or no row was rejected", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
            "410": { description: "Deleted at the end of its retention", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
          },
        },
      },
    },
    webhooks: Object.fromEntries(
      Object.entries(WEBHOOK_EVENTS).map(([name, schema]) => [
        name,
        {
          post: {
            summary: `${name}, POSTed to the request's notify.value`,
            parameters: WEBHOOK_HEADERS,
            requestBody: { required: true, content: jsonContent(schema) },
            responses: { "2XX": { description: "Received. Anything else (or no answer in 15 s) is retried with backoff for about 3 days" } },
          },
        },
      ]),
    ),
    components: { schemas },
  };
}

function downloadOperation(method: "get" | "head", part: boolean) {
  const query = (name: string, description: string) => ({ name, in: "query", required: true, schema: { type: "string" }, description });
  const header = (name: string, description: string) => ({ name, in: "header", required: false, schema: { type: "string" }, description });
  return {
    operationId: `download${part ? "File" : ""}${method === "get" ? "" : "Head"}`,
    summary: `${method === "get" ? "Downloads" : "The headers, no body, of"} ${part ? "file {file} of a split export" : "an export's file"}, with its signed link`,
    parameters: [
      { name: "jobid", in: "path", required: true, schema: { type: "string" } },
      ...(part ? [{ name: "file", in: "path", required: true, schema: { type: "integer", minimum: 1 }, description: "The file's number, from 1" }] : []),
      query("expires", "Unix seconds when the link expires"),
      query("kid", "The signing key's id"),
      query("signature", `HMAC-SHA256 of ${part ? "<jobid>/<file>" : "<jobid>"}.<expires>.<kid>, 64 lowercase hex`),
      header("Range", "One byte range: bytes=a-b, bytes=a- or bytes=-n"),
      header("If-None-Match", "An ETag: 304 if the file is unchanged"),
      header("If-Range", "An ETag: the range only if the file is still that version"),
    ],
    responses: {
      "200": { description: "The whole file (application/json, text/csv or application/x-ndjson), as an attachment" },
      "206": { description: "The requested range, with Content-Range" },
      "304": { description: "Not modified (If-None-Match)" },
      "403": { description: "A link that is forged, malformed or expired", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
      "404": { description: "No such export, or no file", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
      "410": { description: "The file was deleted at the end of its retention", content: jsonContent({ $ref: "#/components/schemas/ErrorEnvelope" }) },
      "416": { description: "A range past the end of the file" },
    },
  };
}
