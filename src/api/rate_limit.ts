import type { Config } from "../config";
import type { Account } from "../db/control_schema";
import { describeForLog } from "../errors";
import { ApiError } from "./errors";

/**
 * The per-account request rate, counted by Workers' rate-limiting binding (ACCOUNT_RATE_LIMITER). It runs
 * after authentication, keyed by the account id, so that a stranger who knows a username cannot use up that
 * account's quota: unauthenticated requests fail at the credential check and are never counted.
 *
 * The binding's counts are per Cloudflare location and eventually consistent, so the limit is approximate by
 * design; the limits that must be exact (running exports) are enforced in D1. ACCOUNT_RATE_LIMIT and
 * ACCOUNT_RATE_PERIOD_SECONDS must match the binding's `simple = { limit, period }`: they are only quoted in
 * the message and the Retry-After header.
 */
export async function enforceRateLimit(
  limiter: RateLimit | undefined,
  config: Pick<Config, "ACCOUNT_RATE_LIMIT" | "ACCOUNT_RATE_PERIOD_SECONDS">,
  account: Pick<Account, "id">,
): Promise<void> {
  // A missing binding is a deployment mistake: say so on every request rather than run unlimited.
  if (!limiter) throw new Error("The ACCOUNT_RATE_LIMITER binding is missing (see [[ratelimits]] in wrangler.toml)");
  let outcome: RateLimitOutcome;
  try {
    outcome = await limiter.limit({ key: rateLimitKey(account) });
  } catch (error) {
    // The limiter protects the service; its outage should not take the service down with it. Fail open.
    console.error(`rate limiter unavailable; request allowed: ${describeForLog(error)}`);
    return;
  }
  if (outcome.success) return;
  const period = config.ACCOUNT_RATE_PERIOD_SECONDS;
  // Windows are fixed, so the quota is back at the latest one period from now.
  throw new ApiError(
    "TOO_MANY_REQUESTS",
    `Too many requests: this account may make at most ${config.ACCOUNT_RATE_LIMIT} requests per ${period} seconds. ` +
      `Retry after ${period} seconds.`,
    { retryAfterSeconds: period },
  );
}

/** The limiter key of an account: its id, which never changes (a username might). */
export const rateLimitKey = (account: Pick<Account, "id">) => String(account.id);
