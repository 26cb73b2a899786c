"""Trusted verdicts: run each graded function in a sandbox of its own and judge the outputs here.

For one submission this module starts a sandboxed zygote (:mod:`cnngrader.sandbox.runner`)
and, for each graded function in turn, asks it for a fresh function runner in
namespaces of its own. Over a socket that only the runner holds it sends that
function's cells, checks, limits and hidden *inputs*; the expected outputs and
the reference helpers' code never enter a student's sandbox (helpers answer
calls from a separate sandboxed server). Results come back over the same
socket, read here with a byte cap and a deadline, and are decoded with the
bounded codec and judged in this process.

Each function's processes live in a cgroup of their own inside the
submission's, so its time limit is CPU time (:mod:`cnngrader.sandbox.cgroups`); a
wall-clock deadline is only a backstop, and a backstop hit while the machine
is busy is flagged for a retry alone.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from cnngrader.core import codec
from cnngrader.core.hidden_data import HiddenData
from cnngrader.core.i18n import N_, Msg
from cnngrader.core.judge import Verdict, failed, judge, probe_failure
from cnngrader.core.reference import grade_id, is_test_cell
from cnngrader.core.spec import Check
from cnngrader.sandbox import runner
from cnngrader.sandbox.bwrap import bwrap_argv, limit_argv, sandbox_status, warn_if_off
from cnngrader.sandbox.cgroups import Group
from cnngrader.sandbox.limits import Limits, from_config

log = logging.getLogger("cnngrader.sandbox.verdicts")

_PACKAGE = Path(__file__).resolve().parents[1]
#: The package files a sandbox may see: the runner and the two modules it imports.
#: The only grader files a sandbox sees, by their place in the package; bound flat into /run/cnn/grader.
SANDBOX_FILES = ("sandbox/runner.py", "core/codec.py", "sandbox/jail.py")
#: Seconds the grader waits for a new sandbox process to say hello.
HELLO_SECONDS = 30.0


@dataclass
class GradingRun:
    verdicts: dict[str, Verdict]
    sandboxed: bool
    cgroups: bool = False
    #: Per function: "ok" or the reason its process stopped early (words for the student).
    process_notes: dict[str, str] = field(default_factory=dict)
    #: Per function: the same outcome as a code ("ok", "cpu_limit", "memory_limit", ...).
    process_codes: dict[str, str] = field(default_factory=dict)
    #: Functions whose wall-clock backstop was hit while under their CPU limit.
    wall_timeouts: list[str] = field(default_factory=list)
    #: Instructor-only notes (a sandbox that failed to start, ...).
    errors: list[str] = field(default_factory=list)
    #: CPU seconds each function used, as measured by its cgroup or rusage.
    cpu: dict[str, float] = field(default_factory=dict)


@dataclass
class FunctionRun:
    problems: list[dict] = field(default_factory=list)
    results: dict[str, list[dict]] = field(default_factory=dict)
    note: str = "ok"
    code: str = "ok"
    wall_timeout: bool = False
    cpu: float = 0.0
    error: str | None = None
    #: Timed checks: the runner's measurements, and the results of the calls it timed, by grade id.
    timings: dict[str, dict] = field(default_factory=dict)
    timed_results: dict[str, list[dict]] = field(default_factory=dict)
    #: Timed checks whose calls did not come back one result per input.
    timed_broken: set[str] = field(default_factory=set)


def student_cells(nb: NotebookNode, skip_tags: tuple[str, ...] = ("gradient-check",)) -> list[str]:
    """The code the sandbox runs: every code cell except tests, visible checks and tagged experiments.

    Student-added cells are kept (helpers defined there still work); graded
    test cells, the read-only ``check_*`` cells and the cells carrying one of
    the assignment's ``skip_tags`` (gradient checks, timing runs, training
    runs) are left out because they only call the functions, and a hang there
    must not cost every function.
    """
    return [cell.get("source", "") for cell in _student_code_cells(nb, skip_tags)]


def _student_code_cells(nb: NotebookNode, skip_tags: tuple[str, ...] = ("gradient-check",)) -> list[NotebookNode]:
    out = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if is_test_cell(cell) or str(grade_id(cell) or "").startswith(("check_", "test_")):
            continue
        if set(skip_tags) & set(cell.get("metadata", {}).get("tags") or []):
            continue
        out.append(cell)
    return out


def _signal_name(sig: Any) -> str:
    try:
        return signal.Signals(int(sig)).name
    except (ValueError, TypeError):
        return Msg("an unknown signal")


NOT_GRADED = ("not_graded", Msg("was not graded: the grading process stopped before reaching it"))
#: Process outcomes that mean a resource limit was reached (the record lists them as limits hit).
LIMIT_CODES = frozenset({"cpu_limit", "wall_timeout", "memory_limit", "result_too_large"})


def process_outcome(status: dict | None, limits: Limits, oom: bool) -> tuple[str, str]:
    """Why a function's process stopped early, as ``(code, words)`` from a fixed vocabulary."""
    mem = _format_bytes(limits.memory_bytes)
    if status is None:
        return NOT_GRADED
    kind = status.get("status")
    if oom:
        return "memory_limit", Msg("exceeded the {memory} memory limit", memory=mem)
    if kind == "cpu":
        return "cpu_limit", Msg("exceeded the {seconds} s CPU limit", seconds=limits.cpu_seconds)
    if kind == "timeout":
        return "wall_timeout", Msg("timed out after {seconds:g} s", seconds=limits.wall_seconds)
    if kind == "too_large":
        return "result_too_large", Msg("sent back more than the {size} result limit",
                                       size=_format_bytes(limits.result_bytes))
    if kind == "protocol":
        return "timing_protocol", Msg("was stopped: it asked for a timed input before answering the last one")
    if kind == "signal":
        sig = status.get("code")
        cpu = status.get("cpu")
        # RLIMIT_CPU ends in SIGXCPU or SIGKILL; a SIGKILL with CPU to spare came from the code itself.
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and isinstance(cpu, int | float)
                                     and cpu >= limits.cpu_seconds - 0.5):
            return "cpu_limit", Msg("exceeded the {seconds} s CPU limit", seconds=limits.cpu_seconds)
        return "crashed", Msg("process crashed with signal {signal}", signal=_signal_name(sig))
    code = status.get("code")
    if code == runner.SETUP_FAILED:
        return "load_failed", Msg("the grading process failed while loading your code")
    if code == 0:
        return "ok", "ok"
    return "exited", Msg("process exited with status {status}", status=int(code) if isinstance(code, int) else "?")


