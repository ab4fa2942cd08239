/**
 * Demo data for local development, in two parts (scripts/dev.sh runs both once, when the demo account is not
 * in the local databases yet):
 *
 *   npx tsx scripts/seed.ts control SHARD_0 > control.sql     # for `wrangler d1 execute DB --local --file`
 *   npx tsx scripts/seed.ts shard <account id> > shard.sql     # for `wrangler d1 execute SHARD_0 --local --file`
 *
 * The control part creates the demo account, places it on the named shard, and reserves the demo's ids in the
 * id allocator; the shard part writes the contacts with the account's id.
 *
 * The data is pseudo-random but deterministic (a fixed PRNG seed), so every machine gets the same
 * subscribers and the same segment counts. Ids are fixed too: the example request names segments 12 and 13,
 * and the rule trees and custom field values refer to list, tag and field ids. A database that already holds
 * rows with these ids (not the demo's) makes the seed fail; start over with `rm -rf .wrangler/state`.
 */
import { hashToken } from "../src/api/auth";
import type { AllocatedTable, CustomFieldType, SubscriberStatus } from "../src/db/shard_schema";
import { isShardName } from "../src/shards/directory";
import type { RuleGroup } from "../src/segments/rules";
import { DEMO_ACCOUNT } from "./demo-account";
import { insertRows, sqlString, sqlValue } from "./lib/sql";

const SUBSCRIBER_COUNT = 1000;

