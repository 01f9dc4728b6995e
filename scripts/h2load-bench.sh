#!/usr/bin/env bash
# h2load-bench.sh — HTTP/2 toward clients: ConnX against nginx and HAProxy,
# each serving HTTP/2 on its TLS listener (ALPN h2), in front of the same
# two nginx backends (HTTP/1.1, keep-alive), each proxy on one core:
#   nginx    worker_processes 1, `listen ... ssl http2`, upstream keepalive;
#   HAProxy  nbthread 1, `bind ... ssl crt ... alpn h2,http/1.1`,
#            http-reuse always;
#   ConnX    GOMAXPROCS=1, server.tls with its default server.tls.http2.
# Every proxy runs under `taskset -c $PROXY_CPU` and h2load under
# `taskset -c $LOAD_CPU` (the backends are not pinned).
#
# Scenarios (small GETs: a 6-byte body):
#   1x100   1 connection, 100 concurrent streams   (h2load -c1 -m100)
#   64x10   64 connections, 10 streams each        (h2load -c64 -m10)
#
# For each round, each scenario loads each proxy in turn with REQS
# requests (h2load -n: every request completes, so no run ends with
# streams in flight that the proxy must abort), the order rotating from
# round to round, and reads the proxy's own CPU time (utime+stime of its
# process, nginx's worker) from /proc before and after. The figure is requests per CPU-millisecond of the proxy, as
# ../shared/bench/peers.sh reports it: on a shared, noisy machine it is far
# steadier than requests per second. The ratios are paired: connx/peer
# within one round (the proxies are loaded minutes apart at most), then the
# median and range over rounds.
#
# Usage (from the project root):
#   scripts/h2load-bench.sh
#   ROUNDS=7 REQS=100000 scripts/h2load-bench.sh
#   CONNX_BIN=/path/to/connx PROFILE=1 scripts/h2load-bench.sh  # + a CPU profile of ConnX
#   IDLE=1024 scripts/h2load-bench.sh  # idle upstream caches of 1024 connections
#
# Idle upstream connections: by default as in peers.sh, nginx caches 512
# (`keepalive 512`) and ConnX its default 256 per backend (512 for the
# two); HAProxy's idle pool is not limited. 64x10 keeps up to 640 streams
# in flight, so nginx and ConnX close and redial some upstream
# connections whenever the load dips; IDLE=N gives nginx `keepalive N`
# and ConnX `upstream.maxIdlePerBackend: N/2`, so that none is closed.
set -euo pipefail
# shellcheck source=scripts/benchlib.sh
. "$(dirname "$0")/benchlib.sh"
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
REQS=${REQS:-100000}
DUR=${DUR:-8} # the profile's duration (PROFILE=1)
SCENARIOS=${SCENARIOS:-"1x100 64x10"}
PEERS=${PEERS:-"connx nginx haproxy"}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
BASE=${BASE_PORT:-19800}
B1=$((BASE + 1)); B2=$((BASE + 2)); ADMIN=$((BASE + 3))
T_NGINX=$((BASE + 11)); T_HAPROXY=$((BASE + 12)); T_CONNX=$((BASE + 13))
P_CONNX=$((BASE + 23))

export PATH="$PATH:/usr/sbin"
need() { command -v "$1" >/dev/null 2>&1; }
if ! need h2load; then
  echo "# installing nghttp2-client (h2load)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client) >/dev/null 2>&1 \
    || { echo "h2load-bench.sh: could not install nghttp2-client" >&2; exit 2; }
fi
for tool in nginx haproxy openssl taskset curl; do
  need "$tool" || { echo "h2load-bench.sh needs $tool" >&2; exit 2; }
done

W=$(mktemp -d /tmp/connx-h2load.XXXXXX)
chmod 755 "$W" # nginx workers run as an unprivileged user
PIDS=()
trap bench_cleanup EXIT

