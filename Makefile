# Two commands on a fresh machine: `make demo` and `make test`. Everything else is set up here.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
SRC := hub schemas topics adapters projections replay

.PHONY: venv demo serve test lint typecheck security tests soak bench audit fuzz fmt up down clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/hub demo

serve: venv
	$(BIN)/hub serve

test: venv lint typecheck security tests

lint: venv
	$(BIN)/ruff check $(SRC) tests bench
	$(BIN)/ruff format --check $(SRC) tests bench
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

security: venv
	$(BIN)/bandit -q -c pyproject.toml -r $(SRC)

# Workers (pytest-xdist), a file per worker at a time so a file's module fixtures (a served hub, a
# browser, a broker) are built once. More workers than cores: most of the suite waits on
# subprocesses, sockets and browsers, not on the CPU. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 3

tests: venv
	@scripts/test-services.sh
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests were collected" >&2; fi; exit $$rc

# The long fault suite (tests/reliability, marked soak): kill loop of 20 SIGKILLs, every fault
# point, store failures, duplicates. Figures land in tests/reliability/figures/ (RELIABILITY.md).
soak: venv
	@scripts/test-services.sh
	$(BIN)/python -m pytest -m soak -s tests/reliability

bench: venv
	$(BIN)/python -m bench.run

audit: venv
	$(BIN)/python -m pip install -q -e '.[audit]'
	$(BIN)/pip-audit

# Coverage-guided fuzzing (atheris/libFuzzer), FUZZ_SECONDS per target; crashes land in hub-data/fuzz/.
FUZZ_SECONDS ?= 120
FUZZ_TARGETS ?= mllp hl7 tabular oa fhir
fuzz: venv
	$(BIN)/python -m pip install -q -e '.[fuzz]'
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
		$(BIN)/python -m tests.reliability.fuzz_targets $$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 -artifact_prefix=hub-data/fuzz/$$t- || exit 1; \
	done

fmt: venv
	$(BIN)/ruff check --fix $(SRC) tests bench
	$(BIN)/ruff format $(SRC) tests bench

up:
	docker compose -f docker-compose.kafka.yml up -d

down:
	docker compose -f docker-compose.kafka.yml down

clean:
	rm -rf $(VENV) hub-data .pytest_cache .mypy_cache .ruff_cache
