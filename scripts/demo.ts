/**
 * npm run demo (with `npm run dev` running): the example request, end to end, for the demo account.
 *   1. starts a webhook receiver on http://127.0.0.1:8788/hooks/exports;
 *   2. POSTs GetSegmentSubscribersAsync for segments 12 and 13 to http://localhost:8787/apijson.php;
 *   3. waits for the webhook and verifies its Standard Webhooks signature with the demo account's secret;
 *   4. downloads the file from the signed link and checks it against the webhook;
 *   5. prints a short summary.
 * Exits non-zero, saying what went wrong, if any step fails or takes too long.
 * Environment: DEMO_API_URL (default http://localhost:8787), DEMO_WEBHOOK_PORT (default 8788).
 */
import { DEMO_ACCOUNT } from "./demo-account";
import { startWebhookReceiver, type Delivery } from "./lib/webhook-receiver";

const API_URL = (process.env.DEMO_API_URL ?? "http://localhost:8787").replace(/\/+$/, "");
const WEBHOOK_PORT = Number(process.env.DEMO_WEBHOOK_PORT ?? 8788);
const WEBHOOK_PATH = "/hooks/exports";
const WEBHOOK_URL = `http://127.0.0.1:${WEBHOOK_PORT}${WEBHOOK_PATH}`;
const REQUEST_TIMEOUT_MS = 15_000;
const WEBHOOK_TIMEOUT_MS = 60_000;

class DemoError extends Error {}

type Envelope<T> = { response: { status: "SUCCESS"; data: T } | { status: "ERROR"; errormessage: string } };

interface ExportedSubscriber {
  subscriberid: number | string;
  emailaddress: string;
  status: string;
  subscribedate: string;
  customfields?: Record<string, unknown>;
  tags?: string[];
}

const log = (label: string, text: string) => console.log(`  ${label.padEnd(12)} ${text}`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The example request, filled in for the demo account and the local receiver. */
const exampleRequest = {
  username: DEMO_ACCOUNT.username,
  usertoken: DEMO_ACCOUNT.usertoken,
  requesttype: "Segments",
  requestmethod: "GetSegmentSubscribersAsync",
  details: {
    segmentid: ["12", "13"],
    status: "active",
    include_membership: "yes",
    customfields: ["First Name", "Company"],
    notify: { type: "webhook", value: WEBHOOK_URL },
  },
};

async function callApi<T>(body: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${API_URL}/apijson.php`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new DemoError(`nothing answers at ${API_URL}/apijson.php (${cause}). Start \`npm run dev\` in another terminal first.`);
  }
  const text = await response.text();
  let envelope: Envelope<T>;
  try {
    envelope = JSON.parse(text) as Envelope<T>;
  } catch {
    throw new DemoError(`${API_URL} answered HTTP ${response.status} with something that is not the API: ${text.slice(0, 200)}`);
  }
  if (envelope.response.status !== "SUCCESS") {
    throw new DemoError(`the API answered HTTP ${response.status} ERROR: ${envelope.response.errormessage}`);
  }
  return envelope.response.data;
}

/**
 * Starts the receiver. Deliveries for other jobs (e.g. a retry from an earlier run) are acknowledged and ignored;
 * a delivery whose signature does not verify fails the demo.
 */
async function startReceiver() {
  const waiting = new Map<string, { resolve: (d: Delivery) => void; reject: (e: Error) => void }>();
  const early = new Map<string, Delivery>();
  let failure: DemoError | undefined;
  const server = await startWebhookReceiver({
    port: WEBHOOK_PORT,
    path: WEBHOOK_PATH,
    secret: DEMO_ACCOUNT.webhookSecret,
    onDelivery: (delivery) => {
      const waiter = waiting.get(delivery.event.data.jobid);
      if (waiter) waiter.resolve(delivery);
      else early.set(delivery.event.data.jobid, delivery);
    },
    onBadSignature: (reason) => {
      failure = new DemoError(`a webhook arrived with a signature that does not verify: ${reason}`);
      for (const waiter of waiting.values()) waiter.reject(failure);
    },
  }).catch((error: Error) => {
    throw new DemoError(`${error.message} (set DEMO_WEBHOOK_PORT=<port>)`);
  });
  const delivery = (jobId: string): Promise<Delivery> => {
    if (failure) return Promise.reject(failure);
    const arrived = early.get(jobId);
    if (arrived) return Promise.resolve(arrived);
    return new Promise((resolve, reject) => waiting.set(jobId, { resolve, reject }));
  };
  return { server, delivery };
}

