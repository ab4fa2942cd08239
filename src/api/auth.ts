import { eq } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { accounts, type Account } from "../db/control_schema";
import { toHex } from "../hex";
import { ApiError } from "./errors";

const encoder = new TextEncoder();


/** SHA-256 of salt ":" token, hex. Shared by the worker and the account scripts (Web Crypto in both). */
export async function hashToken(salt: string, token: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(`${salt}:${token}`)));
}

// Compared against when the username is unknown, so that a bad username costs the same as a bad token.
const UNKNOWN_ACCOUNT = { tokenSalt: "no-such-account", tokenHash: "0".repeat(64) };

const INVALID_CREDENTIALS = "Invalid username or usertoken";

/** Finds the account and checks its token in constant time. Any mismatch gives the same 401. */
export async function authenticate(db: DrizzleD1Database, username: string, usertoken: string): Promise<Account> {
  const account = await db.select().from(accounts).where(eq(accounts.username, username)).get();
  const stored = account ?? UNKNOWN_ACCOUNT;
  const presented = await hashToken(stored.tokenSalt, usertoken);
  const matches = crypto.subtle.timingSafeEqual(encoder.encode(presented), encoder.encode(stored.tokenHash));
  if (!account || !matches) throw new ApiError("UNAUTHORIZED", INVALID_CREDENTIALS);
  return account;
}
