import { z } from "zod";
import { quote } from "../api/envelope";
import { ApiError } from "../api/errors";
import { defineMethod } from "../api/method";
import { acceptedSigningKeys } from "../download/signed_url";
import { pageQuery } from "../export/query";
import { issuePageToken, readPageToken } from "./page_token";
import { LAST_PAGE, pageLimit } from "./paging";
import { resolveSelection, selectionFields, type SegmentSelection } from "./segment_selection";

export const PAGE_LIMITS = { default: 100, max: 1_000 } as const;

export { LAST_PAGE };

const paginationSchema = z
  .object(
    {
      limit: pageLimit(PAGE_LIMITS.max, PAGE_LIMITS.default),
      next: z.string({ error: "must be the string a previous page returned as pagination.next" }).max(200, "is not a page token").optional(),
    },
    { error: "must be {limit, next}" },
  )
  .default({ limit: PAGE_LIMITS.default });

export const syncDetailsSchema = z.object({ ...selectionFields, pagination: paginationSchema });

/** What a token is bound to: the account and everything that decides which records, and how, a page holds. */
const tokenBinding = (accountId: number, selection: SegmentSelection, fieldIds: number[]) =>
  JSON.stringify({
    account: accountId,
    segments: [...selection.segmentid].sort((a, b) => a - b),
    status: selection.status,
    membership: selection.include_membership,
    fields: fieldIds,
  });

/**
 * Segments / GetSegmentSubscribers: the synchronous sibling of GetSegmentSubscribersAsync, as Pinpointe
 * documents it. The same selection, one page at a time: `pagination: {limit, next}`, up to 1,000 subscribers a
 * page, `next` from the previous answer to continue, "0" once there is no more.
 *
 * Pages are keyset pages (subscriber id after the token's), so a deep page costs what the first does, and the
 * walk is the async JSON file's records, in the same order. The token carries the moment of the first page,
 * so that relative-date rules select the same subscribers on every page of one walk.
 */
export const getSegmentSubscribers = defineMethod({
  requesttype: "Segments",
  requestmethod: "GetSegmentSubscribers",
  summary: "The subscribers of segments, synchronously, one keyset page at a time (pagination.next continues).",
  details: syncDetailsSchema,
  example: { segmentid: ["12", "13"], status: "active", customfields: ["First Name", "Company"], pagination: { limit: 100 } },
  async handle(context, details) {
    const { account, config } = context;
    const { limit, next } = details.pagination;
    if (next === LAST_PAGE) {
      throw new ApiError(
        "BAD_REQUEST",
        `details.pagination.next: "${LAST_PAGE}" means the previous page was the last one; omit next to start from the first page`,
      );
    }
    const shard = await context.shard();
    const keys = acceptedSigningKeys(config);
    // Resolved before the token is read: the token is bound to the custom fields' ids, not their spelling.
    const { spec: first, fieldTypes } = await resolveSelection(shard, account, details, "json", new Date());
    const binding = tokenBinding(account.id, details, first.customFields.map((f) => f.id));
    let position = { after: 0, at: Date.parse(first.requestedAt) };
    if (next !== undefined && next !== "") {
      const read = await readPageToken(keys, binding, next);
      if (!read) {
        throw new ApiError(
          "BAD_REQUEST",
          `details.pagination.next: ${quote(next)} is not a page token of this request (a token works only with the ` +
            "segmentid, status, include_membership and customfields it was issued for)",
        );
      }
      position = read;
    }
    const spec = { ...first, requestedAt: new Date(position.at).toISOString() };
    const query = pageQuery(spec, account.id, fieldTypes);
    // One more row than asked for tells whether another page follows, without an empty last page.
    const rows = await shard.db.values<[number, string]>(query(position.after, limit + 1));
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    return {
      count: page.length,
      subscribers: page.map(([, record]) => JSON.parse(record) as unknown),
      pagination: {
        next: more ? await issuePageToken(keys, binding, { after: page[page.length - 1]![0], at: position.at }) : LAST_PAGE,
      },
    };
  },
});
