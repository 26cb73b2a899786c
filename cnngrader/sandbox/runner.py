"""The in-sandbox side of trusted grading: a zygote, function runners and helper servers.

``python runner.py CONTROL_FD`` runs inside a bubblewrap sandbox that sees
no course files at all (started by :mod:`cnngrader.sandbox.verdicts`, once per grading
process). It imports NumPy once and then forks, on request, one of two kinds
of child. Each child reads its work (including the submission's files) from
its own socket, handed over by the grader through the zygote, so the zygote
itself never holds student files, hidden inputs or reference code.

**Function runner** (one per graded function)::

    grader ══ socket ══ runner (trusted, not dumpable, outside the student's namespaces)
                           │  pipe, read with a byte cap and a deadline
                           ▼
                        student process: PID 1 of fresh user/mount/PID/IPC/net
                        namespaces, private size-capped tmpfs, no capabilities

The runner receives this function's cells, check ids, limits and hidden
inputs, and nothing else. It forks the student process, forwards the result
frames it writes (tagged by the runner with their position, so a frame cannot
claim to be another check's), and adds a status frame of its own with how the
student process ended. Student code never sees the grader's socket: it is
closed in the student process, and the runner cannot be traced or inspected.

**Helper server** (only for functions graded with credit isolation): holds
the reference helpers in namespaces of its own and answers calls from the
student process over a socket pair. The student process gets a proxy
function per helper, never the code.

Only the standard library, NumPy, :mod:`codec` and :mod:`jail` are imported:
the rest of the package and the hidden expectations are not in the sandbox.
"""

from __future__ import annotations

import copy
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

try:
    from cnngrader.core import codec
    from cnngrader.sandbox import jail
except ImportError:  # running as a script inside the sandbox
    import codec  # type: ignore[no-redef]
    import jail  # type: ignore[no-redef]

#: Where each function's private copy of the submission's files lives (the grader passes
#: another folder when the sandbox is off).
HOME = "/home/student"
#: Frames a student process may send its runner.
MAX_JOB = 64 << 20
#: Lines that only make sense inside IPython; dropped before plain exec.
_MAGIC = re.compile(r"^\s*[%!]")

#: Exit code of a student process whose setup failed before any student code ran.
SETUP_FAILED = 70


class ForwardPassCalled(Exception):
    """Raised when a backward pass calls a forward pass it must not use."""


# --------------------------------------------------------------------------
# Running student code (also used in-process by cnngrader.sandbox.verdicts.run_in_process)
# --------------------------------------------------------------------------

def plain_python(source: str) -> str:
    """Strip IPython magics and shell escapes so a cell runs under ``exec``."""
    if source.lstrip().startswith("%%"):
        return ""
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


