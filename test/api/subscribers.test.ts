/**
 * Subscribers / AddSubscriberToList, AddOrUpdateSubscribers, UpdateSubscriber, UnsubscribeSubscriber,
 * DeleteSubscriber: the write side, with values checked against their fields' types, emails normalised, tags
 * by id or name, per-contact results in bulk, and nothing written to another account or while writes are frozen.
 */
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { accountDirectory } from "../../src/db/control_schema";
import { callApi, createAccount, createField, createList, dataOf, db, request, seedScenario, shardDb, type TestAccount } from "../fixtures";
import { expectError } from "./helpers";

const call = (account: TestAccount, requestmethod: string, details?: unknown) => callApi(request(account, "Subscribers", requestmethod, details));

interface StoredSubscriber {
  id: number;
  email: string;
  status: string;
  subscribe_date: string;
  custom_fields: Record<string, unknown>;
  tags: number[];
}

/** The subscriber as stored on the account's shard, with its tag ids. */
async function stored(accountId: number, listId: number, email: string): Promise<StoredSubscriber | undefined> {
  const shard = await shardDb(accountId);
  const [row] = await shard.all<Omit<StoredSubscriber, "custom_fields" | "tags"> & { custom_fields: string }>(
    sql`SELECT id, email, status, subscribe_date, custom_fields FROM subscribers WHERE list_id = ${listId} AND email = ${email}`,
  );
  if (!row) return undefined;
  const tags = await shard.all<{ tag_id: number }>(sql`SELECT tag_id FROM subscriber_tags WHERE subscriber_id = ${row.id} ORDER BY tag_id`);
  return { ...row, id: Number(row.id), custom_fields: JSON.parse(row.custom_fields), tags: tags.map((t) => Number(t.tag_id)) };
}

async function subscriberCount(accountId: number): Promise<number> {
  const [row] = await (await shardDb(accountId)).all<{ n: number }>(sql`SELECT count(*) AS n FROM subscribers WHERE account_id = ${accountId}`);
  return Number(row!.n);
}

