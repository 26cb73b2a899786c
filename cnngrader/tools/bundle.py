"""The grading bundle: what a remote worker needs to grade one assignment, versioned and hashed.

A worker of the Dask engine (:mod:`cnngrader.tools.dask_engine`) has no
course folder and never opens the gradebook. It gets one bundle per batch:
a deterministic tar archive holding

* ``manifest.json``: the bundle format, the course and assignment, the hash
  of the grader's own code and the versions of nbgrader and NumPy, and the
  sha256 of every file below;
* ``nbgrader_config.py`` and ``course.toml`` (limits, pipeline, due dates);
* ``source/<id>/`` (the grading spec and the solutions the hidden data is
  checked against), ``release/<id>/``, the hidden data from ``grader_data/``
  and the translation catalogues in ``locale/``;
* ``gradebook.db``: a SQLite gradebook holding this assignment's notebooks,
  cells and due date, copied from the real gradebook, and no student.

The bundle's identity is the sha256 of the archive's bytes. A worker
refuses an archive whose hash is not the one the client announced, a
format it does not know, or a manifest whose grader code or library
versions differ from its own, so two machines never grade one class with
different rules.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnngrader.core import i18n, paths

#: Bumped whenever the archive's layout changes.
FORMAT = 1
#: A worker refuses bigger bundles before hashing them.
MAX_BUNDLE_BYTES = 256 << 20
_PACKAGE = Path(__file__).resolve().parents[1]


class BundleError(RuntimeError):
    """A bundle this worker must not grade with."""


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str
    manifest: dict[str, Any]


def grader_code_hash() -> str:
    """sha256 over the grader package's files (names and bytes, sorted): the code that decides grades."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import nbgrader
    import numpy

    return {"nbgrader": nbgrader.__version__, "numpy": numpy.__version__}


def _files(root: Path, assignment: str) -> list[tuple[str, Path]]:
    """``(name in the archive, path)`` for every course file the assignment's grading reads."""
    base = i18n.base_of(assignment, root)
    chosen: list[tuple[str, Path]] = []
    for name in ("nbgrader_config.py", "course.toml"):
        chosen.append((name, root / name))
    folders = [Path("source") / a for a in dict.fromkeys((base, assignment))] + [Path("release") / assignment]
    if (root / "locale").is_dir():
        folders.append(Path("locale"))
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts \
                    and ".ipynb_checkpoints" not in path.parts:
                chosen.append((path.relative_to(root).as_posix(), path))
    for path in sorted(paths.grader_data_dir(root).glob(f"{base}_*")):
        if path.is_file():
            chosen.append((path.relative_to(root).as_posix(), path))
    return chosen


def gradebook_definition(db_url: str, course_id: str, assignment: str) -> dict[str, Any]:
    """What the gradebook knows of ``assignment`` (notebooks, cells, due date), as plain sorted data."""
    from nbgrader.api import Gradebook

    with Gradebook(paths.normalise_db_url(db_url), course_id) as gb:
        a = gb.find_assignment(assignment)
        notebooks = {}
        for nb in a.notebooks:
            notebooks[nb.name] = {
                # The source's kernelspec: the worker's OverwriteKernelspec puts it back on each submission.
                "kernelspec": nb.kernelspec,
                "grade": sorted([c.name, c.max_score, c.cell_type] for c in nb.grade_cells),
                "solution": sorted(c.name for c in nb.solution_cells),
                "task": sorted([c.name, c.max_score, c.cell_type] for c in nb.task_cells),
                "source": sorted([c.name, c.cell_type, bool(c.locked), c.source, c.checksum]
                                 for c in nb.source_cells),
            }
        return {"course": course_id, "assignment": assignment,
                "duedate": a.duedate.isoformat() if a.duedate else None, "notebooks": notebooks}


