/**
 * Errors of the domain (the rule compiler, the export engine), as opposed to the API's HTTP errors
 * (src/api/errors.ts). Each says whether trying again could help: the export consumer fails a job at once on
 * a permanent one, and retries a retryable one with backoff. The API edge maps them to the envelope.
 */
export const DOMAIN_ERROR_CODES = {
  /** A segment's stored rules cannot run (unknown field, wrong operator, out-of-range value…). */
  RULES_INVALID: { retryable: false },
  /** The query would exceed a D1 limit (bound parameters, SQL length). */
  QUERY_TOO_LARGE: { retryable: false },
  /** A stored checkpoint cannot be resumed (it is damaged). */
  CHECKPOINT_DAMAGED: { retryable: false },
  /** An import's file cannot be imported at all (its CSV header names no email column, or unknown fields). */
  IMPORT_INVALID: { retryable: false },
  /** A split export would need more files than one export may have (MAX_FILES_PER_EXPORT). */
  EXPORT_TOO_MANY_FILES: { retryable: false },
  /**
   * The account's data shard cannot be reached as configured: the account has no directory entry, or the
   * entry names a shard this worker has no D1 binding for. The operator's to fix (a deploy), never the
   * client's: the API answers 503, and an export retries until the configuration is repaired.
   */
  SHARD_UNAVAILABLE: { retryable: true, operator: true },
  /**
   * The account is being moved to another shard and its writes are paused until the switch (seconds to a
   * few minutes): the API answers 503 with Retry-After; reads go on.
   */
  ACCOUNT_MOVING: { retryable: true, retryAfterSeconds: 30 },
} as const satisfies Record<string, { retryable: boolean; operator?: boolean; retryAfterSeconds?: number }>;

export type DomainErrorCode = keyof typeof DOMAIN_ERROR_CODES;

export class DomainError extends Error {
  readonly code: DomainErrorCode;
  readonly retryable: boolean;
  /** The operator's to fix (configuration), not the client's: not shown to clients. */
  readonly operator: boolean;
  /** A passing condition the client should wait out (the API answers 503 with this Retry-After). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: DomainErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DomainError";
    this.code = code;
    const kind: { retryable: boolean; operator?: boolean; retryAfterSeconds?: number } = DOMAIN_ERROR_CODES[code];
    this.retryable = kind.retryable;
    this.operator = kind.operator ?? false;
    this.retryAfterSeconds = kind.retryAfterSeconds;
  }
}

/**
 * An error as it may be logged: its kind and message, without what must not reach a log. drizzle's query
 * errors carry the whole SQL text and every bound parameter (subscriber data, tokens' hashes): only their
 * cause, D1's own message, is kept.
 */
export function describeForLog(error: unknown): string {
  if (!(error instanceof Error)) return String(error).slice(0, 500);
  if (error.name === "DrizzleQueryError" || error.message.startsWith("Failed query:")) {
    const cause = error.cause instanceof Error ? error.cause.message : "no cause given";
    return `D1 query failed: ${cause.slice(0, 500)}`;
  }
  return `${error.name}: ${error.message.slice(0, 500)}`;
}
