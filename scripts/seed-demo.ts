/**
 * The demo data of `npm run dev`, written through the API of a running dev server, with the same write methods
 * a client uses (so the demo exercises the write path):
 *
 *   Lists / CreateList             Newsletter, Customers, Events
 *   Lists / CreateCustomField      First Name, Last Name, Company, City, Plan (text), Score (number),
 *                                  Birthday, Renewal Date (date)
 *   Tags / CreateTags              vip, beta-tester, webinar-2025, churn-risk, partner
 *   Subscribers /                  1,000 subscribers with status, subscribe date, field values and tags, one call
 *     AddOrUpdateSubscribers       per list (pages of at most 1,000 contacts)
 *   Segments / CreateSegment       12 Engaged customers, 13 VIPs and key accounts, 14 European readers since 2024
 *
 * usage: tsx scripts/seed-demo.ts [--url http://localhost:8787] [--username demo --usertoken demo-token]
 *                                 [--wait SECONDS] [--if-empty]
 *
 *   --wait      polls Authentication / APITest until the API answers (wrangler dev is still starting), at most
 *               this long (default 0: one try);
 *   --if-empty  does nothing if the account already has lists (what `npm run dev` passes on every start, so the
 *               demo is seeded once).
 *
 * The account itself is not an API method: scripts/dev.sh creates it first (scripts/seed.ts), and also sets the
 * control database's segment id sequence so that the three CreateSegment calls answer ids 12, 13 and 14, the ids
 * the README's example request names. Every other id is the allocator's: on a fresh local state the lists are
 * 1 to 3, the fields 1 to 8, the tags 1 to 5 and the subscribers 1 to 1,000, numbered list by list.
 *
 * Without --if-empty it creates only what is missing (lists, fields, tags and segments are found by name;
 * contacts are added or updated by email), so after a seed that failed half-way it can be run again by hand.
 *
 * The data is pseudo-random but deterministic (a fixed PRNG seed), so every machine gets the same subscribers
 * and the same segment counts.
 */
import { parseArgs } from "node:util";
import type { CustomFieldType, SubscriberStatus } from "../src/db/shard_schema";
import type { RuleGroup } from "../src/segments/rules";
import { DEMO_ACCOUNT, DEMO_SEGMENT_IDS } from "./demo-account";

const SUBSCRIBER_COUNT = 1000;
/** AddOrUpdateSubscribers takes at most 1,000 contacts per call (CONTACT_LIMITS.contactsPerCall). */
const CONTACTS_PER_CALL = 1000;
const REQUEST_TIMEOUT_MS = 60_000;

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

const LISTS = ["Newsletter", "Customers", "Events"] as const;
type ListName = (typeof LISTS)[number];

const FIELDS = [
  { name: "First Name", type: "text" },
  { name: "Last Name", type: "text" },
  { name: "Company", type: "text" },
  { name: "City", type: "text" },
  { name: "Plan", type: "text" },
  { name: "Score", type: "number" },
  { name: "Birthday", type: "date" },
  { name: "Renewal Date", type: "date" },
] as const satisfies ReadonlyArray<{ name: string; type: CustomFieldType }>;
type FieldName = (typeof FIELDS)[number]["name"];

const TAGS = ["vip", "beta-tester", "webinar-2025", "churn-risk", "partner"] as const;
type TagName = (typeof TAGS)[number];

// Accents, apostrophes, commas and quotes on purpose: they exercise JSON and CSV quoting.
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

interface Person {
  list: ListName;
  email: string;
  status: SubscriberStatus;
  subscribeDate: string;
  /** A field the person has no value for is absent. */
  fields: Partial<Record<FieldName, string | number>>;
  tags: TagName[];
}

const ascii = (s: string) => s.normalize("NFD").replace(/[^A-Za-z]/g, "").toLowerCase();
const pad = (n: number) => String(n).padStart(2, "0");

