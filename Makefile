# ytcaption — build, test and run targets. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin

# Pinned tool versions. MinIO builds from the Go module proxy (about 3 minutes
# cold) and is cached outside the tree so fresh clones reuse it.
MINIO_VERSION                 := v0.0.0-20260212201848-7aac2a2c5b7c
BUF_VERSION                   := v1.75.0
PROTOC_GEN_GO_VERSION         := v1.36.12
PROTOC_GEN_CONNECT_GO_VERSION := v1.21.1
STATICCHECK_VERSION           := v0.8.2
HCLFMT_VERSION                := v2.24.0
# Deno, the JavaScript runtime a current yt-dlp needs for YouTube, from the npm
# package "deno" (it ships the binary), cached like MinIO.
DENO_VERSION                  := 2.9.6

CACHE_DIR := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ytcaption
export YTCAPTION_MINIO_BIN ?= $(CACHE_DIR)/minio-$(MINIO_VERSION)/minio
export YTCAPTION_DENO_BIN ?= $(CACHE_DIR)/deno-$(DENO_VERSION)/node_modules/deno/deno

VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BINARIES := ytcaption-core ytcaption-edge ytcaption-gpu-node ytcaption ytcaption-dev

.PHONY: help build screenshots-admin test chaos soak soak-short eval bench bench-dispatch bench-fair bench-pipeline bench-edge bench-create bench-slots check fmt vet lint hclfmt generate generate-check deps deps-run run demo clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build the three services, the single-box ytcaption-dev and the ytcaption client into ./bin
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./core/cmd/ytcaption-core ./edge/cmd/ytcaption-edge ./gpu-node/cmd/ytcaption-gpu-node ./edge/cmd/ytcaption ./devstack/cmd/ytcaption-dev

deps: ## install what the tests need and a fresh machine lacks: apt packages, npm packages (Deno among them), the pinned MinIO build
	@MINIO_VERSION=$(MINIO_VERSION) YTCAPTION_MINIO_BIN=$(YTCAPTION_MINIO_BIN) DENO_VERSION=$(DENO_VERSION) \
		YTCAPTION_DENO_BIN=$(YTCAPTION_DENO_BIN) scripts/install-deps.sh test

deps-run: ## install only what run and demo use: ffmpeg, pocketsphinx, its en-us model and LibriVox clips
	@scripts/install-deps.sh run

test: deps ## run every test against the real Postgres, MinIO, ffmpeg, yt-dlp and pocketsphinx
	$(GO) test -count=1 -timeout 25m ./...

bench: bench-dispatch bench-fair bench-pipeline bench-edge bench-create bench-slots ## every benchmark (prints percentiles and ratios)

bench-edge: deps ## reads and creations through the edge at 1000 req/s and at saturation, beside a bare Fiber handler
	$(GO) test -run '^$$' -bench 'BenchmarkEdge' -benchtime=1x ./devstack/

bench-slots: ## gpu-node throughput with --slots 8 ÷ --slots 1 on a stand-in batching OpenAI-compatible server (8 side by side)
	$(GO) test -run '^$$' -bench 'SlotsWireFormat' -benchtime=1x ./gpu-node/

bench-dispatch: deps ## ready→acquired p50/p99 beside 1 s polling, and claim+complete jobs/s over Connect ÷ the store ÷ raw SQL, on PostgreSQL and SQLite (YTCAPTION_BENCH_PPROF=FILE: CPU profile)
	$(GO) test -run '^$$' -bench 'Dispatch' -benchtime=1x ./core/

bench-create: deps ## the store's creations, 64 in flight, ÷ the same rows in plain SQL, on PostgreSQL and SQLite
	$(GO) test -run '^$$' -bench 'BenchmarkCreations' -benchtime=1x ./core/internal/store/

bench-fair: deps ## single jobs' wait p50/p99 beside another user's 500-job batch ÷ alone, and claim p50/p99 at 10k queued, fair vs first in, first out
	$(GO) test -run '^$$' -bench 'FairClaim' -benchtime=1x ./core/internal/store/

