import { env, exports } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { Webhook } from "standardwebhooks";
import { callApi, dataOf, request, seedScenario } from "./fixtures";

afterEach(() => vi.unstubAllGlobals());

it("exports segments end to end: request → real queue → file in R2 → signed webhook → download of the seeded data", async () => {
  const s = await seedScenario();
  const hooks: { headers: Record<string, string>; body: string }[] = [];
  const realFetch = globalThis.fetch;
  vi.stubGlobal("fetch", async (input: RequestInfo, init?: RequestInit) => {
    const req = new Request(input, init);
    if (req.url.startsWith("https://hooks.test/")) {
      hooks.push({ headers: Object.fromEntries(req.headers), body: await req.text() });
      return new Response("ok");
    }
    return realFetch(input, init);
  });
  const accepted = dataOf<{ jobid: string; status: string }>(
    await callApi(
      request(s.account, "seg", "getsegmentsubscribersasync", {
        segmentid: [String(s.segments.customers), s.segments.vip],
        status: "any",
        include_membership: "yes",
        customfields: ["First Name", "Company"],
        notify: { type: "webhook", value: "https://hooks.test/exports" },
      }),
    ),
  );
  expect(accepted.status).toBe("queued");
  await vi.waitUntil(() => hooks.length > 0, { timeout: 10_000, interval: 50 });
  const hook = hooks[0]!;
  const event = new Webhook(s.account.webhookSecret).verify(hook.body, hook.headers) as any;
  expect(event.type).toBe("segment_export.completed");
  const file = await exports.default.fetch(event.data.url);
  expect(file.status).toBe(200);
  const json = (await file.json()) as any;
  const expected = s.people.filter((p) => p.listId === s.lists.customers || p.tags?.includes(s.tags.vip));
  expect(json.response.data.subscribers.map((x: any) => x.emailaddress)).toEqual(expected.map((p) => p.email));
  expect(json.response.data.count).toBe(expected.length);
  expect(event.data).toMatchObject({ status: "SUCCESS", count: expected.length, format: "json" });
});
