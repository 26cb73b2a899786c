"""Per-submission resource control with cgroups (v1 controllers or a delegated v2 subtree).

Every process that grading one submission starts (the notebook kernel, the
verdict zygote, each function's runner, the student's processes and anything
they fork, ``setsid()`` escapees included) lives in one cgroup per
submission, with children per part::

    <base>/cnn-grader/<submission>/          memory cap, pids cap, CPU budget
                                   kernel/    the notebook kernel
                                   verdicts/  the zygote
                                   fn-<name>/ one graded function (runner, student, helper server)

A process cannot leave its cgroup, so the caps hold for the whole tree, and
CPU time is measured per part: a graded function's time limit is CPU time
(``cpuacct.usage`` or ``cpu.stat``), which does not depend on what else the
machine is doing. Sibling cgroups get equal CPU shares, so a submission that
spins many processes slows only itself.

Backends:

* **v1**: the ``memory``, ``pids``, ``cpu``, ``cpuacct`` (and, if present,
  ``freezer``) hierarchies, writable under ``/sys/fs/cgroup/<controller>/``.
  The groups are made below the grader's own cgroup in each hierarchy.
* **v2**: a delegated subtree (for example from ``systemd-run --user --scope
  -p Delegate=yes``) whose ``cgroup.subtree_control`` can enable ``memory
  pids cpu``. The grader moves itself into a ``supervisor`` leaf first, as
  the "no internal processes" rule requires.
* **none**: neither is usable. Grading carries on with per-process limits
  only, and says so loudly (``CGROUPS OFF``) in the log, the table and the report.

Set ``CNN_CGROUPS=off`` to force the last one (the tests use it to show the fallback).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("cnngrader.sandbox.cgroups")

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer")
V1_REQUIRED = ("memory", "pids", "cpuacct")
ROOT_NAME = "cnn-grader"
CGROUPS_OFF_WARNING = (
    "CGROUPS OFF: {reason}. Each student process still has its own limits, but the processes of one "
    "submission are not capped together and CPU time is not measured per function, so a hostile "
    "submission can slow its neighbours. On Linux, run the grader where the cgroup v1 memory, pids and "
    "cpuacct controllers are writable, or in a delegated cgroup v2 subtree (see README)."
)

_counter = itertools.count()
_lock = threading.Lock()


def _read(path: Path) -> str:
    with open(path) as fh:
        return fh.read(65536)


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _mounts() -> list[tuple[str, str, set[str]]]:
    """``(mount point, fstype, super options)`` of every cgroup mount."""
    out = []
    try:
        text = _read(Path("/proc/self/mountinfo"))
    except OSError:
        return out
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        if rfields[0] in ("cgroup", "cgroup2"):
            out.append((fields[4], rfields[0], set(rfields[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller name (or ``""`` for v2) -> this process's cgroup path."""
    out = {}
    try:
        text = _read(Path("/proc/self/cgroup"))
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for name in parts[1].split(",") if parts[1] else [""]:
            out[name] = parts[2]
    return out


@dataclass
class Usage:
    cpu_seconds: float
    memory_peak: int
    oom_kills: int


class Group:
    """One cgroup, as a directory per hierarchy (v1) or a single directory (v2)."""

    def __init__(self, backend: Backend, dirs: dict[str, Path]):
        self.backend = backend
        self.dirs = dirs

    # -- structure --------------------------------------------------------
    def child(self, name: str, memory: int | None = None, pids: int | None = None) -> Group:
        dirs = {c: d / name for c, d in self.dirs.items()}
        for d in dirs.values():
            d.mkdir(exist_ok=True)
        group = Group(self.backend, dirs)
        group.set_limits(memory, pids)
        return group

    def set_limits(self, memory: int | None, pids: int | None) -> None:
        self.backend.set_limits(self, memory, pids)

    # -- membership -------------------------------------------------------
    def procs_files(self) -> list[str]:
        """Files to write a pid into to put that process in this group (one per hierarchy)."""
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def join_argv(self) -> list[str]:
        """A prefix that moves the command into this group before it starts (``exec`` keeps the pid)."""
        script = 'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "cnn-cgroup-join", *self.procs_files(), "--"]

    def add(self, pid: int) -> None:
        for path in self.procs_files():
            _write(Path(path), str(pid))

    def pids(self) -> list[int]:
        out: set[int] = set()
        for path in self.procs_files():
            try:
                out |= {int(p) for p in _read(Path(path)).split()}
            except (OSError, ValueError):
                pass
        return sorted(out)

    # -- accounting -------------------------------------------------------
    def usage(self) -> Usage:
        return self.backend.usage(self)

    def cpu_seconds(self) -> float:
        return self.backend.usage(self).cpu_seconds

    # -- teardown ---------------------------------------------------------
    def kill(self, timeout: float = 10.0) -> None:
        """Kill every process in the group and its children, escapees included."""
        self.backend.kill(self, timeout)

    def remove(self) -> None:
        """Kill what is left, then remove the group's directories, deepest first."""
        try:
            self.kill()
        except OSError:
            pass
        for d in self.dirs.values():
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                d.rmdir()
            except OSError:
                pass