def process_note(status: dict | None, limits: Limits, oom: bool) -> str:
    """The words of :func:`process_outcome`."""
    return process_outcome(status, limits, oom)[1]


def _format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return Msg("{n} bytes", n=n)


class Zygote:
    """A sandboxed zygote with NumPy loaded; each graded function gets its own runner from it.

    The zygote's sandbox binds nothing but the runner's three files: it holds
    no student files, no hidden data and no reference code, so one zygote
    serves every submission a grading process handles (:func:`shared_zygote`).
    Each runner receives its function's files, inputs and helpers over its own socket.
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self.sandboxed, _ = sandbox_status()
        self._tmp = tempfile.TemporaryDirectory(prefix="cnn-verdict-")
        self.control, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        files = [(str(_PACKAGE / name), f"/run/cnn/grader/{Path(name).name}", False) for name in SANDBOX_FILES]
        if self.sandboxed:
            cmd = bwrap_argv(files, cwd="/", tmp_bytes=limits.tmp_bytes, shm_bytes=limits.shm_bytes,
                             dirs=(runner.HOME,))
            cmd += [sys.executable, "-E", "-s", "/run/cnn/grader/runner.py", str(child.fileno())]
        else:
            warn_if_off()
            cmd = [sys.executable, "-E", "-s", str(_PACKAGE / "sandbox" / "runner.py"), str(child.fileno())]
        # The zygote runs no student code and lives as long as this process: the limits
        # only bound its own footprint, and each child sets its own CPU limit.
        cmd = limit_argv(limits.memory_bytes, None, limits.max_file_bytes) + cmd
        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
        # CNN_DEBUG_SANDBOX=1 shows the sandbox's own errors (never student output, which goes nowhere).
        err = None if os.environ.get("CNN_DEBUG_SANDBOX") else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err, pass_fds=(child.fileno(),), start_new_session=True)
        child.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            self.control.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------
    def _paths(self, function: str) -> dict[str, Any]:
        if self.sandboxed:
            return {"home": runner.HOME, "jail": True}
        home = Path(tempfile.mkdtemp(prefix=f"home-{function}-", dir=self._tmp.name))
        return {"home": str(home), "jail": False}

    def _fork(self, kind: str, fds: list[int]) -> None:
        socket.send_fds(self.control, [json.dumps({"kind": kind}).encode()], fds)

    def _hello(self, chan: socket.socket, deadline: float) -> int | None:
        """Wait for a new process's hello; the kernel tells us its pid (translated to our namespace)."""
        left = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([chan], [], [], left)
        if not ready:
            return None
        data, ancdata, _, _ = chan.recvmsg(codec.FRAME_HEAD.size, socket.CMSG_SPACE(struct.calcsize("3i")))
        if not data:
            return None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _, _ = struct.unpack("3i", payload[:12])
                return pid
        return None

    def run_function(self, function: str, job: dict, inputs: bytes, helper_sources: dict[str, str] | None,
                     group: Group | None, files: bytes = b"", timing: dict | None = None) -> FunctionRun:
        """Run one function's checks in a fresh runner; never raises for anything the student does."""
        limits = self.limits
        out = FunctionRun()
        chan, chan_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        chan.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        extra: list[socket.socket] = [chan_child]
        hchan = None
        try:
            fds = [chan_child.fileno()]
            if helper_sources:
                hchan, hchild = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                hchan.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
                student_end, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                extra += [hchild, student_end, server_end]
                self._fork("helper", [hchild.fileno(), server_end.fileno()])
                fds.append(student_end.fileno())
            self._fork("function", fds)
        except OSError as exc:
            out.code, out.note = NOT_GRADED
            out.error = f"could not reach the grading zygote ({type(exc).__name__})"
            for s in extra + [chan]:
                s.close()
            return out
        for s in extra:
            s.close()
        try:
            if hchan is not None:
                pid = self._hello(hchan, time.monotonic() + HELLO_SECONDS)
                if pid is None:
                    out.code, out.note = NOT_GRADED
                    out.error = "the helper server did not start"
                    return out
                if group is not None:
                    group.add(pid)
                hjob = {"sources": helper_sources, "limits": limits.sandbox_job(), **self._paths(function)}
                hchan.sendall(codec.frame(b"J", json.dumps(hjob).encode()))
            pid = self._hello(chan, time.monotonic() + HELLO_SECONDS)
            if pid is None:
                out.code, out.note = NOT_GRADED
                out.error = "the function runner did not start"
                return out
            if group is not None:
                group.add(pid)
            job = {**job, "limits": limits.sandbox_job(), **self._paths(function)}
            chan.sendall(codec.frame(b"J", json.dumps(job).encode()) + codec.frame(b"I", inputs)
                         + codec.frame(b"F", files or pack_files([]))
                         # Read by the runner only after it has forked the student process.
                         + (codec.frame(b"X", json.dumps(timing).encode()) if job.get("timed_ids") else b""))
            self._collect(chan, job, group, out, time.monotonic() + limits.wall_seconds + 5)
        finally:
            for s in (chan, hchan):
                if s is not None:
                    s.close()
            if group is not None:
                usage = group.usage()
                out.cpu = max(out.cpu, usage.cpu_seconds)
                if usage.oom_kills and out.note != "ok":
                    out.code, out.note = process_outcome({"status": "signal"}, limits, oom=True)
                group.kill()
        out.cpu = round(out.cpu, 3)
        return out

    def _collect(self, chan: socket.socket, job: dict, group: Group | None, out: FunctionRun,
                 deadline: float) -> None:
        limits = self.limits
        checks = job["checks"]
        reader = codec.FrameReader(max_frame=limits.result_bytes + 8)
        budget = (limits.result_bytes + 64) * (len(checks) + 2)
        received = 0
        status: dict | None = None
        while status is None:
            now = time.monotonic()
            if group is not None and group.cpu_seconds() > limits.cpu_seconds:
                status = {"status": "cpu"}
                break
            if now > deadline:
                status = {"status": "timeout"}
                break
            ready, _, _ = select.select([chan], [], [], min(0.1, max(0.0, deadline - now)))
            if not ready:
                continue
            try:
                chunk = chan.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            received += len(chunk)
            if received > budget:
                status = {"status": "too_large"}
                break
            reader.feed(chunk)
            for kind, payload in reader.frames():
                if kind == b"P":
                    out.problems = _parse_problems(payload)
                elif kind == b"R" and len(payload) >= 4:
                    (seq,) = struct.unpack("<I", payload[:4])
                    if seq < len(checks):
                        out.results[checks[seq]] = _parse_results(payload[4:], limits)
                elif kind == b"K" and len(payload) >= 4:
                    (seq,) = struct.unpack("<I", payload[:4])
                    if seq < len(checks) and checks[seq] in job.get("timed_ids", {}):
                        answer = _parse_results(payload[4:], limits)
                        if len(answer) == 1:
                            out.timed_results.setdefault(checks[seq], []).extend(answer)
                        else:  # one input, one result: anything else is not a timed call
                            out.timed_broken.add(checks[seq])
                elif kind == b"T":
                    timing = _parse_timing(payload, checks)
                    if timing is not None:
                        out.timings[timing["grade_id"]] = timing
                elif kind == b"S":
                    status = _parse_status(payload)
                elif kind == b"F":
                    out.error = _instructor_text(payload)
                    status = {"status": "setup"}
            if reader.error:
                status = {"status": "too_large"}
        if status is not None and status.get("status") == "setup":
            out.code, out.note = "setup_failed", Msg("was not graded: the grading sandbox could not be set up")
            return
        oom = bool(group is not None and group.usage().oom_kills)
        code, note = process_outcome(status, limits, oom)
        if status is not None and isinstance(status.get("cpu"), int | float):
            out.cpu = float(status["cpu"])
        if status is not None and status.get("status") == "timeout":
            # Busy but short of its CPU limit when the clock ran out: the machine may have been
            # loaded, so a regrade alone decides. A process that mostly slept is not retried.
            cpu = group.cpu_seconds() if group is not None else out.cpu
            out.wall_timeout = out.wall_timeout or (limits.cpu_seconds > cpu >= 0.1 * limits.wall_seconds)
        out.code, out.note = code, note


