# Two commands a fresh clone needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps test lint demo clean

system-deps:
	@command -v espeak-ng >/dev/null 2>&1 || { \
		echo "installing espeak-ng (Debian package) for the Mini-SUPERB generator"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng >/dev/null; }

$(STAMP): setup.py examples/effspeech_plugin_example/setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps -e examples/effspeech_plugin_example
	touch $(STAMP)

setup: system-deps $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

# Mini-SUPERB tiny, Houlsby adapters on keyword spotting over the embedded upstream, test accuracy.
demo: setup
	$(BIN)/effspeech demo

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) result
