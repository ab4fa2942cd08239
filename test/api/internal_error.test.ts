import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createAccount, request } from "../fixtures";
import { callWith } from "./admission_helpers";

afterEach(() => vi.restoreAllMocks());

/** A D1 binding whose every statement fails, the way D1 reports an outage. */
const failingDatabase = {
  prepare: () => {
    const statement = {
      bind: () => statement,
      all: () => Promise.reject(new Error("D1_ERROR: the database is unavailable")),
      run: () => Promise.reject(new Error("D1_ERROR: the database is unavailable")),
      raw: () => Promise.reject(new Error("D1_ERROR: the database is unavailable")),
      first: () => Promise.reject(new Error("D1_ERROR: the database is unavailable")),
    };
    return statement;
  },
  batch: () => Promise.reject(new Error("D1_ERROR: the database is unavailable")),
} as unknown as D1Database;

describe("an error nobody expected", () => {
  it("answers 500 with a reference and no internal detail, and logs the cause without SQL or parameters", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const account = await createAccount();
    const res = await callWith({ DB: failingDatabase }, request(account, "Authentication", "APITest"));

    expect(res.status).toBe(500);
    expect(res.body).toEqual({
      response: { status: "ERROR", errormessage: expect.stringMatching(/^Internal error \(reference [0-9a-f-]{36}\)$/) },
    });
    const reference = (res.body.response as { errormessage: string }).errormessage.match(/reference ([0-9a-f-]{36})/)![1];
    const logged = error.mock.calls.map((args) => args.map(String).join(" ")).join("\n");
    expect(logged).toContain(`unhandled error ${reference}: D1 query failed: D1_ERROR: the database is unavailable`);
    // The query and its bound values (here the username) stay out of the log.
    expect(logged).not.toMatch(/select|from "accounts"/i);
    expect(logged).not.toContain(account.username);
  });

  it("is not caused by anything a client sends: the same request works against a healthy database", async () => {
    const account = await createAccount();
    const res = await callWith({ DB: env.DB }, request(account, "Authentication", "APITest"));
    expect(res.status).toBe(200);
  });
});
