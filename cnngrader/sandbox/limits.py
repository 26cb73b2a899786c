"""Every limit on student code and on uploads, configurable in ``nbgrader_config.py``.

The defaults are written here and nowhere else. ``nbgrader_config.py``
overrides them as ``c.CnnLimits.<name> = value``; every part of grading (the
notebook kernel, each graded function's sandbox, the helper servers, staging
and the batch) reads them through :func:`from_config`. ``make limits`` prints
the values in force.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from traitlets import Float, Integer
from traitlets.config import Config, Configurable

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


class CnnLimits(Configurable):
    """Resource limits for student code and caps on what students upload."""

    # Memory and processes (per submission, then per part: the kernel, each function).
    submission_memory_bytes = Integer(3 * GiB, help="memory (RAM and tmpfs) of all of one submission's "
                                      "processes together (cgroup)").tag(config=True)
    memory_bytes = Integer(2 * GiB, help="memory of the notebook kernel, and of each graded function's "
                           "processes (cgroup); also each process's address space").tag(config=True)
    submission_pids = Integer(256, help="processes and threads of one submission together").tag(config=True)
    pids = Integer(128, help="processes and threads of the kernel, and of each graded function").tag(config=True)
    # Time.
    cpu_seconds = Integer(20, help="CPU seconds per graded function, all its processes together").tag(config=True)
    wall_seconds = Float(60.0, help="wall-clock backstop per graded function; a timeout under load is "
                         "retried alone before it costs points").tag(config=True)
    kernel_cpu_seconds = Integer(300, help="CPU seconds for running the whole notebook").tag(config=True)
    kernel_wall_seconds = Float(180.0, help="wall-clock seconds for running the whole notebook").tag(config=True)
    student_timeout_seconds = Float(900.0, help="make grade: wall-clock seconds for one student's whole "
                                    "autograde before it is stopped and recorded").tag(config=True)
    # Disk: every writable place student code sees is a size-capped tmpfs.
    max_file_bytes = Integer(64 * MiB, help="largest file student code may write").tag(config=True)
    tmp_bytes = Integer(64 * MiB, help="size of each sandbox's private /tmp").tag(config=True)
    home_bytes = Integer(64 * MiB, help="size of each sandbox's private working folder").tag(config=True)
    shm_bytes = Integer(16 * MiB, help="size of each sandbox's private /dev/shm").tag(config=True)
    # What comes back.
    result_bytes = Integer(8 * MiB, help="largest result one check may send back").tag(config=True)
    max_output_bytes = Integer(200_000, help="output kept per notebook cell").tag(config=True)
    max_notebook_output_bytes = Integer(2_000_000, help="output kept per notebook").tag(config=True)
    grader_memory_bytes = Integer(4 * GiB, help="address space of the trusted grading process itself")\
        .tag(config=True)
    # What students upload (staging).
    max_files = Integer(200, help="files kept per submission (the notebook always)").tag(config=True)
    max_submission_bytes = Integer(64 * MiB, help="total size kept per submission").tag(config=True)
    max_upload_file_bytes = Integer(16 * MiB, help="largest single uploaded file kept").tag(config=True)
    max_depth = Integer(8, help="deepest folder level kept in a submission").tag(config=True)
    max_scan_entries = Integer(20_000, help="directory entries looked at per submission before the rest "
                               "is set aside unread").tag(config=True)


@dataclass(frozen=True)
class Limits:
    """The values of :class:`CnnLimits`, as plain data (they cross into the sandbox as JSON)."""

    submission_memory_bytes: int
    memory_bytes: int
    submission_pids: int
    pids: int
    cpu_seconds: int
    wall_seconds: float
    kernel_cpu_seconds: int
    kernel_wall_seconds: float
    student_timeout_seconds: float
    max_file_bytes: int
    tmp_bytes: int
    home_bytes: int
    shm_bytes: int
    result_bytes: int
    max_output_bytes: int
    max_notebook_output_bytes: int
    grader_memory_bytes: int
    max_files: int
    max_submission_bytes: int
    max_upload_file_bytes: int
    max_depth: int
    max_scan_entries: int

    def sandbox_job(self) -> dict:
        """The limits a function runner and helper server need, in the runner's names."""
        return {"memory": self.memory_bytes, "cpu": self.cpu_seconds, "wall": self.wall_seconds,
                "fsize": self.max_file_bytes, "tmp": self.tmp_bytes, "home": self.home_bytes,
                "shm": self.shm_bytes, "result_bytes": self.result_bytes}


def from_config(config: Config | None = None) -> Limits:
    """The limits in force: defaults from :class:`CnnLimits`, overridden by ``config``."""
    traits = CnnLimits(config=config or Config())
    return Limits(**{name: getattr(traits, name) for name in Limits.__dataclass_fields__})


def for_assignment(limits: Limits, assignment: Any) -> Limits:
    """``limits`` with the assignment spec's ``[limits]`` table applied on top.

    A spec states what its own checks need (a training run needs more CPU
    seconds than a pooling layer), so its values win over the course-wide ones
    for that assignment only.
    """
    overrides = getattr(assignment, "limits", None) or {}
    unknown = set(overrides) - set(Limits.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{assignment.name}: unknown limits in the spec: {sorted(unknown)}")
    return replace(limits, **overrides) if overrides else limits


def from_course(root: Path) -> Limits:
    """The limits set in ``<root>/nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    path = root / "nbgrader_config.py"
    config = PyFileConfigLoader(path.name, path=str(root)).load_config() if path.exists() else Config()
    return from_config(config)


def describe(limits: Limits) -> str:
    """One line per limit, for ``make limits``."""
    lines = []
    for name, value in asdict(limits).items():
        help_text = CnnLimits.class_traits()[name].help
        lines.append(f"c.CnnLimits.{name} = {value!r}  # {help_text}")
    return "\n".join(lines)


def main() -> int:
    from cnngrader.core import paths

    print(describe(from_course(paths.course_root())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
