# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck schema readme bench bench-storefront clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# service/, plugins/ and schema/ install as one package, `shopfront`. An editable install only
# follows that mapping in setuptools' strict mode, which links each file: a new or removed file
# needs a re-install, so the install steps depend on the file list (rewritten only on change).
FILELIST := $(VENV)/.filelist
$(shell mkdir -p $(VENV) && find service plugins schema -type f -not -path '*/__pycache__/*' \
	| LC_ALL=C sort > $(FILELIST).new && (cmp -s $(FILELIST).new $(FILELIST) \
	|| mv $(FILELIST).new $(FILELIST)); rm -f $(FILELIST).new)
STRICT := --config-settings editable_mode=strict

$(VENV)/.installed-run: pyproject.toml $(FILELIST) | $(BIN)/python
	$(BIN)/pip install --quiet $(STRICT) -e ".[embedded]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(FILELIST) examples/shopfront-plugin-example/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(STRICT) -e ".[test,embedded]"
	# the example merchant plugin: the suite checks it is discovered through its entry point
	$(BIN)/pip install --quiet -e examples/shopfront-plugin-example
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/shopfront serve --demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest
	cd examples/shopfront-plugin-example && $(abspath $(BIN))/python -m pytest
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/shopfront-plugin-example
	$(BIN)/lint-imports

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/shopfront-plugin-example
	$(BIN)/lint-imports

schema: $(VENV)/.installed-test
	$(BIN)/shopfront schema

readme: $(VENV)/.installed-test
	$(BIN)/shopfront settings --update-readme README.md

bench-storefront: $(VENV)/.installed-test
	$(BIN)/python -m bench.storefront

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	rm -rf examples/storefront-js/node_modules tests/graphql_http/node_modules