describe("Subscribers / AddSubscriberToList", () => {
  it("adds a subscriber with values by field name or id and tags by name or id; the email's domain is lower-cased", async () => {
    const s = await seedScenario();
    const added = dataOf(
      await call(s.account, "AddSubscriberToList", {
        email: "  Ada.Lovelace@Example.COM ",
        list: String(s.lists.newsletter),
        customfield: [
          { name: "first name", value: "Ada" },
          { fieldid: String(s.fields.score), value: "42.5" },
        ],
        tag: ["vip", s.tags.trial],
        subscribedate: "2025-03-14T10:26:53+01:00",
      }),
    );
    expect(added).toEqual({ subscriberid: expect.stringMatching(/^\d+$/), result: "added", email: "Ada.Lovelace@example.com", listid: String(s.lists.newsletter) });
    expect(await stored(s.account.id, s.lists.newsletter, "Ada.Lovelace@example.com")).toEqual({
      id: Number((added as { subscriberid: string }).subscriberid),
      email: "Ada.Lovelace@example.com",
      status: "active",
      subscribe_date: "2025-03-14T09:26:53Z",
      custom_fields: { [s.fields.firstName]: "Ada", [s.fields.score]: 42.5 },
      tags: [s.tags.vip, s.tags.trial].sort((a, b) => a - b),
    });
  });

  it("makes an unconfirmed subscriber inactive, and a new one without a date subscribed now", async () => {
    const s = await seedScenario();
    const before = new Date(Date.now() - 1000).toISOString();
    dataOf(await call(s.account, "AddSubscriberToList", { email: "new@example.com", list: s.lists.newsletter, confirmed: "no" }));
    const row = (await stored(s.account.id, s.lists.newsletter, "new@example.com"))!;
    expect(row.status).toBe("inactive");
    expect(row.subscribe_date >= before.replace(/\.\d{3}Z$/, "Z")).toBe(true);
  });

  it("refuses an email already in the list (409, with its id) unless update_if_exists, which updates it", async () => {
    const s = await seedScenario();
    const person = s.people.find((p) => p.listId === s.lists.newsletter)!;
    expectError(
      await call(s.account, "AddSubscriberToList", { email: person.email, list: s.lists.newsletter }),
      409,
      `details.email: "${person.email}" is already in list ${s.lists.newsletter} (subscriber id ${person.id})`,
    );
    const updated = dataOf(
      await call(s.account, "AddSubscriberToList", {
        email: person.email,
        list: s.lists.newsletter,
        update_if_exists: true,
        customfield: [{ name: "Company", value: null }],
        tag: ["churned"],
      }),
    );
    expect(updated).toMatchObject({ subscriberid: String(person.id), result: "updated" });
    const row = (await stored(s.account.id, s.lists.newsletter, person.email))!;
    // The named field is cleared; the others keep their values; tags are added to the ones it had.
    expect(row.custom_fields).toEqual({ [s.fields.firstName]: person.fields![s.fields.firstName], [s.fields.score]: person.fields![s.fields.score] });
    expect(row.tags).toEqual([...new Set([...(person.tags ?? []), s.tags.churned])].sort((a, b) => a - b));
    expect(row.status).toBe(person.status);
  });

  it("checks each value against its field's type, and names the value that is wrong", async () => {
    const s = await seedScenario();
    const add = (customfield: unknown) => call(s.account, "AddSubscriberToList", { email: "x@example.com", list: s.lists.newsletter, customfield });
    expectError(await add([{ name: "Score", value: "lots" }]), 400, 'details.customfield.0.value: must be a number (got "lots") for number field "Score"');
    expectError(await add([{ name: "Company", value: "ok" }, { fieldid: 999999999, value: 1 }]), 400, "details.customfield.1: no custom field with fieldid 999999999 in this account");
    expectError(await add([{ name: "Nope", value: 1 }]), 400, 'details.customfield.0: no custom field with name "Nope" in this account');
    expectError(await add([{ name: "Score", fieldid: s.fields.score, value: 1 }]), 400, "details.customfield.0: must name the field by fieldid or by name (one of them)");
    expectError(await add([{ name: "Company", value: { nested: true } }]), 400, 'details.customfield.0.value: must be text for text field "Company"');
    expect(await stored(s.account.id, s.lists.newsletter, "x@example.com")).toBeUndefined();
  });

  it("stores a date field's value as its day, and refuses a day that is not in the calendar", async () => {
    const account = await createAccount();
    const { listid } = dataOf<{ listid: string }>(await callApi(request(account, "Lists", "CreateList", { name: "L" })));
    const { fieldid } = dataOf<{ fieldid: string }>(await callApi(request(account, "Lists", "CreateCustomField", { name: "Birthday", type: "date" })));
    dataOf(await call(account, "AddSubscriberToList", { email: "a@example.com", list: listid, customfield: [{ fieldid, value: "1815-12-10T23:30:00-02:00" }] }));
    expect((await stored(account.id, Number(listid), "a@example.com"))!.custom_fields).toEqual({ [fieldid]: "1815-12-11" });
    expectError(
      await call(account, "AddSubscriberToList", { email: "b@example.com", list: listid, customfield: [{ fieldid, value: "2025-02-30" }] }),
      400,
      'details.customfield.0.value: must be a date, YYYY-MM-DD or an ISO 8601 date-time (got "2025-02-30") for date field "Birthday"',
    );
  });

  it("fills in a field's default for a new subscriber, and refuses one without a required field", async () => {
    const account = await createAccount();
    const { listid } = dataOf<{ listid: string }>(await callApi(request(account, "Lists", "CreateList", { name: "L" })));
    const plan = dataOf<{ fieldid: string }>(await callApi(request(account, "Lists", "CreateCustomField", { name: "Plan", type: "text", defaultvalue: "free" })));
    const country = dataOf<{ fieldid: string }>(await callApi(request(account, "Lists", "CreateCustomField", { name: "Country", type: "text", isrequired: true })));
    expectError(await call(account, "AddSubscriberToList", { email: "a@example.com", list: listid }), 400, 'details.customfield: "Country" is required');
    dataOf(await call(account, "AddSubscriberToList", { email: "a@example.com", list: listid, customfield: [{ name: "Country", value: "NZ" }] }));
    expect((await stored(account.id, Number(listid), "a@example.com"))!.custom_fields).toEqual({ [plan.fieldid]: "free", [country.fieldid]: "NZ" });
  });

  it("refuses bad emails, unknown tags, status with confirmed, and lists of other accounts; nothing is written", async () => {
    const s = await seedScenario();
    const other = await seedScenario();
    const before = await subscriberCount(s.account.id);
    const add = (details: Record<string, unknown>) => call(s.account, "AddSubscriberToList", { email: "ok@example.com", list: s.lists.newsletter, ...details });
    expectError(await add({ email: "not an email" }), 400, 'details.email: "not an email" is not a valid email address');
    expectError(await add({ email: undefined }), 400, "details.email: is required");
    expectError(await add({ tag: ["vip", "nope"] }), 400, 'details.tag.1: no tag "nope" in this account');
    expectError(await add({ tag: [other.tags.vip] }), 400, `details.tag.0: no tag ${other.tags.vip} in this account`);
    expectError(await add({ status: "active", confirmed: true }), 400, "details.confirmed: give status or confirmed, not both");
    expectError(await add({ subscribedate: "yesterday" }), 400, 'details.subscribedate: "yesterday" is not an ISO 8601 date (YYYY-MM-DD) or date-time with a zone');
    expectError(await add({ list: other.lists.newsletter }), 404, `details.list: no list ${other.lists.newsletter} in this account`);
    expect(await subscriberCount(s.account.id)).toBe(before);
    expect(await subscriberCount(other.account.id)).toBe(24);
  });

  it("is refused with 503 and Retry-After while the account's writes are frozen for a move", async () => {
    const s = await seedScenario();
    await db().update(accountDirectory).set({ writesFrozen: true }).where(eq(accountDirectory.accountId, s.account.id));
    try {
      const response = await call(s.account, "AddSubscriberToList", { email: "late@example.com", list: s.lists.newsletter });
      expect(response.status).toBe(503);
      expect(response.body.response).toMatchObject({ status: "ERROR", errormessage: expect.stringContaining("being moved") });
      // Reads go on.
      expect(dataOf<unknown[]>(await callApi(request(s.account, "Lists", "GetLists")))).toHaveLength(2);
    } finally {
      await db().update(accountDirectory).set({ writesFrozen: false }).where(eq(accountDirectory.accountId, s.account.id));
    }
  });
});

