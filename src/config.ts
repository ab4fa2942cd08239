import { z } from "zod";

const MiB = 1024 * 1024;

const flag = z
  .string()
  .optional()
  .transform((v) => /^(1|true|yes)$/i.test(v ?? ""));

const configSchema = z.object({
  PUBLIC_BASE_URL: z.url(),
  DOWNLOAD_SIGNING_SECRET: z.string().min(16, "DOWNLOAD_SIGNING_SECRET must be set (at least 16 characters)"),
  DOWNLOAD_LINK_TTL_SECONDS: z.coerce.number().int().positive().default(7 * 24 * 3600),
  ALLOW_HTTP_WEBHOOKS: flag,
  EXPORT_SLICE_BUDGET_MS: z.coerce.number().int().positive().default(60_000),
  // A slice also stops after this many pages (0: no limit). Tests use it to force many small slices.
  EXPORT_SLICE_MAX_PAGES: z.coerce.number().int().min(0).default(0),
  // A slice that fails this many times in a row fails the job, and the failure is notified.
  EXPORT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  EXPORT_PAGE_SIZE: z.coerce.number().int().min(1).max(50_000).default(10_000),
  // R2 refuses parts under 5 MiB (all but the last), and so does its local simulator.
  EXPORT_PART_SIZE: z.coerce.number().int().min(5 * MiB).max(5 * 1024 * MiB).default(8 * MiB),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
  NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(12),
  // The sweeper fails a job after its slices died this many times (each death is a lease that ran out).
  EXPORT_MAX_REDRIVES: z.coerce.number().int().min(1).max(100).default(5),
  // A message this many seconds past its due time is taken for lost, and the sweeper sends another.
  SWEEP_LOST_AFTER_SECONDS: z.coerce.number().int().min(10).default(120),
  // Requests per account per period (must match the ACCOUNT_RATE_LIMITER binding); quoted in the 429.
  ACCOUNT_RATE_LIMIT: z.coerce.number().int().positive().default(600),
  ACCOUNT_RATE_PERIOD_SECONDS: z.coerce.number().int().positive().default(60),
  // Queued plus running exports one account may have at once.
  EXPORT_MAX_ACTIVE_PER_ACCOUNT: z.coerce.number().int().min(1).default(5),
  // GetSegments recounts a segment whose count is older than this.
  SEGMENT_COUNT_MAX_AGE_SECONDS: z.coerce.number().int().min(1).default(600),
});

export type Config = z.infer<typeof configSchema>;

const cache = new WeakMap<object, Config>();

/** Reads the environment once per isolate, for the API and the queue consumer alike. */
export function loadConfig(env: object): Config {
  let config = cache.get(env);
  if (!config) {
    const parsed = configSchema.safeParse(env);
    if (!parsed.success) {
      throw new Error(`Invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    config = parsed.data;
    cache.set(env, config);
  }
  return config;
}
