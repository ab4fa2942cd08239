/**
 * Download-link keys: how DOWNLOAD_SIGNING_KEY_ID and DOWNLOAD_PREVIOUS_SIGNING_KEYS are read (loadConfig on a
 * plain env object), and that one job gets one URL for as long as the current key stays the same.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { acceptedSigningKeys, currentSigningKey, verifyDownloadLink } from "../../src/download/signed_url";
import { notifiedDownloadLinks } from "../../src/export/link";
import type { StoredFile } from "../../src/export/stored_files";

const ONE_FILE: StoredFile[] = [{ fileIndex: undefined, objectKey: "exports/1/x.json", count: 5, bytes: 500 }];
/** The one link of an unsplit export's notification, as the old single-link API gave it. */
async function notifiedDownloadLink(...[job, config, now]: [Parameters<typeof notifiedDownloadLinks>[0], Parameters<typeof notifiedDownloadLinks>[2], Date?]) {
  const links = await notifiedDownloadLinks(job, ONE_FILE, config, now);
  return links && { url: links.files[0]!.url, expiresAt: links.expiresAt };
}

const SECRET = "a-download-signing-secret";
/** A fresh object each time: loadConfig caches per env object. */
const envWith = (vars: Record<string, string>) => ({ PUBLIC_BASE_URL: "https://exports.test", DOWNLOAD_SIGNING_SECRET: SECRET, ...vars });
const ENTRY = "each entry must be <key id>:<secret of at least 16 characters>";

describe("DOWNLOAD_SIGNING_KEY_ID", () => {
  it("defaults to k1", () => {
    expect(currentSigningKey(loadConfig(envWith({})))).toEqual({ id: "k1", secret: SECRET });
  });

  it("takes letters, digits, _ and -, up to 32", () => {
    expect(loadConfig(envWith({ DOWNLOAD_SIGNING_KEY_ID: "2026-07_B" })).DOWNLOAD_SIGNING_KEY_ID).toBe("2026-07_B");
    expect(loadConfig(envWith({ DOWNLOAD_SIGNING_KEY_ID: "k".repeat(32) })).DOWNLOAD_SIGNING_KEY_ID).toBe("k".repeat(32));
  });

  it.each([["empty", ""], ["with a dot", "k.2"], ["with a colon", "k:2"], ["with a space", "k 2"], ["33 long", "k".repeat(33)]])(
    "refuses an id %s",
    (_, id) => {
      expect(() => loadConfig(envWith({ DOWNLOAD_SIGNING_KEY_ID: id }))).toThrow(
        new Error("Invalid configuration: DOWNLOAD_SIGNING_KEY_ID: must be 1-32 letters, digits, _ or -"),
      );
    },
  );
});

describe("DOWNLOAD_PREVIOUS_SIGNING_KEYS", () => {
  it.each([
    ["unset", undefined],
    ["empty", ""],
    ["blank", "  "],
  ])("is no keys when %s", (_, value) => {
    const config = loadConfig(value === undefined ? envWith({}) : envWith({ DOWNLOAD_PREVIOUS_SIGNING_KEYS: value }));
    expect(config.DOWNLOAD_PREVIOUS_SIGNING_KEYS).toEqual([]);
  });

  it("reads kid:secret entries, in order, trimming spaces around them", () => {
    const config = loadConfig(envWith({ DOWNLOAD_PREVIOUS_SIGNING_KEYS: " k0:first-old-secret-16+ , k-1_b : second/old+secret== " }));
    expect(config.DOWNLOAD_PREVIOUS_SIGNING_KEYS).toEqual([
      { id: "k0", secret: "first-old-secret-16+" },
      { id: "k-1_b", secret: "second/old+secret==" },
    ]);
    expect(acceptedSigningKeys(config)).toEqual({
      current: { id: "k1", secret: SECRET },
      previous: config.DOWNLOAD_PREVIOUS_SIGNING_KEYS,
    });
  });

  it("splits an entry at its first colon, so a secret may hold colons", () => {
    const config = loadConfig(envWith({ DOWNLOAD_PREVIOUS_SIGNING_KEYS: "k0:a:secret:with:colons" }));
    expect(config.DOWNLOAD_PREVIOUS_SIGNING_KEYS).toEqual([{ id: "k0", secret: "a:secret:with:colons" }]);
  });

  it.each([
    ["no colon", "k0-old-secret-without-an-id"],
    ["no id", ":an-old-secret-of-enough-length"],
    ["an id with a dot", "k.0:an-old-secret-of-enough-length"],
    ["an id of 33 characters", `${"k".repeat(33)}:an-old-secret-of-enough-length`],
    ["a secret under 16 characters", "k0:short-secret"],
    ["no secret", "k0:"],
    ["an empty entry (trailing comma)", "k0:an-old-secret-of-enough-length,"],
    ["one bad entry among good ones", "k0:an-old-secret-of-enough-length,k9,k8:another-old-secret-long"],
  ])("refuses %s", (_, value) => {
    expect(() => loadConfig(envWith({ DOWNLOAD_PREVIOUS_SIGNING_KEYS: value }))).toThrow(
      new Error(`Invalid configuration: DOWNLOAD_PREVIOUS_SIGNING_KEYS: ${ENTRY}`),
    );
  });
});

