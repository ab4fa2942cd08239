/**
 * Compares the exported file with the sqlite3 baseline without holding either in memory: both are streamed
 * record by record into order-independent digests (a sum of per-record hashes), so "same count, same set
 * of emails, same records" is checked for any N. Only on a mismatch are the two sides loaded to name the
 * differences.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** JSON with object keys sorted, so that key order and number spelling do not count as differences. */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(",")}}`;
}

const MASK_128 = (1n << 128n) - 1n;
const digest128 = (text: string): bigint => {
  const h = createHash("md5").update(text).digest();
  return (h.readBigUInt64BE(0) << 64n) | h.readBigUInt64BE(8);
};

const EMAIL = /"emailaddress"\s*:\s*"((?:[^"\\]|\\.)*)"/;
const SUBSCRIBER_ID = /"subscriberid"\s*:\s*(\d+)/;

/**
 * An order-independent digest of a multiset of records: their count, and sums of per-record hashes of the
 * exact text and of the email. Cheap enough for millions of records (no JSON.parse).
 */
export class TextDigest {
  count = 0;
  private textSum = 0n;
  private emailSum = 0n;
  private lastId = -Infinity;
  ascendingIds = true;
  missingEmail = 0;

  add(recordText: string): void {
    const match = EMAIL.exec(recordText);
    if (!match) this.missingEmail++;
    const email = match ? (match[1]!.includes("\\") ? (JSON.parse(`"${match[1]}"`) as string) : match[1]!) : "";
    this.emailSum = (this.emailSum + digest128(email)) & MASK_128;
    this.textSum = (this.textSum + digest128(recordText)) & MASK_128;
    const id = Number(SUBSCRIBER_ID.exec(recordText)?.[1] ?? NaN);
    if (!(id > this.lastId)) this.ascendingIds = false;
    this.lastId = id;
    this.count++;
  }

  get emails(): string {
    return this.emailSum.toString(16);
  }
  get texts(): string {
    return this.textSum.toString(16);
  }
}

/** Like TextDigest, but over canonical JSON, so that key order and number spelling do not count. */
export class CanonicalDigest {
  count = 0;
  private recordSum = 0n;

  add(recordText: string): void {
    this.recordSum = (this.recordSum + digest128(canonicalJson(JSON.parse(recordText) as Json))) & MASK_128;
    this.count++;
  }

  get records(): string {
    return this.recordSum.toString(16);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const fmtInt = (n: number) => n.toLocaleString("en-US");

export interface ExportFileSummary {
  /** `response.status` of the envelope. */
  status: unknown;
  /** `response.data.count` of the envelope. */
  count: unknown;
  /** Where the subscribers array is not valid JSON (a stray, missing or trailing comma); the first few. */
  syntaxErrors: string[];
  syntaxErrorCount: number;
}

/**
 * Streams the export file's JSON envelope, {"response":{…,"data":{"subscribers":[…],"count":N}}}, calling
 * `onRecord` with the text of each element of the subscribers array; returns the rest of the envelope.
 */
export async function scanExportFile(file: string, onRecord: (text: string) => void): Promise<ExportFileSummary> {
  let phase: "head" | "array" | "tail" = "head";
  let head = "";
  const tail: Buffer[] = [];
  let pieces: Buffer[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  // Separators between the array's elements: exactly one comma between two elements, none before the first
  // or after the last (a stray comma is invalid JSON that a lenient reader would skip).
  let afterElement = false;
  let afterComma = false;
  let elements = 0;
  let offset = 0;
  const syntaxErrors: string[] = [];
  let syntaxErrorCount = 0;
  const syntaxError = (what: string, at: number) => {
    if (syntaxErrorCount++ < 5) syntaxErrors.push(`${what} at byte ${fmtInt(at)} (after ${fmtInt(elements)} record(s))`);
  };

  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 }) as AsyncIterable<Buffer>) {
    const chunkOffset = offset;
    offset += chunk.length;
    let i = 0;
    if (phase === "head") {
      head += chunk.toString("latin1");
      const match = /"subscribers"\s*:\s*\[/.exec(head);
      if (!match) {
        if (head.length > 1 << 20) throw new Error("no subscribers array in the first MiB of the export file");
        continue;
      }
      // Where the array's content starts within this chunk.
      const arrayStart = match.index + match[0].length;
      i = chunk.length - (head.length - arrayStart);
      head = head.slice(0, arrayStart - 1);
      phase = "array";
    }
    if (phase === "tail") {
      tail.push(chunk);
      continue;
    }
    let elementStart = depth > 0 ? i : -1;
    for (; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === BACKSLASH) escaped = true;
        else if (b === QUOTE) inString = false;
        continue;
      }
      if (b === QUOTE) {
        inString = true;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (depth === 0) {
          elementStart = i;
          if (afterElement) syntaxError("no comma between two records", chunkOffset + i);
          afterElement = false;
          afterComma = false;
        }
        depth++;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        if (depth === 0) {
          // The end of the subscribers array.
          if (afterComma) syntaxError("a comma after the last record", chunkOffset + i);
          phase = "tail";
          tail.push(chunk.subarray(i));
          break;
        }
        depth--;
        if (depth === 0) {
          afterElement = true;
          elements++;
          pieces.push(chunk.subarray(elementStart, i + 1));
          onRecord(Buffer.concat(pieces).toString("utf8"));
          pieces = [];
          elementStart = -1;
        }
      } else if (depth === 0 && b === COMMA) {
        if (!afterElement) syntaxError(elements === 0 ? "a comma before the first record" : "two commas in a row", chunkOffset + i);
        afterElement = false;
        afterComma = true;
      } else if (depth === 0 && b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) {
        throw new Error(`unexpected byte ${JSON.stringify(String.fromCharCode(b))} between records of the export file`);
      }
    }
    if (phase === "array" && depth > 0) pieces.push(chunk.subarray(elementStart));
  }
  if (phase !== "tail") throw new Error(`the export file ends inside the subscribers array (phase ${phase})`);
  const envelope = JSON.parse(`${head}[${Buffer.concat(tail).toString("utf8")}`) as {
    response?: { status?: unknown; data?: { count?: unknown } };
  };
  return { status: envelope.response?.status, count: envelope.response?.data?.count, syntaxErrors, syntaxErrorCount };
}

/** Streams the baseline's output: one JSON record per line. */
export async function scanLines(file: string, onRecord: (text: string) => void): Promise<void> {
  const lines = createInterface({ input: createReadStream(file, { highWaterMark: 4 * 1024 * 1024 }), crlfDelay: Infinity });
  for await (const line of lines) if (line.length > 0) onRecord(line);
}

export interface Comparison {
  ok: boolean;
  exportCount: number;
  baselineCount: number;
  envelopeCount: unknown;
  envelopeStatus: unknown;
  sameEmails: boolean;
  sameRecords: boolean;
  exportAscending: boolean;
  problems: string[];
}

/**
 * Checks that the export file and the baseline hold the same records: the same count and the same multiset
 * of emails, and the same records, compared as exact text first and, if that differs, as canonical JSON.
 */
export async function compareOutputs(exportFile: string, baselineFile: string): Promise<Comparison> {
  const exported = new TextDigest();
  const summary = await scanExportFile(exportFile, (text) => exported.add(text));
  const baseline = new TextDigest();
  await scanLines(baselineFile, (text) => baseline.add(text));

  const problems: string[] = [];
  if (summary.syntaxErrorCount > 0) {
    problems.push(`the file is not valid JSON: ${summary.syntaxErrorCount} separator error(s) in the subscribers array: ${summary.syntaxErrors.join("; ")}`);
  }
  if (summary.status !== "SUCCESS") problems.push(`the file's response.status is ${JSON.stringify(summary.status)}, not "SUCCESS"`);
  if (summary.count !== exported.count) {
    problems.push(`the file says count ${JSON.stringify(summary.count)} but holds ${exported.count} records`);
  }
  if (exported.count !== baseline.count) problems.push(`count: export ${exported.count}, sqlite3 ${baseline.count}`);
  if (exported.missingEmail > 0) problems.push(`${exported.missingEmail} exported records have no emailaddress`);
  const sameCount = exported.count === baseline.count;
  const sameEmails = sameCount && exported.emails === baseline.emails;
  let sameRecords = sameCount && exported.texts === baseline.texts;
  if (!sameRecords && sameCount) {
    // Not byte-identical; the same records written differently (key order, number spelling) still count as equal.
    const [a, b] = [new CanonicalDigest(), new CanonicalDigest()];
    await scanExportFile(exportFile, (text) => a.add(text));
    await scanLines(baselineFile, (text) => b.add(text));
    sameRecords = a.records === b.records;
  }
  if (!sameEmails) problems.push("the sets of emails differ");
  else if (!sameRecords) problems.push("same emails, but some records differ in their fields or tags");
  if (!sameEmails || !sameRecords) problems.push(...(await describeDifferences(exportFile, baselineFile)));
  return {
    ok: problems.length === 0,
    exportCount: exported.count,
    baselineCount: baseline.count,
    envelopeCount: summary.count,
    envelopeStatus: summary.status,
    sameEmails,
    sameRecords,
    exportAscending: exported.ascendingIds,
    problems,
  };
}

