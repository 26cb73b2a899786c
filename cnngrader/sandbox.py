"""Bubblewrap sandboxes and resource limits for every process that runs student code.

A sandbox sees a read-only system (``/usr``, the Python installation and the
virtual environment), a private size-capped ``/tmp``, its own ``/proc`` in a
new PID namespace, no network, and only the directories it is given. The
course tree (``source/``, ``gradebook.db``, other students, the hidden data)
is simply not mounted.

Where bubblewrap is missing or cannot create namespaces (an instructor on
macOS, a locked-down container), :func:`sandbox_status` says so and callers
fall back to resource limits alone, logging a loud warning. Verdicts stay
trusted either way, because they are decided outside the student's process.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Instance

log = logging.getLogger("cnngrader.sandbox")

GiB = 1 << 30
MiB = 1 << 20

SANDBOX_OFF_WARNING = (
    "SANDBOX OFF: bubblewrap is not available ({reason}). Student code runs with resource limits "
    "only and can read the files this user can read. Verdicts are still decided outside the "
    "student's process. Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`) "
    "to turn the sandbox on."
)


@dataclass(frozen=True)
class Limits:
    """Per-process limits for student code (see ``nbgrader_config.py``)."""

    #: Address-space cap in bytes.
    memory: int = 2 * GiB
    #: CPU seconds for each graded function's worker.
    cpu: int = 20
    #: Wall-clock seconds for each graded function's worker.
    wall: float = 20.0
    #: Largest file a student process may write.
    fsize: int = 64 * MiB
    #: Size of the private /tmp.
    tmp_size: int = 64 * MiB
    #: CPU seconds for the whole notebook kernel during autograde.
    kernel_cpu: int = 300


@lru_cache(maxsize=1)
def sandbox_status() -> tuple[bool, str]:
    """``(True, "")`` when bubblewrap works here, else ``(False, reason)``."""
    if os.environ.get("CNN_SANDBOX", "").lower() in ("0", "off", "no"):
        return False, "disabled by CNN_SANDBOX=off"
    exe = shutil.which("bwrap")
    if not exe:
        return False, "the bwrap command was not found"
    probe = bwrap_argv([], cwd="/") + ["/bin/true"]
    try:
        proc = subprocess.run(probe, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap failed to start ({exc})"
    if proc.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {proc.stderr.decode(errors='replace').strip()}"
    return True, ""


def warn_if_off() -> bool:
    ok, reason = sandbox_status()
    if not ok:
        log.warning(SANDBOX_OFF_WARNING.format(reason=reason))
    return ok


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    # Only the /etc files that the dynamic loader and Python need; /etc as a
    # whole would show the host's configuration (and /etc/shadow to root).
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/passwd", "/etc/group",
                 "/etc/nsswitch.conf", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    prefixes = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    for prefix in sorted(prefixes):
        if prefix and not prefix.startswith(("/usr/", "/bin", "/lib")) and prefix != "/usr":
            args += ["--ro-bind", prefix, prefix]
    return args


def bwrap_argv(binds: list[tuple[str, str, bool]], cwd: str, limits: Limits | None = None,
               share_pid: bool = False, env: dict[str, str] | None = None) -> list[str]:
    """The bubblewrap prefix for a command.

    ``binds`` are ``(host path, sandbox path, writable)``. ``share_pid`` keeps
    the host PID namespace (never used for student code here; see
    :class:`SandboxedKernelManager` for how the kernel copes without it).
    """
    limits = limits or Limits()
    argv = ["bwrap", "--unshare-user", "--unshare-ipc", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if not share_pid:
        argv += ["--unshare-pid"]
    # Mount order matters: the private /tmp first, so that binds below it (a
    # course or venv cloned under /tmp, the kernel's private directory) stay visible.
    argv += ["--size", str(limits.tmp_size), "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"]
    argv += _system_binds()
    for host, inside, writable in binds:
        argv += ["--bind" if writable else "--ro-bind", host, inside]
    argv += ["--clearenv"]
    base_env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/mpl",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    base_env.update(env or {})
    for key, value in base_env.items():
        argv += ["--setenv", key, value]
    argv += ["--chdir", cwd]
    return argv


def limit_argv(memory: int, cpu: int, fsize: int) -> list[str]:
    """A ``prlimit`` prefix; the limits are inherited through bwrap by everything inside."""
    exe = shutil.which("prlimit")
    if not exe:
        return []
    return [exe, f"--as={memory}", f"--cpu={cpu}", f"--fsize={fsize}", "--core=0", "--"]


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts ipykernel inside bubblewrap, with limits.

    * The ZMQ sockets use the IPC transport, with socket files and the
      connection file in a private directory that is the only shared path
      besides the working directory.
    * The working directory is a private copy of the notebook's folder, so
      student code cannot write into ``autograded/``.
    * In a new PID namespace ipykernel would see its parent as PID 1 and its
      parent poller would exit, so ``JPY_PARENT_PID`` is cleared; bwrap's
      ``--die-with-parent`` does the poller's job instead.
    """

    limits = Instance(Limits, args=())

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._private = Path(tempfile.mkdtemp(prefix="cnn-kernel-"))
        self.transport = "ipc"
        self.connection_file = str(self._private / "kernel.json")
        self.ip = str(self._private / "kernel-ipc")

    async def _async_pre_start_kernel(self, **kw):
        # Signals cannot reach a kernel in its own session and PID namespace;
        # ipykernel interrupts itself when asked over the control channel.
        self.kernel_spec.interrupt_mode = "message"
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        cwd = kw.get("cwd") or os.getcwd()
        work = self._private / "work"
        shutil.copytree(cwd, work, symlinks=False, ignore=copy_ignore, dirs_exist_ok=True)
        # The kernel's own chatter (connection banners, warnings) is not the student's output.
        kw["stdout"] = subprocess.DEVNULL
        kw["stderr"] = subprocess.DEVNULL
        env = {k: v for k, v in (kw.get("env") or {}).items() if k.startswith("NBGRADER_")}
        env["JPY_PARENT_PID"] = ""
        ok, _ = sandbox_status()
        limits = self.limits
        if ok:
            prefix = bwrap_argv([(str(self._private), str(self._private), True), (str(work), cwd, True)],
                                cwd=cwd, limits=limits, env=env)
            kernel_cmd = limit_argv(limits.memory, limits.kernel_cpu, limits.fsize) + prefix + list(kernel_cmd)
        else:
            warn_if_off()
            kernel_cmd = limit_argv(limits.memory, limits.kernel_cpu, limits.fsize) + list(kernel_cmd)
            kw["cwd"] = str(work)
        return kernel_cmd, kw

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._private, ignore_errors=True)


def copy_ignore(directory: str, names: list[str]) -> list[str]:
    """Skip symlinks, notebooks' checkpoints and anything over 16 MiB when copying a work dir."""
    skip = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.islink(path) or name == ".ipynb_checkpoints":
            skip.append(name)
        elif os.path.isfile(path) and os.path.getsize(path) > 16 * MiB:
            skip.append(name)
    return skip
