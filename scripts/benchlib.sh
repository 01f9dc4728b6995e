# shellcheck shell=bash
# benchlib.sh — pieces the TLS benchmark scripts share; source it.
# They mirror what ../shared/bench/peers.sh sets up, so figures compare.

# bench_cert DIR: one self-signed ECDSA P-256 certificate for 127.0.0.1 in
# DIR/cert.pem and DIR/key.pem, and both in DIR/combined.pem (HAProxy).
bench_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
  cat "$1/cert.pem" "$1/key.pem" > "$1/combined.pem"
  chmod 644 "$1"/*.pem
}

# bench_connx_yaml PORT TLSPORT CERTDIR B1 B2: ConnX's config as peers.sh
# writes it (seed format, round-robin over two backends), with a TLS port
# serving CERTDIR's certificate.
bench_connx_yaml() {
  cat <<EOC
server:
  port: $1
  host: "127.0.0.1"
  shutdownTimeout: 5
  tls:
    port: $2
    certificates:
      - certFile: "$3/cert.pem"
        keyFile: "$3/key.pem"
backends:
  - url: "http://127.0.0.1:$4"
    weight: 1
  - url: "http://127.0.0.1:$5"
    weight: 1
loadBalancing:
  algorithm: "round-robin"
healthCheck:
  interval: 5
  timeout: 2
EOC
}

# bench_cleanup is the EXIT trap of a script that keeps its work
# directory in W and the processes it started in the array PIDS (and
# nginx's in W/*.pid): it stops them all and removes W, unless KEEP is
# set.
bench_cleanup() {
  local p f
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$W"/*.pid; do
    if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
  done
  sleep 0.3
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
