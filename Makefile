# ConnX — common tasks. `make help` lists them.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 2m
SOAK    ?= 1h

.PHONY: help build demo test check bench fuzz reliability soak peers cost clean

help: ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/connx
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/connx ./cmd/connx

demo: ## run the demo (127.0.0.1:8080, three in-process backends)
	$(GO) run ./cmd/connx -demo

test: ## run every test with the race detector (the README's test command)
	$(GO) test -race ./...

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

clean:
	rm -rf bin