class Backend:
    name = "none"
    reason = ""

    def __init__(self) -> None:
        self.root: Group | None = None

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def submission(self, label: str, memory: int, pids: int) -> Group | None:
        """A fresh group for one submission, or ``None`` when cgroups are off."""
        if self.root is None:
            return None
        with _lock:
            name = f"s{os.getpid()}-{next(_counter)}-{int(time.time() * 1000) % 10**9}"
        try:
            return self.root.child(name, memory=memory, pids=pids)
        except OSError as exc:
            log.warning("could not create a cgroup for %s: %s", label, exc)
            return None

    def set_limits(self, group: Group, memory: int | None, pids: int | None) -> None:
        pass

    def usage(self, group: Group) -> Usage:
        return Usage(0.0, 0, 0)

    def kill(self, group: Group, timeout: float) -> None:
        _kill_loop(group, timeout)

    def sweep(self) -> None:
        """Remove groups left behind by graders that died (their pid is gone)."""
        if self.root is None:
            return
        for d in self.root.dirs.values():
            for sub in d.iterdir() if d.is_dir() else ():
                if not sub.is_dir() or not sub.name.startswith("s"):
                    continue
                owner = sub.name[1:].split("-", 1)[0]
                if owner.isdigit() and not _alive(int(owner)):
                    try:
                        Group(self, {k: v / sub.name for k, v in self.root.dirs.items()}).remove()
                    except OSError as exc:
                        # Another grading process (a Dask worker starting beside this one) may be
                        # sweeping the same leftovers; whoever gets there first removes them.
                        log.debug("sweeping %s: %s", sub.name, exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_loop(group: Group, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in group.pids() if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            log.warning("processes %s survived SIGKILL for %.0f s", pids[:10], timeout)
            return
        time.sleep(0.02)


class V1(Backend):
    name = "cgroup v1"

    def __init__(self, mounts: dict[str, Path]):
        super().__init__()
        own = _own_paths()
        dirs = {}
        for ctrl, mount in mounts.items():
            base = mount / own.get(ctrl, "/").lstrip("/") / ROOT_NAME
            if base not in dirs.values():
                dirs[ctrl] = base
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.root = Group(self, dirs)
        self.has_freezer = "freezer" in dirs

    def _dir(self, group: Group, ctrl: str) -> Path | None:
        if ctrl in group.dirs:
            return group.dirs[ctrl]
        # cpu and cpuacct may be mounted together as one hierarchy.
        for d in group.dirs.values():
            if (d / f"{ctrl}.usage").exists() or (d / f"{ctrl}.shares").exists():
                return d
        return None

    def set_limits(self, group: Group, memory: int | None, pids: int | None) -> None:
        mem = self._dir(group, "memory")
        if memory and mem is not None:
            _write(mem / "memory.limit_in_bytes", str(memory))
            swap = mem / "memory.memsw.limit_in_bytes"
            if swap.exists():
                try:
                    _write(swap, str(memory))
                except OSError:
                    pass
        pid_dir = self._dir(group, "pids")
        if pids and pid_dir is not None:
            _write(pid_dir / "pids.max", str(pids))

    def usage(self, group: Group) -> Usage:
        cpu = 0.0
        acct = self._dir(group, "cpuacct")
        if acct is not None:
            try:
                cpu = int(_read(acct / "cpuacct.usage").strip()) / 1e9
            except (OSError, ValueError):
                pass
        peak = kills = 0
        mem = self._dir(group, "memory")
        if mem is not None:
            try:
                peak = int(_read(mem / "memory.max_usage_in_bytes").strip())
                for line in _read(mem / "memory.oom_control").splitlines():
                    if line.startswith("oom_kill "):
                        kills = int(line.split()[1])
            except (OSError, ValueError):
                pass
        return Usage(cpu, peak, kills)

    def kill(self, group: Group, timeout: float) -> None:
        freezer = group.dirs.get("freezer")
        if freezer is None:
            return _kill_loop(group, timeout)
        # Freeze first, so nothing can fork between reading the list and the kill.
        state = freezer / "freezer.state"
        try:
            _write(state, "FROZEN")
            deadline = time.monotonic() + 2
            while _read(state).strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.005)
        except OSError:
            pass
        for pid in group.pids():
            if pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            _write(state, "THAWED")
        except OSError:
            pass
        _kill_loop(group, timeout)


class V2(Backend):
    name = "cgroup v2"

    def __init__(self, base: Path):
        super().__init__()
        root = base / ROOT_NAME
        root.mkdir(exist_ok=True)
        wanted = {"memory", "pids", "cpu"}
        available = set(_read(base / "cgroup.controllers").split())
        if not wanted <= available:
            raise OSError(f"controllers {sorted(wanted - available)} are not delegated to {base}")
        enabled = set(_read(base / "cgroup.subtree_control").split())
        if not wanted <= enabled:
            # "No internal processes": leave the delegated cgroup for a leaf of our own first.
            leaf = base / "supervisor"
            leaf.mkdir(exist_ok=True)
            for pid in _read(base / "cgroup.procs").split():
                try:
                    _write(leaf / "cgroup.procs", pid)
                except OSError:
                    pass
            _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))
        _write(root / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))
        self.root = Group(self, {"unified": root})

    def set_limits(self, group: Group, memory: int | None, pids: int | None) -> None:
        d = group.dirs["unified"]
        if memory:
            _write(d / "memory.max", str(memory))
            if (d / "memory.swap.max").exists():
                try:
                    _write(d / "memory.swap.max", "0")
                except OSError:
                    pass
        if pids:
            _write(d / "pids.max", str(pids))
        # Children need the controllers too, to carry their own limits and accounting.
        try:
            _write(d / "cgroup.subtree_control", "+memory +pids +cpu")
        except OSError:
            pass

    def usage(self, group: Group) -> Usage:
        d = group.dirs["unified"]
        cpu = 0.0
        peak = kills = 0
        try:
            for line in _read(d / "cpu.stat").splitlines():
                if line.startswith("usage_usec "):
                    cpu = int(line.split()[1]) / 1e6
            if (d / "memory.peak").exists():
                peak = int(_read(d / "memory.peak").strip())
            for line in _read(d / "memory.events").splitlines():
                if line.startswith("oom_kill "):
                    kills = int(line.split()[1])
        except (OSError, ValueError):
            pass
        return Usage(cpu, peak, kills)

    def kill(self, group: Group, timeout: float) -> None:
        kill_file = group.dirs["unified"] / "cgroup.kill"
        if kill_file.exists():
            try:
                _write(kill_file, "1")
            except OSError:
                pass
        _kill_loop(group, timeout)