describe("Subscribers / AddOrUpdateSubscribers", () => {
  it("under concurrent calls for the same emails, adds each address once; a contact that lost the race is rejected with 'send it again'", async () => {
    const s = await seedScenario();
    const emails = Array.from({ length: 50 }, (_, i) => `race${i}@example.com`);
    const calls = await Promise.all(
      [0, 1, 2, 3].map((n) =>
        call(s.account, "AddOrUpdateSubscribers", { list: s.lists.newsletter, contact: emails.map((email) => ({ email, customfield: [{ name: "Company", value: `call ${n}` }], tag: ["vip"] })) }),
      ),
    );
    type Result = { result: string; subscriberid?: string; reason?: string };
    const results = calls.map((res) => dataOf<{ added: number; updated: number; rejected: number; results: Result[] }>(res));
    expect(results.reduce((n, r) => n + r.added, 0)).toBe(emails.length);
    for (const [i, email] of emails.entries()) {
      const subscriber = (await stored(s.account.id, s.lists.newsletter, email))!;
      expect(subscriber.tags).toEqual([s.tags.vip]);
      for (const r of results.map((call) => call.results[i]!)) {
        if (r.result === "rejected") expect(r.reason).toBe(`contact.${i} was changed by another request at the same moment; send it again`);
        else expect(r.subscriberid).toBe(String(subscriber.id));
      }
    }
    expect(await subscriberCount(s.account.id)).toBe(24 + emails.length);
  });

  it("gives each contact its own result; bad ones are rejected by index and reason, the rest written in one batch", async () => {
    const s = await seedScenario();
    const existing = s.people.find((p) => p.listId === s.lists.newsletter)!;
    const result = dataOf<{ added: number; updated: number; rejected: number; results: unknown[] }>(
      await call(s.account, "AddOrUpdateSubscribers", {
        list: s.lists.newsletter,
        contact: [
          { email: "one@example.com", customfield: [{ name: "Score", value: 1 }], tag: ["vip"] },
          { email: existing.email, status: "bounced" },
          { email: "broken" },
          { email: "two@example.com", customfield: [{ name: "Score", value: "two" }] },
          "not an object",
          // The same address as contact 0 (a domain's case does not matter): merged into it, so "updated".
          { email: "one@EXAMPLE.com", customfield: [{ name: "Company", value: "Acme" }] },
          // Another address: the local part's case is kept.
          { email: "ONE@example.com" },
        ],
      }),
    );
    const [first] = result.results as Array<{ subscriberid: string }>;
    expect(result).toEqual({
      added: 2,
      updated: 2,
      rejected: 3,
      results: [
        { index: 0, email: "one@example.com", result: "added", subscriberid: expect.stringMatching(/^\d+$/) },
        { index: 1, email: existing.email, result: "updated", subscriberid: String(existing.id) },
        { index: 2, email: "broken", result: "rejected", reason: 'contact.2.email: "broken" is not a valid email address' },
        { index: 3, email: "two@example.com", result: "rejected", reason: 'contact.3.customfield.0.value: must be a number (got "two") for number field "Score"' },
        { index: 4, email: null, result: "rejected", reason: "contact.4: Invalid input: expected object, received string" },
        { index: 5, email: "one@example.com", result: "updated", subscriberid: first!.subscriberid },
        { index: 6, email: "ONE@example.com", result: "added", subscriberid: expect.stringMatching(/^\d+$/) },
      ],
    });
    expect(await stored(s.account.id, s.lists.newsletter, "one@example.com")).toMatchObject({
      status: "active",
      custom_fields: { [s.fields.score]: 1, [s.fields.company]: "Acme" },
      tags: [s.tags.vip],
    });
    expect((await stored(s.account.id, s.lists.newsletter, existing.email))!.status).toBe("bounced");
    expect(await stored(s.account.id, s.lists.newsletter, "two@example.com")).toBeUndefined();
  });

  it("with update_if_exists false, rejects contacts already in the list, and repeats of one in the same call", async () => {
    const s = await seedScenario();
    const existing = s.people.find((p) => p.listId === s.lists.customers)!;
    const result = dataOf<{ results: Array<{ result: string; reason?: string }> }>(
      await call(s.account, "AddOrUpdateSubscribers", {
        list: s.lists.customers,
        update_if_exists: "no",
        contact: [{ email: existing.email, status: "bounced" }, { email: "fresh@example.com" }, { email: "fresh@example.com", status: "bounced" }],
      }),
    );
    expect(result.results).toEqual([
      { index: 0, email: existing.email, result: "rejected", reason: `contact.0.email: "${existing.email}" is already in list ${s.lists.customers} (subscriber id ${existing.id})` },
      { index: 1, email: "fresh@example.com", result: "added", subscriberid: expect.any(String) },
      { index: 2, email: "fresh@example.com", result: "rejected", reason: 'contact.2.email: "fresh@example.com" is already contact.1 of this call' },
    ]);
    expect((await stored(s.account.id, s.lists.customers, existing.email))!.status).toBe(existing.status);
    expect((await stored(s.account.id, s.lists.customers, "fresh@example.com"))!.status).toBe("active");
  });

  it("writes 1,000 contacts with values and tags in one call", async () => {
    const s = await seedScenario();
    const contact = Array.from({ length: 1000 }, (_, i) => ({
      email: `bulk${i}@example.com`,
      customfield: [{ fieldid: s.fields.score, value: i }, { name: "First Name", value: `Bulk ${i}` }],
      tag: i % 2 === 0 ? ["vip"] : [],
    }));
    const result = dataOf<{ added: number; rejected: number }>(await call(s.account, "AddOrUpdateSubscribers", { list: s.lists.customers, contact }));
    expect(result).toMatchObject({ added: 1000, rejected: 0 });
    expect(await subscriberCount(s.account.id)).toBe(1024);
    expect(await stored(s.account.id, s.lists.customers, "bulk999@example.com")).toMatchObject({
      custom_fields: { [s.fields.score]: 999, [s.fields.firstName]: "Bulk 999" },
      tags: [],
    });
    expect((await stored(s.account.id, s.lists.customers, "bulk998@example.com"))!.tags).toEqual([s.tags.vip]);
    expectError(
      await call(s.account, "AddOrUpdateSubscribers", { list: s.lists.customers, contact: [...contact, { email: "one-more@example.com" }] }),
      400,
      "details.contact: at most 1000 contacts per call (got 1001); send the rest in further calls, or use ImportSubscribersAsync",
    );
  });
});

