import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/api/errors";
import { loadConfig } from "../../src/config";
import { detailsSchema, getSegmentSubscribersAsync } from "../../src/methods/segments_get_segment_subscribers_async";
import {
  checkWebhookUrl,
  PRODUCTION_WEBHOOK_POLICY,
  webhookPolicy,
  type WebhookPolicy,
} from "../../src/notify/webhook_url";
import { expectError, exportJobCount } from "../api/helpers";
import { callApi, db, methodContext, request } from "../fixtures";
import { notifyScenario } from "./helpers";

const PROD = PRODUCTION_WEBHOOK_POLICY;
const policy = (overrides: Partial<WebhookPolicy>): WebhookPolicy => ({ ...PROD, ...overrides });

describe("the webhook policy comes from the configuration", () => {
  it("is production's by default: https only, no private targets, ports 443 and 8443, DNS check on", () => {
    const config = loadConfig({ PUBLIC_BASE_URL: "https://exports.test", DOWNLOAD_SIGNING_SECRET: "x".repeat(16) });
    expect(webhookPolicy(config)).toEqual({ allowHttp: false, allowPrivate: false, allowedPorts: [443, 8443], dnsCheck: true });
  });

  it("reads the two dev switches, the port list and the DNS check separately", () => {
    const config = loadConfig({
      PUBLIC_BASE_URL: "https://exports.test",
      DOWNLOAD_SIGNING_SECRET: "x".repeat(16),
      ALLOW_HTTP_WEBHOOKS: "true",
      ALLOW_PRIVATE_WEBHOOKS: "false",
      WEBHOOK_ALLOWED_PORTS: "443, 9443",
      WEBHOOK_DNS_CHECK: "false",
    });
    expect(webhookPolicy(config)).toEqual({ allowHttp: true, allowPrivate: false, allowedPorts: [443, 9443], dnsCheck: false });
  });
});

describe("checking a webhook URL in production", () => {
  it("requires https", () => {
    expect(checkWebhookUrl("http://hooks.example.com/exports", PROD)).toBe("the webhook URL must use https");
    expect(checkWebhookUrl("ftp://hooks.example.com/exports", PROD)).toBe("the webhook URL must use https");
  });

  it("refuses what is not an absolute URL, quoting at most 100 characters of it", () => {
    expect(checkWebhookUrl("hooks.example.com/exports", PROD)).toBe('"hooks.example.com/exports" is not an absolute URL');
    const long = `not a url ${"x".repeat(900)}`;
    expect(checkWebhookUrl(long, PROD)).toBe(`"${long.slice(0, 100)}…" is not an absolute URL`);
  });

  it("quotes at most 100 characters of a refused host", () => {
    const name = `${"a".repeat(60)}.${"b".repeat(60)}.local`;
    expect(checkWebhookUrl(`https://${name}/x`, PROD)).toBe(`the webhook host "${name.slice(0, 100)}…" is a special-use name (.local)`);
  });

  it("refuses credentials in the URL", () => {
    expect(checkWebhookUrl("https://user:pass@hooks.example.com/", PROD)).toBe("the webhook URL must not contain credentials");
    expect(checkWebhookUrl("https://user@hooks.example.com/", PROD)).toBe("the webhook URL must not contain credentials");
  });
});

describe("webhook ports", () => {
  it("allows 443 and 8443 by default; the scheme's default port counts", () => {
    expect(checkWebhookUrl("https://hooks.example.com/x", PROD)).toBeNull();
    expect(checkWebhookUrl("https://hooks.example.com:443/x", PROD)).toBeNull();
    expect(checkWebhookUrl("https://hooks.example.com:8443/x", PROD)).toBeNull();
  });

  it.each([22, 25, 80, 3306, 6379, 8080, 9200])("refuses port %i, naming the allowed ones", (port) => {
    expect(checkWebhookUrl(`https://hooks.example.com:${port}/x`, PROD)).toBe(
      `the webhook port ${port} is not allowed (allowed: 443, 8443)`,
    );
  });

  it("follows WEBHOOK_ALLOWED_PORTS", () => {
    const custom = policy({ allowedPorts: [9443] });
    expect(checkWebhookUrl("https://hooks.example.com:9443/x", custom)).toBeNull();
    expect(checkWebhookUrl("https://hooks.example.com/x", custom)).toBe("the webhook port 443 is not allowed (allowed: 9443)");
  });

  it("counts http's default port 80 when http is allowed", () => {
    expect(checkWebhookUrl("http://hooks.example.com/x", policy({ allowHttp: true }))).toBe(
      "the webhook port 80 is not allowed (allowed: 443, 8443)",
    );
    expect(checkWebhookUrl("http://hooks.example.com/x", policy({ allowHttp: true, allowedPorts: [80, 443] }))).toBeNull();
  });
});

