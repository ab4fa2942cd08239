import { z } from "zod";
import { defineMethod } from "../api/method";
import { currentCount, findSegment, segmentIdDetail, segmentView } from "./segment_definition";

/**
 * Segments / GetSegment: one segment of the account, as GetSegments lists it (its count is recounted when it
 * is older than GetSegments would answer with), with its rules.
 */
export const getSegment = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegment",
  summary: "One segment: its name, rules, create date and stored contact count.",
  details: z.object({ segmentid: segmentIdDetail }),
  example: { segmentid: "12" },
  async handle(context, { segmentid }) {
    const { account, config } = context;
    const { db } = await context.shard();
    const segment = await findSegment(db, account.id, segmentid);
    return segmentView(segment, account, await currentCount(db, segment, config, Date.now()));
  },
});
