import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** The repository root: wrangler must run here to find wrangler.toml and the local state in .wrangler/. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

const wranglerBin = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");

export type Target = "local" | "remote";

/**
 * Runs `wrangler d1 execute <database> --local|--remote --json --command <sql>` and returns the result sets.
 * `database` is a binding of wrangler.toml: DB (the control database, the default) or a shard (SHARD_0, ...).
 * Throws with wrangler's own message when the statement fails.
 */
export function d1Execute(target: Target, command: string, database = "DB"): Array<{ results: Record<string, unknown>[] }> {
  const run = spawnSync(process.execPath, [wranglerBin, "d1", "execute", database, `--${target}`, "--json", "--command", command], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    // Wrangler asks for confirmation or a login on the terminal; let it.
    stdio: ["inherit", "pipe", "pipe"],
  });
  if (run.error) throw run.error;
  if (run.status !== 0) {
    throw new Error(`wrangler d1 execute failed (exit ${run.status}):\n${extractError(run.stdout) ?? run.stderr.trim()}`);
  }
  return JSON.parse(run.stdout);
}

/** With --json, wrangler reports errors as {"error":{"text":...}} on stdout. */
function extractError(stdout: string): string | undefined {
  try {
    const parsed = JSON.parse(stdout) as { error?: { text?: string; notes?: { text?: string }[] } };
    if (!parsed.error) return undefined;
    return [parsed.error.text, ...(parsed.error.notes ?? []).map((n) => n.text)].filter(Boolean).join("\n");
  } catch {
    return stdout.trim() || undefined;
  }
}
