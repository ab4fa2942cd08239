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

/** Hands out ids of one table: `take(count)` is the first of `count` consecutive ids no one else gets. */
export interface IdSource {
  take(count: number): Promise<number>;
}

/** Ids straight from the control database, a statement per take: for one request's writes. */
export const idsFromControl = (control: D1Database, table: AllocatedTable): IdSource => ({ take: (count) => allocateIds(control, table, count) });

/**
 * Ids from blocks of at least `blockSize`, so that a long writer (an import's slice) asks the control database
 * once per block rather than once per batch. The rest of a block is never handed out once the writer is done:
 * ids are unique, not dense, and 2^53 leaves room for that.
 */
export function idsInBlocks(control: D1Database, table: AllocatedTable, blockSize: number): IdSource {
  let next = 0;
  let end = 0;
  return {
    async take(count) {
      if (end - next < count) {
        const size = Math.max(count, blockSize);
        next = await allocateIds(control, table, size);
        end = next + size;
      }
      const first = next;
      next += count;
      return first;
    },
  };
}
