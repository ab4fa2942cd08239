/** Both schema modules, for code that names tables or types of both databases. */
export * from "./control_schema";
export * from "./shard_schema";
