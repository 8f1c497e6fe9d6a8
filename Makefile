# Two commands set everything up on a fresh machine: `make app` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501

.PHONY: app test lint install install-test chromium orthanc demo clean-demo bench

$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime requirements-test.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

install: $(VENV)/.runtime
install-test: $(VENV)/.test

# Debian's Chromium for the browser tests (only when run as root and it is missing).
chromium:
	@if [ "$$(id -u)" = 0 ] && ! command -v chromium >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

# Debian's Orthanc and its DICOMweb plugin for the PACS tests (only when run as root and missing).
# The tests start their own throw-away server; this never starts the packaged service.
orthanc:
	@if [ "$$(id -u)" = 0 ] && { [ ! -x /usr/sbin/Orthanc ] || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; }; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb; \
		if command -v systemctl >/dev/null 2>&1; then systemctl disable --now orthanc >/dev/null 2>&1 || true; fi; \
		if command -v service >/dev/null 2>&1; then service orthanc stop >/dev/null 2>&1 || true; fi; \
	fi

demo: $(VENV)/.runtime
	$(BIN)/rascore demo --if-absent

# The worker trains queued models in its own process; it stops with the server.
app: demo
	@$(BIN)/rascore worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/streamlit run app.py --server.port $(PORT)

# Lint (ruff, configured in pyproject.toml) before the suite.
lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.test chromium orthanc lint
	$(BIN)/python -m pytest

bench: $(VENV)/.test orthanc
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
