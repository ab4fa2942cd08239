/** The outcome of one delivery attempt. */
export type DeliveryResult =
  | { ok: true; detail: string }
  | {
      ok: false;
      /** What is stored on the job and shown as `lasterror`. */
      error: string;
      /** false for failures that no retry can fix (a suppressed recipient, say). */
      retryable: boolean;
      /** A wait the receiver asked for (Retry-After), in seconds. */
      retryAfterSeconds?: number;
    };

/**
 * The categories a failed webhook delivery is stored as. They say what kind of failure it was and no more:
 * the exact status, the exception text or the address that answered would let a caller use the service to
 * probe hosts and ports. The details go to the log, under the reference the stored text carries.
 */
export type WebhookFailureCategory =
  | "timeout"
  | "connection failed"
  | "HTTP 3xx: redirects are not followed"
  | "HTTP 4xx"
  | "HTTP 5xx"
  | "refused: URL not allowed"
  | "refused: port not allowed"
  | "refused: private address"
  | "refused: special-use name";

/** A short random reference (8 hex digits) that ties a stored error to its log line. */
export function errorReference(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A failed attempt: logs the details with a new reference and returns the category with that reference,
 * e.g. "connection failed (ref 3f2a9c01)". Raw exception text never reaches the stored result.
 */
export function webhookFailure(
  category: WebhookFailureCategory,
  logDetail: string,
  options: { retryable: boolean; retryAfterSeconds?: number; context?: string },
): DeliveryResult {
  const ref = errorReference();
  console.warn(`webhook delivery failed${options.context ? ` (${options.context})` : ""} ref ${ref}: ${category}: ${logDetail}`);
  return {
    ok: false,
    retryable: options.retryable,
    error: `${category} (ref ${ref})`,
    ...(options.retryAfterSeconds !== undefined ? { retryAfterSeconds: options.retryAfterSeconds } : {}),
  };
}