/** mulberry32: small, fast, and the same sequence everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const weighted = <T>(items: ReadonlyArray<readonly [T, number]>): T => {
    let r = next() * items.reduce((sum, [, w]) => sum + w, 0);
    for (const [item, weight] of items) if ((r -= weight) < 0) return item;
    return items[items.length - 1]![0];
  };
  const chance = (p: number) => next() < p;
  return { int, pick, weighted, chance };
}

const LISTS = { newsletter: 1, customers: 2, events: 3 } as const;
const LIST_NAMES: Record<number, string> = { 1: "Newsletter", 2: "Customers", 3: "Events" };

const FIELDS = {
  firstName: { id: 1, name: "First Name", type: "text" },
  lastName: { id: 2, name: "Last Name", type: "text" },
  company: { id: 3, name: "Company", type: "text" },
  city: { id: 4, name: "City", type: "text" },
  plan: { id: 5, name: "Plan", type: "text" },
  score: { id: 6, name: "Score", type: "number" },
  birthday: { id: 7, name: "Birthday", type: "date" },
  renewal: { id: 8, name: "Renewal Date", type: "date" },
} as const satisfies Record<string, { id: number; name: string; type: CustomFieldType }>;

const TAGS = { vip: 1, betaTester: 2, webinar: 3, churnRisk: 4, partner: 5 } as const;
const TAG_NAMES: Record<number, string> = { 1: "vip", 2: "beta-tester", 3: "webinar-2025", 4: "churn-risk", 5: "partner" };

// Accents, apostrophes, commas and quotes on purpose: they exercise SQL escaping, JSON and CSV quoting.
const FIRST_NAMES = [
  "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "Lucas",
  "Mia", "Mateo", "Amelia", "Ethan", "Harper", "Aiden", "Chloé", "José", "Zoë", "Siobhan",
  "Renée", "Björn", "Aisha", "Kenji", "Priya", "Tomás", "Ingrid", "Kwame", "Léa", "Dmitri",
];
const LAST_NAMES = [
  "Smith", "Johnson", "García", "Müller", "O'Brien", "Nguyen", "Kowalski", "Rossi", "Dubois", "Tanaka",
  "Okafor", "Silva", "Jensen", "Novak", "D'Angelo", "Fitzgerald", "Haddad", "Larsen", "Moreau", "Patel",
];
const COMPANIES = [
  "Acme, Inc.", "Acme Logistics", "Globex", "Initech", "Umbrella Corp", "Stark Industries", "Wayne Enterprises",
  "Hooli", "Pied Piper", "Vandelay Industries", "Bob's Burgers", "Wonka \"Chocolate\" Factory", "Cyberdyne Systems",
];
const CITIES = [
  "New York", "London", "Berlin", "Paris", "Tokyo", "São Paulo", "Toronto", "Sydney", "Austin", "Dublin", "Lagos", "Mumbai",
];
const EUROPE = ["London", "Berlin", "Paris", "Dublin"];
const DOMAINS = [["example.com", 40], ["example.org", 25], ["example.net", 20], ["mail.example", 10], ["acme.example", 5]] as const;

interface Subscriber {
  id: number;
  listId: number;
  email: string;
  status: SubscriberStatus;
  subscribeDate: string;
  fields: Record<string, string | number>;
  tags: number[];
}

const ascii = (s: string) => s.normalize("NFD").replace(/[^A-Za-z]/g, "").toLowerCase();
const pad = (n: number) => String(n).padStart(2, "0");

function generateSubscribers(): Subscriber[] {
  const r = prng(20261127);
  const people: Subscriber[] = [];
  for (let id = 1; id <= SUBSCRIBER_COUNT; id++) {
    const listId = r.weighted([[LISTS.newsletter, 60], [LISTS.customers, 30], [LISTS.events, 10]] as const);
    const first = r.pick(FIRST_NAMES);
    const last = r.pick(LAST_NAMES);
    const domain = r.weighted(DOMAINS);
    const email = `${ascii(first)}.${ascii(last)}${id}${r.chance(0.03) ? "+test" : ""}@${domain}`;
    const status = r.weighted([["active", 70], ["inactive", 12], ["bounced", 8], ["unsubscribed", 10]] as const);
    // Between 2023-01-01 and 2026-10-31.
    const subscribeDate = new Date(Date.UTC(2023, 0, 1) + r.int(0, 1399) * 86_400_000 + r.int(0, 86_399) * 1000)
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z");
    const isCustomer = listId === LISTS.customers;
    const plan = isCustomer
      ? r.weighted([["Starter", 40], ["Pro", 40], ["Enterprise", 20]] as const)
      : r.weighted([["Free", 85], ["Starter", 10], ["Pro", 5]] as const);

    // Values are keyed by field id; a field the subscriber has no value for is simply absent.
    const fields: Record<string, string | number> = {
      [FIELDS.firstName.id]: first,
      [FIELDS.lastName.id]: last,
      [FIELDS.plan.id]: plan,
    };
    if (isCustomer || domain === "acme.example" || r.chance(0.5)) {
      fields[FIELDS.company.id] = domain === "acme.example" ? r.pick(COMPANIES.slice(0, 2)) : r.pick(COMPANIES);
    }
    if (r.chance(0.9)) fields[FIELDS.city.id] = r.pick(CITIES);
    if (r.chance(0.9)) fields[FIELDS.score.id] = r.int(0, 100);
    if (r.chance(0.85)) fields[FIELDS.birthday.id] = `${r.int(1960, 2004)}-${pad(r.int(1, 12))}-${pad(r.int(1, 28))}`;
    if (plan !== "Free") fields[FIELDS.renewal.id] = `${r.int(2026, 2027)}-${pad(r.int(1, 12))}-${pad(r.int(1, 28))}`;

    const tags: number[] = [];
    if (r.chance(isCustomer ? 0.2 : 0.03)) tags.push(TAGS.vip);
    if (r.chance(0.1)) tags.push(TAGS.betaTester);
    if (r.chance(listId === LISTS.events ? 0.7 : 0.1)) tags.push(TAGS.webinar);
    if (r.chance(status === "active" ? 0.08 : 0.3)) tags.push(TAGS.churnRisk);
    if (r.chance(0.05)) tags.push(TAGS.partner);

    people.push({ id, listId, email, status, subscribeDate, fields, tags });
  }
  return people;
}

/** Segments 12, 13 and 14 overlap (so exports of several show the dedupe) and use most operators. */
const SEGMENTS: Array<{ id: number; name: string; createdAt: string; rules: RuleGroup }> = [
  {
    id: 12,
    name: "Engaged customers",
    createdAt: "2026-03-02T09:00:00Z",
    rules: {
      match: "all",
      rules: [
        { field: "list", operator: "equals", value: LISTS.customers },
        { field: "customfield", fieldid: FIELDS.score.id, operator: "greater_than", value: 40 },
        {
          match: "any",
          rules: [
            { field: "customfield", fieldid: FIELDS.plan.id, operator: "in", value: ["Pro", "Enterprise"] },
            { field: "tag", operator: "equals", value: TAGS.vip },
          ],
        },
      ],
    },
  },
  {
    id: 13,
    name: "VIPs and key accounts",
    createdAt: "2026-03-02T09:05:00Z",
    rules: {
      match: "any",
      rules: [
        { field: "tag", operator: "in", value: [TAGS.vip, TAGS.partner] },
        { field: "customfield", fieldid: FIELDS.company.id, operator: "starts_with", value: "acme" },
        { field: "email", operator: "ends_with", value: "@acme.example" },
        {
          match: "all",
          rules: [
            { field: "customfield", fieldid: FIELDS.plan.id, operator: "equals", value: "Enterprise" },
            { field: "customfield", fieldid: FIELDS.renewal.id, operator: "between", value: ["2026-01-01", "2026-12-31"] },
          ],
        },
      ],
    },
  },
  {
    id: 14,
    name: "European readers since 2024",
    createdAt: "2026-03-02T09:10:00Z",
    rules: {
      match: "all",
      rules: [
        { field: "list", operator: "in", value: [LISTS.newsletter, LISTS.events] },
        { field: "customfield", fieldid: FIELDS.city.id, operator: "in", value: EUROPE },
        { field: "subscribedate", operator: "after", value: "2023-12-31" },
        { field: "customfield", fieldid: FIELDS.birthday.id, operator: "is_not_empty" },
        {
          match: "none",
          rules: [
            { field: "tag", operator: "equals", value: TAGS.churnRisk },
            { field: "email", operator: "contains", value: "+test" },
          ],
        },
      ],
    },
  },
];

