# ConnX — common tasks. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
# Static binaries, no build paths: what make release and make image ship.
STATIC  := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w"
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
# podman if installed, else docker.
CONTAINER ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null || echo podman)
IMAGE   ?= localhost/connx
SOURCE  ?= https://github.com/connx/connx
PREFIX  ?= /usr/local
DESTDIR ?=
MD2MAN  := $(GO) run github.com/cpuguy83/go-md2man/v2@v2.0.7
FUZZTIME ?= 2m
SOAK    ?= 1h

.PHONY: help build demo test allocs check bench fuzz reliability soak peers cost release image man install packaging-check clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/connx
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/connx ./cmd/connx

demo: ## run the demo (127.0.0.1:8080, three in-process backends)
	$(GO) run ./cmd/connx -demo

test: ## run every test with the race detector (the README's test command)
	$(GO) test -race ./...

allocs: ## the allocation tests without -race (under -race sync.Pool drops buffers, so some skip; CI runs both)
	$(GO) test -count=1 -run 'Allocs$$' ./...

check: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench: ## Go benchmarks of the hot paths, with allocations
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

fuzz: ## run each fuzzer for FUZZTIME (default 2m)
	$(GO) test -run '^$$' -fuzz '^FuzzRequestDifferential$$' -fuzztime $(FUZZTIME) -parallel 1 ./internal/http1/
	$(GO) test -run '^$$' -fuzz '^FuzzResponse$$' -fuzztime $(FUZZTIME) -parallel 1 ./internal/http1/
	$(GO) test -run '^$$' -fuzz '^FuzzChunked$$' -fuzztime $(FUZZTIME) -parallel 1 ./internal/http1/
	$(GO) test -run '^$$' -fuzz '^FuzzIPv6$$' -fuzztime $(FUZZTIME) -parallel 1 ./internal/http1/

reliability: ## the hostile-world suite against the real binary, and 30s of differential fuzzing (docs/reliability.md)
	$(GO) test -tags reliability -count=1 -v -timeout 15m ./test/reliability/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestDifferential$$' -fuzztime 30s ./internal/http1/

soak: ## mixed traffic for SOAK (default 1h), RSS and goroutines flat within 10%
	SOAK=$(SOAK) $(GO) test -tags reliability -count=1 -v -timeout 0 -run '^TestSoak$$' ./test/reliability/

peers: ## ConnX vs nginx vs HAProxy, one core each (installs nginx, haproxy, wrk)
	../shared/bench/peers.sh

cost: ## system calls and instructions per request, ConnX vs nginx (strace, callgrind; docs/benchmarks.md)
	scripts/cost.sh

release: ## static binaries for PLATFORMS in dist/ (connx-OS-ARCH), version-stamped, and dist/SHA256SUMS
	rm -rf dist && mkdir -p dist
	set -e; for p in $(PLATFORMS); do \
	  echo "  $$p"; GOOS=$${p%/*} GOARCH=$${p#*/} $(STATIC) -o dist/connx-$${p%/*}-$${p#*/} ./cmd/connx; \
	done
	cd dist && { command -v sha256sum >/dev/null && sha256sum connx-* || shasum -a 256 connx-*; } > SHA256SUMS
	@cat dist/SHA256SUMS

image: ## container image IMAGE:VERSION and IMAGE:latest (Containerfile; binaries built here, nothing downloaded)
	GOOS=linux $(STATIC) -o bin/image/connx ./cmd/connx
	GOOS=linux $(STATIC) -o bin/image/connx-demo-backend ./cmd/connx-demo-backend
	$(CONTAINER) build -f Containerfile \
	  --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) --build-arg SOURCE=$(SOURCE) \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

man: bin/connx.1 ## the man page, bin/connx.1, from docs/connx.1.md

bin/connx.1: docs/connx.1.md
	@mkdir -p bin
	$(MD2MAN) -in docs/connx.1.md -out $@

install: man ## the static binary, the systemd unit and the man page under DESTDIR/PREFIX (default /usr/local)
	$(STATIC) -o bin/connx-static ./cmd/connx
	install -D -m 755 bin/connx-static $(DESTDIR)$(PREFIX)/bin/connx
	install -D -m 644 bin/connx.1 $(DESTDIR)$(PREFIX)/share/man/man1/connx.1
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's#/usr/local/bin/connx#$(PREFIX)/bin/connx#g' packaging/systemd/connx.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/connx.service
	chmod 644 $(DESTDIR)$(PREFIX)/lib/systemd/system/connx.service
	install -D -m 644 configs/config.yaml $(DESTDIR)$(PREFIX)/share/connx/config.yaml
	@echo "installed under $(DESTDIR)$(PREFIX); the unit reads /etc/connx/config.yaml (example: $(PREFIX)/share/connx/config.yaml); docs/install.md"

packaging-check: ## what CI checks of the packaging: make release, make image (inspected), compose, the unit
	scripts/check-packaging.sh

clean:
	rm -rf bin dist
