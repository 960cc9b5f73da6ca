# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck schema readme bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[embedded]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,embedded]"
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/shopfront serve --demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

schema: $(VENV)/.installed-test
	$(BIN)/shopfront schema

readme: $(VENV)/.installed-test
	$(BIN)/shopfront settings --update-readme README.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