describe("Subscribers / UpdateSubscriber", () => {
  it("changes the email, patches the named fields, adds tags, and keeps what it was not given", async () => {
    const s = await seedScenario();
    const person = s.people.find((p) => p.listId === s.lists.newsletter && p.status === "inactive")!;
    const result = dataOf(
      await call(s.account, "UpdateSubscriber", {
        email: person.email,
        list: s.lists.newsletter,
        newemail: "Renamed@Example.com",
        customfield: [{ name: "Score", value: 7 }],
        tag: ["churned"],
      }),
    );
    expect(result).toEqual({ subscriberid: String(person.id), email: "Renamed@example.com", listid: String(s.lists.newsletter) });
    expect(await stored(s.account.id, s.lists.newsletter, person.email)).toBeUndefined();
    expect(await stored(s.account.id, s.lists.newsletter, "Renamed@example.com")).toEqual({
      id: person.id,
      email: "Renamed@example.com",
      status: "inactive",
      subscribe_date: person.subscribeDate,
      custom_fields: { [s.fields.firstName]: person.fields![s.fields.firstName], [s.fields.company]: person.fields![s.fields.company], [s.fields.score]: 7 },
      tags: [...new Set([...(person.tags ?? []), s.tags.churned])].sort((a, b) => a - b),
    });
  });

  it("refuses a new email already in the list (409), a subscriber not in the list (404), and another account's list (404)", async () => {
    const s = await seedScenario();
    const other = await seedScenario();
    const [a, b] = s.people.filter((p) => p.listId === s.lists.newsletter);
    expectError(
      await call(s.account, "UpdateSubscriber", { email: a!.email, list: s.lists.newsletter, newemail: b!.email }),
      409,
      `details.newemail: "${b!.email}" is already in list ${s.lists.newsletter} (subscriber id ${b!.id})`,
    );
    expectError(await call(s.account, "UpdateSubscriber", { email: "nobody@example.com", list: s.lists.newsletter }), 404, `details.email: "nobody@example.com" is not in list ${s.lists.newsletter}`);
    expectError(
      await call(s.account, "UpdateSubscriber", { email: "nobody@example.com", list: s.lists.newsletter, newemail: "x@example.com" }),
      404,
      `details.email: "nobody@example.com" is not in list ${s.lists.newsletter}`,
    );
    const theirs = other.people[0]!;
    expectError(
      await call(s.account, "UpdateSubscriber", { email: theirs.email, list: theirs.listId, status: "bounced" }),
      404,
      `details.list: no list ${theirs.listId} in this account`,
    );
    expect((await stored(other.account.id, theirs.listId, theirs.email))!.status).toBe(theirs.status);
  });
});

