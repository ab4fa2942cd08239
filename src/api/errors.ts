import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The closed set of ways a request can fail, each with its HTTP status. */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  TOO_MANY_REQUESTS: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ApiErrorOptions {
  cause?: unknown;
  /** Whole seconds after which the client may try again; `onError` sends it as the `Retry-After` header. */
  retryAfterSeconds?: number;
}

/** The one error type of the API. `onError` in src/api/app.ts turns it into the Pinpointe ERROR envelope. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options?: ApiErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ApiError";
    this.code = code;
    this.retryAfterSeconds =
      options?.retryAfterSeconds === undefined ? undefined : Math.max(0, Math.ceil(options.retryAfterSeconds));
  }

  get status(): ContentfulStatusCode {
    return ERROR_STATUS[this.code];
  }
}