_SHARED: dict[Limits, Zygote] = {}
_SHARED_LOCK = threading.Lock()


def shared_zygote(limits: Limits) -> Zygote:
    """This process's zygote for ``limits``, started on first use and restarted if it died."""
    with _SHARED_LOCK:
        zygote = _SHARED.get(limits)
        if zygote is None or not zygote.alive():
            if zygote is not None:
                zygote.close()
            zygote = _SHARED[limits] = Zygote(limits)
        return zygote


def pack_files(files: list[tuple[str, bytes]]) -> bytes:
    """The frame that carries a submission's files to a function runner (see ``runner._write_files``)."""
    head = json.dumps([[rel, len(data)] for rel, data in files]).encode()
    return struct.pack("<I", len(head)) + head + b"".join(data for _, data in files)


def submission_files(workdir: Path | None, limits: Limits) -> bytes:
    """The files a function's code may open, read from the graded copy without following links, within caps."""
    from cnngrader.sandbox.staging import read_regular

    files: list[tuple[str, bytes]] = []
    if workdir is None or not Path(workdir).is_dir():
        return pack_files(files)
    total = 0
    pending = [(Path(workdir), "", 0)]
    while pending:
        folder, prefix, depth = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if entry.is_symlink() or entry.name == ".ipynb_checkpoints":
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < limits.max_depth:
                    pending.append((Path(entry.path), rel + "/", depth + 1))
                continue
            if rel.endswith(".ipynb") or len(files) >= limits.max_files * 2:
                continue
            try:
                data = read_regular(Path(entry.path), limits.max_upload_file_bytes)
            except OSError:
                continue
            if total + len(data) > limits.max_submission_bytes * 2:
                continue
            total += len(data)
            files.append((rel, data))
    return pack_files(files)


