"""nbgrader preprocessors that harden autograding (wired in by ``nbgrader_config.py``).

``SandboxedExecute``
    nbgrader's Execute, but the kernel runs in bubblewrap with resource
    limits, output is capped while it streams in, and a kernel that dies or
    hangs ends execution with a note instead of failing the submission.

``TrustedVerdicts``
    Replaces the outputs of every graded test cell with a verdict decided
    outside the student's kernel (:mod:`cnngrader.verdicts`). Whatever the
    student's code did to its own kernel, the score of a test cell depends
    only on what the student's functions return for the hidden inputs.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellTimeoutError
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Float, Integer
from traitlets.config import Configurable

from . import cases, paths
from .hidden_data import HiddenData, ensure_current
from .reference import grade_id, is_test_cell
from .sandbox import Limits, SandboxedKernelManager


class CnnLimits(Configurable):
    """Resource limits for student code, set in ``nbgrader_config.py``."""

    memory_bytes = Integer(2 * 1024**3, help="address-space cap per student process").tag(config=True)
    cpu_seconds = Integer(20, help="CPU seconds per graded function").tag(config=True)
    wall_seconds = Float(20.0, help="wall-clock seconds per graded function").tag(config=True)
    max_file_bytes = Integer(64 * 1024**2, help="largest file student code may write").tag(config=True)
    kernel_cpu_seconds = Integer(300, help="CPU seconds for the whole notebook kernel").tag(config=True)
    kernel_wall_seconds = Float(180.0, help="wall-clock seconds for running the whole notebook").tag(config=True)
    max_output_bytes = Integer(200_000, help="output kept per cell; the rest is dropped").tag(config=True)

    def limits(self) -> Limits:
        env_wall = os.environ.get("CNN_WALL_SECONDS")
        wall = float(env_wall) if env_wall else self.wall_seconds
        cpu = max(1, int(wall)) if env_wall else self.cpu_seconds
        return Limits(memory=self.memory_bytes, cpu=cpu, wall=wall, fsize=self.max_file_bytes,
                      kernel_cpu=self.kernel_cpu_seconds)


class SandboxedExecute(Execute):
    """Execute the notebook in a sandboxed kernel; never let the kernel sink the submission."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        # The sandbox is thrown away after the run: a graceful shutdown only
        # waited seconds for ipykernel to tidy up state nobody reads.
        kwargs["shutdown_kernel"] = "immediate"
        super().__init__(*args, **kwargs)
        self._cnn = CnnLimits(parent=self)
        self._out_bytes: dict[int, int] = {}

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict, km: Any = None):
        self._out_bytes = {}
        self._resources = resources
        resources.setdefault("cnn", {})["kernel"] = "ok"
        # The trusted verdicts need only the sanitized cells, so they run in
        # their own sandbox while the kernel works through the notebook.
        resources["cnn"]["verdicts"] = start_verdicts(nb, resources, self)
        watchdog = threading.Timer(self._cnn.kernel_wall_seconds, self._wall_limit_reached)
        watchdog.daemon = True
        watchdog.start()
        try:
            return super().preprocess(nb, resources, km)
        except Exception as exc:  # DeadKernelError, timeouts, a broken kernel
            note = resources["cnn"].get("kernel", "ok")
            if note == "ok":
                note = f"the notebook kernel stopped: {type(exc).__name__}: {str(exc)[:200]}"
            resources["cnn"]["kernel"] = note
            self.log.warning("%s", note)
            return nb, resources
        finally:
            watchdog.cancel()

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        # Graded test cells are scored by TrustedVerdicts, which replaces their
        # outputs; running them in the student's kernel would only cost time.
        if is_test_cell(cell):
            cell.outputs = []
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> None | dict:
        """Stop at the first timed-out cell instead of letting every later cell time out too.

        A cell that ignores the interrupt would otherwise keep the kernel busy
        and cost ``timeout`` seconds for each remaining cell. The grade does not
        depend on this kernel, so stopping it loses nothing but later outputs.
        """
        note = f"timed out after {timeout} s; the kernel was stopped and later cells were not run"
        if cell is not None:
            cell.outputs.append(NotebookNode(output_type="error", ename="CellTimeoutError", evalue=note,
                                             traceback=[f"CellTimeoutError: {note}"]))
        self._resources["cnn"]["kernel"] = f"a cell {note}"
        self._kill_kernel()
        raise CellTimeoutError(note)

    def _wall_limit_reached(self) -> None:
        self._resources["cnn"]["kernel"] = f"the notebook run was stopped after {self._cnn.kernel_wall_seconds:g} s"
        self._kill_kernel()

    def _kill_kernel(self) -> None:
        km = getattr(self, "km", None)
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None:
            try:
                os.killpg(os.getpgid(proc.pid), 9)
            except (ProcessLookupError, PermissionError, OSError):
                try:
                    proc.kill()
                except Exception:  # noqa: BLE001
                    pass

    def output(self, outs: list[NotebookNode], msg: dict, display_id: str | None, cell_index: int):
        """Keep at most ``max_output_bytes`` per cell, so a flood cannot exhaust the grader."""
        used = self._out_bytes.get(cell_index, 0)
        cap = self._cnn.max_output_bytes
        if used >= cap:
            return None
        content = msg.get("content", {})
        size = len(json.dumps(content, default=str)) if msg.get("msg_type") != "stream" \
            else len(content.get("text", ""))
        self._out_bytes[cell_index] = used + size
        if used + size > cap:
            note = NotebookNode(output_type="stream", name="stdout",
                                text=f"\n[output truncated: this cell printed more than {cap // 1000} kB]\n")
            outs.append(note)
            return note
        return super().output(outs, msg, display_id, cell_index)