def _probe_v1() -> V1:
    mounts: dict[str, Path] = {}
    for point, fstype, opts in _mounts():
        if fstype != "cgroup":
            continue
        for ctrl in V1_CONTROLLERS:
            if ctrl in opts and ctrl not in mounts:
                mounts[ctrl] = Path(point)
    missing = [c for c in V1_REQUIRED if c not in mounts]
    if missing:
        raise OSError(f"cgroup v1 controllers not mounted: {', '.join(missing)}")
    if "cpu" not in mounts:
        log.info("cgroup v1 cpu controller missing: CPU shares are not set per submission")
    backend = V1(mounts)
    _self_test(backend)
    return backend


def _probe_v2() -> V2:
    points = [Path(p) for p, fstype, _ in _mounts() if fstype == "cgroup2"]
    own = _own_paths().get("")
    if not points or own is None:
        raise OSError("no cgroup v2 mount")
    backend = V2(points[0] / own.lstrip("/"))
    _self_test(backend)
    return backend


def _self_test(backend: Backend) -> None:
    """Create, limit and remove one group, so a half-usable setup is caught before grading."""
    group = backend.submission("self-test", memory=64 << 20, pids=8)
    if group is None:
        raise OSError("cannot create a cgroup")
    group.usage()
    group.remove()


@lru_cache(maxsize=1)
def backend() -> Backend:
    """The cgroup backend for this process (probed once)."""
    if os.environ.get("CNN_CGROUPS", "").lower() in ("0", "off", "no"):
        off = Backend()
        off.reason = "disabled by CNN_CGROUPS=off"
        return off
    reasons = []
    for probe in (_probe_v1, _probe_v2):
        try:
            found = probe()
            found.sweep()
            return found
        except (OSError, ValueError) as exc:
            reasons.append(str(exc))
    off = Backend()
    off.reason = "; ".join(reasons) or "no usable cgroup hierarchy"
    return off


def warn_if_off() -> bool:
    found = backend()
    if not found.enabled:
        log.warning(CGROUPS_OFF_WARNING.format(reason=found.reason))
    return found.enabled
