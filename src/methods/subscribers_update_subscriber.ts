import { and, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { contactFields, emailAddress, listId, oneStatus, statusOf } from "../contacts/input";
import { ownList } from "../contacts/lists";
import { singleResult } from "../contacts/results";
import { writeContacts } from "../contacts/write";
import { subscribers } from "../db/shard_schema";
import { nowSeconds } from "./subscribers_add_subscriber_to_list";

/**
 * Subscribers / UpdateSubscriber {email, list, newemail?, status?, subscribedate?, customfield[], tag[]}: changes
 * a subscriber of a list. Custom field values given replace those fields' values (null clears one; fields not
 * named keep theirs); tags given are added (UntagSubscribers removes). A new email already in the list is a 409.
 */
export const updateSubscriber = defineMethod({
  requesttype: "Subscribers",
  requestmethod: "UpdateSubscriber",
  summary: "Changes a subscriber of a list: its email, status, subscribe date, custom field values, tags.",
  details: z
    .object({ ...contactFields, list: listId, newemail: emailAddress.optional() })
    .refine(oneStatus.check, oneStatus.error),
  example: { email: "ada@example.com", list: "12", newemail: "ada.lovelace@example.com", customfield: [{ name: "Company", value: "Analytical Engines" }] },
  async handle({ env, account, writableShard }, details) {
    const shard = await writableShard();
    await ownList(shard.db, account.id, details.list, "details.list");
    let email = details.email;
    if (details.newemail !== undefined && details.newemail !== details.email) {
      // OR IGNORE: an email taken in the list changes nothing, and says so below (no unique-constraint error).
      const [moved] = await shard.db.all<{ id: number }>(sql`
        UPDATE OR IGNORE subscribers SET email = ${details.newemail}
        WHERE account_id = ${account.id} AND list_id = ${details.list} AND email = ${details.email}
        RETURNING id`);
      if (!moved) {
        const taken = await shard.db
          .select({ id: subscribers.id })
          .from(subscribers)
          .where(and(eq(subscribers.listId, details.list), eq(subscribers.email, details.newemail)))
          .get();
        if (taken) throw new ApiError("CONFLICT", `details.newemail: ${quote(details.newemail)} is already in list ${details.list} (subscriber id ${taken.id})`);
        throw new ApiError("NOT_FOUND", `details.email: ${quote(details.email)} is not in list ${details.list}`);
      }
      email = details.newemail;
    }
    const [result] = await writeContacts(
      env,
      shard,
      account.id,
      details.list,
      [{ email, status: statusOf(details), subscribeDate: details.subscribedate, fields: details.customfield, tags: details.tag }],
      { ifExists: "update", ifMissing: "reject", pathOf: () => "details", now: nowSeconds() },
    );
    const { subscriberid } = singleResult(result!);
    return { subscriberid, email, listid: String(details.list) };
  },
});
