#!/usr/bin/env bash
# ws-bench.sh — WebSocket tunnel throughput and CPU cost: ConnX against
# nginx, in one run, proxying the same WebSocket echo backend.
#
# Usage (from the project root):
#   scripts/ws-bench.sh
#   ROUNDS=5 VARIANTS="64KiB:256MiB,1KiB:32MiB" scripts/ws-bench.sh
#   STRACE=1 scripts/ws-bench.sh        # system calls per proxy (strace -c), short runs
#
# What it does:
#   - installs nginx with apt-get when it is missing (as
#     ../shared/bench/peers.sh does) and stops the packaged service;
#   - builds ./cmd/connx and ./scripts/wsbench;
#   - starts, on 127.0.0.1, each proxy limited to one core the way peers.sh
#     does it (one worker / GOMAXPROCS=1, no CPU pinning):
#       connx     GOMAXPROCS=1, server.eventLoops 1, health checks off,
#                 everything else default (limits.connectionBuffer 256KiB);
#       connx64m  the same with limits.connectionBuffer 64MiB, so that a
#                 tunnel is parked for backpressure far less often; set
#                 CONNX_TUNED_BUFFER= (empty) to leave it out;
#       nginx     worker_processes 1, proxy_http_version 1.1, Upgrade and
#                 Connection "upgrade" passed on, buffers left at their
#                 defaults (proxy_buffer_size is one memory page: 4 KiB);
#       nginx64k  the same with proxy_buffer_size 64k (the tunnel buffer of
#                 an upgraded connection is proxy_buffer_size; proxy_buffers
#                 and proxy_busy_buffers_size follow so nginx accepts it);
#                 set NGINX_TUNED_BUFFER= (empty) to leave it out;
#   - runs wsbench (see scripts/wsbench/main.go), which starts the echo
#     backend in its own process, then for each message size, round and
#     proxy in turn (the order rotates every round) sends CLIENTS parallel
#     streams of messages through the proxy and reads the echoes; the
#     proxy's CPU is utime+stime from /proc/PID/stat (ConnX's process,
#     nginx's worker);
#   - prints each run on stderr, then the medians over ROUNDS (of the runs
#     that completed; a run fails when no echo arrives for 10 s) and the
#     ratios connx/nginx, connx64m/nginx and connx64m/nginx64k on stdout;
#   - stops everything it started on exit; exits 1 if any run failed.
#
# With STRACE=1, instead of the measurement, each proxy in turn carries one
# short run per message size (STRACE_VARIANTS) with `strace -c -f` attached
# to its process, and the call counts are printed per message and per MiB
# of payload (both ways).
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-4}
ROUNDS=${ROUNDS:-3}
VARIANTS=${VARIANTS:-"64KiB:256MiB,1MiB:256MiB,1KiB:32MiB"}
STRACE=${STRACE:-0}
STRACE_VARIANTS=${STRACE_VARIANTS:-"64KiB:32MiB,1MiB:32MiB,1KiB:4MiB"}
NGINX_TUNED_BUFFER=${NGINX_TUNED_BUFFER-64k}
CONNX_TUNED_BUFFER=${CONNX_TUNED_BUFFER-64MiB}
BASE=${BASE_PORT:-19300}
P_BACKEND=$((BASE + 1))
P_NGINX=$((BASE + 81)); P_NGINX_TUNED=$((BASE + 82))
P_CONNX=$((BASE + 83)); P_CONNX_TUNED=$((BASE + 84))

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx; then
  echo "# installing nginx" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null 2>&1 \
    || { echo "ws-bench.sh: could not install nginx" >&2; exit 2; }
fi
if [ "$STRACE" = 1 ] && ! need strace; then
  echo "# installing strace" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace) >/dev/null 2>&1 \
    || { echo "ws-bench.sh: could not install strace" >&2; exit 2; }
fi
# Debian starts the packaged service on install; it is not ours to use.
service nginx stop >/dev/null 2>&1 || true

W=$(mktemp -d /tmp/connx-wsbench.XXXXXX)
chmod 755 "$W"   # nginx workers run as an unprivileged user
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$W"/*.pid; do [ -f "$f" ] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
  # ConnX drains for up to server.shutdownTimeout (5 s); wait for all.
  for _ in $(seq 1 70); do
    alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  rm -rf "$W"
}
trap cleanup EXIT

echo "# building ./cmd/connx and ./scripts/wsbench" >&2
go build -o "$W/connx" ./cmd/connx
go build -o "$W/wsbench" ./scripts/wsbench

connx_conf() { # NAME PORT [limits.connectionBuffer]
  cat > "$W/$1.yaml" <<EOF
server:
  port: $2
  host: "127.0.0.1"
  shutdownTimeout: 5
  eventLoops: 1
backends:
  - url: "http://127.0.0.1:$P_BACKEND"
healthCheck:
  enabled: false
EOF
  if [ -n "${3:-}" ]; then printf 'limits:\n  connectionBuffer: %s\n' "$3" >> "$W/$1.yaml"; fi
}
CONNXES=(connx)
connx_conf connx "$P_CONNX"
if [ -n "$CONNX_TUNED_BUFFER" ]; then
  CONNXES+=(connx64m)
  connx_conf connx64m "$P_CONNX_TUNED" "$CONNX_TUNED_BUFFER"
fi

