#!/usr/bin/env bash
# cost.sh — cost per request of ConnX and of nginx on the same traffic, in
# figures that do not depend on the machine's noise: system calls per
# request (strace) and user-space instructions per request (callgrind).
#
# Usage (from the project root):
#   scripts/cost.sh                          # builds ./cmd/connx, everything
#   make cost                                # the same
#   CONNX_BIN=/path/to/connx scripts/cost.sh
#   MEASURE=syscalls RUNS=3 SCENARIOS="small close" scripts/cost.sh
#   N_SMALL=50000 CG_N_SMALL=5000 scripts/cost.sh
#   SCENARIOS="tls tlsclose" scripts/cost.sh  # the TLS scenarios (about 6 min)
#
# Scenarios (those of ../shared/bench/peers.sh):
#   small    GET /    (6-byte body), keep-alive,                   N_SMALL requests
#   big      GET /big (1 MiB body),  keep-alive,                   N_BIG requests
#   close    GET /    (6-byte body), a new connection per request, N_CLOSE requests
#   tls      GET / over TLS, keep-alive (one handshake),           N_TLS requests
#   tlsclose GET / over TLS, a new connection and handshake per
#            request ("Connection: close"), the session resumed
#            from the second connection on (as wrk),               N_TLSCLOSE requests
# The default SCENARIOS are the first three (4-6 minutes); with tls and
# tlsclose too a run takes 10-12 minutes, so they are asked for by name.
# TLS: one self-signed ECDSA P-256 certificate for 127.0.0.1 made with
# openssl, as peers.sh; ConnX gets server.tls (port, certificates) and
# negotiates TLS 1.3; nginx gets `listen ... ssl` with its default
# ssl_protocols (nginx 1.22 stops at TLS 1.2: the row "nginx", as in
# peers.sh) and, on a second port of the same worker, `ssl_protocols
# TLSv1.2 TLSv1.3` (nginx >= 1.23.4's default: the row "nginx-tls13", like
# for like with ConnX). costclient -tls offers X25519 first (no
# post-quantum hybrid, as wrk's OpenSSL 3.0) and no ALPN, and shares one
# session cache between its connections; the first connection of each
# costclient run makes a full handshake, the others resume (TLS 1.2: a
# session ticket, no key exchange; TLS 1.3: a PSK with an X25519 exchange).
# Under callgrind a resumed TLS 1.3 handshake costs about 2 million
# instructions, so CG_N_TLSCLOSE is 300 by default.
#
# What it does:
#   - installs nginx, strace and valgrind with apt-get when they are missing;
#   - builds ./cmd/connx (unless CONNX_BIN is set) and ./scripts/costclient;
#   - starts two nginx backends on 127.0.0.1 (GET / -> "hello\n", GET /big
#     -> 1 MiB), as peers.sh does;
#   - syscalls: starts nginx as a proxy (worker_processes 1, upstream
#     keepalive, as peers.sh) and ConnX (GOMAXPROCS=1, server.eventLoops 1,
#     the config of peers.sh), warms each up (WARMUP requests of every
#     scenario), then, RUNS times, for each scenario and proxy in turn:
#     attaches `strace -f -c` to the proxy (ConnX's process with all its
#     threads; nginx's worker, not its master, which sleeps), sends the
#     scenario's N requests with costclient, detaches, and divides the calls
#     by N;
#   - instructions: starts the same two proxies under
#     `valgrind --tool=callgrind --instr-atstart=no` (nginx with
#     `master_process off; daemon off;`, so the worker is the process valgrind
#     runs), warms them up, switches instrumentation on
#     (`callgrind_control -i on`), and, RUNS times, for each scenario and
#     proxy: zeroes the counters (`callgrind_control -z`), sends CG_N_*
#     requests, dumps (`callgrind_control -d`) and divides the dump's total
#     Ir (instructions executed in user space, all threads) by the requests;
#   - with LISTING=1 (the default) also records, with a full `strace -f`,
#     the system calls each proxy makes for 3 keep-alive requests and for
#     3 connections of the close scenario (printed in order, to compare per
#     request and per connection), and for LIST_N of each (printed per
#     request, with the epoll waits split by epoll instance: the event
#     loop's, and for ConnX the Go runtime's netpoller); the same for tls
#     and tlsclose when they are among the SCENARIOS;
#   - prints the runs one by one, then one table: scenario, proxy,
#     syscalls/request (mean over runs, and the spread between runs), the
#     same without epoll waits and the Go runtime's timing calls, those
#     two, and instructions/request (mean and spread); then the system calls
#     per request one by one, the instructions per request by part of the
#     program (ConnX code, gnet, Go runtime, syscall wrappers, other Go
#     packages; nginx, libc) and the top functions (callgrind self cost);
#   - stops everything it started on exit; every load step is bounded by
#     STEP_TIMEOUT seconds.
#
#   - cpu (asked for by name: MEASURE=cpu, or "syscalls instructions cpu"):
#     with the proxies of the syscalls phase and no tracer attached, reads
#     each proxy's user and system CPU time from /proc (utime and stime of
#     ConnX's process, all threads; of nginx's worker) around CPU_SCALE
#     times the strace N of requests, and prints microseconds of user and
#     of kernel time per request and the kernel's share; then, for ConnX,
#     the efficiency ratio against nginx that ConnX would reach if its
#     user-space time were zero (nginx's user + kernel time over ConnX's
#     kernel time). That bound is what says whether a ratio goal can be
#     met in user space at all. CPU time is wall-clock sampling (the kernel
#     charges whole ticks), so this is a measure of the machine's noise
#     too: use N large enough for hundreds of ticks, and CONNS as peers.sh
#     (64 small, 8 big, 32 close).
#
# costclient (scripts/costclient) sends exactly N requests, CONNS
# connections at a time (default 1: one connection, one request after the
# other, so every run gives the proxy the same arrivals in the same order).
#
# What is deterministic and what is not:
#   - the calls that move data and manage connections (read, write, recvfrom,
#     writev, accept4, close, epoll_ctl, setsockopt...) are the same in every
#     run;
#   - how many epoll_wait calls find work depends on timing (did the next
#     event arrive before the loop asked?), so it moves by a few percent;
#   - nanosleep, futex, sched_yield, tgkill, getpid, rt_sigreturn (and
#     restart_syscall) are the Go runtime's: sysmon, hand-offs of the P
#     while the loop blocks in epoll_wait, preemption signals. They follow
#     wall time, not requests (strace itself slows the process), so they
#     are reported in a column of their own (for ConnX only: nginx's
#     getpid calls are OpenSSL's fork check, per handshake and record, and
#     count with the rest);
#   - ConnX also does time-driven work: a gnet ticker every 100 ms (every
#     2 ms while a connection is parked or flushing) and health checks
#     (every 5 s per backend here). Under strace that is a few hundredths of
#     a call per request; under callgrind (≈50x slower) it is measured apart:
#     the idle line gives ConnX's instructions per second with no traffic;
#   - instructions: ConnX runs under valgrind with
#     GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1: valgrind 3.19 cannot execute
#     RDTSCP (Go's cputicks), and Go's SIGURG preemption signals crash
#     callgrind (assertion in vgCallgrind_post_signal). Garbage collection
#     is left on (GOGC default): it is part of the cost, and a GC cycle
#     falling inside or outside a window is most of the spread between runs.
#
# Environment:
#   SCENARIOS ("small big close"; also tls, tlsclose),
#   PROXIES ("nginx nginx-tls13 connx"; nginx-tls13 takes part in the TLS
#   scenarios only, and is nginx's worker on another port),
#   MEASURE ("syscalls instructions"; also cpu), RUNS (2), CPU_SCALE (5),
#   BACKEND_CLOSE (0; 1: the backends close every connection, so every
#   request makes the proxy connect to a backend),
#   N_SMALL (20000), N_BIG (2000), N_CLOSE (5000), N_TLS (20000),
#   N_TLSCLOSE (2000): requests under strace,
#   CG_N_SMALL, CG_N_BIG, CG_N_CLOSE (the same by default), CG_N_TLS (5000),
#   CG_N_TLSCLOSE (300): under callgrind,
#   CONNS (1), WARMUP (500 per scenario), LISTING (1), LIST_N (100),
#   IDLE_SECONDS (5), TOP_FUNCS (12), KEEP_DIR (0; 1 keeps the work directory:
#   the strace listings, the callgrind dumps for callgrind_annotate, the
#   per-run results),
#   STEP_TIMEOUT (300), BASE_PORT (19400: backends +1 and +2, nginx +81,
#   ConnX +83, nginx under callgrind +86, ConnX under callgrind +88; TLS:
#   nginx +91, nginx-tls13 +92, ConnX +93, under callgrind +96, +97, +98),
#   CONNX_BIN (build ./cmd/connx when empty), CONNX_PROCS (1: ConnX's
#   GOMAXPROCS; server.eventLoops stays 1).
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIOS=${SCENARIOS:-"small big close"}
PROXIES=${PROXIES:-"nginx nginx-tls13 connx"}
MEASURE=${MEASURE:-"syscalls instructions"}
RUNS=${RUNS:-2}
N_SMALL=${N_SMALL:-20000}
N_BIG=${N_BIG:-2000}
N_CLOSE=${N_CLOSE:-5000}
N_TLS=${N_TLS:-20000}
N_TLSCLOSE=${N_TLSCLOSE:-2000}
CG_N_SMALL=${CG_N_SMALL:-$N_SMALL}
CG_N_BIG=${CG_N_BIG:-$N_BIG}
CG_N_CLOSE=${CG_N_CLOSE:-$N_CLOSE}
CG_N_TLS=${CG_N_TLS:-5000}
CG_N_TLSCLOSE=${CG_N_TLSCLOSE:-300}
CONNS=${CONNS:-1}
CPU_SCALE=${CPU_SCALE:-5}
BACKEND_CLOSE=${BACKEND_CLOSE:-0}
BACKEND_KEEPALIVE=""
# BACKEND_CLOSE=1: the backends close every connection after its response
# (keepalive_timeout 0), so each request costs the proxy an upstream
# connect: the cost of a connect.
if [ "$BACKEND_CLOSE" = 1 ]; then BACKEND_KEEPALIVE=" keepalive_timeout 0;"; fi
CONNX_PROCS=${CONNX_PROCS:-1}
WARMUP=${WARMUP:-500}
LISTING=${LISTING:-1}
LIST_N=${LIST_N:-100}
IDLE_SECONDS=${IDLE_SECONDS:-5}
TOP_FUNCS=${TOP_FUNCS:-12}
KEEP_DIR=${KEEP_DIR:-0}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
BASE=${BASE_PORT:-19400}
B1=$((BASE + 1)); B2=$((BASE + 2))
P_NGINX=$((BASE + 81)); P_CONNX=$((BASE + 83))
P_CG_NGINX=$((BASE + 86)); P_CG_CONNX=$((BASE + 88))
# TLS ports: nginx (its default ssl_protocols), nginx with TLS 1.3 allowed
# (the same worker, a second server block), ConnX; then the same under callgrind.
T_NGINX=$((BASE + 91)); T_NGINX13=$((BASE + 92)); T_CONNX=$((BASE + 93))
T_CG_NGINX=$((BASE + 96)); T_CG_NGINX13=$((BASE + 97)); T_CG_CONNX=$((BASE + 98))
# The Go runtime's calls that follow wall time rather than requests.
RUNTIME_CALLS="nanosleep futex sched_yield tgkill getpid rt_sigreturn restart_syscall"
# rt_calls NAME: those calls for ConnX; none for nginx, whose calls are all
# its own (OpenSSL calls getpid for every handshake and record, to detect
# a fork).
rt_calls() { if [ "$1" = connx ]; then echo "$RUNTIME_CALLS"; fi; }

