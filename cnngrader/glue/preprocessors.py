"""nbgrader preprocessors that harden autograding (wired in by ``nbgrader_config.py``).

``SandboxedExecute``
    nbgrader's Execute, but the kernel runs in bubblewrap inside the
    submission's cgroup, with limits from ``c.CnnLimits``; every output
    message (stream, display data, display updates, results, errors, comms)
    counts against a per-cell and a per-notebook cap as it arrives; and a
    kernel that dies or hangs ends execution with a note instead of failing
    the submission.

``TrustedVerdicts``
    Replaces the outputs of every graded test cell with a verdict decided
    outside the student's kernel (:mod:`cnngrader.sandbox.verdicts`). Whatever the
    student's code did to its own kernel, the score of a test cell depends
    only on what the student's functions return for the hidden inputs.

``SanitizeOutputs``
    Makes the autograded notebook safe to render: only plain text, raster
    images and sanitized HTML survive in outputs, student-written markdown
    loses scripts and script links, and the output caps are applied once
    more to the finished notebook.

``RestoreCells``
    Puts back deleted read-only and graded cells in release order.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import lru_cache
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellTimeoutError
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, SaveAutoGrades

from cnngrader.core import paths, spec
from cnngrader.core.hidden_data import HiddenData, ensure_current
from cnngrader.core.i18n import Msg, Translator, render, translator
from cnngrader.core.reference import grade_id, is_test_cell
from cnngrader.core.spec import Assignment
from cnngrader.sandbox import cgroups
from cnngrader.sandbox.bwrap import SandboxedKernelManager
from cnngrader.sandbox.limits import CnnLimits, Limits, for_assignment, from_config

__all__ = ["CnnLimits", "RestoreCells", "SandboxedExecute", "SanitizeOutputs", "SaveAutoGradesOnce",
           "TrustedVerdicts"]

#: nbgrader message types that add to or change a cell's outputs.
_OUTPUT_MESSAGES = {"stream", "display_data", "update_display_data", "execute_result", "error"}


# --------------------------------------------------------------------------
# The submission's cgroup, shared by the kernel and the verdicts
# --------------------------------------------------------------------------

_LIVE_GROUPS: set[cgroups.Group] = set()
_GROUPS_LOCK = threading.Lock()


def submission_group(resources: ResourcesDict, limits: Limits) -> cgroups.Group | None:
    """The cgroup of the submission being graded, created on first use (None when cgroups are off)."""
    cnn = resources.setdefault("cnn", {})
    if "group" not in cnn:
        found = cgroups.backend()
        cnn["cgroups"] = found.enabled
        if not found.enabled:
            cgroups.warn_if_off()
        student = resources.get("nbgrader", {}).get("student", "?")
        group = found.submission(student, limits.submission_memory_bytes, limits.submission_pids) \
            if found.enabled else None
        cnn["group"] = group
        if group is not None:
            with _GROUPS_LOCK:
                _LIVE_GROUPS.add(group)
    return cnn["group"]


def release_submission_group(resources: ResourcesDict) -> None:
    """Kill whatever is left of the submission's processes and remove its cgroup."""
    group = resources.get("cnn", {}).pop("group", None)
    if group is not None:
        group.remove()
        with _GROUPS_LOCK:
            _LIVE_GROUPS.discard(group)


def release_all_groups() -> None:
    """Remove every submission cgroup this process still holds (after a failed autograde)."""
    with _GROUPS_LOCK:
        groups = list(_LIVE_GROUPS)
        _LIVE_GROUPS.clear()
    for group in groups:
        group.remove()


# --------------------------------------------------------------------------
# Output caps
# --------------------------------------------------------------------------

def output_size(output: Any) -> int:
    if output.get("output_type") == "stream":
        return len(output.get("text", ""))
    return len(json.dumps(output, default=str))


def _note(text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name="stdout", text=f"\n[{text}]\n")


