import { z } from "zod";

/** `next` once there is nothing more, as Pinpointe's GetSegmentSubscribers says it; the job list does the same. */
export const LAST_PAGE = "0";

/**
 * A whole number from `min` to `max` (a number, or digits in a string), e.g. a size in bytes; the message says
 * the range. Not coerced from booleans, empty strings or decimals.
 */
export const wholeNumber = (min: number, max: number, unit = "") => {
  const range = `must be a whole number${unit ? ` of${unit}` : ""} from ${min} to ${max}`;
  return z
    .union([z.number({ error: range }), z.string({ error: range }).regex(/^\d{1,16}$/, range).transform(Number)], { error: range })
    .pipe(z.number().int(range).min(min, range).max(max, range));
};

/** A page size: a whole number from 1 to `max`, `fallback` when absent. */
export const pageLimit = (max: number, fallback: number) =>
  z.coerce
    .number({ error: `must be a whole number from 1 to ${max}` })
    .int(`must be a whole number from 1 to ${max}`)
    .min(1, `must be a whole number from 1 to ${max}`)
    .max(max, `must be at most ${max}`)
    .default(fallback);
