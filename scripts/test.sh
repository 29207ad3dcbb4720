#!/usr/bin/env bash
# Set up everything the tests need (system libraries for headless Qt, napari, pytest-qt, pytest-xvfb)
# and run the linter and the test suite. napari draws under a virtual X server that pytest-xvfb starts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-gui-libs testing
.venv/bin/ruff check .
.venv/bin/ruff format --check .
unset QT_QPA_PLATFORM   # offscreen Qt cannot draw napari's layers: pytest-xvfb gives a real X server
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
