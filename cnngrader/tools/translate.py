"""``cnn translate``: keep every translated edition in step with the English source.

Maintainers' loop after changing an English source notebook or a learner-facing
string in code (README "Translated editions")::

    cnn translate stale               # what is missing or out of date, named by cell id
    cnn translate sync                # put the new English into locale/<lang>/*.po, mark changed entries fuzzy
    #   ... edit the msgstr of each fuzzy or empty entry (any PO editor works) ...
    cnn translate confirm --lang zh --domain conv_step_by_step md-zero-pad
    make release                      # regenerates source/<id>_<lang>/ and both releases

``sync`` never writes a translation and never marks one current: a changed
source cell keeps its old translation, flagged fuzzy with the old English as
``#| msgid``, and stays stale until someone confirms it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import nbformat
import polib

from cnngrader.core import i18n, paths, spec

#: Calls whose first argument (a string literal) is learner-facing text: ``_()`` and ``N_()`` in
#: course modules, :class:`cnngrader.core.i18n.Msg` in the grader.
MARKERS = ("_", "N_", "Msg")


def markdown_entries(base: str, root: Path | None = None) -> list[tuple[str, str]]:
    """``(cell id, English text)`` of every markdown cell of the source notebook."""
    nb = nbformat.read(paths.source_notebook(base, root), as_version=4)
    return [(cell.id, cell.source) for cell in nb.cells if cell.cell_type == "markdown" and cell.source.strip()]


def code_strings(path: Path) -> list[str]:
    """The string literals a module passes to a marker call (first argument), in order, once each."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    calls = sorted((node.lineno, node.col_offset, node.args[0].value) for node in ast.walk(tree)
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS
                   and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))
    return list(dict.fromkeys(text for _, _, text in calls))


def wanted(domain: str, root: Path | None = None) -> list[tuple[str, str]]:
    """Every ``(context, English)`` the catalogue ``domain`` must translate, once each, in order.

    For an assignment: its markdown cells, the marked strings of the modules its spec's
    ``[translation]`` lists, and the spec's learner-facing words (each check's property
    text and what it compares).
    """
    if domain == i18n.GRADER_DOMAIN:
        return [(i18n.GRADER_DOMAIN, text) for module in grader_modules() for text in code_strings(module)]
    a = spec.load(domain, root)
    out = markdown_entries(domain, root)
    for name in a.translation.get("modules", []):
        out += [(Path(name).name, text) for text in code_strings(a.source_folder / name)]
    out += [("spec", text) for check in a.checks for text in (check.prop, check.what)]
    return list(dict.fromkeys(out))


def grader_modules() -> list[Path]:
    """The grader's modules whose marked strings reach students (failure messages, feedback)."""
    pkg = Path(__file__).resolve().parents[1]
    return [pkg / "core" / "judge.py", pkg / "sandbox" / "verdicts.py", pkg / "sandbox" / "staging.py",
            pkg / "glue" / "preprocessors.py", pkg / "glue" / "feedback.py"]


def domains(root: Path | None = None) -> list[str]:
    return [*paths.assignments(root), i18n.GRADER_DOMAIN]


def sync(lang: str, root: Path | None = None) -> dict[str, int]:
    """Bring ``locale/<lang>/*.po`` up to today's English; returns counts of what changed."""
    counts = {"added": 0, "fuzzy": 0, "obsolete": 0}
    for domain in domains(root):
        path = i18n.catalogue_path(domain, lang, root)
        po = polib.pofile(str(path), wrapwidth=0) if path.is_file() else _new_catalogue(domain, lang)
        want = wanted(domain, root)
        keys = set(want)
        by_key = {(e.msgctxt or "", e.msgid): e for e in po if not e.obsolete}
        by_context: dict[str, polib.POEntry] = {}
        for e in po:
            if not e.obsolete and not i18n.is_code_context(e.msgctxt or ""):
                by_context[e.msgctxt or ""] = e
        for context, text in want:
            if (context, text) in by_key:
                continue
            old = by_context.get(context) if not i18n.is_code_context(context) else None
            if old is not None and (context, old.msgid) not in keys:
                # A changed cell: keep the old translation for reference, flagged until confirmed.
                old.previous_msgid = old.msgid
                old.msgid = text
                if "fuzzy" not in old.flags:
                    old.flags.append("fuzzy")
                    # confirm() refuses the old words unless told the English change needs none.
                    i18n.set_comment_value(old, STALE_PREFIX, i18n.source_hash(old.msgstr))
                counts["fuzzy"] += 1
                continue
            entry = polib.POEntry(msgctxt=context, msgid=text, msgstr="")
            i18n.set_recorded_hash(entry, text)
            po.append(entry)
            counts["added"] += 1
        for entry in po:
            if not entry.obsolete and (entry.msgctxt or "", entry.msgid) not in keys:
                entry.obsolete = True
                counts["obsolete"] += 1
        order = {key: k for k, key in enumerate(want)}
        po[:] = sorted(po, key=lambda e: (e.obsolete, order.get((e.msgctxt or "", e.msgid), len(order))))
        path.parent.mkdir(parents=True, exist_ok=True)
        po.save(str(path))
    return counts