if [ -z "${CONNX_BIN:-}" ]; then
  go build -o "$W/connx" ./cmd/connx
  CONNX_BIN="$W/connx"
fi

bench_cert "$W"

cat > "$W/backends.conf" <<EOF
worker_processes 1;
pid $W/backends.pid;
error_log $W/backends.err warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$B1; location / { return 200 "hello\n"; } }
  server { listen 127.0.0.1:$B2; location / { return 200 "hello\n"; } }
}
EOF
cat > "$W/nginx.conf" <<EOF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  http2_max_concurrent_streams 128;
  upstream be { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive ${IDLE:-512}; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$T_NGINX ssl http2;
    ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
cat > "$W/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 9000
  pidfile $W/haproxy.pid
  daemon
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$T_HAPROXY ssl crt $W/combined.pem alpn h2,http/1.1
  default_backend be
backend be
  balance roundrobin
  http-reuse always
  server b1 127.0.0.1:$B1
  server b2 127.0.0.1:$B2
EOF
bench_connx_yaml "$P_CONNX" "$T_CONNX" "$W" "$B1" "$B2" > "$W/connx.yaml"
if [ -n "${IDLE:-}" ]; then
  printf 'upstream:\n  maxIdlePerBackend: %d\n' $((IDLE / 2)) >> "$W/connx.yaml"
fi

nginx -c "$W/backends.conf"
taskset -c "$PROXY_CPU" nginx -c "$W/nginx.conf"
taskset -c "$PROXY_CPU" haproxy -f "$W/haproxy.cfg" 2>"$W/haproxy.err" || { cat "$W/haproxy.err" >&2; exit 2; }
PPROF=()
[ -n "${PROFILE:-}" ] && PPROF=(-pprof "127.0.0.1:$ADMIN")
GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$CONNX_BIN" -config "$W/connx.yaml" "${PPROF[@]}" >"$W/connx.log" 2>&1 &
CONNX_PID=$!
PIDS+=("$CONNX_PID")

port_of() { case $1 in nginx) echo $T_NGINX ;; haproxy) echo $T_HAPROXY ;; connx) echo $T_CONNX ;; esac; }
pids_of() {
  case $1 in
    nginx) pgrep -P "$(cat "$W/nginx.pid")" | tr '\n' ' ' ;; # the worker, not the master
    haproxy) cat "$W/haproxy.pid" ;;
    connx) echo "$CONNX_PID" ;;
  esac
}
wait_h2() { # $1 port: 0 once it answers 200 over HTTP/2
  for _ in $(seq 1 100); do
    [ "$(curl -sk --http2 -o /dev/null -w '%{http_code} %{http_version}' "https://127.0.0.1:$1/")" = "200 2" ] && return 0
    sleep 0.1
  done
  return 1
}
for name in $PEERS; do
  wait_h2 "$(port_of "$name")" || { echo "h2load-bench.sh: $name does not answer 200 over HTTP/2" >&2; tail -20 "$W/$name.log" "$W/$name.err" 2>/dev/null >&2; exit 2; }
done

ticks() { local t=0 s; for p in "$@"; do s=$(awk '{print $14+$15}' "/proc/$p/stat"); t=$((t + s)); done; echo "$t"; }
hz=$(getconf CLK_TCK)

# run_one NAME SCENARIO -> "req_per_s req_per_cpu_ms cpu_s errors"
run_one() {
  local name=$1 sc=$2 pids t0 t1 out c m
  case $sc in
    1x100) c=1; m=100 ;;
    64x10) c=64; m=10 ;;
  esac
  pids=$(pids_of "$name")
  # shellcheck disable=SC2086
  t0=$(ticks $pids)
  out=$(taskset -c "$LOAD_CPU" h2load -t1 -c"$c" -m"$m" -n "$REQS" "https://127.0.0.1:$(port_of "$name")/" 2>&1)
  # shellcheck disable=SC2086
  t1=$(ticks $pids)
  echo "$out" > "$W/last.$name.$sc"
  awk -v hz="$hz" -v dt=$((t1 - t0)) '
    /^finished in/ {rps=$4}
    /^requests:/ {done=$8; failed=$12; errored=$14}
    /^status codes:/ {s2=$3}
    END { cpu=dt/hz; if (cpu<=0) cpu=0.001;
          bad=(failed+errored>0 || s2!=done) ? "errors" : "-";
          printf "%.0f %.1f %.2f %s\n", rps, s2/(cpu*1000), cpu, bad }' <<<"$out"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }

