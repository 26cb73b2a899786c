"""Run a student's functions on the hidden inputs.

Two callers use this module:

* the sandboxed verdict worker (``python worker.py JOB_DIR OUT_DIR`` inside
  bubblewrap), which forks one child per graded function so that a crash,
  a hang or a memory blow-up costs only that function;
* :mod:`cnngrader.incell`, which runs the same cases inside a notebook kernel
  for ``nbgrader validate`` and stock autograding.

Only the standard library, NumPy and :mod:`codec` may be imported here: the
file is bound read-only into the sandbox, where the rest of the package (and
the hidden expectations) are not visible. The worker reports outputs only;
it never learns what the right answers are.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

try:
    from . import codec
except ImportError:  # running as a script inside the sandbox
    import codec  # type: ignore[no-redef]

#: Lines that only make sense inside IPython; dropped before plain exec.
_MAGIC = re.compile(r"^\s*[%!]")


def plain_python(source: str) -> str:
    """Strip IPython magics and shell escapes so a cell runs under ``exec``."""
    if source.lstrip().startswith("%%"):
        return ""
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


def exec_cells(sources: Iterable[str], namespace: dict[str, Any]) -> list[str]:
    """Execute cells in order; a failing cell is reported and skipped, like a notebook run."""
    problems = []
    for n, src in enumerate(sources):
        try:
            exec(compile(plain_python(src), f"<cell {n}>", "exec"), namespace)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything, even SystemExit
            problems.append(f"cell {n}: {type(exc).__name__}")
    return problems


def describe_exception(exc: BaseException, memory_limit: int | None = None) -> str:
    if isinstance(exc, MemoryError):
        if memory_limit:
            return f"exceeded the {format_bytes(memory_limit)} memory limit"
        return "ran out of memory (MemoryError)"
    if isinstance(exc, NotImplementedError):
        return "is not implemented yet (raised NotImplementedError)"
    if isinstance(exc, RecursionError):
        return "raised RecursionError (infinite recursion?)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"raised {type(exc).__name__}" + (f": {text[:160]}" if text else "")


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def run_cases(namespace: dict[str, Any], function: str, arg_list: list[Any],
              helpers: dict[str, Callable] | None = None, memory_limit: int | None = None) -> list[dict]:
    """Call ``namespace[function]`` on each argument tuple.

    ``helpers`` are swapped into the namespace for the duration of the calls
    (credit isolation) and the student's own versions are put back afterwards.
    Each result is the plain-data form that crosses the sandbox boundary.
    """
    saved = {name: namespace.get(name, _MISSING) for name in (helpers or {})}
    namespace.update(helpers or {})
    try:
        results = []
        for args in arg_list:
            fn = namespace.get(function)
            if not callable(fn):
                results.append({"status": "error", "error": f"{function} is not defined"})
                continue
            try:
                value = fn(*codec.to_args(args))
                results.append({"status": "ok", "value": value})
            except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
                results.append({"status": "error", "error": describe_exception(exc, memory_limit)})
        return results
    finally:
        for name, old in saved.items():
            if old is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = old


_MISSING = object()


def reference_helpers(sources: dict[str, str], names: Iterable[str]) -> dict[str, Callable]:
    """Compile the reference versions of ``names`` (credit isolation) in their own namespace."""
    import numpy as np

    namespace: dict[str, Any] = {"np": np, "__name__": "reference"}
    names = list(names)
    for name in names:
        exec(compile(sources[name], f"<reference {name}>", "exec"), namespace)  # noqa: S102 - instructor code
    return {name: namespace[name] for name in names}


# --------------------------------------------------------------------------
# The sandboxed worker process
# --------------------------------------------------------------------------

def _limit(memory: int, cpu: int, fsize: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _quiet() -> None:
    """Send the child's own output nowhere: floods cost nothing and leak nothing."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _child(job: dict, inputs: dict, fn_job: dict, out_dir: str) -> None:
    limits = job["limits"]
    _limit(limits["memory"], limits["cpu"], limits["fsize"])
    _quiet()
    import numpy as np

    namespace: dict[str, Any] = {"__name__": "__main__", "np": np}
    exec_cells(job["cells"], namespace)
    helpers = reference_helpers(job["helper_sources"], fn_job["helpers"])
    for grade_id in fn_job["checks"]:
        results = run_cases(namespace, fn_job["name"], inputs[grade_id], helpers, limits["memory"])
        _atomic_write(os.path.join(out_dir, f"{grade_id}.npz"), encode_results(results))


def encode_results(results: list[dict]) -> bytes:
    """Encode results one by one, so one unencodable value fails only its own case."""
    safe = []
    for result in results:
        try:
            codec.dumps(result)
            safe.append(result)
        except BaseException as exc:  # noqa: BLE001
            safe.append({"status": "error", "error": f"returned a value that cannot be read ({type(exc).__name__})"})
    return codec.dumps(safe)


def _wait(pid: int, wall: float) -> dict:
    deadline = time.monotonic() + wall
    delay = 0.002
    try:
        # A pidfd becomes readable the moment the child exits: no polling latency.
        import select

        fd = os.pidfd_open(pid)
        try:
            select.select([fd], [], [], wall)
        finally:
            os.close(fd)
    except (AttributeError, OSError):
        pass
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.WIFSIGNALED(status):
                return {"status": "signal", "code": os.WTERMSIG(status)}
            return {"status": "exit", "code": os.WEXITSTATUS(status)}
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return {"status": "timeout", "code": None}
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def main(argv: list[str]) -> int:
    job_dir, out_dir = argv[1], argv[2]
    with open(os.path.join(job_dir, "job.json")) as fh:
        job = json.load(fh)
    inputs = codec.loads(os.path.join(job_dir, "inputs.npz"))
    import numpy  # noqa: F401 - imported once here so every fork starts warm

    statuses = {}
    for fn_job in job["functions"]:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setsid()
                _child(job, inputs, fn_job, out_dir)
            except BaseException:  # noqa: BLE001
                code = 70
            finally:
                os._exit(code)
        statuses[fn_job["name"]] = _wait(pid, job["limits"]["wall"])
        _atomic_write(os.path.join(out_dir, "status.json"), json.dumps(statuses).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
