import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { cancelExport } from "../export/cancel";
import { jobIdDetails, jobStatuses } from "./segments_get_segment_subscribers_async_status";

/**
 * Segments / CancelSegmentSubscribersAsync: stops a queued or running export. Its partial upload is aborted,
 * it ends "canceled", and a `segment_export.canceled` notification goes to its webhook or email. A slice at work
 * on it stops at its next write, within seconds. Answers the job's status, as the status call would.
 */
export const cancelSegmentSubscribersAsync = defineMethod({
  requesttype: "Segments",
  requestmethod: "CancelSegmentSubscribersAsync",
  summary: "Stops a queued or running export; a segment_export.canceled notification is sent.",
  details: jobIdDetails,
  example: { jobid: "6f1c5e0e-2b8e-4a55-9d43-3f1d7c0e9a10" },
  async handle({ env, db, account, config }, { jobid }) {
    const outcome = await cancelExport(env, db, account.id, jobid, Date.now());
    if (outcome.kind === "missing") throw new ApiError("NOT_FOUND", `details.jobid: no export job ${quote(jobid)} in this account`);
    if (outcome.kind === "finished") {
      throw new ApiError("CONFLICT", `details.jobid: export ${outcome.job.id} is already ${outcome.job.state}; only a queued or running export can be canceled`);
    }
    const [status] = await jobStatuses(db, [outcome.job], config);
    return status!;
  },
});
