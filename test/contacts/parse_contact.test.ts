/**
 * parseContact's quick path (plainContact) against the schema it stands in for (contactSchema): on every
 * contact the quick path takes, the schema must agree and give the same contact. The contacts are generated
 * (fast-check) from plain ones and from near misses: odd case and spaces, impossible days, offsets, ids as
 * digits, values of the wrong type, names too long, both status and confirmed.
 *
 * Also: the arithmetic isCalendarDay and isoInstant agree with a Date-based reference.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { contactSchema, isCalendarDay, isoInstant, parseContact, plainContact } from "../../src/contacts/input";

const SEED = 20_261_128;

const pick = (...values: unknown[]) => fc.constantFrom(...values);

const emails = fc.oneof(
  fc.emailAddress(),
  fc.emailAddress().map((e) => `  ${e.replace(/@(.*)$/, (_, d: string) => `@${d.toUpperCase()}`)} `),
  pick("ada@example.com", "Ada.Lovelace@Example.ORG", "", "   ", "no-at-sign", "a@b", "a..b@example.com", ".a@example.com", `${"a".repeat(250)}@example.com`),
  pick(42, null, true, undefined, ["a@example.com"]),
);

const days = fc
  .record({ year: fc.integer({ min: 0, max: 2100 }), month: fc.integer({ min: 0, max: 13 }), day: fc.integer({ min: 0, max: 32 }) })
  .map(({ year, month, day }) => `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`);
const times = fc
  .record({ hour: fc.integer({ min: 0, max: 25 }), minute: fc.integer({ min: 0, max: 61 }), second: fc.integer({ min: 0, max: 61 }) })
  .map(({ hour, minute, second }) => [hour, minute, second].map((n) => String(n).padStart(2, "0")).join(":"));
const dateTexts = fc.oneof(
  days,
  fc.tuple(days, times).map(([d, t]) => `${d}T${t}Z`),
  fc.tuple(days, times, fc.constantFrom("Z", "+02:00", "-05:30", ".123Z", "", "+24:00")).map(([d, t, z]) => `${d}T${t}${z}`),
  fc.date({ min: new Date("1960-01-01"), max: new Date("2030-12-31"), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.date({ min: new Date("1960-01-01"), max: new Date("2030-12-31"), noInvalidDate: true }).map((d) => d.toISOString().replace(/\.\d{3}Z$/, "Z")),
  fc.constantFrom("2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", " 2024-03-07T12:58:24Z ", "yesterday", "2024-3-7"),
);

const statuses = fc.oneof(pick("active", "Active", " UNSUBSCRIBED ", "bounced", "inactive", "gone", "", 1, null));
const confirmations = pick(true, false, "yes", 1, null);
const names = fc.oneof(pick("First Name", " City ", "Age", "", "  ", "x".repeat(201), "x".repeat(200)), fc.string({ maxLength: 12 }));
const values = fc.oneof(fc.string({ maxLength: 8 }), fc.double(), fc.integer(), fc.constant(null), fc.constant(undefined), fc.boolean(), fc.constant({}));
const fieldEntries = fc.oneof(
  fc.record({ name: names, value: values }),
  fc.record({ fieldid: fc.oneof(fc.integer({ min: -2, max: 50 }), pick("7", " 8 ", "x", 1.5)), value: values }),
  fc.record({ fieldid: fc.integer({ min: 1, max: 50 }), name: names, value: values }),
  fc.record({ name: names }),
  pick(null, "First Name", [], 3),
);
const tagValues = fc.oneof(pick("vip", " newsletter ", "", "   ", "x".repeat(201), "12", " 13 ", "0", "-4", 5, 0, -1, 2.5, Number.MAX_SAFE_INTEGER + 2, null, true), fc.string({ maxLength: 10 }));

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const nearMisses = fc.record(
  {
    email: emails,
    status: optional(statuses),
    confirmed: optional(confirmations),
    subscribedate: optional(fc.oneof(dateTexts, pick(20240307, null))),
    customfield: optional(fc.oneof(fc.array(fieldEntries, { maxLength: 5 }), pick(null, "City", {}))),
    tag: optional(fc.oneof(fc.array(tagValues, { maxLength: 4 }), pick(null, "vip"))),
    extra: optional(fc.string()),
  },
  { requiredKeys: ["email"] },
);
/** Contacts as clients mostly send them, in odd case and with spaces at times. */
const plainContacts = fc.record(
  {
    email: fc.oneof(pick("ada@example.com", " Grace@Example.ORG "), fc.stringMatching(/^[a-z0-9._+-]{1,12}@[a-z0-9-]{1,8}\.(com|org|Net)$/)),
    status: optional(pick("active", "Inactive", " unsubscribed ", "BOUNCED")),
    confirmed: optional(fc.boolean()),
    subscribedate: optional(
      fc.oneof(
        fc.date({ min: new Date("1970-01-01"), max: new Date("2026-01-01"), noInvalidDate: true }).map((d) => d.toISOString().replace(/\.\d{3}Z$/, "Z")),
        fc.date({ min: new Date("1970-01-02"), max: new Date("2026-01-01"), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
      ),
    ),
    customfield: optional(fc.array(fc.oneof(fc.record({ name: pick("City", " Age ", "Last Name"), value: values }), fc.record({ fieldid: fc.integer({ min: 1, max: 9 }), value: values })), { maxLength: 4 })),
    tag: optional(fc.array(fc.oneof(pick("vip", " newsletter "), fc.integer({ min: 1, max: 99 }), pick("17")), { maxLength: 3 })),
  },
  { requiredKeys: ["email"] },
);
const contacts = fc.oneof(plainContacts, nearMisses);

describe("parseContact", () => {
  it("gives exactly what contactSchema gives, for every generated contact", () => {
    let quick = 0;
    let slow = 0;
    fc.assert(
      fc.property(contacts, (raw) => {
        const expected = contactSchema.safeParse(raw);
        const taken = plainContact(raw);
        if (taken) {
          quick++;
          expect(expected.success, `the schema refuses what the quick path took: ${JSON.stringify(raw)}`).toBe(true);
          // toEqual: the schema keeps a key given as undefined; the quick path leaves it out. Nothing tells them apart.
          expect(taken).toEqual(expected.data);
        } else {
          slow++;
        }
        const parsed = parseContact(raw);
        expect(parsed.success).toBe(expected.success);
        if (parsed.success) expect(parsed.data).toEqual(expected.data);
        else expect(parsed.error.issues).toEqual(expected.error!.issues);
      }),
      { seed: SEED, numRuns: 20_000 },
    );
    // Both paths were exercised, and often.
    expect(quick).toBeGreaterThan(1_000);
    expect(slow).toBeGreaterThan(1_000);
  });

  it("takes the quick path for the contacts an import or a bulk call usually has", () => {
    const plain = [
      { email: "ada@example.com" },
      { email: " Ada@Example.COM ", status: "Active", subscribedate: "2024-03-07T12:58:24Z", customfield: [{ name: "City", value: "London" }], tag: ["vip"] },
      { email: "grace@example.org", confirmed: false, subscribedate: "2024-03-07", customfield: [{ fieldid: 3, value: 42 }, { name: "Age", value: null }], tag: [5, "12"] },
      { email: "linus@example.net", subscribedate: "2024-03-07T14:58:24+02:00" },
    ];
    for (const raw of plain) {
      expect(plainContact(raw), JSON.stringify(raw)).not.toBeNull();
      expect(plainContact(raw)).toStrictEqual(contactSchema.parse(raw));
    }
    expect(plainContact(plain[1])).toMatchObject({ email: "Ada@example.com", status: "active", tag: [{ name: "vip" }] });
  });

  it("leaves every contact with a problem to the schema, which names it", () => {
    const parsed = parseContact({ email: "ada@example.com", subscribedate: "2023-02-29" });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]).toMatchObject({ path: ["subscribedate"], message: '"2023-02-29" is not an ISO 8601 date (YYYY-MM-DD) or date-time with a zone' });
    expect(plainContact({ email: "ada@example.com", status: "active", confirmed: true })).toBeNull();
  });
});

/** The first versions, by Date: the oracle the arithmetic ones must match. */
function referenceCalendarDay(text: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}
function referenceInstant(text: string): string | null {
  if (referenceCalendarDay(text)) return `${text}T00:00:00Z`;
  const match = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!match || !referenceCalendarDay(match[1]!)) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

describe("isCalendarDay and isoInstant", () => {
  it("agree with the Date-based reference on generated dates and date-times", () => {
    fc.assert(
      fc.property(dateTexts, (text) => {
        expect(isCalendarDay(text), text).toBe(referenceCalendarDay(text));
        expect(isoInstant(text), text).toBe(referenceInstant(text));
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });
});
