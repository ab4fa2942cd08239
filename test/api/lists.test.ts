/**
 * Lists / CreateList, GetLists, CreateCustomField, GetCustomFields: an account can start from nothing, and sees
 * only its own lists and fields.
 */
import { describe, expect, it } from "vitest";
import { callApi, createAccount, dataOf, request, seedScenario, type TestAccount } from "../fixtures";
import { expectError } from "./helpers";

const call = (account: TestAccount, requesttype: string, requestmethod: string, details?: unknown) =>
  callApi(request(account, requesttype, requestmethod, details));

describe("Lists / CreateList and GetLists", () => {
  it("creates an empty list that GetLists then shows with zero counts", async () => {
    const account = await createAccount();
    const created = dataOf<{ listid: string; name: string; createdate: string }>(await call(account, "Lists", "CreateList", { name: "  Newsletter " }));
    expect(created).toEqual({ listid: expect.stringMatching(/^\d+$/), name: "Newsletter", createdate: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(dataOf(await call(account, "Lists", "GetLists"))).toEqual([
      { listid: created.listid, name: "Newsletter", createdate: created.createdate, subscribecount: 0, unsubscribecount: 0, bouncecount: 0, inactivecount: 0 },
    ]);
  });

  it("counts each list's subscribers by status", async () => {
    const s = await seedScenario();
    const lists = dataOf<Array<{ listid: string; name: string; subscribecount: number; unsubscribecount: number; bouncecount: number; inactivecount: number }>>(
      await call(s.account, "Lists", "GetLists"),
    );
    for (const list of lists) {
      const people = s.people.filter((p) => String(p.listId) === list.listid);
      const of = (status: string) => people.filter((p) => p.status === status).length;
      expect(list).toMatchObject({ subscribecount: of("active"), unsubscribecount: of("unsubscribed"), bouncecount: of("bounced"), inactivecount: of("inactive") });
    }
    expect(lists.map((l) => l.name).sort()).toEqual(["Customers", "Newsletter"]);
  });

  it("refuses a name the account already uses (409, naming the list), and an empty or overlong name (400)", async () => {
    const account = await createAccount();
    const { listid } = dataOf<{ listid: string }>(await call(account, "Lists", "CreateList", { name: "VIP" }));
    expectError(await call(account, "Lists", "CreateList", { name: "VIP" }), 409, `details.name: the account already has a list named "VIP" (listid ${listid})`);
    expectError(await call(account, "Lists", "CreateList", { name: "   " }), 400, "details.name: must not be empty");
    expectError(await call(account, "Lists", "CreateList", { name: "x".repeat(201) }), 400, "details.name: must be at most 200 characters (got 201)");
    expectError(await call(account, "Lists", "CreateList", {}), 400, "details.name: is required");
    // Another account may use the same name.
    dataOf(await call(await createAccount(), "Lists", "CreateList", { name: "VIP" }));
  });

  it("shows an account only its own lists", async () => {
    const mine = await seedScenario();
    const other = await createAccount();
    dataOf(await call(other, "Lists", "CreateList", { name: "Theirs" }));
    const names = dataOf<Array<{ name: string }>>(await call(mine.account, "Lists", "GetLists")).map((l) => l.name);
    expect(names).not.toContain("Theirs");
    expect(dataOf<Array<{ name: string }>>(await call(other, "Lists", "GetLists")).map((l) => l.name)).toEqual(["Theirs"]);
  });
});

describe("Lists / CreateCustomField and GetCustomFields", () => {
  it("creates text, number and date fields with typed defaults, and lists them as Pinpointe does", async () => {
    const account = await createAccount();
    const { listid } = dataOf<{ listid: string }>(await call(account, "Lists", "CreateList", { name: "Main" }));
    const text = dataOf<{ fieldid: string }>(await call(account, "Lists", "CreateCustomField", { name: "Company", type: "text" }));
    const number = dataOf(await call(account, "Lists", "CreateCustomField", { name: "Score", type: "NUMBER", defaultvalue: "42", isrequired: "yes" }));
    expect(number).toEqual({ fieldid: expect.stringMatching(/^\d+$/), name: "Score", fieldtype: "number", defaultvalue: 42, required: true });
    dataOf(await call(account, "Lists", "CreateCustomField", { name: "Birthday", type: "date", defaultvalue: "2000-01-01T12:00:00Z" }));
    expect(dataOf(await call(account, "Lists", "GetCustomFields", { list: [listid] }))).toEqual([
      { fieldid: text.fieldid, name: "Company", fieldtype: "text", defaultvalue: null, required: false },
      { fieldid: (number as { fieldid: string }).fieldid, name: "Score", fieldtype: "number", defaultvalue: 42, required: true },
      { fieldid: expect.any(String), name: "Birthday", fieldtype: "date", defaultvalue: "2000-01-01", required: false },
    ]);
    // Without lists, the same fields (they are the account's; every list has them all).
    expect(dataOf<unknown[]>(await call(account, "Lists", "GetCustomFields"))).toHaveLength(3);
  });

  it("refuses a default of the wrong type, an unknown type and a name in use", async () => {
    const account = await createAccount();
    expectError(
      await call(account, "Lists", "CreateCustomField", { name: "Score", type: "number", defaultvalue: "lots" }),
      400,
      'details.defaultvalue: must be a number (got "lots") for a number field',
    );
    expectError(
      await call(account, "Lists", "CreateCustomField", { name: "Day", type: "date", defaultvalue: "2025-02-30" }),
      400,
      'details.defaultvalue: must be a date, YYYY-MM-DD or an ISO 8601 date-time (got "2025-02-30") for a date field',
    );
    expectError(await call(account, "Lists", "CreateCustomField", { name: "X", type: "boolean" }), 400, "details.type: must be one of text, number, date");
    const { fieldid } = dataOf<{ fieldid: string }>(await call(account, "Lists", "CreateCustomField", { name: "Company", type: "text" }));
    expectError(
      await call(account, "Lists", "CreateCustomField", { name: "Company", type: "number" }),
      409,
      `details.name: the account already has a custom field named "Company" (fieldid ${fieldid})`,
    );
  });

  it("refuses a list of another account as unknown", async () => {
    const mine = await createAccount();
    const other = await seedScenario();
    expectError(
      await call(mine, "Lists", "GetCustomFields", { list: [other.lists.customers] }),
      404,
      `details.list.0: no list ${other.lists.customers} in this account`,
    );
  });
});
