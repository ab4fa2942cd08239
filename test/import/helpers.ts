/** Driving imports in tests: accepting one through the API method with a recording queue, and reading results. */
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { loadConfig } from "../../src/config";
import { accounts } from "../../src/db/schema";
import { importSubscribersAsync } from "../../src/methods/subscribers_import_subscribers_async";
import { db, methodContext, shardDb, type TestAccount } from "../fixtures";
import type { Harness } from "../export/driver";

/** Stores `text` as an object under the account's imports/ prefix, for source {object}. */
export async function storeImportFile(accountId: number, name: string, content: string | Uint8Array): Promise<string> {
  const key = `imports/${accountId}/${name}`;
  await env.EXPORTS.put(key, content);
  return key;
}

/** Accepts an import through the API method itself, with the harness's recording queue; returns its job id. */
export async function acceptImport(h: Harness, account: TestAccount, details: Record<string, unknown>): Promise<string> {
  const row = await db().select().from(accounts).where(eq(accounts.id, account.id)).get();
  const config = { ...h.deps.config, EXPORT_MAX_ACTIVE_PER_ACCOUNT: 1_000_000 };
  const { jobid } = (await importSubscribersAsync.handle(
    methodContext(h.deps.env, row!, config),
    importSubscribersAsync.details.parse({ notify: { type: "webhook", value: `https://hooks.test/imports/${crypto.randomUUID()}` }, ...details }),
  )) as { jobid: string };
  h.sent.splice(0);
  return jobid;
}

export interface ListMember {
  id: number;
  email: string;
  status: string;
  subscribe_date: string;
  custom_fields: Record<string, unknown>;
  tags: string[];
}

/** A list's subscribers as stored, by email, with their tag names. */
export async function listMembers(accountId: number, listId: number): Promise<Map<string, ListMember>> {
  const shard = await shardDb(accountId);
  const rows = await shard.all<{ id: number; email: string; status: string; subscribe_date: string; custom_fields: string; tags: string | null }>(sql`
    SELECT s.id, s.email, s.status, s.subscribe_date, s.custom_fields,
           (SELECT group_concat(t.name, '|') FROM (SELECT t.name FROM subscriber_tags st JOIN tags t ON t.id = st.tag_id
             WHERE st.subscriber_id = s.id ORDER BY t.name) t) AS tags
    FROM subscribers s WHERE s.list_id = ${listId} ORDER BY s.id`);
  return new Map(
    rows.map((r) => [
      r.email,
      { id: Number(r.id), email: r.email, status: r.status, subscribe_date: r.subscribe_date, custom_fields: JSON.parse(r.custom_fields), tags: r.tags ? r.tags.split("|") : [] },
    ]),
  );
}
