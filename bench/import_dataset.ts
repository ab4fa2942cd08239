/**
 * The import benchmark's file: N contacts as NDJSON in the export's own record shape (without subscriberid),
 * {"emailaddress","status","subscribedate","customfields":{name: value},"tags":[names]}, with the benchmark
 * dataset's custom fields (FIELDS: text, number and date) and tags (TAGS), values drawn from the same
 * vocabularies and shares as bench/dataset.ts (statuses 70/10/10/10 %, subscribe dates 2018-01-01 ..
 * 2026-11-01, some fields missing on part of the contacts, 1.5 tags per contact). Every value is hashed from
 * the contact's number, so a given N always gives the same file, byte for byte.
 *
 * Also here: the check of the file's claims (read back from disk, not taken from the generator), the reader
 * that compares a shard's subscribers table with the file record by record, and the sqlite3 baseline's
 * staging file (the same rows as SQL INSERTs).
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, readdirSync, readFileSync, statSync } from "node:fs";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { once } from "node:events";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { CustomFieldType } from "../src/db/shard_schema";
import { CITIES, COMPANIES, DOMAINS, FIELDS, FIRST_NAMES, LAST_NAMES, ROOT, STATUS_BY_PERCENT, TAGS } from "./dataset";
import { SQLITE3, sqlString } from "./sqlite";

/** Bumped whenever the generated file changes, so that a kept file of an older shape is generated again. */
export const IMPORT_DATASET_VERSION = 1;

export const TAG_NAMES = TAGS.map((t) => t.name);
const STATUSES = STATUS_BY_PERCENT.map(([, s]) => s);
const DATE_FROM = Date.parse("2018-01-01T00:00:00Z") / 1000;
const DATE_TO = Date.parse("2026-11-01T00:00:00Z") / 1000;

/** murmur3's finaliser: a 32-bit value from a 32-bit value. */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
const STREAM_SEEDS = Array.from({ length: 64 }, (_, s) => mix(0x5bd1e995 ^ Math.imul(s + 1, 0x27d4eb2d)));
/** A pseudo-random 32-bit value for contact i and a stream (one stream per property). */
const h = (i: number, stream: number) => mix((Math.imul(i, 0x9e3779b1) ^ STREAM_SEEDS[stream]!) >>> 0);

const isoDay = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString().slice(0, 10);

