import { z } from "zod";
import { describeIssues } from "../api/envelope";
import { defineMethod } from "../api/method";
import { CONTACT_LIMITS, listId, parseContact } from "../contacts/input";
import { ownList } from "../contacts/lists";
import { contactInput, writeContacts, type ContactInput, type ContactResult } from "../contacts/write";
import { booleanish } from "./segment_selection";
import { nowSeconds } from "./subscribers_add_subscriber_to_list";

/**
 * Subscribers / AddOrUpdateSubscribers {list, contact[…]}: up to 1,000 contacts in one call and one D1 batch.
 * Each contact is checked on its own and gets its own result (added, updated, or rejected with a reason that
 * names it as contact.<n>), so the call never fails as a whole for one bad contact. With `update_if_exists`
 * false, contacts already in the list are rejected instead of updated.
 */
export const addOrUpdateSubscribers = defineMethod({
  requesttype: "Subscribers",
  requestmethod: "AddOrUpdateSubscribers",
  summary: "Adds or updates up to 1,000 subscribers of a list in one call, with a result for each.",
  details: z.object({
    list: listId,
    update_if_exists: booleanish.default(true),
    // Each contact is checked on its own below, so that one bad contact fails only itself.
    contact: z
      .array(z.unknown(), { error: (issue) => (issue.input === undefined ? "is required" : "must be an array of contacts") })
      .min(1, "must hold at least one contact")
      .max(CONTACT_LIMITS.contactsPerCall, {
        error: (issue) =>
          `at most ${CONTACT_LIMITS.contactsPerCall} contacts per call (got ${Array.isArray(issue.input) ? issue.input.length : "more"}); send the rest in further calls, or use ImportSubscribersAsync`,
      }),
  }),
  example: {
    list: "12",
    update_if_exists: true,
    contact: [
      { email: "ada@example.com", customfield: [{ name: "First Name", value: "Ada" }], tag: ["vip"] },
      { email: "grace@example.com", status: "inactive" },
    ],
  },
  async handle({ env, account, writableShard }, details) {
    const shard = await writableShard();
    await ownList(shard.db, account.id, details.list, "details.list");
    const results: ContactResult[] = new Array(details.contact.length);
    const valid: Array<{ index: number; contact: ContactInput }> = [];
    for (const [index, raw] of details.contact.entries()) {
      const parsed = parseContact(raw);
      if (!parsed.success) {
        results[index] = { result: "rejected", kind: "invalid", reason: describeIssues(parsed.error, `contact.${index}`) };
        continue;
      }
      valid.push({ index, contact: contactInput(parsed.data) });
    }
    const written = await writeContacts(
      env,
      shard,
      account.id,
      details.list,
      valid.map((v) => v.contact),
      {
        ifExists: details.update_if_exists ? "update" : "reject",
        ifMissing: "add",
        pathOf: (i) => `contact.${valid[i]!.index}`,
        now: nowSeconds(),
      },
    );
    written.forEach((result, i) => (results[valid[i]!.index] = result));

    const emailOf = (raw: unknown) => (typeof raw === "object" && raw !== null && typeof (raw as { email?: unknown }).email === "string" ? (raw as { email: string }).email : null);
    const count = (what: ContactResult["result"]) => results.filter((r) => r.result === what).length;
    return {
      added: count("added"),
      updated: count("updated"),
      rejected: count("rejected"),
      results: results.map((result, index) =>
        result.result === "rejected"
          ? { index, email: emailOf(details.contact[index]), result: "rejected", reason: result.reason }
          : { index, email: valid.find((v) => v.index === index)!.contact.email, result: result.result, subscriberid: String(result.subscriberid) },
      ),
    };
  },
});
