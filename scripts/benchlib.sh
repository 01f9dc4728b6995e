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
