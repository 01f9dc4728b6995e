#!/usr/bin/env bash
# peers-variants.sh — run ../shared/bench/peers.sh once per ConnX variant:
# each load-balancing policy, rate limiting switched on at a limit that
# is never hit, and routes-100 (the backends in a pool behind a table of
# 100 routes: 49 hosts with two prefixes each, a wildcard host, and the
# route the benchmark's requests take, for host 127.0.0.1), and
# rate-limit-redis (rate-limit-global shared through a redis-server this
# script starts on 127.0.0.1:$REDIS_PORT, default 19479). peers.sh
# writes a round-robin config with rate limiting off; for each variant a
# wrapper (given to peers.sh as CONNX_BIN) edits that config and execs
# connx, so the process peers.sh measures is ConnX.
#
# Usage (from the project root):
#   scripts/peers-variants.sh
#   VARIANTS="round-robin rate-limit-per-ip" DUR=5 ROUNDS=1 scripts/peers-variants.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANTS=${VARIANTS:-"round-robin weighted-round-robin least-connections p2c ewma consistent-hash random rate-limit-global rate-limit-per-ip routes-100"}
W=$(mktemp -d /tmp/connx-variants.XXXXXX)
trap 'rm -rf "$W"' EXIT
go build -o "$W/connx" ./cmd/connx

# add_routes FILE appends a pool with the config's backends and 100 routes.
add_routes() {
  {
    echo "pools:"
    echo "  app:"
    echo "    backends:"
    grep -E '^  - url: ' "$1" | sed 's/^  - url:/      - url:/'
    echo "routes:"
    for i in $(seq 1 49); do
      echo "  - {match: {host: \"site$i.example.com\", pathPrefix: \"/api/\"}, pool: app, stripPrefix: \"/api\"}"
      echo "  - {match: {host: \"site$i.example.com\", pathPrefix: \"/static/\"}, pool: app}"
    done
    echo "  - {match: {host: \"*.example.net\"}, pool: app}"
    echo "  - {name: bench, match: {host: \"127.0.0.1\", pathPrefix: \"/\"}, pool: app}"
  } >> "$1"
}

REDIS_PORT=${REDIS_PORT:-19479}
if [[ " $VARIANTS " == *" rate-limit-redis "* ]]; then
  command -v redis-server >/dev/null 2>&1 || { echo "rate-limit-redis needs redis-server (apt-get install redis-server)" >&2; exit 2; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$W/redis.log" 2>&1 &
  REDIS_PID=$!
  trap 'kill $REDIS_PID 2>/dev/null; rm -rf "$W"' EXIT
fi

edit_for() {
  case $1 in
    rate-limit-redis) echo "s/^  enabled: false\$/  enabled: true\n  requestsPerSec: 1000000000\n  burst: 1000000\n  redis:\n    address: \"127.0.0.1:$REDIS_PORT\"/" ;;
    rate-limit-global) echo 's/^  enabled: false$/  enabled: true\n  requestsPerSec: 1000000000\n  burst: 1000000/' ;;
    rate-limit-per-ip) echo 's/^  enabled: false$/  enabled: true\n  requestsPerSec: 1000000000\n  burst: 1000000\n  perIP: true/; s/^  perIP: false$//' ;;
    *) echo "s/algorithm: \"round-robin\"/algorithm: \"$1\"/" ;;
  esac
}

for v in $VARIANTS; do
  if [ "$v" = routes-100 ]; then
    declare -f add_routes > "$W/add_routes.sh"
    cat > "$W/connx-$v" <<WRAP
#!/usr/bin/env bash
# args: [-check] -config FILE (peers.sh checks the config first)
cfg=\$(for ((i = 1; i < \$#; i++)); do [ "\${!i}" = -config ] && { j=\$((i + 1)); echo "\${!j}"; }; done)
. "$W/add_routes.sh"
grep -q '^routes:' "\$cfg" || add_routes "\$cfg"
exec "$W/connx" "\$@"
WRAP
  else
    cat > "$W/connx-$v" <<WRAP
#!/usr/bin/env bash
# args: [-check] -config FILE (peers.sh checks the config first)
cfg=\$(for ((i = 1; i < \$#; i++)); do [ "\${!i}" = -config ] && { j=\$((i + 1)); echo "\${!j}"; }; done)
sed -i '$(edit_for "$v")' "\$cfg"
exec "$W/connx" "\$@"
WRAP
  fi
  chmod +x "$W/connx-$v"
  echo "== $v"
  CONNX_BIN="$W/connx-$v" SCENARIOS=${SCENARIOS:-small} IDLE_CONNS=0 DUR=${DUR:-6} ROUNDS=${ROUNDS:-2} \
    ../shared/bench/peers.sh 2>&1 | grep -E "^connx|^nginx|ratio connx/nginx"
done