async function waitForWebhook(delivery: Promise<Delivery>, jobId: string): Promise<Delivery> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout")), WEBHOOK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([delivery, timeout]);
  } catch (error) {
    if (error instanceof DemoError) throw error;
    // Say where the job is stuck.
    const status = await callApi<Record<string, unknown>>({
      ...exampleRequest,
      requestmethod: "GetSegmentSubscribersAsyncStatus",
      details: { jobid: jobId },
    }).catch((e: Error) => ({ error: e.message }));
    throw new DemoError(`no webhook within ${WEBHOOK_TIMEOUT_MS / 1000} s; the job's status is ${JSON.stringify(status)}`);
  } finally {
    clearTimeout(timer);
  }
}

async function download(url: string) {
  const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).catch((error: Error) => {
    throw new DemoError(`cannot download ${url}: ${error.message}`);
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) {
    throw new DemoError(`the download link answered HTTP ${response.status}: ${bytes.toString("utf8").slice(0, 300)}`);
  }
  // When the client accepts gzip (fetch does), the runtime compresses JSON on the fly and drops Content-Length.
  const declared = response.headers.get("content-length");
  if (declared !== null && Number(declared) !== bytes.length) {
    throw new DemoError(`Content-Length says ${declared} bytes but ${bytes.length} arrived`);
  }
  const encoding = response.headers.get("content-encoding");
  return {
    bytes,
    contentType: (response.headers.get("content-type") ?? "") + (encoding ? `, sent with ${encoding}` : ""),
    disposition: response.headers.get("content-disposition") ?? "",
  };
}

async function main() {
  const started = performance.now();
  console.log(`Segment Export demo: ${API_URL}, account "${DEMO_ACCOUNT.username}"`);
  const receiver = await startReceiver();
  try {
    log("receiver", `listening on ${WEBHOOK_URL}`);
    log("request", `GetSegmentSubscribersAsync ${JSON.stringify(exampleRequest.details)}`);

    const accepted = await callApi<{ jobid: string; status: string }>(exampleRequest);
    const acceptedAt = performance.now();
    log("accepted", `job ${accepted.jobid} (${accepted.status}) after ${seconds(acceptedAt - started)}`);

    const { event, webhookId, receivedAt } = await waitForWebhook(receiver.delivery(accepted.jobid), accepted.jobid);
    log("webhook", `${event.type}, signature verified (webhook-id ${webhookId}) ${seconds(receivedAt - acceptedAt)} after the request`);
    if (event.type !== "segment_export.completed") throw new DemoError(`the export failed: ${event.data.errormessage}`);

    const file = await download(event.data.url);
    log("download", `${file.bytes.length.toLocaleString("en-US")} bytes, ${file.contentType}; ${file.disposition}`);
    log("link", `${event.data.url.replace(/signature=[^&]+/, "signature=…")} (expires ${event.data.expires_at})`);

    const parsed = JSON.parse(file.bytes.toString("utf8")) as Envelope<{ count: number; subscribers: ExportedSubscriber[] }>;
    if (parsed.response.status !== "SUCCESS") throw new DemoError(`the file holds an ERROR envelope: ${parsed.response.errormessage}`);
    const { count, subscribers } = parsed.response.data;
    const ids = new Set(subscribers.map((s) => s.subscriberid));
    const problems = [
      count !== event.data.count && `the file says count ${count}, the webhook ${event.data.count}`,
      subscribers.length !== count && `the file lists ${subscribers.length} subscribers but says count ${count}`,
      ids.size !== subscribers.length && `${subscribers.length - ids.size} subscribers appear twice`,
      subscribers.some((s) => s.status !== "active") && "some subscribers are not active",
    ].filter(Boolean);
    if (problems.length > 0) throw new DemoError(`the file does not match the request: ${problems.join("; ")}`);

    log("subscribers", `${count} (segments ${event.data.segmentid.join(" + ")}, active, each once)`);
    for (const subscriber of subscribers.slice(0, 2)) log("", JSON.stringify(subscriber));
    log("job id", event.data.jobid);
    log("total time", seconds(performance.now() - started));
  } finally {
    receiver.server.closeAllConnections();
    receiver.server.close();
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof DemoError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
