#!/usr/bin/env bash
# JupyterLab for a student (`make lab`) or for the instructor (`make formgrader`).
#
#   scripts/lab.sh student [jupyter lab options...]   # student/ workspace: Assignments panel, Validate
#   scripts/lab.sh instructor [options...]            # the course folder: formgrader, create assignment
#
# Options are passed to `jupyter lab` (make passes LAB_ARGS). As root, --allow-root is added.
# Environment: VENV (default: <repo>/.venv), WORK (the folder to serve), CNN_EXCHANGE,
# EDITION (en or zh; default: zh when LANG starts with zh, as in `make lab LANG=zh`).
# A student's translated edition opens in its language: JupyterLab's own menus switch to it
# (the pinned language pack) and each fetched notebook of that edition is opened.
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

EDITION="${EDITION:-}"
if [[ -z "$EDITION" && "${LANG:-}" == zh* ]]; then
    EDITION=zh
fi
case "$EDITION" in
    ""|en) LAB_LOCALE=en ;;
    zh) LAB_LOCALE=zh_CN ;;
    *)
        echo "lab.sh: EDITION must be en or zh, not '$EDITION'" >&2
        exit 2
        ;;
esac
# `make lab LANG=zh` names an edition, not an installed locale: run Jupyter under a real one.
if [[ "${LANG:-}" == zh || "${LANG:-}" == en ]]; then
    export LANG=C.UTF-8
fi

open=()
case "$ROLE" in
    student)
        WORK="${WORK:-$ROOT/student}"
        # The student's own Jupyter config: the instructor's extensions (formgrader, create
        # assignment, course list) are switched off; nbgrader_config.py there names the
        # course and the exchange.
        export JUPYTER_CONFIG_DIR="$WORK/.jupyter"
        if [[ -n "$EDITION" ]]; then
            settings="$JUPYTER_CONFIG_DIR/lab/user-settings/@jupyterlab/translation-extension"
            mkdir -p "$settings"
            printf '{\n  "locale": "%s"\n}\n' "$LAB_LOCALE" > "$settings/plugin.jupyterlab-settings"
            suffix=""
            [[ "$EDITION" == en ]] || suffix="_$EDITION"
            for a in $("$VENV/bin/cnn" assignments); do
                if [[ -f "$WORK/$a$suffix/$a$suffix.ipynb" ]]; then
                    open+=("$a$suffix/$a$suffix.ipynb")
                else
                    echo "lab.sh: to work on $a$suffix, fetch it in Nbgrader > Assignments" >&2
                fi
            done
        fi
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
exec "$VENV/bin/jupyter" lab --notebook-dir="$WORK" "${extra[@]}" "$@" "${open[@]}"
