import type { AllocatedTable } from "../db/shard_schema";

/**
 * Ids of the data tables, handed out by the control database so that they are unique across every shard: an
 * account that moves keeps its ids (clients store them) and they cannot collide with the rows of the accounts
 * already on the target shard. A block of `count` ids costs one statement; bulk writers take large blocks.
 *
 * Returns the first id of a block of `count` consecutive ids, none of which was handed out before.
 */
export async function allocateIds(control: D1Database, table: AllocatedTable, count = 1): Promise<number> {
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`allocateIds: count must be a positive integer, not ${count}`);
  const row = await control
    .prepare(
      `INSERT INTO id_sequences (name, last_id) VALUES (?1, ?2)
       ON CONFLICT (name) DO UPDATE SET last_id = last_id + ?2
       RETURNING last_id`,
    )
    .bind(table, count)
    .first<{ last_id: number }>();
  if (!row) throw new Error(`allocateIds: the allocator returned nothing for ${table}`);
  return row.last_id - count + 1;
}
