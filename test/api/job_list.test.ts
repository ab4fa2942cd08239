/** Segments / GetSegmentSubscribersAsyncJobs: the account's exports, newest first, in pages. */
import { describe, expect, it } from "vitest";
import { callApi, dataOf, request, seedScenario } from "../fixtures";
import { createJob, harness } from "../export/driver";
import { expectError } from "./helpers";

interface JobList {
  count: number;
  jobs: Array<{ jobid: string; status: string; segmentid: string[]; notification: unknown }>;
  next: string;
}

const list = (account: Parameters<typeof request>[0], details: Record<string, unknown> = {}) =>
  callApi<JobList>(request(account, "Segments", "GetSegmentSubscribersAsyncJobs", details));

describe("Segments / GetSegmentSubscribersAsyncJobs", () => {
  it("lists the account's exports newest first, limit at a time, with the status fields, until next is \"0\"", async () => {
    const s = await seedScenario();
    const other = await seedScenario();
    const h = harness();
    const created: string[] = [];
    for (const segment of [s.segments.customers, s.segments.vip, s.segments.acme, s.segments.customers, s.segments.vip]) {
      created.push(await createJob(h, s.account, { segmentid: [segment] }));
    }
    await createJob(h, other.account, { segmentid: [other.segments.vip] });

    const seen: JobList["jobs"] = [];
    let next: string | undefined;
    const counts: number[] = [];
    do {
      const page = dataOf(await list(s.account, { limit: 2, ...(next ? { next } : {}) }));
      counts.push(page.count);
      seen.push(...page.jobs);
      next = page.next;
    } while (next !== "0");
    expect(counts).toEqual([2, 2, 1]);
    expect(seen.map((j) => j.jobid)).toEqual([...created].reverse());
    expect(seen[0]).toMatchObject({ status: "queued", segmentid: [String(s.segments.vip)], notification: { type: "webhook", status: "pending" } });
  });

  it(`answers 20 by default, and an empty list with next "0" for an account without exports`, async () => {
    const s = await seedScenario();
    expect(dataOf(await list(s.account))).toEqual({ count: 0, jobs: [], next: "0" });
  });

  it.each([
    [{ limit: 0 }, "details.limit: must be a whole number from 1 to 100"],
    [{ limit: 101 }, "details.limit: must be at most 100"],
    [{ next: "garbage!" }, 'details.next: "garbage!" is not a position this call returned'],
    [{ next: "0" }, 'details.next: "0" means the previous answer was the last one; omit next to start from the newest'],
  ])("refuses %j", async (details, message) => {
    const s = await seedScenario();
    expectError(await list(s.account, details), 400, message);
  });
});