# shellcheck disable=SC2086 # the list is split on purpose
set -- $PEERS
n=$#
for sc in $SCENARIOS; do for name in $PEERS; do : >"$W/$name.$sc"; done; done
for r in $(seq 1 "$ROUNDS"); do
  for sc in $SCENARIOS; do
    # Rotate the order so that no proxy always runs first.
    order=()
    for i in $(seq 0 $((n - 1))); do
      j=$(( (i + r) % n + 1 ))
      order+=("${!j}")
    done
    for name in "${order[@]}"; do
      res=$(run_one "$name" "$sc")
      echo "$res" >>"$W/$name.$sc"
      echo "# round $r $sc $name: $res" >&2
    done
  done
done

if [ -n "${PROFILE:-}" ]; then
  echo "# profiling ConnX in the 64x10 scenario, ${DUR}s" >&2
  # Warm (pools full), then profile all but the last second of a run, so
  # that the streams h2load leaves in flight when it stops are not in it.
  taskset -c "$LOAD_CPU" h2load -t1 -c64 -m10 -n "$REQS" "https://127.0.0.1:$T_CONNX/" >/dev/null 2>&1
  curl -s -o "$W/connx.pprof" "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=$((DUR - 1))" &
  cp=$!
  taskset -c "$LOAD_CPU" h2load -t1 -c64 -m10 -D "$DUR" "https://127.0.0.1:$T_CONNX/" >/dev/null 2>&1
  wait "$cp"
  cp "$W/connx.pprof" "${PROFILE_OUT:-/tmp/connx-h2load.pprof}"
  echo "# profile: ${PROFILE_OUT:-/tmp/connx-h2load.pprof} (go tool pprof -top $CONNX_BIN ...)" >&2
fi

echo "REQS=$REQS ROUNDS=$ROUNDS IDLE=${IDLE:-default}; medians over rounds"
printf '%-8s %-7s %10s %12s %7s\n' proxy scenario req/s req/cpu_ms errors
for sc in $SCENARIOS; do
  for name in $PEERS; do
    rps=$(awk '{print $1}' "$W/$name.$sc" | median)
    eff=$(awk '{print $2}' "$W/$name.$sc" | median)
    err=$(awk '$4!="-"{e="yes"} END{print (e?"yes":"no")}' "$W/$name.$sc")
    printf '%-8s %-7s %10s %12s %7s\n' "$name" "$sc" "$rps" "$eff" "$err"
  done
done
# paired PEER SC: connx's req/cpu_ms over the peer's in the same round;
# the median, then min-max, over rounds.
paired() {
  paste -d' ' <(awk '{print $2}' "$W/connx.$2") <(awk '{print $2}' "$W/$1.$2") \
    | awk '$1>0 && $2>0 {printf "%.3f\n", $1/$2}' > "$W/ratios"
  printf '%.2f (%s-%s)' "$(median <"$W/ratios")" "$(sort -g "$W/ratios" | head -1)" "$(sort -g "$W/ratios" | tail -1)"
}
for peer in $PEERS; do
  [ "$peer" = connx ] && continue
  line="ratio connx/$peer req/cpu_ms:"
  for sc in $SCENARIOS; do line="$line $sc=$(paired "$peer" "$sc")"; done
  echo "$line"
done
