/**
 * Splitting an import's bytes into records (readRecords of src/import/records.ts): generated files, cut into
 * chunks at random places, split as a plain byte-by-byte reading says: NDJSON at every line feed, CSV at line
 * feeds outside quotes; a byte order mark skipped at the start, a carriage return before a line feed dropped,
 * blank records skipped, and each record's end offset exact.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readRecords, type RawRecord } from "../../src/import/records";

const SEED = 20_261_128;

/** The reference: one byte at a time over the whole file. */
function referenceRecords(bytes: Uint8Array, csv: boolean): RawRecord[] {
  const records: RawRecord[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let inQuotes = false;
  const cut = (end: number, next: number) => {
    let body = bytes.subarray(start, end);
    if (body[body.length - 1] === 0x0d) body = body.subarray(0, body.length - 1);
    if (body.length > 0) {
      try {
        records.push({ text: decoder.decode(body), end: next });
      } catch {
        records.push({ text: null, problem: "is not valid UTF-8", end: next });
      }
    }
    start = next;
  };
  for (let i = 0; i < bytes.length; i++) {
    if (csv && bytes[i] === 0x22) inQuotes = !inQuotes;
    else if (bytes[i] === 0x0a && !inQuotes) cut(i, i + 1);
  }
  cut(bytes.length, bytes.length);
  return records;
}

async function split(bytes: Uint8Array, cuts: number[], csv: boolean): Promise<RawRecord[]> {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks = async function* () {
    let from = 0;
    for (const to of [...at, bytes.length]) {
      if (to > from) yield bytes.subarray(from, to);
      from = Math.max(from, to);
    }
  };
  const records: RawRecord[] = [];
  for await (const record of readRecords(chunks(), 0, csv)) records.push(record);
  return records;
}

const pieces = fc.constantFrom("a", "b", ",", '"', '""', "\n", "\r\n", "é", "\u{1F600}", '{"email":"x@y.z"}', " ", "\ufeff");
const files = fc.tuple(fc.boolean(), fc.array(pieces, { maxLength: 200 })).map(([bom, parts]) => new TextEncoder().encode((bom ? "\ufeff" : "") + parts.join("")));

describe("readRecords", () => {
  for (const csv of [false, true]) {
    it(`splits ${csv ? "CSV" : "NDJSON"} as a byte-by-byte reading does, however the file is cut into chunks`, async () => {
      await fc.assert(
        fc.asyncProperty(files, fc.array(fc.nat(), { maxLength: 12 }), async (bytes, cuts) => {
          expect(await split(bytes, cuts, csv)).toEqual(referenceRecords(bytes, csv));
        }),
        { seed: SEED, numRuns: 3_000 },
      );
    });
  }

  it("reads invalid UTF-8 as a record with a problem, and goes on", async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode("ok\n"), 0xff, 0xfe, 0x0a, ...new TextEncoder().encode("next\n")]);
    expect(await split(bytes, [4], false)).toEqual([
      { text: "ok", end: 3 },
      { text: null, problem: "is not valid UTF-8", end: 6 },
      { text: "next", end: 11 },
    ]);
  });
});