def _parse_problems(payload: bytes) -> list[dict]:
    try:
        raw = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    problems = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        cell, line = item.get("cell"), item.get("line")
        problems.append({"cell": cell if isinstance(cell, int) else -1,
                         "error": item.get("error") if isinstance(item.get("error"), str) else "custom",
                         "syntax": item.get("syntax") is True,
                         "line": line if isinstance(line, int) else None})
    return problems[:1000]


def _parse_results(payload: bytes, limits: Limits) -> list[dict]:
    try:
        results = codec.loads(payload, max_bytes=limits.result_bytes)
    except codec.Unreadable as exc:
        return [{"status": "error", "error": "unreadable", "why": exc.reason}]
    except Exception:  # noqa: BLE001 - a malformed result fails, never crashes the grader
        return [{"status": "error", "error": "unreadable", "why": "the result is not in the expected format"}]
    if not isinstance(results, list):
        return [{"status": "error", "error": "unreadable", "why": "the result is not in the expected format"}]
    return [r if isinstance(r, dict) else {"status": "error", "error": "unreadable",
                                           "why": "the result is not in the expected format"} for r in results]


def _parse_timing(payload: bytes, checks: list[str]) -> dict | None:
    """The runner's own timing frame (the runner is trusted; the shape is checked anyway)."""
    try:
        info = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(info, dict) or info.get("grade_id") not in checks:
        return None
    seconds = [info.get("loop_seconds"), info.get("fast_seconds")]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in seconds):
        return None
    calls = info.get("calls")
    return {"grade_id": info["grade_id"], "loop_seconds": float(seconds[0]), "fast_seconds": float(seconds[1]),
            "calls": calls if isinstance(calls, int) and not isinstance(calls, bool) else 0,
            "broken": info.get("broken") is not False}


