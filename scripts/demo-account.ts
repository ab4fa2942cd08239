/**
 * The demo account that `npm run dev` seeds into the LOCAL database. These values are published in the
 * README, so they are for local development only: a deployment creates its accounts with
 * `npm run account:create` (scripts/create-account.ts), which generates secret values.
 */
export const DEMO_ACCOUNT = {
  username: "demo",
  usertoken: "demo-token",
  // Fixed so that the stored hash is the same on every machine; salts need not be secret.
  tokenSalt: "demo-salt-local-development-only",
  // Generated once ("whsec_" + base64 of 32 random bytes) and written here so the README can show it.
  webhookSecret: "whsec_n5YYne3Nv+CwQBntlDQDV/+LDV+6i+wt1uE3BXmJdPI=",
} as const;

/** Ids of the seeded segments: the example request asks for segments "12" and "13". */
export const DEMO_SEGMENT_IDS = [12, 13, 14] as const;
