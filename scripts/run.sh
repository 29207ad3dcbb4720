#!/usr/bin/env bash
# Set up (first time only) and run napari-autoconfig. With no arguments it fingerprints the sample
# dataset shipped in resources/sample; otherwise the arguments go to the command line, e.g.
#   bash scripts/run.sh /data/images --masks /data/masks --json
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/napari-autoconfig ] || bash scripts/setup.sh >&2
exec .venv/bin/napari-autoconfig "$@"
