import { exports } from "cloudflare:workers";
import { expect, it, vi } from "vitest";
import { Webhook } from "standardwebhooks";
import { callApi, dataOf, receivedWebhooks, request, seedScenario } from "./fixtures";

it("exports segments end to end: API worker → real queue → export worker → file in R2 → signed webhook → download", async () => {
  const s = await seedScenario();
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
  // The export worker, a separate worker consuming the real queue, sends the webhook.
  const hooks = await vi.waitUntil(
    async () => {
      const received = await receivedWebhooks(`msg_${accepted.jobid}`);
      return received.length > 0 ? received : false;
    },
    { timeout: 20_000, interval: 100 },
  );
  expect(hooks).toHaveLength(1);
  expect(hooks[0]!.url).toBe("https://hooks.test/exports");
  const event = new Webhook(s.account.webhookSecret).verify(hooks[0]!.body, hooks[0]!.headers) as any;
  expect(event.type).toBe("segment_export.completed");
  const file = await exports.default.fetch(event.data.url);
  expect(file.status).toBe(200);
  const json = (await file.json()) as any;
  const expected = s.people.filter((p) => p.listId === s.lists.customers || p.tags?.includes(s.tags.vip));
  expect(json.response.data.subscribers.map((x: any) => x.emailaddress)).toEqual(expected.map((p) => p.email));
  expect(json.response.data.count).toBe(expected.length);
  expect(event.data).toMatchObject({ status: "SUCCESS", count: expected.length, format: "json" });
});
