import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { seedScenario } from "../fixtures";
import { createJob, exportedFile, exportedJson, harness, jobRow, runToEnd } from "./driver";

describe("the exported file holds the seeded data", () => {
  it("as JSON: the union of the segments, each subscriber once, with the requested fields and tags", async () => {
    const s = await seedScenario();
    const h = harness();
    const jobId = await createJob(h, s.account, {
      segmentid: [s.segments.customers, s.segments.vip, s.segments.acme],
      include_membership: true,
      customfields: ["Score", "First Name"],
    });
    await runToEnd(h, jobId);
    const tagNames = new Map([
      [s.tags.vip, "vip"],
      [s.tags.trial, "trial"],
      [s.tags.churned, "churned"],
    ]);
    const expected = s.people
      .filter((p) => p.listId === s.lists.customers || p.tags?.includes(s.tags.vip) || /^acme/i.test(String(p.fields?.[s.fields.company])))
      .map((p) => ({
        subscriberid: p.id,
        emailaddress: p.email,
        status: p.status,
        subscribedate: p.subscribeDate,
        customfields: { Score: p.fields![s.fields.score], "First Name": p.fields![s.fields.firstName] },
        tags: (p.tags ?? []).map((t) => tagNames.get(t)),
      }));
    // Every one of the seed's 24 people is in one of these segments; an empty expectation would prove nothing.
    expect(expected).toHaveLength(24);
    const file = await exportedJson(jobId);
    expect(file.response.status).toBe("SUCCESS");
    expect(file.response.data.subscribers).toEqual(expected);
    expect(file.response.data.count).toBe(expected.length);
    // Key order of customfields follows the request.
    expect(Object.keys(file.response.data.subscribers[0]!.customfields)).toEqual(["Score", "First Name"]);
  });

  it("as CSV: a header row, then one RFC 4180 row per subscriber", async () => {
    const s = await seedScenario();
    const h = harness();
    const jobId = await createJob(h, s.account, {
      segmentid: [s.segments.acme],
      status: "active",
      format: "csv",
      include_membership: "yes",
      customfields: ["Company", "First Name"],
    });
    await runToEnd(h, jobId);
    const lines = (await exportedFile(jobId)).split("\r\n");
    expect(lines[0]).toBe("subscriberid,emailaddress,status,subscribedate,Company,First Name,tags");
    const expected = s.people.filter((p) => p.status === "active" && p.fields?.[s.fields.company] === "Acme, Inc.");
    expect(expected).toHaveLength(6);
    expect(lines.slice(1, -1)).toEqual(
      expected.map((p) => {
        const tags = (p.tags ?? []).map((t) => (t === s.tags.vip ? "vip" : t === s.tags.trial ? "trial" : "churned")).join("; ");
        return `${p.id},${p.email},active,${p.subscribeDate},"Acme, Inc.",${p.fields![s.fields.firstName]},${tags}`;
      }),
    );
    expect(lines.at(-1)).toBe("");
  });

  it("as NDJSON: one subscriber object per line, the JSON file's objects in its order, and nothing else", async () => {
    const s = await seedScenario();
    const h = harness();
    const details = { segmentid: [s.segments.vip, s.segments.acme], include_membership: true, customfields: ["Company", "Score"] };
    const json = await createJob(h, s.account, details);
    const ndjson = await createJob(h, s.account, { ...details, format: "NDJSON" });
    await runToEnd(h, json);
    await runToEnd(h, ndjson);
    const text = await exportedFile(ndjson);
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    const expected = (await exportedJson(json)).response.data.subscribers;
    expect(expected.length).toBeGreaterThan(5);
    expect(lines.map((line) => JSON.parse(line))).toEqual(expected);
    // Each line is the object as the JSON file writes it, byte for byte.
    expect(text).toBe(expected.map((o) => JSON.stringify(o) + "\n").join(""));
    const job = await jobRow(ndjson);
    expect(job.objectKey).toMatch(/\.ndjson$/);
    const stored = await env.EXPORTS.head(job.objectKey);
    expect(stored?.httpMetadata?.contentType).toBe("application/x-ndjson; charset=utf-8");
    expect(job.processedCount).toBe(lines.length);
  });

  it("as an empty but valid file when nothing matches", async () => {
    const s = await seedScenario();
    const h = harness();
    const jobId = await createJob(h, s.account, { segmentid: [s.segments.customers], status: "bounced", customfields: "all" });
    await runToEnd(h, jobId);
    const count = (await exportedJson(jobId)).response.data.count;
    const bounced = s.people.filter((p) => p.listId === s.lists.customers && p.status === "bounced").length;
    expect(bounced).toBe(2);
    expect(count).toBe(bounced);

    // The seed's VIPs have odd numbers and its bounced people even ones: no VIP is bounced.
    expect(s.people.filter((p) => p.tags?.includes(s.tags.vip) && p.status === "bounced")).toEqual([]);
    const none = await createJob(h, s.account, { segmentid: [s.segments.vip], status: "bounced" });
    await runToEnd(h, none);
    expect(await exportedJson(none)).toEqual({ response: { status: "SUCCESS", data: { subscribers: [], count: 0 } } });
    const emptyLines = await createJob(h, s.account, { segmentid: [s.segments.vip], status: "bounced", format: "ndjson" });
    await runToEnd(h, emptyLines);
    expect(await exportedFile(emptyLines)).toBe("");
  });
});
