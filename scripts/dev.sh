#!/usr/bin/env bash
# npm run dev: the whole service on http://localhost:8787 with a local D1, R2 and Queue.
#   1. applies the migrations to the local database;
#   2. seeds the demo data (scripts/seed.ts) if the demo account is not there yet;
#   3. runs the API worker and the mailer worker in one `wrangler dev`.
# Extra arguments go to `wrangler dev` (e.g. `npm run dev -- --port 8790`).
# Start from scratch with `rm -rf .wrangler/state`.
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

echo "dev: starting both workers on http://localhost:8787"
exec "$wrangler" dev -c wrangler.toml -c mailer/wrangler.toml "$@"
