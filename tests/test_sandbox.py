"""The sandboxes, tested directly: what student code can see, write and reach."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from traitlets.config import Config

from cnngrader.core import codec, paths, reference, spec
from cnngrader.core.hidden_data import HiddenData
from cnngrader.core.judge import judge
from cnngrader.sandbox import bwrap as sandbox
from cnngrader.sandbox import cgroups, verdicts
from cnngrader.sandbox.limits import from_config
from cnngrader.tools import mutants, submissions

# Tests that start a real bubblewrap sandbox or cgroup belong to the full suite,
# not to make test-fast (which needs neither).
_bwrap = pytest.mark.skipif(not sandbox.sandbox_status()[0],
                            reason=f"bubblewrap unavailable: {sandbox.sandbox_status()[1]}")
_cgroups = pytest.mark.skipif(not cgroups.backend().enabled,
                              reason=f"cgroups unavailable: {cgroups.backend().reason}")


def needs_bwrap(test):
    return pytest.mark.slow(_bwrap(test))


def needs_cgroups(test):
    return pytest.mark.slow(_cgroups(test))

LIMITS = from_config(Config({"CnnLimits": {"cpu_seconds": 5, "wall_seconds": 15.0, "tmp_bytes": 4 << 20,
                                           "home_bytes": 4 << 20, "shm_bytes": 1 << 20,
                                           "memory_bytes": 1 << 30}}))


def _run_in_sandbox(code: str, binds=()) -> subprocess.CompletedProcess:
    cmd = sandbox.bwrap_argv(list(binds), cwd="/tmp", tmp_bytes=64 << 20, shm_bytes=1 << 20)
    return subprocess.run(cmd + [sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@needs_bwrap
def test_sandbox_hides_the_course_and_the_network():
    root = paths.course_root()
    probe = (
        "import os, socket\n"
        f"print('course', os.path.exists({str(root / 'source')!r}), os.path.exists({str(paths.hidden_data_file())!r}))\n"
        "try:\n    socket.create_connection(('127.0.0.1', 22), timeout=1); print('net open')\n"
        "except OSError as e:\n    print('net blocked')\n"
        "try:\n    open('/usr/pwned', 'w')\nexcept OSError:\n    print('usr read-only')\n"
        "print('pids', len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
        "print('uid', os.getuid())\n"
    )
    out = _run_in_sandbox(probe).stdout
    assert "course False False" in out
    assert "net blocked" in out and "usr read-only" in out
    assert int(out.split("pids ")[1].split()[0]) < 5  # its own PID namespace: the host's processes are invisible
    assert "uid 1000" in out


@needs_bwrap
def test_sandbox_tmp_is_private_and_capped():
    marker = "/tmp/cnn-private-marker"
    out = _run_in_sandbox(f"open({marker!r}, 'w').write('x'); import os; print(os.path.exists({marker!r}))").stdout
    assert "True" in out
    import os

    assert not os.path.exists(marker)
    big = _run_in_sandbox("open('/tmp/big', 'wb').write(b'0' * (200 * 1024 * 1024))")
    assert big.returncode != 0


@needs_bwrap
def test_dev_is_read_only_and_shm_is_capped():
    code = textwrap.dedent("""
        import os
        for path in ('/dev/junk', '/dev/shm/junk'):
            try:
                open(path, 'wb').write(b'0' * (2 << 20)); print(path, 'wrote 2 MiB')
            except OSError as e:
                print(path, 'refused', e.errno)
        open('/dev/null', 'w').write('fine'); print('null ok')
    """)
    out = _run_in_sandbox(code).stdout
    assert "/dev/junk refused" in out
    assert "/dev/shm/junk refused" in out  # capped at 1 MiB here
    assert "null ok" in out


# ---------------------------------------------------------------------------
# One function's sandbox, seen from inside
# ---------------------------------------------------------------------------

PROBE = textwrap.dedent('''
    import ctypes, gc, hashlib, os, socket, sys, types
    import numpy as np

    def probe():
        seen = {}
        seen["uid"] = os.getuid()
        seen["ppid"] = os.getppid()
        seen["proc"] = sorted(os.listdir("/proc"))[:5]
        seen["job_files"] = os.path.exists("/run/cnn/job")
        seen["home"] = os.getcwd()
        def writes(path, size):
            try:
                with open(path, "wb") as fh:
                    fh.write(b"0" * size)
                return True
            except OSError:
                return False
        seen["home_4k"] = writes("/home/student/x", 4096)
        seen["home_8m"] = writes("/home/student/big", 8 << 20)
        seen["tmp_8m"] = writes("/tmp/big", 8 << 20)
        seen["shm_2m"] = writes("/dev/shm/big", 2 << 20)
        seen["checks_file"] = os.path.isfile("/home/student/cnn_checks.py")
        seen["grader_write"] = writes("/run/cnn/grader/x", 10)
        seen["root_writes"] = [p for p in ("/x", "/run/x", "/run/cnn/x", "/home/x", "/var/x", "/etc/x", "/dev/x")
                               if writes(p, 10)]
        libc = ctypes.CDLL(None, use_errno=True)
        seen["mount"] = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)
        seen["cap_sys_admin"] = libc.prctl(23, 21, 0, 0, 0)  # PR_CAPBSET_READ, CAP_SYS_ADMIN
        try:
            socket.create_connection(("127.0.0.1", 22), timeout=1)
            seen["net"] = True
        except OSError:
            seen["net"] = False
        arrays, texts = [], []
        seen_ids = set()

        def walk(obj, depth):
            if id(obj) in seen_ids or depth > 6:
                return
            seen_ids.add(id(obj))
            if isinstance(obj, np.ndarray):
                arrays.append(hashlib.sha1(np.ascontiguousarray(obj).tobytes()).hexdigest())
            elif isinstance(obj, str):
                texts.append(obj)
            elif isinstance(obj, dict):
                for key, value in list(obj.items()):
                    walk(key, depth + 1)
                    walk(value, depth + 1)
            elif isinstance(obj, (list, tuple, set, frozenset)):
                for item in list(obj):
                    walk(item, depth + 1)
            elif isinstance(obj, types.FunctionType):
                walk(obj.__code__.co_consts, depth + 1)
                walk(obj.__defaults__, depth + 1)

        roots = [o for o in gc.get_objects() if o is not arrays and o is not texts and o is not seen_ids]
        frame = sys._getframe()
        while frame is not None:
            roots.append(dict(frame.f_locals))
            frame = frame.f_back
        for obj in roots:
            walk(obj, 0)
        seen["arrays"] = sorted(set(arrays))
        # Messages carry strings of up to 200 characters: send overlapping pieces.
        # Every line of every string, hashed (a line of a solution would match one).
        lines = {line.strip() for t in texts if type(t) is str for line in t.splitlines()}
        seen["lines"] = sorted({hashlib.sha1(line.encode()).hexdigest()[:16] for line in lines if len(line) > 20})
        return seen
''')


def _digests(value) -> set[str]:
    out = set()
    if isinstance(value, np.ndarray):
        out.add(hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest())
    elif isinstance(value, tuple | list):
        for v in value:
            out |= _digests(v)
    elif isinstance(value, dict):
        for v in value.values():
            out |= _digests(v)
    return out


def _run_probe(function: str, helpers: bool, group=None) -> dict:
    data = HiddenData()
    checks = [c.grade_id for c in spec.load().checks_for(function)]
    inputs = {gid: [args for _, args, _ in data.cases(gid)] for gid in checks}
    cell = PROBE + f"\n{function} = lambda *a, **k: probe()\n"
    job = {"function": function, "cells": [cell], "checks": checks[:1],
           "helpers": list(spec.load().helpers.get(function, ())) if helpers else [], "blocked": []}
    sources = {h: data.helpers[h] for h in spec.load().helpers.get(function, ())} if helpers else None
    files = verdicts.submission_files(paths.release_notebook().parent, LIMITS)
    with verdicts.Zygote(LIMITS) as zygote:
        run = zygote.run_function(function, job, codec.dumps(codec.to_args({checks[0]: inputs[checks[0]][:1]})),
                                  sources, group.child("fn", memory=LIMITS.memory_bytes, pids=64) if group else None,
                                  files)
    assert run.note == "ok", (run.note, run.error)
    result = run.results[checks[0]][0]
    assert result["status"] == "ok", result
    return codec.to_args(result["value"])


@needs_bwrap
def test_function_sandbox_is_one_way():
    group = cgroups.backend().submission("probe", LIMITS.submission_memory_bytes, 128) \
        if cgroups.backend().enabled else None
    try:
        seen = _run_probe("conv_forward", helpers=True, group=group)
    finally:
        if group is not None:
            group.remove()
    assert seen["uid"] == 1000 and seen["ppid"] == 0  # its parent (the runner) is outside its PID namespace
    assert seen["proc"] == []  # the zygote, the helper server and other functions stay unnamed
    assert seen["job_files"] is False and seen["home"] == "/home/student"
    assert seen["home_4k"] and not seen["home_8m"] and not seen["tmp_8m"] and not seen["shm_2m"]
    assert seen["checks_file"] and seen["grader_write"] is False and seen["root_writes"] == []
    assert seen["mount"] != 0 and seen["cap_sys_admin"] == 0 and seen["net"] is False
    # Only this function's hidden inputs are in the process, and no reference solution text.
    data = HiddenData()
    others = set()
    for check in spec.load().checks:
        if check.function != "conv_forward":
            for _, args, _ in data.cases(check.grade_id):
                others |= _digests(codec.to_args(args))
    assert not others & set(seen["arrays"])
    solution_lines = set()
    for src in reference.solution_cells().values():
        body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.S).group(1)
        solution_lines |= {line.strip() for line in body.splitlines() if len(line.strip()) > 20}
    found = set(seen["lines"])
    leaked = [line for line in solution_lines if hashlib.sha1(line.encode()).hexdigest()[:16] in found]
    assert not leaked, leaked[:3]
    assert len(found) > 100  # the scan did look at the process's strings


@needs_bwrap
def test_helpers_answer_from_outside_the_student_process():
    """Credit isolation: the helper names are proxies; their code is not in the student's process."""
    cell = textwrap.dedent('''
        import inspect
        def conv_forward(A_prev, W, b, hparameters):
            import numpy as np
            out = {"pad": zero_pad(np.ones((1, 2, 2, 1)), 1).tolist(),
                   "step": conv_single_step(np.ones((2, 2, 1)), np.ones((2, 2, 1)), np.zeros((1, 1, 1)))}
            try:
                out["source"] = inspect.getsource(zero_pad)
            except (OSError, TypeError):
                out["source"] = None
            out["consts"] = [c for c in zero_pad.__code__.co_consts if isinstance(c, str)]
            return out
    ''')
    data = HiddenData()
    gid = "test_conv_forward_stride"
    job = {"function": "conv_forward", "cells": [cell], "checks": [gid], "helpers": list(spec.load().helpers["conv_forward"]),
           "blocked": []}
    with verdicts.Zygote(LIMITS) as zygote:
        run = zygote.run_function("conv_forward", job, codec.dumps(codec.to_args({gid: [data.cases(gid)[0][1]]})),
                                  {h: data.helpers[h] for h in spec.load().helpers["conv_forward"]}, None)
    value = codec.to_args(run.results[gid][0]["value"])
    assert np.array(value["pad"]).shape == (1, 4, 4, 1) and value["step"] == 4.0
    assert value["source"] is None or "np.pad" not in value["source"]
    assert not any("pad" in c and "np." in c for c in value["consts"])


