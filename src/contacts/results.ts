import { ApiError, type ErrorCode } from "../api/errors";
import type { ContactResult, RejectionKind } from "./write";

const STATUS_OF_REJECTION: Record<RejectionKind, ErrorCode> = {
  invalid: "BAD_REQUEST",
  exists: "CONFLICT",
  missing: "NOT_FOUND",
  raced: "CONFLICT",
};

/** The one contact of a single-contact call: its subscriber id and what happened, or its rejection as an error. */
export function singleResult(result: ContactResult): { subscriberid: string; result: "added" | "updated" } {
  if (result.result === "rejected") throw new ApiError(STATUS_OF_REJECTION[result.kind], result.reason);
  return { subscriberid: String(result.subscriberid), result: result.result };
}
