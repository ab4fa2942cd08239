import { and, eq, inArray, lte, notInArray, sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { Config } from "../config";
import {
  accountDirectory,
  accountMoves,
  exportJobs,
  shards,
  type AccountMove,
  type MoveCursor,
  type MoveState,
  type MoveVerification,
} from "../db/control_schema";
import { describeForLog, DomainError } from "../errors";
import type { QueueAction } from "../export/consumer";
import { exportRetryDelay } from "../notify/backoff";
import { toHex } from "../hex";
import type { MoveMessage } from "../export/message";
import { openShard, type Shard } from "./directory";
import {
  afterKey,
  deleteUniqueCollisions,
  keyOrder,
  MOVED_TABLES,
  upsertPage,
  upToKey,
  type MovedTable,
} from "./moved_tables";

/**
 * Moving an account to another shard (npm run account:move), as a resumable job of the export worker, driven
 * by queue messages like an export (a fenced lease, a drive, a checkpoint per slice; the sweeper re-drives a
 * move whose message was lost or whose slice died). Every step is idempotent, so a slice that dies anywhere
 * is simply run again from the last checkpoint.
 *
 *  1. copying: every row of the account is copied to the target by keyset pages, writes still open.
 *  2. reconciling: writes to the account are frozen (account_directory.writes_frozen). Each page of the source
 *     is compared with the same key range of the target; rows that differ, are missing or are extra are
 *     repaired, and both sides are counted and checksummed (a running SHA-256 per table).
 *  3. The switch, in one control-database transaction: counts and checksums must be equal on both sides;
 *     the directory then points at the target, writes are unfrozen, and the move is "draining".
 *  4. draining: exports whose slice is still reading the source finish that slice (they "finish on the old
 *     shard"); once no lease on the source is live, the account's unfinished jobs still marked with the source
 *     are fenced, so their next claim restarts them on the target (src/export/checkpoint.ts claimJob).
 *  5. cleaning: the source rows are deleted, children first. Then "done".
 *
 * Before the switch, a move that keeps failing (or a target that cannot be opened) rolls back: the target's
 * copy is deleted and writes are unfrozen. After the switch it only ever goes forward.
 */

export interface MoveDeps {
  env: Env;
  config: Config;
  /** The control database. */
  db: DrizzleD1Database;
  now: () => number;
  /** Test hook: throwing here simulates the move's slice dying at that point. */
  moveFault?: (point: MoveFaultPoint) => void | Promise<void>;
}

export type MoveFaultPoint = "after-page" | "before-checkpoint" | "after-freeze" | "before-switch" | "after-switch" | "after-fence";

export type MoveOutcome =
  | { kind: "continue"; drive: number; delaySeconds: number }
  | { kind: "finished"; move: AccountMove }
  | { kind: "busy"; retryInMs: number }
  | { kind: "stale" }
  | { kind: "missing" };

/** A slice may overrun its budget by one page; the lease covers that. */
const LEASE_MARGIN_MS = 120_000;
/** How long a draining move waits before it looks again at the exports still reading the source. */
const DRAIN_POLL_SECONDS = 15;

export const ACTIVE_MOVE_STATES: MoveState[] = ["copying", "reconciling", "draining", "cleaning", "rolling_back"];
const BEFORE_SWITCH: MoveState[] = ["copying", "reconciling"];

export class MoveLeaseLostError extends Error {
  constructor(moveId: number) {
    super(`move ${moveId}: another slice took over; this slice's work is discarded`);
    this.name = "MoveLeaseLostError";
  }
}

/**
 * What a move does in each state: a list of steps over the tables. `hash` steps count and checksum both sides
 * for the switch's verification; `keepExtras` leaves the target's extra rows (lists are referenced by
 * subscribers without cascading, so their extra rows can go only at the end, once the subscribers agree).
 */
interface SyncStep {
  kind: "sync";
  table: MovedTable;
  keepExtras: boolean;
  hash: boolean;
}
interface DeleteStep {
  kind: "delete";
  table: MovedTable;
  from: "source" | "target";
}
type Step = SyncStep | DeleteStep;

const tablesInOrder = MOVED_TABLES;
const tablesChildrenFirst = [...MOVED_TABLES].reverse();

const PLANS: Record<"copying" | "reconciling" | "cleaning" | "rolling_back", Step[]> = {
  copying: tablesInOrder.map((table) => ({ kind: "sync", table, keepExtras: !!table.referenced, hash: false })),
  reconciling: [
    ...tablesInOrder.map((table): Step => ({ kind: "sync", table, keepExtras: !!table.referenced, hash: !table.referenced })),
    ...tablesChildrenFirst
      .filter((table) => table.referenced)
      .map((table): Step => ({ kind: "sync", table, keepExtras: false, hash: true })),
  ],
  cleaning: tablesChildrenFirst.map((table) => ({ kind: "delete", table, from: "source" })),
  rolling_back: tablesChildrenFirst.map((table) => ({ kind: "delete", table, from: "target" })),
};

/** The state after a plan is done. */
const NEXT_STATE: Record<keyof typeof PLANS, MoveState> = {
  copying: "reconciling",
  reconciling: "draining",
  cleaning: "done",
  rolling_back: "failed",
};

/**
 * Records a move of an account to `target` and returns its id; the sweeper sends its first message (or the
 * caller may). Refused if the account is already on the target, has no directory entry, or is being moved.
 */
export async function requestMove(db: DrizzleD1Database, accountId: number, target: string, now: number): Promise<number> {
  const entry = await db.select().from(accountDirectory).where(eq(accountDirectory.accountId, accountId)).get();
  if (!entry) throw new Error(`account ${accountId} has no entry in the shard directory`);
  if (entry.shard === target) throw new Error(`account ${accountId} is already on ${target}`);
  const registered = await db.select().from(shards).where(eq(shards.name, target)).get();
  if (!registered) throw new Error(`${target} is not a registered shard`);
  const [move] = await db
    .insert(accountMoves)
    .values({ accountId, source: entry.shard, target, updatedAt: now })
    .onConflictDoNothing()
    .returning({ id: accountMoves.id });
  if (!move) throw new Error(`account ${accountId} is already being moved`);
  return move.id;
}

/** Runs one slice of a move: the steps of its state, from its cursor, until done or out of budget. */
export async function runMoveSlice(deps: MoveDeps, moveId: number, drive: number): Promise<MoveOutcome> {
  const now = deps.now();
  const leaseMs = deps.config.MOVE_SLICE_BUDGET_MS + LEASE_MARGIN_MS;
  const [claimed] = await deps.db
    .update(accountMoves)
    .set({
      version: sql`${accountMoves.version} + 1`,
      leaseExpiresAt: now + leaseMs,
      slices: sql`${accountMoves.slices} + 1`,
      updatedAt: now,
    })
    .where(
      and(
        eq(accountMoves.id, moveId),
        eq(accountMoves.drive, drive),
        inArray(accountMoves.state, ACTIVE_MOVE_STATES),
        lte(accountMoves.leaseExpiresAt, now),
      ),
    )
    .returning();
  if (!claimed) {
    const current = await deps.db.select().from(accountMoves).where(eq(accountMoves.id, moveId)).get();
    if (!current) return { kind: "missing" };
    if (!ACTIVE_MOVE_STATES.includes(current.state)) return { kind: "finished", move: current };
    if (current.drive !== drive) return { kind: "stale" };
    return { kind: "busy", retryInMs: Math.max(0, current.leaseExpiresAt - now) };
  }
  return new MoveSlice(deps, claimed, now).run();
}

class MoveSlice {
  private state: MoveState;
  private cursor: MoveCursor;
  private verification: MoveVerification;
  private copied = 0;
  private deleted = 0;
  private version: number;

  constructor(
    private readonly deps: MoveDeps,
    private readonly move: AccountMove,
    private readonly started: number,
  ) {
    this.state = move.state;
    this.cursor = move.cursor;
    this.verification = move.verification;
    this.version = move.version;
  }

  private get fault() {
    return this.deps.moveFault ?? (() => {});
  }

  private outOfBudget() {
    return this.deps.now() - this.started >= this.deps.config.MOVE_SLICE_BUDGET_MS;
  }

  async run(): Promise<MoveOutcome> {
    for (;;) {
      if (this.state === "draining") return this.drain();
      if (this.state === "done" || this.state === "failed") return { kind: "finished", move: await this.load() };
      const plan = PLANS[this.state as keyof typeof PLANS];
      const source = this.open(this.move.source);
      let target: Shard;
      try {
        target = this.open(this.move.target);
      } catch (error) {
        // A target that cannot be opened was never written: there is nothing of it to roll back.
        if (this.state !== "rolling_back" || !(error instanceof DomainError)) throw error;
        await this.finishPlan("rolling_back");
        continue;
      }
      while (this.cursor.step < plan.length) {
        const step = plan[this.cursor.step]!;
        const done = step.kind === "sync" ? await this.syncPage(step, source, target) : await this.deletePage(step, step.from === "source" ? source : target);
        await this.fault("after-page");
        if (done) this.cursor = { step: this.cursor.step + 1, after: null };
        // At least one page per slice, so that every slice moves the cursor on.
        if (this.cursor.step < plan.length && this.outOfBudget()) return this.handover(0);
      }
      await this.finishPlan(this.state as keyof typeof PLANS);
    }
  }

  private open(name: string): Shard {
    return openShard(this.deps.env, name);
  }

  /**
   * One page of a table: the source's next rows and the target's rows in the same key range. If they differ,
   * the target is repaired (extra rows deleted, rows that hold a unique key under another id deleted, the
   * source rows upserted) and read again. Returns true when the table is done.
   */
  private async syncPage(step: SyncStep, source: Shard, target: Shard): Promise<boolean> {
    const { table } = step;
    const limit = this.deps.config.MOVE_PAGE_ROWS;
    const after = this.cursor.after;
    const sourceRows = await readRows(source, table, this.move.accountId, after, null, limit);
    const last = sourceRows.length === limit ? keyOf(table, sourceRows[sourceRows.length - 1]!) : null;
    // Capped: a range holding more than twice the page differs anyway, and the repair empties it of extras.
    const readTarget = () => readRows(target, table, this.move.accountId, after, last, 2 * limit + 1);
    let targetRows = await readTarget();

    const sourceText = comparedText(table, sourceRows);
    if (comparedText(table, targetRows) !== sourceText || sourceRows.length !== targetRows.length) {
      await this.repair(step, target, after, last, sourceRows);
      targetRows = await readTarget();
      const targetText = comparedText(table, targetRows);
      // Only possible if something writes to the account while its writes are frozen, or during the copy
      // (then the reconcile pass repairs it): either way, this page is compared again by the next slice.
      if (this.state === "reconciling" && targetText !== sourceText && !(step.keepExtras && targetRows.length > sourceRows.length)) {
        throw new Error(`move ${this.move.id}: ${table.name} still differs after a repair (after key ${JSON.stringify(after)})`);
      }
    }
    if (step.hash) await this.addToChecksums(table, sourceText, sourceRows.length, comparedText(table, targetRows), targetRows.length);
    this.cursor = { step: this.cursor.step, after: last };
    return last === null;
  }

  private async repair(step: SyncStep, target: Shard, after: number[] | null, last: number[] | null, rows: unknown[][]) {
    const { table } = step;
    const page = JSON.stringify(rows);
    const statements: D1PreparedStatement[] = [];
    if (!step.keepExtras) statements.push(deleteExtras(target, table, this.move.accountId, after, last, rows));
    const collisions = deleteUniqueCollisions(table);
    if (collisions) statements.push(target.d1.prepare(collisions).bind(page));
    if (rows.length > 0) statements.push(target.d1.prepare(upsertPage(table)).bind(page));
    await target.d1.batch(statements);
    this.copied += rows.length;
  }

  private async addToChecksums(table: MovedTable, sourceText: string, sourceRows: number, targetText: string, targetRows: number) {
    const entry = (this.verification[table.name] ??= { sourceRows: 0, targetRows: 0, sourceHash: "", targetHash: "" });
    entry.sourceRows += sourceRows;
    entry.targetRows += targetRows;
    entry.sourceHash = await chain(entry.sourceHash, sourceText);
    entry.targetHash = await chain(entry.targetHash, targetText);
  }

  /** Deletes the next page of the account's rows of a table; true when none are left. */
  private async deletePage(step: DeleteStep, shard: Shard): Promise<boolean> {
    const { table } = step;
    const result = await shard.d1
      .prepare(`DELETE FROM ${table.name} WHERE rowid IN (SELECT t.rowid ${table.scope} ORDER BY ${keyOrder(table)} LIMIT ?2)`)
      .bind(this.move.accountId, this.deps.config.MOVE_PAGE_ROWS)
      .run();
    this.deleted += result.meta.changes;
    return result.meta.changes === 0;
  }

  /** A plan is done: move to the next state, with whatever must change with it, in one transaction. */
  private async finishPlan(plan: keyof typeof PLANS) {
    const next = NEXT_STATE[plan];
    const { db } = this.deps;
    const moveId = this.move.id;
    const accountId = this.move.accountId;
    const now = this.deps.now();
    if (plan === "copying") {
      await this.checkpoint(next, [
        // Frozen from now until the switch: the reconcile pass then sees a source nobody changes.
        db.update(accountDirectory).set({ writesFrozen: true, updatedAt: now }).where(eq(accountDirectory.accountId, accountId)),
      ]);
      await this.fault("after-freeze");
    } else if (plan === "reconciling") {
      this.assertVerified();
      await this.fault("before-switch");
      await this.checkpoint(next, [
        db
          .update(accountDirectory)
          .set({ shard: this.move.target, writesFrozen: false, updatedAt: now })
          .where(and(eq(accountDirectory.accountId, accountId), eq(accountDirectory.shard, this.move.source))),
      ]);
      console.log(`move ${moveId}: account ${accountId} now reads and writes ${this.move.target}`);
      await this.fault("after-switch");
    } else if (plan === "rolling_back") {
      await this.checkpoint(next, [
        db.update(accountDirectory).set({ writesFrozen: false, updatedAt: now }).where(eq(accountDirectory.accountId, accountId)),
      ]);
    } else {
      await this.checkpoint(next, []);
    }
  }

  /** The switch's condition: every table has as many rows, and the same checksum, on both sides. */
  private assertVerified() {
    const problems = MOVED_TABLES.flatMap((table) => {
      const entry = this.verification[table.name];
      if (!entry) return [`${table.name} was not verified`];
      if (entry.sourceRows !== entry.targetRows) return [`${table.name} has ${entry.sourceRows} rows on the source and ${entry.targetRows} on the target`];
      if (entry.sourceHash !== entry.targetHash) return [`${table.name}'s checksums differ`];
      return [];
    });
    if (problems.length > 0) throw new Error(`move ${this.move.id}: the copy does not match: ${problems.join("; ")}`);
  }

  /**
   * Waits until no export slice holds a live lease while reading the source, then fences the account's
   * unfinished jobs still marked with the source: their next claim restarts them on the target, and a slice
   * that outlived its lease can no longer write.
   */
  private async drain(): Promise<MoveOutcome> {
    const { db } = this.deps;
    const now = this.deps.now();
    const onSource = and(
      eq(exportJobs.accountId, this.move.accountId),
      eq(exportJobs.shard, this.move.source),
      inArray(exportJobs.state, ["queued", "running"]),
    );
    const live = await db
      .select({ id: exportJobs.id })
      .from(exportJobs)
      .where(and(onSource, sql`${exportJobs.leaseExpiresAt} > ${now}`))
      .limit(1);
    if (live.length > 0) return this.handover(DRAIN_POLL_SECONDS);
    await db
      .update(exportJobs)
      .set({ version: sql`${exportJobs.version} + 1` })
      .where(and(onSource, lte(exportJobs.leaseExpiresAt, now)));
    await this.fault("after-fence");
    await this.checkpoint("cleaning", []);
    return this.run();
  }

  /** Saves the cursor and hands the move to its next message (due after `delaySeconds`). */
  private async handover(delaySeconds: number): Promise<MoveOutcome> {
    await this.fault("before-checkpoint");
    const now = this.deps.now();
    const [saved] = await this.deps.db
      .update(accountMoves)
      .set({
        ...this.progress(),
        version: this.version + 1,
        leaseExpiresAt: 0,
        drive: sql`${accountMoves.drive} + 1`,
        dueAt: now + delaySeconds * 1000,
        failures: 0,
        error: null,
        updatedAt: now,
      })
      .where(and(eq(accountMoves.id, this.move.id), eq(accountMoves.version, this.version)))
      .returning({ drive: accountMoves.drive });
    if (!saved) throw new MoveLeaseLostError(this.move.id);
    return { kind: "continue", drive: saved.drive, delaySeconds };
  }

  /**
   * Enters `next` (cursor at its first step), keeping the lease, together with `alongside` writes: one batch,
   * which applies only if this slice still holds the move.
   */
  private async checkpoint(next: MoveState, alongside: { toSQL(): { sql: string; params: unknown[] } }[]) {
    const { db } = this.deps;
    const now = this.deps.now();
    const newVersion = this.version + 1;
    this.state = next;
    this.cursor = { step: 0, after: null };
    const finished = next === "done" || next === "failed";
    const update = db
      .update(accountMoves)
      .set({
        ...this.progress(),
        state: next,
        version: newVersion,
        leaseExpiresAt: finished ? 0 : sql`${accountMoves.leaseExpiresAt}`,
        failures: 0,
        updatedAt: now,
        finishedAt: finished ? new Date(now).toISOString() : null,
      })
      .where(and(eq(accountMoves.id, this.move.id), eq(accountMoves.version, this.version)));
    // The other writes apply only if the move row was ours to update (its version is now newVersion).
    const fenced = alongside.map((statement) => {
      const { sql: text, params } = statement.toSQL();
      return this.deps.env.DB.prepare(
        `${text} AND (SELECT version FROM account_moves WHERE id = ?) = ?`,
      ).bind(...params, this.move.id, newVersion);
    });
    const { sql: updateSql, params: updateParams } = update.toSQL();
    const [first] = await this.deps.env.DB.batch([this.deps.env.DB.prepare(updateSql).bind(...updateParams), ...fenced]);
    if (first?.meta.changes !== 1) throw new MoveLeaseLostError(this.move.id);
    this.version = newVersion;
    this.copied = 0;
    this.deleted = 0;
  }

  private progress() {
    return {
      cursor: this.cursor,
      verification: this.verification,
      copiedRows: sql`${accountMoves.copiedRows} + ${this.copied}`,
      deletedRows: sql`${accountMoves.deletedRows} + ${this.deleted}`,
    };
  }

  private load() {
    return this.deps.db.select().from(accountMoves).where(eq(accountMoves.id, this.move.id)).get().then((m) => m!);
  }
}

/** The account's rows of a table after `after` (up to and including `last`, or `limit` of them), in key order. */
async function readRows(
  shard: Shard,
  table: MovedTable,
  accountId: number,
  after: number[] | null,
  last: number[] | null,
  limit: number | null,
): Promise<unknown[][]> {
  const params: unknown[] = [accountId, ...(after ?? [])];
  const conditions = [afterKey(table, after)];
  if (last) {
    conditions.push(upToKey(table, last, params.length + 1));
    params.push(...last);
  }
  let text = `SELECT ${table.columns.map((c) => `t.${c}`).join(", ")} ${table.scope} AND ${conditions.join(" AND ")} ORDER BY ${keyOrder(table)}`;
  if (limit !== null) {
    text += ` LIMIT ?${params.length + 1}`;
    params.push(limit);
  }
  return shard.d1
    .prepare(text)
    .bind(...params)
    .raw();
}

/** Deletes the target's rows in the page's key range that the page does not have. */
function deleteExtras(
  target: Shard,
  table: MovedTable,
  accountId: number,
  after: number[] | null,
  last: number[] | null,
  rows: unknown[][],
): D1PreparedStatement {
  const params: unknown[] = [accountId, ...(after ?? [])];
  const conditions = [afterKey(table, after)];
  if (last) {
    conditions.push(upToKey(table, last, params.length + 1));
    params.push(...last);
  }
  const keys = JSON.stringify(rows.map((row) => keyOf(table, row)));
  const keyValues = table.key.map((_, i) => `value ->> ${i}`).join(", ");
  const keyColumns = table.key.length === 1 ? `t.${table.key[0]}` : `(${table.key.map((c) => `t.${c}`).join(", ")})`;
  params.push(keys);
  return target.d1
    .prepare(
      `DELETE FROM ${table.name} WHERE rowid IN (SELECT t.rowid ${table.scope} AND ${conditions.join(" AND ")}
         AND ${keyColumns} NOT IN (SELECT ${keyValues} FROM json_each(?${params.length})))`,
    )
    .bind(...params);
}

const keyOf = (table: MovedTable, row: unknown[]) => table.key.map((column) => row[table.columns.indexOf(column)] as number);

/** The compared columns of a page, as text: equal texts mean equal rows. */
function comparedText(table: MovedTable, rows: unknown[][]): string {
  if (table.compared.length === table.columns.length) return JSON.stringify(rows);
  const positions = table.compared.map((column) => table.columns.indexOf(column));
  return JSON.stringify(rows.map((row) => positions.map((i) => row[i])));
}

/** A running checksum: SHA-256 of the previous value and the next page. */
async function chain(previous: string, page: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${previous}\n${page}`));
  return toHex(digest);
}

/**
 * After a slice failed: counts the failure; before the switch, too many failures in a row (or a target that
 * cannot be opened at all) roll the move back. Returns the delay before the move's message comes back.
 */
export async function moveSliceFailed(deps: MoveDeps, moveId: number, error: unknown): Promise<number | "rolled_back"> {
  const [move] = await deps.db
    .update(accountMoves)
    .set({
      failures: sql`${accountMoves.failures} + 1`,
      error: (error instanceof Error ? error.message : String(error)).slice(0, 500),
      leaseExpiresAt: 0,
      updatedAt: deps.now(),
    })
    .where(and(eq(accountMoves.id, moveId), inArray(accountMoves.state, ACTIVE_MOVE_STATES)))
    .returning();
  if (!move) return 0;
  const hopeless = error instanceof DomainError && !error.retryable;
  const beforeSwitch = BEFORE_SWITCH.includes(move.state);
  if (beforeSwitch && (hopeless || move.failures >= deps.config.EXPORT_MAX_ATTEMPTS)) {
    await rollBack(deps.db, moveId, move.version);
    return "rolled_back";
  }
  return exportRetryDelay(move.failures);
}

/**
 * Turns a move that has not switched yet into a roll-back: its next slice deletes the target's copy and
 * unfreezes writes. Fenced on the version read, so a slice holding the move loses its lease.
 */
export async function rollBack(db: DrizzleD1Database, moveId: number, version: number): Promise<boolean> {
  const [move] = await db
    .update(accountMoves)
    .set({
      state: "rolling_back",
      cursor: { step: 0, after: null },
      version: version + 1,
      leaseExpiresAt: 0,
      drive: sql`${accountMoves.drive} + 1`,
      dueAt: 0,
    })
    .where(and(eq(accountMoves.id, moveId), eq(accountMoves.version, version), inArray(accountMoves.state, BEFORE_SWITCH)))
    .returning({ id: accountMoves.id });
  return !!move;
}

/** Unfinished moves whose message is overdue (or was never sent) and whose lease has run out. */
export async function overdueMoves(db: DrizzleD1Database, now: number, lostAfterMs: number) {
  return db
    .select({ id: accountMoves.id, drive: accountMoves.drive, version: accountMoves.version })
    .from(accountMoves)
    .where(
      and(
        notInArray(accountMoves.state, ["done", "failed"]),
        lte(accountMoves.dueAt, now - lostAfterMs),
        lte(accountMoves.leaseExpiresAt, now),
      ),
    )
    .limit(50);
}

/**
 * The queue's handler for a move message: runs a slice and sends the continuation, or retries on the
 * schedule after a failure (rolling back a move that keeps failing before its switch).
 */
export async function handleMoveMessage(message: MoveMessage, deps: MoveDeps): Promise<QueueAction> {
  try {
    const outcome = await runMoveSlice(deps, message.moveId, message.drive);
    switch (outcome.kind) {
      case "missing":
        console.warn(`move ${message.moveId}: no such move; message dropped`);
        return { action: "ack" };
      case "stale":
      case "finished":
        return { action: "ack" };
      case "busy":
        return { action: "retry", delaySeconds: Math.ceil(outcome.retryInMs / 1000) + 1 };
      case "continue":
        await sendMoveMessage(deps.env, { kind: "move", moveId: message.moveId, drive: outcome.drive }, outcome.delaySeconds);
        return { action: "ack" };
    }
  } catch (error) {
    if (error instanceof MoveLeaseLostError) {
      console.warn(error.message);
      return { action: "ack" };
    }
    console.error(`move ${message.moveId}: slice failed: ${describeForLog(error)}`);
    const next = await moveSliceFailed(deps, message.moveId, error);
    if (next === "rolled_back") {
      const move = await deps.db.select().from(accountMoves).where(eq(accountMoves.id, message.moveId)).get();
      console.error(`move ${message.moveId}: rolling back after ${move?.failures ?? "?"} failures`);
      await sendMoveMessage(deps.env, { kind: "move", moveId: message.moveId, drive: move!.drive });
      return { action: "ack" };
    }
    return { action: "retry", delaySeconds: next };
  }
}

export function sendMoveMessage(env: Env, message: MoveMessage, delaySeconds = 0) {
  return env.EXPORT_QUEUE.send(message, delaySeconds > 0 ? { delaySeconds } : undefined);
}

/**
 * For the sweeper: sends a message for every unfinished move whose message is overdue or was never sent (a
 * new move) and whose lease has run out. Fenced on the drive and version read, like the jobs' re-drive.
 */
export async function redriveMoves(deps: Pick<MoveDeps, "db" | "env" | "now" | "config">): Promise<number> {
  const now = deps.now();
  let sent = 0;
  for (const move of await overdueMoves(deps.db, now, deps.config.SWEEP_LOST_AFTER_SECONDS * 1000)) {
    const [taken] = await deps.db
      .update(accountMoves)
      .set({ dueAt: now, leaseExpiresAt: 0 })
      .where(and(eq(accountMoves.id, move.id), eq(accountMoves.version, move.version), eq(accountMoves.drive, move.drive)))
      .returning({ id: accountMoves.id });
    if (!taken) continue;
    await sendMoveMessage(deps.env, { kind: "move", moveId: move.id, drive: move.drive });
    sent++;
  }
  return sent;
}
