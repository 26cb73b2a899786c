"""The cgroup v2 backend's file protocol, on a fake delegated subtree.

This machine (and CI) has cgroup v1 controllers; v2 has none delegated, so the
real v2 path cannot run here. These tests pin down what the backend writes
and reads in a delegated subtree (the files systemd-run -p Delegate=yes hands
over), so an instructor's v2 machine gets the same limits v1 gets here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnngrader.sandbox import cgroups


@pytest.fixture
def delegated(tmp_path: Path) -> Path:
    base = tmp_path / "user.slice" / "cnn.scope"
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (base / "cgroup.subtree_control").write_text("")
    (base / "cgroup.procs").write_text("4242\n")
    return base


def test_moves_itself_to_a_leaf_and_delegates_controllers(delegated: Path):
    """'No internal processes': the grader's pids go to supervisor/, then memory, pids and cpu are enabled."""
    backend = cgroups.V2(delegated)
    assert (delegated / "supervisor" / "cgroup.procs").read_text() == "4242"
    assert (delegated / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (delegated / cgroups.ROOT_NAME / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert backend.enabled


def test_missing_controllers_are_refused(delegated: Path):
    """A subtree without the memory controller is not used (grading then says CGROUPS OFF)."""
    (delegated / "cgroup.controllers").write_text("cpu pids\n")
    with pytest.raises(OSError, match="memory"):
        cgroups.V2(delegated)


def test_submission_limits_usage_and_kill(delegated: Path):
    """A submission's group gets memory.max (no swap), pids.max; usage reads cpu.stat, memory.peak and OOM kills."""
    backend = cgroups.V2(delegated)
    group = backend.submission("ana", memory=3 << 30, pids=256)
    d = group.dirs["unified"]
    assert (d / "memory.max").read_text() == str(3 << 30) and (d / "pids.max").read_text() == "256"
    fn = group.child("fn-conv_forward", memory=2 << 30, pids=128)
    f = fn.dirs["unified"]
    assert f.parent == d and (f / "memory.max").read_text() == str(2 << 30)
    (f / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (f / "memory.peak").write_text("1048576\n")
    (f / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert fn.usage() == cgroups.Usage(2.5, 1 << 20, 1)
    (f / "cgroup.kill").write_text("")
    (f / "cgroup.procs").write_text("")
    fn.kill(timeout=0.1)
    assert (f / "cgroup.kill").read_text() == "1"
