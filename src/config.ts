import { z } from "zod";

const MiB = 1024 * 1024;

const flag = z
  .string()
  .optional()
  .transform((v) => /^(1|true|yes)$/i.test(v ?? ""));

/** A flag that is on unless set to 0/false/no. */
const flagOnByDefault = z
  .string()
  .optional()
  .transform((v) => !/^(0|false|no)$/i.test(v ?? ""));

/** "443,8443" → [443, 8443]. */
const portList = z
  .string()
  .default("443,8443")
  .transform((v, ctx) => {
    const ports = v.split(",").map((p) => Number(p.trim()));
    if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
      ctx.addIssue({ code: "custom", message: `"${v}" is not a comma-separated list of ports` });
      return z.NEVER;
    }
    return ports;
  });

/** "k0:secret0,k1:secret1" → [{id, secret}]: download-link keys still accepted after a rotation. */
const previousKeys = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (!v?.trim()) return [];
    return v.split(",").map((entry) => {
      const at = entry.indexOf(":");
      const id = entry.slice(0, at).trim();
      const secret = entry.slice(at + 1).trim();
      if (at < 1 || !/^[A-Za-z0-9_-]{1,32}$/.test(id) || secret.length < 16) {
        ctx.addIssue({ code: "custom", message: "each entry must be <key id>:<secret of at least 16 characters>" });
      }
      return { id, secret };
    });
  });

const configSchema = z.object({
  PUBLIC_BASE_URL: z.url(),
  DOWNLOAD_SIGNING_SECRET: z.string().min(16, "DOWNLOAD_SIGNING_SECRET must be set (at least 16 characters)"),
  DOWNLOAD_LINK_TTL_SECONDS: z.coerce.number().int().positive().default(7 * 24 * 3600),
  // How long an export's file is kept after it completes. Links never outlive it; the status call signs a
  // fresh link on every call until then. The sweeper deletes the file afterwards (and an R2 lifecycle rule
  // should, in production).
  EXPORT_RETENTION_DAYS: z.coerce.number().int().min(1).max(365).default(7),
  // Local development only: webhook targets may use http (scheme only; see ALLOW_PRIVATE_WEBHOOKS).
  ALLOW_HTTP_WEBHOOKS: flag,
  // Local development only: webhook targets may be loopback, private or other special-use addresses and names.
  ALLOW_PRIVATE_WEBHOOKS: flag,
  // The only ports a webhook URL to a public host may use (a scheme's default port counts). Private targets,
  // allowed only with ALLOW_PRIVATE_WEBHOOKS, may use any port.
  WEBHOOK_ALLOWED_PORTS: portList,
  // At delivery, resolve the webhook host over DNS-over-HTTPS and refuse private answers. Off only where
  // there is no DNS to ask (local development, tests fake it).
  WEBHOOK_DNS_CHECK: flagOnByDefault,
  // The id of DOWNLOAD_SIGNING_SECRET, carried in links as kid=…, so that keys can be rotated.
  DOWNLOAD_SIGNING_KEY_ID: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "must be 1-32 letters, digits, _ or -").default("k1"),
  // Earlier keys whose links are still honoured: "kid:secret,kid:secret" (a secret).
  DOWNLOAD_PREVIOUS_SIGNING_KEYS: previousKeys,
  EXPORT_SLICE_BUDGET_MS: z.coerce.number().int().positive().default(60_000),
  // A slice also stops after this many pages (0: no limit). Tests use it to force many small slices.
  EXPORT_SLICE_MAX_PAGES: z.coerce.number().int().min(0).default(0),
  // A slice that fails this many times in a row fails the job, and the failure is notified.
  EXPORT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  EXPORT_PAGE_SIZE: z.coerce.number().int().min(1).max(50_000).default(10_000),
  // R2 refuses parts under 5 MiB (all but the last), and so does its local simulator.
  EXPORT_PART_SIZE: z.coerce.number().int().min(5 * MiB).max(5 * 1024 * MiB).default(8 * MiB),
  // The most files a split export may have: each is listed, with its own signed link, in the notification (a
  // webhook body, an email) and the status call. An export that would need more fails, saying which limit to raise.
  EXPORT_MAX_FILES: z.coerce.number().int().min(1).max(10_000).default(1_000),
  // How long an import's upload link lasts; an import whose file has not come by then fails (the sweeper).
  IMPORT_UPLOAD_TTL_SECONDS: z.coerce.number().int().min(60).max(7 * 86_400).default(3_600),
  // The largest file an import takes (R2's multipart limit is far above; the platform's request body limit,
  // 100 MB on the Free and Pro plans, may be lower: send such files gzip-compressed).
  IMPORT_MAX_BYTES: z.coerce.number().int().min(1).default(5 * 1024 * MiB),
  // An import writes its rows in batches (one D1 transaction each) of at most this many rows, and ends a batch
  // with the row that takes it to this many bytes of the file. Both are fixed in the job when it is requested.
  IMPORT_BATCH_ROWS: z.coerce.number().int().min(1).max(2_000).default(2_000),
  IMPORT_BATCH_BYTES: z.coerce.number().int().min(1).max(8 * MiB).default(2 * MiB),
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
  // Rows an account move copies, compares or deletes per statement (src/shards/move.ts).
  MOVE_PAGE_ROWS: z.coerce.number().int().min(1).max(5_000).default(2_000),
  // How long one slice of an account move runs before it checkpoints and continues in a new message.
  MOVE_SLICE_BUDGET_MS: z.coerce.number().int().positive().default(30_000),
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
