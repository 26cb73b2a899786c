"""Translated editions: which edition an assignment id names, and the catalogues that translate it.

One English source notebook per assignment is the only thing anyone edits. A
translated edition (``conv_step_by_step_zh``) is generated from it and from a
gettext catalogue per language and assignment, ``locale/<lang>/<assignment>.po``:

* a markdown cell's entry has the cell id as ``msgctxt`` and the cell's English
  text as ``msgid``;
* a string from code (a visible-check line, a hint, a figure label, a check's
  property text) has its file or table as ``msgctxt`` (``cnn_checks.py``,
  ``figures.py``, ``spec``);
* ``locale/<lang>/grader.po`` holds the grader's own words (failure messages,
  the feedback page), shared by every assignment.

Every entry records, as an extracted comment ``source-sha256: ...``, the hash of
the English text it was translated from. An entry is current only when that
hash is the hash of today's source text, it is not marked fuzzy, and it has a
translation; :func:`problems` names every entry that is not.

Grade ids, points and code are the same in every edition, so one set of hidden
data grades them all; :func:`edition_of` maps ``<base>_<lang>`` back to its base.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polib

from cnngrader.core import paths

ENGLISH = "en"
HASH_PREFIX = "source-sha256: "
#: The catalogue of the grader's own words, shared by every assignment.
GRADER_DOMAIN = "grader"


def languages(root: Path | None = None) -> list[str]:
    """The course's translated editions (``[course] editions`` in course.toml), English excluded."""
    return [str(x) for x in paths.course_info(root).get("editions", [])]


def edition_id(base: str, lang: str) -> str:
    """The nbgrader assignment id of ``base`` in ``lang`` (English keeps the base id)."""
    return base if lang == ENGLISH else f"{base}_{lang}"


def edition_of(assignment: str, root: Path | None = None) -> tuple[str, str]:
    """``(base assignment, language)`` of an assignment id: ``train_cnn_zh`` -> ``("train_cnn", "zh")``."""
    bases = paths.assignments(root)
    for lang in languages(root):
        suffix = f"_{lang}"
        if assignment.endswith(suffix) and assignment[: -len(suffix)] in bases:
            return assignment[: -len(suffix)], lang
    return assignment, ENGLISH


def base_of(assignment: str, root: Path | None = None) -> str:
    """The English assignment whose source, spec and hidden data grade ``assignment``."""
    return edition_of(assignment, root)[0]


def all_editions(root: Path | None = None) -> list[str]:
    """Every assignment id of every edition, base ids first, in teaching order."""
    bases = paths.assignments(root)
    return bases + [edition_id(b, lang) for lang in languages(root) for b in bases]


def source_hash(text: str) -> str:
    """The hash an entry records of the English text it translates (16 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def catalogue_path(domain: str, lang: str, root: Path | None = None) -> Path:
    """``locale/<lang>/<domain>.po``: ``domain`` is a base assignment id or :data:`GRADER_DOMAIN`."""
    return (root or paths.course_root()) / "locale" / lang / f"{domain}.po"


def comment_value(entry: polib.POEntry, prefix: str) -> str | None:
    """The value of the entry's extracted-comment line ``<prefix><value>`` (None when absent)."""
    for line in (entry.comment or "").splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def set_comment_value(entry: polib.POEntry, prefix: str, value: str | None) -> None:
    """Set (or, with None, remove) the entry's extracted-comment line ``<prefix><value>``."""
    kept = [line for line in (entry.comment or "").splitlines() if not line.startswith(prefix)]
    entry.comment = "\n".join([prefix + value, *kept] if value is not None else kept)


def recorded_hash(entry: polib.POEntry) -> str | None:
    return comment_value(entry, HASH_PREFIX)


def set_recorded_hash(entry: polib.POEntry, text: str) -> None:
    set_comment_value(entry, HASH_PREFIX, source_hash(text))


@dataclass(frozen=True)
class Problem:
    """An entry that keeps an edition from being current: where, and why."""

    domain: str
    context: str
    reason: str
    source: str = ""

    def __str__(self) -> str:
        return f"{self.domain} [{self.context}]: {self.reason}" + (f": {_preview(self.source)}" if self.source else "")


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


def problems(domain: str, lang: str, wanted: list[tuple[str, str]], root: Path | None = None) -> list[Problem]:
    """Why the ``(context, English text)`` entries ``wanted`` are not all current in ``lang``.

    A missing entry, an empty translation, a fuzzy flag, or a recorded hash that is
    not the hash of today's text each give one :class:`Problem` naming the context
    (a cell id for markdown cells).
    """
    path = catalogue_path(domain, lang, root)
    if not path.is_file():
        return [Problem(domain, "*", f"no catalogue {path.relative_to(root or paths.course_root())}")]
    po = polib.pofile(str(path), wrapwidth=0)
    found: dict[tuple[str, str], polib.POEntry] = {}
    by_context: dict[str, polib.POEntry] = {}
    for entry in po:
        if not entry.obsolete:
            found[(entry.msgctxt or "", entry.msgid)] = entry
            by_context.setdefault(entry.msgctxt or "", entry)
    out: list[Problem] = []
    for context, text in wanted:
        entry = found.get((context, text))
        if entry is None:
            # A markdown cell's context is unique, so an entry under it with another msgid is stale.
            stale = None if is_code_context(context) else by_context.get(context)
            if stale is not None and recorded_hash(stale) != source_hash(text):
                out.append(Problem(domain, context, "source changed since it was translated", text))
            else:
                out.append(Problem(domain, context, "no translation", text))
        elif not entry.msgstr.strip():
            out.append(Problem(domain, context, "translation empty", text))
        elif "fuzzy" in entry.flags:
            out.append(Problem(domain, context, "marked fuzzy (source changed; check the translation)", text))
        elif recorded_hash(entry) != source_hash(text):
            out.append(Problem(domain, context, "source changed since it was translated", text))
        elif is_code_context(context) and not same_fields(text, entry.msgstr):
            out.append(Problem(domain, context, "translation's {placeholders} differ from the source's", text))
    return out


