#!/usr/bin/env bash
# tls13-bench.sh — ConnX against nginx on TLS traffic, with nginx both as
# ../shared/bench/peers.sh configures it and with TLS 1.3 switched on.
#
# Why: nginx 1.22 (Debian's) offers TLS 1.0–1.2 unless told otherwise
# (TLS 1.3 joined its default ssl_protocols in 1.23.4), so in peers.sh it
# negotiates TLS 1.2 with wrk while ConnX negotiates TLS 1.3. wrk keeps
# its OpenSSL session across reconnects, so in `tlsclose` nginx resumes
# TLS 1.2 sessions (no key exchange at all) and ConnX resumes TLS 1.3
# ones (an X25519 exchange each: TLS 1.3 resumption with Go's crypto/tls
# is always psk_dhe_ke). This script measures both nginx settings beside
# ConnX, on the same backends, each proxy on one core, wrk as in peers.sh.
#
# Usage (from the project root):
#   scripts/tls13-bench.sh                       # builds ./cmd/connx
#   CONNX_BIN=/path/to/connx ROUNDS=5 DUR=8 SCENARIOS="tlsclose tls" scripts/tls13-bench.sh
#
# It prints, per round and scenario, requests per CPU-millisecond of each
# proxy process (ConnX's process; nginx's worker) and the ratios within the
# round (the proxies take turns, so a ratio compares neighbours in time),
# then the median ratio per scenario.
set -euo pipefail
# shellcheck source=scripts/benchlib.sh
. "$(dirname "$0")/benchlib.sh"
cd "$(dirname "$0")/.."
DUR=${DUR:-6}
ROUNDS=${ROUNDS:-3}
SCENARIOS=${SCENARIOS:-"tlsclose tls"}
BASE=${BASE_PORT:-23100}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need openssl; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk openssl) >/dev/null 2>&1 \
    || { echo "tls13-bench.sh: could not install nginx/wrk/openssl" >&2; exit 2; }
fi
W=$(mktemp -d /tmp/connx-tls13.XXXXXX)
chmod 755 "$W"
PIDS=()
trap bench_cleanup EXIT
if [ -z "${CONNX_BIN:-}" ]; then
  go build -o "$W/connx" ./cmd/connx
  CONNX_BIN=$W/connx
fi
mkdir -p "$W/www"
printf 'hello\n' > "$W/www/index.html"
bench_cert "$W"
B1=$((BASE + 1)); B2=$((BASE + 2))
T_NGINX=$((BASE + 11)); T_NGINX13=$((BASE + 12)); T_CONNX=$((BASE + 13)); P_CONNX=$((BASE + 14))
cat > "$W/backends.conf" <<EOC
worker_processes 1;
daemon on;
pid $W/backends.pid;
error_log $W/backends.err warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$B1; root $W/www; location = / { try_files /index.html =404; } }
  server { listen 127.0.0.1:$B2; root $W/www; location = / { try_files /index.html =404; } }
}
EOC
nginx_conf() { # $1 name, $2 port, $3 extra ssl directives
  cat <<EOC
worker_processes 1;
daemon on;
pid $W/$1.pid;
error_log $W/$1.err warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream be { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 512; keepalive_requests 10000000; }
  server { listen 127.0.0.1:$2 ssl;
    ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem; $3
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
EOC
}
nginx_conf nginx "$T_NGINX" "" > "$W/nginx.conf"
nginx_conf nginx13 "$T_NGINX13" "ssl_protocols TLSv1.2 TLSv1.3;" > "$W/nginx13.conf"
bench_connx_yaml "$P_CONNX" "$T_CONNX" "$W" "$B1" "$B2" > "$W/connx.yaml"
nginx -c "$W/backends.conf"
nginx -c "$W/nginx.conf"
nginx -c "$W/nginx13.conf"
GOMAXPROCS=1 "$CONNX_BIN" -config "$W/connx.yaml" >"$W/connx.log" 2>&1 &
PIDS+=($!)
CONNX_PID=$!
worker_of() { # the worker of the nginx whose master pid is in $1
  local m; m=$(cat "$1"); pgrep -P "$m" | head -1
}
for _ in $(seq 50); do
  curl -sk -o /dev/null "https://127.0.0.1:$T_CONNX/" && curl -sk -o /dev/null "https://127.0.0.1:$T_NGINX13/" && break
  sleep 0.1
done
declare -A PID=([nginx]=$(worker_of "$W/nginx.pid") [nginx-tls13]=$(worker_of "$W/nginx13.pid") [connx]=$CONNX_PID)
declare -A PORT=([nginx]=$T_NGINX [nginx-tls13]=$T_NGINX13 [connx]=$T_CONNX)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# measure NAME SCENARIO: prints requests per CPU-ms
measure() {
  local hdr=() conns=64
  [ "$2" = tlsclose ] && { conns=32; hdr=(-H "Connection: close"); }
  local t0 t1 n
  t0=$(cpu "${PID[$1]}")
  n=$(wrk -t1 -c"$conns" -d"${DUR}s" "${hdr[@]}" "https://127.0.0.1:${PORT[$1]}/" | awk '/requests in/ {print $1}')
  t1=$(cpu "${PID[$1]}")
  awk -v n="$n" -v t="$((t1 - t0))" -v hz="$hz" 'BEGIN { if (t > 0) printf "%.2f", n / (t * 1000 / hz); else print "n/a" }'
}
declare -A RATIOS
for r in $(seq "$ROUNDS"); do
  for sc in $SCENARIOS; do
    c=$(measure connx "$sc"); n=$(measure nginx "$sc"); n13=$(measure nginx-tls13 "$sc")
    r1=$(awk -v a="$c" -v b="$n" 'BEGIN { printf "%.2f", a / b }')
    r2=$(awk -v a="$c" -v b="$n13" 'BEGIN { printf "%.2f", a / b }')
    echo "round $r $sc: connx $c nginx $n nginx-tls13 $n13 req/CPU-ms; connx/nginx $r1 connx/nginx-tls13 $r2"
    RATIOS[$sc]+="$r1,$r2 "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END { print a[int((NR + 1) / 2)] }'; }
for sc in $SCENARIOS; do
  m1=$(for x in ${RATIOS[$sc]}; do echo "${x%,*}"; done | median)
  m2=$(for x in ${RATIOS[$sc]}; do echo "${x#*,}"; done | median)
  echo "median $sc: connx/nginx $m1 connx/nginx-tls13 $m2"
done
