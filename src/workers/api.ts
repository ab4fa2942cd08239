import { createApp } from "../api/app";

/**
 * The API worker: answers /apijson.php and serves signed downloads. It only produces to the export queue;
 * the export worker (src/workers/exporter.ts) consumes it, so a long slice never shares an isolate with a request.
 */
const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
