"""The sandbox, the result codec and the judge, tested directly."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from cnngrader import cases, codec, paths, sandbox, submissions, verdicts
from cnngrader.hidden_data import HiddenData
from cnngrader.judge import judge

needs_bwrap = pytest.mark.skipif(not sandbox.sandbox_status()[0],
                                 reason=f"bubblewrap unavailable: {sandbox.sandbox_status()[1]}")


def _run_in_sandbox(code: str, binds=()) -> subprocess.CompletedProcess:
    cmd = sandbox.bwrap_argv(list(binds), cwd="/tmp") + [sys.executable, "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


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
    )
    out = _run_in_sandbox(probe).stdout
    assert "course False False" in out
    assert "net blocked" in out and "usr read-only" in out
    assert int(out.split("pids ")[1]) < 5  # its own PID namespace: the host's processes are invisible


@needs_bwrap
def test_sandbox_tmp_is_private_and_capped(tmp_path):
    marker = "/tmp/cnn-private-marker"
    out = _run_in_sandbox(f"open({marker!r}, 'w').write('x'); import os; print(os.path.exists({marker!r}))").stdout
    assert "True" in out
    import os

    assert not os.path.exists(marker)
    big = _run_in_sandbox("open('/tmp/big', 'wb').write(b'0' * (200 * 1024 * 1024))")
    assert big.returncode != 0


def test_codec_never_unpickles(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, __tree__=np.frombuffer(b'{"a": "x"}', dtype=np.uint8), x=np.array([object()], dtype=object))
    with pytest.raises(ValueError):
        codec.loads(buf.getvalue())
    path = tmp_path / "r.npz"
    path.write_bytes(buf.getvalue())
    assert verdicts._read_results(path, sandbox.Limits())[0]["status"] == "error"


def test_judge_ignores_what_objects_claim():
    check = cases.by_grade_id()["test_zero_pad_values"]
    data = HiddenData()
    items = data.cases(check.grade_id)

    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    lying = np.zeros((3, 3)).view(Liar)
    results = codec.loads(codec.dumps([{"status": "ok", "value": lying}]))
    verdict = judge(check, items, results)
    assert not verdict.passed and "wrong shape" in verdict.message


def test_verdicts_without_sandbox_still_judge_correctly(monkeypatch, caplog):
    monkeypatch.setenv("CNN_SANDBOX", "off")
    sandbox.sandbox_status.cache_clear()
    try:
        cells = submissions.reference_cells()
        cells["conv_forward"] = (submissions.MUTANTS_DIR / "conv_forward__stride_forgotten.py").read_text()
        run = verdicts.run_verdicts(submissions.build(cells), paths.release_notebook().parent, HiddenData(),
                                    functions=["conv_forward", "zero_pad"])
    finally:
        sandbox.sandbox_status.cache_clear()
    assert run.sandboxed is False
    assert "SANDBOX OFF" in caplog.text
    assert run.verdicts["test_zero_pad_values"].passed
    assert not run.verdicts["test_conv_forward_stride"].passed
    assert run.verdicts["test_conv_forward_pad"].passed


def test_limits_reasons():
    limits = sandbox.Limits(wall=7, cpu=7)
    assert verdicts._reason({"status": "timeout", "code": None}, limits) == "timed out after 7 s"
    assert verdicts._reason({"status": "exit", "code": 3}, limits) == "process exited with status 3"
    assert "SIGSEGV" in verdicts._reason({"status": "signal", "code": 11}, limits)
    assert "CPU limit" in verdicts._reason({"status": "signal", "code": 24}, limits)
