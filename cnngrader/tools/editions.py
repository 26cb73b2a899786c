"""Generate each translated edition's source folder from the English source and its catalogue.

``source/<id>_<lang>/`` is generated, never edited (``make release`` rebuilds it,
and a test fails when the committed copy differs from a fresh build):

* the notebook is the English source with each markdown cell's text replaced
  by its translation; code cells, cell ids, nbgrader metadata (grade ids,
  points, checksums' inputs) are the English ones, so the base assignment's
  spec and hidden data grade the edition;
* every other file of the assignment is copied, except ``grading/`` (never
  released) and the folders the spec's ``[translation] drawn`` lists, which
  the figures hook draws once per language (``cnn figures``);
* ``messages.json`` beside the released modules carries their strings in the
  edition's language (the modules read it at import; English ships none).

The build refuses a catalogue that is not current (``cnn translate stale``
says why), so an edition can never silently mix languages or lag the source.
"""

from __future__ import annotations

import copy
import filecmp
import json
import shutil
from pathlib import Path

import nbformat

from cnngrader.core import i18n, paths, spec

#: Files nbgrader ignores anyway (CourseDirectory.ignore); never copied into an edition.
SKIP = {"grading", "__pycache__", ".ipynb_checkpoints"}
#: Fonts with Chinese glyphs that matplotlib should try first in a Chinese edition's own figures.
CJK_FONTS = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
             "SimHei", "Heiti SC"]
FONTS = {"zh": CJK_FONTS}


class StaleCatalogue(RuntimeError):
    """The catalogue lacks a current translation of something the edition needs."""


def edition_dir(base: str, lang: str, root: Path | None = None) -> Path:
    return paths.source_dir(i18n.edition_id(base, lang), root)


def translated_notebook(base: str, lang: str, root: Path | None = None) -> nbformat.NotebookNode:
    """The base source notebook with every markdown cell in ``lang``; raises :class:`StaleCatalogue`."""
    from cnngrader.tools.translate import wanted

    problems = [*i18n.problems(base, lang, wanted(base, root), root),
                *i18n.problems(i18n.GRADER_DOMAIN, lang, wanted(i18n.GRADER_DOMAIN, root), root)]
    if problems:
        listed = "\n  ".join(str(p) for p in problems[:20])
        raise StaleCatalogue(f"{base} ({lang}): {len(problems)} entries are not current:\n  {listed}\n"
                             "run `cnn translate stale` and see README, Translated editions")
    table = i18n.table(base, lang, root)
    nb = nbformat.read(paths.source_notebook(base, root), as_version=4)
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            cell.source = table[(cell.id, cell.source)]
    out.metadata["cnn_edition"] = {"base": base, "language": lang,
                                   "generated": "by `cnn translate build` from the English source; do not edit"}
    return out


def messages(base: str, lang: str, root: Path | None = None) -> dict[str, dict]:
    """``messages.json`` contents per released folder (relative to the assignment), for the marked modules."""
    table = i18n.table(base, lang, root)
    out: dict[str, dict] = {}
    for name in spec.load(base, root).translation.get("modules", []):
        rel = Path(name)
        if rel.parts[0] in SKIP:
            continue  # instructor-side modules (figures) use the catalogue directly
        entry = out.setdefault(str(rel.parent), {"language": lang, "messages": {}})
        entry["messages"].update({msgid: text for (ctx, msgid), text in table.items() if ctx == rel.name})
        if lang in FONTS:
            entry["matplotlib_fonts"] = FONTS[lang]
    return out


def _copy_tree(src: Path, dst: Path, drawn: set[str], top: bool = True) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    keep = set()
    for item in sorted(src.iterdir()):
        if item.name in SKIP or item.is_symlink() or (top and item.name in drawn):
            continue
        keep.add(item.name)
        target = dst / item.name
        if item.is_dir():
            _copy_tree(item, target, drawn, top=False)
        elif not target.exists() or not filecmp.cmp(item, target, shallow=False):
            shutil.copy2(item, target)
    for item in dst.iterdir():
        if item.name not in keep and not (top and (item.name in drawn or item.name == "messages.json")):
            shutil.rmtree(item) if item.is_dir() else item.unlink()


def build_one(base: str, lang: str, root: Path | None = None) -> Path:
    """Write ``source/<base>_<lang>/`` from the English source and the catalogue; returns the folder."""
    root = root or paths.course_root()
    notebook = translated_notebook(base, lang, root)
    target = edition_dir(base, lang, root)
    drawn = set(spec.load(base, root).translation.get("drawn", []))
    _copy_tree(paths.source_dir(base, root), target, drawn)
    # The English notebook was copied under its own name: the edition's notebook replaces it.
    (target / f"{base}.ipynb").unlink(missing_ok=True)
    nbformat.write(notebook, target / f"{i18n.edition_id(base, lang)}.ipynb")
    stale_messages = {p.parent.relative_to(target) for p in target.rglob("messages.json")}
    for folder, data in messages(base, lang, root).items():
        path = target / folder / "messages.json"
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        stale_messages.discard(Path(folder))
    for folder in stale_messages:
        (target / folder / "messages.json").unlink()
    return target


def build(lang: str, root: Path | None = None) -> list[Path]:
    """Build every assignment's edition in ``lang``."""
    return [build_one(base, lang, root) for base in paths.assignments(root)]
