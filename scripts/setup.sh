#!/usr/bin/env bash
# Set up a fresh machine for napari-autoconfig: the system libraries headless Qt needs (Debian/Ubuntu,
# when run as root or with sudo), then a virtual environment in .venv with the package and its test
# tools. Safe to run again: it only installs what is missing. Every step says what it does.
#
#   bash scripts/setup.sh                       # the command line only
#   bash scripts/setup.sh all                   # + napari and Qt (the widget), OME-Zarr support
#   bash scripts/setup.sh --with-gui-libs testing   # + system Qt libraries and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
started=$SECONDS

APT_PACKAGES=(libgl1 libegl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6 libglib2.0-0
  libxkbcommon0 xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0)

if [ "${1:-}" = "--with-gui-libs" ]; then
  shift
  if command -v apt-get >/dev/null 2>&1; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
      dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
      sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
      say "installing ${#missing[@]} system libraries for headless Qt with apt-get: ${missing[*]}"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
      say "system libraries installed"
    else
      say "system libraries for headless Qt: already installed"
    fi
  else
    say "no apt-get here: install Qt's system libraries (OpenGL, xcb, xkbcommon) yourself if napari fails to start"
  fi
fi

extra="${1:-}"   # "" for the command line only; "all" adds napari; "testing" adds the test tools
if [ ! -x .venv/bin/python ]; then
  say "creating a virtual environment in .venv with $(python3 --version 2>&1)"
  python3 -m venv .venv
  say "upgrading pip in .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
else
  say "using the existing virtual environment in .venv"
fi
target="."
[ -n "$extra" ] && target=".[$extra]"
say "installing napari-autoconfig from this folder ($target, editable) and its dependencies;"
say "the first time this downloads numpy, tifffile, SimpleITK...${extra:+ and the '$extra' extra} (about a minute, more for napari)"
# pip's own lines (Collecting / Installing) show the progress; "Requirement already satisfied" is noise
.venv/bin/python -m pip install --progress-bar off -e "$target" 2>&1 \
  | grep -v -e '^Requirement already satisfied' -e '^Obtaining file' >&2 || true
.venv/bin/python -c "import napari_autoconfig" 2>/dev/null \
  || { say "the install failed: see the pip messages above"; exit 1; }
# the one C module is optional (setup.py): say whether it was built, and how to get it if not
if .venv/bin/python -c "import napari_autoconfig._loops" 2>/dev/null; then
  say "compiled loops built: masks are read at memory speed"
else
  say "no C compiler found, so the compiled loops were skipped: numpy does the same work, with the"
  say "same numbers, 1.5-2x slower on masks (install gcc and the Python headers, e.g."
  say "apt-get install gcc python3-dev, then run this again)"
fi
say "done in $((SECONDS - started)) s: run .venv/bin/napari-autoconfig --help (or: source .venv/bin/activate)"
