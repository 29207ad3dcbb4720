#!/usr/bin/env bash
# Set up everything the tests need (system libraries for headless Qt, napari, pytest-qt, pytest-xvfb)
# and run the linter and the test suite. napari draws under a virtual X server that pytest-xvfb starts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-gui-libs testing
.venv/bin/ruff check .
.venv/bin/ruff format --check .
unset QT_QPA_PLATFORM   # offscreen Qt cannot draw napari's layers: pytest-xvfb gives a real X server

# --napari-min: the GUI journey and the drawn row opens on the lowest napari that pyproject.toml
# allows, in an environment of its own (.venv-napari-min, made once: about a minute), then stop.
if [ "${1:-}" = "--napari-min" ]; then
  shift
  lowest=$(sed -n 's/.*"napari\[pyqt6\]>=\([0-9.]*\).*/\1/p' pyproject.toml | head -n 1)
  if [ ! -x .venv-napari-min/bin/python ]; then
    python3 -m venv .venv-napari-min
    .venv-napari-min/bin/python -m pip install --quiet --upgrade pip
  fi
  echo "test: napari==$lowest with PyQt6 in .venv-napari-min" >&2
  .venv-napari-min/bin/python -m pip install --quiet "napari==$lowest" PyQt6 pytest pytest-qt \
    pytest-xvfb -e .
  exec .venv-napari-min/bin/python -m pytest -p no:cacheprovider \
    tests/_napari/test_journey.py tests/_napari/test_drawn_removals.py "$@"
fi

# An install without a C compiler: the fingerprint tests once more with the compiled loops left out
# (numpy's loops must give the same numbers; a few seconds).
NAPARI_AUTOCONFIG_NO_COMPILED=1 .venv/bin/python -m pytest -p no:cacheprovider -q \
  tests/test_fingerprint.py tests/test_readers.py tests/test_same_numbers.py tests/test_auto_config.py

# The suite in parallel (pytest-xdist): one worker per core, at most 4, each with a virtual X server
# of its own (pytest-xvfb). A test module stays on one worker (--dist loadscope), so what a module
# makes once (nnU-Net fingerprints, datasets) is made once. `-n 0` as an argument runs it serially.
exec .venv/bin/python -m pytest -p no:cacheprovider -n auto --maxprocesses 4 --dist loadscope \
  --no-loadscope-reorder "$@"
