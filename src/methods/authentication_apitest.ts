import { z } from "zod";
import { defineMethod } from "../api/method";

/** Authentication / APITest: succeeds when the credentials are valid (authentication runs before every method). */
export const apiTest = defineMethod({
  requesttype: "Authentication",
  requestmethod: "APITest",
  summary: "Checks the credentials: succeeds with the account's username when they are valid.",
  details: z.unknown(),
  example: {},
  async handle({ account }) {
    return { authenticated: true, username: account.username };
  },
});
