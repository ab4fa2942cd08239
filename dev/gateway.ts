/**
 * Local development only: the front door of `npm run dev`. It passes every request to the API worker, and
 * runs the export worker's cron on GET /__scheduled. wrangler dev never fires Cron Triggers by itself, and its
 * own --test-scheduled route reaches only the first worker of a multi-worker session, hence this worker.
 * It is never deployed.
 */
interface GatewayEnv {
  API: Fetcher;
  /** With service_binding_extra_handlers, a service binding can invoke the target's scheduled() handler. */
  EXPORTER: Fetcher & {
    scheduled(options: { cron?: string; scheduledTime?: Date }): Promise<{ outcome: string; noRetry: boolean }>;
  };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__scheduled") {
      const cron = url.searchParams.get("cron") ?? "* * * * *";
      const result = await env.EXPORTER.scheduled({ cron, scheduledTime: new Date() });
      return Response.json({ cron, ...result }, { status: result.outcome === "ok" ? 200 : 500 });
    }
    return env.API.fetch(request);
  },
} satisfies ExportedHandler<GatewayEnv>;
