import { Webhook } from "standardwebhooks";
import { dohResolver, resolveAddresses, type DnsResolver } from "./dns";
import type { JobEvent } from "./event";
import { webhookFailure, type DeliveryResult } from "./result";
import { classifyHost, describeAddress, echo, inspectWebhookUrl, type WebhookPolicy } from "./webhook_url";

export interface WebhookDelivery {
  url: string;
  /** The account's whsec_ secret. */
  secret: string;
  /** Stays the same across retries, so receivers can drop duplicates. */
  messageId: string;
  event: JobEvent;
  timeoutMs: number;
  now: Date;
  /** Which targets are allowed. The URL is checked again before every attempt, with today's policy. */
  policy: WebhookPolicy;
  fetch?: typeof fetch;
  /** Looks up the host's addresses for the DNS check (policy.dnsCheck). Default: DNS-over-HTTPS. */
  resolveDns?: DnsResolver;
}

/** Parses Retry-After (seconds or an HTTP date). */
function retryAfterSeconds(header: string | null, now: Date): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}

/**
 * Refuses a target the policy does not allow: its URL (checked when the job was accepted, but the policy or
 * the checks may have changed since), and, with the DNS check on, a name whose A or AAAA answers include a
 * private or special-use address. Returns a failed result, or null to go ahead.
 */
async function refuseTarget(delivery: WebhookDelivery): Promise<DeliveryResult | null> {
  const context = delivery.messageId;
  const problem = inspectWebhookUrl(delivery.url, delivery.policy);
  if (problem) return webhookFailure(problem.category, problem.message, { retryable: false, context });
  const { policy } = delivery;
  const host = classifyHost(new URL(delivery.url).hostname);
  if (!policy.dnsCheck || policy.allowPrivate || host.kind !== "name") return null;
  let addresses: string[];
  try {
    addresses = await resolveAddresses(delivery.resolveDns ?? dohResolver(), host.host);
  } catch (error) {
    // The resolver or DNS is down: like a fetch that cannot connect, worth another try later.
    const detail = error instanceof Error ? error.message : String(error);
    return webhookFailure("connection failed", `DNS lookup of "${echo(host.host)}" failed: ${echo(detail)}`, { retryable: true, context });
  }
  if (addresses.length === 0) {
    return webhookFailure("connection failed", `"${echo(host.host)}" has no A or AAAA records`, { retryable: true, context });
  }
  for (const address of addresses) {
    const what = describeAddress(address);
    if (what) {
      // Permanent: a name that points inside is a misconfiguration or an attack, and retrying it would give a
      // rebinding attacker more tries at the window between our lookup and fetch's own.
      return webhookFailure("refused: private address", `"${echo(host.host)}" resolves to ${echo(address)}, ${what}`, {
        retryable: false,
        context,
      });
    }
  }
  return null;
}

/**
 * POSTs the event, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature v1).
 * Only a 2xx answer counts; redirects are not followed; each attempt has a timeout. The target is checked
 * first (refuseTarget). A failure is stored as a category with a reference; its details go to the log.
 */
export async function sendWebhook(delivery: WebhookDelivery): Promise<DeliveryResult> {
  const refused = await refuseTarget(delivery);
  if (refused) return refused;
  const context = delivery.messageId;
  const body = JSON.stringify(delivery.event);
  const signature = new Webhook(delivery.secret).sign(delivery.messageId, delivery.now, body);
  let response: Response;
  try {
    response = await (delivery.fetch ?? fetch)(delivery.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(delivery.timeoutMs),
      headers: {
        "content-type": "application/json",
        "user-agent": "segment-export-webhooks/1",
        "webhook-id": delivery.messageId,
        "webhook-timestamp": String(Math.floor(delivery.now.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body,
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return timedOut
      ? webhookFailure("timeout", `no answer within ${delivery.timeoutMs} ms`, { retryable: true, context })
      : webhookFailure("connection failed", echo(detail), { retryable: true, context });
  }
  // The body is not needed; cancel it so the connection is freed.
  await response.body?.cancel();
  const status = response.status;
  if (status >= 200 && status < 300) return { ok: true, detail: `HTTP ${status}` };
  const logDetail = `HTTP ${status} from ${echo(new URL(delivery.url).host)}`;
  if (status >= 300 && status < 400) {
    return webhookFailure("HTTP 3xx: redirects are not followed", logDetail, { retryable: true, context });
  }
  const wait = status === 429 || status === 503 ? retryAfterSeconds(response.headers.get("retry-after"), delivery.now) : undefined;
  return webhookFailure(status < 500 ? "HTTP 4xx" : "HTTP 5xx", logDetail, {
    retryable: true,
    context,
    ...(wait !== undefined ? { retryAfterSeconds: wait } : {}),
  });
}
