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
  it.each([
    ["=1+1", "'=1+1"],
    ["+1+1", "'+1+1"],
    ["-1+1", "'-1+1"],
    ["@SUM(A1)", "'@SUM(A1)"],
    ["|calc", "'|calc"],
    ["%0A", "'%0A"],
    ['=HYPERLINK("http://x")', `"'=HYPERLINK(""http://x"")"`],
  ])("prefixes %j, which starts with a formula character, with an apostrophe", (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it.each([
    ["＝1+1", "'＝1+1"],
    ["＋1+1", "'＋1+1"],
    ["－1+1", "'－1+1"],
    ["＠SUM(A1)", "'＠SUM(A1)"],
  ])("prefixes the full-width form %j", (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it.each([
    [" =1+1", "' =1+1"],
    ["   @cmd", "'   @cmd"],
    ["\n=1+1", `"'\n=1+1"`],
    ["\r\n+1+1", `"'\r\n+1+1"`],
    ["\u00a0=1+1", "'\u00a0=1+1"],
    ["\u3000＝1+1", "'\u3000＝1+1"],
  ])("tests the value after its leading whitespace and line breaks: %j", (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it.each([
    ["\tcmd", "'\tcmd"],
    ["\t12", "'\t12"],
    ["\rcmd", `"'\rcmd"`],
    [" \tplain", "' \tplain"],
    ["\n \r text", `"'\n \r text"`],
  ])("prefixes a value with a tab or CR anywhere in its leading run: %j", (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it.each([
    ["-12.5", "-12.5"],
    ["-5", "-5"],
    ["0.75", "0.75"],
    ["1e5", "1e5"],
    [" 12", '" 12"'],
    [" -12", '" -12"'],
  ])("keeps the plain number %j as it is", (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it.each([-5, -12.5, 0, 1e21])("keeps the JSON number %j as it is", (value) => {
    expect(csvCell(value)).toBe(String(value));
  });

  it.each([
    ["+1", "'+1"],
    ["+1 415 555 0100", "'+1 415 555 0100"],
    ["-1e5", "'-1e5"],
    ["-.5", "'-.5"],
    ["-", "'-"],
  ])("prefixes %j: a leading + or - that is not a plain number", (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it.each(["a=b", "x+y", "name@example.com", "50%", "a|b"])("leaves %j alone: the character is not leading", (value) => {
    expect(csvCell(value)).toBe(value);
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
