import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("answers APITest with a bad-credentials error", async () => {
  const res = await exports.default.fetch("http://x/apijson.php", {
    method: "POST",
    body: JSON.stringify({ username: "nobody", usertoken: "x", requesttype: "Authentication", requestmethod: "APITest" }),
  });
  expect(res.status).toBe(401);
  expect(await res.json()).toEqual({ response: { status: "ERROR", errormessage: "Invalid username or usertoken" } });
});