@lru_cache(maxsize=1)
def hidden_data() -> HiddenData:
    """The hidden data, checked against the solutions once per grading process.

    Checking means reading and hashing the source notebook, which is too slow
    to repeat for every submission; ``make grade`` checks before it starts.
    """
    return HiddenData(ensure_current())


def verdict_outputs(passed: bool, message: str) -> list[NotebookNode]:
    """The outputs nbgrader scores: a stdout line for a pass, one error for a failure."""
    if passed:
        return [NotebookNode(output_type="stream", name="stdout", text=message + "\n")]
    lines = message.splitlines() or ["failed"]
    return [NotebookNode(output_type="error", ename="HiddenTestFailure", evalue=lines[0],
                         traceback=["HiddenTestFailure: hidden tests failed", *lines])]


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cnn-verdicts")


def start_verdicts(nb: NotebookNode, resources: ResourcesDict, parent: Any) -> Future:
    """Start the sandboxed verdict run for ``nb`` in the background."""
    from .verdicts import run_verdicts

    limits = CnnLimits(parent=parent).limits()
    workdir = resources.get("metadata", {}).get("path")
    snapshot = copy.deepcopy(nb)
    data = hidden_data()
    return _POOL.submit(run_verdicts, snapshot, Path(workdir) if workdir else None, data, limits)


