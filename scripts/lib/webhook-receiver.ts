import { createServer, type IncomingMessage, type Server } from "node:http";
import { Webhook } from "standardwebhooks";

/** The webhook bodies the service sends (src/notify/event.ts). */
export type ExportEvent =
  | {
      type: "segment_export.completed";
      timestamp: string;
      data: { jobid: string; status: "SUCCESS"; count: number; url: string; expires_at: string; format: string; segmentid: string[] };
    }
  | {
      type: "segment_export.failed";
      timestamp: string;
      data: { jobid: string; status: "ERROR"; errormessage: string; format: string; segmentid: string[] };
    };

export interface Delivery {
  event: ExportEvent;
  webhookId: string;
  /** performance.now() when it arrived. */
  receivedAt: number;
}

export interface ReceiverOptions {
  port: number;
  path: string;
  /** The account's whsec_ secret. */
  secret: string;
  onDelivery: (delivery: Delivery) => void;
  onBadSignature: (reason: string) => void;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * A webhook receiver on 127.0.0.1 that verifies each delivery as a real receiver must: the Standard Webhooks
 * signature over the raw body, and the timestamp. A verified delivery gets 204; a bad signature gets 401.
 */
export function startWebhookReceiver(options: ReceiverOptions): Promise<Server> {
  const verifier = new Webhook(options.secret);
  const server = createServer(async (req, res) => {
    if (req.method !== "POST" || req.url !== options.path) {
      res.writeHead(404).end();
      return;
    }
    const body = await readBody(req);
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(", ") : (value ?? "")]),
    );
    let event: ExportEvent;
    try {
      event = verifier.verify(body, headers) as ExportEvent;
    } catch (error) {
      res.writeHead(401).end("bad signature");
      options.onBadSignature((error as Error).message);
      return;
    }
    res.writeHead(204).end();
    options.onDelivery({ event, webhookId: headers["webhook-id"] ?? "", receivedAt: performance.now() });
  });

  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === "EADDRINUSE"
            ? `port ${options.port} is in use; choose another port`
            : `cannot start the webhook receiver: ${error.message}`,
        ),
      ),
    );
    server.listen(options.port, "127.0.0.1", () => resolve(server));
  });
}
