import { sql } from "drizzle-orm";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { ownList } from "../contacts/lists";
import { subscriberInList } from "./subscribers_unsubscribe_subscriber";

/** Subscribers / DeleteSubscriber {email, list}: removes the subscriber from the list, with its values and tags. */
export const deleteSubscriber = defineMethod({
  requesttype: "Subscribers",
  requestmethod: "DeleteSubscriber",
  summary: "Deletes a subscriber from a list, with its custom field values and tags.",
  details: subscriberInList,
  example: { email: "ada@example.com", list: "12" },
  async handle({ account, writableShard }, { email, list }) {
    const { db } = await writableShard();
    await ownList(db, account.id, list, "details.list");
    // The tags go with it (subscriber_tags cascades).
    const [row] = await db.all<{ id: number }>(sql`
      DELETE FROM subscribers WHERE account_id = ${account.id} AND list_id = ${list} AND email = ${email} RETURNING id`);
    if (!row) throw new ApiError("NOT_FOUND", `details.email: ${quote(email)} is not in list ${list}`);
    return { subscriberid: String(row.id), email, listid: String(list), deleted: true };
  },
});
