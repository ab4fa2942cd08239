import type { Context } from "hono";
import { z } from "zod";
import { ApiError } from "./errors";

// Messages follow "field: what is wrong"; a missing field says so rather than "must be a string".
const requiredString = () =>
  z.string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") });

/** Pinpointe's JSON request envelope. `details` is validated by each method. */
export const requestEnvelope = z.object({
  username: requiredString().trim().min(1, "must not be empty"),
  usertoken: requiredString().min(1, "must not be empty"),
  requesttype: requiredString().trim().min(1, "must not be empty"),
  requestmethod: requiredString().trim().min(1, "must not be empty"),
  details: z.unknown().optional(),
});

export const successBody = <T>(data: T) => ({ response: { status: "SUCCESS" as const, data } });
export const errorBody = (errormessage: string) => ({ response: { status: "ERROR" as const, errormessage } });

export const success = <T>(c: Context, data: T) => c.json(successBody(data), 200);

/** Renders zod issues as "where: what" so a client sees which field was wrong. */
export function describeIssues(error: z.ZodError, root?: string): string {
  return error.issues
    .map((issue) => {
      const path = [root, ...issue.path.map(String)].filter(Boolean).join(".");
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

/** Parses with a schema, turning a failure into a 400 that names each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, root?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError("BAD_REQUEST", describeIssues(result.error, root));
  return result.data;
}
