import type { RuleGroup } from "../../src/segments/rules";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { segments } from "../../src/db/schema";
import { addSubscriber, callApi, createAccount, createSegment, dataOf, db, request, seedScenario } from "../fixtures";
import { membersOf, type Scenario } from "./helpers";

interface SegmentRow {
  segmentid: string;
  segmentname: string;
  createdate: string;
  contacts: number | null;
  errormessage?: string;
}

const getSegments = async (account: Scenario["account"]) =>
  dataOf<SegmentRow[]>(await callApi(request(account, "Segments", "GetSegments")));

let s: Scenario;
let other: Scenario;
beforeAll(async () => {
  s = await seedScenario();
  other = await seedScenario();
});

describe("Segments / GetSegments", () => {
  it("lists the account's segments with id (a string), name, create date and contact count", async () => {
    const rows = await getSegments(s.account);
    const createdate = (id: number) => db().select().from(segments).where(eq(segments.id, id)).get().then((r) => r!.createdAt);
    expect(rows).toEqual([
      {
        segmentid: String(s.segments.customers),
        segmentname: "Customers",
        createdate: await createdate(s.segments.customers),
        contacts: membersOf(s, ["customers"]).length,
      },
      {
        segmentid: String(s.segments.vip),
        segmentname: "VIPs",
        createdate: await createdate(s.segments.vip),
        contacts: membersOf(s, ["vip"]).length,
      },
      {
        segmentid: String(s.segments.acme),
        segmentname: "Acme",
        createdate: await createdate(s.segments.acme),
        contacts: membersOf(s, ["acme"]).length,
      },
    ]);
    for (const row of rows) expect(row.createdate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it("counts contacts of every status, as the seeded data says (8 customers, 12 VIPs, 12 at Acme)", async () => {
    const rows = await getSegments(s.account);
    expect(rows.map((r) => r.contacts)).toEqual([8, 12, 12]);
  });

  it("lists only this account's segments, never another account's", async () => {
    const mine = (await getSegments(s.account)).map((r) => r.segmentid);
    const theirs = (await getSegments(other.account)).map((r) => r.segmentid);
    expect(mine).toEqual(Object.values(s.segments).map(String));
    expect(theirs).toEqual(Object.values(other.segments).map(String));
    expect(mine.filter((id) => theirs.includes(id))).toEqual([]);
  });

  it("counts only this account's subscribers, even when a segment's rule names another account's list", async () => {
    const poacher = await createAccount();
    const id = await createSegment(
      poacher.id,
      { match: "all", rules: [{ field: "list", operator: "equals", value: s.lists.customers }] },
      "Someone else's list",
    );
    expect(await getSegments(poacher)).toEqual([
      expect.objectContaining({ segmentid: String(id), segmentname: "Someone else's list", contacts: 0 }),
    ]);
  });

  it("reports the count as it is now, not when the segment was made", async () => {
    const fresh = await seedScenario();
    const before = (await getSegments(fresh.account)).find((r) => r.segmentid === String(fresh.segments.customers))!;
    await addSubscriber(fresh.account.id, fresh.lists.customers, { email: "newcomer@example.com" });
    await addSubscriber(fresh.account.id, fresh.lists.newsletter, { email: "elsewhere@example.com" });
    const after = (await getSegments(fresh.account)).find((r) => r.segmentid === String(fresh.segments.customers))!;
    expect(after.contacts).toBe(before.contacts! + 1);
  });

  it("answers an account without segments with an empty list", async () => {
    expect(await getSegments(await createAccount())).toEqual([]);
  });

  it("still lists the other segments when one segment's rules no longer compile, with its error", async () => {
    const account = await createAccount();
    const broken = await createSegment(
      account.id,
      { match: "all", rules: [{ field: "customfield", fieldid: 999_999, operator: "equals", value: "x" }] },
      "Broken",
    );
    const empty = await createSegment(account.id, { match: "any", rules: [] }, "Nobody");
    const rows = await getSegments(account);
    expect(rows.map(({ createdate, ...rest }) => rest)).toEqual([
      {
        segmentid: String(broken),
        segmentname: "Broken",
        contacts: null,
        errormessage: 'Segment "Broken" rules[0]: custom field 999999 does not exist in this account',
      },
      { segmentid: String(empty), segmentname: "Nobody", contacts: 0 },
    ]);
  });

  it("lists a segment whose stored rule tree is malformed with its error, not a 500", async () => {
    const account = await createAccount();
    const malformed = await createSegment(account.id, { match: "all", rules: "everyone" } as unknown as RuleGroup, "Malformed");
    const rows = await getSegments(account);
    expect(rows.map(({ createdate, ...rest }) => rest)).toEqual([
      {
        segmentid: String(malformed),
        segmentname: "Malformed",
        contacts: null,
        errormessage: 'Segment "Malformed" has rules that cannot run: rules.rules: Invalid input: expected array, received string',
      },
    ]);
  });
});
