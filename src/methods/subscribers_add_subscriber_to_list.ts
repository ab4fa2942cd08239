import { z } from "zod";
import { defineMethod } from "../api/method";
import { contactFields, listId, oneStatus, statusOf } from "../contacts/input";
import { ownList } from "../contacts/lists";
import { singleResult } from "../contacts/results";
import { writeContacts } from "../contacts/write";
import { booleanish } from "./segment_selection";

/**
 * Subscribers / AddSubscriberToList: one contact into a list, with custom field values and tags. An email
 * already in the list is updated if `update_if_exists`, else refused (409, with its subscriber id). `confirmed`
 * (a new subscriber's default: yes) makes the subscriber active; unconfirmed ones are inactive.
 */
export const addSubscriberToList = defineMethod({
  requesttype: "Subscribers",
  requestmethod: "AddSubscriberToList",
  summary: "Adds one subscriber to a list (or updates it, with update_if_exists), with custom field values and tags.",
  details: z
    .object({ ...contactFields, list: listId, update_if_exists: booleanish.default(false) })
    .refine(oneStatus.check, oneStatus.error),
  example: {
    email: "ada@example.com",
    list: "12",
    update_if_exists: true,
    confirmed: "yes",
    tag: ["vip"],
    customfield: [
      { name: "First Name", value: "Ada" },
      { fieldid: "7", value: 42 },
    ],
  },
  async handle({ env, account, writableShard }, details) {
    const shard = await writableShard();
    await ownList(shard.db, account.id, details.list, "details.list");
    const [result] = await writeContacts(
      env,
      shard,
      account.id,
      details.list,
      [
        {
          email: details.email,
          // Neither given: a new subscriber is active (confirmed), an existing one keeps its status.
          status: statusOf(details),
          subscribeDate: details.subscribedate,
          fields: details.customfield,
          tags: details.tag,
        },
      ],
      { ifExists: details.update_if_exists ? "update" : "reject", ifMissing: "add", pathOf: () => "details", now: nowSeconds() },
    );
    return { ...singleResult(result!), email: details.email, listid: String(details.list) };
  },
});

/** Now, as subscribe dates are stored: ISO 8601 UTC to the second. */
export const nowSeconds = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
