/** Helpers shared by the API tests: job rows, running an export to completion, and reading its file. */
import { exports } from "cloudflare:workers";
import { count, eq } from "drizzle-orm";
import { expect, vi } from "vitest";
import { exportJobs } from "../../src/db/schema";
import type { ExportSpec } from "../../src/export/spec";
import { callApi, dataOf, db, request, seedScenario, type ApiResponse, type TestAccount } from "../fixtures";

export const EMAIL_NOTIFY = { type: "email", value: "exports@example.com" } as const;

/** The exact ERROR envelope and HTTP status of a failed call. */
export function expectError(response: ApiResponse, status: number, errormessage: string) {
  expect({ status: response.status, body: response.body }).toEqual({
    status,
    body: { response: { status: "ERROR", errormessage } },
  });
}

export async function exportJobCount(accountId: number): Promise<number> {
  const [row] = await db().select({ n: count() }).from(exportJobs).where(eq(exportJobs.accountId, accountId));
  return row!.n;
}

export async function startExport(account: TestAccount, details: Record<string, unknown>): Promise<string> {
  const accepted = dataOf<{ jobid: string; status: string }>(
    await callApi(request(account, "Segments", "GetSegmentSubscribersAsync", { notify: EMAIL_NOTIFY, ...details })),
  );
  return accepted.jobid;
}

export interface JobStatus {
  jobid: string;
  status: string;
  count: number;
  total: number | null;
  percent: number;
  eta_seconds: number | null;
  format: string;
  compression: string;
  segmentid: string[];
  createdate: string;
  completedate: string | null;
  bytes: number | null;
  url: string | null;
  files: Array<{ url: string; count: number; bytes: number }>;
  expires_at: string | null;
  retained_until: string | null;
  errormessage?: string | null;
  notification: { type: string; status: string; attempts: number; lasterror?: string };
}

export async function jobStatus(account: TestAccount, jobid: string) {
  return callApi<JobStatus>(request(account, "Segments", "GetSegmentSubscribersAsyncStatus", { jobid }));
}

/** Polls the status method until the job is complete and its notification delivered. */
export async function waitForDelivered(account: TestAccount, jobid: string): Promise<JobStatus> {
  let last: JobStatus | undefined;
  await vi.waitUntil(
    async () => {
      last = dataOf(await jobStatus(account, jobid));
      if (last.status === "failed") throw new Error(`export ${jobid} failed: ${last.errormessage}`);
      return last.status === "complete" && last.notification.status !== "pending";
    },
    { timeout: 10_000, interval: 30 },
  );
  return last!;
}

export async function download(url: string): Promise<{ response: Response; text: string }> {
  const response = await exports.default.fetch(url);
  return { response, text: await response.text() };
}

export interface JsonSubscriber {
  subscriberid: number;
  emailaddress: string;
  status: string;
  subscribedate: string;
  customfields: Record<string, string | number | null>;
  tags?: string[];
}

/** Runs a JSON export to the end and returns the parsed file. */
export async function exportJson(account: TestAccount, details: Record<string, unknown>) {
  const jobid = await startExport(account, details);
  const status = await waitForDelivered(account, jobid);
  const { response, text } = await download(status.url!);
  expect(response.status).toBe(200);
  const file = JSON.parse(text) as { response: { status: string; data: { subscribers: JsonSubscriber[]; count: number } } };
  return { jobid, status, file, subscribers: file.response.data.subscribers };
}

/** Runs a CSV export to the end and returns its rows (the header first). */
export async function exportCsv(account: TestAccount, details: Record<string, unknown>) {
  const jobid = await startExport(account, { ...details, format: "csv" });
  const status = await waitForDelivered(account, jobid);
  const { response, text } = await download(status.url!);
  expect(response.status).toBe(200);
  return { jobid, status, text, rows: parseCsv(text) };
}

/** A small RFC 4180 reader: quoted cells, doubled quotes, CRLF line ends. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += c;
  }
  if (cell !== "" || row.length > 0) rows.push([...row, cell]);
  return rows;
}

/** Inserts a job row directly (no queue message), to see the status method answer for a given state. */
export async function insertJob(accountId: number, values: Partial<typeof exportJobs.$inferInsert> = {}) {
  const id = crypto.randomUUID();
  const spec: ExportSpec = {
    segmentIds: [1],
    segments: [{ id: 1, name: "Inserted", rules: { match: "all", rules: [] } }],
    status: "any",
    includeMembership: false,
    customFields: [],
    format: "json",
    requestedAt: "2026-01-01T00:00:00Z",
  };
  await db()
    .insert(exportJobs)
    .values({
      id,
      accountId,
      spec,
      format: "json",
      notifyType: "email",
      notifyTarget: EMAIL_NOTIFY.value,
      objectKey: `exports/${accountId}/segment-export-${id}.json`,
      ...values,
    });
  return id;
}

export type Scenario = Awaited<ReturnType<typeof seedScenario>>;
export type Person = Scenario["people"][number];

/** Who is in each of seedScenario's segments, by the segment's rule. */
const SEGMENT_RULES: Record<keyof Scenario["segments"], (s: Scenario, p: Person) => boolean> = {
  customers: (s, p) => p.listId === s.lists.customers,
  vip: (s, p) => (p.tags ?? []).includes(s.tags.vip),
  acme: (s, p) => String(p.fields?.[s.fields.company]).toLowerCase().startsWith("acme"),
};

/** The people of a union of seedScenario segments, in subscriber id order (the export's order). */
export function membersOf(s: Scenario, segmentNames: Array<keyof Scenario["segments"]>): Person[] {
  return s.people.filter((p) => segmentNames.some((name) => SEGMENT_RULES[name](s, p))).sort((a, b) => a.id - b.id);
}

/** The tag names of a person, sorted. */
export function tagNames(s: Scenario, p: Person): string[] {
  const names = new Map(Object.entries(s.tags).map(([name, id]) => [id, name]));
  return (p.tags ?? []).map((id) => names.get(id)!).sort();
}