/** The 1,000 people; `n` in an email (olivia.smith17@…) is the person's number in this sequence. */
function generatePeople(): Person[] {
  const r = prng(20261127);
  const people: Person[] = [];
  for (let n = 1; n <= SUBSCRIBER_COUNT; n++) {
    const list = r.weighted([["Newsletter", 60], ["Customers", 30], ["Events", 10]] as const);
    const first = r.pick(FIRST_NAMES);
    const last = r.pick(LAST_NAMES);
    const domain = r.weighted(DOMAINS);
    const email = `${ascii(first)}.${ascii(last)}${n}${r.chance(0.03) ? "+test" : ""}@${domain}`;
    const status = r.weighted([["active", 70], ["inactive", 12], ["bounced", 8], ["unsubscribed", 10]] as const);
    // Between 2023-01-01 and 2026-10-31.
    const subscribeDate = new Date(Date.UTC(2023, 0, 1) + r.int(0, 1399) * 86_400_000 + r.int(0, 86_399) * 1000)
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z");
    const isCustomer = list === "Customers";
    const plan = isCustomer
      ? r.weighted([["Starter", 40], ["Pro", 40], ["Enterprise", 20]] as const)
      : r.weighted([["Free", 85], ["Starter", 10], ["Pro", 5]] as const);

    const fields: Person["fields"] = { "First Name": first, "Last Name": last, Plan: plan };
    if (isCustomer || domain === "acme.example" || r.chance(0.5)) {
      fields.Company = domain === "acme.example" ? r.pick(COMPANIES.slice(0, 2)) : r.pick(COMPANIES);
    }
    if (r.chance(0.9)) fields.City = r.pick(CITIES);
    if (r.chance(0.9)) fields.Score = r.int(0, 100);
    if (r.chance(0.85)) fields.Birthday = `${r.int(1960, 2004)}-${pad(r.int(1, 12))}-${pad(r.int(1, 28))}`;
    if (plan !== "Free") fields["Renewal Date"] = `${r.int(2026, 2027)}-${pad(r.int(1, 12))}-${pad(r.int(1, 28))}`;

    const tags: TagName[] = [];
    if (r.chance(isCustomer ? 0.2 : 0.03)) tags.push("vip");
    if (r.chance(0.1)) tags.push("beta-tester");
    if (r.chance(list === "Events" ? 0.7 : 0.1)) tags.push("webinar-2025");
    if (r.chance(status === "active" ? 0.08 : 0.3)) tags.push("churn-risk");
    if (r.chance(0.05)) tags.push("partner");

    people.push({ list, email, status, subscribeDate, fields, tags });
  }
  return people;
}

interface Ids {
  lists: Record<ListName, number>;
  fields: Record<FieldName, number>;
  tags: Record<TagName, number>;
}

/**
 * Segments 12, 13 and 14 overlap (so exports of several show the dedupe) and use most operators. Rules name
 * lists, fields and tags by id: the ids the API gave them.
 */
