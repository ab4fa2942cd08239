/**
 * Download links: /exports/<jobid>?expires=<unix seconds>&kid=<key id>&signature=<hex HMAC-SHA256>, the HMAC
 * taken over "<jobid>.<expires>.<kid>" with the secret of key <kid>. A split export's files have one link each,
 * /exports/<jobid>/<n>, signed over "<jobid>/<n>.<expires>.<kid>": a link opens its own file only. The worker serves them itself because the
 * R2 binding cannot presign URLs.
 *
 * The key id is signed too, so a signature made with one key cannot be presented under another. The verifier
 * accepts the current key (DOWNLOAD_SIGNING_KEY_ID / DOWNLOAD_SIGNING_SECRET) and every key still listed in
 * DOWNLOAD_PREVIOUS_SIGNING_KEYS, so keys can be rotated without breaking live links (docs/download_links.md).
 *
 * Links are read strictly: each parameter exactly once, in its one canonical spelling (no percent-encoding,
 * no leading zeros, signs, spaces or decimals), so a link has exactly one accepted form.
 */
import type { Config } from "../config";
import { toHex } from "../hex";

const encoder = new TextEncoder();

export interface SigningKey {
  id: string;
  secret: string;
}

/** The keys a verifier accepts: the current one, then any earlier ones still listed. */
export interface DownloadKeys {
  current: SigningKey;
  previous: readonly SigningKey[];
}

/** The key new links are signed with. */
export const currentSigningKey = (config: Config): SigningKey => ({
  id: config.DOWNLOAD_SIGNING_KEY_ID,
  secret: config.DOWNLOAD_SIGNING_SECRET,
});

/** Every key whose links the worker honours. */
export const acceptedSigningKeys = (config: Config): DownloadKeys => ({
  current: currentSigningKey(config),
  previous: config.DOWNLOAD_PREVIOUS_SIGNING_KEYS,
});

/** Unix seconds: 1 to 12 digits, no leading zero (12 digits reach the year 33658). */
const EXPIRES = /^[1-9][0-9]{0,11}$/;
/** The same form DOWNLOAD_SIGNING_KEY_ID and DOWNLOAD_PREVIOUS_SIGNING_KEYS allow. */
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** HMAC-SHA256 as the signer writes it: 32 bytes, lowercase hex. */
const SIGNATURE = /^[0-9a-f]{64}$/;

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

const fromHex = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g)!, (pair) => parseInt(pair, 16));

/**
 * What a link opens: a job's one file, or file <n> of a split export. Job ids are UUIDs, never holding a "/".
 */
export const linkResource = (jobId: string, fileIndex?: number) => (fileIndex === undefined ? jobId : `${jobId}/${fileIndex}`);

/**
 * What is signed. Unambiguous although job ids may hold dots: the key id has none and expires is digits only,
 * so the last two fields are always kid and expires.
 */
const payload = (resource: string, expires: string, kid: string) => encoder.encode(`${resource}.${expires}.${kid}`);

export interface SignedLink {
  url: string;
  expiresAt: Date;
}

/**
 * Signs the link of a job's file with `key` (file `fileIndex` of a split export; the one file when undefined);
 * the expiry is truncated to whole seconds.
 */
export function signDownloadLink(baseUrl: string, jobId: string, expiresAt: Date, key: SigningKey, fileIndex?: number): Promise<SignedLink> {
  const path = `/exports/${encodeURIComponent(jobId)}${fileIndex === undefined ? "" : `/${fileIndex}`}`;
  return signLink(baseUrl, path, linkResource(jobId, fileIndex), expiresAt, key);
}

/**
 * Import links: the upload link of an import's file (PUT /imports/<jobid>, signed over "upload:<jobid>") and
 * the download link of its rejects file (GET /imports/<jobid>/rejects, over "rejects:<jobid>"). The prefixes
 * keep each link to its one use: no download link can be presented as an upload link, or the other way round.
 */
export const uploadResource = (jobId: string) => `upload:${jobId}`;
export const rejectsResource = (jobId: string) => `rejects:${jobId}`;

export const signUploadLink = (baseUrl: string, jobId: string, expiresAt: Date, key: SigningKey) =>
  signLink(baseUrl, `/imports/${encodeURIComponent(jobId)}`, uploadResource(jobId), expiresAt, key);

