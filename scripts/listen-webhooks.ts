/**
 * npm run webhooks:listen: a local webhook receiver for the demo account, on
 * http://127.0.0.1:8788/hooks/exports. It verifies each delivery's Standard Webhooks signature and prints
 * the event, until Ctrl-C. Point an export's notify at it: {"type":"webhook","value":"http://127.0.0.1:8788/hooks/exports"}.
 * Environment: WEBHOOK_PORT (default 8788), WEBHOOK_SECRET (default: the demo account's secret).
 */
import { DEMO_ACCOUNT } from "./demo-account";
import { startWebhookReceiver } from "./lib/webhook-receiver";

const port = Number(process.env.WEBHOOK_PORT ?? 8788);
const path = "/hooks/exports";

try {
  await startWebhookReceiver({
    port,
    path,
    secret: process.env.WEBHOOK_SECRET ?? DEMO_ACCOUNT.webhookSecret,
    onDelivery: ({ event, webhookId }) =>
      console.log(`${new Date().toISOString()} verified ${webhookId}:\n${JSON.stringify(event, null, 2)}`),
    onBadSignature: (reason) => console.log(`${new Date().toISOString()} REJECTED a delivery (401): ${reason}`),
  });
} catch (error) {
  console.error(`webhooks:listen: ${(error as Error).message} (set WEBHOOK_PORT=<port>)`);
  process.exit(1);
}
console.log(`Listening on http://127.0.0.1:${port}${path}; Ctrl-C to stop.`);
