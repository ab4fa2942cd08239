import { Webhook } from "standardwebhooks";
import type { ExportEvent } from "./event";
import type { DeliveryResult } from "./result";

export interface WebhookDelivery {
  url: string;
  /** The account's whsec_ secret. */
  secret: string;
  /** Stays the same across retries, so receivers can drop duplicates. */
  messageId: string;
  event: ExportEvent;
  timeoutMs: number;
  now: Date;
  fetch?: typeof fetch;
}

/** Parses Retry-After (seconds or an HTTP date). */
function retryAfterSeconds(header: string | null, now: Date): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}

/**
 * POSTs the event, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature v1).
 * Only a 2xx answer counts; redirects are not followed; each attempt has a timeout.
 */
export async function sendWebhook(delivery: WebhookDelivery): Promise<DeliveryResult> {
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
    return {
      ok: false,
      retryable: true,
      error: timedOut
        ? `no answer within ${delivery.timeoutMs} ms`
        : `request failed: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  // The body is not needed; cancel it so the connection is freed.
  await response.body?.cancel();
  if (response.status >= 200 && response.status < 300) return { ok: true, detail: `HTTP ${response.status}` };
  if (response.status >= 300 && response.status < 400) {
    return { ok: false, retryable: true, error: `HTTP ${response.status}: redirects are not followed` };
  }
  const wait =
    response.status === 429 || response.status === 503
      ? retryAfterSeconds(response.headers.get("retry-after"), delivery.now)
      : undefined;
  return { ok: false, retryable: true, error: `HTTP ${response.status}`, ...(wait !== undefined ? { retryAfterSeconds: wait } : {}) };
}