/** The record of contact i (1..N), its keys in the export's order. */
export function contactRecord(i: number): { emailaddress: string; status: string; subscribedate: string; customfields: Record<string, string | number | null>; tags: string[] } {
  const pct = h(i, 3) % 100;
  const status = STATUS_BY_PERCENT.find(([upTo]) => pct < upTo)![1];
  // Two 32-bit streams make a 48-bit value (below 2^53), so the dates spread evenly over the span.
  const subscribed = DATE_FROM + ((h(i, 4) % 65536) * 4294967296 + h(i, 21)) % (DATE_TO - DATE_FROM);
  const company = h(i, 12) % 100 < 15 ? null : COMPANIES[Math.floor(h(i, 12) / 100) % COMPANIES.length]!;
  const orders = h(i, 17) % 100 < 20 ? null : Math.floor(h(i, 17) / 100) % 50;
  const lastPurchase = h(i, 19) % 100 < 25 ? null : isoDay(Date.parse("2023-01-01T00:00:00Z") / 1000 + (Math.floor(h(i, 19) / 100) % 1400) * 86400);
  const values: Record<string, string | number | null> = {
    "First Name": FIRST_NAMES[h(i, 10) % FIRST_NAMES.length]!,
    "Last Name": LAST_NAMES[h(i, 11) % LAST_NAMES.length]!,
    Company: company,
    City: CITIES[h(i, 13) % CITIES.length]!,
    Phone: `+1-555-${String(h(i, 14) % 10000).padStart(4, "0")}`,
    Age: 18 + (h(i, 15) % 62),
    "Lifetime Value": (h(i, 16) % 100000) / 100,
    Orders: orders,
    Birthday: isoDay(Date.parse("1950-01-01T00:00:00Z") / 1000 + (h(i, 18) % 20440) * 86400),
    "Last Purchase": lastPurchase,
  };
  const customfields: Record<string, string | number | null> = {};
  for (const f of FIELDS) customfields[f.name] = values[f.name]!;
  // Tags in the order they are created (so in tag id order, as the export lists them).
  const tags = TAGS.filter((t, k) => h(i * 8 + k + 1, 5) % 1000 < t.perMille).map((t) => t.name);
  return {
    emailaddress: `contact${i}@${DOMAINS[h(i, 2) % DOMAINS.length]}`,
    status,
    subscribedate: new Date(subscribed * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
    customfields,
    tags,
  };
}

/** Writes the N contacts' NDJSON file (one record per line, each ended by \n). */
export async function writeContactsFile(file: string, n: number): Promise<void> {
  const out = createWriteStream(file);
  const CHUNK = 5000;
  for (let from = 1; from <= n; from += CHUNK) {
    const lines: string[] = [];
    for (let i = from; i < Math.min(n + 1, from + CHUNK); i++) lines.push(JSON.stringify(contactRecord(i)));
    if (!out.write(lines.join("\n") + "\n")) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

/** gzip of a file with node:zlib (level 6, one member), as a client would compress it before the upload. */
export async function gzipFile(file: string, gzFile: string): Promise<void> {
  await pipeline(createReadStream(file), createGzip({ level: 6 }), createWriteStream(gzFile));
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** What the file's claims are checked against, per field. */
export interface FieldStats {
  name: string;
  type: CustomFieldType;
  /** Values of the field's type (text: strings; number: finite numbers; date: YYYY-MM-DD calendar days). */
  typed: number;
  nulls: number;
  /** Values of another type, or a missing key: must be 0. */
  wrong: number;
  distinct: number;
  min?: string | number;
  max?: string | number;
}

export interface ImportDatasetStats {
  lines: number;
  bytes: number;
  sha256: string;
  distinctEmails: number;
  /** Lines that are not an object with exactly the five keys, in the export's order. */
  badShape: number;
  statuses: Record<string, number>;
  minSubscribeDate: string;
  maxSubscribeDate: string;
  perYear: Record<string, number>;
  fields: FieldStats[];
  /** Contacts carrying each tag. */
  tags: Array<{ name: string; contacts: number }>;
  /** tagsPerContact[k]: contacts with k tags. */
  tagsPerContact: number[];
  memberships: number;
  /** Tags not of the dataset, repeated, or out of creation order. */
  badTags: number;
  seconds: number;
}

const KEYS = ["emailaddress", "status", "subscribedate", "customfields", "tags"];
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const EMAIL = /^[^\s@]+@[a-z0-9.-]+\.[a-z]+$/;

function isCalendarDay(text: string): boolean {
  const m = DAY.exec(text);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === text;
}

/** Reads the file back and counts what it really holds. */
export async function checkContactsFile(file: string): Promise<ImportDatasetStats> {
  const started = performance.now();
  const emails = new Set<string>();
  const statuses: Record<string, number> = {};
  const perYear: Record<string, number> = {};
  const fields = FIELDS.map((f) => ({ name: f.name, type: f.type, typed: 0, nulls: 0, wrong: 0, values: new Set<string | number>(), min: undefined as string | number | undefined, max: undefined as string | number | undefined }));
  const tagCounts = new Map(TAG_NAMES.map((t) => [t, 0]));
  const perContact: number[] = [];
  let lines = 0;
  let badShape = 0;
  let badTags = 0;
  let memberships = 0;
  let minDate = "9999";
  let maxDate = "";
  const rl = createInterface({ input: createReadStream(file, { highWaterMark: 4 * 1024 * 1024 }), crlfDelay: Infinity });
  for await (const line of rl) {
    lines++;
    let record: any;
    try {
      record = JSON.parse(line);
    } catch {
      badShape++;
      continue;
    }
    if (typeof record !== "object" || record === null || JSON.stringify(Object.keys(record)) !== JSON.stringify(KEYS)) {
      badShape++;
      continue;
    }
    const email = record.emailaddress;
    if (typeof email !== "string" || !EMAIL.test(email)) badShape++;
    else emails.add(email);
    statuses[String(record.status)] = (statuses[String(record.status)] ?? 0) + 1;
    const date = record.subscribedate;
    if (typeof date !== "string" || !INSTANT.test(date) || !isCalendarDay(date.slice(0, 10))) badShape++;
    else {
      if (date < minDate) minDate = date;
      if (date > maxDate) maxDate = date;
      perYear[date.slice(0, 4)] = (perYear[date.slice(0, 4)] ?? 0) + 1;
    }
    const cf = record.customfields;
    if (typeof cf !== "object" || cf === null || Array.isArray(cf) || Object.keys(cf).length !== FIELDS.length) badShape++;
    for (const f of fields) {
      const v = cf?.[f.name];
      if (v === null) {
        f.nulls++;
        continue;
      }
      const ok =
        f.type === "text" ? typeof v === "string" : f.type === "number" ? typeof v === "number" && Number.isFinite(v) : typeof v === "string" && isCalendarDay(v);
      if (!ok) {
        f.wrong++;
        continue;
      }
      f.typed++;
      if (f.values.size < 100_000) f.values.add(v);
      if (f.min === undefined || v < f.min) f.min = v;
      if (f.max === undefined || v > f.max) f.max = v;
    }
    const tags = record.tags;
    if (!Array.isArray(tags)) {
      badShape++;
      continue;
    }
    let last = -1;
    for (const t of tags) {
      const k = TAG_NAMES.indexOf(t);
      if (k <= last) badTags++;
      else tagCounts.set(t, tagCounts.get(t)! + 1);
      last = Math.max(last, k);
    }
    memberships += tags.length;
    perContact[tags.length] = (perContact[tags.length] ?? 0) + 1;
  }
  return {
    lines,
    bytes: statSync(file).size,
    sha256: await sha256File(file),
    distinctEmails: emails.size,
    badShape,
    statuses,
    minSubscribeDate: minDate,
    maxSubscribeDate: maxDate,
    perYear,
    fields: fields.map(({ values, ...f }) => ({ ...f, distinct: values.size })),
    tags: TAG_NAMES.map((name) => ({ name, contacts: tagCounts.get(name)! })),
    tagsPerContact: Array.from(perContact, (c) => c ?? 0),
    memberships,
    badTags,
    seconds: (performance.now() - started) / 1000,
  };
}

/** What the file claims to be, checked against what was read back; empty when every claim holds. */
export function importDatasetProblems(s: ImportDatasetStats, n: number): string[] {
  const problems: string[] = [];
  if (s.lines !== n) problems.push(`${s.lines} lines, not ${n}`);
  if (s.distinctEmails !== n) problems.push(`${s.distinctEmails} distinct valid emails, not ${n}`);
  if (s.badShape) problems.push(`${s.badShape} lines not in the export's record shape`);
  const unknown = Object.keys(s.statuses).filter((k) => !STATUSES.includes(k as never));
  if (unknown.length) problems.push(`statuses that are not statuses: ${unknown.join(", ")}`);
  if (n >= 1000) {
    for (const st of STATUSES) if (!s.statuses[st]) problems.push(`no contact is ${st}`);
    const active = (s.statuses.active ?? 0) / n;
    if (active < 0.65 || active > 0.75) problems.push(`active share ${(100 * active).toFixed(1)} %, expected about 70 %`);
  }
  if (s.minSubscribeDate < "2018-01-01" || s.maxSubscribeDate >= "2026-11-01") problems.push(`subscribe dates ${s.minSubscribeDate} .. ${s.maxSubscribeDate} leave 2018-01-01 .. 2026-11-01`);
  for (const f of s.fields) {
    if (f.wrong) problems.push(`field "${f.name}" (${f.type}): ${f.wrong} values not of its type`);
    if (f.typed === 0) problems.push(`field "${f.name}" (${f.type}): no value`);
    if (f.typed + f.nulls !== s.lines - s.badShape && !s.badShape) problems.push(`field "${f.name}": ${f.typed + f.nulls} values on ${s.lines} lines`);
  }
  for (const type of ["text", "number", "date"] as const) {
    if (!s.fields.some((f) => f.type === type && f.typed > 0)) problems.push(`no ${type} value in any field`);
  }
  if (s.badTags) problems.push(`${s.badTags} tags unknown, repeated or out of order`);
  if (n >= 1000) {
    for (const t of s.tags) if (t.contacts === 0) problems.push(`no contact has tag ${t.name}`);
    const mean = s.memberships / n;
    if (mean < 1 || mean > 2) problems.push(`${mean.toFixed(2)} tags per contact, expected about 1.5`);
  }
  return problems;
}

const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;

export function describeImportDataset(s: ImportDatasetStats): string[] {
  const n = s.lines;
  const years = Object.keys(s.perYear).sort();
  return [
    `${n.toLocaleString("en-US")} lines, ${(s.bytes / 1024 / 1024).toFixed(1)} MiB, ${s.distinctEmails.toLocaleString("en-US")} distinct emails, ${s.badShape} lines off the export's record shape`,
    `statuses: ${STATUSES.map((st) => `${st} ${pct(s.statuses[st] ?? 0, n)}`).join(", ")}`,
    `subscribed ${s.minSubscribeDate} .. ${s.maxSubscribeDate}; per year ${years.map((y) => `${y}: ${pct(s.perYear[y]!, n)}`).join(", ")}`,
    `fields: ${s.fields
      .map((f) => `${f.name} (${f.type}): ${f.typed.toLocaleString("en-US")} ${f.type === "text" ? "strings" : f.type === "number" ? "numbers" : "days"}, ${pct(f.nulls, n)} null, ${f.wrong} wrong, ${f.distinct}${f.distinct >= 100_000 ? "+" : ""} distinct, ${JSON.stringify(f.min)} .. ${JSON.stringify(f.max)}`)
      .join("; ")}`,
    `tags: ${s.tags.map((t) => `${t.name} ${pct(t.contacts, n)}`).join(", ")}; ${(s.memberships / n).toFixed(2)} per contact (${s.tagsPerContact.map((c, k) => `${k}: ${pct(c, n)}`).join(", ")}); ${s.badTags} unknown, repeated or out of order`,
  ];
}

// ---------------------------------------------------------------------------------------------------------
// The stored rows, compared with the file

/** The ids the API gave the list, the fields and the tags. */
export interface ImportIds {
  accountId: number;
  listId: number;
  fieldIds: Record<string, number>;
  tagIds: Record<string, number>;
}

/** One subscriber as stored: [id, account_id, list_id, email, status, subscribe_date, custom_fields, [tag ids]]. */
const storedRowsSql = (listId: number) => `.mode list
.headers off
SELECT json_array(s.id, s.account_id, s.list_id, s.email, s.status, s.subscribe_date, json(s.custom_fields),
  (SELECT json_group_array(tag_id) FROM (SELECT tag_id FROM subscriber_tags WHERE subscriber_id = s.id ORDER BY tag_id)))
FROM subscribers s WHERE s.list_id = ${listId} ORDER BY s.id;
`;

export interface StoredCheck {
  ok: boolean;
  /** Rows of the list in the database, and lines of the file. */
  stored: number;
  expected: number;
  /** Rows that equal their line (email, status, date, every field value by field id, tags), in order. */
  matching: number;
  mismatched: number;
  /** The rows' ids follow the file's order; and are consecutive (first, first + 1, …). */
  ascending: boolean;
  consecutive: boolean;
  firstId: number | null;
  lastId: number | null;
  memberships: number;
  problems: string[];
  seconds: number;
}

/**
 * Reads every subscriber of the list from a SQLite file (a shard's D1 file, or the baseline's) with sqlite3, in
 * id order, and compares each with the file's line at the same position: the same email, status, subscribe date,
 * custom field values by field id (a null in the file is no key in the row), and tags (by id). Streams both.
 */
export async function compareStoredRows(dbFile: string, contactsFile: string, ids: ImportIds): Promise<StoredCheck> {
  const started = performance.now();
  const child = spawn(SQLITE3, ["-readonly", "-bail", "-init", "/dev/null", dbFile], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  child.stdin.end(storedRowsSql(ids.listId));
  const db = createInterface({ input: child.stdout, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const file = createInterface({ input: createReadStream(contactsFile, { highWaterMark: 4 * 1024 * 1024 }), crlfDelay: Infinity })[Symbol.asyncIterator]();
  const fieldIds = FIELDS.map((f) => [f.name, String(ids.fieldIds[f.name])] as const);
  const problems: string[] = [];
  let mismatched = 0;
  const problem = (text: string) => {
    if (problems.length < 10) problems.push(text);
  };
  let stored = 0;
  let expected = 0;
  let matching = 0;
  let memberships = 0;
  let ascending = true;
  let consecutive = true;
  let firstId: number | null = null;
  let lastId: number | null = null;
  for (;;) {
    const [a, b] = await Promise.all([db.next(), file.next()]);
    if (a.done && b.done) break;
    if (!a.done) stored++;
    if (!b.done) expected++;
    if (a.done || b.done) {
      mismatched++;
      problem(a.done ? `line ${expected}: no stored row (the table has only ${stored - 0} rows of list ${ids.listId})` : `stored row ${stored} (${a.value.slice(0, 120)}): no line of the file left`);
      continue;
    }
    const [id, accountId, listId, email, status, date, fields, tags] = JSON.parse(a.value) as [number, number, number, string, string, string, Record<string, unknown>, number[]];
    const want = JSON.parse(b.value) as ReturnType<typeof contactRecord>;
    if (firstId === null) firstId = id;
    if (lastId !== null) {
      if (id <= lastId) ascending = false;
      if (id !== lastId + 1) consecutive = false;
    }
    lastId = id;
    memberships += tags.length;
    const diffs: string[] = [];
    if (accountId !== ids.accountId) diffs.push(`account_id ${accountId}`);
    if (listId !== ids.listId) diffs.push(`list_id ${listId}`);
    if (email !== want.emailaddress) diffs.push(`email ${JSON.stringify(email)} (file: ${JSON.stringify(want.emailaddress)})`);
    if (status !== want.status) diffs.push(`status ${status} (file: ${want.status})`);
    if (date !== want.subscribedate) diffs.push(`subscribe_date ${date} (file: ${want.subscribedate})`);
    const keys = new Set(Object.keys(fields));
    for (const [name, fid] of fieldIds) {
      const v = want.customfields[name] ?? null;
      const got = keys.has(fid) ? fields[fid] : null;
      keys.delete(fid);
      if (got !== v) diffs.push(`field ${fid} (${name}) ${JSON.stringify(got)} (file: ${JSON.stringify(v)})`);
    }
    if (keys.size) diffs.push(`keys not of a field: ${[...keys].join(", ")}`);
    const wantTags = want.tags.map((t) => ids.tagIds[t]!).sort((x, y) => x - y);
    if (JSON.stringify(wantTags) !== JSON.stringify(tags)) diffs.push(`tags ${JSON.stringify(tags)} (file: ${JSON.stringify(wantTags)})`);
    if (diffs.length) {
      mismatched++;
      problem(`line ${expected} (id ${id}): ${diffs.join("; ")}`);
    } else matching++;
  }
  const code = await exited;
  if (code !== 0 || err.trim()) throw new Error(`sqlite3 on ${dbFile} exited ${code}: ${err.trim()}`);
  if (!ascending) problem("the rows' ids are not in the file's order");
  return {
    ok: mismatched === 0 && stored === expected && ascending,
    stored,
    expected,
    matching,
    mismatched,
    ascending,
    consecutive,
    firstId,
    lastId,
    memberships,
    problems,
    seconds: (performance.now() - started) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The sqlite3 baseline

/**
 * The shard migrations' statements, in order: migrations/shard/*.sql sorted by name (as `wrangler d1 migrations
 * apply` takes them), each split at drizzle's `--> statement-breakpoint`.
 */
export function shardMigrationStatements(): string[] {
  const dir = join(ROOT, "migrations", "shard");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), "utf8")
        .split("--> statement-breakpoint")
        .map((s) => s.trim())
        .filter(Boolean),
    );
}

/** The schema, and the account's list, fields and tags with the ids the API gave them (not timed). */
export function baselineSchemaSql(ids: ImportIds, listName: string): string {
  return [
    ".bail on",
    ...shardMigrationStatements().map((s) => (s.endsWith(";") ? s : `${s};`)),
    `INSERT INTO lists (id, account_id, name) VALUES (${ids.listId}, ${ids.accountId}, ${sqlString(listName)});`,
    ...FIELDS.map((f) => `INSERT INTO custom_fields (id, account_id, name, type) VALUES (${ids.fieldIds[f.name]}, ${ids.accountId}, ${sqlString(f.name)}, '${f.type}');`),
    ...TAG_NAMES.map((t) => `INSERT INTO tags (id, account_id, name) VALUES (${ids.tagIds[t]}, ${ids.accountId}, ${sqlString(t)});`),
    "",
  ].join("\n");
}

/**
 * The timed part's script: the file's rows as the import stores them (ids from firstId on, in file order; custom
 * fields as {"<field id>": value} without the nulls; tags by id), in one transaction: all subscribers, then all
 * tag memberships, 1,000 rows per INSERT. Foreign keys on, as D1 has them.
 */
export async function writeBaselineScript(contactsFile: string, scriptFile: string, ids: ImportIds, firstId: number): Promise<{ rows: number; memberships: number; bytes: number }> {
  const out = createWriteStream(scriptFile);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, "drain");
  };
  await write("PRAGMA foreign_keys = ON;\n.bail on\nBEGIN;\n");
  const tagRows: string[] = [];
  let rows = 0;
  let memberships = 0;
  let values: string[] = [];
  const flush = async () => {
    if (values.length === 0) return;
    await write(`INSERT INTO subscribers (id, account_id, list_id, email, status, subscribe_date, custom_fields) VALUES\n${values.join(",\n")};\n`);
    values = [];
  };
  const rl = createInterface({ input: createReadStream(contactsFile, { highWaterMark: 4 * 1024 * 1024 }), crlfDelay: Infinity });
  for await (const line of rl) {
    const r = JSON.parse(line) as ReturnType<typeof contactRecord>;
    const id = firstId + rows++;
    const fields: Record<string, string | number> = {};
    for (const f of FIELDS) {
      const v = r.customfields[f.name];
      if (v !== null && v !== undefined) fields[String(ids.fieldIds[f.name])] = v;
    }
    values.push(`(${id},${ids.accountId},${ids.listId},${sqlString(r.emailaddress)},${sqlString(r.status)},${sqlString(r.subscribedate)},${sqlString(JSON.stringify(fields))})`);
    for (const t of r.tags) tagRows.push(`(${id},${ids.tagIds[t]})`);
    memberships += r.tags.length;
    if (values.length === 1000) await flush();
  }
  await flush();
  for (let i = 0; i < tagRows.length; i += 1000) await write(`INSERT INTO subscriber_tags (subscriber_id, tag_id) VALUES ${tagRows.slice(i, i + 1000).join(",")};\n`);
  await write("COMMIT;\n");
  out.end();
  await once(out, "finish");
  return { rows, memberships, bytes: statSync(scriptFile).size };
}

/** Runs a script with one sqlite3 process on a database file, timed from spawn to exit. */
export async function timeSqlite3(dbFile: string, scriptFile: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(SQLITE3, ["-bail", "-init", "/dev/null", dbFile, `.read ${scriptFile}`], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stdout.resume();
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 && !err.trim() ? resolve() : reject(new Error(`sqlite3 exited ${code}: ${err.trim().slice(0, 500)}`))));
  });
  return (performance.now() - started) / 1000;
}
