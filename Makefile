# mediagw — run `make help` for the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

BIN := $(abspath bin)
BUF_VERSION := v1.75.0
BUF := $(BIN)/buf
BUF_STAMP := $(BIN)/.buf-$(BUF_VERSION)
GRPCURL_VERSION := v1.9.4
GRPCURL_STAMP := $(BIN)/.grpcurl-$(GRPCURL_VERSION)
GO_TEST_FLAGS ?=
BENCH ?= .
BENCH_FLAGS ?=
ARGS ?=
# buf breaking compares proto/ with this input (main's committed proto by default).
BREAKING_AGAINST ?= $(shell git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)\#branch=main

export PATH := $(BIN):$(PATH)

.PHONY: help
help: ## Describe the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

.PHONY: run
run: ## Run mediagw on the built-in X emulator (gRPC 127.0.0.1:9090, REST 127.0.0.1:8080)
	go run ./cmd/mediagw --emulator $(ARGS)

.PHONY: run-xfake
run-xfake: ## Run the X emulator alone on 127.0.0.1:8090 (cmd/xfake)
	go run ./cmd/xfake $(ARGS)

.PHONY: test
test: ## Run every test with the race detector
	go test -race -count=1 $(GO_TEST_FLAGS) ./...

.PHONY: test-redis
test-redis: ## Run every test against one shared Redis, started here (installs redis-server when missing) and stopped after
	@addr="$$(bash .ci/redis start)"; trap 'bash .ci/redis stop' EXIT; \
		echo "MEDIAGW_TEST_REDIS=$$addr"; \
		MEDIAGW_TEST_REDIS="$$addr" go test -race -count=1 $(GO_TEST_FLAGS) ./...

.PHONY: run-replicas
run-replicas: ## Redis, one emulator and three mediagw replicas on loopback (REST 8081-8083, gRPC 9081-9083, admin 9181-9183); Ctrl-C stops them
	bash scripts/run-replicas.sh

.PHONY: shorttest
shorttest: ## Run the fast tests only (-short)
	go test -short -count=1 $(GO_TEST_FLAGS) ./...

.PHONY: conformance
conformance: ## Real X clients (tweepy, twitter-api-v2) upload through cmd/xfake; installs them when missing
	bash upstream/xfake/conformance/run.sh

.PHONY: bench
bench: ## End-to-end benchmark: mediagw vs the bare relay, the loopback hop and the sequential baseline, against a minimal X, then the ledger rows (BENCH_FLAGS=…)
	go run ./cmd/bench $(BENCH_FLAGS)
	$(MAKE) --no-print-directory bench-ledger

# The ledger rows: every upload carries a fresh idempotency key, through a
# mediagw with the default bbolt file (no suffix) and with Redis (+redis, a
# redis-server started for the run, fsyncing its append-only file on every
# write as README recommends), next to mediagw with the ledger off (+none,
# whose uploads carry no key) and the sequential baseline.
LEDGER_SCENARIOS ?= lat0/1x64MiB,lat50ms/1x256MiB,lat0/10x20MiB

.PHONY: bench-ledger
bench-ledger: ## The ledger's cost: keyed uploads with the ledger off, bbolt and Redis (started and stopped here), LEDGER_SCENARIOS=…
	@addr="$$(REDIS_APPENDFSYNC=always bash .ci/redis start .redis-bench)"; trap 'bash .ci/redis stop .redis-bench' EXIT; \
		go run ./cmd/bench -keyed -modes baseline,grpc,rest -scenarios '$(LEDGER_SCENARIOS)' \
			-variants "none=--ledger off;redis=--ledger redis://$$addr/0?prefix=bench:" $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: ## The end-to-end benchmark in quick mode (under two minutes)
	go run ./cmd/bench -quick $(BENCH_FLAGS)

.PHONY: bench-adversarial
bench-adversarial: ## The benchmark's adversarial rows: slow callers, 4 MiB chunks, faults (about 10 minutes)
	go run ./cmd/bench -adversarial -run '^adv/' $(BENCH_FLAGS)

.PHONY: microbench
microbench: ## Go micro-benchmarks: segment pipeline, planner (BENCH=regexp selects)
	go test -run '^$$' -bench '$(BENCH)' -benchmem ./...