def _parse_status(payload: bytes) -> dict:
    try:
        status = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {"status": "exit", "code": -1}
    return status if isinstance(status, dict) else {"status": "exit", "code": -1}


def _instructor_text(payload: bytes) -> str:
    try:
        info = json.loads(payload.decode("utf-8"))
        return f"{info.get('error')}: {info.get('detail')}"[:400]
    except (ValueError, UnicodeDecodeError, AttributeError):
        return "unknown setup failure"


def run_verdicts(nb: NotebookNode, workdir: Path | None, data: HiddenData, limits: Limits | None = None,
                 functions: list[str] | None = None, group: Group | None = None) -> GradingRun:
    """Grade every hidden check of ``nb``; ``workdir`` supplies files the code may import."""
    limits = limits or from_config()
    assignment = data.spec
    checks = [c for c in assignment.checks if functions is None or c.function in functions]
    by_fn: dict[str, list[Check]] = {}
    for check in checks:
        by_fn.setdefault(check.function, []).append(check)
    code_cells = _student_code_cells(nb, assignment.skip_tags)
    cells = [c.get("source", "") for c in code_cells]
    sandboxed, _ = sandbox_status()
    run = GradingRun({}, sandboxed, cgroups=group is not None)
    probes = assignment.probes()
    files = submission_files(workdir, limits)
    zygote = shared_zygote(limits)
    for fn, fn_checks in by_fn.items():
        probe = probes.get(fn)
        ids = ([probe.grade_id] if probe else []) + [c.grade_id for c in fn_checks]
        inputs = {gid: [args for _, args, _ in data.cases(gid)] for gid in ids}
        spec_fn = assignment.function(fn)
        job = {"function": fn, "cells": cells, "checks": ids, "helpers": list(spec_fn.helpers),
               "blocked": list(spec_fn.blocked)}
        seeds, timing = timed_job(job, assignment, fn_checks)
        helper_sources = {h: data.helpers[h] for h in spec_fn.helpers} or None
        fn_group = group.child(f"fn-{fn}", memory=limits.memory_bytes, pids=limits.pids) if group else None
        result = zygote.run_function(fn, job, codec.dumps(codec.to_args(inputs)), helper_sources, fn_group, files,
                                     timing)
        run.process_notes[fn] = result.note
        run.process_codes[fn] = result.code
        run.cpu[fn] = result.cpu
        if result.wall_timeout:
            run.wall_timeouts.append(fn)
        if result.error:
            run.errors.append(f"{fn}: {result.error}")
            log.error("grading sandbox problem for %s: %s", fn, result.error)
        context = _Context(fn, code_cells, result.problems, _format_bytes(limits.memory_bytes), spec_fn.blocked)
        probe_note = None
        if probe and probe.grade_id in result.results:
            probe_note = probe_failure(probe, data.cases(probe.grade_id), result.results[probe.grade_id])
        charged: set[str] = set()
        for check in fn_checks:
            items = data.cases(check.grade_id)
            if check.grade_id in seeds:
                measured = result.timings.get(check.grade_id)
                if measured is not None and check.grade_id in result.timed_broken:
                    measured = {**measured, "broken": True}
                items = timed_items(assignment, check, items, seeds[check.grade_id], measured)
            results = result.results.get(check.grade_id)
            if check.grade_id in seeds:
                # Only the calls the runner timed count: it relayed their results itself.
                results = result.timed_results.get(check.grade_id, []) if results is not None else None
            if results is None:
                results = [{"status": "error", "error": "process", "note": result.note, "code": result.code}] * len(items)
            skip = charged_gradients(check, charged)
            verdict = judge(check, items, results, context.describe_error, skip, scorer_for(assignment, check))
            if not verdict.passed and check.compare == "gradient" and set(check.gradients) < set(check.returns):
                charged |= set(check.gradients)
            if probe_note and verdict.passed:
                verdict = failed(check, "placeholder", probe_note)
            run.verdicts[check.grade_id] = verdict
    return run


