import type { ApiMethod } from "../api/method";
import { apiTest } from "./authentication_apitest";
import { getSegments } from "./segments_get_segments";
import { cancelSegmentSubscribersAsync } from "./segments_cancel_segment_subscribers_async";
import { getSegmentSubscribers } from "./segments_get_segment_subscribers";
import { getSegmentSubscribersAsync } from "./segments_get_segment_subscribers_async";
import { getSegmentSubscribersAsyncJobs } from "./segments_get_segment_subscribers_async_jobs";
import { getSegmentSubscribersAsyncStatus } from "./segments_get_segment_subscribers_async_status";

/** Every method the API answers, looked up by src/api/dispatch.ts. */
export const METHODS: readonly ApiMethod[] = [
  apiTest,
  getSegments,
  getSegmentSubscribers,
  getSegmentSubscribersAsync,
  getSegmentSubscribersAsyncStatus,
  getSegmentSubscribersAsyncJobs,
  cancelSegmentSubscribersAsync,
] as ApiMethod[];
