import { z } from "zod";

/** `next` once there is nothing more, as Pinpointe's GetSegmentSubscribers says it; the job list does the same. */
export const LAST_PAGE = "0";

/** A page size: a whole number from 1 to `max`, `fallback` when absent. */
export const pageLimit = (max: number, fallback: number) =>
  z.coerce
    .number({ error: `must be a whole number from 1 to ${max}` })
    .int(`must be a whole number from 1 to ${max}`)
    .min(1, `must be a whole number from 1 to ${max}`)
    .max(max, `must be at most ${max}`)
    .default(fallback);
