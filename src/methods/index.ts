import type { ApiMethod } from "../api/method";
import { apiTest } from "./authentication_apitest";
import { getSegments } from "./segments_get_segments";
import { getSegmentSubscribers } from "./segments_get_segment_subscribers";
import { getSegmentSubscribersAsync } from "./segments_get_segment_subscribers_async";
import { getSegmentSubscribersAsyncStatus } from "./segments_get_segment_subscribers_async_status";

/** Every method the API answers, looked up by src/api/dispatch.ts. */
export const METHODS: readonly ApiMethod[] = [
  apiTest,
  getSegments,
  getSegmentSubscribers,
  getSegmentSubscribersAsync,
  getSegmentSubscribersAsyncStatus,
] as ApiMethod[];