/** Above this many records the detailed diff (which holds both sides in memory) is skipped. */
const MAX_DETAILED = 3_000_000;

/** Names up to a few missing, extra, duplicated and differing records. */
async function describeDifferences(exportFile: string, baselineFile: string): Promise<string[]> {
  const load = async (scan: (onRecord: (text: string) => void) => Promise<unknown>) => {
    const byEmail = new Map<string, string[]>();
    let n = 0;
    await scan((text) => {
      if (++n > MAX_DETAILED) throw new Error("too many records for a detailed diff");
      const record = JSON.parse(text) as { [key: string]: Json };
      const email = String(record.emailaddress);
      const list = byEmail.get(email) ?? [];
      list.push(canonicalJson(record));
      byEmail.set(email, list);
    });
    return byEmail;
  };
  let exported: Map<string, string[]>;
  let baseline: Map<string, string[]>;
  try {
    exported = await load((f) => scanExportFile(exportFile, f));
    baseline = await load((f) => scanLines(baselineFile, f));
  } catch (error) {
    return [`(no detailed diff: ${error instanceof Error ? error.message : String(error)})`];
  }
  const examples = (emails: string[]) => `${emails.slice(0, 10).join(", ")}${emails.length > 10 ? ", …" : ""}`;
  const lines: string[] = [];
  const missing = [...baseline.keys()].filter((e) => !exported.has(e));
  const extra = [...exported.keys()].filter((e) => !baseline.has(e));
  const duplicated = [...exported.entries()].filter(([, records]) => records.length > 1).map(([e]) => e);
  const differing = [...exported.entries()].filter(([e, records]) => {
    const other = baseline.get(e);
    return other !== undefined && records.length === 1 && other.length === 1 && records[0] !== other[0];
  });
  if (missing.length) lines.push(`${missing.length} emails missing from the export: ${examples(missing)}`);
  if (extra.length) lines.push(`${extra.length} emails only in the export: ${examples(extra)}`);
  if (duplicated.length) lines.push(`${duplicated.length} emails more than once in the export: ${examples(duplicated)}`);
  if (differing.length) {
    lines.push(`${differing.length} records differ, e.g.:`);
    for (const [email, records] of differing.slice(0, 3)) {
      lines.push(`  export: ${records[0]}`, `  sqlite3: ${baseline.get(email)![0]}`);
    }
  }
  return lines;
}