has() { [[ " $2 " == *" $1 "* ]]; }
is_tls() { [ "$1" = tls ] || [ "$1" = tlsclose ]; }
TLS_ON=0
for sc in $SCENARIOS; do if is_tls "$sc"; then TLS_ON=1; fi; done
# part NAME SCENARIO: does NAME take part in SCENARIO? nginx-tls13 is
# nginx's worker on a TLS port of its own (ssl_protocols TLSv1.2 TLSv1.3):
# it takes part in the TLS scenarios only.
part() { [ "$1" != nginx-tls13 ] || is_tls "$2"; }
# proc NAME: the process that serves NAME (nginx-tls13 is nginx's).
proc() { if [ "$1" = nginx-tls13 ]; then echo nginx; else echo "$1"; fi; }
NGINX_ON=0
if has nginx "$PROXIES" || has nginx-tls13 "$PROXIES"; then NGINX_ON=1; fi
need() { command -v "$1" >/dev/null 2>&1; }
pkgs=()
need nginx || pkgs+=(nginx)
if [ "$TLS_ON" = 1 ]; then need openssl || pkgs+=(openssl); fi
if has syscalls "$MEASURE" || [ "$LISTING" = 1 ]; then need strace || pkgs+=(strace); fi
if has instructions "$MEASURE"; then need valgrind && need callgrind_control || pkgs+=(valgrind); fi
if [ "${#pkgs[@]}" -gt 0 ]; then
  echo "# installing ${pkgs[*]}" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}") >/dev/null 2>&1 \
    || { echo "cost.sh: could not install ${pkgs[*]}" >&2; exit 2; }
