"""A throw-away PostgreSQL server for the tests, started from Debian's server binaries.

The server runs as the ``postgres`` system user (``initdb`` refuses to run as
root), with its data directory, socket and log in a fresh directory under the
system temp dir, and listens on a free TCP port on 127.0.0.1 with ``trust``
authentication. Use :func:`running` as a context manager; the server is always
stopped (``pg_ctl stop -m immediate``) and its directory removed afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"
BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = ("install the PostgreSQL server (as root: apt-get install postgresql) "
                "and run the tests as root")


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb, pg_ctl and postgres."""
    def version(path: str) -> tuple[int, ...]:
        part = Path(path).parent.name
        return tuple(int(x) for x in part.split(".") if x.isdigit())

    for candidate in sorted(glob.glob(BIN_GLOB), key=version, reverse=True):
        path = Path(candidate)
        if all(os.access(path / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres", "createdb")):
            return path
    return None


def unavailable_reason() -> str | None:
    """Why a server cannot be started here, or ``None`` if it can."""
    if find_bindir() is None:
        return f"PostgreSQL server binaries not found in {BIN_GLOB}: {INSTALL_HINT}"
    if os.geteuid() != 0:
        return (f"starting a PostgreSQL server needs root (to run initdb as the '{PG_USER}' "
                f"user): {INSTALL_HINT}")
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"no '{PG_USER}' system user: {INSTALL_HINT}"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) not found"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgServer:
    bindir: Path
    base: Path
    port: int = 0

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        return self.base / "sock"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    def url(self, dbname: str = "gradebook") -> str:
        """libpq URL (for psycopg2.connect / psql)."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def run(self, tool: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a PostgreSQL tool as the postgres user, from the server's directory."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env["LANG"] = "C.UTF-8"
        proc = subprocess.run(["runuser", "-u", PG_USER, "--", str(self.bindir / tool), *args],
                              cwd=self.base, env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n"
                               f"{proc.stderr}\nserver log:\n{self.log_tail()}")
        return proc

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", PG_USER, "-E", "UTF8", "--no-sync")

    def start(self, attempts: int = 3) -> None:
        error: Exception | None = None
        for _ in range(attempts):
            self.port = free_port()
            options = (f"-k {self.sockdir} -p {self.port} -c listen_addresses=127.0.0.1 "
                       f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       f"-c max_connections=50")
            try:
                self.run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options,
                         "-w", "-t", "60", "start")
                return
            except RuntimeError as exc:  # most likely the port was taken meanwhile: try another
                error = exc
                self.stop()
        raise RuntimeError(f"could not start PostgreSQL after {attempts} attempts") from error

    def createdb(self, name: str) -> None:
        self.run("createdb", "-h", str(self.sockdir), "-p", str(self.port), "-U", PG_USER, name)

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        proc = self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop",
                        check=False)
        if proc.returncode != 0 and (self.data / "postmaster.pid").exists():
            # pg_ctl could not stop it: kill the postmaster we started (its pid is the file's first line).
            try:
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, 9)
            except (OSError, ValueError, IndexError):
                pass


@contextmanager
def running(*databases: str) -> Iterator[PgServer]:
    """Start a fresh server with ``databases`` created; stop and delete it on exit."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(f"PostgreSQL server binaries not found: {INSTALL_HINT}")
    user = pwd.getpwnam(PG_USER)
    base = Path(tempfile.mkdtemp(prefix="cnn-pg-"))
    server = PgServer(bindir, base)
    try:
        server.sockdir.mkdir()
        for path in (base, server.sockdir):
            os.chown(path, user.pw_uid, user.pw_gid)
        server.init()
        server.start()
        for name in databases:
            server.createdb(name)
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