describe("verifying with previous keys (unit)", () => {
  const job = { id: "job-1", state: "complete" as const, linkExpiresAt: "2030-01-01T00:00:00.000Z", retainedUntil: null, completedAt: null };
  const now = new Date("2029-12-01T00:00:00Z");
  const search = (url: string) => new URL(url).search;

  it("verifies a link signed before a rotation with the keys after it, and not once the old key is gone", async () => {
    const before = loadConfig(envWith({}));
    const link = (await notifiedDownloadLink(job, before, now))!;
    const rotated = loadConfig(
      envWith({ DOWNLOAD_SIGNING_KEY_ID: "k2", DOWNLOAD_SIGNING_SECRET: "the-next-signing-secret", DOWNLOAD_PREVIOUS_SIGNING_KEYS: `k1:${SECRET}` }),
    );
    const retired = loadConfig(envWith({ DOWNLOAD_SIGNING_KEY_ID: "k2", DOWNLOAD_SIGNING_SECRET: "the-next-signing-secret" }));
    expect(await verifyDownloadLink("job-1", search(link.url), acceptedSigningKeys(rotated), now)).toEqual({ ok: true, kid: "k1" });
    expect(await verifyDownloadLink("job-1", search(link.url), acceptedSigningKeys(retired), now)).toEqual({
      ok: false,
      reason: 'This download link was signed with key "k1", which is not (or no longer) accepted',
    });
  });
});

describe("notifiedDownloadLink: one URL per job and key, for every notification attempt", () => {
  const job = {
    id: "6f1c0000-0000-4000-8000-000000000001",
    state: "complete" as const,
    linkExpiresAt: "2030-01-01T00:00:02.000Z",
    retainedUntil: null,
    completedAt: null,
  };
  const config = loadConfig(envWith({}));

  it("gives the same URL whenever it is asked (each notification attempt)", async () => {
    const first = await notifiedDownloadLink(job, config, new Date("2029-12-25T00:00:00Z"));
    const later = await notifiedDownloadLink(job, config, new Date("2029-12-31T23:59:59Z"));
    expect(later).toEqual(first);
    expect(first).toEqual({
      url: expect.stringMatching(new RegExp(`^https://exports\\.test/exports/${job.id}\\?expires=1893456002&kid=k1&signature=[0-9a-f]{64}$`)),
      expiresAt: new Date("2030-01-01T00:00:02.000Z"),
    });
  });

  it("signs with the current key: after a rotation the same job gets a new-key URL with the same expiry", async () => {
    const rotated = loadConfig(envWith({ DOWNLOAD_SIGNING_KEY_ID: "k2", DOWNLOAD_SIGNING_SECRET: "the-next-signing-secret" }));
    const before = (await notifiedDownloadLink(job, config, new Date("2029-12-25T00:00:00Z")))!;
    const after = (await notifiedDownloadLink(job, rotated, new Date("2029-12-25T00:00:00Z")))!;
    expect(new URL(after.url).searchParams.get("kid")).toBe("k2");
    expect(new URL(after.url).searchParams.get("expires")).toBe(new URL(before.url).searchParams.get("expires"));
    expect(after.url).not.toBe(before.url);
  });

  it("gives no link for an unfinished job or past the expiry", async () => {
    expect(await notifiedDownloadLink({ ...job, state: "running" }, config)).toBeNull();
    expect(await notifiedDownloadLink(job, config, new Date("2030-01-01T00:00:02.000Z"))).toBeNull();
  });
});