fi
# Debian starts the packaged service on install; it is not ours to use.
service nginx stop >/dev/null 2>&1 || true

W=$(mktemp -d /tmp/connx-cost.XXXXXX)
chmod 755 "$W"   # nginx workers run as an unprivileged user
# ConnX watches the directory of its config file: keep the config alone in
# its own directory, so that what strace and callgrind write is not seen.
mkdir -p "$W/www" "$W/connx" "$W/cgconnx" "$W/out" "$W/res"
R=$W/res
PIDS=()      # processes to stop, by id
NGINX_PIDFILES=()
cleanup() {
  local p f alive
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "${NGINX_PIDFILES[@]}"; do
    if [ -s "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
  done
  # ConnX drains for up to server.shutdownTimeout (2 s here); valgrind's
  # ConnX is slower. Wait for all, then insist.
  for _ in $(seq 1 100); do
    alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "$KEEP_DIR" = 1 ]; then echo "# kept $W (strace listings, callgrind dumps, per-run results)" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

if [ -z "${CONNX_BIN:-}" ]; then
  echo "# building ./cmd/connx" >&2
  go build -o "$W/connx-bin" ./cmd/connx
  CONNX_BIN="$W/connx-bin"
fi
go build -o "$W/costclient" ./scripts/costclient
COMMIT=$(git describe --always --dirty 2>/dev/null || echo unknown)

if [ "$TLS_ON" = 1 ]; then
  # One certificate for every TLS port, as peers.sh.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$W/key.pem" -out "$W/cert.pem" >/dev/null 2>&1
  chmod 644 "$W"/*.pem
fi
printf 'hello\n' > "$W/www/index.html"
head -c 1048576 /dev/zero | tr '\0' 'x' > "$W/www/big"

cat > "$W/backends.conf" <<EOF
worker_processes 1;
daemon on;
pid $W/backends.pid;
error_log $W/backends.err warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;$BACKEND_KEEPALIVE
  server { listen 127.0.0.1:$B1; root $W/www; location = / { try_files /index.html =404; } }
  server { listen 127.0.0.1:$B2; root $W/www; location = / { try_files /index.html =404; } }
}
EOF
nginx_conf() { # PORT PIDFILE ERRFILE DAEMON(on|off) TLSPORT TLS13PORT [extra main-context lines]
  local loc tls="" tls13=""
  loc='location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }'
  if [ "$TLS_ON" = 1 ]; then
    # As peers.sh: nginx's default ssl_protocols (TLS 1.2 at most in 1.22)...
    tls="listen 127.0.0.1:$5 ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;"
    # ... and, on a port of its own, TLS 1.3 allowed (nginx >= 1.23.4's default).
    tls13="server { listen 127.0.0.1:$6 ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; $loc }"
  fi
  cat <<EOF
worker_processes 1;
daemon $4;
${7:-}
pid $2;
error_log $3 warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream be { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 512; keepalive_requests 10000000; }
  server { listen 127.0.0.1:$1; $tls
    $loc }
  $tls13
}
EOF
}
connx_conf() { # PORT TLSPORT — peers.sh's ConnX config, with one event loop
  cat <<EOF
server:
  port: $1
  host: "127.0.0.1"
  shutdownTimeout: 2
  eventLoops: 1
EOF
  if [ "$TLS_ON" = 1 ]; then
    cat <<EOF
  tls:
    port: $2
    certificates:
      - certFile: $W/cert.pem
        keyFile: $W/key.pem
EOF
  fi
  cat <<EOF
backends:
  - url: "http://127.0.0.1:$B1"
    weight: 1
  - url: "http://127.0.0.1:$B2"
    weight: 1
loadBalancing:
  algorithm: "round-robin"
healthCheck:
  interval: 5
  timeout: 2
circuitBreaker:
  enabled: true
  maxFailures: 5
  timeout: 60
  resetTimeout: 30
  halfOpenSuccess: 2
rateLimit:
  enabled: false
EOF
}
nginx_conf "$P_NGINX" "$W/nginx.pid" "$W/nginx.err" on "$T_NGINX" "$T_NGINX13" > "$W/nginx.conf"
nginx_conf "$P_CG_NGINX" "$W/cgnginx.pid" "$W/cgnginx.err" off "$T_CG_NGINX" "$T_CG_NGINX13" "master_process off;" > "$W/cgnginx.conf"
connx_conf "$P_CONNX" "$T_CONNX" > "$W/connx/connx.yaml"
connx_conf "$P_CG_CONNX" "$T_CG_CONNX" > "$W/cgconnx/connx.yaml"

start_nginx() { # CONF PIDFILE
  NGINX_PIDFILES+=("$2")
  nginx -c "$1"
  # The daemon writes its pid file after the command returns.
  for _ in $(seq 1 50); do [ -s "$2" ] && return 0; sleep 0.1; done
  echo "cost.sh: nginx -c $1 wrote no pid file" >&2; exit 2
}
# load PORT SCENARIO N: costclient's line on stdout; fails on any error.
load() {
  local args=(-addr "127.0.0.1:$1" -n "$3" -conns "$CONNS" -timeout 120s)
  case $2 in
    small) ;;
    big) args+=(-path /big) ;;
    close) args+=(-close) ;;
    tls) args+=(-tls) ;;
    tlsclose) args+=(-close -tls) ;;
    *) echo "cost.sh: unknown scenario $2" >&2; exit 2 ;;
  esac
  timeout "$STEP_TIMEOUT" "$W/costclient" "${args[@]}"
}
wait_ready() { # PORT NAME [-tls]: until one GET / through it succeeds (valgrind starts slowly)
  for _ in $(seq 1 300); do
    "$W/costclient" -addr "127.0.0.1:$1" -n 1 -timeout 5s "${@:3}" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "cost.sh: $2 does not answer on port $1" >&2
  tail -20 "$W"/*.log "$W"/*.err 2>/dev/null >&2 || true
  exit 2
}
n_of() { # KIND(sys|cg) SCENARIO
  case $1.$2 in
    sys.small) echo "$N_SMALL" ;; sys.big) echo "$N_BIG" ;; sys.close) echo "$N_CLOSE" ;;
    cg.small) echo "$CG_N_SMALL" ;; cg.big) echo "$CG_N_BIG" ;; cg.close) echo "$CG_N_CLOSE" ;;
    sys.tls) echo "$N_TLS" ;; sys.tlsclose) echo "$N_TLSCLOSE" ;;
    cg.tls) echo "$CG_N_TLS" ;; cg.tlsclose) echo "$CG_N_TLSCLOSE" ;;
  esac
}
port_of() { # KIND(sys|cg) NAME SCENARIO: the port that serves NAME in SCENARIO
  local k=$1.$2
  if is_tls "$3"; then k=$k.tls; fi
  case $k in
    sys.nginx|sys.nginx-tls13) echo "$P_NGINX" ;; sys.connx) echo "$P_CONNX" ;;
    cg.nginx|cg.nginx-tls13) echo "$P_CG_NGINX" ;; cg.connx) echo "$P_CG_CONNX" ;;
    sys.nginx.tls) echo "$T_NGINX" ;; sys.nginx-tls13.tls) echo "$T_NGINX13" ;; sys.connx.tls) echo "$T_CONNX" ;;
    cg.nginx.tls) echo "$T_CG_NGINX" ;; cg.nginx-tls13.tls) echo "$T_CG_NGINX13" ;; cg.connx.tls) echo "$T_CG_CONNX" ;;
  esac
}
warm() { # KIND(sys|cg) NAME: WARMUP requests of every scenario NAME takes part in
  local sc
  for sc in $SCENARIOS; do
    if part "$2" "$sc"; then load "$(port_of "$1" "$2" "$sc")" "$sc" "$WARMUP" >/dev/null; fi
  done
}
# ready KIND PROC: waits for the plaintext port of PROC and, with TLS
# scenarios, for the TLS port of every name PROC serves.
ready() {
  local name
  wait_ready "$(port_of "$1" "$2" small)" "$2"
  if [ "$TLS_ON" = 1 ]; then
    for name in nginx nginx-tls13 connx; do
      if [ "$(proc "$name")" = "$2" ]; then wait_ready "$(port_of "$1" "$name" tls)" "$name (TLS)" -tls; fi
    done
  fi
}

start_nginx "$W/backends.conf" "$W/backends.pid"
wait_ready "$B1" backend; wait_ready "$B2" backend

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') commit $COMMIT, $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(go version | awk '{print $3}'), $(strace -V 2>/dev/null | awk 'NR == 1 { print "strace " $NF }'), $(valgrind --version 2>/dev/null || echo 'no valgrind')" >&2
echo "# conns=$CONNS backend_close=$BACKEND_CLOSE runs=$RUNS scenarios: $SCENARIOS; strace N:$(for sc in $SCENARIOS; do printf ' %s=%s' "$sc" "$(n_of sys "$sc")"; done); callgrind N:$(for sc in $SCENARIOS; do printf ' %s=%s' "$sc" "$(n_of cg "$sc")"; done)" >&2

# ---- system calls -----------------------------------------------------------
STRACE_PID=
# strace_attach OUTFILE ERRFILE PID... [strace options...]: starts strace in
# the background, returns once it is attached.
strace_attach() {
  local out=$1 err=$2 p sopts=(); shift 2
  for p in "$@"; do sopts+=(-p "$p"); done
  strace -f "${STRACE_OPTS[@]}" -o "$out" "${sopts[@]}" 2>"$err" &
  STRACE_PID=$!
  PIDS+=("$STRACE_PID")
  for _ in $(seq 1 100); do grep -qs attached "$err" && break; sleep 0.05; done
  sleep 0.5   # every thread
}
strace_detach() {
  kill -INT "$STRACE_PID" 2>/dev/null || true
  wait "$STRACE_PID" 2>/dev/null || true
  STRACE_PID=
}
# The processes whose system calls count: ConnX's process; nginx's worker.
sys_pids() {
  case $(proc "$1") in
    connx) echo "$CONNX_PID" ;;
    nginx) pgrep -P "$(cat "$W/nginx.pid")" | tr '\n' ' ' ;;
  esac
}
# The scenarios of the listings: small and close, and those of TLS asked for.
LIST_SCENARIOS="small close"
for sc in tls tlsclose; do if has "$sc" "$SCENARIOS"; then LIST_SCENARIOS="$LIST_SCENARIOS $sc"; fi; done

# condense FILE NAME: a full strace -f listing, from the first accept4 to the
# last close of an accepted connection, as one line of calls (name and
# first argument; epoll_ctl with its operation), the Go runtime's timing
# calls counted apart.
condense() {
  awk -v rt=" $(rt_calls "$2") " '
    /^[0-9]+ +[a-z_0-9]+\(/ {
      line = $0; sub(/^[0-9]+ +/, "", line)
      name = line; sub(/\(.*/, "", name)
      arg = line; sub(/^[a-z_0-9]+\(/, "", arg)
      a = arg; sub(/[,) ].*/, "", a)
      if (a ~ /^"/) a = "buf"
      if (name == "epoll_ctl") { op = arg; sub(/^[^,]*, */, "", op); sub(/,.*/, "", op); sub(/EPOLL_CTL_/, "", op); a = a "," op }
      n++; nm[n] = name; tok[n] = name "(" a ")"
      if (name == "accept4" && !first) first = n
      if (name == "close" && (a in accepted)) { last = n; delete accepted[a] }
    }
    /accept4[(].*\) += [0-9]+$|<[.][.][.] accept4 resumed>.* = [0-9]+$/ { fdno = $NF; accepted[fdno] = 1 }
    # a duplicate of an accepted descriptor (ConnX before 4344dbf, for the
    # TLS handshake) is the same connection: its close counts too.
    /^[0-9]+ +fcntl[(][0-9]+, F_DUPFD/ { src = $2; sub(/^fcntl[(]/, "", src); sub(/,.*/, "", src)
      if ($NF ~ /^[0-9]+$/ && $(NF - 1) == "=") { if (src in accepted) accepted[$NF] = 1 } else dupsrc[$1] = src }
    /<[.][.][.] fcntl resumed>.* = [0-9]+$/ { if (($1 in dupsrc) && (dupsrc[$1] in accepted)) accepted[$NF] = 1; delete dupsrc[$1] }
    END {
      if (!first || last < first) { print "(no accepted connection in the listing)"; exit }
      out = ""
      for (i = first; i <= last; i++) {
        if (index(rt, " " nm[i] " ")) { skipped[nm[i]]++; continue }
        out = out (out == "" ? "" : " ") tok[i]
      }
      print out
      s = ""
      for (k in skipped) s = s sprintf(" %s x%d", k, skipped[k])
      if (s != "") printf "  (and, left out above:%s)\n", s
    }' "$1"
}
# per_call FILE N: calls per request in a full strace -f listing of N
# requests, from the first accept4 to the last close of an accepted
# connection; epoll waits split by epoll instance (the loop's is the one of
# the first epoll_ctl after the first accept4: where the accepted
# connection is added).
per_call() {
  awk -v N="$2" '
    /^[0-9]+ +[a-z_0-9]+\(/ {
      line = $0; sub(/^[0-9]+ +/, "", line)
      name = line; sub(/\(.*/, "", name)
      arg = line; sub(/^[a-z_0-9]+\(/, "", arg); sub(/[,) ].*/, "", arg)
      n++; nm[n] = name; fd[n] = arg
      if (name == "accept4" && !first) first = n
      if (name == "epoll_ctl" && first && loopfd == "") loopfd = arg
      if (name == "close" && (arg in accepted)) { last = n; delete accepted[arg] }
    }
    /accept4[(].*\) += [0-9]+$|<[.][.][.] accept4 resumed>.* = [0-9]+$/ { fdno = $NF; accepted[fdno] = 1 }
    # a duplicate of an accepted descriptor (ConnX before 4344dbf, for the
    # TLS handshake) is the same connection: its close counts too.
    /^[0-9]+ +fcntl[(][0-9]+, F_DUPFD/ { src = $2; sub(/^fcntl[(]/, "", src); sub(/,.*/, "", src)
      if ($NF ~ /^[0-9]+$/ && $(NF - 1) == "=") { if (src in accepted) accepted[$NF] = 1 } else dupsrc[$1] = src }
    /<[.][.][.] fcntl resumed>.* = [0-9]+$/ { if (($1 in dupsrc) && (dupsrc[$1] in accepted)) accepted[$NF] = 1; delete dupsrc[$1] }
    END {
      if (!first || last < first) { print "(no accepted connection in the listing)"; exit }
      for (i = first; i <= last; i++) {
        k = nm[i]
        if (k ~ /^epoll_(p)?wait$/) k = k (fd[i] == loopfd ? " (the loop, fd " fd[i] ")" : " (fd " fd[i] ", not the loop)")
        c[k]++
      }
      for (k in c) if (c[k] / N >= 0.005) printf "%8.2f  %s\n", c[k] / N, k
    }' "$1" | sort -nr
}

# cpu_ticks PID...: the user and system clock ticks of those processes
# (fields 14 and 15 of /proc/PID/stat: all of the process's threads).
cpu_ticks() {
  local u=0 s=0 p f
  for p in "$@"; do
    read -r -a f < <(sed 's/.*) //' "/proc/$p/stat")
    u=$((u + f[11])); s=$((s + f[12]))
  done
  echo "$u $s"
}
CLK_TCK=$(getconf CLK_TCK)

if has syscalls "$MEASURE" || [ "$LISTING" = 1 ] || has cpu "$MEASURE"; then
  if [ "$NGINX_ON" = 1 ]; then start_nginx "$W/nginx.conf" "$W/nginx.pid"; ready sys nginx; fi
  if has connx "$PROXIES"; then
    GOMAXPROCS=$CONNX_PROCS "$CONNX_BIN" -config "$W/connx/connx.yaml" >"$W/connx.log" 2>&1 &
    CONNX_PID=$!
    PIDS+=("$CONNX_PID")
    ready sys connx
  fi
  for name in $PROXIES; do warm sys "$name"; done

  if [ "$LISTING" = 1 ]; then
    STRACE_OPTS=()
    for sc in $LIST_SCENARIOS; do
      for name in $PROXIES; do
        part "$name" "$sc" || continue
        for k in 3 "$LIST_N"; do
          # shellcheck disable=SC2046
          strace_attach "$R/list.$name.$sc.$k" "$R/list.$name.$sc.$k.err" $(sys_pids "$name")
          load "$(port_of sys "$name" "$sc")" "$sc" "$k" >/dev/null
          sleep 0.2
          strace_detach
        done
      done
    done
  fi

  if has syscalls "$MEASURE"; then
    STRACE_OPTS=(-c)
    for run in $(seq 1 "$RUNS"); do
      for sc in $SCENARIOS; do
        n=$(n_of sys "$sc")
        for name in $PROXIES; do
          part "$name" "$sc" || continue
          # shellcheck disable=SC2046
          strace_attach "$R/strace.$name.$sc.$run" "$R/strace.$name.$sc.$run.err" $(sys_pids "$name")
          client=$(load "$(port_of sys "$name" "$sc")" "$sc" "$n")
          strace_detach
          # "% time seconds usecs/call calls [errors] syscall" -> "syscall calls"
          awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4 }' \
            "$R/strace.$name.$sc.$run" > "$R/sys.$name.$sc.$run"
          awk -v n="$n" -v rt=" $(rt_calls "$name") " -v name="$name" -v sc="$sc" -v run="$run" -v client="$client" '
            { t += $2; if (index(rt, " " $1 " ")) r += $2; else c[$1] = $2 }
            END {
              top = ""
              k = 0
              while (k < 6) {  # the six most frequent calls outside the runtime timing set
                best = ""; for (s in c) if (best == "" || c[s] > c[best]) best = s
                if (best == "") break
                top = top sprintf(" %s=%.3f", best, c[best] / n); delete c[best]; k++
              }
              printf "syscalls run %d %-8s %-11s n=%d total/req=%.3f runtime_timing/req=%.3f |%s   [%s]\n", run, sc, name, n, t / n, r / n, top, client
            }' "$R/sys.$name.$sc.$run" >&2
        done
      done
    done
  fi

  if has cpu "$MEASURE"; then
    for run in $(seq 1 "$RUNS"); do
      for sc in $SCENARIOS; do
        n=$(($(n_of sys "$sc") * CPU_SCALE))
        for name in $PROXIES; do
          part "$name" "$sc" || continue
          # shellcheck disable=SC2046
          read -r u0 s0 < <(cpu_ticks $(sys_pids "$name"))
          client=$(load "$(port_of sys "$name" "$sc")" "$sc" "$n")
          # shellcheck disable=SC2046
          read -r u1 s1 < <(cpu_ticks $(sys_pids "$name"))
          echo "$((u1 - u0)) $((s1 - s0)) $n" > "$R/cpu.$name.$sc.$run"
          awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$n" -v hz="$CLK_TCK" -v run="$run" -v sc="$sc" -v name="$name" -v client="$client" \
            'BEGIN { printf "cpu run %d %-8s %-11s n=%d user_us/req=%.2f kernel_us/req=%.2f ticks=%d   [%s]\n", run, sc, name, n, u * 1e6 / hz / n, s * 1e6 / hz / n, u + s, client }' >&2
        done
      done
    done
  fi

  # Stop this phase's proxies before the valgrind phase.
  if has connx "$PROXIES"; then kill "$CONNX_PID" 2>/dev/null || true; wait "$CONNX_PID" 2>/dev/null || true; fi
  if [ "$NGINX_ON" = 1 ]; then kill "$(cat "$W/nginx.pid")" 2>/dev/null || true; fi
fi

# ---- instructions -----------------------------------------------------------
declare -A CG_PID CG_DUMPS
# cg_dump PROC: dump the counters into the next file of PROC's series
# (callgrind numbers its dumps .1, .2, ...); cg_total PROC prints that
# dump's total Ir.
cg_dump() {
  timeout 120 callgrind_control -d "${CG_PID[$1]}" >/dev/null
  CG_DUMPS[$1]=$((${CG_DUMPS[$1]} + 1))
}
cg_total() {
  local f="$W/out/cg-$1.out.${CG_DUMPS[$1]}"
  [ -s "$f" ] || { echo "cost.sh: no callgrind dump $f" >&2; exit 1; }
  awk '/^totals:/ { print $2 }' "$f"
}
cg_zero() { timeout 120 callgrind_control -z "${CG_PID[$1]}" >/dev/null; }
# cg_self NAME: the self Ir of every function in NAME's last dump, as
# "Ir<TAB>object<TAB>function" (callgrind's self costs are right for Go
# code; its inclusive costs are not: goroutine switches confuse its call
# stack). Handles callgrind's name compression ("fn=(12) name", "fn=(12)")
# and skips the inclusive cost line after each "calls=" line.
cg_self() {
  awk '
    function name(kind, s,   id) {
      if (s !~ /^\([0-9]+\)/) return s
      id = kind substr(s, 2, index(s, ")") - 2)
      s = substr(s, index(s, ")") + 1); sub(/^ /, "", s)
      if (s != "") names[id] = s
      return names[id]
    }
    /^ob=/ { ob = name("o", substr($0, 4)); next }
    /^cob=/ { name("o", substr($0, 5)); next }
    /^fn=/ { fn = name("f", substr($0, 4)); next }
    /^cfn=/ { name("f", substr($0, 5)); next }
    /^calls=/ { skip = 1; next }
    /^([+-]?[0-9]|\*)/ { if (skip) { skip = 0; next } self[ob "\t" fn] += $NF; next }
    END { for (k in self) printf "%d\t%s\n", self[k], k }' "$W/out/cg-$1.out.${CG_DUMPS[$1]}"
}
# breakdown N FILE...: instructions per request by part of the program,
# the mean over the files (runs) and the spread between them: for the Go
# binary ConnX code, gnet, the Go runtime (scheduler, allocator, GC,
# memmove...), syscall wrappers, other Go packages (net/http of the health
# checks, time, sync...); for nginx the nginx binary; and the shared
# libraries (libc...).
breakdown() {
  local n=$1; shift
  awk -F'\t' -v n="$n" '
    FNR == 1 { runs++ }
    {
      ob = $2; fn = $3
      if (ob ~ /\.so(\.|$)/) k = (ob ~ /libc\.so/ ? "libc" : "other libraries")
      else if (ob ~ /nginx$/) k = "nginx"
      else if (fn ~ /^github\.com\/connx\/connx\//) k = "ConnX code"
      else if (fn ~ /^github\.com\/panjf2000\//) k = "gnet"
      else if (fn ~ /^(syscall\.|golang\.org\/x\/sys\/|internal\/runtime\/syscall)/) k = "syscall wrappers"
      else if (fn ~ /^(runtime[.\/]|internal\/|sync\/atomic|0x)/ || fn !~ /[.\/]/) k = "Go runtime"
      else k = "other Go packages"
      c[k, runs] += $1; parts[k] = 1
    }
    END {
      for (k in parts) {
        s = 0; lo = -1; hi = 0
        for (r = 1; r <= runs; r++) { v = c[k, r] / n; s += v; if (lo < 0 || v < lo) lo = v; if (v > hi) hi = v }
        m = s / runs
        if (m >= 0.5) printf "%.0f\t%s %.0f (%.1f%%)\n", m, k, m, (m > 0 ? 100 * (hi - lo) / m : 0)
      }
    }' "$@" | sort -nr | awk -F'\t' '{ printf "%s%s", (NR > 1 ? ", " : ""), $2 }'
}

if has instructions "$MEASURE"; then
  VG=(valgrind --tool=callgrind --instr-atstart=no)
  if [ "$NGINX_ON" = 1 ]; then
    NGINX_PIDFILES+=("$W/cgnginx.pid")
    "${VG[@]}" --callgrind-out-file="$W/out/cg-nginx.out" nginx -c "$W/cgnginx.conf" >"$W/cgnginx.log" 2>&1 &
    CG_PID[nginx]=$!
    PIDS+=("$!")
  fi
  if has connx "$PROXIES"; then
    GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1 GOMAXPROCS=$CONNX_PROCS "${VG[@]}" --callgrind-out-file="$W/out/cg-connx.out" \
      "$CONNX_BIN" -config "$W/cgconnx/connx.yaml" >"$W/cgconnx.log" 2>&1 &
    CG_PID[connx]=$!
    PIDS+=("$!")
  fi
  CG_PROCS=""
  if [ "$NGINX_ON" = 1 ]; then CG_PROCS=nginx; fi
  if has connx "$PROXIES"; then CG_PROCS="$CG_PROCS connx"; fi
  for p in $CG_PROCS; do
    CG_DUMPS[$p]=0
    ready cg "$p"
  done
  for name in $PROXIES; do warm cg "$name"; done
  for p in $CG_PROCS; do
    timeout 120 callgrind_control -i on "${CG_PID[$p]}" >/dev/null
    load "$(port_of cg "$p" small)" small 200 >/dev/null   # once more, instrumented
  done
  # Work done with no traffic (timers, health checks, the runtime), per second.
  for name in $CG_PROCS; do cg_zero "$name"; done
  sleep "$IDLE_SECONDS"
  for name in $CG_PROCS; do
    cg_dump "$name"
    ir=$(cg_total "$name")
    echo "$ir" > "$R/idle.$name"
    awk -v ir="$ir" -v s="$IDLE_SECONDS" -v name="$name" 'BEGIN { printf "instructions idle %-6s %.0f/s with no traffic (%d s)\n", name, ir / s, s }' >&2
  done
  for run in $(seq 1 "$RUNS"); do
    for sc in $SCENARIOS; do
      n=$(n_of cg "$sc")
      for name in $PROXIES; do
        part "$name" "$sc" || continue
        p=$(proc "$name")
        cg_zero "$p"
        client=$(load "$(port_of cg "$name" "$sc")" "$sc" "$n")
        cg_dump "$p"
        ir=$(cg_total "$p")
        echo "$ir" > "$R/ins.$name.$sc.$run"
        cg_self "$p" > "$R/self.$name.$sc.$run"
        awk -v ir="$ir" -v n="$n" -v name="$name" -v sc="$sc" -v run="$run" -v client="$client" \
          'BEGIN { printf "instructions run %d %-8s %-11s n=%d Ir=%d Ir/req=%.0f   [%s]\n", run, sc, name, n, ir, ir / n, client }' >&2
      done
    done
  done
fi

# ---- report -----------------------------------------------------------------
# stats FILE...: "mean spread%" of the numbers (one per file, or computed).
stats() { awk '{ v[NR] = $1; s += $1 } END { if (NR == 0) { print "- -"; exit }
  m = s / NR; lo = v[1]; hi = v[1]; for (i = 2; i <= NR; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
  printf "%s %.1f%%\n", m, (m > 0 ? 100 * (hi - lo) / m : 0) }'; }

echo
head="Cost per request — commit $COMMIT, conns=$CONNS, backend_close=$BACKEND_CLOSE, ConnX GOMAXPROCS=$CONNX_PROCS, $RUNS run(s)"
has syscalls "$MEASURE" && head="$head; syscalls: strace -f -c, N$(for sc in $SCENARIOS; do printf ' %s=%s' "$sc" "$(n_of sys "$sc")"; done)"
has cpu "$MEASURE" && head="$head; cpu: /proc utime and stime, N$(for sc in $SCENARIOS; do printf ' %s=%s' "$sc" $(($(n_of sys "$sc") * CPU_SCALE)); done)"
has instructions "$MEASURE" && head="$head; instructions: callgrind, N$(for sc in $SCENARIOS; do printf ' %s=%s' "$sc" "$(n_of cg "$sc")"; done)"
echo "$head"
echo "(each figure: the mean over runs, then in brackets the spread between runs, (max-min)/mean)"
if has syscalls "$MEASURE" || has instructions "$MEASURE"; then
echo
echo "| scenario | proxy | syscalls/req | without epoll waits and runtime timing | epoll waits | Go runtime timing | instructions/req |"
echo "|---|---|---|---|---|---|---|"
# per_req SCENARIO NAME FILTER: the mean and spread over runs of calls per
# request; FILTER: all, steady (neither epoll waits nor runtime timing),
# epoll, runtime.
per_req() {
  local n run
  n=$(n_of sys "$1")
  for run in $(seq 1 "$RUNS"); do
    awk -v n="$n" -v f="$3" -v rt=" $(rt_calls "$2") " '
      { kind = index(rt, " " $1 " ") ? "runtime" : ($1 ~ /^epoll_(p)?wait$/ ? "epoll" : "steady") }
      f == "all" || f == kind { t += $2 }
      END { print t / n }' "$R/sys.$2.$1.$run"
  done | stats
}
for sc in $SCENARIOS; do
  for name in $PROXIES; do
    part "$name" "$sc" || continue
    cols=()
    if has syscalls "$MEASURE"; then
      for f in all steady epoll runtime; do
        read -r m sp < <(per_req "$sc" "$name" "$f")
        if [ "$f" = all ] || [ "$f" = steady ]; then cols+=("$(printf '%.2f (%s)' "$m" "$sp")"); else cols+=("$(printf '%.2f' "$m")"); fi
      done
    else
      cols+=(- - - -)
    fi
    if has instructions "$MEASURE"; then
      read -r m sp < <(for run in $(seq 1 "$RUNS"); do awk -v n="$(n_of cg "$sc")" '{ print $1 / n }' "$R/ins.$name.$sc.$run"; done | stats)
      cols+=("$(printf '%.0f (%s)' "$m" "$sp")")
    else
      cols+=(-)
    fi
    echo "| $sc | $name | ${cols[0]} | ${cols[1]} | ${cols[2]} | ${cols[3]} | ${cols[4]} |"
  done
done
fi
if has syscalls "$MEASURE"; then
  echo
  echo "System calls per request, run 1 (strace -f -c; calls of at least 0.01 per request):"
  echo
  echo "| scenario | proxy | calls per request |"
  echo "|---|---|---|"
  for sc in $SCENARIOS; do
    for name in $PROXIES; do
      part "$name" "$sc" || continue
      n=$(n_of sys "$sc")
      echo "| $sc | $name | $(sort -k2 -nr "$R/sys.$name.$sc.1" | awk -v n="$n" '$2 / n >= 0.005 { printf "%s%s %.2f", (k++ ? ", " : ""), $1, $2 / n }') |"
    done
  done
fi
if has cpu "$MEASURE"; then
  echo
  echo "CPU time per request (/proc utime and stime; mean over runs, spread in brackets) and, for ConnX, the bound: nginx's user + kernel time over ConnX's kernel time, the efficiency ratio against nginx that ConnX would reach with no user-space time at all:"
  echo
  echo "| scenario | proxy | user µs/req | kernel µs/req | kernel share | bound against nginx |"
  echo "|---|---|---|---|---|---|"
  # cpu_col SCENARIO NAME FIELD: user (1), kernel (2) or total (3) µs per request, "mean spread%"
  cpu_col() {
    local run
    for run in $(seq 1 "$RUNS"); do
      awk -v hz="$CLK_TCK" -v f="$3" '{ v = (f == 3 ? $1 + $2 : $f); print v * 1e6 / hz / $3 }' "$R/cpu.$2.$1.$run"
    done | stats
  }
  for sc in $SCENARIOS; do
    for name in $PROXIES; do
      part "$name" "$sc" || continue
      read -r um usp < <(cpu_col "$sc" "$name" 1)
      read -r km ksp < <(cpu_col "$sc" "$name" 2)
      bound=-
      if [ "$name" = connx ] && has nginx "$PROXIES"; then
        read -r nt _ < <(cpu_col "$sc" nginx 3)
        bound=$(awk -v a="$nt" -v b="$km" 'BEGIN { printf "%.2f×", (b > 0 ? a / b : 0) }')
      fi
      awk -v um="$um" -v usp="$usp" -v km="$km" -v ksp="$ksp" -v b="$bound" -v sc="$sc" -v name="$name" \
        'BEGIN { printf "| %s | %s | %.2f (%s) | %.2f (%s) | %.0f%% | %s |\n", sc, name, um, usp, km, ksp, 100 * km / (um + km), b }'
    done
  done
fi
if has instructions "$MEASURE"; then
  echo
  echo "Instructions per request by part of the program (callgrind self cost; mean over runs, spread in brackets):"
  echo
  echo "| scenario | proxy | by part |"
  echo "|---|---|---|"
  for sc in $SCENARIOS; do
    for name in $PROXIES; do
      part "$name" "$sc" || continue
      files=()
      for run in $(seq 1 "$RUNS"); do files+=("$R/self.$name.$sc.$run"); done
      echo "| $sc | $name | $(breakdown "$(n_of cg "$sc")" "${files[@]}") |"
    done
  done
  echo
  echo "Top functions by self instructions per request, run 1:"
  for sc in $SCENARIOS; do
    for name in $PROXIES; do
      part "$name" "$sc" || continue
      n=$(n_of cg "$sc")
      echo "== $sc $name"
      # (awk, not head: with pipefail, head would end sort with SIGPIPE)
      sort -nr "$R/self.$name.$sc.1" \
        | awk -F'\t' -v n="$n" -v k="$TOP_FUNCS" 'NR <= k { o = $2; sub(/.*\//, "", o); printf "%8.0f  %s [%s]\n", $1 / n, $3, o }'
    done
  done
  echo
  for name in $CG_PROCS; do
    awk -v ir="$(cat "$R/idle.$name")" -v s="$IDLE_SECONDS" -v name="$name" \
      'BEGIN { printf "Idle under callgrind, %s: %.0f instructions per second with no traffic (timers, health checks, runtime)\n", name, ir / s }'
  done
fi

if [ "$LISTING" = 1 ]; then
  echo
  echo "System calls in order, from accept to close, for 3 requests on one keep-alive connection (small, tls) and for 3 connections (close, tlsclose), after warm-up (strace -f; with TLS the first connection of each costclient run makes a full handshake, the next ones resume):"
  for sc in $LIST_SCENARIOS; do
    for name in $PROXIES; do
      part "$name" "$sc" || continue
      echo "== $sc $name"
      condense "$R/list.$name.$sc.3" "$name"
    done
  done
  echo
  echo "Per request over $LIST_N requests (strace -f, the same window), epoll waits by epoll instance:"
  for sc in $LIST_SCENARIOS; do
    for name in $PROXIES; do
      part "$name" "$sc" || continue
      echo "== $sc $name"
      per_call "$R/list.$name.$sc.$LIST_N" "$LIST_N"
    done
  done
fi
