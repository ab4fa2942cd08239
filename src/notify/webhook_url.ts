/**
 * Checks a webhook target. Production accepts only https URLs to public hosts: no credentials in the URL,
 * no loopback, private, link-local or metadata addresses. ALLOW_HTTP_WEBHOOKS (local development) lifts both.
 * Returns what is wrong, or null.
 */
export function checkWebhookUrl(value: string, allowLocal: boolean): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not an absolute URL`;
  }
  if (url.protocol !== "https:" && !(allowLocal && url.protocol === "http:")) {
    return allowLocal ? "the webhook URL must use http or https" : "the webhook URL must use https";
  }
  if (url.username || url.password) return "the webhook URL must not contain credentials";
  if (!allowLocal && isInternalHost(url.hostname)) {
    return `the webhook host "${url.hostname}" is a loopback, private or link-local address`;
  }
  return null;
}

function isInternalHost(hostname: string): boolean {
  // "localhost." is the same host as "localhost": drop the root label's dot before comparing names.
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal")) {
    return true;
  }
  const v4 = host.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      a >= 224
    );
  }
  if (host.includes(":")) {
    return host === "::" || host === "::1" || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith("::ffff:");
  }
  return false;
}
