/** The outcome of one delivery attempt. */
export type DeliveryResult =
  | { ok: true; detail: string }
  | {
      ok: false;
      error: string;
      /** false for failures that no retry can fix (a suppressed recipient, say). */
      retryable: boolean;
      /** A wait the receiver asked for (Retry-After), in seconds. */
      retryAfterSeconds?: number;
    };
