import { toHex } from "../hex";
import type { DownloadKeys } from "../download/signed_url";

/**
 * The `next` token of Segments / GetSegmentSubscribers: where the next page starts (the last subscriber id
 * sent), the moment the walk's rules are evaluated at (so that "within the last N days" does not move between
 * pages), and an HMAC that binds both to the account and the selection they were issued for. Opaque to
 * clients; a token of another selection, another account, or edited by hand is refused.
 *
 * Signed with the download-signing key (the current one; earlier ones still listed are accepted), under its
 * own label, so a page token is never a valid download signature or the reverse.
 */
export interface PagePosition {
  /** The last subscriber id sent. */
  after: number;
  /** ms since the epoch: when the first page was asked for. */
  at: number;
}

const encoder = new TextEncoder();
const FORM = /^([1-9]\d{0,15})\.([1-9]\d{0,15})\.([0-9a-f]{32})$/;

async function mac(secret: string, binding: string, position: PagePosition): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const message = encoder.encode(`page-token\nv1\n${binding}\n${position.after}\n${position.at}`);
  // 128 bits are plenty for a token that only says where a walk continues.
  return toHex(await crypto.subtle.sign("HMAC", key, message)).slice(0, 32);
}

const base64url = (text: string) => btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

export async function issuePageToken(keys: DownloadKeys, binding: string, position: PagePosition): Promise<string> {
  return base64url(`${position.after}.${position.at}.${await mac(keys.current.secret, binding, position)}`);
}

/** The position a token stands for, or null if it is not a token issued for this binding. */
export async function readPageToken(keys: DownloadKeys, binding: string, token: string): Promise<PagePosition | null> {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(token)) return null;
  let text: string;
  try {
    text = atob(token.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    return null;
  }
  const match = FORM.exec(text);
  if (!match) return null;
  const position = { after: Number(match[1]), at: Number(match[2]) };
  if (!Number.isSafeInteger(position.after) || !Number.isSafeInteger(position.at)) return null;
  for (const key of [keys.current, ...keys.previous]) {
    // workerd's constant-time comparison (both sides are 32 hex characters).
    if (crypto.subtle.timingSafeEqual(encoder.encode(await mac(key.secret, binding, position)), encoder.encode(match[3]!))) return position;
  }
  return null;
}
