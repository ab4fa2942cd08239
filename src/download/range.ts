/**
 * HTTP range requests on an export file (RFC 9110 §14): one range per request, as large downloads resume
 * and parallel downloaders fetch them. Several ranges at once (multipart/byteranges) are not served: such a
 * request gets the whole file, which the RFC allows.
 */
export type RangeAnswer =
  /** Serve the whole file (no Range, one the server ignores, or an If-Range that no longer matches). */
  | { kind: "whole" }
  /** Serve bytes [offset, offset + length). */
  | { kind: "partial"; offset: number; length: number }
  /** The range starts past the end: 416. */
  | { kind: "unsatisfiable" };

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/;

/**
 * What to serve for a Range header on a file of `size` bytes whose ETag is `etag`. Malformed ranges are
 * ignored (the whole file), as the RFC says; so is a Range whose If-Range names another version of the file.
 */
export function answerRange(range: string | null, ifRange: string | null, size: number, etag: string): RangeAnswer {
  if (range === null) return { kind: "whole" };
  if (ifRange !== null && ifRange.trim() !== etag) return { kind: "whole" };
  const match = SINGLE_RANGE.exec(range.trim());
  if (!match) return { kind: "whole" };
  const [, first, last] = match as unknown as [string, string, string];
  if (first === "" && last === "") return { kind: "whole" };
  if (first === "") {
    // bytes=-N: the last N bytes.
    const suffix = Number(last);
    if (suffix === 0) return { kind: "unsatisfiable" };
    const length = Math.min(suffix, size);
    return size === 0 ? { kind: "unsatisfiable" } : { kind: "partial", offset: size - length, length };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return { kind: "whole" }; // not a valid range: ignored
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "partial", offset: start, length: end - start + 1 };
}

/** True when If-None-Match names the file's current ETag (or "*"): the client's copy is current. */
export function notModified(ifNoneMatch: string | null, etag: string): boolean {
  if (ifNoneMatch === null) return false;
  const weakless = (tag: string) => tag.trim().replace(/^W\//, "");
  return ifNoneMatch.split(",").some((tag) => tag.trim() === "*" || weakless(tag) === weakless(etag));
}
