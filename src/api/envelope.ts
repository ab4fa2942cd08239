import type { Context } from "hono";
import { z } from "zod";
import { ApiError } from "./errors";

/** How much of a client's value an error message repeats back: enough to recognise it, never the whole of it. */
export const MAX_ECHO_LENGTH = 100;

/** The budget of a message made of several field problems; the problems past it are counted, not listed. */
export const MAX_ISSUES_LENGTH = 300;

/** The longest error message the API sends, whatever built it (src/api/app.ts cuts longer ones). */
export const MAX_ERROR_MESSAGE_LENGTH = 500;

/** Cuts text to `max` characters, marking the cut with "…" (the result is at most `max` characters). */
export function truncate(text: string, max: number): string {
  // Count code points, so that a cut never splits a surrogate pair.
  const chars = Array.from(text.length > max * 2 ? text.slice(0, max * 2) : text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

/**
 * A client's value as an error message shows it: JSON (so that `"12"` and `12` differ, and control characters
 * are visible), cut to MAX_ECHO_LENGTH characters. A 900 KB value never makes a 900 KB message.
 */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return truncate(text, MAX_ECHO_LENGTH);
}

// Messages follow "field: what is wrong"; a missing field says so rather than "must be a string".
const requiredString = () =>
  z.string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") });

/** "must be at most N characters (got M)": the length, never the value. */
export const tooLong = (max: number) => ({
  error: (issue: { input?: unknown }) =>
    `must be at most ${max} characters (got ${typeof issue.input === "string" ? issue.input.length : "more"})`,
});

/** Bounds of the envelope's strings. Tokens are "token-<uuid>" and method names are short; these are generous. */
export const ENVELOPE_LIMITS = { username: 200, usertoken: 200, requesttype: 100, requestmethod: 100 } as const;

/** Pinpointe's JSON request envelope. `details` is validated by each method. */
export const requestEnvelope = z.object({
  username: requiredString().trim().min(1, "must not be empty").max(ENVELOPE_LIMITS.username, tooLong(ENVELOPE_LIMITS.username)),
  usertoken: requiredString().min(1, "must not be empty").max(ENVELOPE_LIMITS.usertoken, tooLong(ENVELOPE_LIMITS.usertoken)),
  requesttype: requiredString()
    .trim()
    .min(1, "must not be empty")
    .max(ENVELOPE_LIMITS.requesttype, tooLong(ENVELOPE_LIMITS.requesttype)),
  requestmethod: requiredString()
    .trim()
    .min(1, "must not be empty")
    .max(ENVELOPE_LIMITS.requestmethod, tooLong(ENVELOPE_LIMITS.requestmethod)),
  details: z.unknown().optional(),
});

export const successBody = <T>(data: T) => ({ response: { status: "SUCCESS" as const, data } });
export const errorBody = (errormessage: string) => ({ response: { status: "ERROR" as const, errormessage } });

export const success = <T>(c: Context, data: T) => c.json(successBody(data), 200);

/**
 * Renders zod issues as "where: what" so a client sees which field was wrong. Problems are listed in order
 * while they fit in MAX_ISSUES_LENGTH characters; the rest are counted ("; and 47 more problems"), so that
 * 50 bad elements do not make a 5 KB message. The first problem is always shown (cut if it must be).
 */
export function describeIssues(error: z.ZodError, root?: string): string {
  const problems = error.issues.map((issue) => {
    const path = [root, ...issue.path.map(String)].filter(Boolean).join(".");
    // Room is left for the "; and N more problems" that may follow.
    return truncate(path ? `${path}: ${issue.message}` : issue.message, MAX_ISSUES_LENGTH - 50);
  });
  let text = problems[0] ?? "invalid input";
  let shown = 1;
  for (; shown < problems.length; shown++) {
    const rest = problems.length - shown - 1;
    const reserve = rest > 0 ? `; and ${rest} more problems`.length : 0;
    if (text.length + 2 + problems[shown]!.length + reserve > MAX_ISSUES_LENGTH) break;
    text += `; ${problems[shown]}`;
  }
  const hidden = problems.length - shown;
  if (hidden > 0) text += `; and ${hidden} more problem${hidden > 1 ? "s" : ""}`;
  return text;
}

/** Parses with a schema, turning a failure into a 400 that names each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, root?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError("BAD_REQUEST", describeIssues(result.error, root));
  return result.data;
}
