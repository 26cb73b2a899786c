"""Stage one submission for grading: a bounded, clean copy, never touching the original.

Whatever a student uploads, staging either produces a folder nbgrader can
grade or records why it set something aside:

* only regular files are copied, opened without following links and read
  with a size cap; symlinks, FIFOs, sockets and devices are left out;
* names must be clean UTF-8 without control or format characters;
* the number of files, their total size, each file's size, the folder depth
  and the number of directory entries looked at are capped
  (``c.CnnLimits.max_files`` and friends in ``nbgrader_config.py``);
* a missing, renamed or malformed notebook is replaced by the blank release,
  so the student still gets a recorded submission (scoring 0), and the reason
  is kept for the instructor.

The walk is iterative, so a folder nested thousands deep costs nothing but
the entries looked at. Every reason shows names escaped (:mod:`textsafe`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cnngrader.core.i18n import Msg
from cnngrader.core.textsafe import clean, is_clean
from cnngrader.sandbox.limits import Limits

TIMESTAMP = "timestamp.txt"


@dataclass
class StageResult:
    student: str
    attention: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


class _Skips:
    """Left-out entries, grouped by reason, with a few example names each."""

    def __init__(self) -> None:
        self.by_reason: dict[str, list[str]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, reason: str, name: str) -> None:
        self.counts[reason] += 1
        if len(self.by_reason[reason]) < 3:
            self.by_reason[reason].append(clean(name, limit=60))

    def notes(self) -> list[str]:
        out = []
        for reason, count in self.counts.items():
            examples = ", ".join(self.by_reason[reason])
            if count == 1:
                out.append(Msg("left out 1 entry ({reason}): {examples}", reason=reason, examples=examples))
                continue
            more = (Msg(" and {n} more", n=count - len(self.by_reason[reason]))
                    if count > len(self.by_reason[reason]) else "")
            out.append(Msg("left out {count} entries ({reason}): {examples}{more}", count=count, reason=reason,
                           examples=examples, more=more))
        return out


def valid_student_id(name: str) -> bool:
    """Student ids become folder names, gradebook keys and CSV cells: keep them plain."""
    return (0 < len(name) <= 128 and is_clean(name) and not name.startswith(".")
            and all(ch.isalnum() or ch in "-_@." for ch in name))


def read_regular(path: Path, max_bytes: int) -> bytes:
    """Read a regular file without following links, refusing anything bigger than ``max_bytes``.

    FIFOs and devices are refused before they are read (``O_NONBLOCK`` keeps
    the open from waiting for a writer).
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if info.st_size > max_bytes:
            raise OSError(errno.EFBIG, "file too large")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise OSError(errno.EFBIG, "file too large")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def stage(src: Path, dest: Path, release_notebooks: list[Path], limits: Limits, student: str) -> StageResult:
    """Copy the submission folder ``src`` into ``dest`` (which is replaced), within the caps.

    ``release_notebooks`` are the assignment's blank notebooks: each must be
    present in the submission under its own name, or is put back blank.
    """
    names = {p.name for p in release_notebooks}
    result = StageResult(student)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    skips = _Skips()
    budget_note = None
    if src.is_dir() and not src.is_symlink():
        pending: list[tuple[Path, Path, int]] = [(src, dest, 0)]
        looked = 0
        while pending:
            folder, target, depth = pending.pop()
            try:
                entries = os.scandir(folder)
            except OSError:
                skips.add(Msg("a folder that could not be read"), folder.name)
                continue
            with entries:
                for entry in entries:
                    looked += 1
                    if looked > limits.max_scan_entries:
                        budget_note = Msg("stopped looking after {n} files and folders; the rest was left out",
                                          n=limits.max_scan_entries)
                        pending.clear()
                        break
                    name = entry.name
                    if not is_clean(name) or name in (".", "..") or len(name.encode("utf-8", "replace")) > 255:
                        skips.add(Msg("a name that is not clean UTF-8 or holds control characters"), name)
                        continue
                    if name in (".ipynb_checkpoints", "__pycache__"):
                        continue
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        skips.add(Msg("could not be read"), name)
                        continue
                    if stat.S_ISLNK(info.st_mode):
                        skips.add(Msg("a symlink"), name)
                    elif stat.S_ISDIR(info.st_mode):
                        if depth + 1 > limits.max_depth:
                            skips.add(Msg("a folder nested deeper than {n} levels", n=limits.max_depth), name)
                        else:
                            (target / name).mkdir()
                            pending.append((Path(entry.path), target / name, depth + 1))
                    elif not stat.S_ISREG(info.st_mode):
                        skips.add(Msg("not a regular file (a FIFO, socket or device)"), name)
                    elif info.st_size > limits.max_upload_file_bytes:
                        skips.add(Msg("a file over {n} MiB", n=limits.max_upload_file_bytes // (1 << 20)), name)
                    elif depth == 0 and name in names:
                        _copy(Path(entry.path), target / name, limits, skips, result, counted=False)
                    elif result.files >= limits.max_files:
                        skips.add(Msg("more than {n} files", n=limits.max_files), name)
                    elif result.bytes + info.st_size > limits.max_submission_bytes:
                        skips.add(Msg("more than {n} MiB in all", n=limits.max_submission_bytes // (1 << 20)), name)
                    else:
                        _copy(Path(entry.path), target / name, limits, skips, result, counted=True)
    result.attention += skips.notes()
    if budget_note:
        result.attention.append(budget_note)
    for release in release_notebooks:
        _check_notebook(dest, release.name, release, result)
    _check_timestamp(dest, result)
    return result


def _copy(src: Path, target: Path, limits: Limits, skips: _Skips, result: StageResult, counted: bool) -> None:
    try:
        data = read_regular(src, limits.max_upload_file_bytes)
    except OSError:
        skips.add(Msg("could not be read as a regular file"), src.name)
        return
    target.write_bytes(data)
    if counted:
        result.files += 1
        result.bytes += len(data)


def _check_notebook(dest: Path, notebook_name: str, release: Path, result: StageResult) -> None:
    import nbformat

    notebook = dest / notebook_name
    if notebook.is_symlink() or (notebook.exists() and not notebook.is_file()):
        # A folder named like the notebook: staging copied it as a folder, not a notebook.
        shutil.rmtree(notebook) if notebook.is_dir() and not notebook.is_symlink() else notebook.unlink()
        result.attention.append(Msg("{name} is not a notebook file: graded as blank", name=notebook_name))
        shutil.copyfile(release, notebook)
        return
    if not notebook.exists():
        others = sorted(clean(p.name, 60) for p in dest.glob("*.ipynb"))
        found = Msg(" (found: {names})", names=", ".join(others[:5])) if others else ""
        result.attention.append(Msg("missing notebook {name}{found}: graded as blank", name=notebook_name,
                                    found=found))
        shutil.copyfile(release, notebook)
        return
    try:
        nb = nbformat.reads(notebook.read_text(encoding="utf-8"), as_version=4)
        nbformat.validate(nb)
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - any unreadable notebook is handled the same way
        result.attention.append(Msg("malformed notebook ({error}): graded as blank", error=type(exc).__name__))
        shutil.copyfile(release, notebook)


def _check_timestamp(dest: Path, result: StageResult) -> None:
    path = dest / TIMESTAMP
    if not path.exists() and not path.is_symlink():
        return
    from nbgrader.utils import parse_utc

    try:
        if path.is_symlink() or not path.is_file():
            raise ValueError("not a file")
        text = path.read_text(encoding="utf-8").strip()
        # A date, a time and a zone name or offset; never a path (dateutil would open it as a zone file).
        if len(text) > 64 or not re.fullmatch(r"[0-9A-Za-z :.,+\-_]*", text):
            raise ValueError("not a timestamp")
        parse_utc(text)
    except Exception:  # noqa: BLE001 - whatever the student wrote, the submission just has no time
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        result.attention.append(Msg("timestamp.txt could not be read: the submission has no time"))
