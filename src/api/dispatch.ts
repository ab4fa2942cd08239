import { quote } from "./envelope";
import { ApiError } from "./errors";
import type { ApiMethod } from "./method";

/**
 * Finds the method a request names. Names match without regard to case; a request type may be shortened
 * to any prefix of three letters or more, as Pinpointe clients do ("seg" for "Segments").
 *
 * Runs after authentication (src/api/app.ts): the lists of known types and methods are for account holders.
 * The names a client sent are echoed cut to 100 characters.
 */
export function findMethod(methods: readonly ApiMethod[], requesttype: string, requestmethod: string): ApiMethod {
  const type = requesttype.trim().toLowerCase();
  const types = [...new Set(methods.map((m) => m.requesttype))];
  const matchesType = (name: string) => {
    const full = name.toLowerCase();
    return full === type || (type.length >= 3 && full.startsWith(type)) || (type.length >= 3 && full.replace(/s$/, "") === type);
  };
  const ofType = methods.filter((m) => matchesType(m.requesttype));
  if (ofType.length === 0) {
    throw new ApiError("BAD_REQUEST", `Unknown requesttype ${quote(requesttype)}. Known request types: ${types.join(", ")}`);
  }
  const method = ofType.find((m) => m.requestmethod.toLowerCase() === requestmethod.trim().toLowerCase());
  if (!method) {
    throw new ApiError(
      "BAD_REQUEST",
      `Unknown requestmethod ${quote(requestmethod)} for requesttype ${ofType[0]!.requesttype}. ` +
        `Known methods: ${ofType.map((m) => m.requestmethod).join(", ")}`,
    );
  }
  return method;
}
