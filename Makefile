# tiernet — the two commands of the README are `make demo` and `make test`.
# Every target that needs tools runs scripts/setup first (idempotent, quick
# when everything is already there).

CARGO ?= cargo

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# One banner per step, so a failing step is easy to find in CI logs.
banner = @printf '\n==> %s\n' "$(1)"

.PHONY: help setup test fmt fmt-check clippy wasm demo bench-browser bench-wasm fuzz

help:
	@echo "make demo    set up, then run a local devnet and the web demo (prints the URL)"
	@echo "make test    set up, then fmt check, clippy, tests, bindings (Python tests), docs, browser tests (Chromium)"
	@echo "make setup   install what the other targets need (scripts/setup)"
	@echo "make wasm    build the npm package @tiernet/light-client (bindings-wasm/pkg)"
	@echo "make bench-browser  wasm size and cold start to the first verified head in Chromium"
	@echo "make bench-wasm     header and state-proof verification timed in Chromium (wasm32)"
	@echo "make fuzz    run every cargo-fuzz target for FUZZ_SECONDS (default 600) each; prints executions and crashes"
	@echo "make fmt     format the workspace;  make clippy  lint it"

setup:
	$(call banner,setup)
	scripts/setup

# Seconds per fuzz target in `make test` (17 targets: about 1.5 minutes plus the build).
FUZZ_TEST_SECONDS ?= 4

# Incremental caches only help edit-compile loops; in a one-shot run they
# double the target directory (CI's disk has run full before).
test: export CARGO_INCREMENTAL = 0
# Steps run in this order and stop at the first failure.
test: setup
	$(call banner,cargo fmt --check)
	$(CARGO) fmt --all -- --check
	$(call banner,cargo clippy)
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(call banner,cargo clippy: tiernet-node as operators build it (no feature testing))
	$(CARGO) clippy -p tiernet-node --lib --bins -- -D warnings
	$(call banner,release-style tiernet-node has no test switches (scripts/check-release-build))
	scripts/check-release-build
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		printf '\n==> %s\n' "cargo nextest run"; \
		$(CARGO) nextest run --workspace; \
		printf '\n==> %s\n' "cargo test --doc"; \
		$(CARGO) test --workspace --doc; \
	else \
		printf '\n==> %s\n' "cargo test (cargo-nextest not installed)"; \
		$(CARGO) test --workspace; \
	fi
	$(call banner,fuzz targets: $(FUZZ_TEST_SECONDS) s each (nightly cargo-fuzz; scripts/fuzz))
	FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) scripts/fuzz
	$(call banner,bindings: build tiernet-ffi, generate Swift/Kotlin/Python, run the Python tests)
	scripts/bindings
	$(CARGO) build -p tiernet-node --features testing
	python3 -m pytest -q -p no:cacheprovider bindings-uniffi/tests
	$(call banner,cargo doc (warnings are errors))
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(call banner,browser package @tiernet/light-client (release wasm32, wasm-opt))
	scripts/wasm-pkg
	$(call banner,wasm-bindgen-test in headless Chromium (core::verify and the light client on wasm32))
	scripts/wasm-test
	$(call banner,web demo end to end in Chromium (playwright-core) against a devnet)
	# The devnet's --forger needs the test switches (built above with --features testing).
	cd tests/browser && TIERNET_NODE_BIN="$(CURDIR)/target/debug/tiernet-node" npm test
	@printf '\n==> target directory: %s\n' "$$(du -sh target 2>/dev/null | cut -f1)"
	$(call banner,all tests passed)

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p tiernet-node --lib --bins -- -D warnings

wasm: setup
	$(call banner,npm package @tiernet/light-client)
	scripts/wasm-pkg

demo: setup
	$(call banner,devnet and web demo)
	scripts/demo

fuzz: setup
	$(call banner,fuzz every target for $${FUZZ_SECONDS:-600} s (scripts/fuzz))
	scripts/fuzz

bench-browser: setup
	$(call banner,browser benchmark: wasm size and cold start to the first verified head)
	$(CARGO) build --release -p tiernet-node
	scripts/wasm-pkg
	cd tests/browser && TIERNET_NODE_BIN="$(CURDIR)/target/release/tiernet-node" npm run bench

bench-wasm: setup
	$(call banner,verification in wasm32, timed in headless Chromium)
	scripts/wasm-test --bench verify
