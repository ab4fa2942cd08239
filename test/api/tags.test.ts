/** Tags / CreateTags, TagSubscribers, UntagSubscribers: by tag id or name, on the account's subscribers only. */
import { describe, expect, it } from "vitest";
import { callApi, createAccount, dataOf, request, seedScenario, shardDb, type TestAccount } from "../fixtures";
import { expectError } from "./helpers";
import { sql } from "drizzle-orm";

const call = (account: TestAccount, requestmethod: string, details?: unknown) => callApi(request(account, "Tags", requestmethod, details));

async function tagsOf(accountId: number, subscriberId: number): Promise<number[]> {
  const rows = await (await shardDb(accountId)).all<{ tag_id: number }>(sql`SELECT tag_id FROM subscriber_tags WHERE subscriber_id = ${subscriberId} ORDER BY tag_id`);
  return rows.map((r) => Number(r.tag_id));
}

describe("Tags / CreateTags", () => {
  it("creates a tag with a description; a name in use is a 409 naming the tag", async () => {
    const account = await createAccount();
    const tag = dataOf<{ tagid: string }>(await call(account, "CreateTags", { name: "vip", description: "Yearly plan" }));
    expect(tag).toEqual({ tagid: expect.stringMatching(/^\d+$/), name: "vip", description: "Yearly plan", createdate: expect.any(String) });
    expectError(await call(account, "CreateTags", { name: "vip" }), 409, `details.name: the account already has a tag named "vip" (tagid ${tag.tagid})`);
    expectError(await call(account, "CreateTags", { name: "" }), 400, "details.name: must not be empty");
  });
});

describe("Tags / TagSubscribers and UntagSubscribers", () => {
  it("tags subscribers by tag name or id, says which were already tagged, and lists ids that are not the account's", async () => {
    const s = await seedScenario();
    const other = await seedScenario();
    const untagged = s.people.filter((p) => !(p.tags ?? []).includes(s.tags.churned)).slice(0, 3);
    const tagged = s.people.find((p) => (p.tags ?? []).includes(s.tags.churned))!;
    const foreign = other.people[0]!.id;
    const result = dataOf(
      await call(s.account, "TagSubscribers", { tag: "churned", subscriberid: [...untagged.map((p) => String(p.id)), tagged.id, foreign, 999_999_999] }),
    );
    expect(result).toEqual({ tagid: String(s.tags.churned), tagged: 3, alreadytagged: 1, notfound: [String(foreign), "999999999"] });
    for (const p of untagged) expect(await tagsOf(s.account.id, p.id)).toContain(s.tags.churned);
    expect(await tagsOf(other.account.id, foreign)).toEqual((other.people[0]!.tags ?? []).slice().sort((a, b) => a - b));

    const removed = dataOf(await call(s.account, "UntagSubscribers", { tag: s.tags.churned, subscriberid: [untagged[0]!.id, untagged[0]!.id, foreign] }));
    expect(removed).toEqual({ tagid: String(s.tags.churned), untagged: 1, nottagged: 0, notfound: [String(foreign)] });
    expect(await tagsOf(s.account.id, untagged[0]!.id)).not.toContain(s.tags.churned);
  });

  it("refuses an unknown tag, or another account's, as not found, and bad ids as 400", async () => {
    const s = await seedScenario();
    const other = await seedScenario();
    const id = s.people[0]!.id;
    expectError(await call(s.account, "TagSubscribers", { tag: "nope", subscriberid: [id] }), 404, 'details.tag: no tag "nope" in this account');
    expectError(await call(s.account, "TagSubscribers", { tag: other.tags.vip, subscriberid: [id] }), 404, `details.tag: no tag ${other.tags.vip} in this account`);
    expectError(await call(s.account, "TagSubscribers", { tag: "vip", subscriberid: [] }), 400, "details.subscriberid: must name at least one subscriber");
    expectError(await call(s.account, "TagSubscribers", { tag: "vip", subscriberid: ["x1"] }), 400, 'details.subscriberid.0: "x1" is not a subscriber id');
    expectError(
      await call(s.account, "UntagSubscribers", { tag: "vip", subscriberid: Array.from({ length: 1001 }, (_, i) => i + 1) }),
      400,
      "details.subscriberid: at most 1000 subscribers per call",
    );
  });
});