def timed_job(job: dict, assignment: Any, checks: list[Check]) -> tuple[dict[str, int], dict | None]:
    """Mark a runner job's timed checks; return their fresh seeds and the runner's timing frame.

    The job (which the student process gets) names the timed checks and how
    many calls each makes. The seeds and the course's baseline go in a frame
    of their own that the runner reads only after forking the student
    process, so no copy of a seed ever exists in the student's memory.
    """
    import secrets

    timed = [c for c in checks if c.compare == "speedup"]
    if not timed:
        return {}, None
    seeds = {c.grade_id: secrets.randbits(62) for c in timed}
    job["timed_ids"] = {c.grade_id: c.repeats for c in timed}
    module, _, function = timed[0].baseline.partition(":")
    timing = {"timed": {c.grade_id: {"seed": seeds[c.grade_id], "repeats": c.repeats} for c in timed},
              "baseline": {"source": (assignment.source_folder / module).read_text(encoding="utf-8"),
                           "function": function}}
    return seeds, timing


def timed_items(assignment: Any, check: Check, items: list, seed: int, timing: dict | None) -> list:
    """The timed check's cases as the student saw them (fresh values) and what they are judged against."""
    from cnngrader.core.reference import load_reference

    describe, template, _ = items[0]
    fresh = runner.timed_inputs([template] * check.repeats, seed)
    reference = load_reference(assignment.notebook)[check.function]
    out = []
    for k, args in enumerate(fresh):
        # The judge sees inputs and expectations decoded, exactly as they travel.
        expected = codec.loads(codec.dumps(reference(*args)))
        # The speed is judged once, on the first call; every call must be right.
        out.append((describe, codec.loads(codec.dumps(args)), {"expected": expected,
                                                                "timing": timing if k == 0 else None,
                                                                "timed": k == 0}))
    return out


