#!/usr/bin/env bash
# rlhf-lab: set up and open the course, or set up and run the tests.
#
#   bash course.sh              set up (first time: about 2 minutes) and open JupyterLab
#   bash course.sh test         set up and run the whole test suite (what CI runs)
#   bash course.sh test --fast  the contributor's check before a commit: every test but the
#                               notebooks, the browser tests and the slow (training) ones
#   bash course.sh setup        only set up
#
# Extra arguments after `test` go to pytest (e.g. `bash course.sh test -k cache`).
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

PHASES=()
phase_start=$(date +%s)
phase() {
  # Record how long the phase that just ended took (printed at the end of `course.sh test`).
  local now; now=$(date +%s)
  PHASES+=("$1 $((now - phase_start))")
  phase_start=$now
}

print_phases() {
  local total=0 line
  say "Time per phase:"
  for line in "${PHASES[@]}"; do
    printf '  %-10s %5s s\n' ${line}
    total=$((total + ${line##* }))
  done
  printf '  %-10s %5s s\n' total "$total"
}

run_tests() {
  local fast=0
  PYTEST_ARGS=()
  for arg in "$@"; do
    if [ "$arg" = "--fast" ]; then fast=1; else PYTEST_ARGS+=("$arg"); fi
  done
  setup; phase setup
  export HF_HUB_OFFLINE=1
  # Notebooks run in kernels that inherit this environment: one shared model cache, and the
  # test budget (the longest lessons train their reduced grid; see README, "Try a lesson quickly").
  export RLHF_LAB_CACHE="${RLHF_LAB_CACHE:-$COURSE_DIR/.cache/rlhf_lab}"
  export RLHF_LAB_BUDGET="${RLHF_LAB_BUDGET:-test}"
  if [ "$fast" = 1 ]; then
    say "Fast tests: no notebooks, no browser, no slow (training) tests"
    local rc=0
    run_pytest tests -m "not slow and not notebook and not e2e" || rc=$?
    phase fast; print_phases; return $rc
  fi
  ensure_chromium; phase chromium
  # Each full run keeps its per-test durations (tools/test_durations.json, see CONTRIBUTING).
  export RLHF_LAB_DURATIONS="${RLHF_LAB_DURATIONS:-$COURSE_DIR/tools/test_durations.json}"
  export RLHF_LAB_RUN_ID="${RLHF_LAB_RUN_ID:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
  local rc_browser=0 rc_lessons=0 rc_tests=0
  say "Browser tests first, alone (a real JupyterLab and Chromium: their waits need the CPU to themselves)"
  run_pytest tests/e2e || rc_browser=$?
  phase browser
  # Then two lanes side by side, one torch thread each: on 2 cores two one-thread processes get
  # through about 1.3x the work of one two-thread process, with the same numbers (experiments/ppo_threads.py). Lanes share the
  # cache; its per-entry lock lets a stage both lanes need be built once, by whichever comes first.
  say "Two lanes, one thread each: the lessons 00-06, 07 | the tests, then 05b, 07b, 08 and the solutions"
  export RLHF_LAB_THREADS=1 OMP_NUM_THREADS=1
  lane lessons notebooks/00_*.ipynb notebooks/01_*.ipynb notebooks/02_*.ipynb notebooks/03_*.ipynb \
    notebooks/04_*.ipynb notebooks/05_*.ipynb notebooks/06_*.ipynb notebooks/07_*.ipynb &
  local lessons_pid=$!
  ( rc=0
    lane tests tests --ignore=tests/e2e || rc=$?
    lane tests notebooks/05b_*.ipynb notebooks/07b_*.ipynb notebooks/08_*.ipynb solutions || rc=$?
    exit $rc ) &
  local tests_pid=$!
  wait "$lessons_pid" || rc_lessons=$?
  wait "$tests_pid" || rc_tests=$?
  phase lanes
  print_phases
  if [ "$rc_browser" != 0 ] || [ "$rc_lessons" != 0 ] || [ "$rc_tests" != 0 ]; then
    say "FAILED: exit codes: browser tests $rc_browser, lesson lane $rc_lessons, test lane $rc_tests (see above)"
    return 1
  fi
}

run_pytest() {
  # pytest over the given paths (notebooks under nbval); "no test selected" (a -k that matches
  # nothing here) is not a failure.
  local rc=0
  "$VENV/bin/python" -m pytest -p no:cacheprovider --nbval-lax --durations=15 "$@" "${PYTEST_ARGS[@]}" || rc=$?
  if [ "$rc" = 5 ]; then rc=0; fi
  return $rc
}

lane() {
  # One lane: its pytest's lines prefixed with the lane's name, and how long it took.
  local name=$1 start rc=0; shift
  start=$(date +%s)
  set +e
  run_pytest "$@" 2>&1 | sed -u "s/^/[$name] /"
  rc=${PIPESTATUS[0]}
  set -e
  say "[$name] done in $(( $(date +%s) - start )) s: $*" | cut -c1-160
  return $rc
}

case "${1:-lab}" in
  lab)
    setup
    say "Opening the course in JupyterLab (notebooks/00_welcome.ipynb). Stop it with Ctrl+C."
    exec "$VENV/bin/jupyter" lab --notebook-dir="$COURSE_DIR" "notebooks/00_welcome.ipynb" "${@:2}"
    ;;
  test)
    run_tests "${@:2}"
    ;;
  setup)
    setup
    ;;
  *)
    die "Unknown command '$1'. Use: bash course.sh [lab|test|setup]"
    ;;
esac