.PHONY: e2e-otel
e2e-otel: ## Trace one upload into a real OpenTelemetry Collector (builds it once, a few minutes)
	bash .ci/e2e-otel

.PHONY: generate
generate: $(BUF_STAMP) ## Regenerate gen/ from proto/
	rm -rf gen/mediagw gen/openapi/mediagw
	$(BUF) generate

.PHONY: check-generate
check-generate: generate ## Fail when gen/ differs from what proto/ generates
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		git status --porcelain -- gen; git diff --stat -- gen; \
		echo "gen/ is out of date: run make generate and commit the result" >&2; exit 1; fi

.PHONY: lint
lint: $(BUF_STAMP) check-imports ## Run go vet, gofmt, go mod tidy -diff, buf lint, buf format and buf breaking
	go vet ./...
	go mod tidy -diff
	@out="$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))"; \
		if [ -n "$$out" ]; then echo "gofmt needed:" >&2; echo "$$out" >&2; exit 1; fi
	$(BUF) lint
	$(BUF) format -d --exit-code
	$(BUF) breaking --against '$(BREAKING_AGAINST)'

.PHONY: check-imports
check-imports: ## Enforce the one-way import rule (docs/architecture.md)
	go run ./cmd/importrule

.PHONY: tools
tools: $(BUF_STAMP) ## Install the pinned tools into ./bin

.PHONY: grpcurl
grpcurl: $(GRPCURL_STAMP) ## Install grpcurl into ./bin (for the README's gRPC examples)

$(GRPCURL_STAMP):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@touch $@

$(BUF_STAMP):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@

.PHONY: clean
clean: ## Remove ./bin and test caches
	rm -rf $(BIN)
	go clean -testcache

# Version stamping: a semantic-version tag (vMAJOR.MINOR.PATCH) when HEAD
# has one, else the nearest tag with the commits since, else "devel".
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo +dirty)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO := github.com/mediagw/mediagw/service/buildinfo
LDFLAGS := -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).Date=$(DATE)
DIST := $(abspath dist)
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/arm64
IMAGE ?= mediagw:$(VERSION)
IMAGE_ARCH ?= $(shell go env GOARCH)
CONTAINER ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null || echo podman)

.PHONY: build
build: ## Build mediagw, mediagwctl and xfake into ./bin, stamped with VERSION, COMMIT and DATE
	@mkdir -p $(BIN)
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/mediagw ./cmd/mediagwctl ./cmd/xfake

.PHONY: release
release: ## Static binaries (CGO off) of mediagw and mediagwctl for RELEASE_PLATFORMS into dist/, with dist/SHA256SUMS
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@for p in $(RELEASE_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
		for c in mediagw mediagwctl; do \
			echo "dist/$$c-$$os-$$arch"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(DIST)/$$c-$$os-$$arch ./cmd/$$c; \
		done; done
	cd $(DIST) && sha256sum mediagw-* mediagwctl-* > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

.PHONY: image
image: ## Container image IMAGE (mediagw:VERSION) from deploy/image/Containerfile: the static binary, CA bundle, non-root user, no shell
	@rm -rf $(DIST)/image && mkdir -p $(DIST)/image/state $(DIST)/image/rootfs/tmp $(DIST)/image/rootfs/var/lib
	chmod 1777 $(DIST)/image/rootfs/tmp && chmod 0700 $(DIST)/image/state
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) go build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(DIST)/image/mediagw ./cmd/mediagw
	cp /etc/ssl/certs/ca-certificates.crt $(DIST)/image/ca-certificates.crt
	cp deploy/image/passwd deploy/image/group $(DIST)/image/
	$(CONTAINER) build --platform linux/$(IMAGE_ARCH) -f deploy/image/Containerfile -t $(IMAGE) \
		--label org.opencontainers.image.version=$(VERSION) \
		--label org.opencontainers.image.revision=$(COMMIT) \
		--label org.opencontainers.image.created=$(DATE) $(DIST)/image
	@$(CONTAINER) image inspect --format 'image $(IMAGE): {{.Size}} bytes' $(IMAGE)
