"""Property-based fuzzing of everything the trusted side reads from a sandbox or an upload.

Whatever bytes arrive (random, truncated, deflate-bombed archives, huge
declared shapes, absurd nesting) the reader returns a value or refuses with
a reason, quickly and within a fixed memory budget. Files are opened
without following links, and FIFOs or devices are refused without blocking.
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnngrader.core import codec
from cnngrader.sandbox.limits import from_config
from cnngrader.sandbox.staging import read_regular
from cnngrader.sandbox.verdicts import _parse_results

LIMITS = from_config()
#: Bytes the reader may allocate for one message beyond the message itself.
MEMORY_BUDGET = 8 << 20
SECONDS = 2.0


def _read(data: bytes) -> list[dict]:
    """The production path for one result frame: bounded decode, never an exception."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        return _parse_results(data, LIMITS)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert time.monotonic() - started < SECONDS
        assert peak < len(data) + MEMORY_BUDGET, peak


def _header(tree, arrays) -> bytes:
    head = json.dumps({"tree": tree, "arrays": arrays}).encode()
    return codec.MAGIC + struct.pack("<I", len(head)) + head


def _deflate_bomb() -> bytes:
    """A zip whose one member inflates from about 100 kB to 100 MB (what np.savez_compressed can carry)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__tree__.npy", b"\0" * (100 << 20))
    return buf.getvalue()


fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash_the_reader(data):
    results = _read(data)
    assert isinstance(results, list) and all(isinstance(r, dict) for r in results)


@fuzz
@given(st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=1, max_size=8),
       st.sampled_from(sorted(codec.DTYPES) + ["|O", "<c16", "|V8", "<U4", "object"]),
       st.integers(min_value=0, max_value=2**40))
def test_huge_declared_shapes_are_refused_before_allocating(shape, dtype, nbytes):
    data = _header({"list": [{"dict": {"status": {"v": "ok", "t": "str"}, "value": {"a": "a0", "t": "ndarray"}}}]},
                   {"a0": [dtype, shape, 0, nbytes]}) + b"\0" * 64
    results = _read(data)
    ok = results[0].get("status") == "ok"
    assert not ok or int(np.prod(shape)) * np.dtype(dtype).itemsize <= 64


@fuzz
@given(st.integers(min_value=0, max_value=20_000), st.integers(min_value=0, max_value=200))
def test_truncated_messages_are_refused(depth, cut):
    # Built as text: json.dumps itself would recurse too deep.
    tree = '{"list": [' * depth + '{"v": 1, "t": "int"}' + "]}" * depth
    head = ('{"tree": {"list": [{"dict": {"status": {"v": "ok", "t": "str"}, "value": ' + tree +
            '}}]}, "arrays": {}}').encode()
    message = codec.dumps([{"status": "ok", "value": np.arange(50.0)}])
    nested = codec.MAGIC + struct.pack("<I", len(head)) + head
    for data in (message[:max(0, len(message) - cut - 1)], nested):
        results = _read(data)
        assert isinstance(results, list)


def test_compressed_archives_are_refused_without_inflating():
    bomb = _deflate_bomb()
    assert len(bomb) < 1 << 20
    results = _read(bomb)
    assert results[0]["error"] == "unreadable"
    buf = io.BytesIO()
    np.savez_compressed(buf, __tree__=np.zeros(50_000_000, dtype=np.uint8))
    assert _read(buf.getvalue())[0]["error"] == "unreadable"


def test_frames_larger_than_the_cap_stop_the_stream():
    reader = codec.FrameReader(max_frame=1024)
    reader.feed(codec.frame(b"R", b"x" * 10) + codec.FRAME_HEAD.pack(b"R", 2**32 - 1) + b"y" * 100)
    frames = reader.frames()
    assert frames == [(b"R", b"x" * 10)] and reader.error and reader.pending == 0


def test_a_valid_message_round_trips():
    value = {"status": "ok", "value": (np.arange(6.0).reshape(2, 3), {"stride": 2}, 1.5, True, None)}
    out = _read(codec.dumps([value]))[0]
    arr, hp, x, flag, nothing = out["value"]
    assert np.array_equal(arr.array, np.arange(6.0).reshape(2, 3)) and hp == {"stride": 2}
    assert (x, flag, nothing) == (1.5, True, None)


def test_flat_messages_are_bounded_too():
    good = codec.dumps_flat((np.ones((2, 2)), 3, 2.5))
    assert codec.loads(good)[1:] == (3, 2.5)
    lying = codec.FLAT_MAGIC + struct.pack("<H", 1) + b"a" + struct.pack("<BB2I", 0, 2, 2**31 - 1, 2**31 - 1)
    with pytest.raises(codec.Unreadable):
        codec.loads(lying)


# ---------------------------------------------------------------------------
# Files: no links, no FIFOs, no devices, bounded size
# ---------------------------------------------------------------------------

def _timed_read(path: Path, cap: int = 1 << 20):
    started = time.monotonic()
    try:
        return read_regular(path, cap)
    finally:
        assert time.monotonic() - started < SECONDS


def test_files_are_read_without_following_links(tmp_path):
    target = tmp_path / "secret"
    target.write_text("secret")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(OSError):
        _timed_read(link)
    dev_link = tmp_path / "zero"
    dev_link.symlink_to("/dev/zero")
    with pytest.raises(OSError):
        _timed_read(dev_link)


def test_fifos_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        _timed_read(fifo)
    with pytest.raises(OSError):
        _timed_read(Path("/dev/zero"))


@fuzz
@given(st.integers(min_value=0, max_value=4096), st.integers(min_value=0, max_value=4096))
def test_file_size_cap(tmp_path_factory, size, cap):
    path = tmp_path_factory.mktemp("f") / "data"
    path.write_bytes(b"x" * size)
    if size <= cap:
        assert _timed_read(path, cap) == b"x" * size
    else:
        with pytest.raises(OSError):
            _timed_read(path, cap)