def exec_cells(sources: Iterable[str], namespace: dict[str, Any]) -> list[dict]:
    """Execute cells in order; a failing cell is reported and skipped, like a notebook run.

    Returns one problem per failing cell: its index, the exception's class
    name and, for syntax errors, the line. No message text is kept.
    """
    problems = []
    for n, src in enumerate(sources):
        try:
            code = compile(plain_python(src), f"<cell {n}>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            line = getattr(exc, "lineno", None)
            problems.append({"cell": n, "error": type(exc).__name__, "syntax": True,
                             "line": line if isinstance(line, int) else None})
            continue
        try:
            exec(code, namespace)  # noqa: S102 - student code, inside the sandbox
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything, even SystemExit
            problems.append({"cell": n, "error": exception_name(exc), "syntax": False, "line": None})
    return problems


def exception_name(exc: BaseException) -> str:
    """The class name of a built-in exception, or ``custom`` for any other class."""
    cls = type(exc)
    name = cls.__name__
    module = getattr(cls, "__module__", "")
    if module == "builtins" or (module.startswith("numpy") and name.endswith("Error")):
        return name
    return "custom"


def error_result(exc: BaseException) -> dict:
    """A failed call, as plain data from a fixed vocabulary (never the exception's message)."""
    if isinstance(exc, ForwardPassCalled):
        return {"status": "error", "error": "forward_called", "name": str(exc.args[0]) if exc.args else ""}
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<cell "):
            line = tb.tb_lineno
        tb = tb.tb_next
    return {"status": "error", "error": exception_name(exc), "line": line}


_MISSING = object()


def run_cases(namespace: dict[str, Any], function: str, arg_list: list[Any],
              helpers: dict[str, Callable] | None = None) -> list[dict]:
    """Call ``namespace[function]`` on each argument tuple.

    ``helpers`` are swapped into the namespace for the duration of the calls
    (credit isolation) and the student's own versions are put back afterwards.
    """
    saved = {name: namespace.get(name, _MISSING) for name in (helpers or {})}
    namespace.update(helpers or {})
    try:
        results = []
        for args in arg_list:
            fn = namespace.get(function)
            if not callable(fn):
                results.append({"status": "error", "error": "not_defined"})
                continue
            try:
                value = fn(*codec.to_args(args))
                results.append({"status": "ok", "value": value})
            except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
                results.append(error_result(exc))
        return results
    finally:
        for name, old in saved.items():
            if old is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = old


def encode_results(results: list[dict]) -> bytes:
    """Encode results one by one, so one unencodable value fails only its own case."""
    safe = []
    for result in results:
        try:
            codec.dumps(result)
            safe.append(result)
        except BaseException:  # noqa: BLE001
            safe.append({"status": "error", "error": "unencodable"})
    return codec.dumps(safe)


def block_forward_passes(namespace: dict[str, Any], names: Iterable[str], caller: str) -> None:
    """Make the forward passes raise while a backward pass is graded.

    The function objects themselves are changed, so an alias kept under
    another name (``fwd = conv_forward``) raises as well.
    """
    for name in names:
        message = f"{caller} must not call {name}"

        # No global names in the body: the code is grafted onto the student's function objects,
        # whose globals are the student's namespace.
        def blocked(*args: Any, _message: str = message, _error: type = ForwardPassCalled, **kwargs: Any) -> Any:
            raise _error(_message)

        original = namespace.get(name)
        if callable(original) and hasattr(original, "__code__"):
            target = original.__code__  # read once: the loop below replaces it
            for value in list(namespace.values()):
                if getattr(value, "__code__", None) is target:
                    try:
                        value.__code__ = blocked.__code__
                        value.__defaults__ = None
                        value.__kwdefaults__ = {"_message": message, "_error": ForwardPassCalled}
                    except (AttributeError, TypeError, ValueError):
                        pass
        namespace[name] = blocked


# --------------------------------------------------------------------------
# Socket helpers
# --------------------------------------------------------------------------

def _send(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    sock.sendall(codec.frame(kind, payload))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("the grader closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket, max_bytes: int) -> tuple[bytes, bytes]:
    kind, length = codec.FRAME_HEAD.unpack(_recv_exact(sock, codec.FRAME_HEAD.size))
    if length > max_bytes:
        raise ValueError("frame too large")
    return kind, _recv_exact(sock, length)


def _write_files(frame: bytes, home: str) -> None:
    """Write the submission's files (sent by the grader) into this function's private home.

    The frame is a JSON list of ``[relative path, size]`` followed by the bytes.
    Paths with empty, ``.`` or ``..`` parts are skipped; nothing is followed
    through a link; a full tmpfs just leaves the rest out.
    """
    (head_len,) = struct.unpack_from("<I", frame)
    listing = json.loads(frame[4:4 + head_len])
    offset = 4 + head_len
    for rel, size in listing:
        data = frame[offset:offset + size]
        offset += size
        parts = rel.split("/")
        if not parts or any(p in ("", ".", "..") or "\0" in p for p in parts):
            continue
        folder = home
        try:
            for part in parts[:-1]:
                folder = os.path.join(folder, part)
                os.makedirs(folder, exist_ok=True)
            fd = os.open(os.path.join(folder, parts[-1]), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError:
            continue


# --------------------------------------------------------------------------
# The student process
# --------------------------------------------------------------------------

class _HelperProxy:
    """Calls a reference helper in the helper server, over the socket handed to this process."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def make(self, name: str) -> Callable:
        tag = name.encode()

        def proxy(*args: Any, **kwargs: Any) -> Any:
            message = (codec.dumps_flat(args) if not kwargs else None) or \
                codec.dumps({"args": list(args), "kwargs": kwargs})
            _send(self.sock, b"C", bytes([len(tag)]) + tag + message)
            kind, payload = _recv_frame(self.sock, codec.MAX_MESSAGE)
            if kind != b"V":
                raise RuntimeError(f"the reference {name} could not be called with these arguments")
            value = codec.to_args(codec.loads(payload))
            return value[0] if isinstance(value, tuple) and len(value) == 1 else value

        proxy.__name__ = name
        return proxy


def _student(job: dict, inputs: dict, out_fd: int, helper_fd: int | None, timed_fd: int | None = None) -> None:
    limits = job["limits"]
    keep = {out_fd} | ({helper_fd} if helper_fd is not None else set()) | ({timed_fd} if timed_fd is not None else set())
    # A session of its own: kill(0) and killpg reach only this process's own group.
    os.setsid()
    jail.close_fds_except(keep)
    if job["jail"]:
        jail.drop_privileges()
    jail.set_limits(limits["memory"], limits["cpu"], limits["fsize"])
    jail.quiet()
    os.chdir(job["home"])
    sys.path.insert(0, job["home"])
    out = os.fdopen(out_fd, "wb", buffering=0)

    def emit(kind: bytes, payload: bytes) -> None:
        out.write(codec.frame(kind, payload))

    import numpy as np

    namespace: dict[str, Any] = {"__name__": "__main__", "np": np}
    problems = exec_cells(job["cells"], namespace)
    emit(b"P", json.dumps(problems).encode())
    helpers = {}
    if helper_fd is not None:
        proxy = _HelperProxy(socket.socket(fileno=helper_fd))
        helpers = {name: proxy.make(name) for name in job["helpers"]}
    if job.get("blocked"):
        block_forward_passes(namespace, job["blocked"], job["function"])
    timed = job.get("timed_ids", {})
    for grade_id in job["checks"]:
        if grade_id in timed and timed_fd is not None:
            # A timed check's inputs exist only once the runner sends them, one call at a time, so
            # nothing can be computed ahead; the runner's clock runs from handing over each input
            # to receiving that call's result, and the runner relays these results, not ours.
            for _ in range(int(timed[grade_id])):
                emit(b"W", b"")
                _, payload = _read_frame_fd(timed_fd, MAX_JOB)
                args = codec.loads(payload, max_bytes=MAX_JOB)
                emit(b"K", encode_results(run_cases(namespace, job["function"], [args], helpers)))
            results = []
        else:
            results = run_cases(namespace, job["function"], inputs.get(grade_id, []), helpers)
        emit(b"R", encode_results(results))


def _read_frame_fd(fd: int, max_bytes: int) -> tuple[bytes, bytes]:
    def exact(n: int) -> bytes:
        chunks = []
        while n:
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise EOFError("the runner closed the timing pipe")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    kind, length = codec.FRAME_HEAD.unpack(exact(codec.FRAME_HEAD.size))
    if length > max_bytes:
        raise ValueError("frame too large")
    return kind, exact(length)


# --------------------------------------------------------------------------
# Timed checks: fresh inputs, a trusted baseline and the runner's clock
# --------------------------------------------------------------------------

def fresh_like(template: Any, rng: Any) -> Any:
    """``template`` with every float array replaced by standard normal values of the same shape."""
    import numpy as np

    if isinstance(template, np.ndarray) and template.dtype.kind == "f":
        return rng.standard_normal(template.shape)
    if isinstance(template, tuple):
        return tuple(fresh_like(t, rng) for t in template)
    if isinstance(template, list):
        return [fresh_like(t, rng) for t in template]
    if isinstance(template, dict):
        return {k: fresh_like(v, rng) for k, v in template.items()}
    return template


def timed_inputs(template_cases: list[Any], seed: int) -> list[Any]:
    """The inputs of a timed check: the hidden cases' shapes, with values nobody saw before grading."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [fresh_like(codec.to_args(case), rng) for case in template_cases]


def _baseline(spec: dict) -> Callable:
    """The course's own slow version (released code, read from the course copy, never the student's)."""
    import numpy as np

    namespace: dict[str, Any] = {"np": np, "__name__": "baseline"}
    exec(compile(spec["source"], "<baseline>", "exec"), namespace)  # noqa: S102 - course code, not student code
    return namespace[spec["function"]]


def _run_function(chan: socket.socket, helper_fd: int | None) -> int:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _send(chan, b"H")  # the grader learns this process's pid from the socket's credentials
    kind, header = _recv_frame(chan, MAX_JOB)
    if kind != b"J":
        return 2
    job = json.loads(header)
    kind, raw_inputs = _recv_frame(chan, MAX_JOB)
    inputs = codec.loads(raw_inputs, max_bytes=MAX_JOB)
    kind, files = _recv_frame(chan, MAX_JOB)
    limits = job["limits"]
    if job["jail"]:
        jail.enter({"/tmp": limits["tmp"], job["home"]: limits["home"], "/dev/shm": limits["shm"]})
    _write_files(files, job["home"])
    r, w = os.pipe()
    tr, tw = os.pipe() if job.get("timed_ids") else (None, None)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            if tw is not None:
                os.close(tw)
            chan.close()
            _student(job, inputs, w, helper_fd, tr)
        except BaseException:  # noqa: BLE001 - a failure before or after student code
            code = SETUP_FAILED
        finally:
            os._exit(code)
    os.close(w)
    if tr is not None:
        os.close(tr)
    if helper_fd is not None:
        os.close(helper_fd)
    clock = None
    if tw is not None:
        # The seeds arrive only now, after the fork: no copy of them exists in the student
        # process's memory, so the timed inputs cannot be rebuilt there ahead of the calls.
        kind, raw = _recv_frame(chan, MAX_JOB)
        timing = json.loads(raw) if kind == b"X" else {"timed": {}, "baseline": None}
        os.set_blocking(tw, False)
        clock = _Clock(job["checks"], inputs, timing, tw)
    _relay(chan, r, pid, limits, len(job["checks"]), clock)
    return 0


class _Clock:
    """Times the timed checks from the runner: the baseline here, the student's function from outside.

    Each timed check makes ``repeats`` calls on fresh inputs of the case's
    shapes. The protocol is strict: the student process asks (``W``), the
    runner hands over one input and starts the clock, and the next ``K``
    frame is that call's result; anything else during a timed check (a
    second request while an input is out, a result nobody asked for) marks
    the check as broken. The student's time is the median call, so one stall
    of a loaded machine does not count against it; the baseline's is the
    faster of two runs, warm, on the first input.
    """

    BASELINE_RUNS = 2

    def __init__(self, checks: list[str], inputs: dict, timing: dict, fd: int):
        self.queue = [g for g in checks if g in timing.get("timed", {})]
        self.inputs, self.timed, self.fd = inputs, timing.get("timed", {}), fd
        self.baseline = _baseline(timing["baseline"]) if timing.get("baseline") else None
        self.grade_id: str | None = None
        self.pending: list[Any] = []
        self.loop = 0.0
        self.calls: list[float] = []
        self.started: float | None = None
        self.broken = False

    def send(self, deadline: float) -> None:
        """The student asks for its next timed input: hand it over and start the clock."""
        if self.started is not None or (not self.pending and (self.grade_id is not None or not self.queue)):
            self.broken = True  # a request while an input is out, or past the last one
            return
        if self.grade_id is None:
            self._next_check()
        args = self.pending.pop(0)
        payload = codec.frame(b"I", codec.dumps(args))
        self.started = time.perf_counter()
        _write_all(self.fd, payload, deadline)

    def _next_check(self) -> None:
        self.grade_id = self.queue.pop(0)
        spec = self.timed[self.grade_id]
        template = self.inputs.get(self.grade_id, [])[:1] * int(spec.get("repeats", 1))
        self.pending = timed_inputs(template, int(spec["seed"]))
        self.calls, self.loop, self.broken = [], 0.0, False
        if self.baseline is not None and self.pending:
            # The baseline times a copy of the very input the first call gets.
            first = copy.deepcopy(self.pending[0])
            runs = []
            for _ in range(self.BASELINE_RUNS):
                start = time.perf_counter()
                self.baseline(*first)
                runs.append(time.perf_counter() - start)
            self.loop = min(runs)

    def tick(self) -> bool:
        """A result arrived; True when it answers the input that is out (and is to be relayed)."""
        if self.started is None:
            self.broken = self.broken or self.grade_id is not None
            return False
        self.calls.append(time.perf_counter() - self.started)
        self.started = None
        return True

    def stop(self) -> dict | None:
        """The timed check is over: the seconds each side took, and whether the protocol held."""
        if self.grade_id is None:
            return None
        calls = sorted(self.calls)
        out = {"grade_id": self.grade_id, "loop_seconds": round(self.loop, 6),
               "fast_seconds": round(calls[len(calls) // 2], 6) if calls else 0.0, "calls": len(calls),
               "broken": self.broken or self.started is not None or bool(self.pending)}
        self.grade_id, self.started, self.pending = None, None, []
        return out


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write to a non-blocking pipe, giving up at ``deadline`` (a student that never reads cannot stall us)."""
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the student process did not read its timed input")
        _, ready, _ = select.select([], [fd], [], min(left, 1.0))
        if ready:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue


def _relay(chan: socket.socket, r: int, pid: int, limits: dict, n_checks: int, clock: _Clock | None = None) -> None:
    """Forward the student's frames with a byte cap and a deadline, then report how it ended."""
    reader = codec.FrameReader(max_frame=limits["result_bytes"])
    deadline = time.monotonic() + limits["wall"]
    received = 0
    status: dict[str, Any] = {}
    seq = 0
    open_ = True
    while open_:
        left = deadline - time.monotonic()
        if left <= 0:
            status = {"status": "timeout"}
            break
        ready, _, _ = select.select([r], [], [], min(left, 1.0))
        if not ready:
            continue
        chunk = os.read(r, 1 << 16)
        if not chunk:
            open_ = False
            break
        received += len(chunk)
        if received > limits["result_bytes"] * (n_checks + 1):
            status = {"status": "too_large"}
            break
        reader.feed(chunk)
        for kind, payload in reader.frames():
            if kind == b"P":
                _send(chan, b"P", payload[:65536])
            elif kind == b"W" and clock is not None:
                try:
                    clock.send(deadline)
                except TimeoutError:
                    status = {"status": "timeout"}
                    break
            elif kind == b"K" and clock is not None and seq < n_checks:
                if clock.tick():
                    _send(chan, b"K", struct.pack("<I", seq) + payload)
            if clock is not None and clock.broken:
                # Only tampering breaks the timing protocol: stop at once rather than wait it out.
                status = {"status": "protocol"}
                break
            elif kind == b"R" and seq < n_checks:
                timing = clock.stop() if clock is not None else None
                _send(chan, b"R", struct.pack("<I", seq) + payload)
                if timing is not None:
                    _send(chan, b"T", json.dumps(timing).encode())
                seq += 1
        if status:
            break
        if reader.error:
            status = {"status": "too_large"}
            break
    if status:
        os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: everything it started dies with it
    _, wstatus, usage = os.wait4(pid, 0)
    if not status:
        if os.WIFSIGNALED(wstatus):
            status = {"status": "signal", "code": os.WTERMSIG(wstatus)}
        else:
            status = {"status": "exit", "code": os.WEXITSTATUS(wstatus)}
    status["cpu"] = round(usage.ru_utime + usage.ru_stime, 3)
    status["maxrss_kib"] = usage.ru_maxrss
    _send(chan, b"S", json.dumps(status).encode())


# --------------------------------------------------------------------------
# The helper server
# --------------------------------------------------------------------------

def _serve_helpers(chan: socket.socket, conn_fd: int) -> int:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _send(chan, b"H")
    kind, header = _recv_frame(chan, MAX_JOB)
    if kind != b"J":
        return 2
    job = json.loads(header)
    chan.close()
    limits = job["limits"]
    os.setsid()
    if job["jail"]:
        jail.enter({"/tmp": limits["tmp"], job["home"]: 4096, "/dev/shm": 4096}, new_pid=False)
    jail.close_fds_except({conn_fd})
    if job["jail"]:
        jail.drop_privileges()
    jail.set_limits(limits["memory"], limits["cpu"], limits["fsize"])
    jail.quiet()
    import numpy as np

    namespace: dict[str, Any] = {"np": np, "__name__": "reference"}
    for name, source in job["sources"].items():
        exec(compile(source, f"<reference {name}>", "exec"), namespace)  # noqa: S102 - instructor code
    functions = {name: namespace[name] for name in job["sources"]}
    conn = socket.socket(fileno=conn_fd)
    while True:
        try:
            kind, payload = _recv_frame(conn, limits["result_bytes"])
        except (EOFError, OSError, ValueError, struct.error):
            return 0
        try:
            fn = functions[payload[1:1 + payload[0]].decode()]
            call = codec.to_args(codec.loads(payload[1 + payload[0]:], max_bytes=limits["result_bytes"]))
            args, kwargs = (call, {}) if isinstance(call, tuple) else (call["args"], call["kwargs"])
            value = fn(*args, **kwargs)
            _send(conn, b"V", codec.dumps_flat((value,)) or codec.dumps((value,)))
        except BaseException:  # noqa: BLE001 - bad arguments from student code
            _send(conn, b"E", codec.dumps(None))


# --------------------------------------------------------------------------
# The zygote
# --------------------------------------------------------------------------

def _child(kind: str, fds: list[int]) -> int:
    jail.set_non_dumpable()
    chan = socket.socket(fileno=fds[0])
    try:
        if kind == "function":
            return _run_function(chan, fds[1] if len(fds) > 1 else None)
        if kind == "helper":
            return _serve_helpers(chan, fds[1])
        return 2
    except Exception as exc:
        # Trusted code failed (the sandbox could not be set up): tell the grader why, for the instructor.
        try:
            _send(chan, b"F", json.dumps({"error": type(exc).__name__, "detail": str(exc)[:300]}).encode())
        except OSError:
            pass
        return 1


def main(argv: list[str]) -> int:
    jail.set_non_dumpable()
    control = socket.socket(fileno=int(argv[1]))
    import numpy  # noqa: F401 - imported once here, so every fork starts warm

    # numpy imports these lazily; the timed checks draw their inputs with numpy.random after
    # the sandbox may have hidden the interpreter's files (a virtualenv under /tmp, say).
    import numpy.linalg  # noqa: F401
    import numpy.random  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(control, 4096, 4)
        except OSError:
            return 0
        if not msg:
            return 0
        try:
            kind = json.loads(msg)["kind"]
        except (ValueError, KeyError, TypeError):
            kind = ""
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                control.close()
                code = _child(kind, fds)
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
