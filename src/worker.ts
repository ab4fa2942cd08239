import { createApp } from "./api/app";
import { consumeExportBatch } from "./export/consumer";

const app = createApp();

export default {
  fetch: app.fetch,
  queue: (batch, env) => consumeExportBatch(batch, env),
} satisfies ExportedHandler<Env>;