describe("the dev switches: ALLOW_HTTP_WEBHOOKS (scheme) and ALLOW_PRIVATE_WEBHOOKS (targets) are separate", () => {
  const httpOnly = policy({ allowHttp: true });
  const privateOnly = policy({ allowPrivate: true });
  const both = policy({ allowHttp: true, allowPrivate: true });

  it("ALLOW_HTTP_WEBHOOKS alone allows http but still refuses private targets", () => {
    expect(checkWebhookUrl("http://hooks.example.com:8443/hook", httpOnly)).toBeNull();
    expect(checkWebhookUrl("http://127.0.0.1:8788/hooks/exports", httpOnly)).toBe('the webhook host "127.0.0.1" is a loopback address');
    expect(checkWebhookUrl("http://localhost:8788/hook", httpOnly)).toBe('the webhook host "localhost" is a special-use name (.localhost)');
    expect(checkWebhookUrl("http://[::ffff:10.0.0.1]/hook", httpOnly)).toBe(
      'the webhook host "[::ffff:a00:1]" is a private address (IPv4-mapped 10.0.0.1)',
    );
  });

  it("ALLOW_PRIVATE_WEBHOOKS alone allows private targets but still requires https", () => {
    expect(checkWebhookUrl("https://192.168.1.1/hook", privateOnly)).toBeNull();
    expect(checkWebhookUrl("http://192.168.1.1/hook", privateOnly)).toBe("the webhook URL must use https");
  });

  it("both together allow what npm run demo and the benchmark use: http to 127.0.0.1 on any port", () => {
    expect(checkWebhookUrl("http://127.0.0.1:8788/hooks/exports", both)).toBeNull();
    expect(checkWebhookUrl("http://127.0.0.1:8791/hook", both)).toBeNull();
    expect(checkWebhookUrl("http://localhost:8788/hook", both)).toBeNull();
  });

  it("the port list still applies to public targets with both switches on", () => {
    expect(checkWebhookUrl("http://hooks.example.com:8788/hook", both)).toBe("the webhook port 8788 is not allowed (allowed: 443, 8443)");
  });

  it("neither switch lifts the scheme list or the credentials rule", () => {
    expect(checkWebhookUrl("ftp://localhost/hook", both)).toBe("the webhook URL must use http or https");
    expect(checkWebhookUrl("http://u:p@localhost/hook", both)).toBe("the webhook URL must not contain credentials");
  });

  it("GetSegmentSubscribersAsync with only ALLOW_HTTP_WEBHOOKS refuses http://127.0.0.1 and creates nothing", async () => {
    const s = await notifyScenario(1);
    const config = { ...loadConfig(env), ALLOW_HTTP_WEBHOOKS: true, ALLOW_PRIVATE_WEBHOOKS: false };
    const details = detailsSchema.parse({
      segmentid: [s.segmentId],
      notify: { type: "webhook", value: "http://127.0.0.1:8788/hooks/exports" },
    });
    const call = getSegmentSubscribersAsync.handle(methodContext(env, s.accountRow, config), details);
    await expect(call).rejects.toThrow(ApiError);
    await expect(call).rejects.toThrow('details.notify.value: the webhook host "127.0.0.1" is a loopback address');
    expect(await exportJobCount(s.account.id)).toBe(0);
  });
});

describe("an export request with an unsafe webhook is refused with 400 and the reason, before any job exists", () => {
  it.each([
    ["https://169.254.169.254/latest/meta-data", 'the webhook host "169.254.169.254" is a link-local address'],
    ["https://10.0.0.1/hook", 'the webhook host "10.0.0.1" is a private address'],
    ["https://[::169.254.169.254]/hook", 'the webhook host "[::a9fe:a9fe]" is a link-local address (IPv4-compatible 169.254.169.254)'],
    ["https://[64:ff9b::a9fe:a9fe]/hook", 'the webhook host "[64:ff9b::a9fe:a9fe]" is a link-local address (NAT64 169.254.169.254)'],
    ["https://[2002:7f00:1::]/hook", 'the webhook host "[2002:7f00:1::]" is a loopback address (6to4 127.0.0.1)'],
    ["https://[fec0::1]/hook", 'the webhook host "[fec0::1]" is a private address (site-local)'],
    ["https://[ff02::1]/hook", 'the webhook host "[ff02::1]" is a multicast address'],
    ["https://192.0.0.192/hook", 'the webhook host "192.0.0.192" is a special-use address (IETF protocol assignments)'],
    ["https://198.18.0.1/hook", 'the webhook host "198.18.0.1" is a benchmarking address'],
    ["https://127.0.0.1.nip.io/hook", 'the webhook host "127.0.0.1.nip.io" spells the address 127.0.0.1, a loopback address'],
    ["https://localtest.me/hook", 'the webhook host "localtest.me" is under localtest.me, which resolves to a loopback address'],
    ["https://metadata/computeMetadata/v1/", 'the webhook host "metadata" is a single-label name, not a public DNS name'],
    ["https://instance-data/latest/", 'the webhook host "instance-data" is a single-label name, not a public DNS name'],
    ["https://router.lan/hook", 'the webhook host "router.lan" is a special-use name (.lan)'],
    ["https://printer.home.arpa/hook", 'the webhook host "printer.home.arpa" is a special-use name (.home.arpa)'],
    ["https://localhost.localdomain/hook", 'the webhook host "localhost.localdomain" is a special-use name (.localdomain)'],
    ["https://kubernetes.default.svc/api", 'the webhook host "kubernetes.default.svc" is a special-use name (.svc)'],
    ["https://hooks.example.com:6379/hook", "the webhook port 6379 is not allowed (allowed: 443, 8443)"],
  ])("%s", async (value, reason) => {
    const s = await notifyScenario(1);
    const res = await callApi(
      request(s.account, "Segments", "GetSegmentSubscribersAsync", { segmentid: [s.segmentId], notify: { type: "webhook", value } }),
    );
    expectError(res, 400, `details.notify.value: ${reason}`);
    expect(await exportJobCount(s.account.id)).toBe(0);
  });

  it("accepts a public https target on an allowed port", async () => {
    const s = await notifyScenario(1);
    const res = await callApi(
      request(s.account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: [s.segmentId],
        notify: { type: "webhook", value: "https://hooks.example.com:8443/exports" },
      }),
    );
    expect(res.status).toBe(200);
    expect(await exportJobCount(s.account.id)).toBe(1);
  });
});