def _new_catalogue(domain: str, lang: str) -> polib.POFile:
    po = polib.POFile(wrapwidth=0)
    po.metadata = {"Project-Id-Version": domain, "Language": lang, "MIME-Version": "1.0",
                   "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"}
    return po


STALE_PREFIX = "stale-translation-sha256: "


class Unchanged(ValueError):
    """confirm() was asked to bless a translation nobody edited since its English changed."""


def confirm(lang: str, domain: str, contexts: list[str], root: Path | None = None,
            unchanged: bool = False) -> list[str]:
    """Mark the entries under ``contexts`` as translated from today's English; returns what was confirmed.

    An entry whose translation is still the one ``sync`` flagged is refused (:class:`Unchanged`)
    unless ``unchanged`` says the English change needs no new words (a typo fixed, say).
    """
    path = i18n.catalogue_path(domain, lang, root)
    po = polib.pofile(str(path), wrapwidth=0)
    done: list[str] = []
    for entry in po:
        if entry.obsolete or (entry.msgctxt or "") not in contexts or not entry.msgstr.strip():
            continue
        if i18n.comment_value(entry, STALE_PREFIX) == i18n.source_hash(entry.msgstr) and not unchanged:
            raise Unchanged(f"{domain} [{entry.msgctxt}]: the translation was not edited since the English changed "
                            "(translate it, or confirm with --unchanged if the new English needs no new words)")
        i18n.set_comment_value(entry, STALE_PREFIX, None)
        if "fuzzy" in entry.flags:
            entry.flags.remove("fuzzy")
        entry.previous_msgid = None
        i18n.set_recorded_hash(entry, entry.msgid)
        done.append(entry.msgctxt or "")
    po.save(str(path))
    return done


def stale(lang: str, root: Path | None = None) -> list[i18n.Problem]:
    """Every entry of every catalogue of ``lang`` that is missing, empty, fuzzy or out of date."""
    return [p for domain in domains(root) for p in i18n.problems(domain, lang, wanted(domain, root), root)]


def counts(lang: str, root: Path | None = None) -> dict[str, int]:
    """How many markdown cells and code strings the editions of ``lang`` translate."""
    cells = sum(len(markdown_entries(b, root)) for b in paths.assignments(root))
    total = sum(len(wanted(d, root)) for d in domains(root))
    return {"cells": cells, "strings": total - cells}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnn translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("stale", "list untranslated and out-of-date entries (exit 1 if any)"),
                       ("sync", "add new English to the catalogues, flag changed entries fuzzy"),
                       ("confirm", "mark entries as translated from today's English"),
                       ("count", "how many cells and strings each language translates"),
                       ("build", "generate source/<id>_<lang>/ for every edition")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--lang", action="append", default=None, help="a language (default: every edition)")
        if name == "confirm":
            p.add_argument("--domain", required=True, help="an assignment id, or 'grader'")
            p.add_argument("--unchanged", action="store_true",
                           help="the English changed but the translation needs no new words")
            p.add_argument("contexts", nargs="+", help="cell ids (or a code context such as cnn_checks.py)")
    args = parser.parse_args(argv)
    langs = args.lang or i18n.languages()
    status = 0
    for lang in langs:
        if args.action == "stale":
            found = stale(lang)
            for problem in found:
                print(f"{lang}: {problem}")
            print(f"{lang}: {len(found)} entr{'y' if len(found) == 1 else 'ies'} to translate or confirm")
            status |= bool(found)
        elif args.action == "sync":
            print(f"{lang}: {sync(lang)}")
        elif args.action == "confirm":
            try:
                done = confirm(lang, args.domain, args.contexts, unchanged=args.unchanged)
            except Unchanged as exc:
                print(exc, file=sys.stderr)
                return 1
            print(f"{lang}: confirmed {len(done)} entr{'y' if len(done) == 1 else 'ies'}")
            status |= not done
        elif args.action == "count":
            print(f"{lang}: {counts(lang)}")
        elif args.action == "build":
            from cnngrader.tools import editions

            for base in paths.assignments():
                try:
                    print(editions.build_one(base, lang).relative_to(paths.course_root()))
                except editions.StaleCatalogue as exc:
                    print(exc, file=sys.stderr)
                    status = 1
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