def test_codec_never_unpickles():
    import io

    buf = io.BytesIO()
    np.savez(buf, x=np.array([object()], dtype=object))
    with pytest.raises(codec.Unreadable):
        codec.loads(buf.getvalue())
    payload = json.dumps({"tree": {"a": "a0", "t": "ndarray"}, "arrays": {"a0": ["|O", [1], 0, 8]}}).encode()
    with pytest.raises(codec.Unreadable, match="dtype"):
        codec.loads(codec.MAGIC + len(payload).to_bytes(4, "little") + payload + b"\0" * 8)


def test_judge_ignores_what_objects_claim():
    check = spec.load().by_grade_id()["test_zero_pad_values"]
    data = HiddenData()
    items = data.cases(check.grade_id)

    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    lying = np.zeros((3, 3)).view(Liar)
    results = codec.loads(codec.dumps([{"status": "ok", "value": lying}]))
    verdict = judge(check, items, results)
    assert not verdict.passed and "wrong shape" in verdict.message


def test_verdicts_without_sandbox_or_cgroups_still_judge_correctly(monkeypatch, caplog):
    monkeypatch.setenv("CNN_SANDBOX", "off")
    sandbox.sandbox_status.cache_clear()
    try:
        cells = submissions.reference_cells()
        cells["conv_forward"] = mutants.by_name("conv_forward__stride_forgotten").source
        run = verdicts.run_verdicts(submissions.build(cells), paths.release_notebook().parent, HiddenData(),
                                    LIMITS, functions=["conv_forward", "zero_pad"])
    finally:
        sandbox.sandbox_status.cache_clear()
    assert run.sandboxed is False and run.cgroups is False
    assert "SANDBOX OFF" in caplog.text
    assert run.verdicts["test_zero_pad_values"].passed
    assert not run.verdicts["test_conv_forward_stride"].passed
    assert run.verdicts["test_conv_forward_pad"].passed