nginx_conf() { # NAME PORT [proxy_buffer_size]
  cat > "$W/$1.conf" <<EOF
worker_processes 1;
daemon on;
pid $W/$1.pid;
error_log $W/$1.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream ws { server 127.0.0.1:$P_BACKEND; }
  server {
    listen 127.0.0.1:$2;
    location / {
      proxy_pass http://ws;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      ${3:+proxy_buffer_size $3; proxy_buffers 4 $3; proxy_busy_buffers_size $3;}
    }
  }
}
EOF
}
NGINXES=(nginx)
nginx_conf nginx "$P_NGINX"
if [ -n "$NGINX_TUNED_BUFFER" ]; then
  NGINXES+=(nginx64k)
  nginx_conf nginx64k "$P_NGINX_TUNED" "$NGINX_TUNED_BUFFER"
fi

for n in "${NGINXES[@]}"; do
  nginx -c "$W/$n.conf"
  # The daemon writes its pid file after the command returns; wait for it
  # so that cleanup can stop this nginx even if a later step fails.
  for _ in $(seq 1 50); do [ -s "$W/$n.pid" ] && break; sleep 0.1; done
  PIDS+=("$(cat "$W/$n.pid")")
done
declare -A CONNX_PID
for n in "${CONNXES[@]}"; do
  GOMAXPROCS=1 "$W/connx" -config "$W/$n.yaml" >"$W/$n.log" 2>&1 &
  CONNX_PID[$n]=$!
  PIDS+=("$!")
done

wait_listen() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "ws-bench.sh: nothing listens on port $1" >&2
  tail -5 "$W"/*.log "$W"/*.err >&2 2>/dev/null || true
  exit 2
}
port_of() {
  case $1 in
    connx) echo "$P_CONNX" ;; connx64m) echo "$P_CONNX_TUNED" ;;
    nginx) echo "$P_NGINX" ;; nginx64k) echo "$P_NGINX_TUNED" ;;
  esac
}
# The processes whose CPU counts: ConnX's process; nginx's worker (not
# the master, which sleeps).
pids_of() {
  case $1 in
    connx*) echo "${CONNX_PID[$1]}" ;;
    *) pgrep -P "$(cat "$W/$1.pid")" | paste -sd, - ;;
  esac
}
NAMES=("${CONNXES[@]}" "${NGINXES[@]}")
RATIOS=connx/nginx
[ -n "$CONNX_TUNED_BUFFER" ] && RATIOS+=,connx64m/nginx
if [ -n "$CONNX_TUNED_BUFFER" ] && [ -n "$NGINX_TUNED_BUFFER" ]; then RATIOS+=,connx64m/nginx64k; fi
TARGETS=()
for n in "${NAMES[@]}"; do
  wait_listen "$(port_of "$n")"
  TARGETS+=(-target "$n=127.0.0.1:$(port_of "$n")@$(pids_of "$n")")
done
HZ=$(getconf CLK_TCK)

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') commit $(git describe --always --dirty 2>/dev/null || echo unknown) $(nginx -v 2>&1) $(go version | awk '{print $3}')" >&2

if [ "$STRACE" != 1 ]; then
  "$W/wsbench" -backend "127.0.0.1:$P_BACKEND" -hz "$HZ" -clients "$CLIENTS" -rounds "$ROUNDS" \
    -variants "$VARIANTS" -ratios "$RATIOS" "${TARGETS[@]}"
  exit
fi

# STRACE=1: one short run per proxy and message size under strace -c -f.
IFS=, read -ra SVS <<<"$STRACE_VARIANTS"
for v in "${SVS[@]}"; do
  size=${v%%:*}; total=${v#*:}
  for n in "${NAMES[@]}"; do
    sopts=()
    for p in $(pids_of "$n" | tr , ' '); do sopts+=(-p "$p"); done
    strace -c -f -o "$W/strace.out" "${sopts[@]}" 2>/dev/null &
    SPID=$!
    PIDS+=("$SPID")
    sleep 1 # let strace attach
    status=ok
    "$W/wsbench" -backend "127.0.0.1:$P_BACKEND" -hz "$HZ" -clients "$CLIENTS" -rounds 1 -warmup 0 \
      -variants "$v" -target "$n=127.0.0.1:$(port_of "$n")@$(pids_of "$n")" >/dev/null 2>"$W/wsbench.err" \
      || status="FAILED: $(grep -m1 ERROR "$W/wsbench.err" | sed 's/.*ERROR //')"
    kill -INT "$SPID"
    wait "$SPID" 2>/dev/null || true
    # Messages and MiB that crossed the proxy, both ways.
    read -r msgs mib < <(awk -v c="$CLIENTS" -v s="$size" -v t="$total" '
      function bytes(x,  m) { m=1; if (x ~ /GiB$/) m=2^30; else if (x ~ /MiB$/) m=2^20; else if (x ~ /KiB$/) m=1024;
                              sub(/[KMG]?i?B$/, "", x); return x*m }
      BEGIN { n=2*c*int(bytes(t)/bytes(s)); printf "%d %.3f\n", n, n*bytes(s)/2^20 }')
    echo "== $n $size messages: $msgs echoed messages, $mib MiB both ways ($total per client, $CLIENTS clients), run $status"
    awk -v m="$msgs" -v mib="$mib" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
        printf "  %-14s %9d calls %10.3f /msg %9.2f /MiB\n", $NF, $4, $4/m, $4/mib }' "$W/strace.out" \
      | sort -k2 -nr | head -"${STRACE_TOP:-8}"
  done
done
