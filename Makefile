# The two commands of the README's quick start: `make demo` and `make test`; `make dist` for the
# sdist and wheel (python -m build, the wheel built from the sdist).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.sandbox: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[sandbox]'
	touch $@

$(VENV)/.test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.sandbox

# The build tools in a virtualenv of their own (pyproject.toml's dependency group `dist`).
.venv-dist/.dist: pyproject.toml
	$(PYTHON) -m venv .venv-dist
	.venv-dist/bin/python -m pip install --quiet --upgrade pip
	.venv-dist/bin/python -m pip install --quiet --group dist
	touch $@

demo: $(VENV)/.sandbox
	$(BIN)/byoc demo

test: lint
	$(BIN)/python -m pytest -q -n 4 $(PYTEST_ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check src tests bench
	$(BIN)/actionlint examples/github-actions/*.yml
	$(BIN)/mypy

bench: $(VENV)/.sandbox
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

dist: .venv-dist/.dist
	rm -rf dist
	.venv-dist/bin/python -m build --outdir dist .

clean:
	rm -rf $(VENV) .venv39 .venv-dist build dist src/*.egg-info .pytest_cache
