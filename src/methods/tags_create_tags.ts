import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { quote, tooLong } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { entityName } from "../contacts/input";
import { tags } from "../db/shard_schema";
import { allocateIds } from "../shards/ids";

const MAX_DESCRIPTION_LENGTH = 1_000;

/** Tags / CreateTags {name, description?}: a new tag; names are unique in the account (409 with its id). */
export const createTags = defineMethod({
  requesttype: "Tags",
  requestmethod: "CreateTags",
  summary: "Creates a tag; its name must be new in the account.",
  details: z.object({
    name: entityName,
    description: z.string({ error: "must be a string" }).trim().max(MAX_DESCRIPTION_LENGTH, tooLong(MAX_DESCRIPTION_LENGTH)).optional(),
  }),
  example: { name: "vip", description: "Customers with a yearly plan" },
  async handle({ env, account, writableShard }, { name, description }) {
    const { db } = await writableShard();
    const id = await allocateIds(env.DB, "tags", 1);
    const [created] = await db
      .insert(tags)
      .values({ id, accountId: account.id, name, description: description ?? null })
      .onConflictDoNothing()
      .returning({ id: tags.id, createdAt: tags.createdAt });
    if (!created) {
      const existing = await db.select({ id: tags.id }).from(tags).where(and(eq(tags.accountId, account.id), eq(tags.name, name))).get();
      throw new ApiError("CONFLICT", `details.name: the account already has a tag named ${quote(name)} (tagid ${existing?.id ?? "unknown"})`);
    }
    return { tagid: String(created.id), name, description: description ?? null, createdate: created.createdAt };
  },
});