export const signRejectsLink = (baseUrl: string, jobId: string, expiresAt: Date, key: SigningKey) =>
  signLink(baseUrl, `/imports/${encodeURIComponent(jobId)}/rejects`, rejectsResource(jobId), expiresAt, key);

async function signLink(baseUrl: string, path: string, resource: string, expiresAt: Date, key: SigningKey): Promise<SignedLink> {
  const seconds = Math.floor(expiresAt.getTime() / 1000);
  if (!KEY_ID.test(key.id)) throw new Error(`Download key id "${key.id}" is not 1-32 letters, digits, _ or -`);
  if (!EXPIRES.test(String(seconds))) throw new Error(`Download link expiry ${expiresAt.toISOString()} is out of range`);
  const expires = String(seconds);
  const signature = toHex(await crypto.subtle.sign("HMAC", await hmacKey(key.secret), payload(resource, expires, key.id)));
  const url = new URL(path, baseUrl);
  url.search = `?expires=${expires}&kid=${key.id}&signature=${signature}`;
  return { url: url.toString(), expiresAt: new Date(seconds * 1000) };
}

export type LinkCheck = { ok: true; kid: string } | { ok: false; reason: string };

export const LINK_MESSAGES = {
  incomplete: "This download link is incomplete: it needs expires, kid and signature",
  invalid: "This download link's signature is not valid",
  duplicate: (name: string) => `This download link is malformed: ${name} is given more than once`,
  expires: "This download link is malformed: expires must be unix seconds, as digits without a sign or leading zeros",
  kid: "This download link is malformed: kid must be 1-32 letters, digits, _ or -",
  signature: "This download link is malformed: signature must be 64 lowercase hex digits",
  unknownKey: (kid: string) => `This download link was signed with key "${kid}", which is not (or no longer) accepted`,
  expired: (at: Date) => `This download link expired at ${at.toISOString()}`,
} as const;

const LINK_PARAMS = ["expires", "kid", "signature"] as const;
type LinkParam = (typeof LINK_PARAMS)[number];

const decodeName = (raw: string): string => {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
};

/**
 * The link's parameters as written in the query string (`search`, with or without its "?"), values not decoded.
 * Names are decoded, so that "%65xpires" still counts as a second expires. Other parameters (a mail client's
 * tracking tags) are ignored.
 */
function linkParams(search: string): { params: Partial<Record<LinkParam, string>> } | { duplicate: LinkParam } {
  const params: Partial<Record<LinkParam, string>> = {};
  const query = search.startsWith("?") ? search.slice(1) : search;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = decodeName(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? "" : part.slice(eq + 1);
    if (!(LINK_PARAMS as readonly string[]).includes(name)) continue;
    const key = name as LinkParam;
    if (params[key] !== undefined) return { duplicate: key };
    params[key] = value;
  }
  return { params };
}

/**
 * Checks a link to `resource` (see linkResource): its form, then its key, then its signature (in constant
 * time, by crypto.subtle.verify), and only for an authentic link its expiry. `search` is the request URL's raw
 * query string.
 */
export async function verifyDownloadLink(resource: string, search: string, keys: DownloadKeys, now = new Date()): Promise<LinkCheck> {
  const parsed = linkParams(search);
  if ("duplicate" in parsed) return { ok: false, reason: LINK_MESSAGES.duplicate(parsed.duplicate) };
  const { expires, kid, signature } = parsed.params;
  if (!expires || !kid || !signature) return { ok: false, reason: LINK_MESSAGES.incomplete };
  if (!EXPIRES.test(expires)) return { ok: false, reason: LINK_MESSAGES.expires };
  if (!KEY_ID.test(kid)) return { ok: false, reason: LINK_MESSAGES.kid };
  if (!SIGNATURE.test(signature)) return { ok: false, reason: LINK_MESSAGES.signature };

  // The current key wins should a previous entry reuse its id.
  const key = kid === keys.current.id ? keys.current : keys.previous.find((k) => k.id === kid);
  if (!key) return { ok: false, reason: LINK_MESSAGES.unknownKey(kid) };

  const valid = await crypto.subtle.verify("HMAC", await hmacKey(key.secret), fromHex(signature), payload(resource, expires, kid));
  if (!valid) return { ok: false, reason: LINK_MESSAGES.invalid };
  const expiresAt = new Date(Number(expires) * 1000);
  if (expiresAt.getTime() <= now.getTime()) return { ok: false, reason: LINK_MESSAGES.expired(expiresAt) };
  return { ok: true, kid };
}
