# One entry point for people and CI. Every target sets up .venv itself when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run serve serving-config test test-fast lint format bench bench-serving bench-scale clean

setup: $(STAMP)

# Reinstalls only when the declared dependencies or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else "error: Python 3.11 is required (the pinned TFX 1.16 stack has 3.11 wheels), found %d.%d; run: make PYTHON=/path/to/python3.11" % v)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned TFX stack into $(VENV) (first time about 3 minutes; log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --ignore-requires-python \
		-c constraints.txt -e '.[dev,airflow]' > $(VENV)/install.log 2>&1 \
		|| { tail -n 30 $(VENV)/install.log; echo "error: installing into $(VENV) failed; full log: $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

run: setup
	$(BIN)/python local_runner.py $(ARGS)

# Serves outputs/serving/taxi on 127.0.0.1:8501 over TF Serving's REST API (ARGS for more flags).
serve: setup
	$(BIN)/python -m serving $(ARGS)

# Writes models.config etc. for the real tensorflow_model_server and prints its command lines.
serving-config: setup
	$(BIN)/python -m serving.tf_serving $(ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: setup
	$(BIN)/python bench/pipeline_bench.py $(ARGS)

bench-serving: setup
	$(BIN)/python bench/serving_bench.py $(ARGS)

# Cold runs at 15k, 100k and 1M generated rows (about 6 minutes): bench/results/scale.{json,png}.
bench-scale: setup
	$(BIN)/python bench/scale_bench.py $(ARGS)

clean:
	rm -rf outputs .pytest_cache
