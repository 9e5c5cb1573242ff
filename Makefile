# Quick start: `make run` opens the app, `make test` runs the tests.
# Both create .venv from the lock (requirements/lock-pyXY.txt: every package pinned and
# hashed, for the Python that runs make), then install mmstudio itself without deps.
# `make lock` writes the locks again; README says when.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_TAG := $(shell $(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])')
LOCK := requirements/lock-py$(PY_TAG).txt
# one stamp per lock: a new lock, or another Python, makes a new environment
LOCKED := $(VENV)/.locked-py$(PY_TAG)
STAMP := $(VENV)/.installed-stamp
# the Pythons we lock for (Linux x86_64; glibc 2.34 is what PySide6 6.11's wheels need)
LOCK_PYTHONS := 3.11 3.12
LOCK_PLATFORM := x86_64-manylinux_2_34
# --refresh: uv's cache of the registry's pages may be days old (it missed a release
# here), so each make lock reads them anew.
# uv does not read pip's configuration: hand it the folders pip finds wheels in
# (where our machines keep the CPU build of torch)
FIND_LINKS = $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))

.PHONY: run test test-seeds bench lint clean screenshots system-libs lock

# What Qt needs from the system (Debian and Ubuntu package names): QtMultimedia's
# PulseAudio client for the video and audio players, and the X11/xcb libraries of Qt's
# xcb platform plugin, without which the window cannot open on an X display ("could not
# load the Qt platform plugin xcb"). As root with apt (CI, fresh machines) the missing
# ones are installed; otherwise we say how.
SYSTEM_LIBS := libpulse0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
  libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 \
  libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libx11-xcb1 libfontconfig1 libdbus-1-3
system-libs:
	@command -v dpkg-query >/dev/null || { \
	  ldconfig -p 2>/dev/null | grep -q libxcb-cursor.so.0 && ldconfig -p | grep -q libpulse.so.0 || \
	    echo "mmstudio: the window needs libxcb-cursor, the players libpulse (see the Makefile)"; \
	  exit 0; }; \
	missing=$$(for p in $(SYSTEM_LIBS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "mmstudio: installing" $$missing; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
	    echo "mmstudio: could not install" $$missing "(the window and its players need them)"; \
	else \
	  echo "mmstudio: the window and its players need: sudo apt install" $$missing; \
	fi

$(LOCK):
	@echo "mmstudio: no lock for Python $(PY_TAG); there are: $(notdir $(wildcard requirements/lock-py*.txt))." >&2
	@echo "  Run make with PYTHON=python3.11 (or another locked Python)." >&2
	@exit 1

# A fresh environment from the lock, so nothing installed before it stays behind.
$(LOCKED): $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	touch $@

# mmstudio itself, editable, with no dependencies of its own: the lock has them all.
$(STAMP): $(LOCKED) pyproject.toml
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: system-libs $(STAMP)
	$(BIN)/mmstudio

test: system-libs $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The tests that build random-weight models (tests/hf_tiny.py) once more with other
# weights: no test may depend on what random weights rank. CI runs it after make test.
SEEDS ?= 1
RANDOM_WEIGHT_TESTS = $(shell grep -l hf_tiny tests/test_*.py tests/gui/test_*.py)
test-seeds: system-libs $(STAMP)
	@for seed in $(SEEDS); do \
	  echo "random-weight tests, seed $$seed: $(RANDOM_WEIGHT_TESTS)"; \
	  MMSTUDIO_TINY_SEED=$$seed QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q \
	    -p no:cacheprovider $(RANDOM_WEIGHT_TESTS) || exit 1; \
	done

# After changing a dependency in pyproject.toml, requirements/constraints.txt or
# requirements/tools.in; then `make test`. Kept pins stay where they are; to take
# upstream's newest releases too: make lock UPGRADE=1. The uv is the lock's, in .venv;
# where there is no .venv and the lock cannot make one (a first lock, a broken one),
# name another: pip install uv && make lock UV=uv
UV ?= $(BIN)/uv
# made once, with the environment; a lock newer than .venv does not rebuild it first
$(BIN)/uv:
	$(MAKE) $(LOCKED)
# A lock is replaced only when it changes (a new one makes a new .venv); uv starts from
# the old one, which is how it keeps its pins.
lock: $(filter $(BIN)/uv,$(UV))
	@for v in $(LOCK_PYTHONS); do \
	  out=requirements/lock-py$$(echo $$v | tr -d .).txt; \
	  if [ -f $$out ]; then cp $$out $$out.new; fi; \
	  $(UV) pip compile --quiet pyproject.toml requirements/tools.in --extra dev --extra umap \
	    --constraint requirements/constraints.txt \
	    --python-version $$v --python-platform $(LOCK_PLATFORM) \
	    $(addprefix --find-links ,$(FIND_LINKS)) $(if $(UPGRADE),--upgrade) \
	    --refresh --generate-hashes --custom-compile-command "make lock" \
	    --output-file $$out.new || { rm -f $$out.new; exit 1; }; \
	  if cmp -s $$out.new $$out; then rm $$out.new; echo "$$out: unchanged"; \
	  else mv $$out.new $$out; echo "$$out: written"; fi; \
	done

# PNGs of the window on generated media, for README (docs/screenshots/)
screenshots: system-libs $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m tests.screenshots docs/screenshots

bench: $(STAMP)
	$(BIN)/python -m tests.bench

lint: $(STAMP)
	$(BIN)/ruff check mmstudio tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache bench-results
