import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../../src/api/auth";
import { accounts } from "../../src/db/schema";
import { callApi, createAccount, createList, createSegment, dataOf, db, request, type TestAccount } from "../fixtures";
import { EMAIL_NOTIFY, expectError, exportJobCount } from "./helpers";

const INVALID = "Invalid username or usertoken";

let account: TestAccount;
let other: TestAccount;
beforeAll(async () => {
  account = await createAccount();
  other = await createAccount();
});

describe("Authentication / APITest", () => {
  it("succeeds with valid credentials and names the account", async () => {
    const res = await callApi(request(account, "Authentication", "APITest"));
    expect(res.status).toBe(200);
    expect(dataOf(res)).toEqual({ authenticated: true, username: account.username });
  });

  it("ignores details", async () => {
    const res = await callApi(request(account, "Authentication", "APITest", { anything: [1, 2, 3] }));
    expect(dataOf(res)).toEqual({ authenticated: true, username: account.username });
  });

  it("rejects an unknown username with 401", async () => {
    expectError(
      await callApi(request({ username: "no-such-user", usertoken: account.usertoken }, "Authentication", "APITest")),
      401,
      INVALID,
    );
  });

  it("rejects a wrong token with 401", async () => {
    expectError(
      await callApi(request({ username: account.username, usertoken: `${account.usertoken}x` }, "Authentication", "APITest")),
      401,
      INVALID,
    );
  });

  it("gives a bad username and a bad token the same answer, so neither reveals which accounts exist", async () => {
    const badUser = await callApi(request({ username: "nobody-here", usertoken: "whatever" }, "Authentication", "APITest"));
    const badToken = await callApi(request({ username: account.username, usertoken: "whatever" }, "Authentication", "APITest"));
    expect(badUser).toEqual(badToken);
    expectError(badToken, 401, INVALID);
  });

  it("rejects another account's token with 401", async () => {
    expectError(
      await callApi(request({ username: account.username, usertoken: other.usertoken }, "Authentication", "APITest")),
      401,
      INVALID,
    );
  });

  it("rejects the stored hash presented as the token", async () => {
    const row = await db().select().from(accounts).where(eq(accounts.id, account.id)).get();
    expectError(
      await callApi(request({ username: account.username, usertoken: row!.tokenHash }, "Authentication", "APITest")),
      401,
      INVALID,
    );
  });
});

describe("authentication comes before the method is looked up", () => {
  it.each([
    ["an unknown requestmethod", "Segments", "GetLists"],
    ["an unknown requesttype", "Lists", "GetLists"],
    ["a requesttype shorter than three letters", "se", "GetSegments"],
  ])("bad credentials with %s get 401, not the list of methods", async (_, requesttype, requestmethod) => {
    expectError(
      await callApi(request({ username: account.username, usertoken: "wrong" }, requesttype, requestmethod)),
      401,
      INVALID,
    );
    expectError(await callApi(request({ username: "no-such-user", usertoken: "wrong" }, requesttype, requestmethod)), 401, INVALID);
  });

  it("valid credentials with an unknown method get 400 with the list", async () => {
    expectError(
      await callApi(request(account, "Segments", "GetLists")),
      400,
      'Unknown requestmethod "GetLists" for requesttype Segments. ' +
        "Known methods: GetSegments, GetSegmentSubscribers, GetSegmentSubscribersAsync, GetSegmentSubscribersAsyncStatus, GetSegmentSubscribersAsyncJobs, CancelSegmentSubscribersAsync, GetSegment, CreateSegment, UpdateSegment, DeleteSegment",
    );
  });
});

describe("credentials at rest", () => {
  it("stores tokens only as a salted SHA-256 hash", async () => {
    const row = await db().select().from(accounts).where(eq(accounts.id, account.id)).get();
    expect(row).toBeDefined();
    expect(JSON.stringify(row)).not.toContain(account.usertoken);
    expect(row!.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.tokenHash).toBe(await hashToken(row!.tokenSalt, account.usertoken));
  });

  it("salts each account differently, so equal tokens do not give equal hashes", async () => {
    const a = await db().select().from(accounts).where(eq(accounts.id, account.id)).get();
    const b = await db().select().from(accounts).where(eq(accounts.id, other.id)).get();
    expect(a!.tokenSalt).not.toBe(b!.tokenSalt);
    expect(await hashToken(a!.tokenSalt, "same-token")).not.toBe(await hashToken(b!.tokenSalt, "same-token"));
  });
});

describe("authentication guards every method", () => {
  it("answers GetSegments with 401 for a bad token", async () => {
    expectError(
      await callApi(request({ username: account.username, usertoken: "bad" }, "Segments", "GetSegments")),
      401,
      INVALID,
    );
  });

  it("answers GetSegmentSubscribersAsyncStatus with 401 for a bad token", async () => {
    expectError(
      await callApi(
        request({ username: account.username, usertoken: "bad" }, "Segments", "GetSegmentSubscribersAsyncStatus", {
          jobid: "x",
        }),
      ),
      401,
      INVALID,
    );
  });

  it("checks credentials before details, and a refused export writes no job", async () => {
    const list = await createList(account.id);
    const segment = await createSegment(account.id, { match: "all", rules: [{ field: "list", operator: "equals", value: list }] });
    const before = await exportJobCount(account.id);
    const bad = { username: account.username, usertoken: "bad" };
    expectError(await callApi(request(bad, "Segments", "GetSegmentSubscribersAsync", { segmentid: "not-an-id" })), 401, INVALID);
    expectError(
      await callApi(request(bad, "Segments", "GetSegmentSubscribersAsync", { segmentid: [segment], notify: EMAIL_NOTIFY })),
      401,
      INVALID,
    );
    expect(await exportJobCount(account.id)).toBe(before);
  });
});
