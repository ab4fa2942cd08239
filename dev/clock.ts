/**
 * Local development only: the clock that stands in for Cron Triggers, which wrangler dev never fires.
 * `npm run dev` runs it as a wrangler dev session of its own and calls GET /__scheduled on it every minute; it
 * runs the export worker's scheduled() handler in the main session, reached through wrangler's dev registry.
 * (A worker in the main session could not do this: only the first worker of a session gets a port, and that
 * must be the API worker, since a session's other workers lose their rate-limit bindings.) Never deployed.
 */
interface ClockEnv {
  /** With service_binding_extra_handlers, a service binding can invoke the target's scheduled() handler. */
  EXPORTER: Fetcher & {
    scheduled(options: { cron?: string; scheduledTime?: Date }): Promise<{ outcome: string; noRetry: boolean }>;
  };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/__scheduled") {
      return new Response("The dev clock: GET /__scheduled runs the export worker's cron.\n", { status: 404 });
    }
    const cron = url.searchParams.get("cron") ?? "* * * * *";
    const result = await env.EXPORTER.scheduled({ cron, scheduledTime: new Date() });
    return Response.json({ cron, ...result }, { status: result.outcome === "ok" ? 200 : 500 });
  },
} satisfies ExportedHandler<ClockEnv>;
