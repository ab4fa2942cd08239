import { consumeDeadLetters, consumeExportBatch, consumerDeps, DEAD_LETTER_QUEUE_NAME, EXPORT_QUEUE_NAME } from "../export/consumer";
import { sweep } from "../export/sweeper";

/**
 * The export worker: runs export slices and delivers notifications from the queue, and sweeps for stranded
 * jobs on its Cron Trigger. It serves no HTTP, so API requests never share an isolate with a slice.
 */
export default {
  async queue(batch, env) {
    const deps = consumerDeps(env);
    switch (batch.queue) {
      case EXPORT_QUEUE_NAME:
        return consumeExportBatch(batch, deps);
      case DEAD_LETTER_QUEUE_NAME:
        return consumeDeadLetters(batch, deps);
      default:
        // A misnamed queue in the config must fail loudly, not be consumed as if it were another.
        throw new Error(`the export worker does not consume queue "${batch.queue}"`);
    }
  },
  async scheduled(_controller, env) {
    const report = await sweep(consumerDeps(env));
    console.log("sweep:", JSON.stringify(report));
  },
} satisfies ExportedHandler<Env>;