def test_cgroups_off_is_loud(monkeypatch, caplog):
    monkeypatch.setenv("CNN_CGROUPS", "off")
    cgroups.backend.cache_clear()
    try:
        assert cgroups.warn_if_off() is False
    finally:
        cgroups.backend.cache_clear()
    assert "CGROUPS OFF" in caplog.text


def test_process_notes():
    limits = from_config(Config({"CnnLimits": {"cpu_seconds": 7, "wall_seconds": 9.0}}))
    assert verdicts.process_note({"status": "timeout"}, limits, False) == "timed out after 9 s"
    assert verdicts.process_note({"status": "cpu"}, limits, False) == "exceeded the 7 s CPU limit"
    assert verdicts.process_note({"status": "exit", "code": 3}, limits, False) == "process exited with status 3"
    assert "SIGSEGV" in verdicts.process_note({"status": "signal", "code": 11}, limits, False)
    assert "CPU limit" in verdicts.process_note({"status": "signal", "code": 24}, limits, False)
    assert "SIGKILL" in verdicts.process_note({"status": "signal", "code": 9, "cpu": 0.1}, limits, False)
    assert "memory limit" in verdicts.process_note({"status": "signal", "code": 9}, limits, True)
    # The same outcomes as codes, for the grading record.
    outcome = verdicts.process_outcome
    assert outcome({"status": "timeout"}, limits, False)[0] == "wall_timeout"
    assert outcome({"status": "cpu"}, limits, False)[0] == "cpu_limit"
    assert outcome({"status": "signal", "code": 9}, limits, True)[0] == "memory_limit"
    assert outcome({"status": "signal", "code": 11}, limits, False)[0] == "crashed"
    assert outcome({"status": "exit", "code": 0}, limits, False) == ("ok", "ok")
    assert outcome(None, limits, False) == verdicts.NOT_GRADED


