"""Bubblewrap sandboxes for every process that runs student code.

A sandbox sees a read-only system (``/usr``, the Python installation and the
virtual environment), its own ``/proc`` in a new PID namespace, no network,
a read-only ``/dev`` with the usual device nodes, and only the paths it is
given. Everything it can write is a size-capped tmpfs (``/tmp``,
``/dev/shm``, its working folder): nothing student code writes lands on the
host's disk, and the memory a tmpfs uses is charged to the submission's
cgroup. The course tree (``source/``, the gradebook, other students, the
hidden data) is simply not mounted. Student code runs as uid 1000 with no
capabilities.

Where bubblewrap is missing or cannot create namespaces (an instructor on
macOS, a locked-down container), :func:`sandbox_status` says so and callers
fall back to resource limits alone, logging a loud warning. Verdicts stay
trusted either way, because they are decided outside the student's process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Any as AnyTrait

from cnngrader.sandbox.limits import Limits, from_config

log = logging.getLogger("cnngrader.sandbox.bwrap")

SANDBOX_OFF_WARNING = (
    "SANDBOX OFF: bubblewrap is not available ({reason}). Student code runs with resource limits "
    "only and can read the files this user can read. Verdicts are still decided outside the "
    "student's process. Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`) "
    "to turn the sandbox on."
)
#: The unprivileged uid and gid student code runs as inside every sandbox.
SANDBOX_UID = 1000
#: Where the submission's files appear (read-only) and where a sandbox's private working copy lives.
SUBMISSION_MOUNT = "/run/submission"
HOME = "/home/student"


@lru_cache(maxsize=1)
def sandbox_status() -> tuple[bool, str]:
    """``(True, "")`` when bubblewrap works here, else ``(False, reason)``."""
    if os.environ.get("CNN_SANDBOX", "").lower() in ("0", "off", "no"):
        return False, "disabled by CNN_SANDBOX=off"
    exe = shutil.which("bwrap")
    if not exe:
        return False, "the bwrap command was not found"
    probe = bwrap_argv([], cwd="/", tmp_bytes=1 << 20, shm_bytes=1 << 20) + ["/bin/true"]
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


def sandbox_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/mpl",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    env.update(extra or {})
    return env


def bwrap_argv(binds: list[tuple[str, str, bool]], cwd: str, tmp_bytes: int, shm_bytes: int,
               tmpfs: dict[str, int] | None = None, env: dict[str, str] | None = None,
               dirs: tuple[str, ...] = ()) -> list[str]:
    """The bubblewrap prefix for a command.

    ``binds`` are ``(host path, sandbox path, writable)``; nothing in this
    project passes a writable one for student code. ``tmpfs`` maps extra
    mount points to their size caps; ``dirs`` are empty folders to create
    (mount points for mounts made later, inside the sandbox).
    """
    argv = ["bwrap", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-pid", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    # Mount order matters: the private /tmp first, so that binds below it (a
    # course or venv cloned under /tmp) stay visible.
    argv += ["--size", str(tmp_bytes), "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
             "--size", str(shm_bytes), "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    argv += _system_binds()
    for host, inside, writable in binds:
        argv += ["--bind" if writable else "--ro-bind", host, inside]
    for target, size in (tmpfs or {}).items():
        argv += ["--size", str(size), "--tmpfs", target]
    for folder in dirs:
        argv += ["--dir", folder]
    argv += ["--clearenv"]
    for key, value in sandbox_env(env).items():
        argv += ["--setenv", key, value]
    # The sandbox's root is a tmpfs with no size cap, where bwrap made the mount points:
    # read-only, it is neither a place to fill nor a place to leave notes for another run.
    argv += ["--remount-ro", "/", "--chdir", cwd]
    return argv


def limit_argv(memory: int, cpu: int | None, fsize: int) -> list[str]:
    """A ``prlimit`` prefix; the limits are inherited through bwrap by everything inside.

    ``cpu=None`` leaves CPU time alone (for a long-lived process that runs no
    student code and sets its children's limits itself).
    """
    exe = shutil.which("prlimit")
    if not exe:
        return []
    cpu_arg = [f"--cpu={cpu}"] if cpu is not None else []
    return [exe, f"--as={memory}", *cpu_arg, f"--fsize={fsize}", "--core=0", "--"]


def sandbox_init_pid(bwrap_pid: int, timeout: float = 10.0) -> int | None:
    """The host pid of the first process inside a bubblewrap sandbox (whose root is the sandbox's)."""
    import time

    deadline = time.monotonic() + timeout
    path = f"/proc/{bwrap_pid}/task/{bwrap_pid}/children"
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                kids = fh.read().split()
        except OSError:
            return None
        if kids:
            return int(kids[0])
        time.sleep(0.002)
    return None


class NoHeartbeatKernelClient(AsyncKernelClient):
    """A client without the heartbeat channel.

    Whether the kernel lives is read from its process (the manager's
    ``is_alive``), so the heartbeat adds nothing, and its thread can hang for
    good in ``stop_channels`` once a hostile kernel writes garbage to its socket.
    """

    def start_channels(self, shell: bool = True, iopub: bool = True, stdin: bool = True, hb: bool = True,
                       control: bool = True) -> None:
        super().start_channels(shell=shell, iopub=iopub, stdin=stdin, hb=False, control=control)

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        """jupyter_client's wait, without its final 0.2 s of listening to a silent IOPub.

        That wait ends every kernel start with 0.2 s of idle time, a sixth of
        a submission's grading. nbclient ignores IOPub messages that answer
        other requests, so draining what is already there is enough.
        """
        import time
        from queue import Empty

        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                msg = None
            if msg is not None and msg["msg_type"] == "kernel_info_reply":
                try:
                    # IOPub is connected once the kernel's status for this request arrives on it.
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(msg)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0.005)
            except Empty:
                break


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts ipykernel inside bubblewrap, with limits, in the submission's cgroup.

    * The kernel's working folder is a size-capped tmpfs holding a copy of
      the notebook's folder, which is bound read-only: student code cannot
      write into ``autograded/`` or anywhere on the host's disk.
    * The ZMQ sockets use the IPC transport inside a small tmpfs of the
      sandbox. The grader reaches them through ``/proc/<pid>/root``, so no
      directory is shared writable between the kernel and the grader. The
      connection file is bound read-only.
    * Limits come from ``c.CnnLimits`` in ``nbgrader_config.py``.
    * In a new PID namespace ipykernel would see its parent as PID 1 and its
      parent poller would exit, so ``JPY_PARENT_PID`` is cleared; bwrap's
      ``--die-with-parent`` does the poller's job instead.
    """

    #: The submission's cgroup (a :class:`cnngrader.sandbox.cgroups.Group`), set by SandboxedExecute.
    cnn_group = AnyTrait(None, allow_none=True)
    #: Largest ZMQ message accepted from the kernel; set by SandboxedExecute from the output caps.
    cnn_max_message = AnyTrait(None, allow_none=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.client_factory = NoHeartbeatKernelClient
        self._private = Path(tempfile.mkdtemp(prefix="cnn-kernel-"))
        # Kernels that never start, or that a watchdog abandons, skip
        # cleanup_resources; the folder still goes when the manager does.
        weakref.finalize(self, shutil.rmtree, str(self._private), True)
        self.transport = "ipc"
        self.connection_file = str(self._private / "kernel.json")
        # Sandboxed, the kernel binds its sockets in a tmpfs of its own; without the
        # sandbox they go in the private folder.
        self._sandboxed = sandbox_status()[0]
        self._inside_ip = "/run/cnn/ipc/kernel" if self._sandboxed else str(self._private / "kernel-ipc")
        self.ip = self._inside_ip
        self._kernel_group = None

    @property
    def cnn_limits(self) -> Limits:
        return from_config(self.config)

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict]:
        # Signals cannot reach a kernel in its own session and PID namespace;
        # ipykernel interrupts itself when asked over the control channel.
        self.kernel_spec.interrupt_mode = "message"
        if self.cnn_max_message:
            # A single huge message could exhaust the grader before any output cap applies.
            self.context.setsockopt(zmq.MAXMSGSIZE, int(self.cnn_max_message))
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        cwd = kw.get("cwd") or os.getcwd()
        # The kernel's own chatter (connection banners, warnings) is not the student's output.
        kw["stdout"] = subprocess.DEVNULL
        kw["stderr"] = subprocess.DEVNULL
        env = {k: v for k, v in (kw.get("env") or {}).items() if k.startswith("NBGRADER_")}
        env["JPY_PARENT_PID"] = ""
        limits = self.cnn_limits
        ok = self._sandboxed
        prefix: list[str] = []
        if self.cnn_group is not None:
            self._kernel_group = self.cnn_group.child("kernel", memory=limits.memory_bytes, pids=limits.pids)
            prefix = self._kernel_group.join_argv()
        rlimits = limit_argv(limits.memory_bytes, limits.kernel_cpu_seconds, limits.max_file_bytes)
        kernel_cmd = launcher_argv(kernel_cmd)
        if ok:
            # The connection file names the sockets as the kernel sees them.
            kernel_cmd = [a.replace(self.connection_file, "/run/cnn/kernel.json") for a in kernel_cmd]
            copy = f"cp -R -P {SUBMISSION_MOUNT}/. {HOME}/ 2>/dev/null; exec \"$@\""
            box = bwrap_argv([(cwd, SUBMISSION_MOUNT, False), (self.connection_file, "/run/cnn/kernel.json", False)],
                             cwd=HOME, tmp_bytes=limits.tmp_bytes, shm_bytes=limits.shm_bytes,
                             tmpfs={HOME: limits.home_bytes, "/run/cnn/ipc": 1 << 20}, env=env)
            kernel_cmd = prefix + rlimits + box + ["/bin/sh", "-c", copy, "cnn-kernel", *kernel_cmd]
            kw["cwd"] = "/"
        else:
            warn_if_off()
            work = self._private / "work"
            shutil.copytree(cwd, work, symlinks=False, ignore=copy_ignore, dirs_exist_ok=True)
            kernel_cmd = prefix + rlimits + list(kernel_cmd)
            kw["cwd"] = str(work)
        return kernel_cmd, kw

    def write_connection_file(self, **kwargs: Any) -> None:
        self.ip = self._inside_ip
        super().write_connection_file(**kwargs)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        await super()._async_launch_kernel(kernel_cmd, **kw)
        if not self._sandboxed:
            return
        proc = getattr(self.provisioner, "process", None)
        init = await asyncio.get_running_loop().run_in_executor(None, sandbox_init_pid, proc.pid) if proc else None
        if init is None:
            raise RuntimeError("the sandboxed kernel did not start")
        # The sockets live in the sandbox's own tmpfs; its root is reachable from here.
        self.ip = f"/proc/{init}/root{self._inside_ip}"

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # A killed sandbox is gone within milliseconds; polling every 0.1 s made
        # each submission wait about that long for nothing.
        await super()._async_wait(pollinterval=min(pollinterval, 0.005))

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._private, ignore_errors=True)


#: ipykernel_launcher, minus the debugger: ipykernel imports debugpy whenever it can (0.12 s of
#: CPU per kernel), and nobody debugs a grading kernel.
# `python -c` puts the working folder (the submission's files) first on sys.path, where a student's
# random.py would shadow the standard library as ipykernel starts. ipykernel_launcher removes it;
# IPython then adds the folder back after the standard library, so the notebook still imports
# its own modules (cnn_checks).
_LAUNCHER = ("import sys\n"
             "if sys.path and sys.path[0] == '': del sys.path[0]\n"
             "sys.modules['debugpy'] = None\n"
             "from ipykernel import kernelapp\n"
             "kernelapp.launch_new_instance()\n")


def launcher_argv(kernel_cmd: list[str]) -> list[str]:
    """The kernelspec's ``python -m ipykernel_launcher ...``, started without debugpy."""
    for i in range(len(kernel_cmd) - 1):
        if kernel_cmd[i] == "-m" and kernel_cmd[i + 1] == "ipykernel_launcher":
            return [*kernel_cmd[:i], "-c", _LAUNCHER, *kernel_cmd[i + 2:]]
    return kernel_cmd


def copy_ignore(directory: str, names: list[str]) -> list[str]:
    """Skip symlinks, notebooks' checkpoints and anything over 16 MiB when copying a work dir."""
    skip = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.islink(path) or name == ".ipynb_checkpoints":
            skip.append(name)
        elif os.path.isfile(path) and os.path.getsize(path) > 16 << 20:
            skip.append(name)
    return skip