def scorer_for(assignment: Any, check: Check) -> Any:
    """The trusted scorer of a ``min_score`` check, bound to its instructor-only data (else None).

    A scorer is ``module:function`` in the assignment's grading folder, called
    as ``function(result, data_file, assignment)`` on the decoded result in
    this process, never in the student's.
    """
    if check.compare != "min_score":
        return None
    scorer = assignment.scorers[check.scorer]
    function = assignment.resolve(scorer.call)
    data = assignment.scorer_data(scorer)
    return lambda value: function(value, data, assignment)


def charged_gradients(check: Check, charged: set[str]) -> frozenset[str]:
    """Gradients a combined check leaves out because an earlier cell already charged them.

    A check that compares only some of a function's gradients charges them
    when it fails; a later check that compares all of them then leaves those
    out (conv_backward: a dA_prev formula bug is charged once, by the dA_prev
    cell, and the stride and pad = 0 cells compare only dW and db). If every
    gradient was already charged, there is nothing independent left to
    compare, and the cell is judged in full.
    """
    if check.compare != "gradient" or len(check.returns) < 2 or set(check.gradients) != set(check.returns):
        return frozenset()
    if set(check.returns) <= charged:
        return frozenset()
    return frozenset(charged)


class _Context:
    """What a failure message may say about the student's own cells (lines and syntax errors)."""

    def __init__(self, function: str, cells: list[NotebookNode], problems: list[dict], memory: str = "",
                 blocked: tuple[str, ...] = ()):
        self.function = function
        #: The runner's words for a blocked call, and the forward pass it names.
        self.blocked = {f"{function} must not call {f}": f for f in blocked}
        self.cells = cells
        self.problems = problems
        self.memory = memory

    def _defining_cell(self, name: str) -> int | None:
        pattern = f"def {name}("
        for k, cell in enumerate(self.cells):
            if grade_id(cell) == name or pattern in cell.get("source", ""):
                return k
        return None

    def syntax_error(self) -> str | None:
        k = self._defining_cell(self.function)
        for p in self.problems:
            if p["syntax"] and p["cell"] == k and k is not None:
                kind = (Msg("an indentation error") if p["error"] in ("IndentationError", "TabError")
                        else Msg("a syntax error"))
                lines = self.cells[k].get("source", "").count("\n") + 1
                where = (Msg(" at line {line}", line=p["line"])
                         if isinstance(p["line"], int) and 0 < p["line"] <= lines else "")
                return Msg("the cell that defines {function} has {kind}{where}, so it could not run",
                           function=self.function, kind=kind, where=where)
        return None

    def line_ok(self, line: Any) -> bool:
        k = self._defining_cell(self.function)
        if k is None or not isinstance(line, int):
            return False
        return 0 < line <= self.cells[k].get("source", "").count("\n") + 1

    def describe_error(self, result: dict) -> tuple[str, str]:
        """A failure code and a student-facing reason for a failed call, from a fixed vocabulary."""
        error = result.get("error")
        if error == "process":
            note, code = result.get("note"), result.get("code")
            if isinstance(note, str):
                return (code if isinstance(code, str) else "not_graded"), note
            return "not_graded", Msg("the grading process stopped")
        if error == "not_defined":
            syntax = self.syntax_error()
            return ("syntax_error", syntax) if syntax else ("not_defined", Msg("{function} is not defined",
                                                                                 function=self.function))
        if error == "unreadable":
            why = result.get("why")
            return "unreadable_result", (Msg("returned a result that could not be read ({why})", why=Msg(why))
                                         if why in _UNREADABLE else Msg("returned a result that could not be read"))
        if error == "unencodable":
            return "unreadable_result", Msg("returned a value that cannot be read")
        if error == "forward_called":
            name = result.get("name")
            if isinstance(name, str) and name in self.blocked:
                return "forward_called", Msg("{function} must not call {forward} (backward passes are graded on "
                                             "their own: use the cache, not the forward pass)",
                                             function=self.function, forward=self.blocked[name])
            return "forward_called", Msg("called a forward pass, which a backward pass must not do")
        if error == "NotImplementedError":
            return "not_implemented", Msg("is not implemented yet (raised NotImplementedError)")
        if error == "MemoryError":
            return "memory_limit", (Msg("exceeded the {memory} memory limit (MemoryError)", memory=self.memory)
                                    if self.memory else Msg("ran out of memory (MemoryError)"))
        if error == "RecursionError":
            return "raised_RecursionError", Msg("raised RecursionError (infinite recursion?)")
        if isinstance(error, str) and error in _BUILTIN_EXCEPTIONS:
            line = result.get("line")
            where = Msg(" at line {line} of its cell", line=line) if self.line_ok(line) else ""
            return f"raised_{error}", Msg("raised {error}{where}", error=error, where=where)
        return "raised_own_exception", Msg("raised an exception of its own class")


