"""Trusted verdicts: run a submission's functions in a sandbox and judge the outputs here.

The student's code cells are executed in a fresh sandboxed worker (see
:mod:`cnngrader.worker`), never in the process that decides the score. The
worker receives only the hidden *inputs*; the expected outputs stay in this
process, which reads the worker's results as plain data and compares them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from . import cases, codec, worker
from .hidden_data import HiddenData
from .judge import Verdict, judge
from .reference import grade_id, is_test_cell
from .sandbox import Limits, bwrap_argv, copy_ignore, limit_argv, sandbox_status, warn_if_off

log = logging.getLogger("cnngrader.verdicts")

_HERE = Path(__file__).resolve().parent


@dataclass
class GradingRun:
    verdicts: dict[str, Verdict]
    sandboxed: bool
    #: Per function: "ok" or the reason its process stopped early.
    process_notes: dict[str, str] = field(default_factory=dict)


def student_cells(nb: NotebookNode) -> list[str]:
    """The code the worker runs: every code cell except tests and visible checks.

    Student-added cells are kept (helpers defined there still work); graded
    test cells and the read-only ``check_*`` cells are left out because they
    only call the functions, and a hang there must not cost every function.
    """
    sources = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if is_test_cell(cell) or str(grade_id(cell) or "").startswith(("check_", "test_")):
            continue
        sources.append(cell.get("source", ""))
    return sources


def _reason(status: dict | None, limits: Limits) -> str:
    if status is None:
        return "was not graded: the grading worker stopped before reaching it"
    if status["status"] == "timeout":
        return f"timed out after {limits.wall:g} s"
    if status["status"] == "signal":
        sig = status["code"]
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            return f"exceeded the {limits.cpu} s CPU limit"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"process crashed with signal {name}"
    if status["code"] == 70:
        return "the grading process failed while loading your code"
    return f"process exited with status {status['code']}"


def run_verdicts(nb: NotebookNode, workdir: Path | None, data: HiddenData,
                 limits: Limits | None = None, functions: list[str] | None = None) -> GradingRun:
    """Grade every hidden check of ``nb``; ``workdir`` supplies files the code may import."""
    limits = limits or Limits()
    checks = [c for c in cases.checks() if functions is None or c.function in functions]
    by_fn: dict[str, list[cases.Check]] = {}
    for check in checks:
        by_fn.setdefault(check.function, []).append(check)
    job = {
        "cells": student_cells(nb),
        "helper_sources": data.helpers,
        "functions": [{"name": fn, "helpers": list(cases.HELPERS.get(fn, ())),
                       "checks": [c.grade_id for c in fn_checks]} for fn, fn_checks in by_fn.items()],
        "limits": {"memory": limits.memory, "cpu": limits.cpu, "wall": limits.wall, "fsize": limits.fsize},
    }
    inputs = {c.grade_id: [args for _, args, _ in data.cases(c.grade_id)] for c in checks}
    sandboxed, _ = sandbox_status()
    with tempfile.TemporaryDirectory(prefix="cnn-verdict-") as tmp:
        root = Path(tmp)
        job_dir, out_dir, work = root / "job", root / "out", root / "work"
        for d in (job_dir, out_dir):
            d.mkdir()
        (job_dir / "job.json").write_text(json.dumps(job))
        (job_dir / "inputs.npz").write_bytes(codec.dumps(codec.to_args(inputs)))
        if workdir and Path(workdir).is_dir():
            shutil.copytree(workdir, work, symlinks=False, ignore=copy_ignore)
        else:
            work.mkdir()
        budget = limits.wall * max(1, len(by_fn)) + 30
        if sandboxed:
            # Mount points avoid /work and /root, where the venv or Python may live.
            # Only worker.py and codec.py of this package are visible inside.
            cmd = bwrap_argv([(str(job_dir), "/run/cnn/job", False), (str(out_dir), "/run/cnn/out", True),
                              (str(work), "/home/student", True),
                              (str(_HERE / "worker.py"), "/run/cnn/grader/worker.py", False),
                              (str(_HERE / "codec.py"), "/run/cnn/grader/codec.py", False)],
                             cwd="/home/student", limits=limits)
            cmd += [sys.executable, "/run/cnn/grader/worker.py", "/run/cnn/job", "/run/cnn/out"]
            cwd = None
        else:
            warn_if_off()
            cmd = [sys.executable, str(_HERE / "worker.py"), str(job_dir), str(out_dir)]
            cwd = str(work)
        # The worker parent runs no student code; the cap only bounds its own footprint.
        cmd = limit_argv(limits.memory, int(budget), limits.fsize) + cmd
        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=budget, start_new_session=True)
        except subprocess.TimeoutExpired:
            log.warning("verdict worker exceeded its %.0f s budget and was killed", budget)
        statuses: dict[str, dict] = {}
        status_file = out_dir / "status.json"
        if status_file.exists() and status_file.stat().st_size < 1 << 20:
            try:
                statuses = json.loads(status_file.read_text())
            except ValueError:
                statuses = {}
        run = GradingRun({}, sandboxed)
        for fn, fn_checks in by_fn.items():
            status = statuses.get(fn) if isinstance(statuses, dict) else None
            ok = isinstance(status, dict) and status.get("status") == "exit" and status.get("code") == 0
            run.process_notes[fn] = "ok" if ok else _reason(status if isinstance(status, dict) else None, limits)
            for check in fn_checks:
                items = data.cases(check.grade_id)
                results = _read_results(out_dir / f"{check.grade_id}.npz", limits)
                if results is None:
                    results = [{"status": "error", "error": run.process_notes[fn]}] * len(items)
                run.verdicts[check.grade_id] = judge(check, items, results)
        return run


def _read_results(path: Path, limits: Limits) -> list[dict] | None:
    if not path.exists() or path.is_symlink() or path.stat().st_size > limits.fsize:
        return None
    try:
        results = codec.loads(str(path))
    except Exception:  # noqa: BLE001 - a garbled file is a failed case, not a grader crash
        return [{"status": "error", "error": "produced a result file that could not be read"}]
    if not isinstance(results, list):
        return [{"status": "error", "error": "produced a malformed result"}]
    return [r if isinstance(r, dict) else {"status": "error", "error": "malformed result"} for r in results]


def run_in_process(namespace: dict[str, Any], grade_id: str, data: HiddenData) -> Verdict:
    """Judge one check on functions already defined in ``namespace`` (used inside a kernel)."""
    check = cases.by_grade_id()[grade_id]
    items = data.cases(grade_id)
    helpers = worker.reference_helpers(data.helpers, cases.HELPERS.get(check.function, ()))
    raw = worker.run_cases(namespace, check.function, [args for _, args, _ in items], helpers)
    # Round-trip through the codec so the judge sees exactly what the sandbox path would send.
    results = codec.loads(worker.encode_results(raw))
    return judge(check, items, results)
