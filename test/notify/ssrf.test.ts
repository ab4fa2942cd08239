/**
 * The webhook SSRF guard as a table: every target an attacker (or a careless user) could name to reach
 * something that is not a public webhook receiver, and the reason each one is refused with; and the public
 * targets that must still be accepted. See docs/security_webhooks.md.
 */
import { describe, expect, it } from "vitest";
import { checkWebhookUrl, describeAddress, PRODUCTION_WEBHOOK_POLICY } from "../../src/notify/webhook_url";

const PROD = PRODUCTION_WEBHOOK_POLICY;
const host = (name: string, why: string) => `the webhook host "${name}" ${why}`;

const LOOPBACK = "is a loopback address";
const PRIVATE = "is a private address";
const CGNAT = "is a private address (shared, carrier-grade NAT)";
const LINK_LOCAL = "is a link-local address";
const DOCS = "is a documentation address";
const MULTICAST = "is a multicast address";
const BENCHMARKING = "is a benchmarking address";
const IETF = "is a special-use address (IETF protocol assignments)";

/** [url, the host as the refusal names it, why]. */
const REFUSED_ADDRESSES: Array<[string, string, string]> = [
  // IPv4 loopback, in every spelling the URL parser turns into 127.0.0.1.
  ["https://127.0.0.1/hook", "127.0.0.1", LOOPBACK],
  ["https://127.8.9.10/hook", "127.8.9.10", LOOPBACK],
  ["https://2130706433/hook", "127.0.0.1", LOOPBACK],
  ["https://0x7f.1/hook", "127.0.0.1", LOOPBACK],
  ["https://0x7f000001/hook", "127.0.0.1", LOOPBACK],
  ["https://017700000001/hook", "127.0.0.1", LOOPBACK],
  ["https://0177.0.0.1/hook", "127.0.0.1", LOOPBACK],
  ["https://127.1/hook", "127.0.0.1", LOOPBACK],
  ["https://127\u30020\u30020\u30021/hook", "127.0.0.1", LOOPBACK],
  ["https://%31%32%37.0.0.1/hook", "127.0.0.1", LOOPBACK],
  // "This network", private, shared, link-local (cloud metadata).
  ["https://0.0.0.0/hook", "0.0.0.0", "is the unspecified address"],
  ["https://0/hook", "0.0.0.0", "is the unspecified address"],
  ["https://0.1.2.3/hook", "0.1.2.3", 'is a reserved address ("this network")'],
  ["https://10.0.0.1/hook", "10.0.0.1", PRIVATE],
  ["https://10.255.255.255/hook", "10.255.255.255", PRIVATE],
  ["https://172.16.0.1/hook", "172.16.0.1", PRIVATE],
  ["https://172.31.255.254/hook", "172.31.255.254", PRIVATE],
  ["https://192.168.1.1/hook", "192.168.1.1", PRIVATE],
  ["https://100.64.0.1/hook", "100.64.0.1", CGNAT],
  ["https://100.100.100.200/latest/meta-data", "100.100.100.200", CGNAT],
  ["https://100.127.255.254/hook", "100.127.255.254", CGNAT],
  ["https://169.254.169.254/latest/meta-data", "169.254.169.254", LINK_LOCAL],
  ["https://0251.0376.0251.0376/hook", "169.254.169.254", LINK_LOCAL],
  ["https://2852039166/hook", "169.254.169.254", LINK_LOCAL],
  ["https://169.254.0.1/hook", "169.254.0.1", LINK_LOCAL],
  // The rest of the IPv4 special-purpose registry.
  ["https://192.0.0.1/hook", "192.0.0.1", IETF],
  ["https://192.0.0.192/hook", "192.0.0.192", IETF],
  ["https://192.0.0.170/hook", "192.0.0.170", IETF],
  ["https://192.0.2.1/hook", "192.0.2.1", DOCS],
  ["https://198.51.100.7/hook", "198.51.100.7", DOCS],
  ["https://203.0.113.9/hook", "203.0.113.9", DOCS],
  ["https://192.31.196.1/hook", "192.31.196.1", "is a special-use address (AS112)"],
  ["https://192.175.48.1/hook", "192.175.48.1", "is a special-use address (AS112)"],
  ["https://192.52.193.1/hook", "192.52.193.1", "is a special-use address (AMT)"],
  ["https://192.88.99.1/hook", "192.88.99.1", "is a special-use address (6to4 relay anycast)"],
  ["https://198.18.0.1/hook", "198.18.0.1", BENCHMARKING],
  ["https://198.19.255.255/hook", "198.19.255.255", BENCHMARKING],
  ["https://224.0.0.1/hook", "224.0.0.1", MULTICAST],
  ["https://239.255.255.250/hook", "239.255.255.250", MULTICAST],
  ["https://240.0.0.1/hook", "240.0.0.1", "is a reserved address"],
  ["https://255.255.255.255/hook", "255.255.255.255", "is the broadcast address"],
  ["https://4294967295/hook", "255.255.255.255", "is the broadcast address"],
  // IPv6.
  ["https://[::1]/hook", "[::1]", LOOPBACK],
  ["https://[0:0:0:0:0:0:0:1]/hook", "[::1]", LOOPBACK],
  ["https://[::]/hook", "[::]", "is the unspecified address"],
  ["https://[fc00::1]/hook", "[fc00::1]", "is a private address (unique-local)"],
  ["https://[fd12:3456::1]/hook", "[fd12:3456::1]", "is a private address (unique-local)"],
  ["https://[fd00:ec2::254]/latest/meta-data", "[fd00:ec2::254]", "is a private address (unique-local)"],
  ["https://[fec0::1]/hook", "[fec0::1]", "is a private address (site-local)"],
  ["https://[fe80::1]/hook", "[fe80::1]", LINK_LOCAL],
  ["https://[febf::1]/hook", "[febf::1]", LINK_LOCAL],
  ["https://[ff02::1]/hook", "[ff02::1]", MULTICAST],
  ["https://[ff05::2]/hook", "[ff05::2]", MULTICAST],
  ["https://[2001:db8::1]/hook", "[2001:db8::1]", DOCS],
  ["https://[3fff::1]/hook", "[3fff::1]", DOCS],
  ["https://[2001::1]/hook", "[2001::1]", "is a special-use address (Teredo)"],
  ["https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "is a special-use address (Teredo)"],
  ["https://[2001:2::1]/hook", "[2001:2::1]", BENCHMARKING],
  ["https://[2001:10::1]/hook", "[2001:10::1]", IETF],
  ["https://[100::1]/hook", "[100::1]", "is a special-use address (discard-only)"],
  ["https://[64:ff9b:1::a00:1]/hook", "[64:ff9b:1::a00:1]", "is a special-use address (local-use NAT64)"],
  ["https://[5f00::1]/hook", "[5f00::1]", "is a special-use address (SRv6 SIDs)"],
  ["https://[2620:4f:8000::1]/hook", "[2620:4f:8000::1]", "is a special-use address (AS112)"],
  ["https://[4000::1]/hook", "[4000::1]", "is a reserved address"],
  // IPv6 that carries an IPv4 address: named by what the IPv4 is; refused even when it is public.
  ["https://[::ffff:127.0.0.1]/hook", "[::ffff:7f00:1]", "is a loopback address (IPv4-mapped 127.0.0.1)"],
  ["https://[::ffff:169.254.169.254]/hook", "[::ffff:a9fe:a9fe]", "is a link-local address (IPv4-mapped 169.254.169.254)"],
  ["https://[::ffff:10.0.0.1]/hook", "[::ffff:a00:1]", "is a private address (IPv4-mapped 10.0.0.1)"],
  ["https://[::ffff:8.8.8.8]/hook", "[::ffff:808:808]", "is an IPv4-mapped address (write 8.8.8.8 instead)"],
  ["https://[::127.0.0.1]/hook", "[::7f00:1]", "is a loopback address (IPv4-compatible 127.0.0.1)"],
  ["https://[::169.254.169.254]/hook", "[::a9fe:a9fe]", "is a link-local address (IPv4-compatible 169.254.169.254)"],
  ["https://[::8.8.8.8]/hook", "[::808:808]", "is an IPv4-compatible address (write 8.8.8.8 instead)"],
  ["https://[::ffff:0:7f00:1]/hook", "[::ffff:0:7f00:1]", "is a loopback address (IPv4-translated 127.0.0.1)"],
  ["https://[64:ff9b::a9fe:a9fe]/hook", "[64:ff9b::a9fe:a9fe]", "is a link-local address (NAT64 169.254.169.254)"],
  ["https://[64:ff9b::127.0.0.1]/hook", "[64:ff9b::7f00:1]", "is a loopback address (NAT64 127.0.0.1)"],
  ["https://[64:ff9b::808:808]/hook", "[64:ff9b::808:808]", "is a NAT64 address (write 8.8.8.8 instead)"],
  ["https://[2002:7f00:1::]/hook", "[2002:7f00:1::]", "is a loopback address (6to4 127.0.0.1)"],
  ["https://[2002:a9fe:a9fe::1]/hook", "[2002:a9fe:a9fe::1]", "is a link-local address (6to4 169.254.169.254)"],
  ["https://[2002:c0a8:101::1]/hook", "[2002:c0a8:101::1]", "is a private address (6to4 192.168.1.1)"],
  ["https://[2002:808:808::1]/hook", "[2002:808:808::1]", "is a 6to4 address (write 8.8.8.8 instead)"],
];

const REFUSED_NAMES: Array<[string, string, string]> = [
  ["https://localhost/hook", "localhost", "is a special-use name (.localhost)"],
  ["https://LOCALHOST:8443/hook", "localhost", "is a special-use name (.localhost)"],
  ["https://localhost./hook", "localhost.", "is a special-use name (.localhost)"],
  ["https://api.localhost/hook", "api.localhost", "is a special-use name (.localhost)"],
  ["https://\u24dbocalhost/hook", "localhost", "is a special-use name (.localhost)"],
  ["https://metadata/computeMetadata/v1/", "metadata", "is a single-label name, not a public DNS name"],
  ["https://instance-data/latest/meta-data", "instance-data", "is a single-label name, not a public DNS name"],
  ["https://router/hook", "router", "is a single-label name, not a public DNS name"],
  ["https://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal", "is a special-use name (.internal)"],
  ["https://metadata.google.internal./computeMetadata/v1/", "metadata.google.internal.", "is a special-use name (.internal)"],
  ["https://instance-data.ec2.internal/hook", "instance-data.ec2.internal", "is a special-use name (.internal)"],
  ["https://printer.local/hook", "printer.local", "is a special-use name (.local)"],
  ["https://kubernetes.default.svc.cluster.local/api", "kubernetes.default.svc.cluster.local", "is a special-use name (.local)"],
  ["https://kubernetes.default.svc/api", "kubernetes.default.svc", "is a special-use name (.svc)"],
  ["https://router.lan/hook", "router.lan", "is a special-use name (.lan)"],
  ["https://printer.home.arpa/hook", "printer.home.arpa", "is a special-use name (.home.arpa)"],
  ["https://1.0.0.127.in-addr.arpa/hook", "1.0.0.127.in-addr.arpa", "is a special-use name (.arpa)"],
  ["https://localhost.localdomain/hook", "localhost.localdomain", "is a special-use name (.localdomain)"],
  ["https://wiki.intranet/hook", "wiki.intranet", "is a special-use name (.intranet)"],
  ["https://git.corp/hook", "git.corp", "is a special-use name (.corp)"],
  ["https://nas.home/hook", "nas.home", "is a special-use name (.home)"],
  ["https://db.private/hook", "db.private", "is a special-use name (.private)"],
  ["https://hooks.invalid/hook", "hooks.invalid", "is a special-use name (.invalid)"],
  ["https://example3zk4rq.onion/hook", "example3zk4rq.onion", "is a special-use name (.onion)"],
  ["https://hooks.alt/hook", "hooks.alt", "is a special-use name (.alt)"],
  // Public names that resolve every subdomain to 127.0.0.1.
  ["https://localtest.me/hook", "localtest.me", "is under localtest.me, which resolves to a loopback address"],
  ["https://readme.localtest.me/hook", "readme.localtest.me", "is under localtest.me, which resolves to a loopback address"],
  ["https://lvh.me/hook", "lvh.me", "is under lvh.me, which resolves to a loopback address"],
  ["https://app.lvh.me/hook", "app.lvh.me", "is under lvh.me, which resolves to a loopback address"],
  ["https://vcap.me/hook", "vcap.me", "is under vcap.me, which resolves to a loopback address"],
  ["https://a.localhost.direct/hook", "a.localhost.direct", "is under localhost.direct, which resolves to a loopback address"],
  ["https://a.localho.st/hook", "a.localho.st", "is under localho.st, which resolves to a loopback address"],
  // Names that spell a private address, for wildcard DNS services (and anywhere else).
  ["https://127.0.0.1.nip.io/hook", "127.0.0.1.nip.io", "spells the address 127.0.0.1, a loopback address"],
  ["https://app.10.0.0.1.nip.io/hook", "app.10.0.0.1.nip.io", "spells the address 10.0.0.1, a private address"],
  ["https://169.254.169.254.sslip.io/hook", "169.254.169.254.sslip.io", "spells the address 169.254.169.254, a link-local address"],
  ["https://10-0-0-1.sslip.io/hook", "10-0-0-1.sslip.io", "spells the address 10.0.0.1, a private address"],
  ["https://www-192-168-1-1.sslip.io/hook", "www-192-168-1-1.sslip.io", "spells the address 192.168.1.1, a private address"],
  ["https://7f000001.nip.io/hook", "7f000001.nip.io", "spells the address 127.0.0.1, a loopback address"],
  ["https://app-c0a80101.nip.io/hook", "app-c0a80101.nip.io", "spells the address 192.168.1.1, a private address"],
  ["https://--1.sslip.io/hook", "--1.sslip.io", "spells the address ::1, a loopback address"],
  ["https://fe80--1.sslip.io/hook", "fe80--1.sslip.io", "spells the address fe80::1, a link-local address"],
  ["https://127.0.0.1.xip.io/hook", "127.0.0.1.xip.io", "spells the address 127.0.0.1, a loopback address"],
  ["https://127.0.0.1.traefik.me/hook", "127.0.0.1.traefik.me", "spells the address 127.0.0.1, a loopback address"],
  ["https://10.0.0.1.example.com/hook", "10.0.0.1.example.com", "spells the address 10.0.0.1, a private address"],
  ["https://ip-10-0-0-1.example.com/hook", "ip-10-0-0-1.example.com", "spells the address 10.0.0.1, a private address"],
];

const REFUSED_OTHERWISE: Array<[string, string]> = [
  ["http://hooks.example.com/hook", "the webhook URL must use https"],
  ["ftp://hooks.example.com/hook", "the webhook URL must use https"],
  ["file:///etc/passwd", "the webhook URL must use https"],
  ["gopher://127.0.0.1:6379/_INFO", "the webhook URL must use https"],
  ["https://user:pass@hooks.example.com/hook", "the webhook URL must not contain credentials"],
  ["https://hooks.example.com:8080/hook", "the webhook port 8080 is not allowed (allowed: 443, 8443)"],
  ["https://hooks.example.com:80/hook", "the webhook port 80 is not allowed (allowed: 443, 8443)"],
  ["https://hooks.example.com:22/hook", "the webhook port 22 is not allowed (allowed: 443, 8443)"],
  ["https://8.8.8.8:6379/hook", "the webhook port 6379 is not allowed (allowed: 443, 8443)"],
  ["https://[2606:4700:4700::1111]:25/hook", "the webhook port 25 is not allowed (allowed: 443, 8443)"],
];

const ACCEPTED = [
  "https://hooks.example.com/x",
  "https://hooks.example.com:8443/a/b?token=x#frag",
  "https://hooks.example.com:443/x",
  "https://hooks.example.com:0443/x",
  "https://HOOKS.Example.COM./x",
  "https://93.184.216.34/",
  "https://8.8.8.8/hook",
  "https://172.32.0.1/hook",
  "https://192.169.0.1/hook",
  "https://100.128.0.1/hook",
  "https://198.20.0.1/hook",
  "https://[2606:2800:220:1:248:1893:25c8:1946]/",
  "https://[2606:4700:4700::1111]/hook",
  // RFC 6761 asks applications not to treat .test and .example specially; public DNS never answers for them.
  "https://hooks.test/exports",
  "https://b\u00fccher.example/hook",
  // Names that spell a public address, and hex-looking labels outside the wildcard services.
  "https://ec2-54-1-2-3.compute-1.amazonaws.com/hook",
  "https://93.184.216.34.nip.io/hook",
  "https://deadbeef.example.com/hook",
  "https://0a000001.example.com/hook",
  "https://localhost.example.com/hook",
  "https://my-local-hooks.example.com/hook",
];

describe("the SSRF table: webhook targets refused in production", () => {
  it("has at least 100 hostile targets", () => {
    expect(REFUSED_ADDRESSES.length + REFUSED_NAMES.length + REFUSED_OTHERWISE.length).toBeGreaterThanOrEqual(100);
  });

  it.each(REFUSED_ADDRESSES)("refuses %s: %s %s", (url, name, why) => {
    expect(checkWebhookUrl(url, PROD)).toBe(host(name, why));
  });

  it.each(REFUSED_NAMES)("refuses %s: %s %s", (url, name, why) => {
    expect(checkWebhookUrl(url, PROD)).toBe(host(name, why));
  });

  it.each(REFUSED_OTHERWISE)("refuses %s: %s", (url, message) => {
    expect(checkWebhookUrl(url, PROD)).toBe(message);
  });

  it.each(ACCEPTED)("accepts the public target %s", (url) => {
    expect(checkWebhookUrl(url, PROD)).toBeNull();
  });
});

describe("classifying an address by its bytes (also used for DNS answers)", () => {
  it.each([
    ["93.184.216.34", null],
    ["2606:2800:220:1:248:1893:25c8:1946", null],
    ["10.1.2.3", "a private address"],
    ["::ffff:10.1.2.3", "a private address (IPv4-mapped 10.1.2.3)"],
    ["0:0:0:0:0:ffff:0a01:0203", "a private address (IPv4-mapped 10.1.2.3)"],
    ["FE80::1", "a link-local address"],
    ["fe80::1%eth0", "a scoped (zone) address"],
    ["127.000.000.001", "not an IP address"],
    ["localhost", "not an IP address"],
    ["", "not an IP address"],
  ])("%s is %s", (address, what) => {
    expect(describeAddress(address)).toBe(what);
  });
});
