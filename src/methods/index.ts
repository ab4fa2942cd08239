import type { ApiMethod } from "../api/method";
import { apiTest } from "./authentication_apitest";
import { getSegments } from "./segments_get_segments";
import { cancelSegmentSubscribersAsync } from "./segments_cancel_segment_subscribers_async";
import { getSegmentSubscribers } from "./segments_get_segment_subscribers";
import { getSegmentSubscribersAsync } from "./segments_get_segment_subscribers_async";
import { getSegmentSubscribersAsyncJobs } from "./segments_get_segment_subscribers_async_jobs";
import { getSegmentSubscribersAsyncStatus } from "./segments_get_segment_subscribers_async_status";
import { createSegment } from "./segments_create_segment";
import { deleteSegment } from "./segments_delete_segment";
import { getSegment } from "./segments_get_segment";
import { updateSegment } from "./segments_update_segment";

import { getLists } from "./lists_get_lists";
import { createList } from "./lists_create_list";
import { getCustomFields } from "./lists_get_custom_fields";
import { createCustomField } from "./lists_create_custom_field";
import { addSubscriberToList } from "./subscribers_add_subscriber_to_list";
import { addOrUpdateSubscribers } from "./subscribers_add_or_update_subscribers";
import { updateSubscriber } from "./subscribers_update_subscriber";
import { unsubscribeSubscriber } from "./subscribers_unsubscribe_subscriber";
import { deleteSubscriber } from "./subscribers_delete_subscriber";
import { createTags } from "./tags_create_tags";
import { tagSubscribers } from "./tags_tag_subscribers";
import { untagSubscribers } from "./tags_untag_subscribers";
import { importSubscribersAsync } from "./subscribers_import_subscribers_async";
import { importSubscribersAsyncStatus } from "./subscribers_import_subscribers_async_status";

/** Every method the API answers, looked up by src/api/dispatch.ts. */
export const METHODS: readonly ApiMethod[] = [
  apiTest,
  getSegments,
  getSegmentSubscribers,
  getSegmentSubscribersAsync,
  getSegmentSubscribersAsyncStatus,
  getSegmentSubscribersAsyncJobs,
  cancelSegmentSubscribersAsync,
  getSegment,
  createSegment,
  updateSegment,
  deleteSegment,
  getLists,
  createList,
  getCustomFields,
  createCustomField,
  addSubscriberToList,
  addOrUpdateSubscribers,
  updateSubscriber,
  unsubscribeSubscriber,
  deleteSubscriber,
  importSubscribersAsync,
  importSubscribersAsyncStatus,
  createTags,
  tagSubscribers,
  untagSubscribers,
] as ApiMethod[];