describe("Subscribers / UnsubscribeSubscriber and DeleteSubscriber", () => {
  it("unsubscribes a subscriber, who stays in the list", async () => {
    const s = await seedScenario();
    const person = s.people.find((p) => p.status === "active")!;
    expect(dataOf(await call(s.account, "UnsubscribeSubscriber", { email: person.email, list: person.listId }))).toEqual({
      subscriberid: String(person.id),
      email: person.email,
      listid: String(person.listId),
      status: "unsubscribed",
    });
    expect((await stored(s.account.id, person.listId, person.email))!.status).toBe("unsubscribed");
    expectError(await call(s.account, "UnsubscribeSubscriber", { email: "nobody@example.com", list: person.listId }), 404, `details.email: "nobody@example.com" is not in list ${person.listId}`);
  });

  it("deletes a subscriber with its tags; a second delete is a 404; another account's list is unknown", async () => {
    const s = await seedScenario();
    const other = await seedScenario();
    const person = s.people.find((p) => (p.tags ?? []).length > 0)!;
    expect(dataOf(await call(s.account, "DeleteSubscriber", { email: person.email, list: person.listId }))).toEqual({
      subscriberid: String(person.id),
      email: person.email,
      listid: String(person.listId),
      deleted: true,
    });
    expect(await stored(s.account.id, person.listId, person.email)).toBeUndefined();
    const [orphans] = await (await shardDb(s.account.id)).all<{ n: number }>(sql`SELECT count(*) AS n FROM subscriber_tags WHERE subscriber_id = ${person.id}`);
    expect(Number(orphans!.n)).toBe(0);
    expectError(await call(s.account, "DeleteSubscriber", { email: person.email, list: person.listId }), 404, `details.email: "${person.email}" is not in list ${person.listId}`);
    const theirs = other.people[0]!;
    expectError(await call(s.account, "DeleteSubscriber", { email: theirs.email, list: theirs.listId }), 404, `details.list: no list ${theirs.listId} in this account`);
    expect(await stored(other.account.id, theirs.listId, theirs.email)).toBeDefined();
  });
});