#: Contexts of strings from code (many entries share one); any other context is a cell id.
CODE_CONTEXTS = frozenset({"spec", GRADER_DOMAIN})


def is_code_context(context: str) -> bool:
    """Whether entries under ``context`` come from code (a module or table) rather than one cell."""
    return context in CODE_CONTEXTS or context.endswith(".py")


def fields_of(template: str) -> list[tuple[str, str, str]] | None:
    """The ``{placeholder}`` fields of a format template as sorted ``(name, conversion, spec)``.

    None when the template does not parse, or a field reaches past a plain name
    (``{what.__class__}``, ``{0[1]}``): a translation may move fields, never add access.
    """
    try:
        found = [(name, conv or "", spec or "") for _, name, spec, conv in string.Formatter().parse(template)
                 if name is not None]
    except ValueError:
        return None
    if any(name and not (name.isidentifier() or name.isdigit()) for name, _, _ in found):
        return None
    return sorted(found)


def same_fields(source: str, translation: str) -> bool:
    """Whether a translation has exactly the source's fields, each with the same conversion and format spec."""
    fields = fields_of(source)
    return fields is not None and fields == fields_of(translation)


@cache
def _table(path: str, mtime_ns: int) -> dict[tuple[str, str], str]:
    po = polib.pofile(path, wrapwidth=0)
    # A template (a string from code) whose fields differ from the English is left out, so the
    # English is shown: a translator's slip must never make formatting fail while grading.
    # Markdown cells are never formatted (their braces are LaTeX).
    return {(e.msgctxt or "", e.msgid): e.msgstr for e in po
            if not e.obsolete and e.msgstr and "fuzzy" not in e.flags
            and (not is_code_context(e.msgctxt or "") or same_fields(e.msgid, e.msgstr))}


def table(domain: str, lang: str, root: Path | None = None) -> dict[tuple[str, str], str]:
    """Every usable translation of a catalogue, keyed by ``(context, English)``; empty for English."""
    if lang == ENGLISH:
        return {}
    path = catalogue_path(domain, lang, root)
    if not path.is_file():
        return {}
    return _table(str(path), path.stat().st_mtime_ns)


class Translator:
    """``t(context, text, **params)``: ``text`` in the edition's language, then formatted.

    English (or a string the catalogue lacks) comes back unchanged, so an
    untranslated string degrades to English instead of failing; the drift test
    keeps that from shipping.
    """

    def __init__(self, lang: str = ENGLISH, domains: tuple[str, ...] = (), root: Path | None = None):
        self.lang = lang
        self._tables = [table(d, lang, root) for d in domains] if lang != ENGLISH else []

    def __call__(self, context: str, text: str, **params: object) -> str:
        for tbl in self._tables:
            found = tbl.get((context, text))
            if found:
                if not params:
                    return found
                try:
                    return found.format(**params)
                except (KeyError, IndexError, ValueError, AttributeError, TypeError):
                    break  # the English template, which the code fills, always formats
        return text.format(**params) if params else text


def translator(assignment: str, root: Path | None = None) -> Translator:
    """The translator of an assignment id's edition: its own catalogue, then the grader's."""
    base, lang = edition_of(assignment, root)
    return Translator(lang, (base, GRADER_DOMAIN), root)


def N_(text: str) -> str:
    """Marks a literal for the catalogue where it is defined; it is translated where it is shown."""
    return text


class Msg(str):
    """Words for a student that can still be translated: the English text, plus how it was made.

    A ``Msg`` is a ``str`` whose value is the English rendering, so code that only
    logs or compares it works unchanged; :meth:`render` gives the text in an
    edition's language (what notebooks, records and feedback pages show),
    translating parameters that are themselves ``Msg`` first. The first argument
    is a plain literal, which ``cnn translate`` extracts into the catalogue.
    """

    template: str
    context: str
    params: dict

    def __new__(cls, template: str, context: str = GRADER_DOMAIN, **params: object) -> Msg:
        english = template.format(**params) if params else template
        obj = super().__new__(cls, english)
        obj.template, obj.context, obj.params = template, context, params
        return obj

    def render(self, t: Translator | None) -> str:
        if t is None or t.lang == ENGLISH:
            return str.__str__(self)
        return t(self.context, self.template, **{k: render(v, t) for k, v in self.params.items()})

    def __reduce__(self) -> tuple:
        return (_rebuild, (self.template, self.context, self.params))


def _rebuild(template: str, context: str, params: dict) -> Msg:
    return Msg(template, context, **params)


def render(value: object, t: Translator | None) -> object:
    """``value`` in ``t``'s language when it is a :class:`Msg`, unchanged otherwise."""
    return value.render(t) if isinstance(value, Msg) else value
