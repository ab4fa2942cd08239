import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { z } from "zod";
import type { Config } from "../config";
import type { Account } from "../db/control_schema";
import type { Shard } from "../shards/directory";

export interface MethodContext {
  env: Env;
  config: Config;
  /** The control database: accounts, the shard directory, export jobs. */
  db: DrizzleD1Database;
  account: Account;
  /** The shard holding the account's contacts, looked up on first use (methods that need no data skip it). */
  shard: () => Promise<Shard>;
  /**
   * The same shard, for methods that change the account's data: refused (ACCOUNT_MOVING, a 503 with
   * Retry-After) while a move has the account's writes frozen.
   */
  writableShard: () => Promise<Shard>;
}

/** One Pinpointe API method: its names, the schema of its `details`, and what it does. */
export interface ApiMethod<S extends z.ZodType = z.ZodType> {
  requesttype: string;
  requestmethod: string;
  /** One line for the API reference (GET /docs, /openapi.json). */
  summary: string;
  details: S;
  /** Example details for the API reference; the tests check that the schema accepts it. */
  example: z.input<S>;
  handle(context: MethodContext, details: z.output<S>): Promise<unknown>;
}

export const defineMethod = <S extends z.ZodType>(method: ApiMethod<S>): ApiMethod<S> => method;
