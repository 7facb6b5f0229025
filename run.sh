#!/usr/bin/env bash
# One entry point for a fresh machine with Python 3.11:
#   ./run.sh          set up .venv and run the main job: the whole toy reproduction (reproduce-paper/all)
#                     through a local Prefect server
#   ./run.sh test     set up .venv and run the whole test suite
#   ./run.sh setup    only set up .venv
#   ./run.sh reproduce [TARGET] [--seeds N] [--profile P]
#                     one table or figure the same way (default TARGET: all)
#   ./run.sh stages   the first stages only (analysis, toy zoo, data, the base model's evaluation: flows.main)
# Any further arguments go to the command (e.g. ./run.sh test -k advantages).
set -euo pipefail
cd "$(dirname "$0")"

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "run.sh: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

setup() {
  # Reinstall only when the pins changed: the stamp holds a hash of pyproject.toml + constraints.txt.
  local want
  want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ "$(cat .venv-stamp 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py
  py=$(pick_python)
  echo "run.sh: setting up .venv with $py (pinned dependencies, CPU torch) ..." >&2
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      -c constraints.txt -e ".[dev]"
  echo "$want" > .venv-stamp
}

setup
# The toy profile and the tests never touch a model hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export MPLBACKEND=Agg
# No telemetry from the temporary Prefect server (the machines here have no internet).
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
# A fresh machine's first temporary server migrates a new database: give it more than the 20 s default.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-180}"
case "${1:-}" in
  -*) cmd=main ;;  # ./run.sh --seeds 3: options of the main job
  *) cmd="${1:-main}"; [ $# -gt 0 ] && shift ;;
esac
case "$cmd" in
  main)  exec .venv/bin/python -m flows.serve --run all "$@" ;;
  stages) exec .venv/bin/python -m flows.main "$@" ;;
  test)  exec .venv/bin/python -m pytest "$@" ;;
  reproduce)
    target="${1:-all}"; [ $# -gt 0 ] && shift
    exec .venv/bin/python -m flows.serve --run "$target" "$@" ;;
  setup) exit 0 ;;
  *) echo "usage: ./run.sh [main|test|setup|reproduce|stages] [args...]" >&2; exit 2 ;;
esac
