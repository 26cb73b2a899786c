#!/usr/bin/env bash
# JupyterLab for a student (`make lab`) or for the instructor (`make formgrader`).
#
#   scripts/lab.sh student [jupyter lab options...]   # student/ workspace: Assignments panel, Validate
#   scripts/lab.sh instructor [options...]            # the course folder: formgrader, create assignment
#
# Options are passed to `jupyter lab` (make passes LAB_ARGS). As root, --allow-root is added.
# Environment: VENV (default: <repo>/.venv), WORK (the folder to serve), CNN_EXCHANGE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
ROLE="${1:-student}"
shift || true

if [[ ! -x "$VENV/bin/jupyter" ]]; then
    echo "lab.sh: $VENV/bin/jupyter not found; create the virtualenv first (make venv)" >&2
    exit 1
fi
VENV="$(cd "$VENV" && pwd)"
# The venv first on PATH: the kernel, nbgrader's server extensions and `nbgrader` itself
# must all come from the same environment.
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"

case "$ROLE" in
    student)
        WORK="${WORK:-$ROOT/student}"
        # The student's own Jupyter config: the instructor's extensions (formgrader, create
        # assignment, course list) are switched off; nbgrader_config.py there names the
        # course and the exchange.
        export JUPYTER_CONFIG_DIR="$WORK/.jupyter"
        ;;
    instructor)
        WORK="${WORK:-$ROOT}"
        ;;
    *)
        echo "lab.sh: first argument must be 'student' or 'instructor', not '$ROLE'" >&2
        exit 2
        ;;
esac
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"

extra=()
if [[ "$(id -u)" -eq 0 ]]; then
    extra+=(--allow-root)
fi
# nbgrader reads nbgrader_config.py from the server's working directory.
cd "$WORK"
exec "$VENV/bin/jupyter" lab --notebook-dir="$WORK" "${extra[@]}" "$@"
