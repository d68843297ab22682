# Two commands do all the set-up: `make run` and `make test`. Both install into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint test-kafka test-tansu bench bench-scale install clean chromium kafka axe

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/verkosto up --data-dir .verkosto --demo

# The browser tests use the system Chromium; install it from Debian's packages if missing.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Apache Kafka (KRaft) on the system's Java, its jars from Maven Central through
# deploy/kafka/pom.xml into ~/.cache/verkosto (VERKOSTO_KAFKA_LIBS overrides); Java and
# Maven come from Debian's packages if missing. See services/kafka_libs.py and services/kafka_broker.py.
kafka: $(STAMP)
	@(command -v java >/dev/null && command -v mvn >/dev/null) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless maven)
	$(BIN)/python -c 'from services.kafka_broker import kafka_libs; print(kafka_libs())'

# axe-core for the dashboards' accessibility test, from the npm registry into ~/.cache/verkosto/axe.
AXE_DIR := $(HOME)/.cache/verkosto/axe
axe:
	@command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	@test -f $(AXE_DIR)/node_modules/axe-core/axe.min.js || npm install --prefix $(AXE_DIR) --no-audit --no-fund axe-core@4

# The whole suite on Apache Kafka (the default broker of the tests and of `verkosto up`),
# then a representative part on Tansu, so both stay supported.
TANSU_SUBSET ?= (ingest or relay or projection) and not apache_kafka and not broker_side_lag

test: lint test-kafka test-tansu

# Lint and format (ruff) and types (mypy, strict on domain/ and contract/): fast, so first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-kafka: $(STAMP) chromium kafka axe
	$(BIN)/pytest

test-tansu: $(STAMP)
	VERKOSTO_TEST_BROKER=tansu $(BIN)/pytest -m integration -k "$(TANSU_SUBSET)" tests/integration

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.run_benchmarks

# Issue 9's organisation (5,000 partnerships, 20 of ~3,000 events, six years) through the
# real paths, p50/p99 per row; SCALE_ARGS changes the size (see --help).
SCALE_ARGS ?= --partners 5000 --long 20 --long-events 3000 --years 6
bench-scale: $(STAMP)
	$(BIN)/python -m tests.benchmarks.scale $(SCALE_ARGS)

clean:
	rm -rf $(VENV) .verkosto .pytest_cache .hypothesis
