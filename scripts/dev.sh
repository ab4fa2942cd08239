#!/usr/bin/env bash
# npm run dev: the whole service on http://localhost:8787 with a local D1, R2 and Queue.
#   1. applies the migrations to the local control database (DB) and the two data shards (SHARD_0, SHARD_1),
#      and registers the shards in the directory;
#   2. creates the demo account (scripts/seed.ts: SQL, accounts are not an API method) on SHARD_0 (DEMO_SHARD)
#      if it is not there yet, with the segment id sequence set so that the demo's segments get ids 12, 13, 14;
#   3. runs the API, export and mailer workers in one `wrangler dev` (the API worker owns the port);
#   4. runs the dev clock (dev/clock.ts) in a second, small wrangler dev session on DEV_CLOCK_PORT (8799),
#      and calls its /__scheduled every minute: it runs the export worker's cron, as Cron Triggers would
#      in production (wrangler dev fires none). Trigger it by hand: curl http://localhost:8799/__scheduled
#   5. in the background, once the API answers, writes the demo data through the API's own write methods
#      (scripts/seed-demo.ts: lists, custom fields, tags, 1,000 subscribers, segments 12, 13, 14) if the demo
#      account has no lists yet (waiting at most SEED_WAIT_SECONDS, 180). A failed seed is reported and leaves
#      the workers running; `npx tsx scripts/seed-demo.ts` then finishes it.
# Extra arguments go to the main `wrangler dev` (e.g. `npm run dev -- --port 8790`).
# Set SWEEP_EVERY_SECONDS=0 for no automatic ticks. Start from scratch with `rm -rf .wrangler/state`.
set -euo pipefail
cd "$(dirname "$0")/.."

export WRANGLER_SEND_METRICS=false
# V8 flags for the local workerd (the same as dev/workerd.ts, which says why): without --single-threaded-gc a
# long export can leave workerd spinning at 100 % CPU on a machine with few cores. An empty value runs without.
export MINIFLARE_WORKERD_V8_FLAGS=${MINIFLARE_WORKERD_V8_FLAGS---single-threaded-gc}
wrangler=node_modules/.bin/wrangler
[[ -x $wrangler ]] || { echo "dev: wrangler is not installed; run npm install first" >&2; exit 1; }

# The local databases: the control database (DB) and two data shards, each with its migration set.
DEMO_SHARD=${DEMO_SHARD:-SHARD_0}
echo "dev: applying migrations to the local control database and shards"
node_modules/.bin/tsx scripts/migrate.ts --local

# One value from `wrangler d1 execute <database> --local --json --command <sql>` (first row, column n).
query() {
  "$wrangler" d1 execute "$1" --local --json --command "$2" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].results[0]?.n ?? ""))'
}
# Runs a SQL file quietly (wrangler prints every statement's result); shows its output only if it fails.
run_sql_file() {
  local log
  if ! log=$("$wrangler" d1 execute "$1" --local --file "$2" 2>&1); then
    echo "$log" >&2
    echo "dev: creating the demo account failed; to start over with empty local databases: rm -rf .wrangler/state" >&2
    exit 1
  fi
}

# The shards join the directory once (docs/shards.md: adding a shard in production is the same step).
"$wrangler" d1 execute DB --local --command "INSERT OR IGNORE INTO shards (name) VALUES ('SHARD_0'), ('SHARD_1')" >/dev/null

if [[ $(query DB "SELECT count(*) AS n FROM accounts WHERE username = 'demo'") == 0 ]]; then
  echo "dev: creating the demo account (demo on $DEMO_SHARD); its data is written through the API once the workers answer"
  seed_dir=$(mktemp -d "${TMPDIR:-/tmp}/segment-export-seed.XXXXXX")
  trap 'rm -rf "$seed_dir"' EXIT
  node_modules/.bin/tsx scripts/seed.ts control "$DEMO_SHARD" >"$seed_dir/control.sql"
  run_sql_file DB "$seed_dir/control.sql"
  rm -rf "$seed_dir"
  trap - EXIT
elif [[ $(query DB "SELECT count(*) AS n FROM account_directory d JOIN accounts a ON a.id = d.account_id WHERE a.username = 'demo'") == 0 ]]; then
  echo "dev: the local demo account predates the data shards (it has no shard); start over: rm -rf .wrangler/state" >&2
  exit 1
fi

clock_port=${DEV_CLOCK_PORT:-8799}
# A dev registry of this checkout's own, so that the dev clock reaches this session's export worker and not
# another checkout's (the registry is machine-wide by default, and the worker names are the same).
export WRANGLER_REGISTRY_PATH=${WRANGLER_REGISTRY_PATH:-$PWD/.wrangler/dev-registry}
every=${SWEEP_EVERY_SECONDS:-60}
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

echo "dev: starting the workers on http://localhost (the API; see wrangler's \"Ready on\" line)"
# Each worker reads the .dev.vars beside its config: ./.dev.vars serves the API and the export worker
# (the mailer needs none). The local state is where `wrangler d1 migrations apply` put it.
"$wrangler" dev -c wrangler.toml -c wrangler.exporter.toml -c mailer/wrangler.toml \
  --persist-to .wrangler/state "$@" &
pids+=($!)
main_pid=$!

"$wrangler" dev -c dev/clock.wrangler.toml --port "$clock_port" --inspector-port 0 --persist-to .wrangler/dev-clock \
  --show-interactive-dev-session=false >.wrangler/dev-clock.log 2>&1 &
pids+=($!)
echo "dev: the sweeper runs every ${every}s; trigger it now with: curl http://localhost:$clock_port/__scheduled"

if [[ $every != 0 ]]; then
  node -e '
    const [url, every] = [process.argv[1], Number(process.argv[2]) * 1000];
    const tick = () => fetch(url).then((r) => r.text()).catch(() => {});
    setTimeout(() => { tick(); setInterval(tick, every); }, every);
  ' "http://127.0.0.1:$clock_port/__scheduled" "$every" &
  pids+=($!)
fi

# The demo data, through the API of the session just started: the seed waits for the API to answer, does
# nothing if the demo account has lists already (every start after the first), and never stops the workers.
api_port=8787
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --port) api_port=${args[i + 1]:-$api_port} ;;
    --port=*) api_port=${args[i]#--port=} ;;
  esac
done
# It prints what it wrote, or why it failed and how to finish it.
node_modules/.bin/tsx scripts/seed-demo.ts --url "http://localhost:$api_port" --wait "${SEED_WAIT_SECONDS:-180}" --if-empty &
pids+=($!)

wait "$main_pid"
