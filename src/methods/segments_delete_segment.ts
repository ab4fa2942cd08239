import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { defineMethod } from "../api/method";
import { segments } from "../db/shard_schema";
import { segmentIdDetail, segmentNotFound } from "./segment_definition";

/**
 * Segments / DeleteSegment: deletes a segment of the account. Exports already accepted are not affected: their
 * job froze the segment's rules when it was accepted (src/export/spec.ts).
 */
export const deleteSegment = defineMethod({
  requesttype: "Segments",
  requestmethod: "DeleteSegment",
  summary: "Deletes a segment; exports already accepted still finish with the rules they were accepted with.",
  details: z.object({ segmentid: segmentIdDetail }),
  example: { segmentid: "12" },
  async handle(context, { segmentid }) {
    const { account } = context;
    const { db } = await context.writableShard();
    const [deleted] = await db
      .delete(segments)
      .where(and(eq(segments.id, segmentid), eq(segments.accountId, account.id)))
      .returning({ id: segments.id });
    if (!deleted) throw segmentNotFound(segmentid);
    return { segmentid: String(deleted.id), deleted: true };
  },
});
