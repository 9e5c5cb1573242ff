# Quick start: `make run` opens the app, `make test` runs the tests.
# Both create .venv and install the project into it (once, again when the
# dependencies change). constraints.txt pins torch to the CPU build.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench lint clean screenshots system-libs

# QtMultimedia (the video and audio players) needs the system's PulseAudio client
# library. As root with apt (CI, fresh machines) it is installed; otherwise we say how.
system-libs:
	@ldconfig -p 2>/dev/null | grep -q libpulse.so.0 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpulse0 >/dev/null; \
	  else \
	    echo "mmstudio: video and audio playback need libpulse0 (sudo apt install libpulse0)"; \
	  fi; }

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: system-libs $(STAMP)
	$(BIN)/mmstudio

test: system-libs $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# PNGs of the window on generated media, for README (docs/screenshots/)
screenshots: system-libs $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.screenshots docs/screenshots

bench: $(STAMP)
	$(BIN)/python -m tests.bench

lint: $(STAMP)
	$(BIN)/ruff check mmstudio tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache bench-results
