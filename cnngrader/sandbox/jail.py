"""Namespaces, mounts, capabilities and limits for one process inside the sandbox.

The grading zygote runs inside one bubblewrap sandbox per submission and
forks a child per graded function. Each child calls :func:`enter` to get a
sandbox of its own, nested in the outer one:

* a new user namespace (so it may mount, then gives every capability up);
* a new mount namespace in which ``/tmp``, ``/home/student`` and
  ``/dev/shm`` are fresh size-capped tmpfs mounts and ``/proc`` is hidden
  under an empty read-only one;
* new PID, IPC, network and UTS namespaces: the first process forked after
  :func:`enter` is PID 1 of a namespace that holds nothing else, and it sees
  neither the zygote nor the other functions' processes.

:func:`drop_privileges` then clears the capability bounding set and every
capability set and sets ``no_new_privs``, so student code can neither undo
the mounts nor gain privileges through ``execve``.

Only the standard library is used (``ctypes`` for the system calls): this
file is bound read-only into the sandbox.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: Highest capability number any current kernel knows, with room to spare.
_LAST_CAP = 63

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

#: The uid and gid student code runs as, inside its own user namespace.
INNER_ID = 1000


class JailError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise JailError(err, f"{what}: {os.strerror(err)}")


def set_non_dumpable() -> None:
    """Forbid ptrace and /proc access to this process's memory and descriptors from the same uid."""
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount_tmpfs(target: str, size: int, mode: str = "1777", readonly: bool = False) -> None:
    flags = MS_NOSUID | MS_NODEV | (MS_RDONLY | MS_NOEXEC if readonly else 0)
    options = f"size={max(int(size), 4096)},mode={mode},uid={INNER_ID},gid={INNER_ID}".encode()
    _check(_libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, options), f"mount tmpfs on {target}")


def enter(tmpfs: dict[str, int], new_pid: bool = True) -> None:
    """Move this (single-threaded) process into fresh namespaces with private tmpfs mounts.

    ``tmpfs`` maps each mount point to its size cap in bytes; the mount points
    must already exist. Call before starting any thread.
    """
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS
    if new_pid:
        flags |= CLONE_NEWPID
    _check(_libc.unshare(flags), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{INNER_ID} {uid} 1")
    _write("/proc/self/gid_map", f"{INNER_ID} {gid} 1")
    # Nothing mounted here may propagate back to the zygote's namespace.
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    # The interpreter's own files may live under a folder about to be covered (a virtualenv in
    # /tmp): hold them by descriptor, and bind them back read-only over the fresh tmpfs.
    kept = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in _covered_python_dirs(tmpfs)}
    for target, size in tmpfs.items():
        _mount_tmpfs(target, size)
    for path, fd in kept.items():
        try:
            os.makedirs(path, exist_ok=True)
            source = f"/proc/self/fd/{fd}".encode()
            _check(_libc.mount(source, path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
            _check(_libc.mount(None, path.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                               None), f"read-only {path}")
        finally:
            os.close(fd)
    # A new /proc cannot be mounted under bubblewrap's partly covered one, so
    # hide it: the processes of the zygote and of other functions stay unnamed.
    _mount_tmpfs("/proc", 4096, mode="555", readonly=True)


def _covered_python_dirs(tmpfs: dict[str, int]) -> list[str]:
    """The interpreter's folders (prefixes, site-packages) that a tmpfs mount point would hide."""
    import site
    import sys

    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, *site.getsitepackages()}
    out = []
    for path in sorted(os.path.realpath(p) for p in candidates if p and os.path.isdir(p)):
        if any(path == t or path.startswith(t.rstrip("/") + "/") for t in tmpfs) and \
                not any(path.startswith(o + "/") for o in out):
            out.append(path)
    return out


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges() -> None:
    """Give up every capability for good, and forbid gaining any through execve."""
    for cap in range(_LAST_CAP + 1):
        # EINVAL past the kernel's last capability is expected and harmless.
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def set_limits(memory: int, cpu: int, fsize: int, nproc: int | None = None) -> None:
    """Per-process limits, inherited by every child (the cgroup bounds the whole tree)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def quiet() -> None:
    """Point stdin, stdout and stderr at /dev/null: floods cost nothing and leak nothing."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)


def close_fds_except(keep: set[int]) -> None:
    """Close every descriptor above 2 that is not in ``keep`` (``/proc`` may be hidden already)."""
    try:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ValueError, OSError):
        limit = 1024
    limit = min(limit if limit > 0 else 1024, 65536)
    start = 3
    for fd in sorted(keep | {limit}):
        if fd > start:
            os.closerange(start, fd)
        start = max(start, fd + 1)