class RestoreCells(NbGraderPreprocessor):
    """Put back deleted read-only and graded cells, and drop cells that pretend to be graded.

    nbgrader's own ``add_missing_cells`` looks for the deleted cell's
    predecessor among graded cells only, and crashes when it is a read-only
    check cell. Here the release notebook gives the order: each missing
    release cell goes back after the nearest release cell the student kept.
    The restored test cells get their hidden parts from the gradebook in the
    ``OverwriteCells`` step that follows.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        release = paths.release_notebook(resources.get("nbgrader", {}).get("assignment") or paths.ASSIGNMENT)
        if not release.exists():
            return nb, resources
        ref_cells = _release_cells(str(release), release.stat().st_mtime)
        known = {grade_id(c) for c in ref_cells}
        present: dict[str, NotebookNode] = {}
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid and (gid not in known or gid in present):
                # Unknown or duplicated nbgrader cells become plain student cells.
                cell.metadata.pop("nbgrader", None)
            elif gid:
                present[gid] = cell
        restored = []
        for k, ref in enumerate(ref_cells):
            gid = grade_id(ref)
            if gid in present:
                continue
            anchor = next((present[grade_id(p)] for p in reversed(ref_cells[:k]) if grade_id(p) in present), None)
            index = nb.cells.index(anchor) + 1 if anchor is not None else 0
            new = copy.deepcopy(ref)
            if new.cell_type == "code":
                new.outputs = []
                new.execution_count = None
            nb.cells.insert(index, new)
            present[gid] = new
            restored.append(gid)
        if restored:
            self.log.warning("restored %d deleted cell(s): %s", len(restored), ", ".join(restored))
        resources.setdefault("cnn", {})["restored_cells"] = restored
        return nb, resources


@lru_cache(maxsize=4)
def _release_cells(path: str, mtime: float) -> list[NotebookNode]:
    """The release's nbgrader cells, read once per process (``mtime`` keys the cache)."""
    import nbformat

    return [c for c in nbformat.read(path, as_version=4).cells if grade_id(c)]


def hidden_lines(nb: NotebookNode) -> set[str]:
    """Distinctive lines of the hidden test regions restored into ``nb``."""
    lines: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in cell.get("source", "").splitlines():
            stripped = line.strip()
            if stripped == "### BEGIN HIDDEN TESTS":
                inside = True
            elif stripped == "### END HIDDEN TESTS":
                inside = False
            elif inside and len(stripped) >= 12:
                lines.add(stripped)
    return lines


def scrub_hidden_text(nb: NotebookNode) -> int:
    """Drop any output that quotes hidden test source (a thread could print the kernel's history).

    Returns how many outputs were replaced.
    """
    secret = hidden_lines(nb)
    replaced = 0
    for cell in nb.cells:
        for k, out in enumerate(cell.get("outputs", [])):
            text = json.dumps(out)
            if any(line in text or json.dumps(line)[1:-1] in text for line in secret):
                cell.outputs[k] = NotebookNode(output_type="stream", name="stdout",
                                               text="[output removed: it quoted hidden test source]\n")
                replaced += 1
    return replaced


class TrustedVerdicts(NbGraderPreprocessor):
    """Score graded test cells from sandboxed runs judged outside the student's process."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        started = time.monotonic()
        future = resources.get("cnn", {}).pop("verdicts", None)
        if future is None:  # SandboxedExecute did not run (another Execute is configured)
            future = start_verdicts(nb, resources, self)
        run = future.result()
        registry = cases.by_grade_id()
        for cell in nb.cells:
            if not is_test_cell(cell):
                continue
            verdict = run.verdicts.get(grade_id(cell))
            if verdict is None:
                # A graded cell with no trusted check cannot be trusted: it scores nothing.
                cell.outputs = verdict_outputs(False, "this test cell is not part of the course's hidden checks")
            elif verdict.passed:
                check = registry[verdict.grade_id]
                cell.outputs = verdict_outputs(True, f"Hidden tests passed: {check.function} - {check.prop}")
            else:
                cell.outputs = verdict_outputs(False, verdict.message)
        scrub_hidden_text(nb)
        self._record(resources, run, time.monotonic() - started)
        return nb, resources

    def _record(self, resources: ResourcesDict, run: Any, seconds: float) -> None:
        info = resources.get("nbgrader", {})
        student, assignment = info.get("student"), info.get("assignment")
        if not student or not assignment:
            return
        record = {
            "student": student,
            "assignment": assignment,
            "sandboxed": run.sandboxed,
            "kernel": resources.get("cnn", {}).get("kernel", "not run"),
            "functions": run.process_notes,
            "verdicts": {gid: {"passed": v.passed, "messages": v.messages} for gid, v in run.verdicts.items()},
            "verdict_wait_seconds": round(seconds, 3),
        }
        out = paths.records_dir(assignment)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{student}.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, out / f"{student}.json")
