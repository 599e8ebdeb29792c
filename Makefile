# tiernet — the two commands of the README are `make demo` and `make test`.
# Every target that needs tools runs scripts/setup first (idempotent, quick
# when everything is already there).

# Arguments for the demo node (global flags first, then the subcommand).
NODE_ARGS ?= devnet --validators 4
CARGO ?= cargo

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# One banner per step, so a failing step is easy to find in CI logs.
banner = @printf '\n==> %s\n' "$(1)"

.PHONY: help setup test fmt fmt-check clippy wasm demo

help:
	@echo "make demo    set up, then run a local devnet (tiernet-node $(NODE_ARGS))"
	@echo "make test    set up, then fmt check, clippy, tests, bindings (Python tests), docs, wasm32 build of tiernet-core"
	@echo "make setup   install what the other targets need (scripts/setup)"
	@echo "make wasm    release wasm32 build of tiernet-core"
	@echo "make fmt     format the workspace;  make clippy  lint it"

setup:
	$(call banner,setup)
	scripts/setup

# Incremental caches only help edit-compile loops; in a one-shot run they
# double the target directory (CI's disk has run full before).
test: export CARGO_INCREMENTAL = 0
# Steps run in this order and stop at the first failure.
test: setup
	$(call banner,cargo fmt --check)
	$(CARGO) fmt --all -- --check
	$(call banner,cargo clippy)
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		printf '\n==> %s\n' "cargo nextest run"; \
		$(CARGO) nextest run --workspace; \
		printf '\n==> %s\n' "cargo test --doc"; \
		$(CARGO) test --workspace --doc; \
	else \
		printf '\n==> %s\n' "cargo test (cargo-nextest not installed)"; \
		$(CARGO) test --workspace; \
	fi
	$(call banner,bindings: build tiernet-ffi, generate Swift/Kotlin/Python, run the Python tests)
	scripts/bindings
	$(CARGO) build -p tiernet-node
	python3 -m pytest -q -p no:cacheprovider bindings-uniffi/tests
	$(call banner,cargo doc (warnings are errors))
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(call banner,wasm32 build of tiernet-core)
	scripts/wasm-cargo build -p tiernet-core
	@printf '\n==> target directory: %s\n' "$$(du -sh target 2>/dev/null | cut -f1)"
	$(call banner,all tests passed)

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

wasm: setup
	$(call banner,wasm32 release build of tiernet-core)
	scripts/wasm-cargo build --release -p tiernet-core

demo: setup
	$(call banner,tiernet-node $(NODE_ARGS))
	$(CARGO) run --release -p tiernet-node -- $(NODE_ARGS)
