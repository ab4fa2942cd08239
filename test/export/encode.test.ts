import { describe, expect, it } from "vitest";
import { csvCell, encoderFor, type Encoder } from "../../src/export/encode";
import type { ExportSpec } from "../../src/export/spec";

/** The whole file an encoder writes for these records. */
const render = (encoder: Encoder, records: string[]) =>
  encoder.head() + records.map(encoder.record).join(encoder.separator) + encoder.tail(records.length);

const spec = (over: Partial<ExportSpec> = {}): ExportSpec => ({
  segmentIds: [1],
  segments: [],
  status: "any",
  includeMembership: false,
  customFields: [],
  format: "json",
  requestedAt: "2026-01-01T00:00:00Z",
  ...over,
});

describe("CSV cells (RFC 4180)", () => {
  it("leaves plain text as it is", () => {
    expect(csvCell("hello")).toBe("hello");
    expect(csvCell(42)).toBe("42");
  });

  it("writes null and missing values as empty cells", () => {
    expect(csvCell(null)).toBe("");
    expect(csvCell(undefined)).toBe("");
  });

  it("quotes cells with commas, quotes or line breaks, doubling inner quotes", () => {
    expect(csvCell("Acme, Inc.")).toBe('"Acme, Inc."');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell("line\nbreak")).toBe('"line\nbreak"');
    expect(csvCell("cr\r\nlf")).toBe('"cr\r\nlf"');
  });

  it("quotes cells with leading or trailing spaces so they survive", () => {
    expect(csvCell(" padded ")).toBe('" padded "');
  });

  it("joins a list of tags into one cell", () => {
    expect(csvCell(["vip", "trial"])).toBe("vip; trial");
  });
});

describe("CSV cells are safe from spreadsheet formula injection", () => {
  it.each(["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\tcmd", "=HYPERLINK(\"http://x\")"])("prefixes %j with an apostrophe", (value) => {
    const cell = csvCell(value);
    expect(cell.replace(/^"/, "").startsWith("'")).toBe(true);
  });

  it("keeps negative numbers as numbers", () => {
    expect(csvCell(-5)).toBe("-5");
    expect(csvCell("-12.5")).toBe("-12.5");
  });

  it("still quotes a neutralised formula that holds a comma", () => {
    expect(csvCell("=SUM(A1,B1)")).toBe(`"'=SUM(A1,B1)"`);
  });
});

describe("the CSV file", () => {
  it("has a header row naming the custom fields and tags, then CRLF-terminated rows", () => {
    const encoder = encoderFor(
      spec({ format: "csv", includeMembership: true, customFields: [{ id: 3, name: "Company, Ltd" }, { id: 4, name: "=evil" }] }),
    );
    const record = JSON.stringify([7, "a@example.com", "active", "2025-01-01T00:00:00Z", "Acme, Inc.", null, ["vip"]]);
    expect(render(encoder, [record, record])).toBe(
      `subscriberid,emailaddress,status,subscribedate,"Company, Ltd",'=evil,tags\r\n` +
        `7,a@example.com,active,2025-01-01T00:00:00Z,"Acme, Inc.",,vip\r\n`.repeat(2),
    );
  });
});

describe("the JSON file", () => {
  it("is the Pinpointe SUCCESS envelope, with the count after the subscribers (it is known only at the end)", () => {
    const text = render(encoderFor(spec()), ['{"subscriberid":1}', '{"subscriberid":2}', '{"subscriberid":3}']);
    expect(JSON.parse(text)).toEqual({
      response: { status: "SUCCESS", data: { subscribers: [{ subscriberid: 1 }, { subscriberid: 2 }, { subscriberid: 3 }], count: 3 } },
    });
  });

  it("is valid for an empty export", () => {
    expect(JSON.parse(render(encoderFor(spec()), []))).toEqual({
      response: { status: "SUCCESS", data: { subscribers: [], count: 0 } },
    });
  });
});