function segments({ lists, fields, tags }: Ids): Array<{ name: string; rules: RuleGroup }> {
  return [
    {
      name: "Engaged customers",
      rules: {
        match: "all",
        rules: [
          { field: "list", operator: "equals", value: lists.Customers },
          { field: "customfield", fieldid: fields.Score, operator: "greater_than", value: 40 },
          {
            match: "any",
            rules: [
              { field: "customfield", fieldid: fields.Plan, operator: "in", value: ["Pro", "Enterprise"] },
              { field: "tag", operator: "equals", value: tags.vip },
            ],
          },
        ],
      },
    },
    {
      name: "VIPs and key accounts",
      rules: {
        match: "any",
        rules: [
          { field: "tag", operator: "in", value: [tags.vip, tags.partner] },
          { field: "customfield", fieldid: fields.Company, operator: "starts_with", value: "acme" },
          { field: "email", operator: "ends_with", value: "@acme.example" },
          {
            match: "all",
            rules: [
              { field: "customfield", fieldid: fields.Plan, operator: "equals", value: "Enterprise" },
              { field: "customfield", fieldid: fields["Renewal Date"], operator: "between", value: ["2026-01-01", "2026-12-31"] },
            ],
          },
        ],
      },
    },
    {
      name: "European readers since 2024",
      rules: {
        match: "all",
        rules: [
          { field: "list", operator: "in", value: [lists.Newsletter, lists.Events] },
          { field: "customfield", fieldid: fields.City, operator: "in", value: EUROPE },
          { field: "subscribedate", operator: "after", value: "2023-12-31" },
          { field: "customfield", fieldid: fields.Birthday, operator: "is_not_empty" },
          {
            match: "none",
            rules: [
              { field: "tag", operator: "equals", value: tags["churn-risk"] },
              { field: "email", operator: "contains", value: "+test" },
            ],
          },
        ],
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// The API client.

class SeedError extends Error {}

/** An ERROR envelope, with its HTTP status. */
class ApiRefusal extends SeedError {
  constructor(
    readonly method: string,
    readonly httpStatus: number,
    readonly errormessage: string,
  ) {
    super(`${method} answered HTTP ${httpStatus} ERROR: ${errormessage}`);
  }
}

type Envelope = { response: { status: "SUCCESS"; data: unknown } | { status: "ERROR"; errormessage: string } };

interface Options {
  url: string;
  username: string;
  usertoken: string;
  waitSeconds: number;
  ifEmpty: boolean;
}

function parseOptions(): Options {
  const USAGE =
    "usage: tsx scripts/seed-demo.ts [--url http://localhost:8787] [--username NAME --usertoken TOKEN] [--wait SECONDS] [--if-empty]";
  try {
    const { values } = parseArgs({
      options: {
        url: { type: "string", default: process.env.DEMO_API_URL ?? "http://localhost:8787" },
        username: { type: "string", default: DEMO_ACCOUNT.username },
        usertoken: { type: "string", default: DEMO_ACCOUNT.usertoken },
        wait: { type: "string", default: "0" },
        "if-empty": { type: "boolean", default: false },
      },
      strict: true,
    });
    const waitSeconds = Number(values.wait);
    if (!Number.isFinite(waitSeconds) || waitSeconds < 0) throw new Error(`--wait must be a number of seconds, not "${values.wait}"`);
    return { url: values.url.replace(/\/+$/, ""), username: values.username, usertoken: values.usertoken, waitSeconds, ifEmpty: values["if-empty"] };
  } catch (error) {
    console.error(`seed: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

const options = parseOptions();
let requests = 0;

/**
 * One API call; answers `data` of a SUCCESS envelope, throws ApiRefusal for an ERROR one. A 429 or 503 (rate
 * limit, account briefly unavailable) is tried again after its Retry-After, at most three times.
 */
async function call<T>(requesttype: string, requestmethod: string, details?: unknown): Promise<T> {
  const method = `${requesttype}/${requestmethod}`;
  for (let attempt = 1; ; attempt++) {
    let response: Response;
    try {
      response = await fetch(`${options.url}/apijson.php`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: options.username, usertoken: options.usertoken, requesttype, requestmethod, details }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new SeedError(`nothing answers at ${options.url}/apijson.php (${cause})`);
    }
    requests++;
    const text = await response.text();
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
      if (typeof envelope?.response?.status !== "string") throw new Error("not an envelope");
    } catch {
      throw new SeedError(`${method}: ${options.url} answered HTTP ${response.status} with something that is not the API: ${text.slice(0, 200)}`);
    }
    if (envelope.response.status === "SUCCESS") return envelope.response.data as T;
    if ((response.status === 429 || response.status === 503) && attempt < 3) {
      const seconds = Math.min(Number(response.headers.get("retry-after")) || 5, 60);
      console.log(`seed: ${method} answered HTTP ${response.status} (${envelope.response.errormessage}); trying again in ${seconds} s`);
      await sleep(seconds * 1000);
      continue;
    }
    throw new ApiRefusal(method, response.status, envelope.response.errormessage);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until Authentication / APITest answers SUCCESS (wrangler dev may still be starting). */
async function waitForApi(): Promise<void> {
  const deadline = Date.now() + options.waitSeconds * 1000;
  for (;;) {
    try {
      await call("Authentication", "APITest");
      return;
    } catch (error) {
      // Bad credentials will not get better by waiting.
      if (error instanceof ApiRefusal && error.httpStatus === 401) {
        throw new SeedError(`the API refuses the credentials of "${options.username}": ${error.errormessage}`);
      }
      if (Date.now() >= deadline) {
        throw new SeedError(`${(error as Error).message}${options.waitSeconds > 0 ? ` (waited ${options.waitSeconds} s)` : ""}`);
      }
      await sleep(500);
    }
  }
}

/** The id in a 409's message, "(listid 3)": CreateList, CreateCustomField and CreateTags name what exists. */
function idInConflict(error: unknown, key: string): number | null {
  if (!(error instanceof ApiRefusal) || error.httpStatus !== 409) return null;
  const match = new RegExp(`\\(${key} (\\d+)\\)`).exec(error.errormessage);
  return match ? Number(match[1]) : null;
}

// ---------------------------------------------------------------------------------------------------------------
// The seed.

interface ListView {
  listid: string;
  name: string;
  subscribecount: number;
  unsubscribecount: number;
  bouncecount: number;
  inactivecount: number;
}
interface FieldView {
  fieldid: string;
  name: string;
  fieldtype: CustomFieldType;
}
interface SegmentView {
  segmentid: string;
  segmentname: string;
  contacts: number | null;
  errormessage?: string;
}
interface ContactOutcome {
  index: number;
  email: string | null;
  result: "added" | "updated" | "rejected";
  subscriberid?: string;
  reason?: string;
}

const line = (label: string, text: string) => `  ${label.padEnd(12)} ${text}`;
const thousands = (n: number) => n.toLocaleString("en-US");

async function createLists(): Promise<Record<ListName, number>> {
  const existing = new Map((await call<ListView[]>("Lists", "GetLists")).map((l) => [l.name, Number(l.listid)]));
  const ids = {} as Record<ListName, number>;
  for (const name of LISTS) {
    ids[name] = existing.get(name) ?? Number((await call<{ listid: string }>("Lists", "CreateList", { name })).listid);
  }
  return ids;
}

async function createFields(): Promise<Record<FieldName, number>> {
  const existing = new Map((await call<FieldView[]>("Lists", "GetCustomFields")).map((f) => [f.name, f]));
  const ids = {} as Record<FieldName, number>;
  for (const { name, type } of FIELDS) {
    const field = existing.get(name);
    if (field && field.fieldtype !== type) throw new SeedError(`the account has a custom field "${name}" of type ${field.fieldtype}, not ${type}`);
    ids[name] = field
      ? Number(field.fieldid)
      : Number((await call<{ fieldid: string }>("Lists", "CreateCustomField", { name, type, isrequired: false })).fieldid);
  }
  return ids;
}

async function createTags(): Promise<Record<TagName, number>> {
  // There is no GetTags: a tag that exists already is answered 409 with its id.
  const ids = {} as Record<TagName, number>;
  for (const name of TAGS) {
    try {
      ids[name] = Number((await call<{ tagid: string }>("Tags", "CreateTags", { name })).tagid);
    } catch (error) {
      const id = idInConflict(error, "tagid");
      if (id === null) throw error;
      ids[name] = id;
    }
  }
  return ids;
}

/** Every person into their list, in calls of at most 1,000 contacts; fields and tags by name. */
async function addSubscribers(people: Person[], lists: Record<ListName, number>) {
  const totals = { added: 0, updated: 0, calls: 0 };
  for (const list of LISTS) {
    const members = people.filter((p) => p.list === list);
    for (let start = 0; start < members.length; start += CONTACTS_PER_CALL) {
      const page = members.slice(start, start + CONTACTS_PER_CALL);
      const answer = await call<{ added: number; updated: number; rejected: number; results: ContactOutcome[] }>(
        "Subscribers",
        "AddOrUpdateSubscribers",
        {
          list: lists[list],
          update_if_exists: true,
          contact: page.map((p) => ({
            email: p.email,
            status: p.status,
            subscribedate: p.subscribeDate,
            customfield: Object.entries(p.fields).map(([name, value]) => ({ name, value })),
            tag: p.tags,
          })),
        },
      );
      totals.calls++;
      if (answer.rejected > 0) {
        const reasons = answer.results.filter((r) => r.result === "rejected").slice(0, 3).map((r) => r.reason);
        throw new SeedError(`AddOrUpdateSubscribers rejected ${answer.rejected} of ${page.length} contacts of list ${list}: ${reasons.join("; ")}`);
      }
      totals.added += answer.added;
      totals.updated += answer.updated;
    }
  }
  return totals;
}

async function createSegments(ids: Ids): Promise<void> {
  const existing = new Map((await call<SegmentView[]>("Segments", "GetSegments")).map((s) => [s.segmentname, s.segmentid]));
  for (const segment of segments(ids)) {
    if (existing.has(segment.name)) continue;
    await call("Segments", "CreateSegment", segment);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  await waitForApi();

  if (options.ifEmpty) {
    const lists = await call<ListView[]>("Lists", "GetLists");
    if (lists.length > 0) {
      console.log(`seed: account "${options.username}" already has ${lists.length} list(s); not seeding the demo data`);
      return;
    }
  }
  console.log(`seed: writing the demo data for account "${options.username}" through ${options.url}/apijson.php`);

  const people = generatePeople();
  const ids: Ids = { lists: await createLists(), fields: await createFields(), tags: await createTags() };
  const written = await addSubscribers(people, ids.lists);
  await createSegments(ids);

  // What the account holds now, as the API reports it.
  const lists = await call<ListView[]>("Lists", "GetLists");
  const stored = await call<SegmentView[]>("Segments", "GetSegments");
  const byName = <T extends string>(record: Record<T, number>) => Object.entries(record).map(([name, id]) => `${id} ${name}`).join(", ");
  const count = (key: "subscribecount" | "inactivecount" | "bouncecount" | "unsubscribecount") => lists.reduce((sum, l) => sum + l[key], 0);
  const demoSegments = stored.filter((s) => segments(ids).some((d) => d.name === s.segmentname));
  // One write, so that wrangler's log lines do not land in the middle of it.
  console.log(
    [
      line("lists", lists.map((l) => `${l.listid} ${l.name} (${l.subscribecount + l.inactivecount + l.bouncecount + l.unsubscribecount})`).join(", ")),
      line("fields", FIELDS.map((f) => `${ids.fields[f.name]} ${f.name} (${f.type})`).join(", ")),
      line("tags", byName(ids.tags)),
      line(
        "subscribers",
        `${thousands(written.added)} added, ${thousands(written.updated)} updated in ${written.calls} AddOrUpdateSubscribers call(s); ` +
          `${count("subscribecount")} active, ${count("inactivecount")} inactive, ${count("bouncecount")} bounced, ${count("unsubscribecount")} unsubscribed`,
      ),
      line("segments", demoSegments.map((s) => `${s.segmentid} ${s.segmentname} (${s.contacts ?? s.errormessage} contacts)`).join(", ")),
      line("done", `the demo data is in, ${requests} API requests in ${((Date.now() - started) / 1000).toFixed(1)} s`),
    ].join("\n"),
  );

  const expected = DEMO_SEGMENT_IDS.map(String);
  const got = demoSegments.map((s) => s.segmentid);
  if (got.join() !== expected.join()) {
    console.warn(
      `seed: warning: the demo segments got ids ${got.join(", ")}, not ${expected.join(", ")} as the README's examples say ` +
        "(the local id allocator had handed those out already); start over with a fresh state: rm -rf .wrangler/state",
    );
  }
}

try {
  await main();
} catch (error) {
  const message = error instanceof SeedError ? error.message : ((error as Error).stack ?? String(error));
  console.error(
    [
      `seed: FAILED, the demo data was not (fully) written: ${message}`,
      "seed: the workers keep running. With the API answering, finish the seed (it creates only what is missing):",
      `seed:   npx tsx scripts/seed-demo.ts --url ${options.url}${options.username === DEMO_ACCOUNT.username ? "" : " --username … --usertoken …"}`,
      "seed: or start over: stop npm run dev, rm -rf .wrangler/state, npm run dev",
    ].join("\n"),
  );
  process.exit(1);
}
