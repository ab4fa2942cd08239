/**
 * Every operator on every kind of field it applies to (OPERATORS_BY_KIND in src/segments/rules.ts),
 * compiled by compileRules and run against the real D1. Each block builds its own small account.
 * "Now" is NOW = 2025-06-15T12:00:00Z.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { SubscriberStatus } from "../../src/db/schema";
import { addSubscriber, createField, createList, createTag } from "../fixtures";
import { emailsWhere, refreshFields, ruleAccount, sorted, type RuleAccount } from "./helpers";

describe("list conditions", () => {
  let account: RuleAccount;
  let newsletter: number;
  let customers: number;
  let partners: number;

  beforeAll(async () => {
    account = await ruleAccount();
    newsletter = await createList(account.id, "Newsletter");
    customers = await createList(account.id, "Customers");
    partners = await createList(account.id, "Partners");
    await addSubscriber(account.id, newsletter, { email: "news1@example.com" });
    await addSubscriber(account.id, newsletter, { email: "news2@example.com" });
    await addSubscriber(account.id, customers, { email: "customer@example.com" });
    await addSubscriber(account.id, partners, { email: "partner@example.com" });
  });

  it("equals matches the subscribers of that list", async () => {
    expect(await emailsWhere(account, { field: "list", operator: "equals", value: newsletter })).toEqual(
      sorted(["news1@example.com", "news2@example.com"]),
    );
  });

  it("equals accepts the list id as a string", async () => {
    expect(await emailsWhere(account, { field: "list", operator: "equals", value: String(customers) })).toEqual([
      "customer@example.com",
    ]);
  });

  it("not_equals matches the subscribers of every other list", async () => {
    expect(await emailsWhere(account, { field: "list", operator: "not_equals", value: newsletter })).toEqual(
      sorted(["customer@example.com", "partner@example.com"]),
    );
  });

  it("in matches the subscribers of any of the lists", async () => {
    expect(await emailsWhere(account, { field: "list", operator: "in", value: [customers, partners] })).toEqual(
      sorted(["customer@example.com", "partner@example.com"]),
    );
  });

  it("equals a list with no subscribers matches nothing", async () => {
    const empty = await createList(account.id, "Empty");
    expect(await emailsWhere(account, { field: "list", operator: "equals", value: empty })).toEqual([]);
  });
});

describe("email conditions", () => {
  let account: RuleAccount;
  const everyone = [
    "Ann@Example.com",
    "bob@example.org",
    "carol@sub.example.com",
    "50%off@deals.test",
    "50xoff@deals.test",
    "a_b@under.test",
    "axb@under.test",
  ];

  beforeAll(async () => {
    account = await ruleAccount();
    for (const email of everyone) await addSubscriber(account.id, account.listId, { email });
  });

  it("equals ignores case", async () => {
    expect(await emailsWhere(account, { field: "email", operator: "equals", value: "ann@EXAMPLE.COM" })).toEqual([
      "Ann@Example.com",
    ]);
  });

  it("not_equals ignores case", async () => {
    expect(await emailsWhere(account, { field: "email", operator: "not_equals", value: "ANN@example.com" })).toEqual(
      sorted(everyone.filter((e) => e !== "Ann@Example.com")),
    );
  });

  it("contains ignores case", async () => {
    expect(await emailsWhere(account, { field: "email", operator: "contains", value: "EXAMPLE" })).toEqual(
      sorted(["Ann@Example.com", "bob@example.org", "carol@sub.example.com"]),
    );
  });

  it("contains treats % in the value as a literal percent sign", async () => {
    expect(await emailsWhere(account, { field: "email", operator: "contains", value: "50%" })).toEqual([
      "50%off@deals.test",
    ]);
  });

  it("contains treats _ in the value as a literal underscore", async () => {
    expect(await emailsWhere(account, { field: "email", operator: "contains", value: "a_b" })).toEqual([
      "a_b@under.test",
    ]);
  });

  it("starts_with matches a case-insensitive prefix, with _ literal", async () => {
    expect(await emailsWhere(account, { field: "email", operator: "starts_with", value: "ANN@" })).toEqual([
      "Ann@Example.com",
    ]);
    expect(await emailsWhere(account, { field: "email", operator: "starts_with", value: "a_" })).toEqual([
      "a_b@under.test",
    ]);
  });

  it("ends_with matches a case-insensitive suffix", async () => {
    expect(await emailsWhere(account, { field: "email", operator: "ends_with", value: "@EXAMPLE.COM" })).toEqual([
      "Ann@Example.com",
    ]);
    expect(await emailsWhere(account, { field: "email", operator: "ends_with", value: "example.com" })).toEqual(
      sorted(["Ann@Example.com", "carol@sub.example.com"]),
    );
  });

  it("in matches any of the addresses, ignoring case", async () => {
    expect(
      await emailsWhere(account, {
        field: "email",
        operator: "in",
        value: ["ANN@EXAMPLE.COM", "bob@example.org", "nobody@example.com"],
      }),
    ).toEqual(sorted(["Ann@Example.com", "bob@example.org"]));
  });

  it("greater_than and less_than compare text ignoring case", async () => {
    // Byte order would put "Ann" before "B" and "a_b", "axb" after it.
    expect(await emailsWhere(account, { field: "email", operator: "greater_than", value: "B" })).toEqual(
      sorted(["bob@example.org", "carol@sub.example.com"]),
    );
    expect(await emailsWhere(account, { field: "email", operator: "less_than", value: "b" })).toEqual(
      sorted(["Ann@Example.com", "50%off@deals.test", "50xoff@deals.test", "a_b@under.test", "axb@under.test"]),
    );
  });

  it("is_empty matches only a blank address and is_not_empty every other", async () => {
    const other = await ruleAccount();
    await addSubscriber(other.id, other.listId, { email: "" });
    await addSubscriber(other.id, other.listId, { email: "filled@example.com" });
    expect(await emailsWhere(other, { field: "email", operator: "is_empty" })).toEqual([""]);
    expect(await emailsWhere(other, { field: "email", operator: "is_not_empty" })).toEqual(["filled@example.com"]);
  });
});

describe("status conditions", () => {
  let account: RuleAccount;
  const statuses: SubscriberStatus[] = ["active", "inactive", "bounced", "unsubscribed"];

  beforeAll(async () => {
    account = await ruleAccount();
    for (const status of statuses) await addSubscriber(account.id, account.listId, { email: `${status}@example.com`, status });
  });

  it("equals matches that status", async () => {
    expect(await emailsWhere(account, { field: "status", operator: "equals", value: "bounced" })).toEqual([
      "bounced@example.com",
    ]);
  });

  it("not_equals matches every other status", async () => {
    expect(await emailsWhere(account, { field: "status", operator: "not_equals", value: "active" })).toEqual(
      sorted(["inactive@example.com", "bounced@example.com", "unsubscribed@example.com"]),
    );
  });

  it("in matches any of the statuses", async () => {
    expect(await emailsWhere(account, { field: "status", operator: "in", value: ["active", "unsubscribed"] })).toEqual(
      sorted(["active@example.com", "unsubscribed@example.com"]),
    );
  });
});

describe("subscribe date conditions", () => {
  let account: RuleAccount;
  const dates = {
    "may31-last@example.com": "2025-05-31T23:59:59Z",
    "jun01-first@example.com": "2025-06-01T00:00:00Z",
    "jun01-noon@example.com": "2025-06-01T12:30:00Z",
    "jun01-last@example.com": "2025-06-01T23:59:59Z",
    "jun02-first@example.com": "2025-06-02T00:00:00Z",
    "jun07-last@example.com": "2025-06-07T23:59:59Z",
    "jun08-first@example.com": "2025-06-08T00:00:00Z",
    "jun15-today@example.com": "2025-06-15T08:00:00Z",
  };
  const everyone = Object.keys(dates);
  const june1 = ["jun01-first@example.com", "jun01-noon@example.com", "jun01-last@example.com"];
  const afterJune1 = ["jun02-first@example.com", "jun07-last@example.com", "jun08-first@example.com", "jun15-today@example.com"];

  beforeAll(async () => {
    account = await ruleAccount();
    for (const [email, subscribeDate] of Object.entries(dates)) {
      await addSubscriber(account.id, account.listId, { email, subscribeDate });
    }
  });

  it("equals a day matches the whole day, from its first to its last second", async () => {
    expect(await emailsWhere(account, { field: "subscribedate", operator: "equals", value: "2025-06-01" })).toEqual(
      sorted(june1),
    );
  });

  it("equals an ISO instant matches exactly that instant", async () => {
    expect(
      await emailsWhere(account, { field: "subscribedate", operator: "equals", value: "2025-06-01T12:30:00.000Z" }),
    ).toEqual(["jun01-noon@example.com"]);
  });

  it("an ISO instant with a UTC offset is compared in UTC", async () => {
    expect(
      await emailsWhere(account, { field: "subscribedate", operator: "equals", value: "2025-06-01T14:30:00+02:00" }),
    ).toEqual(["jun01-noon@example.com"]);
  });

  it("not_equals a day matches every other day", async () => {
    expect(await emailsWhere(account, { field: "subscribedate", operator: "not_equals", value: "2025-06-01" })).toEqual(
      sorted(everyone.filter((e) => !june1.includes(e))),
    );
  });

  it("before a day matches only earlier days", async () => {
    expect(await emailsWhere(account, { field: "subscribedate", operator: "before", value: "2025-06-01" })).toEqual([
      "may31-last@example.com",
    ]);
  });

  it("after a day matches only later days", async () => {
    expect(await emailsWhere(account, { field: "subscribedate", operator: "after", value: "2025-06-01" })).toEqual(
      sorted(afterJune1),
    );
  });

  it("less_than and greater_than behave as before and after", async () => {
    expect(await emailsWhere(account, { field: "subscribedate", operator: "less_than", value: "2025-06-01" })).toEqual([
      "may31-last@example.com",
    ]);
    expect(await emailsWhere(account, { field: "subscribedate", operator: "greater_than", value: "2025-06-01" })).toEqual(
      sorted(afterJune1),
    );
  });

  it("between two days includes both whole days", async () => {
    expect(
      await emailsWhere(account, { field: "subscribedate", operator: "between", value: ["2025-06-01", "2025-06-02"] }),
    ).toEqual(sorted([...june1, "jun02-first@example.com"]));
  });

  it("between accepts its bounds in either order", async () => {
    expect(
      await emailsWhere(account, { field: "subscribedate", operator: "between", value: ["2025-06-02", "2025-06-01"] }),
    ).toEqual(sorted([...june1, "jun02-first@example.com"]));
  });

  it("between two ISO instants matches the instants in that range", async () => {
    expect(
      await emailsWhere(account, {
        field: "subscribedate",
        operator: "between",
        value: ["2025-06-01T12:00:00Z", "2025-06-01T13:00:00Z"],
      }),
    ).toEqual(["jun01-noon@example.com"]);
  });

  it("within_last_days counts whole days back from now, including the first day", async () => {
    // Now is 2025-06-15T12:00Z: the last 7 days start at 2025-06-08T00:00Z.
    expect(await emailsWhere(account, { field: "subscribedate", operator: "within_last_days", value: 7 })).toEqual(
      sorted(["jun08-first@example.com", "jun15-today@example.com"]),
    );
  });

  it("within_last_days 0 matches today and accepts the count as a string", async () => {
    expect(await emailsWhere(account, { field: "subscribedate", operator: "within_last_days", value: "0" })).toEqual([
      "jun15-today@example.com",
    ]);
  });

  it("is_not_empty matches every subscriber and is_empty none, since every subscriber has a date", async () => {
    expect(await emailsWhere(account, { field: "subscribedate", operator: "is_not_empty" })).toEqual(sorted(everyone));
    expect(await emailsWhere(account, { field: "subscribedate", operator: "is_empty" })).toEqual([]);
  });
});

describe("tag conditions", () => {
  let account: RuleAccount;
  let vip: number;
  let trial: number;
  let unused: number;

  beforeAll(async () => {
    account = await ruleAccount();
    vip = await createTag(account.id, "vip");
    trial = await createTag(account.id, "trial");
    unused = await createTag(account.id, "unused");
    await addSubscriber(account.id, account.listId, { email: "both@example.com", tags: [vip, trial] });
    await addSubscriber(account.id, account.listId, { email: "vip@example.com", tags: [vip] });
    await addSubscriber(account.id, account.listId, { email: "trial@example.com", tags: [trial] });
    await addSubscriber(account.id, account.listId, { email: "untagged@example.com" });
  });

  it("equals matches the subscribers that have the tag", async () => {
    expect(await emailsWhere(account, { field: "tag", operator: "equals", value: vip })).toEqual(
      sorted(["both@example.com", "vip@example.com"]),
    );
  });

  it("not_equals matches the subscribers that lack the tag, untagged ones included", async () => {
    expect(await emailsWhere(account, { field: "tag", operator: "not_equals", value: vip })).toEqual(
      sorted(["trial@example.com", "untagged@example.com"]),
    );
  });

  it("in matches subscribers with any of the tags, each once", async () => {
    expect(await emailsWhere(account, { field: "tag", operator: "in", value: [vip, trial] })).toEqual(
      sorted(["both@example.com", "vip@example.com", "trial@example.com"]),
    );
  });

  it("equals a tag nobody has matches nothing", async () => {
    expect(await emailsWhere(account, { field: "tag", operator: "equals", value: unused })).toEqual([]);
  });

  it("is_empty matches subscribers without tags", async () => {
    expect(await emailsWhere(account, { field: "tag", operator: "is_empty" })).toEqual(["untagged@example.com"]);
  });

  it("is_not_empty matches subscribers with at least one tag", async () => {
    expect(await emailsWhere(account, { field: "tag", operator: "is_not_empty" })).toEqual(
      sorted(["both@example.com", "vip@example.com", "trial@example.com"]),
    );
  });
});

describe("text custom field conditions", () => {
  let account: RuleAccount;
  let company: number;
  const companies: Record<string, string | null | undefined> = {
    "acme@example.com": "Acme, Inc.",
    "acmelabs@example.com": "acme labs",
    "globex@example.com": "Globex",
    "percent@example.com": "100% Pure",
    "backslash@example.com": "C:\\path",
    "blank@example.com": "",
    "null@example.com": null,
    "missing@example.com": undefined,
  };
  const everyone = Object.keys(companies);
  const empties = ["blank@example.com", "null@example.com", "missing@example.com"];
  const field = () => ({ field: "customfield" as const, fieldid: company });

  beforeAll(async () => {
    account = await ruleAccount();
    company = await createField(account.id, "Company", "text");
    await refreshFields(account);
    for (const [email, value] of Object.entries(companies)) {
      await addSubscriber(account.id, account.listId, { email, fields: value === undefined ? {} : { [company]: value } });
    }
  });

  it("equals ignores case", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "equals", value: "ACME, INC." })).toEqual([
      "acme@example.com",
    ]);
  });

  it("not_equals matches other values and subscribers without a value", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "not_equals", value: "globex" })).toEqual(
      sorted(everyone.filter((e) => e !== "globex@example.com")),
    );
  });

  it("contains ignores case", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "contains", value: "ACME" })).toEqual(
      sorted(["acme@example.com", "acmelabs@example.com"]),
    );
  });

  it("contains treats %, _ and backslash in the value literally", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "contains", value: "0%" })).toEqual([
      "percent@example.com",
    ]);
    expect(await emailsWhere(account, { ...field(), operator: "contains", value: "_" })).toEqual([]);
    expect(await emailsWhere(account, { ...field(), operator: "contains", value: ":\\p" })).toEqual([
      "backslash@example.com",
    ]);
  });

  it("starts_with and ends_with ignore case", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "starts_with", value: "acme" })).toEqual(
      sorted(["acme@example.com", "acmelabs@example.com"]),
    );
    expect(await emailsWhere(account, { ...field(), operator: "ends_with", value: "LABS" })).toEqual([
      "acmelabs@example.com",
    ]);
  });

  it("in matches any of the values, ignoring case", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "in", value: ["globex", "ACME LABS"] })).toEqual(
      sorted(["globex@example.com", "acmelabs@example.com"]),
    );
  });

  it("greater_than and less_than compare text and never match empty values", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "greater_than", value: "b" })).toEqual(
      sorted(["backslash@example.com", "globex@example.com"]),
    );
    expect(await emailsWhere(account, { ...field(), operator: "less_than", value: "B" })).toEqual(
      sorted(["acme@example.com", "acmelabs@example.com", "percent@example.com"]),
    );
  });

  it("is_empty matches missing, null and blank values", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "is_empty" })).toEqual(sorted(empties));
  });

  it("is_not_empty matches every subscriber with a value", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "is_not_empty" })).toEqual(
      sorted(everyone.filter((e) => !empties.includes(e))),
    );
  });
});

describe("number custom field conditions", () => {
  let account: RuleAccount;
  let score: number;
  const scores: Record<string, number | string | null | undefined> = {
    "nine@example.com": 9,
    "ten@example.com": 10,
    "hundred-text@example.com": "100",
    "negative@example.com": -5,
    "fraction@example.com": 2.5,
    "zero@example.com": 0,
    "blank@example.com": "",
    "null@example.com": null,
    "missing@example.com": undefined,
  };
  const everyone = Object.keys(scores);
  const empties = ["blank@example.com", "null@example.com", "missing@example.com"];
  const field = () => ({ field: "customfield" as const, fieldid: score });

  beforeAll(async () => {
    account = await ruleAccount();
    score = await createField(account.id, "Score", "number");
    await refreshFields(account);
    for (const [email, value] of Object.entries(scores)) {
      await addSubscriber(account.id, account.listId, { email, fields: value === undefined ? {} : { [score]: value } });
    }
  });

  it("greater_than compares numerically, so 10 and \"100\" are greater than 9", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "greater_than", value: 9 })).toEqual(
      sorted(["ten@example.com", "hundred-text@example.com"]),
    );
  });

  it("less_than compares numerically and never matches missing or blank values", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "less_than", value: 10 })).toEqual(
      sorted(["nine@example.com", "negative@example.com", "fraction@example.com", "zero@example.com"]),
    );
  });

  it("accepts a numeric string as the value", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "greater_than", value: "9.5" })).toEqual(
      sorted(["ten@example.com", "hundred-text@example.com"]),
    );
  });

  it("equals matches numbers stored as numbers or as text", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "equals", value: 10 })).toEqual(["ten@example.com"]);
    expect(await emailsWhere(account, { ...field(), operator: "equals", value: 100 })).toEqual([
      "hundred-text@example.com",
    ]);
  });

  it("equals 0 does not match missing or blank values", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "equals", value: 0 })).toEqual(["zero@example.com"]);
  });

  it("not_equals matches other values and subscribers without a value", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "not_equals", value: 10 })).toEqual(
      sorted(everyone.filter((e) => e !== "ten@example.com")),
    );
  });

  it("between is inclusive at both ends", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "between", value: [2.5, 10] })).toEqual(
      sorted(["fraction@example.com", "nine@example.com", "ten@example.com"]),
    );
  });

  it("between accepts its bounds in either order", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "between", value: [10, 2.5] })).toEqual(
      sorted(["fraction@example.com", "nine@example.com", "ten@example.com"]),
    );
  });

  it("between around 0 does not match missing or blank values", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "between", value: [-1, 1] })).toEqual([
      "zero@example.com",
    ]);
  });

  it("in matches any of the numbers", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "in", value: [9, "100", 7] })).toEqual(
      sorted(["nine@example.com", "hundred-text@example.com"]),
    );
  });

  it("is_empty matches missing, null and blank values", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "is_empty" })).toEqual(sorted(empties));
  });

  it("is_not_empty matches every subscriber with a value, 0 included", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "is_not_empty" })).toEqual(
      sorted(everyone.filter((e) => !empties.includes(e))),
    );
  });
});

describe("date custom field conditions", () => {
  let account: RuleAccount;
  let renewal: number;
  const renewals: Record<string, string | undefined> = {
    "may01@example.com": "2025-05-01",
    "may02@example.com": "2025-05-02",
    "jun07@example.com": "2025-06-07",
    "jun10@example.com": "2025-06-10",
    "blank@example.com": "",
    "missing@example.com": undefined,
  };
  const everyone = Object.keys(renewals);
  const field = () => ({ field: "customfield" as const, fieldid: renewal });

  beforeAll(async () => {
    account = await ruleAccount();
    renewal = await createField(account.id, "Renewal", "date");
    await refreshFields(account);
    for (const [email, value] of Object.entries(renewals)) {
      await addSubscriber(account.id, account.listId, { email, fields: value === undefined ? {} : { [renewal]: value } });
    }
  });

  it("equals matches that day", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "equals", value: "2025-05-01" })).toEqual([
      "may01@example.com",
    ]);
  });

  it("not_equals matches other days and subscribers without a date", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "not_equals", value: "2025-05-01" })).toEqual(
      sorted(everyone.filter((e) => e !== "may01@example.com")),
    );
  });

  it("before and less_than match earlier days, never blank or missing ones", async () => {
    for (const operator of ["before", "less_than"] as const) {
      expect(await emailsWhere(account, { ...field(), operator, value: "2025-05-02" })).toEqual(["may01@example.com"]);
    }
  });

  it("after and greater_than match later days", async () => {
    for (const operator of ["after", "greater_than"] as const) {
      expect(await emailsWhere(account, { ...field(), operator, value: "2025-05-02" })).toEqual(
        sorted(["jun07@example.com", "jun10@example.com"]),
      );
    }
  });

  it("between includes both days, in either order", async () => {
    const expected = sorted(["may01@example.com", "may02@example.com"]);
    expect(await emailsWhere(account, { ...field(), operator: "between", value: ["2025-05-01", "2025-05-02"] })).toEqual(
      expected,
    );
    expect(await emailsWhere(account, { ...field(), operator: "between", value: ["2025-05-02", "2025-05-01"] })).toEqual(
      expected,
    );
  });

  it("within_last_days matches dates from that many days before now", async () => {
    // Now is 2025-06-15: the last 7 days start at 2025-06-08.
    expect(await emailsWhere(account, { ...field(), operator: "within_last_days", value: 7 })).toEqual([
      "jun10@example.com",
    ]);
    expect(await emailsWhere(account, { ...field(), operator: "within_last_days", value: 8 })).toEqual(
      sorted(["jun07@example.com", "jun10@example.com"]),
    );
  });

  it("is_empty matches blank and missing dates and is_not_empty the rest", async () => {
    expect(await emailsWhere(account, { ...field(), operator: "is_empty" })).toEqual(
      sorted(["blank@example.com", "missing@example.com"]),
    );
    expect(await emailsWhere(account, { ...field(), operator: "is_not_empty" })).toEqual(
      sorted(["may01@example.com", "may02@example.com", "jun07@example.com", "jun10@example.com"]),
    );
  });
});
