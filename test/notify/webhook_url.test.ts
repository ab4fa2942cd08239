import { describe, expect, it } from "vitest";
import { checkWebhookUrl } from "../../src/notify/webhook_url";
import { callApi, request } from "../fixtures";
import { notifyScenario } from "./helpers";

const internal = (host: string) => `the webhook host "${host}" is a loopback, private or link-local address`;

describe("checking a webhook URL in production (allowLocal false)", () => {
  it.each([
    "https://hooks.example.com/exports",
    "https://hooks.example.com:8443/a/b?token=x#frag",
    "https://8.8.8.8/hook",
    "https://172.32.0.1/hook",
    "https://192.169.0.1/hook",
    "https://[2606:4700:4700::1111]/hook",
  ])("accepts the public https URL %s", (url) => {
    expect(checkWebhookUrl(url, false)).toBeNull();
  });

  it("requires https", () => {
    expect(checkWebhookUrl("http://hooks.example.com/exports", false)).toBe("the webhook URL must use https");
    expect(checkWebhookUrl("ftp://hooks.example.com/exports", false)).toBe("the webhook URL must use https");
  });

  it("refuses what is not an absolute URL", () => {
    expect(checkWebhookUrl("hooks.example.com/exports", false)).toBe('"hooks.example.com/exports" is not an absolute URL');
  });

  it("refuses credentials in the URL", () => {
    expect(checkWebhookUrl("https://user:pass@hooks.example.com/", false)).toBe("the webhook URL must not contain credentials");
    expect(checkWebhookUrl("https://user@hooks.example.com/", false)).toBe("the webhook URL must not contain credentials");
  });

  it.each([
    ["https://127.0.0.1/hook", "127.0.0.1"],
    ["https://127.8.9.10/hook", "127.8.9.10"],
    ["https://10.0.0.1/hook", "10.0.0.1"],
    ["https://10.255.255.255/hook", "10.255.255.255"],
    ["https://172.16.0.1/hook", "172.16.0.1"],
    ["https://172.31.255.254/hook", "172.31.255.254"],
    ["https://192.168.1.1/hook", "192.168.1.1"],
    ["https://169.254.169.254/latest/meta-data", "169.254.169.254"],
    ["https://100.64.0.1/hook", "100.64.0.1"],
    ["https://0.0.0.0/hook", "0.0.0.0"],
    ["https://224.0.0.1/hook", "224.0.0.1"],
    ["https://localhost/hook", "localhost"],
    ["https://LOCALHOST:8443/hook", "localhost"],
    ["https://api.localhost/hook", "api.localhost"],
    ["https://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal"],
    ["https://printer.local/hook", "printer.local"],
    ["https://[::1]/hook", "[::1]"],
    ["https://[::]/hook", "[::]"],
    ["https://[fc00::]/hook", "[fc00::]"],
    ["https://[fd12:3456::1]/hook", "[fd12:3456::1]"],
    ["https://[fe80::1]/hook", "[fe80::1]"],
  ])("refuses the internal host of %s", (url, host) => {
    expect(checkWebhookUrl(url, false)).toBe(internal(host));
  });

  it.each([
    // The URL parser normalizes these spellings to a loopback or metadata address before the check.
    ["https://2130706433/hook", "127.0.0.1"],
    ["https://0x7f.1/hook", "127.0.0.1"],
    ["https://0251.0376.0251.0376/hook", "169.254.169.254"],
    ["https://[0:0:0:0:0:0:0:1]/hook", "[::1]"],
    ["https://[::ffff:127.0.0.1]/hook", "[::ffff:7f00:1]"],
    ["https://[::ffff:169.254.169.254]/hook", "[::ffff:a9fe:a9fe]"],
  ])("refuses the disguised internal address %s", (url, host) => {
    expect(checkWebhookUrl(url, false)).toBe(internal(host));
  });

  it.each([
    ["https://localhost./hook", "localhost."],
    ["https://metadata.google.internal./computeMetadata/v1/", "metadata.google.internal."],
  ])("refuses an internal name written with a trailing dot, %s", (url, host) => {
    expect(checkWebhookUrl(url, false)).toBe(internal(host));
  });
});

describe("checking a webhook URL for local development (allowLocal true)", () => {
  it("accepts http and internal hosts", () => {
    expect(checkWebhookUrl("http://localhost:8788/hook", true)).toBeNull();
    expect(checkWebhookUrl("http://127.0.0.1/hook", true)).toBeNull();
    expect(checkWebhookUrl("https://192.168.1.1/hook", true)).toBeNull();
  });

  it("still refuses other schemes and credentials", () => {
    expect(checkWebhookUrl("ftp://localhost/hook", true)).toBe("the webhook URL must use http or https");
    expect(checkWebhookUrl("http://u:p@localhost/hook", true)).toBe("the webhook URL must not contain credentials");
  });
});

describe("an export request with an unsafe webhook", () => {
  it("is refused with 400 and the reason, before any job exists", async () => {
    const s = await notifyScenario(1);
    const res = await callApi(
      request(s.account, "Segments", "GetSegmentSubscribersAsync", {
        segmentid: [s.segmentId],
        notify: { type: "webhook", value: "https://169.254.169.254/latest/meta-data" },
      }),
    );
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      response: { status: "ERROR", errormessage: `details.notify.value: ${internal("169.254.169.254")}` },
    });
  });
});
