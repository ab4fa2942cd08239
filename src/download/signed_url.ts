/**
 * Download links: /exports/<jobid>?expires=<unix seconds>&signature=<hex HMAC-SHA256 of "<jobid>.<expires>">.
 * The worker serves them itself because the R2 binding cannot presign URLs.
 */
import { toHex } from "../hex";

const encoder = new TextEncoder();

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}


const fromHex = (hex: string): Uint8Array | null => {
  if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) return null;
  return Uint8Array.from(hex.match(/../g)!, (pair) => parseInt(pair, 16));
};

const payload = (jobId: string, expires: number) => encoder.encode(`${jobId}.${expires}`);

export interface SignedLink {
  url: string;
  expiresAt: Date;
}

export async function signDownloadLink(baseUrl: string, jobId: string, expiresAt: Date, secret: string): Promise<SignedLink> {
  const expires = Math.floor(expiresAt.getTime() / 1000);
  const signature = toHex(await crypto.subtle.sign("HMAC", await hmacKey(secret), payload(jobId, expires)));
  const url = new URL(`/exports/${encodeURIComponent(jobId)}`, baseUrl);
  url.searchParams.set("expires", String(expires));
  url.searchParams.set("signature", signature);
  return { url: url.toString(), expiresAt: new Date(expires * 1000) };
}

export type LinkCheck = { ok: true } | { ok: false; reason: string };

/** Checks a link's signature (in constant time, by crypto.subtle.verify) and then its expiry. */
export async function verifyDownloadLink(
  jobId: string,
  expiresParam: string | undefined,
  signatureParam: string | undefined,
  secret: string,
  now = new Date(),
): Promise<LinkCheck> {
  if (!expiresParam || !signatureParam) {
    return { ok: false, reason: "This download link is incomplete: it needs both expires and signature" };
  }
  const expires = Number(expiresParam);
  const signature = fromHex(signatureParam);
  if (!/^\d+$/.test(expiresParam) || !Number.isSafeInteger(expires) || !signature) {
    return { ok: false, reason: "This download link's signature is not valid" };
  }
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(secret), signature, payload(jobId, expires));
  if (!valid) return { ok: false, reason: "This download link's signature is not valid" };
  if (expires * 1000 <= now.getTime()) {
    return { ok: false, reason: `This download link expired at ${new Date(expires * 1000).toISOString()}` };
  }
  return { ok: true };
}
