/**
 * Segments / GetSegmentSubscribers, the synchronous sibling: the same selection as the async call, in pages
 * of `pagination.limit` with an opaque `next`; walking every page gives exactly the async JSON file's records,
 * in order.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { LAST_PAGE, PAGE_LIMITS } from "../../src/methods/segments_get_segment_subscribers";
import { addSubscriber, callApi, createAccount, createList, createSegment, dataOf, request, seedScenario } from "../fixtures";
import { EMAIL_NOTIFY, expectError, exportJson, membersOf, type JsonSubscriber, type Scenario } from "./helpers";

interface Page {
  count: number;
  subscribers: JsonSubscriber[];
  pagination: { next: string };
}

let s: Scenario;
let other: Scenario;
beforeAll(async () => {
  s = await seedScenario();
  other = await seedScenario();
});

const call = (account: Scenario["account"], details: Record<string, unknown>) =>
  callApi<Page>(request(account, "Segments", "GetSegmentSubscribers", details));

/** Every page of a walk, from the first, following `next` until "0". */
async function walk(account: Scenario["account"], details: Record<string, unknown>, limit: number) {
  const pages: Page[] = [];
  let next: string | undefined;
  do {
    const page = dataOf(await call(account, { ...details, pagination: { limit, ...(next ? { next } : {}) } }));
    pages.push(page);
    next = page.pagination.next;
    if (pages.length > 100) throw new Error("the walk does not end");
  } while (next !== LAST_PAGE);
  return pages;
}

describe("Segments / GetSegmentSubscribers: pages", () => {
  it("answers one page: its count, the subscribers as the file has them, and where to continue", async () => {
    const page = dataOf(await call(s.account, { segmentid: [s.segments.vip], pagination: { limit: 3 } }));
    const vips = membersOf(s, ["vip"]);
    expect(vips.length).toBeGreaterThan(3);
    expect(page.count).toBe(3);
    expect(page.subscribers.map((r) => r.subscriberid)).toEqual(vips.slice(0, 3).map((p) => p.id));
    expect(page.subscribers[0]).toEqual({
      subscriberid: vips[0]!.id,
      emailaddress: vips[0]!.email,
      status: vips[0]!.status,
      subscribedate: vips[0]!.subscribeDate,
      customfields: {},
    });
    expect(page.pagination.next).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(page.pagination.next).not.toBe(LAST_PAGE);
  });

  it(`pages ${PAGE_LIMITS.default} subscribers by default, and says "0" when the page is the last`, async () => {
    const page = dataOf(await call(s.account, { segmentid: [s.segments.customers, s.segments.vip, s.segments.acme] }));
    const all = membersOf(s, ["customers", "vip", "acme"]);
    expect(all.length).toBeLessThan(PAGE_LIMITS.default);
    expect(page.count).toBe(all.length);
    expect(page.pagination).toEqual({ next: LAST_PAGE });
  });

  it("ends with a full page and next \"0\" when the rows divide evenly: no empty last page", async () => {
    const vips = membersOf(s, ["vip"]);
    const pages = await walk(s.account, { segmentid: [s.segments.vip] }, vips.length);
    expect(pages.map((p) => p.count)).toEqual([vips.length]);
  });

  describe("walking every page gives exactly the async file's records, in order", () => {
    const selections: Array<[string, (s: Scenario) => Record<string, unknown>]> = [
      ["several segments, every status", (s) => ({ segmentid: [s.segments.customers, s.segments.vip, s.segments.acme] })],
      ["custom fields, tags and a status filter", (s) => ({ segmentid: [s.segments.vip, s.segments.customers], status: "active", include_membership: "yes", customfields: ["Company", "Score", "First Name"] })],
      ["all custom fields", (s) => ({ segmentid: [s.segments.acme], customfields: "all", include_membership: true })],
    ];
    it.each(selections)("%s", async (_, selection) => {
      const details = selection(s);
      const file = await exportJson(s.account, { ...details, notify: EMAIL_NOTIFY });
      for (const limit of [1, 4, 1_000]) {
        const pages = await walk(s.account, details, limit);
        expect(pages.flatMap((p) => p.subscribers), `limit ${limit}`).toEqual(file.subscribers);
        expect(pages.every((p) => p.count === p.subscribers.length && p.count <= limit)).toBe(true);
      }
      expect(file.subscribers.length).toBeGreaterThan(0);
    });
  });

  it("continues after the last subscriber sent: one added meanwhile beyond it is in a later page", async () => {
    const account = await createAccount();
    const list = await createList(account.id);
    for (let i = 0; i < 4; i++) await addSubscriber(account.id, list, { email: `early${i}@example.com` });
    const segment = await createSegment(account.id, { match: "all", rules: [] });
    const first = dataOf(await call(account, { segmentid: [segment], pagination: { limit: 2 } }));
    await addSubscriber(account.id, list, { email: "late@example.com" });
    const rest = await walkFrom(account, { segmentid: [segment] }, 2, first.pagination.next);
    expect([...first.subscribers, ...rest].map((r) => r.emailaddress)).toEqual([
      "early0@example.com",
      "early1@example.com",
      "early2@example.com",
      "early3@example.com",
      "late@example.com",
    ]);
  });
});

