import { sql } from "drizzle-orm";
import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { emailAddress, listId } from "../contacts/input";
import { ownList } from "../contacts/lists";

/** {email, list}: the subscriber both calls below act on. */
export const subscriberInList = z.object({ email: emailAddress, list: listId });

/**
 * Subscribers / UnsubscribeSubscriber {email, list}: the subscriber stays in the list as "unsubscribed" (so that
 * a later import does not quietly subscribe them again by accident, and exports can filter on it).
 */
export const unsubscribeSubscriber = defineMethod({
  requesttype: "Subscribers",
  requestmethod: "UnsubscribeSubscriber",
  summary: "Marks a subscriber of a list unsubscribed.",
  details: subscriberInList,
  example: { email: "ada@example.com", list: "12" },
  async handle({ account, writableShard }, { email, list }) {
    const { db } = await writableShard();
    await ownList(db, account.id, list, "details.list");
    const [row] = await db.all<{ id: number }>(sql`
      UPDATE subscribers SET status = 'unsubscribed'
      WHERE account_id = ${account.id} AND list_id = ${list} AND email = ${email}
      RETURNING id`);
    if (!row) throw new ApiError("NOT_FOUND", `details.email: ${quote(email)} is not in list ${list}`);
    return { subscriberid: String(row.id), email, listid: String(list), status: "unsubscribed" };
  },
});
