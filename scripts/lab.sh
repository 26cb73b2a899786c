#!/usr/bin/env bash
# Start JupyterLab (from the project's virtualenv) in the student release folder,
# with nbgrader's Validate button available. Used by `make lab`.
#
#   scripts/lab.sh [extra jupyter lab options...]
#
# Environment: VENV (default: <repo>/.venv), DIR (default: <repo>/release/conv_step_by_step).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
DIR="${DIR:-$ROOT/release/conv_step_by_step}"

if [[ ! -x "$VENV/bin/jupyter" ]]; then
    echo "lab.sh: $VENV/bin/jupyter not found; create the virtualenv first (VENV=$VENV)" >&2
    exit 1
fi
if [[ ! -d "$DIR" ]]; then
    echo "lab.sh: notebook folder $DIR does not exist (release the assignment first)" >&2
    exit 1
fi

# Absolute paths: we cd below, and VENV/DIR may have been given relative to the caller.
VENV="$(cd "$VENV" && pwd)"
DIR="$(cd "$DIR" && pwd)"

# The venv first on PATH: the kernel, nbgrader's server extension (Validate) and
# `nbgrader` itself must all come from the same environment.
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"

# Run from the release folder, as a student would: the Validate button loads
# nbgrader_config.py from the server's working directory, and the course's
# (grader-side) config there is not meant for students.
cd "$DIR"
exec "$VENV/bin/jupyter" lab --notebook-dir="$DIR" "$@"