describe("the size of what a call writes", () => {
  const createTextField = async (account: TestAccount, name: string, defaultvalue?: string) =>
    Number(dataOf<{ fieldid: string }>(await callApi(request(account, "Lists", "CreateCustomField", { name, type: "text", ...(defaultvalue ? { defaultvalue } : {}) }))).fieldid);

  it("writes 1,000 contacts whose fields' defaults take 5 MB together, although D1 takes at most 2 MB in one value", async () => {
    const account = await createAccount();
    const list = await createList(account.id, "Defaults");
    const fields = [];
    for (let i = 0; i < 10; i++) fields.push(await createTextField(account, `Note ${i}`, `${i}`.padEnd(500, "d")));
    const contact = Array.from({ length: 1000 }, (_, i) => ({ email: `roomy${i}@example.com`, tag: [] }));
    expect(dataOf(await call(account, "AddOrUpdateSubscribers", { list, contact }))).toMatchObject({ added: 1000, rejected: 0 });
    const last = await stored(account.id, list, "roomy999@example.com");
    expect(Object.keys(last!.custom_fields)).toHaveLength(10);
    expect(last!.custom_fields[String(fields[9])]).toBe("9".padEnd(500, "d"));
  });

  it("keeps a subscriber's values under 256 KiB as stored: a contact past it is rejected, alone, saying by how much; an update is counted with what the subscriber has", async () => {
    const account = await createAccount();
    const list = await createList(account.id, "Sizes");
    const fields: number[] = [];
    for (let i = 0; i < 30; i++) fields.push(await createField(account.id, `Essay ${i}`));
    const values = (from: number, count: number, fill: string) => fields.slice(from, from + count).map((fieldid, i) => ({ fieldid, value: `${from + i}`.padEnd(10_000, fill) }));

    // 27 values of 10,000 characters do not fit; 20 do.
    const first = dataOf<{ results: Array<{ result: string; reason?: string }> }>(
      await call(account, "AddOrUpdateSubscribers", {
        list,
        contact: [
          { email: "too-much@example.com", customfield: values(0, 27, "a") },
          { email: "plenty@example.com", customfield: values(0, 20, "a") },
        ],
      }),
    );
    expect(first.results.map((r) => r.result)).toEqual(["rejected", "added"]);
    expect(first.results[0]!.reason).toMatch(/^contact\.0\.customfield: the custom field values would take 27\d{4} bytes as stored \(with the fields' defaults for those not given\); a subscriber holds at most 262144$/);
    expect(await stored(account.id, list, "too-much@example.com")).toBeUndefined();

    // Replacing the 20 values: stored and sent are 400 KB together, but the result is 200 KB, and it is taken.
    const replaced = dataOf<{ updated: number }>(
      await call(account, "AddOrUpdateSubscribers", { list, update_if_exists: true, contact: [{ email: "plenty@example.com", customfield: values(0, 20, "b") }] }),
    );
    expect(replaced).toMatchObject({ updated: 1, rejected: 0 });
    expect((await stored(account.id, list, "plenty@example.com"))!.custom_fields[String(fields[19])]).toBe("19".padEnd(10_000, "b"));

    // Seven more values would take it past the bound.
    const more = dataOf<{ results: Array<{ result: string; reason?: string }> }>(
      await call(account, "AddOrUpdateSubscribers", { list, update_if_exists: true, contact: [{ email: "plenty@example.com", customfield: values(20, 7, "c") }] }),
    );
    expect(more.results[0]).toMatchObject({ result: "rejected" });
    expect(more.results[0]!.reason).toMatch(/^contact\.0\.customfield: the custom field values would take 27\d{4} bytes as stored \(with those it has already\); a subscriber holds at most 262144$/);
    expect(Object.keys((await stored(account.id, list, "plenty@example.com"))!.custom_fields)).toHaveLength(20);
  });
});
