# The two set-up commands of README.md: `make sandbox` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
SHOAL := $(VENV)/bin/shoal
PYTEST_ARGS ?=

.PHONY: setup test lint typecheck pytest sandbox sandbox-down unit integration e2e

setup:
	@bash scripts/setup.sh

lint: setup
	$(VENV)/bin/ruff check shoal tests benchmarks
	$(VENV)/bin/ruff format --check shoal tests benchmarks
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy

# Two runs: unit and integration first, then e2e on its own, so the sandbox the e2e session shares
# is up only while e2e tests run.
pytest: setup
	bash scripts/pytest.sh tests/unit tests/integration $(PYTEST_ARGS)
	bash scripts/pytest.sh tests/e2e $(PYTEST_ARGS)

test: lint typecheck pytest

unit: setup
	bash scripts/pytest.sh -m unit $(PYTEST_ARGS)

integration: setup
	bash scripts/pytest.sh -m integration $(PYTEST_ARGS)

e2e: setup
	bash scripts/pytest.sh -m e2e $(PYTEST_ARGS)

sandbox: setup
	bash scripts/sandbox.sh

sandbox-down: setup
	$(SHOAL) sandbox down