def _builtin_exceptions() -> frozenset[str]:
    import builtins

    import numpy as np

    names = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    names |= {n for n in dir(np.exceptions) if n.endswith("Error")}
    return frozenset(names)


_BUILTIN_EXCEPTIONS = _builtin_exceptions()
_UNREADABLE = frozenset({
    N_("the result is larger than the size limit"), N_("the result is not in the expected format"),
    N_("the result's description is too large or cut off"), N_("the result's description is not valid"),
    N_("the result holds too many arrays"), N_("an array has a dtype that is not a number or a bool"),
    N_("an array has too many dimensions"), N_("an array has an impossible shape"), N_("malformed array table"),
    N_("an array is larger than the data sent"), N_("too many values"), N_("nested too deeply"), N_("malformed structure"),
})


def run_in_process(namespace: dict[str, Any], grade_id: str, data: HiddenData) -> Verdict:
    """Judge one check on functions already defined in ``namespace`` (instructor validation only).

    This is what the source notebook's hidden test regions run under
    ``nbgrader validate``; autograding never calls it.
    """
    check = data.spec.by_grade_id()[grade_id]
    items = data.cases(grade_id)
    helpers = reference_helpers(data.helpers, data.spec.function(check.function).helpers)
    if check.compare == "speedup":
        return _speedup_in_process(namespace, check, items, data, helpers)
    raw = runner.run_cases(namespace, check.function, [args for _, args, _ in items], helpers)
    # Round-trip through the codec so the judge sees exactly what the sandbox path would send.
    results = codec.loads(runner.encode_results(raw))
    blocked = data.spec.function(check.function).blocked
    return judge(check, items, results, _Context(check.function, [], [], "", blocked).describe_error,
                 scorer=scorer_for(data.spec, check))


def _speedup_in_process(namespace: dict[str, Any], check: Check, items: list, data: HiddenData,
                        helpers: dict[str, Any]) -> Verdict:
    """A timed check under validate: the same fresh inputs and baseline, timed in this one process."""
    seeds, frame = timed_job({}, data.spec, [check])
    baseline = runner._baseline(frame["baseline"])
    fresh = runner.timed_inputs([items[0][1]] * check.repeats, seeds[check.grade_id])
    loops = []
    for _ in range(2):
        start = time.perf_counter()
        baseline(*fresh[0])
        loops.append(time.perf_counter() - start)
    raw, calls = [], []
    for args in codec.loads(codec.dumps(fresh)):
        start = time.perf_counter()
        raw += runner.run_cases(namespace, check.function, [args], helpers)
        calls.append(time.perf_counter() - start)
    timing = {"loop_seconds": min(loops), "fast_seconds": statistics.median(calls), "calls": len(calls),
              "broken": False}
    results = codec.loads(runner.encode_results(raw))
    items = timed_items(data.spec, check, items, seeds[check.grade_id], timing)
    return judge(check, items, results, _Context(check.function, [], []).describe_error)


def reference_helpers(sources: dict[str, str], names: Any) -> dict[str, Any]:
    """Compile the reference versions of ``names`` in their own namespace (instructor side only)."""
    import numpy as np

    namespace: dict[str, Any] = {"np": np, "__name__": "reference"}
    names = list(names)
    for name in names:
        exec(compile(sources[name], f"<reference {name}>", "exec"), namespace)  # noqa: S102 - instructor code
    return {name: namespace[name] for name in names}
