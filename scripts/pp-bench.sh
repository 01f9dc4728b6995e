#!/usr/bin/env bash
# pp-bench.sh — what accepting the PROXY protocol costs ConnX: the `small`
# scenario of peers.sh (GET of a 6-byte body, 64 keep-alive connections)
# through HAProxy in TCP mode, which sends a PROXY v2 header on each
# connection to one ConnX (server.proxyProtocol on) and nothing to the
# other (off). wrk cannot send the header itself, so both arms go through
# the same HAProxy. Each round loads A then B; the figure is ConnX's
# requests per CPU-millisecond of its own process (from /proc), and the
# ratio A/B is taken within each round.
#
# Usage (from the project root):
#   scripts/pp-bench.sh
#   ROUNDS=5 DUR=10 scripts/pp-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-8}
BASE=${BASE_PORT:-19700}
B=$((BASE + 1)); CA=$((BASE + 3)); CB=$((BASE + 4)); HA=$((BASE + 5)); HB=$((BASE + 6))
for tool in nginx haproxy wrk; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || { echo "pp-bench.sh needs $tool" >&2; exit 2; }
done
export PATH="$PATH:/usr/sbin"
W=$(mktemp -d /tmp/connx-ppbench.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
go build -o "$W/connx" ./cmd/connx

cat > "$W/nginx.conf" <<EOF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 127.0.0.1:$B; keepalive_requests 1000000; location / { return 200 "hello\n"; } }
}
EOF
nginx -c "$W/nginx.conf"

connx_conf() { # $1 port, $2 proxyProtocol on (1) or off (0)
  cat <<EOF
server:
  port: $1
  host: "127.0.0.1"
EOF
  if [ "$2" = 1 ]; then
    cat <<EOF
  proxyProtocol: {enabled: true, trustedSources: ["127.0.0.1"]}
EOF
  fi
  cat <<EOF
backends: ["http://127.0.0.1:$B"]
healthCheck: {interval: 5, timeout: 2}
EOF
}
connx_conf "$CA" 1 > "$W/a.yaml"
connx_conf "$CB" 0 > "$W/b.yaml"
GOMAXPROCS=1 "$W/connx" -config "$W/a.yaml" >"$W/a.log" 2>&1 & PA=$!; PIDS+=($PA)
GOMAXPROCS=1 "$W/connx" -config "$W/b.yaml" >"$W/b.log" 2>&1 & PB=$!; PIDS+=($PB)

cat > "$W/haproxy.cfg" <<EOF
global
  nbthread 2
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fa
  bind 127.0.0.1:$HA
  default_backend ba
backend ba
  server a 127.0.0.1:$CA send-proxy-v2
frontend fb
  bind 127.0.0.1:$HB
  default_backend bb
backend bb
  server b 127.0.0.1:$CB
EOF
haproxy -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 & PIDS+=($!)

ready() { for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "port $1 not ready" >&2; exit 2; }
ready "$HA"; ready "$HB"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run() { # $1 haproxy port, $2 connx pid -> "requests cpu_ms"
  local t0 t1 n
  t0=$(ticks "$2")
  n=$(wrk -t2 -c64 -d"${DUR}s" "http://127.0.0.1:$1/" | awk '/requests in/ {print $1}')
  t1=$(ticks "$2")
  echo "$n $(( (t1 - t0) * 1000 / hz ))"
}

echo "round  A(pp on) req/cpu_ms  B(pp off) req/cpu_ms  A/B"
for r in $(seq "$ROUNDS"); do
  read -r na ca < <(run "$HA" "$PA")
  read -r nb cb < <(run "$HB" "$PB")
  awk -v r="$r" -v na="$na" -v ca="$ca" -v nb="$nb" -v cb="$cb" \
    'BEGIN { ea = na / ca; eb = nb / cb; printf "%5d  %19.1f  %20.1f  %4.2f\n", r, ea, eb, ea / eb }'
done
echo "# PROXY protocol errors counted by A (should be none):"
curl -s "http://127.0.0.1:$HA/metrics" | grep '^connx_proxy_protocol_errors_total' | awk '$2 != 0' || true
