import { z } from "zod";
import { defineMethod } from "../api/method";
import { allocateIds } from "../shards/ids";
import { booleanish } from "./segment_selection";
import {
  assertNameFree,
  checkRules,
  countMatching,
  findSegment,
  insertUnlessNameTaken,
  nameTaken,
  ruleTreeDetail,
  segmentNameDetail,
  segmentView,
  storedCount,
} from "./segment_definition";

export const createSegmentDetails = z.object({
  name: segmentNameDetail,
  rules: ruleTreeDetail,
  dryrun: booleanish.default(false),
});

/**
 * Segments / CreateSegment: saves a segment (a name and a rule tree) in the account. The tree is checked as
 * the engine will run it (src/methods/segment_definition.ts), so a stored segment never makes GetSegments or an
 * export fail. Names are unique in the account: a retried call gets a 409, not a second segment.
 *
 * `dryrun` runs every check and answers `{count}`, the subscribers the rules match now, saving nothing.
 */
export const createSegment = defineMethod({
  requesttype: "Segments",
  requestmethod: "CreateSegment",
  summary: "Saves a segment: a name and a rule tree, checked as exports will run it (dryrun: only counts its subscribers).",
  details: createSegmentDetails,
  example: {
    name: "Active at Acme, joined in the last 30 days",
    rules: {
      match: "all",
      rules: [
        { field: "status", operator: "equals", value: "active" },
        { field: "customfield", fieldid: 3, operator: "contains", value: "acme" },
        { field: "subscribedate", operator: "within_last_days", value: 30 },
      ],
    },
  },
  async handle(context, { name, rules: tree, dryrun }) {
    const { env, account } = context;
    const shard = dryrun ? await context.shard() : await context.writableShard();
    const now = new Date();
    const { rules, fieldTypes } = await checkRules(shard, account.id, name, tree, now);
    await assertNameFree(shard.db, account.id, name);
    if (dryrun) return { count: await countMatching(shard.db, account.id, { name, rules }, fieldTypes, now) };

    const id = await allocateIds(env.DB, "segments", 1);
    // The name is checked again in the insert itself, so that two racing calls cannot both create it.
    const inserted = await shard.db.run(insertUnlessNameTaken(id, account.id, name, rules));
    if (inserted.meta.changes === 0) throw nameTaken(name);
    const segment = await findSegment(shard.db, account.id, id);
    return segmentView(segment, account, storedCount(segment));
  },
});