bench-pipeline: deps ## wall time of a LibriVox batch through the whole stack ÷ the engine's own time
	$(GO) test -run '^$$' -bench 'PipelineOverhead' -benchtime=1x ./devstack/

eval: deps ## WER and real-time factor of the engine on the LibriVox clips, cross-checked with NIST sclite (EVAL_ARGS="--dir D --engine E" for others)
	$(GO) run ./gpu-node/cmd/ytcaption-gpu-node eval --sclite $(EVAL_ARGS)

chaos: deps ## chaos suite: 1000 jobs through 3 rounds of 16 faults, Postgres away 60 s a round (make test runs a 40-job, 1-round version)
	YTCAPTION_CHAOS_JOBS=1000 YTCAPTION_CHAOS_ROUNDS=3 YTCAPTION_CHAOS_OUTAGE_SECONDS=60 $(GO) test -count=1 -timeout 45m -run TestChaos -v ./core/chaos

# The soak writes samples.csv, soak.png and summary.txt to SOAK_OUT.
SOAK_OUT ?= $(BIN)/soak
soak: deps ## an hour of load at half the measured capacity through the edge; fails if memory, goroutines or open files grow (docs/soak.md)
	YTCAPTION_SOAK_DURATION=1h YTCAPTION_SOAK_OUT=$(SOAK_OUT) $(GO) test -count=1 -timeout 90m -run TestSoak -v ./core/soak

soak-short: deps ## the soak for 10 minutes: run it before every resolve
	YTCAPTION_SOAK_DURATION=10m YTCAPTION_SOAK_OUT=$(SOAK_OUT) $(GO) test -count=1 -timeout 30m -run TestSoak -v ./core/soak

check: fmt vet lint hclfmt generate-check ## format, vet, lint, HCL format and generated-code checks (what CI runs before tests)

fmt:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' | grep -v '^proto/gen/')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

hclfmt: $(BIN)/hclfmt
	@$(BIN)/hclfmt -check -require-no-change $$(find nomad consul terraform -name '*.hcl' -o -name '*.tf') >/dev/null \
		|| { echo "HCL needs formatting (or has errors): run bin/hclfmt -w on the files named above"; exit 1; }

$(BIN)/hclfmt:
	GOBIN=$(BIN) $(GO) install github.com/hashicorp/hcl/v2/cmd/hclfmt@$(HCLFMT_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(BIN)/buf:
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-connect-go:
	GOBIN=$(BIN) $(GO) install connectrpc.com/connect/cmd/protoc-gen-connect-go@$(PROTOC_GEN_CONNECT_GO_VERSION)

generate: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-connect-go ## regenerate proto/gen from proto/ytcaption
	cd proto && $(BIN)/buf lint && rm -rf gen && $(BIN)/buf generate

generate-check: generate ## fail when the committed generated code is stale
	@git diff --exit-code -- proto/gen >/dev/null && [ -z "$$(git ls-files --others --exclude-standard proto/gen)" ] \
		|| { echo "proto/gen is stale: run 'make generate' and commit the result"; git status --short proto/gen; exit 1; }

screenshots-admin: ## the admin dashboard's pages at 1280×800 and 390×844 into docs/screenshots/admin-*.png (the browser test takes them)
	YTCAPTION_SCREENSHOTS=$(CURDIR)/docs/screenshots go test -count=1 -run TestEveryPageFitsAPhoneAndWorksByKeyboard ./core/internal/dashboard/

run: deps-run ## start core + edge + one gpu-node (sphinx) on :8000, in the foreground (SQLite and files in ~/.local/share/ytcaption)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./devstack/cmd/ytcaption-dev
	$(BIN)/ytcaption-dev

demo: deps-run ## transcribe a LibriVox clip through the public API and print the SRT
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./devstack/cmd/ytcaption-dev
	scripts/demo.sh

clean:
	rm -rf $(BIN) .data