def gradebook_template(definition: dict[str, Any], dest: Path) -> None:
    """A new SQLite gradebook at ``dest`` holding one assignment's definition and no student."""
    import shutil
    import sys
    from datetime import datetime

    from nbgrader.api import Gradebook
    from sqlalchemy import text

    if not shutil.which("alembic"):
        # nbgrader stamps a new gradebook by running `alembic`, which lives beside this Python.
        os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    name = definition["assignment"]
    with Gradebook(f"sqlite:///{dest}", definition["course"]) as gb:
        # A throw-away file being built: no need to wait for the disk after each of ~200 commits.
        gb.db.execute(text("PRAGMA synchronous = OFF"))
        due = definition["duedate"]
        gb.update_or_create_assignment(name, duedate=datetime.fromisoformat(due) if due else None)
        for nb, cells in definition["notebooks"].items():
            gb.update_or_create_notebook(nb, name, kernelspec=cells.get("kernelspec"))
            for cell, points, kind in cells["grade"]:
                gb.update_or_create_grade_cell(cell, nb, name, max_score=points, cell_type=kind)
            for cell in cells["solution"]:
                gb.update_or_create_solution_cell(cell, nb, name)
            for cell, points, kind in cells["task"]:
                gb.update_or_create_task_cell(cell, nb, name, max_score=points, cell_type=kind)
            for cell, kind, locked, source, checksum in cells["source"]:
                gb.update_or_create_source_cell(cell, nb, name, cell_type=kind, locked=locked, source=source,
                                                checksum=checksum)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def build(root: Path, assignment: str, db_url: str, cache: bool = True) -> Bundle:
    """The bundle for grading ``assignment`` of the course at ``root``.

    Built bundles are kept in ``.grading/bundles/``, named by a hash of their
    inputs (files, gradebook definition, grader code): the same inputs give the
    same archive, and so the same sha256, which is what lets a rerun skip work.
    """
    files = _files(root, assignment)
    definition = gradebook_definition(db_url, paths.course_id(root), assignment)
    contents = {name: path.read_bytes() for name, path in files}
    manifest = {
        "format": FORMAT,
        "course": paths.course_id(root),
        "assignment": assignment,
        "grader_code": grader_code_hash(),
        "versions": _versions(),
        "gradebook": hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())},
    }
    key = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:32]
    cached = root / ".grading" / "bundles" / assignment / f"{key}.tar"
    if cache and cached.is_file() and not cached.is_symlink():
        data = cached.read_bytes()
        return Bundle(data, hashlib.sha256(data).hexdigest(), read_manifest(data))
    with tempfile.TemporaryDirectory(prefix="cnn-bundle-") as tmp:
        template = Path(tmp) / "gradebook.db"
        gradebook_template(definition, template)
        contents["gradebook.db"] = template.read_bytes()
    # The template's file is the one thing not named in the manifest's key: it follows from "gradebook".
    manifest["files"]["gradebook.db"] = hashlib.sha256(contents["gradebook.db"]).hexdigest()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
        for name in sorted(contents):
            _add(tar, name, contents[name])
    data = buffer.getvalue()
    if cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(cached)
    return Bundle(data, hashlib.sha256(data).hexdigest(), manifest)


def read_manifest(data: bytes) -> dict[str, Any]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member else {}
    except (tarfile.TarError, KeyError, ValueError) as exc:
        raise BundleError(f"the grading bundle cannot be read ({type(exc).__name__})") from exc
    if not isinstance(manifest, dict):
        raise BundleError("the grading bundle's manifest is not an object")
    return manifest


def verify(data: bytes, expected_sha256: str) -> dict[str, Any]:
    """The manifest of a bundle this worker may grade with; :class:`BundleError` otherwise."""
    if not isinstance(data, bytes) or len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("the grading bundle is not a byte string of a sane size")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise BundleError(f"the grading bundle's sha256 is {actual[:16]}..., not the announced "
                          f"{str(expected_sha256)[:16]}...: refused")
    manifest = read_manifest(data)
    if manifest.get("format") != FORMAT:
        raise BundleError(f"grading bundle format {manifest.get('format')!r}; this worker reads format {FORMAT}")
    mine = grader_code_hash()
    if manifest.get("grader_code") != mine:
        raise BundleError(f"the client's grader code ({str(manifest.get('grader_code'))[:12]}) differs from "
                          f"this worker's ({mine[:12]}): install the same course version on every machine")
    if manifest.get("versions") != _versions():
        raise BundleError(f"library versions differ: client {manifest.get('versions')}, worker {_versions()}")
    return manifest


def extract(data: bytes, manifest: dict[str, Any], dest: Path) -> None:
    """Unpack a verified bundle into ``dest`` (created), checking every file against the manifest."""
    dest.mkdir(parents=True)
    expected = manifest["files"]
    seen = set()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.name == "manifest.json":
                continue
            if not member.isfile() or member.name not in expected:
                raise BundleError(f"unexpected entry in the grading bundle: {member.name!r}")
            blob = tar.extractfile(member).read()  # type: ignore[union-attr]
            if hashlib.sha256(blob).hexdigest() != expected[member.name]:
                raise BundleError(f"{member.name!r} does not match the bundle's manifest")
            target = (dest / member.name).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise BundleError(f"a grading bundle entry points outside its folder: {member.name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
            seen.add(member.name)
    if seen != set(expected):
        raise BundleError("the grading bundle lacks files its manifest lists")
    (dest / "submitted").mkdir(exist_ok=True)
    os.chmod(dest, 0o700)
