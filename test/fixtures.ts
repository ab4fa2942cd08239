/** Small builders for test data, on the pool's real D1 (a control database and two shards), and a caller for the API. */
import { env, exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { hashToken } from "../src/api/auth";
import type { MethodContext } from "../src/api/method";
import { loadConfig, type Config } from "../src/config";
import { accounts, type Account } from "../src/db/control_schema";
import {
  customFields,
  lists,
  segments,
  subscribers,
  subscriberTags,
  tags,
  type AllocatedTable,
  type Segment,
  type CustomFieldType,
  type SubscriberStatus,
} from "../src/db/shard_schema";
import type { RuleGroup } from "../src/segments/rules";
import { shardForWriting, shardOfAccount } from "../src/shards/directory";
import { allocateIds } from "../src/shards/ids";
import { placeAccount } from "../src/shards/placement";

/** The control database: accounts, the shard directory, export jobs. */
export const db = () => drizzle(env.DB);

/** The data shards of the tests (test/apply-migrations.ts migrates and registers them). */
export const TEST_SHARDS = ["SHARD_0", "SHARD_1"] as const;
export type TestShard = (typeof TEST_SHARDS)[number];

/** The shard holding an account's contacts, as the service routes to it (drizzle over it). */
export const shardDb = async (accountId: number) => (await shardOfAccount(env, db(), accountId)).db;

const newId = (table: AllocatedTable) => allocateIds(env.DB, table);

/** What the API edge gives a method (src/api/app.ts), for tests that call a method's handler directly. */
export function methodContext(testEnv: Env, account: Account, config: Config = loadConfig(testEnv)): MethodContext {
  const control = drizzle(testEnv.DB);
  return {
    env: testEnv,
    config,
    db: control,
    account,
    shard: () => shardOfAccount(testEnv, control, account.id),
    writableShard: () => shardForWriting(testEnv, control, account.id),
  };
}

let counter = 0;
export const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++counter}`;

export interface TestAccount {
  id: number;
  username: string;
  usertoken: string;
  webhookSecret: string;
}

const randomSecret = () => {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
};

let placed = 0;

/**
 * An account with a fresh token, placed on `shard`, or else on the test shards in turn: consecutive accounts
 * land on different shards, so every test runs with accounts spread over both.
 */
export async function createAccount(username = unique("user"), options: { shard?: TestShard } = {}): Promise<TestAccount & { shard: TestShard }> {
  const usertoken = `token-${crypto.randomUUID()}`;
  const tokenSalt = crypto.randomUUID();
  const webhookSecret = randomSecret();
  const [row] = await db()
    .insert(accounts)
    .values({ username, tokenSalt, tokenHash: await hashToken(tokenSalt, usertoken), webhookSecret })
    .returning({ id: accounts.id });
  const shard = options.shard ?? TEST_SHARDS[placed++ % TEST_SHARDS.length]!;
  await placeAccount(env, db(), row!.id, shard);
  return { id: row!.id, username, usertoken, webhookSecret, shard };
}

/** An account row with no directory entry, as account:create has it before placing it (or one made by hand). */
export async function unplacedAccount(): Promise<number> {
  const [row] = await db()
    .insert(accounts)
    .values({ username: unique("unplaced"), tokenSalt: "salt", tokenHash: "hash", webhookSecret: "whsec_x" })
    .returning({ id: accounts.id });
  return row!.id;
}

export async function createList(accountId: number, name = unique("list")) {
  const [row] = await (await shardDb(accountId)).insert(lists).values({ id: await newId("lists"), accountId, name }).returning({ id: lists.id });
  return row!.id;
}

export async function createField(accountId: number, name: string, type: CustomFieldType = "text") {
  const [row] = await (await shardDb(accountId))
    .insert(customFields)
    .values({ id: await newId("custom_fields"), accountId, name, type })
    .returning({ id: customFields.id });
  return row!.id;
}

export async function createTag(accountId: number, name: string) {
  const [row] = await (await shardDb(accountId)).insert(tags).values({ id: await newId("tags"), accountId, name }).returning({ id: tags.id });
  return row!.id;
}

export interface SubscriberInput {
  email: string;
  status?: SubscriberStatus;
  subscribeDate?: string;
  fields?: Record<number, string | number | null>;
  tags?: number[];
}

export async function addSubscriber(accountId: number, listId: number, input: SubscriberInput): Promise<number> {
  const shard = await shardDb(accountId);
  const [row] = await shard
    .insert(subscribers)
    .values({
      id: await newId("subscribers"),
      accountId,
      listId,
      email: input.email,
      status: input.status ?? "active",
      subscribeDate: input.subscribeDate ?? "2025-01-15T10:00:00Z",
      customFields: Object.fromEntries(Object.entries(input.fields ?? {}).map(([k, v]) => [String(k), v])),
    })
    .returning({ id: subscribers.id });
  const id = row!.id;
  if (input.tags?.length) {
    await shard
      .insert(subscriberTags)
      .values(input.tags.map((tagId) => ({ subscriberId: id, tagId })));
  }
  return id;
}

/** A segment's stored count, as GetSegments and the sweeper keep it. */
export async function storedCount(segmentId: number) {
  const row = (await segmentRow(segmentId))!;
  return { contacts: row.contactsCount, countedAt: row.countedAt, error: row.countError };
}

/** Changes a stored segment's columns, on whichever shard holds it (ids are unique across shards). */
export async function updateSegmentRow(segmentId: number, values: Partial<Segment>) {
  for (const shard of TEST_SHARDS) await drizzle(env[shard]).update(segments).set(values).where(eq(segments.id, segmentId));
}

/** A segment's row, from whichever shard holds it (ids are unique across shards). */
export async function segmentRow(segmentId: number) {
  for (const shard of TEST_SHARDS) {
    const row = await drizzle(env[shard]).select().from(segments).where(eq(segments.id, segmentId)).get();
    if (row) return row;
  }
  return undefined;
}

export async function createSegment(accountId: number, rules: RuleGroup, name = unique("segment")) {
  const [row] = await (await shardDb(accountId))
    .insert(segments)
    .values({ id: await newId("segments"), accountId, name, rules })
    .returning({ id: segments.id });
  return row!.id;
}

export function request(account: Pick<TestAccount, "username" | "usertoken">, requesttype: string, requestmethod: string, details?: unknown) {
  return { username: account.username, usertoken: account.usertoken, requesttype, requestmethod, details };
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: { response: { status: "SUCCESS"; data: T } | { status: "ERROR"; errormessage: string } };
}

/** POSTs to /apijson.php; a string body is sent as is (for malformed JSON). */
export async function callApi<T = any>(body: unknown): Promise<ApiResponse<T>> {
  const res = await exports.default.fetch("https://exports.test/apijson.php", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as ApiResponse<T>["body"] };
}

/** The data of a SUCCESS response; fails the test with the error message otherwise. */
export function dataOf<T>(response: ApiResponse<T>): T {
  if (response.body.response.status !== "SUCCESS") {
    throw new Error(`expected SUCCESS, got ${response.status}: ${response.body.response.errormessage}`);
  }
  return response.body.response.data;
}

/**
 * A small, realistic account: two lists, three custom fields, three tags, subscribers in every status,
 * and three segments. Returns the ids and the subscribers as inserted, for checking exports against.
 */
export async function seedScenario(options: { shard?: TestShard } = {}) {
  const account = await createAccount(undefined, options);
  const newsletter = await createList(account.id, "Newsletter");
  const customers = await createList(account.id, "Customers");
  const firstName = await createField(account.id, "First Name", "text");
  const company = await createField(account.id, "Company", "text");
  const score = await createField(account.id, "Score", "number");
  const vip = await createTag(account.id, "vip");
  const trial = await createTag(account.id, "trial");
  const churned = await createTag(account.id, "churned");

  const statuses: SubscriberStatus[] = ["active", "inactive", "bounced", "unsubscribed"];
  const people: Array<SubscriberInput & { id: number; listId: number }> = [];
  for (let i = 0; i < 24; i++) {
    const listId = i % 3 === 0 ? customers : newsletter;
    const input: SubscriberInput = {
      email: `person${String(i).padStart(2, "0")}@example.com`,
      status: statuses[i % 4],
      subscribeDate: `2025-0${(i % 9) + 1}-1${i % 10}T08:30:00Z`,
      fields: { [firstName]: `Name ${i}`, [company]: i % 2 === 0 ? "Acme, Inc." : "Globex", [score]: i * 10 },
      tags: [vip, trial, churned].filter((_, t) => (i >> t) & 1),
    };
    people.push({ ...input, id: await addSubscriber(account.id, listId, input), listId });
  }
  const customerSegment = await createSegment(
    account.id,
    { match: "all", rules: [{ field: "list", operator: "equals", value: customers }] },
    "Customers",
  );
  const vipSegment = await createSegment(
    account.id,
    { match: "all", rules: [{ field: "tag", operator: "equals", value: vip }] },
    "VIPs",
  );
  const acmeSegment = await createSegment(
    account.id,
    { match: "all", rules: [{ field: "customfield", fieldid: company, operator: "starts_with", value: "acme" }] },
    "Acme",
  );
  return {
    account,
    lists: { newsletter, customers },
    fields: { firstName, company, score },
    tags: { vip, trial, churned },
    segments: { customers: customerSegment, vip: vipSegment, acme: acmeSegment },
    people,
  };
}

export interface ReceivedWebhook {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * The webhooks the export worker sent for one event (its webhook-id), in arrival order. In tests the export
 * worker's outbound requests go to a sink worker that stores them in the WEBHOOK_SINK bucket (vitest.config.ts).
 */
export async function receivedWebhooks(webhookId: string): Promise<ReceivedWebhook[]> {
  const listed = await env.WEBHOOK_SINK.list({ prefix: `${webhookId}/` });
  const keys = listed.objects.map((o) => o.key).sort();
  return Promise.all(keys.map(async (key) => (await (await env.WEBHOOK_SINK.get(key))!.json()) as ReceivedWebhook));
}
