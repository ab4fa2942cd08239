#!/usr/bin/env bash
# npm run dev: the whole service on http://localhost:8787 with a local D1, R2 and Queue.
#   1. applies the migrations to the local database;
#   2. seeds the demo data (scripts/seed.ts) if the demo account is not there yet;
#   3. runs the API, export and mailer workers in one `wrangler dev`, behind a dev-only gateway
#      (dev/gateway.ts) that forwards requests to the API and runs the export worker's cron on /__scheduled;
#   4. calls /__scheduled every minute, as Cron Triggers would in production (wrangler dev fires none).
# Extra arguments go to `wrangler dev` (e.g. `npm run dev -- --port 8790`).
# Set SWEEP_EVERY_SECONDS=0 to run no sweeper ticks. Start from scratch with `rm -rf .wrangler/state`.
set -euo pipefail
cd "$(dirname "$0")/.."

export WRANGLER_SEND_METRICS=false
wrangler=node_modules/.bin/wrangler
[[ -x $wrangler ]] || { echo "dev: wrangler is not installed; run npm install first" >&2; exit 1; }

echo "dev: applying migrations to the local database"
"$wrangler" d1 migrations apply DB --local

demo_accounts=$("$wrangler" d1 execute DB --local --json \
  --command "SELECT count(*) AS n FROM accounts WHERE username = 'demo'" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].results[0].n))')

if [[ $demo_accounts == 0 ]]; then
  echo "dev: seeding the demo data (account demo, ~1,000 subscribers, segments 12, 13, 14)"
  seed_file=$(mktemp "${TMPDIR:-/tmp}/segment-export-seed.XXXXXX")
  trap 'rm -f "$seed_file"' EXIT
  node_modules/.bin/tsx scripts/seed.ts >"$seed_file"
  # wrangler prints every statement's result; show its output only if the seed fails.
  if ! seed_log=$("$wrangler" d1 execute DB --local --file "$seed_file" 2>&1); then
    echo "$seed_log" >&2
    echo "dev: seeding failed; to start over with an empty local database: rm -rf .wrangler/state" >&2
    exit 1
  fi
  rm -f "$seed_file"
  trap - EXIT
else
  echo "dev: the demo account is already in the local database; not seeding"
fi

port=8787
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --port) port=${args[i + 1]:-8787} ;;
    --port=*) port=${args[i]#--port=} ;;
  esac
done

every=${SWEEP_EVERY_SECONDS:-60}
ticker_pid=
if [[ $every != 0 ]]; then
  # The sweeper's clock: what the Cron Trigger does in production.
  node -e '
    const [url, every] = [process.argv[1], Number(process.argv[2]) * 1000];
    const tick = () => fetch(url).then((r) => r.text()).catch(() => {});
    setTimeout(() => { tick(); setInterval(tick, every); }, every);
  ' "http://127.0.0.1:$port/__scheduled" "$every" &
  ticker_pid=$!
  trap '[[ -n $ticker_pid ]] && kill $ticker_pid 2>/dev/null || true' EXIT
fi

echo "dev: starting the workers on http://localhost:$port (sweeper every ${every}s; trigger it now: curl http://localhost:$port/__scheduled)"
# One .dev.vars for every worker (wrangler would otherwise read it beside each config file).
"$wrangler" dev -c dev/gateway.wrangler.toml -c wrangler.toml -c wrangler.exporter.toml -c mailer/wrangler.toml \
  --env-file "$PWD/.dev.vars" "$@"
