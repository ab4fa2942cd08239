import ipaddr from "ipaddr.js";
import type { Config } from "../config";

/**
 * Which webhook targets are allowed. Production: https only, public hosts only, ports 443 and 8443, and the
 * host's DNS answers checked before each delivery. See docs/security_webhooks.md.
 */
export interface WebhookPolicy {
  /** ALLOW_HTTP_WEBHOOKS: http is allowed as well as https (the scheme only). */
  allowHttp: boolean;
  /** ALLOW_PRIVATE_WEBHOOKS: loopback, private and other special-use addresses and names are allowed (dev only). */
  allowPrivate: boolean;
  /** WEBHOOK_ALLOWED_PORTS: the ports a public target may use (a scheme's default port counts). */
  allowedPorts: readonly number[];
  /** WEBHOOK_DNS_CHECK: at delivery, a named host's A/AAAA answers must all be public. */
  dnsCheck: boolean;
}

export const PRODUCTION_WEBHOOK_POLICY: WebhookPolicy = Object.freeze({
  allowHttp: false,
  allowPrivate: false,
  allowedPorts: Object.freeze([443, 8443]),
  dnsCheck: true,
});

export const webhookPolicy = (
  config: Pick<Config, "ALLOW_HTTP_WEBHOOKS" | "ALLOW_PRIVATE_WEBHOOKS" | "WEBHOOK_ALLOWED_PORTS" | "WEBHOOK_DNS_CHECK">,
): WebhookPolicy => ({
  allowHttp: config.ALLOW_HTTP_WEBHOOKS,
  allowPrivate: config.ALLOW_PRIVATE_WEBHOOKS,
  allowedPorts: config.WEBHOOK_ALLOWED_PORTS,
  dnsCheck: config.WEBHOOK_DNS_CHECK,
});

/** Why a URL is refused: the message for the client, and the category stored as a delivery's lasterror. */
export interface WebhookUrlProblem {
  message: string;
  category: "refused: URL not allowed" | "refused: port not allowed" | "refused: private address" | "refused: special-use name";
}

/** At most this much of the caller's input is quoted back in a message. */
const MAX_ECHO = 100;

