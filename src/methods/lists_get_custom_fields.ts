import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import { defineMethod } from "../api/method";
import { defaultOf } from "../contacts/fields";
import { listId } from "../contacts/input";
import { ownList } from "../contacts/lists";
import { customFields } from "../db/shard_schema";

/**
 * Lists / GetCustomFields {list[]}: the custom fields, as Pinpointe names them. Fields here belong to the
 * account and every list has them all, so the lists only have to be the account's (an unknown one is a 404).
 */
export const getCustomFields = defineMethod({
  requesttype: "Lists",
  requestmethod: "GetCustomFields",
  summary: "The account's custom fields (every list has them all), with their types, defaults and whether required.",
  details: z
    .object({
      list: z
        .preprocess((value) => (value === undefined || Array.isArray(value) ? value : [value]), z.array(listId).max(50, "at most 50 lists"))
        .optional(),
    })
    .optional()
    .default({}),
  example: { list: ["12"] },
  async handle({ account, shard }, { list }) {
    const { db } = await shard();
    for (const [i, id] of (list ?? []).entries()) await ownList(db, account.id, id, `details.list.${i}`);
    const fields = await db.select().from(customFields).where(eq(customFields.accountId, account.id)).orderBy(asc(customFields.id));
    return fields.map((field) => ({
      fieldid: String(field.id),
      name: field.name,
      fieldtype: field.type,
      defaultvalue: defaultOf(field),
      required: field.required,
    }));
  },
});
