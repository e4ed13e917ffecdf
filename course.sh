#!/usr/bin/env bash
# rlhf-lab: set up and open the course, or set up and run the tests.
#
#   bash course.sh          set up (first time: about 2 minutes) and open JupyterLab
#   bash course.sh test     set up and run the whole test suite (what CI runs)
#   bash course.sh setup    only set up
#
# Setup makes a virtual environment in .venv (override with RLHF_LAB_VENV), installs
# torch first (so pip never swaps in another build), then the course and its pinned
# dependencies. It is idempotent: a second run only checks.
set -euo pipefail

cd "$(dirname "$0")"
COURSE_DIR="$(pwd)"
VENV="${RLHF_LAB_VENV:-$COURSE_DIR/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
STAMP="$VENV/.rlhf-lab-installed"

say() { printf '\033[1m[rlhf-lab]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[rlhf-lab] %s\033[0m\n' "$*" >&2; exit 1; }

setup() {
  if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
    die "Python 3.10-3.12 is needed (found: $("$PYTHON" --version 2>&1 || echo none)). Install it, or run with PYTHON=/path/to/python3.11 bash course.sh"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "Creating a virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV" || die "Could not create a virtual environment. On Debian/Ubuntu: apt-get install python3-venv"
  fi
  install_lab_settings
  # Re-install only when the dependency list changed since the last setup.
  local wanted
  wanted="$(sha256sum pyproject.toml | cut -c1-16)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
    return 0
  fi
  say "Installing torch $TORCH_VERSION first (on a machine without a GPU pip may pick the CPU build from a local wheel)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" \
    || die "pip could not install torch==$TORCH_VERSION. Check your network, or install torch yourself into $VENV and re-run."
  say "Installing the course and its pinned dependencies"
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]" || die "pip could not install the course's dependencies (see the error above)."
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (rlhf-lab)" >/dev/null
  echo "$wanted" > "$STAMP"
  say "Set up. Check it with: $VENV/bin/rlhf-lab doctor"
}

install_lab_settings() {
  # The course's JupyterLab defaults (no news pop-up, no update checks; see jupyter/README.md),
  # for this environment only: the learner's own settings in ~/.jupyter stay as they are.
  local target="$VENV/share/jupyter/lab/settings/overrides.json"
  if ! cmp -s jupyter/overrides.json "$target"; then
    mkdir -p "$(dirname "$target")" && cp jupyter/overrides.json "$target"
  fi
}

ensure_chromium() {
  # The labelling widget's end-to-end test drives a real JupyterLab in Debian's Chromium.
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "Installing Chromium for the browser test (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    say "Installing Chromium for the browser test (sudo apt-get)"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    say "Chromium is missing and cannot be installed here: the browser test will fail. Install chromium, or set RLHF_LAB_SKIP_E2E=1 to skip it."
  fi
}

case "${1:-lab}" in
  lab)
    setup
    say "Opening the course in JupyterLab (notebooks/00_welcome.ipynb). Stop it with Ctrl+C."
    exec "$VENV/bin/jupyter" lab --notebook-dir="$COURSE_DIR" "notebooks/00_welcome.ipynb" "${@:2}"
    ;;
  test)
    setup
    ensure_chromium
    export HF_HUB_OFFLINE=1
    # Notebooks run in kernels that inherit this environment: one shared model cache.
    export RLHF_LAB_CACHE="${RLHF_LAB_CACHE:-$COURSE_DIR/.cache/rlhf_lab}"
    say "Running the tests (first run builds the tiny models: a few minutes)"
    exec "$VENV/bin/python" -m pytest -p no:cacheprovider tests notebooks solutions --nbval-lax \
      --durations=15 "${@:2}"
    ;;
  setup)
    setup
    ;;
  *)
    die "Unknown command '$1'. Use: bash course.sh [lab|test|setup]"
    ;;
esac
