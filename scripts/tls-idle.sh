#!/usr/bin/env bash
# tls-idle.sh — RSS per idle TLS keep-alive connection, ConnX next to
# nginx: each terminates TLS 1.3 (ECDSA P-256 certificate) on one worker
# and proxies to the same nginx backend. scripts/tlsidle opens N
# connections, makes one request on each and holds them; the figure is
# (RSS with them open - RSS before) / N, after a warm-up batch.
#
# Usage (from the project root):
#   scripts/tls-idle.sh
#   N=5000 TLSV=1.2 CONNX_BIN=/tmp/connx-before scripts/tls-idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
TLSV=${TLSV:-1.3}
BASE=${BASE_PORT:-19800}
BE=$((BASE + 1)); TN=$((BASE + 2)); PC=$((BASE + 3)); TC=$((BASE + 4))
export PATH="$PATH:/usr/sbin"
command -v nginx >/dev/null || { echo "tls-idle.sh needs nginx" >&2; exit 2; }
W=$(mktemp -d /tmp/connx-tlsidle.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=example.com -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
if [ -z "${CONNX_BIN:-}" ]; then
  go build -o "$W/connx" ./cmd/connx
  CONNX_BIN=$W/connx
fi
(cd scripts/tlsidle && go build -o "$W/tlsidle" .)

cat >"$W/nginx.conf" <<CONF
daemon on;
pid $W/nginx.pid;
worker_processes 1;
error_log $W/nginx.err;
events { worker_connections $((N * 2 + 1000)); }
http {
  access_log off;
  client_body_temp_path $W/body;
  proxy_temp_path $W/proxy;
  fastcgi_temp_path $W/fastcgi;
  uwsgi_temp_path $W/uwsgi;
  scgi_temp_path $W/scgi;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  upstream be { server 127.0.0.1:$BE; keepalive 32; }
  server { listen 127.0.0.1:$BE; location / { return 200 "hello\n"; } }
  server {
    listen 127.0.0.1:$TN ssl;
    ssl_certificate $W/cert.pem;
    ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -p "$W" -c "$W/nginx.conf"
cat >"$W/connx.yaml" <<CONF
server:
  port: $PC
  host: "127.0.0.1"
  eventLoops: 1
  tls:
    port: $TC
    certificates:
      - certFile: "$W/cert.pem"
        keyFile: "$W/key.pem"
backends:
  - url: "http://127.0.0.1:$BE"
limits:
  maxConnections: $((N * 2 + 1000))
timeouts:
  clientIdle: 60s
CONF
"$CONNX_BIN" -config "$W/connx.yaml" >"$W/connx.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -ksf "https://127.0.0.1:$TC/" >/dev/null 2>&1 && curl -ksf "https://127.0.0.1:$TN/" >/dev/null 2>&1 && break
  sleep 0.1
done

rss_kb() { awk '/^VmRSS/ {s += $2} END {print s}' "$@"; }
measure() { # name port pidfiles...
  local name=$1 port=$2; shift 2
  local files=() p
  for p in "$@"; do files+=("/proc/$p/status"); done
  "$W/tlsidle" -addr "127.0.0.1:$port" -n 500 -hold 0s -tls "$TLSV" >/dev/null 2>&1 # warm-up
  sleep 1
  local before after
  before=$(rss_kb "${files[@]}")
  "$W/tlsidle" -addr "127.0.0.1:$port" -n "$N" -hold 4s -tls "$TLSV" >"$W/idle.$name" 2>&1 &
  local ic=$!
  for _ in $(seq 1 600); do grep -q '^ready' "$W/idle.$name" && break; sleep 0.1; done
  sleep 1 # at least one 100 ms sweep: idle buffers released
  after=$(rss_kb "${files[@]}")
  wait "$ic" || true
  echo "idle-tls$TLSV $name: $(grep '^ready' "$W/idle.$name" || echo 'no ready line') rss_per_idle_conn_bytes=$(( (after - before) * 1024 / N ))"
}
nginx_worker=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
measure nginx "$TN" "$nginx_worker"
measure connx "$TC" "${PIDS[0]}"
