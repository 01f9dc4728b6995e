#!/usr/bin/env bash
# grpc-bench.sh — gRPC unary calls through ConnX (an h2c pool), nginx
# (grpc_pass) and HAProxy (proto h2), each in front of the same grpc-go
# backend (scripts/grpcbackend), with h2load as the gRPC client over h2c
# (prior knowledge).
#
# One core for each proxy: ConnX with GOMAXPROCS=1 and one event loop,
# nginx with worker_processes 1, HAProxy with nbthread 1, all pinned with
# taskset to CPU ${PROXY_CPU:-0}; h2load and the backend share the other
# CPU(s) (LOAD_CPUS, default 1). Only one proxy is loaded at a time; each
# round runs all three, in an order that rotates every round. The figure
# is the proxy's calls per CPU-millisecond of its own process (utime +
# stime from /proc/PID/stat; nginx's worker), and the ratios ConnX/nginx
# and ConnX/HAProxy are taken within each round (paired), then the
# median over the rounds. h2load counts a call as succeeded on HTTP 200;
# a check call through each proxy first verifies `grpc-status: 0` and the
# echoed message, and the backend's call count is printed at the end.
#
# Usage (from the project root):
#   scripts/grpc-bench.sh
#   ROUNDS=7 DUR=10 CONNS=8 STREAMS=16 scripts/grpc-bench.sh
#   RPS=375 scripts/grpc-bench.sh   # the same offered load for every proxy
#
# Without RPS each proxy runs as fast as the backend (which shares its
# CPU with h2load) lets it, and the rates differ between proxies; more
# calls per second means more calls per read and write, so compare
# calls/cpu_ms at a fixed rate (RPS) too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-8}
CONNS=${CONNS:-8}      # h2load client connections
STREAMS=${STREAMS:-16} # concurrent calls per connection
RPS=${RPS:-}           # calls per second per connection (h2load --rps); empty: as fast as it goes
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
BASE=${BASE_PORT:-19800}
BE=$((BASE + 1)); PC=$((BASE + 2)); PN=$((BASE + 3)); PH=$((BASE + 4))
export PATH="$PATH:/usr/sbin"
for tool in nginx haproxy h2load taskset curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "grpc-bench.sh needs $tool" >&2; exit 2; }
done
W=$(mktemp -d /tmp/connx-grpcbench.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
go build -o "$W/connx" ./cmd/connx
go build -o "$W/grpcbackend" ./scripts/grpcbackend

# One request message: the 5-byte gRPC prefix (uncompressed, length 10)
# and 10 bytes.
printf '\000\000\000\000\012connx-grpc' > "$W/req.bin"

GOMAXPROCS=1 taskset -c "$LOAD_CPUS" "$W/grpcbackend" -listen "127.0.0.1:$BE" >"$W/backend.log" 2>&1 &
BPID=$!; PIDS+=("$BPID")

cat > "$W/connx.yaml" <<CONF
server:
  port: $PC
  host: "127.0.0.1"
  h2c: true
  eventLoops: 1
backends: ["http://127.0.0.1:$BE"]
upstream: {protocol: h2c}
healthCheck: {enabled: false}
CONF
GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$W/connx" -config "$W/connx.yaml" >"$W/connx.log" 2>&1 &
CPID=$!; PIDS+=("$CPID")

cat > "$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream grpcb { server 127.0.0.1:$BE; keepalive 256; }
  server {
    listen 127.0.0.1:$PN http2;
    http2_max_concurrent_streams 256;
    keepalive_requests 100000000;
    location / { grpc_pass grpc://grpcb; }
  }
}
CONF
taskset -c "$PROXY_CPU" nginx -c "$W/nginx.conf"

cat > "$W/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend f
  bind 127.0.0.1:$PH proto h2
  default_backend b
backend b
  server s 127.0.0.1:$BE proto h2
CONF
taskset -c "$PROXY_CPU" haproxy -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 &
HPID=$!; PIDS+=("$HPID")

check() { # $1 port: one call, which must come back OK with its message
  local out=""
  for _ in $(seq 100); do
    out=$(curl -s --http2-prior-knowledge -v -o "$W/resp.bin" --data-binary @"$W/req.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$1/test.Echo/Unary" 2>&1) || true
    if grep -q '< grpc-status: 0' <<<"$out" && cmp -s "$W/req.bin" "$W/resp.bin"; then return 0; fi
    sleep 0.1
  done
  echo "port $1: no OK gRPC call:" >&2; echo "$out" >&2; exit 2
}
check "$PC"; check "$PN"; check "$PH"
NPID=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1) # the worker

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run() { # $1 port, $2 pid -> "calls cpu_ms seconds"
  local t0 t1 out n s
  t0=$(ticks "$2")
  out=$(taskset -c "$LOAD_CPUS" h2load -c "$CONNS" -m "$STREAMS" -D "$DUR" ${RPS:+--rps "$RPS"} -d "$W/req.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$1/test.Echo/Unary")
  t1=$(ticks "$2")
  n=$(awk '/^requests:/ {print $8}' <<<"$out")
  s=$(awk '/^finished in/ {sub(/s,$/, "", $3); print $3}' <<<"$out")
  echo "$n $(( (t1 - t0) * 1000 / hz )) $s"
}

names=(connx nginx haproxy); ports=("$PC" "$PN" "$PH"); pids=("$CPID" "$NPID" "$HPID")
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; h2load -c $CONNS -m $STREAMS -D $DUR ${RPS:+--rps $RPS }, 15-byte gRPC messages"
echo "# round proxy calls cpu_ms calls/cpu_ms calls/s"
: > "$W/results"
for r in $(seq "$ROUNDS"); do
  for k in 0 1 2; do
    i=$(( (k + r) % 3 ))
    read -r n c s < <(run "${ports[$i]}" "${pids[$i]}")
    awk -v r="$r" -v p="${names[$i]}" -v n="$n" -v c="$c" -v s="$s" \
      'BEGIN { printf "%5d %-8s %9d %7d %8.1f %9.0f\n", r, p, n, c, n / c, n / s }' | tee -a "$W/results"
  done
done
echo "# medians over $ROUNDS rounds; ratios paired within each round"
awk '
  { e[$1, $2] = $5; rounds[$1] = 1 }
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    n = 0
    for (r in rounds) { n++; c[n] = e[r, "connx"]; g[n] = e[r, "nginx"]; h[n] = e[r, "haproxy"]; rn[n] = e[r, "connx"] / e[r, "nginx"]; rh[n] = e[r, "connx"] / e[r, "haproxy"] }
    printf "connx %.1f  nginx %.1f  haproxy %.1f calls/cpu_ms;  connx/nginx %.2f  connx/haproxy %.2f\n", median(c, n), median(g, n), median(h, n), median(rn, n), median(rh, n)
  }' "$W/results"
kill "$BPID"; wait "$BPID" 2>/dev/null || true
echo "# backend: $(cat "$W/backend.log")"
