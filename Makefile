# Two commands on a fresh machine: `make run` (set up, initialise, serve) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install lint bench clean

$(BIN)/crm: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/crm

install: $(BIN)/crm

run: install
	./scripts/dev-run.sh

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/cli_help.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# Extract the staff UI's strings (what babel.cfg lists) into core/locale/messages.pot and merge
# them into each language's catalog; new msgids arrive empty: translate them (the test
# tests/core/test_i18n.py fails until every one is). No line numbers or dates, to keep diffs small.
LOCALES := vi fa

# Regenerate docs/hooks.md from the hookspecs' docstrings (tests/core/test_hookref.py fails
# while it is stale).
.PHONY: hooks-doc
hooks-doc: install
	$(BIN)/python -m core.hookref > docs/hooks.md

.PHONY: messages
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k Msg --no-location --sort-output --omit-header \
		-o core/locale/messages.pot .
	for lang in $(LOCALES); do \
		$(BIN)/pybabel update -i core/locale/messages.pot -d core/locale -l $$lang \
			--init-missing --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date \
			|| exit 1; \
	done

# The long runs of the security and reliability suites (docs/RELIABILITY.md): more fuzzing
# examples, a bigger XSS corpus, longer concurrency runs, and the load test at 10–100 users on
# SQLite (add LOAD_ARGS='--database-url postgresql+psycopg://…' for PostgreSQL). The quick
# profile of the same tests runs in `make test`.
.PHONY: reliability
reliability: install
	CRM_RELIABILITY_PROFILE=long $(BIN)/pytest tests/security tests/reliability
	$(BIN)/python bench/load.py --profile long $(LOAD_ARGS)