export const echo = (text: string): string => (text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}…` : text);

const DEFAULT_PORTS: Record<string, number> = { "https:": 443, "http:": 80 };

/**
 * Checks a webhook target against the policy. Returns what is wrong, or null. The host is judged by its
 * address bytes (after the URL parser has normalized 2130706433, 0x7f.1, 0177.0.0.1 … to dotted quads) and,
 * for names, by special-use suffixes, single labels, loopback wildcard domains and embedded private IPv4s.
 */
export function checkWebhookUrl(value: string, policy: Omit<WebhookPolicy, "dnsCheck">): string | null {
  return inspectWebhookUrl(value, policy)?.message ?? null;
}

export function inspectWebhookUrl(value: string, policy: Omit<WebhookPolicy, "dnsCheck">): WebhookUrlProblem | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { message: `"${echo(value)}" is not an absolute URL`, category: "refused: URL not allowed" };
  }
  if (url.protocol !== "https:" && !(policy.allowHttp && url.protocol === "http:")) {
    return {
      message: policy.allowHttp ? "the webhook URL must use http or https" : "the webhook URL must use https",
      category: "refused: URL not allowed",
    };
  }
  if (url.username || url.password) {
    return { message: "the webhook URL must not contain credentials", category: "refused: URL not allowed" };
  }
  const host = classifyHost(url.hostname);
  if (host.refusal) {
    // Private and special-use targets: refused unless ALLOW_PRIVATE_WEBHOOKS (local development), which also
    // lifts the port list for them (a local receiver listens wherever it likes).
    if (policy.allowPrivate) return null;
    return {
      message: `the webhook host "${echo(url.hostname)}" ${host.refusal}`,
      category: host.kind === "name" ? "refused: special-use name" : "refused: private address",
    };
  }
  const port = url.port === "" ? DEFAULT_PORTS[url.protocol]! : Number(url.port);
  if (!policy.allowedPorts.includes(port)) {
    return {
      message: `the webhook port ${port} is not allowed (allowed: ${policy.allowedPorts.join(", ")})`,
      category: "refused: port not allowed",
    };
  }
  return null;
}

export interface HostVerdict {
  kind: "ipv4" | "ipv6" | "name";
  /** The host without brackets or a trailing dot: an address for ipv4/ipv6, a lower-case name otherwise. */
  host: string;
  /** Why the host may not be a target ("is a private address"), or undefined if it may. */
  refusal?: string;
}

/** Classifies a URL's hostname (as `new URL()` gives it: lower case, punycode, brackets around IPv6). */
export function classifyHost(hostname: string): HostVerdict {
  if (hostname.startsWith("[")) {
    const host = hostname.slice(1, -1);
    const what = describeAddress(host);
    return { kind: "ipv6", host, ...(what ? { refusal: `is ${what}` } : {}) };
  }
  // The URL parser turns every all-numeric last label into a dotted quad (or fails), so this is exact.
  if (ipaddr.IPv4.isValidFourPartDecimal(hostname)) {
    const what = describeAddress(hostname);
    return { kind: "ipv4", host: hostname, ...(what ? { refusal: `is ${what}` } : {}) };
  }
  const host = hostname.replace(/\.$/, "");
  const refusal = nameRefusal(host);
  return { kind: "name", host, ...(refusal ? { refusal } : {}) };
}

// ---------------------------------------------------------------------------------------------------------
// Addresses: the IANA IPv4 and IPv6 Special-Purpose Address Registries, plus deprecated special ranges.
// Anything listed is refused, whether or not the registry calls it "globally reachable": none of it is a
// place a webhook receiver lives. Order matters: the first match names the reason.

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];
const cidr = (text: string): Range => ipaddr.parseCIDR(text);

const IPV4_SPECIAL: Array<[Range, string]> = [
  [cidr("0.0.0.0/32"), "the unspecified address"],
  [cidr("0.0.0.0/8"), "a reserved address (\"this network\")"],
  [cidr("10.0.0.0/8"), "a private address"],
  [cidr("100.64.0.0/10"), "a private address (shared, carrier-grade NAT)"],
  [cidr("127.0.0.0/8"), "a loopback address"],
  [cidr("169.254.0.0/16"), "a link-local address"],
  [cidr("172.16.0.0/12"), "a private address"],
  [cidr("192.0.0.0/24"), "a special-use address (IETF protocol assignments)"],
  [cidr("192.0.2.0/24"), "a documentation address"],
  [cidr("192.31.196.0/24"), "a special-use address (AS112)"],
  [cidr("192.52.193.0/24"), "a special-use address (AMT)"],
  [cidr("192.88.99.0/24"), "a special-use address (6to4 relay anycast)"],
  [cidr("192.168.0.0/16"), "a private address"],
  [cidr("192.175.48.0/24"), "a special-use address (AS112)"],
  [cidr("198.18.0.0/15"), "a benchmarking address"],
  [cidr("198.51.100.0/24"), "a documentation address"],
  [cidr("203.0.113.0/24"), "a documentation address"],
  [cidr("224.0.0.0/4"), "a multicast address"],
  [cidr("255.255.255.255/32"), "the broadcast address"],
  [cidr("240.0.0.0/4"), "a reserved address"],
];

/** IPv6 forms that carry an IPv4 address, and where: refused always, naming the IPv4 if it is special. */
const IPV6_EMBEDDING: Array<[Range, string, (parts: number[]) => number[]]> = [
  [cidr("::ffff:0:0/96"), "IPv4-mapped", (p) => [p[6]!, p[7]!]],
  [cidr("::ffff:0:0:0/96"), "IPv4-translated", (p) => [p[6]!, p[7]!]],
  [cidr("64:ff9b::/96"), "NAT64", (p) => [p[6]!, p[7]!]],
  [cidr("2002::/16"), "6to4", (p) => [p[1]!, p[2]!]],
];

const IPV6_SPECIAL: Array<[Range, string]> = [
  [cidr("::/128"), "the unspecified address"],
  [cidr("::1/128"), "a loopback address"],
  [cidr("64:ff9b:1::/48"), "a special-use address (local-use NAT64)"],
  [cidr("100::/64"), "a special-use address (discard-only)"],
  [cidr("100:0:0:1::/64"), "a special-use address (dummy prefix)"],
  [cidr("2001::/32"), "a special-use address (Teredo)"],
  [cidr("2001:2::/48"), "a benchmarking address"],
  [cidr("2001::/23"), "a special-use address (IETF protocol assignments)"],
  [cidr("2001:db8::/32"), "a documentation address"],
  [cidr("2620:4f:8000::/48"), "a special-use address (AS112)"],
  [cidr("3fff::/20"), "a documentation address"],
  [cidr("5f00::/16"), "a special-use address (SRv6 SIDs)"],
  [cidr("fc00::/7"), "a private address (unique-local)"],
  [cidr("fe80::/10"), "a link-local address"],
  [cidr("fec0::/10"), "a private address (site-local)"],
  [cidr("ff00::/8"), "a multicast address"],
];

/** Only 2000::/3 is global unicast; everything else in IPv6 is reserved or covered above. */
const IPV6_GLOBAL_UNICAST = cidr("2000::/3");

const matches = (address: ipaddr.IPv4 | ipaddr.IPv6, range: Range) =>
  address.kind() === range[0].kind() && address.match(range);

/**
 * What kind of special address this is ("a loopback address", …), or null for a public unicast address.
 * Takes a dotted-quad IPv4 or an IPv6 address (no brackets). Anything else is not a usable address.
 */
export function describeAddress(text: string): string | null {
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) address = ipaddr.IPv4.parse(text);
  else if (text.includes(":") && ipaddr.IPv6.isValid(text)) address = ipaddr.IPv6.parse(text);
  else return "not an IP address";
  if (address.kind() === "ipv4") {
    return IPV4_SPECIAL.find(([range]) => matches(address, range))?.[1] ?? null;
  }
  const v6 = address as ipaddr.IPv6;
  if (v6.zoneId) return "a scoped (zone) address";
  for (const [range, form, extract] of IPV6_EMBEDDING) {
    if (matches(v6, range)) return embedded(form, extract(v6.parts));
  }
  const special = IPV6_SPECIAL.find(([range]) => matches(v6, range))?.[1];
  if (special) return special;
  // ::a.b.c.d, IPv4-compatible (deprecated): what is left of ::/96 once :: and ::1 are taken out.
  if (v6.parts.slice(0, 6).every((p) => p === 0)) return embedded("IPv4-compatible", [v6.parts[6]!, v6.parts[7]!]);
  if (!matches(v6, IPV6_GLOBAL_UNICAST)) return "a reserved address";
  return null;
}

function embedded(form: string, halves: number[]): string {
  const v4 = [halves[0]! >> 8, halves[0]! & 255, halves[1]! >> 8, halves[1]! & 255].join(".");
  const what = describeAddress(v4);
  const article = /^[aeiouAEIOU]/.test(form) ? "an" : "a";
  return what ? `${what} (${form} ${v4})` : `${article} ${form} address (write ${v4} instead)`;
}

// ---------------------------------------------------------------------------------------------------------
// Names.

/**
 * Suffixes that never name a public host. RFC 6761 (localhost, invalid), RFC 6762 (local: mDNS, which also
 * covers Kubernetes' cluster.local), RFC 8375 (home.arpa; all of .arpa is infrastructure), RFC 7686 (onion),
 * RFC 9476 (alt), ICANN's private-use .internal, and names private networks commonly use (lan, localdomain,
 * intranet, corp, home, private, svc for Kubernetes services). .test and .example are not here: RFC 6761 asks
 * applications not to treat them specially, public DNS never answers for them, and the delivery-time DNS
 * check refuses whatever a resolver might say.
 */
const SPECIAL_SUFFIXES = [
  "localhost",
  "local",
  "internal",
  "home.arpa",
  "arpa",
  "invalid",
  "onion",
  "alt",
  "lan",
  "localdomain",
  "intranet",
  "corp",
  "home",
  "private",
  "svc",
];

/** Public domains whose every name resolves to 127.0.0.1, used for local development. */
const LOOPBACK_DOMAINS = ["localtest.me", "lvh.me", "vcap.me", "lacolhost.com", "localho.st", "localhost.direct", "fuf.me"];

/** Wildcard DNS services that answer with the address spelled in the name (dotted, dashed or hex). */
const WILDCARD_IP_DOMAINS = ["nip.io", "sslip.io", "xip.io", "traefik.me"];

const under = (host: string, domain: string) => host === domain || host.endsWith(`.${domain}`);

function nameRefusal(host: string): string | undefined {
  const suffix = SPECIAL_SUFFIXES.find((s) => under(host, s));
  if (suffix) return `is a special-use name (.${suffix})`;
  if (host === "" || !host.includes(".")) return "is a single-label name, not a public DNS name";
  const loopback = LOOPBACK_DOMAINS.find((d) => under(host, d));
  if (loopback) return `is under ${loopback}, which resolves to a loopback address`;
  const wildcard = WILDCARD_IP_DOMAINS.find((d) => under(host, d));
  for (const address of embeddedAddresses(host, wildcard)) {
    const what = describeAddress(address);
    if (what) return `spells the address ${address}, ${what}`;
  }
  return undefined;
}

/**
 * Addresses spelled in a name, as wildcard DNS services read them: four decimal labels (10.0.0.1.nip.io),
 * four dash-separated numbers in a label (ip-10-0-0-1.example.com); and, under a known wildcard service
 * only (elsewhere these spellings are too common by chance), eight hex digits (0a000001.nip.io) and IPv6
 * with dashes for colons (--1.sslip.io).
 */
function embeddedAddresses(host: string, wildcard: string | undefined): string[] {
  const found: string[] = [];
  const labels = host.split(".");
  const octet = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
  const decimal = (s: string) => String(Number(s));
  for (let i = 0; i + 4 <= labels.length; i++) {
    const four = labels.slice(i, i + 4);
    if (four.every((l) => /^\d{1,3}$/.test(l) && octet.test(decimal(l)))) found.push(four.map(decimal).join("."));
  }
  for (const label of labels) {
    for (const m of label.matchAll(/(?<![\d])(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(?![\d])/g)) {
      const four = m.slice(1, 5).map(decimal);
      if (four.every((o) => octet.test(o))) found.push(four.join("."));
    }
  }
  if (wildcard) {
    const own = labels.slice(0, labels.length - wildcard.split(".").length);
    for (const label of own) {
      const hex = label.match(/(?:^|-)([0-9a-f]{8})$/);
      if (hex) {
        const n = parseInt(hex[1]!, 16);
        found.push([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join("."));
      }
      // sslip.io: IPv6 with dashes for colons, e.g. --1.sslip.io is ::1.
      const v6 = label.replace(/-/g, ":");
      if (label.includes("--") && ipaddr.IPv6.isValid(v6)) found.push(ipaddr.IPv6.parse(v6).toString());
    }
  }
  return found;
}
