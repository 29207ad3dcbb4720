#!/usr/bin/env bash
# Set up everything the tests need (system libraries for headless Qt, napari, pytest-qt, pytest-xvfb)
# and run the linter and the test suite. napari draws under a virtual X server that pytest-xvfb starts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-gui-libs testing
.venv/bin/ruff check .
.venv/bin/ruff format --check .
unset QT_QPA_PLATFORM   # offscreen Qt cannot draw napari's layers: pytest-xvfb gives a real X server

# An install without a C compiler: the fingerprint tests once more with the compiled loops left out
# (numpy's loops must give the same numbers; a few seconds).
NAPARI_AUTOCONFIG_NO_COMPILED=1 .venv/bin/python -m pytest -p no:cacheprovider -q \
  tests/test_fingerprint.py tests/test_readers.py tests/test_same_numbers.py tests/test_auto_config.py

exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
