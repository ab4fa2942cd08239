/**
 * DNS lookups for the delivery-time SSRF check, over DNS-over-HTTPS (JSON API). Workers have no resolver API
 * of their own, and their fetch() resolves names out of our sight: asking first lets us refuse a name whose
 * answers are private. The resolver is a plain function so that tests (and other environments) can fake it.
 */

export type DnsRecordType = "A" | "AAAA";

/**
 * The addresses in a name's records of one type: [] when the name has none (or does not exist). Throws
 * DnsLookupError when the lookup itself fails (resolver unreachable, SERVFAIL, an unreadable answer).
 */
export type DnsResolver = (name: string, type: DnsRecordType) => Promise<string[]>;

export class DnsLookupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DnsLookupError";
  }
}

export const DOH_ENDPOINT = "https://cloudflare-dns.com/dns-query";
const RR_TYPE: Record<DnsRecordType, number> = { A: 1, AAAA: 28 };
/** DNS RCODEs: 0 NOERROR, 3 NXDOMAIN. Anything else (SERVFAIL, REFUSED …) is a failed lookup. */
const NOERROR = 0;
const NXDOMAIN = 3;

interface DohAnswer {
  Status?: number;
  Answer?: Array<{ name?: string; type?: number; data?: string }>;
}

/** A resolver that asks a DNS-over-HTTPS server (Cloudflare's by default) with its JSON API. */
export function dohResolver(options: { endpoint?: string; timeoutMs?: number; fetch?: typeof fetch } = {}): DnsResolver {
  const endpoint = options.endpoint ?? DOH_ENDPOINT;
  const timeoutMs = options.timeoutMs ?? 5_000;
  return async (name, type) => {
    const url = `${endpoint}?name=${encodeURIComponent(name)}&type=${type}`;
    let body: DohAnswer;
    try {
      const response = await (options.fetch ?? fetch)(url, {
        headers: { accept: "application/dns-json" },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw new DnsLookupError(`DNS-over-HTTPS answered HTTP ${response.status}`);
      }
      body = (await response.json()) as DohAnswer;
    } catch (error) {
      if (error instanceof DnsLookupError) throw error;
      throw new DnsLookupError(`DNS-over-HTTPS lookup failed: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    if (body.Status === NXDOMAIN) return [];
    if (body.Status !== NOERROR) throw new DnsLookupError(`DNS lookup of ${type} answered RCODE ${String(body.Status)}`);
    // CNAMEs come first in Answer; only the records of the type asked for are addresses.
    return (body.Answer ?? []).filter((r) => r.type === RR_TYPE[type] && typeof r.data === "string").map((r) => r.data!);
  };
}

/** The name's A and AAAA addresses together. Fails if either lookup fails. */
export async function resolveAddresses(resolver: DnsResolver, name: string): Promise<string[]> {
  const [a, aaaa] = await Promise.all([resolver(name, "A"), resolver(name, "AAAA")]);
  return [...a, ...aaaa];
}