async function walkFrom(account: Scenario["account"], details: Record<string, unknown>, limit: number, next: string) {
  const out: JsonSubscriber[] = [];
  while (next !== LAST_PAGE) {
    const page = dataOf(await call(account, { ...details, pagination: { limit, next } }));
    out.push(...page.subscribers);
    next = page.pagination.next;
  }
  return out;
}

describe("Segments / GetSegmentSubscribers: the next token", () => {
  const page2Token = async () =>
    dataOf(await call(s.account, { segmentid: [s.segments.vip], customfields: ["Company"], pagination: { limit: 2 } })).pagination.next;
  const NOT_OURS = (token: string) =>
    `details.pagination.next: "${token}" is not a page token of this request (a token works only with the segmentid, status, include_membership and customfields it was issued for)`;

  it("works with the same selection, also with another limit", async () => {
    const token = await page2Token();
    const page = dataOf(await call(s.account, { segmentid: [s.segments.vip], customfields: ["Company"], pagination: { limit: 1, next: token } }));
    expect(page.subscribers.map((r) => r.subscriberid)).toEqual([membersOf(s, ["vip"])[2]!.id]);
  });

  it("is refused with another selection: other segments, status, tags or fields", async () => {
    const token = await page2Token();
    for (const details of [
      { segmentid: [s.segments.acme], customfields: ["Company"] },
      { segmentid: [s.segments.vip], customfields: ["Company"], status: "active" },
      { segmentid: [s.segments.vip], customfields: ["Company"], include_membership: true },
      { segmentid: [s.segments.vip], customfields: ["Score"] },
      { segmentid: [s.segments.vip] },
    ]) {
      expectError(await call(s.account, { ...details, pagination: { next: token } }), 400, NOT_OURS(token));
    }
  });

  it("is refused for another account, even with the same-looking selection", async () => {
    const token = dataOf(await call(s.account, { segmentid: [s.segments.vip], pagination: { limit: 1 } })).pagination.next;
    expectError(await call(other.account, { segmentid: [other.segments.vip], pagination: { next: token } }), 400, NOT_OURS(token));
  });

  it("is refused when edited, forged or not a token at all", async () => {
    const token = await page2Token();
    const decoded = atob(token.replaceAll("-", "+").replaceAll("_", "/"));
    const [, at, mac] = decoded.split(".");
    // Skipping ahead by editing the position breaks the signature.
    const skipped = btoa(`999999.${at}.${mac}`).replace(/=+$/, "");
    for (const bad of [skipped, token.slice(0, -2), "abc", "!!!", "MA", token + "x"]) {
      const response = await call(s.account, { segmentid: [s.segments.vip], customfields: ["Company"], pagination: { next: bad } });
      expect(response.status, bad).toBe(400);
    }
  });

  it('refuses next "0", which ends a walk, rather than starting it over', async () => {
    expectError(
      await call(s.account, { segmentid: [s.segments.vip], pagination: { next: LAST_PAGE } }),
      400,
      'details.pagination.next: "0" means the previous page was the last one; omit next to start from the first page',
    );
  });

  it("carries the moment of the first page, so relative-date rules stay put for the whole walk", async () => {
    const first = await page2Token();
    const atOf = (token: string) => Number(atob(token.replaceAll("-", "+").replaceAll("_", "/")).split(".")[1]);
    const second = dataOf(
      await call(s.account, { segmentid: [s.segments.vip], customfields: ["Company"], pagination: { limit: 1, next: first } }),
    ).pagination.next;
    expect(atOf(second)).toBe(atOf(first));
    expect(Math.abs(atOf(first) - Date.now())).toBeLessThan(60_000);
  });
});

describe("Segments / GetSegmentSubscribers: bad details", () => {
  it.each([
    [{ limit: 0 }, "details.pagination.limit: must be a whole number from 1 to 1000"],
    [{ limit: 1001 }, "details.pagination.limit: must be at most 1000"],
    [{ limit: 2.5 }, "details.pagination.limit: must be a whole number from 1 to 1000"],
    [{ limit: "many" }, "details.pagination.limit: must be a whole number from 1 to 1000"],
    [{ next: 5 }, "details.pagination.next: must be the string a previous page returned as pagination.next"],
    ["page 2", "details.pagination: must be {limit, next}"],
  ])("refuses pagination %j", async (pagination, message) => {
    const response = await call(s.account, { segmentid: [s.segments.vip], pagination });
    expect(response.status).toBe(400);
    expect((response.body.response as { errormessage: string }).errormessage).toContain(message);
  });

  it("accepts the largest page, 1,000", async () => {
    const page = dataOf(await call(s.account, { segmentid: [s.segments.vip], pagination: { limit: 1000 } }));
    expect(page.count).toBe(membersOf(s, ["vip"]).length);
  });

  it("refuses the selection as the async call does: an unknown segment, an unknown field", async () => {
    expectError(await call(s.account, { segmentid: [999_999_999] }), 404, "details.segmentid: no segment 999999999 in this account");
    const response = await call(s.account, { segmentid: [s.segments.vip], customfields: ["No Such Field"] });
    expect(response.status).toBe(400);
  });

  it("refuses another account's segment", async () => {
    expectError(
      await call(s.account, { segmentid: [other.segments.vip] }),
      404,
      `details.segmentid: no segment ${other.segments.vip} in this account`,
    );
  });
});
