# tiernet — the two commands of the README are `make demo` and `make test`.
# Every target that needs tools runs scripts/setup first (idempotent, quick
# when everything is already there).

CARGO ?= cargo

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# One banner per step, so a failing step is easy to find in CI logs; with
# the minutes since the target began, so the slow steps are easy to find.
STARTED := $(shell date +%s)
banner = @printf '\n==> %s [%s min]\n' "$(1)" "$$(( ($$(date +%s) - $(STARTED)) / 60 ))"

.PHONY: help setup test fmt fmt-check clippy wasm demo bench-browser bench-wasm bench-gossip fuzz sim prove bench-stark soak bench-restart

help:
	@echo "make demo    set up, then run a local devnet and the web demo (prints the URL)"
	@echo "make test    set up, then fmt check, clippy, tests, bindings (Python and Kotlin tests), docs, browser tests (Chromium)"
	@echo "make setup   install what the other targets need (scripts/setup)"
	@echo "make wasm    build the npm package @tiernet/light-client (bindings-wasm/pkg)"
	@echo "make bench-browser  wasm size, cold and warm (reload from IndexedDB) start to the first verified head in Chromium"
	@echo "make bench-wasm     header and state-proof verification timed in Chromium (wasm32)"
	@echo "make bench-gossip   votes/s per core a tiernet node validates and forwards vs plain GossipSub, latency per hop (GOSSIP_BENCH_ARGS)"
	@echo "make fuzz    run every cargo-fuzz target for FUZZ_SECONDS (default 600) each; prints executions and crashes"
	@echo "make sim     run every network-simulator scenario (tests/sim/scenarios); reports in target/sim/<scenario>/report.md"
	@echo "make prove   build tiernet-prove (nightly STWO prover, for tiernet-node register)"
	@echo "make bench-stark    STWO registration proofs: proving time per 2^k, proof size, verification time, flood budget"
	@echo "make soak    crash recovery for SOAK_SECONDS (default 300): SIGKILL a random node of 7 every few seconds"
	@echo "make bench-restart  restart time at 100 and 10,000 blocks beside a full replay"
	@echo "make fmt     format the workspace;  make clippy  lint it"

setup:
	$(call banner,setup)
	scripts/setup


# Incremental caches only help edit-compile loops; in a one-shot run they
# double the target directory (CI's disk has run full before).
test: export CARGO_INCREMENTAL = 0
# Steps run in this order and stop at the first failure.
# The cargo-fuzz targets are not run here: their nightly, instrumented build
# alone took 6-9 minutes of CI's budget; `make fuzz` runs them.
test: setup
	$(call banner,cargo fmt --check)
	$(CARGO) fmt --all -- --check
	$(call banner,cargo clippy)
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(call banner,cargo clippy: tiernet-node as operators build it (no feature testing))
	$(CARGO) clippy -p tiernet-node --lib --bins -- -D warnings
	$(call banner,Prometheus alert rules: promtool check rules and test rules (deploy/prometheus))
	cd deploy/prometheus && promtool check rules tiernet-rules.yml && promtool test rules tiernet-rules.test.yml
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
	$(call banner,network simulator smoke scenario (24 nodes, 2 adversarial behaviours, 2 minutes; target/sim/smoke/report.md))
	# The binary was built by the test run above (tests/sim/tests/cli.rs needs it).
	target/debug/tiernet-sim --out target/sim tests/sim/scenarios/smoke.toml
	$(call banner,bindings: build tiernet-ffi, generate Swift/Kotlin/Python, run the Python tests)
	scripts/bindings
	$(CARGO) build -p tiernet-node --features testing
	python3 -m pytest -q -p no:cacheprovider bindings-uniffi/tests
	$(call banner,bindings: compile the generated Kotlin and run its tests on the JVM against a devnet (scripts/kotlin-test))
	scripts/kotlin-test
	scripts/package-mobile --check
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

prove:
	$(call banner,tiernet-prove (nightly; scripts/prove))
	scripts/prove

bench-stark:
	$(call banner,STWO registration proof benchmark (scripts/prove bench))
	scripts/prove bench --max-log 16

soak: setup
	$(call banner,crash-recovery soak for $${SOAK_SECONDS:-300} s (tests/it/crash.rs))
	TIERNET_SOAK_SECS=$${SOAK_SECONDS:-300} $(CARGO) nextest run -p tiernet-node --test it --no-capture \
		-E 'test(random_crashes_lose_no_block)'

bench-restart:
	$(call banner,restart time against chain length (full-node/benches/restart.rs))
	$(CARGO) bench -p tiernet-node --bench restart

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

# Needs only cargo (no scripts/setup). About 1.5 minutes after the build: one tiernet node and one plain GossipSub
# node in the middle of the same in-memory topology; figures in
# target/bench/gossip.json. GOSSIP_BENCH_ARGS="--seconds 2" for a smoke run.
GOSSIP_BENCH_ARGS ?=
bench-gossip:
	$(call banner,gossip in one node: messages/s per core and latency per hop (tiernet vs plain GossipSub))
	$(CARGO) run --release -q -p tiernet-sim --bin gossip-bench -- $(GOSSIP_BENCH_ARGS)

# Every scenario but the smoke one (that runs in `make test`), one after the
# other, in a release build (a first build takes about 15 minutes; the runs
# about 40). SIM_SCENARIOS picks others.
SIM_SCENARIOS ?= $(filter-out tests/sim/scenarios/smoke.toml,$(sort $(wildcard tests/sim/scenarios/*.toml)))
sim: export CARGO_INCREMENTAL = 0
sim: setup
	$(call banner,network simulator: $(words $(SIM_SCENARIOS)) scenarios)
	$(CARGO) build --release -q -p tiernet-sim
	status=0; for s in $(SIM_SCENARIOS); do target/release/tiernet-sim --out target/sim "$$s" || status=1; done; exit $$status