# ---------------------------------------------------------------------------
# cgroups
# ---------------------------------------------------------------------------

@needs_cgroups
def test_cgroup_caps_memory_and_processes_for_the_whole_tree():
    group = cgroups.backend().submission("test", memory=256 << 20, pids=16)
    try:
        part = group.child("part", memory=64 << 20, pids=8)
        # Three processes of 40 MiB each: fine alone, over the cap together.
        code = ("import os, time\nfor _ in range(2):\n    if os.fork() == 0:\n        break\n"
                "x = bytearray(40 << 20)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\ntime.sleep(1)")
        subprocess.run(part.join_argv() + [sys.executable, "-c", code], timeout=60)
        assert part.usage().oom_kills >= 1
        forks = subprocess.run(part.join_argv() + ["/bin/sh", "-c", "for i in $(seq 30); do sleep 3 & done; wait"],
                               capture_output=True, text=True, timeout=60)
        assert "fork" in forks.stderr.lower() or forks.returncode != 0
        part.kill()
        assert part.pids() == []
    finally:
        group.remove()


@needs_cgroups
def test_cgroup_counts_and_kills_escapees():
    group = cgroups.backend().submission("test", memory=256 << 20, pids=32)
    try:
        code = "import os\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\nwhile True:\n    pass"
        proc = subprocess.Popen(group.join_argv() + [sys.executable, "-c", code])
        import time

        deadline = time.monotonic() + 30
        while group.cpu_seconds() < 1.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(group.pids()) >= 8  # the escapees left the session, not the cgroup
        assert group.cpu_seconds() >= 1.5
        group.kill()
        proc.wait(10)
        assert group.pids() == []
    finally:
        group.remove()
