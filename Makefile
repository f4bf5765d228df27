# helios-wasm — see README.md. Every target installs what it needs.
SHELL := /bin/bash
GO ?= go
BUILD := build
GO_EXAMPLES := uppercase lowercase filter split count flaky slow
GO_PLUGINS := $(GO_EXAMPLES:%=$(BUILD)/plugins/go/%.wasm)
SDK_SRC := $(wildcard abi/*.go plugins/sdk/go/*.go)
export HELIOS_TEST_CACHE ?= $(CURDIR)/$(BUILD)/cache/test
export HELIOS_CACHE_DIR ?= $(CURDIR)/$(BUILD)/cache/wazero

.PHONY: all build plugins demo test test-race test-all bench check deps clean

all: build plugins

build: deps-go
	$(GO) build -trimpath -o $(BUILD)/helios-wasm ./cmd/helios-wasm

plugins: $(GO_PLUGINS)

$(BUILD)/plugins/go/%.wasm: plugins/examples/go/%/*.go $(SDK_SRC)
	@mkdir -p $(dir $@)
	cd plugins/examples/go/$* && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags="-s -w" -o $(CURDIR)/$@ .

# deps installs the toolchains the tests need when they are missing
# (idempotent, quick when everything is present).
deps: deps-go
	@missing=""; \
	command -v wat2wasm >/dev/null || missing="$$missing wabt"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; fi

deps-go:
	@$(GO) mod download

demo: build plugins
	@bash scripts/demo.sh

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./abi/... ./storage/... ./runtime/... ./internal/admin/...
	$(GO) test -count=1 ./host/... ./plugins/... ./internal/testutil/... ./internal/wasmbin/... ./cmd/... ./deploy/...
	$(GO) test -count=1 -run 'TestHotSwap50UnderLoad' ./runtime/

bench: deps build plugins
	@bash scripts/bench.sh

check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@cp go.mod /tmp/helios-go.mod.bak && cp go.sum /tmp/helios-go.sum.bak
	@$(GO) mod tidy && git diff --exit-code go.mod go.sum || { echo "go mod tidy changed go.mod/go.sum"; exit 1; }

clean:
	rm -rf $(BUILD)
