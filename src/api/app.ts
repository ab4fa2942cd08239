import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { drizzle } from "drizzle-orm/d1";
import { loadConfig } from "../config";
import { downloadRoute } from "../download/route";
import { importRoutes } from "../import/routes";
import { METHODS } from "../methods";
import { authenticate } from "./auth";
import { findMethod } from "./dispatch";
import { errorBody, MAX_ERROR_MESSAGE_LENGTH, parseOrThrow, requestEnvelope, success, truncate } from "./envelope";
import { describeForLog, DomainError } from "../errors";
import { ApiError } from "./errors";
import { enforceRateLimit } from "./rate_limit";
import { DOCS_PAGE } from "./docs_page";
import { openApiDocument } from "./openapi";
import { shardForWriting, shardOfAccount, type Shard } from "../shards/directory";

export type HonoEnv = { Bindings: Env };

const MAX_REQUEST_BYTES = 1024 * 1024;

export function createApp() {
  const app = new Hono<HonoEnv>();

  app.post(
    "/apijson.php",
    bodyLimit({
      maxSize: MAX_REQUEST_BYTES,
      onError: () => {
        throw new ApiError("PAYLOAD_TOO_LARGE", `The request body is larger than ${MAX_REQUEST_BYTES} bytes`);
      },
    }),
    async (c) => {
      const text = await c.req.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        const reason = error instanceof SyntaxError ? truncate(error.message, 200) : "not JSON";
        throw new ApiError("BAD_REQUEST", `The request body is not valid JSON: ${reason}`);
      }
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new ApiError("BAD_REQUEST", "The request body must be a JSON object with username, usertoken, requesttype, requestmethod and details");
      }
      const envelope = parseOrThrow(requestEnvelope, body);
      const config = loadConfig(c.env);
      const db = drizzle(c.env.DB);
      // Credentials first: a caller without them learns nothing, not even which methods exist.
      const account = await authenticate(db, envelope.username, envelope.usertoken);
      // After authentication, so that only the account itself can spend its quota; before anything else runs.
      await enforceRateLimit(c.env.ACCOUNT_RATE_LIMITER, config, account);
      const method = findMethod(METHODS, envelope.requesttype, envelope.requestmethod);
      const details = parseOrThrow(method.details, envelope.details ?? {}, "details");
      let shard: Promise<Shard> | undefined;
      const data = await method.handle(
        {
          env: c.env,
          config,
          db,
          account,
          shard: () => (shard ??= shardOfAccount(c.env, db, account.id)),
          writableShard: () => shardForWriting(c.env, db, account.id),
        },
        details,
      );
      return success(c, data);
    },
  );

  app.all("/apijson.php", () => {
    throw new ApiError("METHOD_NOT_ALLOWED", "Use POST with a JSON body");
  });

  app.route("/", downloadRoute);
  app.route("/", importRoutes);

  // The API reference: the OpenAPI 3.1 document made from the methods' schemas, and a page that renders it.
  app.get("/openapi.json", (c) => c.json(openApiDocument(METHODS, loadConfig(c.env).PUBLIC_BASE_URL)));
  app.get("/docs", (c) => c.html(DOCS_PAGE));

  app.notFound((c) => c.json(errorBody("Not found: the API is at POST /apijson.php"), 404));

  // The one place errors become responses: every failure leaves as Pinpointe's ERROR envelope.
  app.onError((error, c) => {
    // Messages echo client values cut to 100 characters (quote in ./envelope); this is the backstop for any
    // message that still comes out long.
    if (error instanceof ApiError) {
      if (error.retryAfterSeconds !== undefined) c.header("Retry-After", String(error.retryAfterSeconds));
      return c.json(errorBody(truncate(error.message, MAX_ERROR_MESSAGE_LENGTH)), error.status);
    }
    if (error instanceof HTTPException) {
      return c.json(errorBody(truncate(error.message || "Request failed", MAX_ERROR_MESSAGE_LENGTH)), error.status);
    }
    // Domain errors are the client's to fix (rules that cannot run, a query over D1's limits), except the
    // operator's (a shard misconfigured), which the client can only wait out: 503, details in the log.
    if (error instanceof DomainError && error.operator) {
      const reference = crypto.randomUUID();
      console.error(`unavailable ${reference}: ${error.code}: ${error.message}`);
      c.header("Retry-After", "60");
      return c.json(errorBody(`The service cannot reach this account's data right now (reference ${reference}); try again later`), 503);
    }
    if (error instanceof DomainError && error.retryAfterSeconds !== undefined) {
      c.header("Retry-After", String(error.retryAfterSeconds));
      return c.json(errorBody(truncate(error.message, MAX_ERROR_MESSAGE_LENGTH)), 503);
    }
    if (error instanceof DomainError) return c.json(errorBody(truncate(error.message, MAX_ERROR_MESSAGE_LENGTH)), 422);
    const reference = crypto.randomUUID();
    console.error(`unhandled error ${reference}: ${describeForLog(error)}`);
    return c.json(errorBody(`Internal error (reference ${reference})`), 500);
  });

  return app;
}
