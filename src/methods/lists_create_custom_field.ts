import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { typedValue, type StoredValue } from "../contacts/fields";
import { entityName } from "../contacts/input";
import { customFields, CUSTOM_FIELD_TYPES } from "../db/shard_schema";
import { allocateIds } from "../shards/ids";
import { booleanish, caseInsensitiveEnum } from "./segment_selection";

/**
 * Lists / CreateCustomField {name, type, defaultvalue?, isrequired?}: a field every list of the account has.
 * The default must be a value of the type; it fills in for new subscribers who give none. Names are unique in
 * the account (409 with the field's id otherwise).
 */
export const createCustomField = defineMethod({
  requesttype: "Lists",
  requestmethod: "CreateCustomField",
  summary: "Creates a custom field (text, number or date) with an optional default, optionally required.",
  details: z.object({
    name: entityName,
    type: caseInsensitiveEnum(CUSTOM_FIELD_TYPES),
    defaultvalue: z.unknown().optional(),
    isrequired: booleanish.default(false),
  }),
  example: { name: "Company", type: "text", defaultvalue: "", isrequired: false },
  async handle({ env, account, writableShard }, { name, type, defaultvalue, isrequired }) {
    // Stored as text; GetCustomFields gives it back typed.
    let typedDefault: StoredValue = null;
    if (defaultvalue !== undefined && defaultvalue !== null && defaultvalue !== "") {
      const typed = typedValue(type, defaultvalue);
      if (!typed.ok) throw new ApiError("BAD_REQUEST", `details.defaultvalue: ${typed.reason} for a ${type} field`);
      typedDefault = typed.value;
    }
    const stored = typedDefault === null ? null : String(typedDefault);
    const { db } = await writableShard();
    const id = await allocateIds(env.DB, "custom_fields", 1);
    const [created] = await db
      .insert(customFields)
      .values({ id, accountId: account.id, name, type, defaultValue: stored, required: isrequired })
      .onConflictDoNothing()
      .returning({ id: customFields.id });
    if (!created) {
      const existing = await db
        .select({ id: customFields.id })
        .from(customFields)
        .where(and(eq(customFields.accountId, account.id), eq(customFields.name, name)))
        .get();
      throw new ApiError("CONFLICT", `details.name: the account already has a custom field named ${quote(name)} (fieldid ${existing?.id ?? "unknown"})`);
    }
    return { fieldid: String(created.id), name, fieldtype: type, defaultvalue: typedDefault, required: isrequired };
  },
});