def cap_outputs(nb: NotebookNode, per_cell: int, total: int) -> int:
    """Trim outputs to ``per_cell`` bytes per cell and ``total`` per notebook; returns outputs dropped.

    Graded test cells are left alone: their outputs are the trusted verdicts,
    and a verdict's error output removed would read as a pass to nbgrader.
    """
    used = 0
    dropped = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code" or is_test_cell(cell):
            continue
        kept, in_cell, cut = [], 0, False
        for out in cell.get("outputs", []):
            size = output_size(out)
            if in_cell + size > per_cell or used + size > total:
                dropped += 1
                cut = True
                continue
            kept.append(out)
            in_cell += size
            used += size
        if cut:
            kept.append(_note(f"output truncated: more than {per_cell // 1000} kB in this cell or "
                              f"{total // 1000} kB in the notebook"))
        cell.outputs = kept
    return dropped


class SandboxedExecute(Execute):
    """Execute the notebook in a sandboxed kernel; never let the kernel sink the submission."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        # The sandbox is thrown away after the run: a graceful shutdown only
        # waited seconds for ipykernel to tidy up state nobody reads.
        kwargs["shutdown_kernel"] = "immediate"
        super().__init__(*args, **kwargs)
        self.cnn_limits = from_config(self.config)
        self._out_bytes: dict[int, int] = {}
        self._total = 0
        self._truncated: set[int] = set()
        self._group: cgroups.Group | None = None

    def create_kernel_manager(self) -> Any:
        km = super().create_kernel_manager()
        km.cnn_group = self._group
        # No single message may be bigger than what a notebook may keep.
        km.cnn_max_message = max(self.cnn_limits.max_notebook_output_bytes * 2, 1 << 20)
        return km

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict, km: Any = None):
        self._out_bytes, self._total, self._truncated = {}, 0, set()
        self._resources = resources
        resources.setdefault("cnn", {})["kernel"] = "ok"
        self._group = submission_group(resources, self.cnn_limits)
        # The trusted verdicts need only the sanitized cells, so they run in
        # their own sandbox while the kernel works through the notebook.
        resources["cnn"]["verdicts"] = start_verdicts(nb, resources, self)
        stop = threading.Event()
        watchdog = threading.Thread(target=self._watch, args=(stop,), daemon=True)
        watchdog.start()
        # The run happens on a copy, in a thread of its own: if anything in the
        # kernel client hangs past every timeout, the grader walks away from it.
        work = copy.deepcopy(nb)
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                super(SandboxedExecute, self).preprocess(work, resources, km)
            except BaseException as exc:  # noqa: BLE001 - DeadKernelError, timeouts, a broken kernel
                box["error"] = exc

        runner = threading.Thread(target=run, daemon=True, name="cnn-kernel-run")
        runner.start()
        runner.join(self.cnn_limits.kernel_wall_seconds + 60)
        stop.set()
        if runner.is_alive():
            self._stop_kernel(f"the notebook run was abandoned after {self.cnn_limits.kernel_wall_seconds + 60:g} s")
            self.log.warning("%s", resources["cnn"]["kernel"])
            return nb, resources
        if "error" in box:
            note = resources["cnn"].get("kernel", "ok")
            if note == "ok":
                note = f"the notebook kernel stopped ({type(box['error']).__name__})"
            resources["cnn"]["kernel"] = note
            self.log.warning("%s", note)
        nb.cells = work.cells
        return nb, resources

    def _watch(self, stop: threading.Event) -> None:
        """Stop the kernel at its wall-clock limit, or when all its processes used their CPU budget."""
        limits = self.cnn_limits
        started = time.monotonic()
        while not stop.wait(0.25):
            if time.monotonic() - started > limits.kernel_wall_seconds:
                self._stop_kernel(f"the notebook run was stopped after {limits.kernel_wall_seconds:g} s")
                return
            group = getattr(getattr(self, "km", None), "_kernel_group", None)
            if group is not None and group.cpu_seconds() > limits.kernel_cpu_seconds:
                self._stop_kernel(f"the notebook run used its {limits.kernel_cpu_seconds} s of CPU time")
                return

    def _stop_kernel(self, note: str) -> None:
        self._resources["cnn"]["kernel"] = note
        self._kill_kernel()

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, index: int) -> tuple:
        # Graded test cells are scored by TrustedVerdicts, which replaces their
        # outputs; running them in the student's kernel would only cost time.
        # (Overriding async_execute_cell is not enough: nbclient binds
        # execute_cell to its own coroutine, so the override was never called.)
        if is_test_cell(cell):
            cell.outputs = []
            return cell, resources
        tags = set(cell.get("metadata", {}).get("tags") or [])
        cnn = resources.setdefault("cnn", {})
        if "skip_tags" not in cnn:  # read the spec once per notebook, not once per cell
            cnn["skip_tags"] = frozenset(spec.load(_assignment(resources)).skip_tags)
        if cell.get("cell_type") == "code" and tags & cnn["skip_tags"]:
            # Experiments (timing runs, training runs) are the student's own; grading does not repeat them.
            cell.outputs = [NotebookNode(output_type="stream", name="stdout",
                                         text="[not run while grading: an experiment cell]\n")]
            return cell, resources
        return super().preprocess_cell(cell, resources, index)

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

    def _kill_kernel(self) -> None:
        km = getattr(self, "km", None)
        group = getattr(km, "_kernel_group", None)
        if group is not None:
            group.kill()
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None:
            try:
                os.killpg(os.getpgid(proc.pid), 9)
            except (ProcessLookupError, PermissionError, OSError):
                try:
                    proc.kill()
                except Exception:  # noqa: BLE001
                    pass

    def process_message(self, msg: dict, cell: NotebookNode, cell_index: int) -> NotebookNode | None:
        """Count every output-changing message against the caps before nbclient applies it."""
        msg_type = msg.get("msg_type", "")
        if msg_type in _OUTPUT_MESSAGES or msg_type.startswith("comm"):
            content = msg.get("content", {})
            size = len(content.get("text", "")) if msg_type == "stream" else len(json.dumps(content, default=str))
            per_cell, total = self.cnn_limits.max_output_bytes, self.cnn_limits.max_notebook_output_bytes
            used = self._out_bytes.get(cell_index, 0)
            if used + size > per_cell or self._total + size > total:
                if cell_index not in self._truncated:
                    self._truncated.add(cell_index)
                    cell.outputs.append(_note(f"output truncated: this cell printed more than "
                                              f"{per_cell // 1000} kB, or the notebook more than {total // 1000} kB"))
                return None
            self._out_bytes[cell_index] = used + size
            self._total += size
        return super().process_message(msg, cell, cell_index)


@lru_cache(maxsize=8)
def hidden_data(assignment: str | None = None) -> HiddenData:
    """An assignment's hidden data, checked against the solutions once per grading process.

    Checking means reading and hashing the source notebook, which is too slow
    to repeat for every submission; ``make grade`` checks before it starts.
    """
    return HiddenData(ensure_current(assignment=spec.load(assignment)))


def _assignment(resources: ResourcesDict) -> str:
    """The assignment nbgrader is working on (the course's first one outside nbgrader)."""
    return resources.get("nbgrader", {}).get("assignment") or paths.default_assignment()


def verdict_outputs(passed: bool, message: str) -> list[NotebookNode]:
    """The outputs nbgrader scores: a stdout line for a pass, one error for a failure."""
    if passed:
        return [NotebookNode(output_type="stream", name="stdout", text=message + "\n")]
    lines = message.splitlines() or ["failed"]
    return [NotebookNode(output_type="error", ename="HiddenTestFailure", evalue=lines[0],
                         traceback=["HiddenTestFailure: hidden tests failed", *lines])]


def partial_outputs(message: str, score: float) -> list[NotebookNode]:
    """Partial credit as nbgrader reads it: the message, then the score as the cell's value."""
    return [NotebookNode(output_type="stream", name="stdout", text=message + "\n"),
            NotebookNode(output_type="execute_result", execution_count=None, metadata={},
                         data={"text/plain": repr(score)})]


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cnn-verdicts")


def verdict_budget(limits: Limits, assignment: Assignment) -> float:
    """Seconds the verdicts of one submission may take in all, before the grader gives up waiting."""
    from cnngrader.sandbox.verdicts import HELLO_SECONDS

    return len(assignment.functions) * (limits.wall_seconds + HELLO_SECONDS + 10) + 60


def start_verdicts(nb: NotebookNode, resources: ResourcesDict, parent: Any) -> Future:
    """Start the sandboxed verdict run for ``nb`` in the background."""
    from cnngrader.sandbox.verdicts import run_verdicts

    data = hidden_data(_assignment(resources))
    limits = for_assignment(from_config(parent.config), data.spec)
    workdir = resources.get("metadata", {}).get("path")
    snapshot = copy.deepcopy(nb)
    group = submission_group(resources, limits)
    return _POOL.submit(run_verdicts, snapshot, Path(workdir) if workdir else None, data, limits, None, group)


class RestoreCells(NbGraderPreprocessor):
    """Put back deleted read-only and graded cells, and drop cells that pretend to be graded.

    nbgrader's own ``add_missing_cells`` looks for the deleted cell's
    predecessor among graded cells only, and crashes when it is a read-only
    check cell. Here the release notebook gives the order: each missing
    release cell goes back after the nearest release cell the student kept.
    The restored test cells get their hidden parts from the gradebook in the
    ``OverwriteCells`` step that follows.

    A test cell exactly as released also gets its hidden part back here,
    from the source notebook: nbgrader's checksum is computed with the hidden
    tests in, so an untouched cell would otherwise be reported as changed
    ("Attribute 'checksum' ... has changed!") in every correct submission.
    A cell the student really edited still differs and is still reported.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        assignment = _assignment(resources)
        release = paths.release_notebook(assignment)
        if not release.exists():
            return nb, resources
        ref_cells = _release_cells(str(release), release.stat().st_mtime)
        source = paths.source_notebook(assignment)
        if source.exists():
            released = {grade_id(c): c.source for c in ref_cells}
            full = _source_cells(str(source), source.stat().st_mtime)
            for cell in nb.cells:
                gid = grade_id(cell)
                if gid in full and is_test_cell(cell) and cell.get("source") == released.get(gid):
                    cell.source = full[gid]
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


@lru_cache(maxsize=4)
def _source_cells(path: str, mtime: float) -> dict[str, str]:
    """The source notebook's test cells, hidden tests included, by grade id."""
    import nbformat

    return {grade_id(c): c.source for c in nbformat.read(path, as_version=4).cells if is_test_cell(c)}


@lru_cache(maxsize=4)
def _release_markdown(path: str, mtime: float) -> frozenset[str]:
    """The source of every markdown cell of the release: lesson text the course itself wrote."""
    import nbformat

    return frozenset(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")


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
                cell.outputs[k] = _note("output removed: it quoted hidden test source")
                replaced += 1
    return replaced


class TrustedVerdicts(NbGraderPreprocessor):
    """Score graded test cells from sandboxed runs judged outside the student's process."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        started = time.monotonic()
        assignment = spec.load(_assignment(resources))
        limits = for_assignment(from_config(self.config), assignment)
        try:
            future = resources.get("cnn", {}).pop("verdicts", None)
            if future is None:  # SandboxedExecute did not run (another Execute is configured)
                future = start_verdicts(nb, resources, self)
            try:
                run = future.result(timeout=verdict_budget(limits, assignment))
            except FutureTimeout:
                run = _gave_up(limits, assignment)
            registry = assignment.by_grade_id()
            t = translator(_assignment(resources))
            for cell in nb.cells:
                if not is_test_cell(cell):
                    continue
                verdict = run.verdicts.get(grade_id(cell))
                if verdict is None:
                    # A graded cell with no trusted check cannot be trusted: it scores nothing.
                    cell.outputs = verdict_outputs(False, str(render(Msg(
                        "this test cell is not part of the course's hidden checks"), t)))
                elif verdict.passed:
                    check = registry[verdict.grade_id]
                    cell.outputs = verdict_outputs(True, str(render(Msg(
                        "Hidden tests passed: {function} - {prop}", function=check.function,
                        prop=Msg(check.prop, "spec")), t)))
                elif verdict.fraction:
                    points = float(cell.metadata.get("nbgrader", {}).get("points") or 0)
                    cell.outputs = partial_outputs(verdict.text(t), round(points * verdict.fraction, 2))
                else:
                    cell.outputs = verdict_outputs(False, verdict.text(t))
            scrub_hidden_text(nb)
            group = resources.get("cnn", {}).get("group")
            if group is not None:
                group.kill()
                usage = group.usage()
                resources["cnn"]["memory_peak"] = usage.memory_peak
            self._record(resources, run, time.monotonic() - started, assignment, t)
        finally:
            release_submission_group(resources)
        return nb, resources

    def _record(self, resources: ResourcesDict, run: Any, seconds: float, spec_: Assignment,
                t: Translator | None = None) -> None:
        """Save the grading record; failure messages and notes in the words the student read."""
        import resource

        info = resources.get("nbgrader", {})
        student, assignment = info.get("student"), info.get("assignment")
        if not student or not assignment:
            return
        from cnngrader.core.record import CellResult, Record, save
        from cnngrader.sandbox.verdicts import LIMIT_CODES

        cnn = resources.get("cnn", {})
        codes = dict(run.process_codes)
        save(Record(
            student=student,
            assignment=assignment,
            status="graded",
            attention=[str(render(note, t)) for note in cnn.get("attention", [])],
            sandboxed=run.sandboxed,
            cgroups=bool(cnn.get("cgroups")),
            kernel=cnn.get("kernel", "not run"),
            submission_memory_peak=cnn.get("memory_peak"),
            grader_maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            functions=codes,
            function_notes=dict(run.process_notes),
            function_cpu_seconds=dict(run.cpu),
            limits_hit={fn: code for fn, code in codes.items() if code in LIMIT_CODES},
            wall_timeouts=list(run.wall_timeouts),
            errors=list(run.errors),
            cells={gid: CellResult(v.passed, v.translated_failures(t), *_function_prop(spec_, gid), v.fraction)
                   for gid, v in run.verdicts.items()},
            verdict_wait_seconds=round(seconds, 3),
        ))


def _function_prop(assignment: Assignment, grade_id: str) -> tuple[str, str]:
    check = assignment.by_grade_id().get(grade_id)
    return (check.function, check.prop) if check else ("", "")


def _gave_up(limits: Limits, assignment: Assignment) -> Any:
    from cnngrader.core.judge import failed
    from cnngrader.sandbox.verdicts import GradingRun

    note = Msg("grading did not finish within {seconds:.0f} s", seconds=verdict_budget(limits, assignment))
    run = GradingRun({}, sandboxed=False)
    for check in assignment.checks:
        run.verdicts[check.grade_id] = failed(check, "grading_gave_up", note)
    run.process_notes = dict.fromkeys(assignment.function_names, note)
    run.process_codes = dict.fromkeys(assignment.function_names, "grading_gave_up")
    run.errors.append(note)
    return run


# --------------------------------------------------------------------------
# Sanitizing what a browser will render
# --------------------------------------------------------------------------

#: Output types kept as they are; HTML is kept after sanitizing; everything else is dropped.
SAFE_MIME = ("text/plain", "image/png", "image/jpeg", "image/gif")
_IMAGE = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_SCRIPT_URL = re.compile(r"(?i)(java|vb|live)\s*script\s*:|data\s*:\s*text/html")


def clean_html(html: str) -> str:
    """Sanitize an HTML fragment: no scripts, no event handlers, no script URLs, no styles that run code."""
    import nh3

    return nh3.clean(html, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


def clean_markdown(text: str) -> str:
    """Student-written markdown: raw HTML sanitized and script links neutralized."""
    return _SCRIPT_URL.sub("blocked:", clean_html(text))


def _clean_bundle(data: dict) -> dict:
    out = {}
    for mime, value in data.items():
        text = "".join(value) if isinstance(value, list) else value
        if not isinstance(text, str):
            continue
        if mime == "text/plain":
            out[mime] = text
        elif mime in ("image/png", "image/jpeg", "image/gif") and _IMAGE.match(text):
            out[mime] = text
        elif mime == "text/html":
            out[mime] = clean_html(text)
    if not out:
        out["text/plain"] = "[output of a type that feedback does not show]"
    return out


class SanitizeOutputs(NbGraderPreprocessor):
    """Make the autograded notebook safe to render in a student's or an instructor's browser."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        limits = from_config(self.config)
        assignment = _assignment(resources)
        release = paths.release_notebook(assignment)
        lesson = _release_markdown(str(release), release.stat().st_mtime) if release.exists() else frozenset()
        for cell in nb.cells:
            kind = cell.get("cell_type")
            if kind == "markdown":
                if cell.source not in lesson:
                    cell.source = clean_markdown(cell.source)
                attachments = cell.get("attachments") or {}
                for name in list(attachments):
                    bundle = {k: v for k, v in attachments[name].items() if k in SAFE_MIME[1:]}
                    if bundle:
                        attachments[name] = bundle
                    else:
                        del attachments[name]
            elif kind == "raw":
                # A raw cell marked text/html would be pasted into the page as it is.
                keep = {"nbgrader": cell.metadata["nbgrader"]} if "nbgrader" in cell.metadata else {}
                cell.metadata = NotebookNode(keep)
            elif kind == "code" and not is_test_cell(cell):
                for out in cell.get("outputs", []):
                    if "data" in out:
                        out["data"] = NotebookNode(_clean_bundle(out["data"]))
                        out["metadata"] = NotebookNode({})
                    if out.get("output_type") == "stream" and not isinstance(out.get("text"), str):
                        out["text"] = "".join(out.get("text") or [])
        cap_outputs(nb, limits.max_output_bytes, limits.max_notebook_output_bytes)
        return nb, resources


class SaveAutoGradesOnce(SaveAutoGrades):
    """nbgrader's SaveAutoGrades with one query and one commit per notebook.

    The stock preprocessor looks every grade and comment up with its own
    query and commits after each cell: about 50 commits per submission, each
    an fsync on SQLite, a third of a submission's CPU in the grader. The
    values written are exactly the stock ones (a test compares them).
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        from nbgrader.api import Comment, Grade, Gradebook
        from sqlalchemy.orm import selectinload

        meta = resources["nbgrader"]
        with Gradebook(meta["db_url"]) as gb:
            submitted = gb.find_submission_notebook(meta["notebook"], meta["assignment"], meta["student"])
            grades = {g.name: g for g in gb.db.query(Grade).options(selectinload(Grade.cell))
                      .filter(Grade.notebook_id == submitted.id)}
            comments = {c.name: c for c in gb.db.query(Comment).options(selectinload(Comment.cell))
                        .filter(Comment.notebook_id == submitted.id)}
            for cell in nb.cells:
                if not nbutils.is_grade(cell) and not nbutils.is_solution(cell) and not nbutils.is_task(cell):
                    continue
                grade_id_ = cell.metadata["nbgrader"]["grade_id"]
                if nbutils.is_grade(cell):
                    grade = grades[grade_id_]
                    grade.auto_score, _ = nbutils.determine_grade(cell, self.log)
                    # A manual score, or no automatic one, still needs a human (as in nbgrader).
                    grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
                if nbutils.is_solution(cell) or nbutils.is_task(cell):
                    unchanged = cell.metadata.nbgrader.get("checksum", None) == nbutils.compute_checksum(cell)
                    comments[grade_id_].auto_comment = (
                        "No response." if unchanged and not nbutils.is_task(cell) else None)
            gb.db.commit()
        return nb, resources