const HEADER = "-- Demo data for local development (scripts/seed.ts). Not for production.";

/** The demo account, its directory entry, and the reservation of the demo's fixed ids in the allocator. */
async function controlSql(shard: string): Promise<string> {
  const tokenHash = await hashToken(DEMO_ACCOUNT.tokenSalt, DEMO_ACCOUNT.usertoken);
  const people = generateSubscribers();
  const highest: Record<AllocatedTable, number> = {
    lists: Math.max(...Object.keys(LIST_NAMES).map(Number)),
    custom_fields: Math.max(...Object.values(FIELDS).map((f) => f.id)),
    tags: Math.max(...Object.keys(TAG_NAMES).map(Number)),
    subscribers: Math.max(...people.map((p) => p.id)),
    segments: Math.max(...SEGMENTS.map((s) => s.id)),
    import_batches: 0,
  };
  const statements = [
    `INSERT INTO accounts (username, token_salt, token_hash, webhook_secret) VALUES (${[
      DEMO_ACCOUNT.username,
      DEMO_ACCOUNT.tokenSalt,
      tokenHash,
      DEMO_ACCOUNT.webhookSecret,
    ]
      .map(sqlString)
      .join(", ")});`,
    `INSERT INTO account_directory (account_id, shard, updated_at)
       SELECT id, ${sqlString(shard)}, 0 FROM accounts WHERE username = ${sqlString(DEMO_ACCOUNT.username)};`,
    // The demo's ids are fixed (the README's example asks for segments 12 and 13): the allocator must never
    // hand them out again.
    ...Object.entries(highest).map(
      ([table, id]) =>
        `INSERT INTO id_sequences (name, last_id) VALUES (${sqlString(table)}, ${id}) ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id);`,
    ),
  ];
  return `${HEADER}\n${statements.join("\n")}\n`;
}

/** The demo account's contacts, for the shard it was placed on. */
function shardSql(accountId: number): string {
  const account = String(accountId);
  const people = generateSubscribers();
  const created = sqlString("2023-01-01T00:00:00Z");

  const statements = [
    ...insertRows(
      "lists",
      ["id", "account_id", "name", "created_at"],
      Object.entries(LIST_NAMES).map(([id, name]) => [id, account, sqlString(name), created]),
    ),
    ...insertRows(
      "custom_fields",
      ["id", "account_id", "name", "type", "created_at"],
      Object.values(FIELDS).map((f) => [String(f.id), account, sqlString(f.name), sqlString(f.type), created]),
    ),
    ...insertRows(
      "tags",
      ["id", "account_id", "name", "created_at"],
      Object.entries(TAG_NAMES).map(([id, name]) => [id, account, sqlString(name), created]),
    ),
    ...insertRows(
      "subscribers",
      ["id", "account_id", "list_id", "email", "status", "subscribe_date", "custom_fields"],
      people.map((p) => [
        String(p.id),
        account,
        String(p.listId),
        sqlString(p.email),
        sqlString(p.status),
        sqlString(p.subscribeDate),
        sqlString(JSON.stringify(p.fields)),
      ]),
    ),
    ...insertRows(
      "subscriber_tags",
      ["subscriber_id", "tag_id"],
      people.flatMap((p) => p.tags.map((tag) => [String(p.id), String(tag)])),
      500,
    ),
    ...insertRows(
      "segments",
      ["id", "account_id", "name", "rules", "created_at"],
      SEGMENTS.map((s) => [String(s.id), account, sqlString(s.name), sqlString(JSON.stringify(s.rules)), sqlValue(s.createdAt)]),
    ),
  ];
  return `${HEADER}\n${statements.join("\n")}\n`;
}

const [part, arg] = process.argv.slice(2);
if (part === "control" && arg && isShardName(arg)) process.stdout.write(await controlSql(arg));
else if (part === "shard" && arg && /^[1-9]\d*$/.test(arg)) process.stdout.write(shardSql(Number(arg)));
else {
  console.error("usage: tsx scripts/seed.ts control <SHARD_n> | shard <account id>");
  process.exit(1);
}
