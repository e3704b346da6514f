# One entry point for people and CI. Every target sets up .venv itself when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

# How `make setup` installs: uv by default, several times faster than pip. pip bootstraps uv into
# the venv at the version constraints.txt pins, so the lock file stays the one place for versions.
# Without uv (say, a platform it has no wheel for): `make setup INSTALLER=pip`, the same pins.
INSTALLER ?= uv
ifeq ($(INSTALLER),uv)
# uv disregards TFX's Requires-Python <3.11 on its own. It writes bytecode only when asked: without
# it every process would recompile TensorFlow's modules on import.
INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv \
	&& $(BIN)/uv pip install --python $(BIN)/python --compile-bytecode
else ifeq ($(INSTALLER),pip)
INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --ignore-requires-python
else
$(error INSTALLER must be uv or pip, not "$(INSTALLER)")
endif

# Vertex AI Pipelines: where the pipeline's artifacts, data and served models live, and the image
# its steps run (docs/orchestrators.md). The defaults are placeholders: enough to compile
# offline; to submit, pass real values and VERTEX_PROJECT (ARGS adds runner flags, e.g. --dataflow).
VERTEX_BUCKET ?= gs://my-bucket
VERTEX_IMAGE ?= us-central1-docker.pkg.dev/my-project/ml/taxi-pipeline:latest
VERTEX_PROJECT ?=
VERTEX_REGION ?= us-central1
VERTEX_LOCATIONS = --image $(VERTEX_IMAGE) --pipeline-root $(VERTEX_BUCKET)/root \
	--data-root $(VERTEX_BUCKET)/data/taxi --serving-dir $(VERTEX_BUCKET)/serving

.PHONY: setup hooks run serve serving-config test test-fast lint format vertex-compile vertex-submit \
	bench bench-serving bench-warmup bench-scale bench-template bench-portable bench-drift clean

setup: $(STAMP)

# Reinstalls only when the declared dependencies or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else "error: Python 3.11 is required (the pinned TFX 1.16 stack has 3.11 wheels), found %d.%d; run: make PYTHON=/path/to/python3.11" % v)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned TFX stack into $(VENV) with $(INSTALLER) (a first install takes 1-2 minutes with uv, 4-6 with pip; log: $(VENV)/install.log)"
	@{ $(INSTALL) -c constraints.txt -e '.[dev,airflow]'; } > $(VENV)/install.log 2>&1 \
		|| { tail -n 30 $(VENV)/install.log; echo "error: installing into $(VENV) failed; full log: $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

# Installs the git hook that runs .pre-commit-config.yaml (ruff, the layering tests) on commit.
hooks: setup
	$(BIN)/pre-commit install

run: setup
	$(BIN)/python local_runner.py $(ARGS)

# Serves outputs/serving/taxi over TF Serving's gRPC (127.0.0.1:8500) and REST (:8501) APIs (ARGS for more flags).
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

# The Vertex pipeline JSON (outputs/vertex/), compiled offline: no credentials, nothing sent.
vertex-compile: setup
	$(BIN)/python vertex_runner.py --compile-only $(VERTEX_LOCATIONS) $(ARGS)

# Compiles and submits one run; needs Application Default Credentials for VERTEX_PROJECT.
vertex-submit: setup
	$(BIN)/python vertex_runner.py $(if $(VERTEX_PROJECT),--project $(VERTEX_PROJECT)) \
		$(if $(VERTEX_REGION),--region $(VERTEX_REGION)) $(VERTEX_LOCATIONS) $(ARGS)

bench: setup
	$(BIN)/python bench/pipeline_bench.py $(ARGS)

bench-serving: setup
	$(BIN)/python bench/serving_bench.py $(ARGS)

# After `make run`: first request to a hot-swapped version with and without a warmup file.
bench-warmup: setup
	$(BIN)/python bench/warmup_bench.py $(ARGS)

# Cold runs at 15k, 100k and 1M generated rows (about 6 minutes): bench/results/scale.{json,png}.
bench-scale: setup
	$(BIN)/python bench/scale_bench.py $(ARGS)

# Ours and the TFX taxi template, cold and interleaved on the same CSVs (30+ min): bench/results/template.{json,png}.
bench-template: setup
	$(BIN)/python bench/template_bench.py $(ARGS)

# The pipeline with --beam-runner portable next to the DirectRunner, cold, interleaved, at 15k and
# 100k rows (about 10 minutes on 2 cores): bench/results/portable.json (docs/performance.md).
bench-portable: setup
	$(BIN)/python bench/portable_bench.py $(ARGS)

# False alarms and detection of the drift checks on the bundled data (about 10 minutes):
# bench/results/drift.json and a table.
bench-drift: setup
	$(BIN)/python bench/drift_false_alarms.py $(ARGS)

clean:
	rm -rf outputs .pytest_cache
