#!/usr/bin/env bash
# Checks the packaging (issue 20) as CI does (.ci/run; make packaging-check):
#   1. make release: a binary per PLATFORMS entry, static and stamped, and
#      SHA256SUMS; the linux/amd64 one runs -version and -check.
#   2. make image: podman image inspect (entrypoint, user, ports, labels);
#      the binary and config copied out (podman create + podman cp) run
#      -version and -check. Containers are not started: this machine's
#      sandbox refuses the runtime's setrlimit.
#   3. compose.yaml: docker-compose config (schema validation); the image it
#      names is the one make image tags; its mounted config passes -check.
#   4. make install DESTDIR=... PREFIX=/usr: binary, unit, man page.
# Needs podman (or docker with a daemon), docker-compose, sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."

PLATFORMS="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"
VERSION="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
COMMIT="$(git rev-parse --short=12 HEAD)"
DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
STAMP=(VERSION="$VERSION" COMMIT="$COMMIT" DATE="$DATE")
IMAGE=localhost/connx
tmp="$(mktemp -d)"
cid=""
cleanup() {
  [ -z "$cid" ] || podman rm -f "$cid" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
t0=$SECONDS
step() { echo "-- $* (at ${SECONDS}s)"; }
want_version="connx $VERSION (commit $COMMIT, built $DATE, "

step "make release (PLATFORMS: $PLATFORMS)"
make -s release PLATFORMS="$PLATFORMS" "${STAMP[@]}"
n=0
for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/} f=dist/connx-${p%/*}-${p#*/}
  [ -x "$f" ] || fail "$f missing"
  info="$(go version -m "$f")"
  for want in "GOOS=$os" "GOARCH=$arch" "CGO_ENABLED=0" "-trimpath=true"; do
    grep -qF -- "$want" <<<"$info" || fail "$f: go version -m lacks $want"
  done
  # -trimpath keeps -ldflags out of the build info: look for the stamps.
  for want in "$VERSION" "$COMMIT" "$DATE"; do
    grep -qaF -- "$want" "$f" || fail "$f: not stamped with $want"
  done
  grep -q " connx-$os-$arch\$" dist/SHA256SUMS || fail "SHA256SUMS lacks connx-$os-$arch"
  n=$((n + 1))
done
[ "$(wc -l <dist/SHA256SUMS)" -eq "$n" ] || fail "SHA256SUMS has $(wc -l <dist/SHA256SUMS) lines, want $n"
(cd dist && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match"
if [[ " $PLATFORMS " == *" linux/amd64 "* ]]; then
  v="$(dist/connx-linux-amd64 -version)"
  [[ "$v" == "$want_version"*"linux/amd64)" ]] || fail "connx-linux-amd64 -version: $v; want $want_version..."
  echo "dist/connx-linux-amd64 -version: $v"
fi

step "make image"
make -s image "${STAMP[@]}" IMAGE=$IMAGE CONTAINER=podman >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "make image"; }
img="$IMAGE:$VERSION"
inspect() { podman image inspect --format "$1" "$img"; }
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/connx"]' ] || fail "entrypoint $(inspect '{{json .Config.Entrypoint}}')"
[ "$(inspect '{{json .Config.Cmd}}')" = '["-config","/etc/connx/config.yaml"]' ] || fail "cmd $(inspect '{{json .Config.Cmd}}')"
[ "$(inspect '{{.Config.User}}')" = "65532:65532" ] || fail "user $(inspect '{{.Config.User}}')"
ports="$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')"
[ "$ports" = "8080/tcp 9090/tcp " ] || fail "exposed ports: $ports"
label() { inspect "{{index .Config.Labels \"org.opencontainers.image.$1\"}}"; }
[ "$(label version)" = "$VERSION" ] || fail "label version $(label version)"
[ "$(label revision)" = "$COMMIT" ] || fail "label revision $(label revision)"
[ "$(label created)" = "$DATE" ] || fail "label created $(label created)"
[ "$(label licenses)" = "MIT" ] || fail "label licenses $(label licenses)"
[[ "$(label source)" == https://* ]] || fail "label source $(label source)"
[ "$(podman image inspect --format '{{.Id}}' $IMAGE:latest)" = "$(inspect '{{.Id}}')" ] || fail "$IMAGE:latest is not $img"
echo "image $img: entrypoint, cmd, user 65532:65532, ports $ports, labels ok; $(inspect '{{.Size}}') bytes"

step "the image's binary and config, copied out"
cid="$(podman create "$img")"
podman cp "$cid:/usr/local/bin/connx" "$tmp/connx"
podman cp "$cid:/usr/local/bin/connx-demo-backend" "$tmp/connx-demo-backend"
podman cp "$cid:/etc/connx/config.yaml" "$tmp/config.yaml"
v="$("$tmp/connx" -version)"
[[ "$v" == "$want_version"*"linux/amd64)" ]] || fail "image connx -version: $v"
echo "image connx -version: $v"
for f in "$tmp/config.yaml" configs/config.yaml configs/examples/*.yaml packaging/container/config.yaml; do
  "$tmp/connx" -check -config "$f" | sed -n 1p
done
cmp -s "$tmp/config.yaml" packaging/container/config.yaml || fail "the image's config is not packaging/container/config.yaml"
[ -x "$tmp/connx-demo-backend" ] || fail "no connx-demo-backend in the image"

step "compose.yaml"
docker-compose -f compose.yaml config -q || fail "docker-compose config"
grep -Eq "^\s+image: $IMAGE:latest$" compose.yaml || fail "compose.yaml does not use $IMAGE:latest"
dir="$(sed -nE 's#^\s+- \./([^:]+):/etc/connx:ro$#\1#p' compose.yaml)"
[ -n "$dir" ] || fail "compose.yaml mounts no directory at /etc/connx"
"$tmp/connx" -check -config "$dir/config.yaml"

step "make install DESTDIR=... PREFIX=/usr"
make -s install DESTDIR="$tmp/root" PREFIX=/usr "${STAMP[@]}" >/dev/null
"$tmp/root/usr/bin/connx" -version | grep -qF "$want_version" || fail "installed connx -version"
grep -qx "ExecStart=/usr/bin/connx -config /etc/connx/config.yaml" "$tmp/root/usr/lib/systemd/system/connx.service" || fail "installed unit's ExecStart"
head -3 "$tmp/root/usr/share/man/man1/connx.1" | grep -q '^\.TH CONNX 1 ' || fail "installed man page"
[ -f "$tmp/root/usr/share/connx/config.yaml" ] || fail "installed example config"
(cd "$tmp/root" && find . -type f | sort)

echo "packaging checks passed in $((SECONDS - t0))s"
