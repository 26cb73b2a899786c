"""Translated editions: generated from the one English source, never stale, graded the same.

The fast tests check the committed Chinese edition against its catalogue and
its English source, and show on a copy of the fixture course that a stale or
missing translation is caught and named by cell id. The slow ones grade
Chinese submissions with the hardened grader.
"""

from __future__ import annotations

import filecmp
import json
import re
import shutil
from pathlib import Path

import nbformat
import polib
import pytest

from cnngrader.core import i18n, paths, spec
from cnngrader.tools import editions, translate

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "tiny_course"
LANGS = i18n.languages()
BASES = paths.assignments()
PAIRS = [(b, lang) for lang in LANGS for b in BASES]
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_the_course_has_a_chinese_edition_of_every_assignment():
    assert "zh" in LANGS
    assert i18n.all_editions() == [*BASES, *(f"{b}_zh" for b in BASES)]
    assert i18n.edition_of("train_cnn_zh") == ("train_cnn", "zh")
    assert i18n.edition_of("train_cnn") == ("train_cnn", "en")
    assert i18n.edition_of("unknown_zh") == ("unknown_zh", "en")


@pytest.mark.parametrize("lang", LANGS)
def test_every_catalogue_is_current(lang):
    """Every markdown cell and learner-facing string has a current translation (else: cnn translate stale)."""
    problems = translate.stale(lang)
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("base, lang", PAIRS)
def test_committed_edition_is_a_fresh_build(tmp_path, base, lang):
    """source/<id>_<lang>/ is exactly what `cnn translate build` makes from source/<id>/ and the catalogue."""
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(REPO / "course.toml", root / "course.toml")
    shutil.copytree(REPO / "source" / base, root / "source" / base,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copytree(REPO / "locale", root / "locale")
    built = editions.build_one(base, lang, root)
    committed = REPO / "source" / i18n.edition_id(base, lang)
    drawn = set(spec.load(base).translation.get("drawn", []))
    _same_tree(committed, built, skip=drawn)
    for folder in drawn:
        # Drawn per language by `cnn figures`: the same files as English, not English copies.
        ours, english = committed / folder, REPO / "source" / base / folder
        assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in english.iterdir())


def _same_tree(committed: Path, built: Path, skip: set[str] = frozenset()) -> None:
    cmp = filecmp.dircmp(committed, built, ignore=[*skip, "__pycache__", ".ipynb_checkpoints"])
    assert not cmp.left_only and not cmp.right_only, (cmp.left_only, cmp.right_only)
    for name in cmp.common_files:
        if name.endswith(".ipynb"):
            assert nbformat.read(committed / name, 4) == nbformat.read(built / name, 4), \
                f"{name}: regenerate with `make release` (never edit a translated edition)"
        else:
            assert filecmp.cmp(committed / name, built / name, shallow=False), name
    for sub in cmp.common_dirs:
        _same_tree(committed / sub, built / sub)


def _cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("folder", ["source", "release"])
@pytest.mark.parametrize("base, lang", PAIRS)
def test_code_ids_and_grading_metadata_are_the_english_ones(base, lang, folder):
    """Only markdown differs: code, cell ids, grade ids and points are identical, so one hidden dataset grades both."""
    edition = i18n.edition_id(base, lang)
    english = _cells(REPO / folder / base / f"{base}.ipynb")
    translated = _cells(REPO / folder / edition / f"{edition}.ipynb")
    assert [c.id for c in english] == [c.id for c in translated]
    for a, b in zip(english, translated, strict=True):
        assert a.cell_type == b.cell_type and a.metadata == b.metadata, a.id
        if a.cell_type == "code":
            assert a.source == b.source, a.id
        elif a.source.strip():
            assert a.source != b.source and CJK.search(b.source), f"{a.id} is not translated"


_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)")
_HEADING = re.compile(r"^(#+) ", re.M)


@pytest.mark.parametrize("base, lang", PAIRS)
def test_translations_keep_math_code_links_and_headings(base, lang):
    """A translation changes words only: formulas, code, image paths and heading levels are the source's."""
    table = i18n.table(base, lang)
    for cell_id, english in translate.markdown_entries(base):
        text = table[(cell_id, english)]
        for pattern, what in ((_MATH, "math"), (_CODE, "code"), (_LINK, "links"), (_HEADING, "headings")):
            assert sorted(pattern.findall(text)) == sorted(pattern.findall(english)), (cell_id, what)


@pytest.mark.parametrize("base, lang", PAIRS)
def test_released_modules_speak_the_edition_language(base, lang):
    """messages.json ships the checks module's strings; the module prints them instead of English."""
    from cnngrader.core.spec import load_module

    edition = i18n.edition_id(base, lang)
    folder = REPO / "release" / edition
    data = json.loads((folder / "messages.json").read_text(encoding="utf-8"))
    assert data["language"] == lang and len(data["messages"]) >= 20
    module_name = spec.load(base).translation["modules"][0]
    module = load_module(folder / module_name, f"_edition_{edition}")
    english, translated = next(iter(data["messages"].items()))
    assert module._(english) == translated != english
    assert not (REPO / "release" / base / "messages.json").exists()


# ---------------------------------------------------------------------------
# Drift, on a copy of the fixture course
# ---------------------------------------------------------------------------


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    """The fixture course with a Chinese edition whose catalogue is complete and current."""
    root = tmp_path / "tiny"
    shutil.copytree(FIXTURE, root)
    toml = root / "course.toml"
    toml.write_text(toml.read_text() + 'editions = ["zh"]\n')
    (root / "locale" / "zh").mkdir(parents=True)
    shutil.copy(REPO / "locale" / "zh" / "grader.po", root / "locale" / "zh" / "grader.po")
    nb_path = root / "source" / "vector_ops" / "vector_ops.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("## Squares\n\nSquare each entry: $y = x^2$.", id="md-squares"))
    nbformat.write(nb, nb_path)
    monkeypatch.setenv("CNN_COURSE_ROOT", str(root))
    translate.sync("zh", root)
    po_path = i18n.catalogue_path("vector_ops", "zh", root)
    po = polib.pofile(str(po_path), wrapwidth=0)
    for entry in po:
        entry.msgstr = "译文：" + entry.msgid
    po.save(str(po_path))
    assert translate.stale("zh", root) == []
    return root


def _edit_cell(root: Path, cell_id: str, text: str) -> None:
    path = root / "source" / "vector_ops" / "vector_ops.ipynb"
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if c.id == cell_id).source = text
    nbformat.write(nb, path)


def test_each_entry_records_the_hash_of_its_english(tiny):
    po = polib.pofile(str(i18n.catalogue_path("vector_ops", "zh", tiny)), wrapwidth=0)
    entry = next(e for e in po if e.msgctxt == "md-squares")
    assert i18n.recorded_hash(entry) == i18n.source_hash(entry.msgid)


def test_a_stale_translation_fails_and_names_its_cell(tiny, capsys):
    """The source cell changed, its translation did not: the check fails, naming the cell; the build refuses."""
    _edit_cell(tiny, "md-squares", "## Squares\n\nSquare each entry: $y = x \\cdot x$.")
    problems = translate.stale("zh", tiny)
    assert [(p.context, p.reason) for p in problems] == [("md-squares", "source changed since it was translated")]
    assert translate.main(["stale", "--lang", "zh"]) == 1
    assert "vector_ops [md-squares]: source changed since it was translated" in capsys.readouterr().out
    with pytest.raises(editions.StaleCatalogue, match="md-squares"):
        editions.build_one("vector_ops", "zh", tiny)


def test_a_cell_without_translation_is_named(tiny):
    path = tiny / "source" / "vector_ops" / "vector_ops.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A new paragraph.", id="md-new"))
    nbformat.write(nb, path)
    assert [(p.context, p.reason) for p in translate.stale("zh", tiny)] == [("md-new", "no translation")]


def test_sync_keeps_the_old_translation_fuzzy_until_confirmed(tiny):
    """The maintainer's loop: sync flags the changed cell fuzzy; it stays stale until confirmed."""
    _edit_cell(tiny, "md-squares", "## Squares\n\nSquare every entry.")
    counts = translate.sync("zh", tiny)
    assert counts["fuzzy"] == 1
    po_path = i18n.catalogue_path("vector_ops", "zh", tiny)
    entry = next(e for e in polib.pofile(str(po_path), wrapwidth=0) if e.msgctxt == "md-squares")
    assert "fuzzy" in entry.flags and entry.previous_msgid.endswith("$y = x^2$.")
    assert entry.msgid == "## Squares\n\nSquare every entry."
    assert [p.context for p in translate.stale("zh", tiny)] == ["md-squares"]
    po = polib.pofile(str(po_path), wrapwidth=0)
    next(e for e in po if e.msgctxt == "md-squares").msgstr = "## 平方\n\n对每个元素求平方。"
    po.save(str(po_path))
    assert [p.context for p in translate.stale("zh", tiny)] == ["md-squares"]  # edited, not yet confirmed
    assert translate.confirm("zh", "vector_ops", ["md-squares"], tiny) == ["md-squares"]
    assert translate.stale("zh", tiny) == []
    built = editions.build_one("vector_ops", "zh", tiny)
    cells = {c.id: c.source for c in _cells(built / "vector_ops_zh.ipynb")}
    assert cells["md-squares"] == "## 平方\n\n对每个元素求平方。"


def test_confirm_refuses_a_translation_nobody_edited(tiny):
    """After sync flags a changed cell, confirming the untouched old words fails unless --unchanged."""
    _edit_cell(tiny, "md-squares", "## Squares\n\nSquare each entry: $y = x^2$ (elementwise).")
    translate.sync("zh", tiny)
    with pytest.raises(translate.Unchanged, match="md-squares"):
        translate.confirm("zh", "vector_ops", ["md-squares"], tiny)
    assert [p.context for p in translate.stale("zh", tiny)] == ["md-squares"]
    assert translate.confirm("zh", "vector_ops", ["md-squares"], tiny, unchanged=True) == ["md-squares"]
    assert translate.stale("zh", tiny) == []


@pytest.mark.parametrize("bad", ["{what} 的值不对 {extra}", "{what.__class__} 的值不对", "{what:>{width}} 的值不对",
                                 "{what!r} 的值不对"])
def test_a_broken_translation_is_caught_and_never_breaks_grading(tiny, bad):
    """A translated template with other fields fails the drift check, and the grader shows the English instead."""
    po_path = i18n.catalogue_path("grader", "zh", tiny)
    po = polib.pofile(str(po_path), wrapwidth=0)
    entry = next(e for e in po if e.msgid == "{what} is True in the wrong places")
    entry.msgstr = bad
    po.save(str(po_path))
    problems = translate.stale("zh", tiny)
    assert [p.reason for p in problems] == ["translation's {placeholders} differ from the source's"]
    t = i18n.Translator("zh", (i18n.GRADER_DOMAIN,), tiny)
    msg = i18n.Msg("{what} is True in the wrong places", what=i18n.Msg("the mask", "spec"))
    assert msg.render(t) == "the mask is True in the wrong places"


def test_a_translation_that_drops_a_placeholder_is_caught(tiny):
    po_path = i18n.catalogue_path("grader", "zh", tiny)
    po = polib.pofile(str(po_path), wrapwidth=0)
    entry = next(e for e in po if e.msgid == "{what} contains NaN or infinity")
    entry.msgstr = "包含 NaN 或无穷大"
    po.save(str(po_path))
    problems = translate.stale("zh", tiny)
    assert len(problems) == 1 and "placeholders" in problems[0].reason


# ---------------------------------------------------------------------------
# The grader speaks the edition's language
# ---------------------------------------------------------------------------


def test_failure_messages_are_rendered_in_the_edition_language():
    from cnngrader.core.codec import Leaf
    from cnngrader.core.judge import judge

    check = next(c for c in spec.load("conv_step_by_step").checks if c.compare == "array")
    import numpy as np

    expected = Leaf(np.ones((2, 3)), "ndarray")
    got = Leaf(np.zeros((2, 3)), "ndarray")
    verdict = judge(check, [("A_prev (2, 3)", (), expected)], [{"status": "ok", "value": got}])
    english = verdict.text(None)
    chinese = verdict.text(i18n.translator("conv_step_by_step_zh"))
    assert "has wrong values (6 of 6 entries differ)" in english and not CJK.search(english)
    assert CJK.search(chinese) and "6" in chinese and check.function in chinese
    assert "[用例：A_prev (2, 3)]" in chinese
    assert verdict.failures[0].code == "wrong_values"
    assert verdict.translated_failures(i18n.translator("conv_step_by_step_zh"))[0].message != str(
        verdict.failures[0].message)


# ---------------------------------------------------------------------------
# Graded the same: the whole accuracy catalogue in Chinese, through the batch
# ---------------------------------------------------------------------------

ZH = "conv_step_by_step_zh"


@pytest.fixture(scope="session")
def zh_graded(acc_course):
    """The accuracy catalogue submitted again in the Chinese edition, into the same course and gradebook."""
    from conftest import BATCH_OK

    from cnngrader.tools import accuracy
    from cnngrader.tools.workspace import Course, nbgrader

    nbgrader(acc_course.root, "generate_assignment", ZH, "--force")
    course = Course(acc_course.root, ZH)
    accuracy.write_submissions(course)
    proc = course.grade(jobs=2, extra_args=("--assignment", ZH, "--no-summary", "--no-export"))
    assert proc.returncode in BATCH_OK, proc.stderr[-3000:]
    return course


@pytest.mark.slow
def test_every_catalogue_submission_scores_the_same_in_both_editions(acc_course, zh_graded):
    """Reference, every mutant, every variant, every isolation case: the same points per function in zh."""
    english, chinese = acc_course.scores(), zh_graded.scores()
    assert set(english) == set(chinese) and len(english) >= 50
    differ = {s: (english[s], chinese[s]) for s in english if english[s] != chinese[s]}
    assert not differ, differ
    assert sum(english["reference"].values()) == sum(chinese["reference"].values()) == spec.load().total_points()


@pytest.mark.slow
def test_chinese_records_and_notebooks_carry_chinese_messages(acc_course, zh_graded):
    """Failure codes are the same; the words the student reads are Chinese in zh and English in en."""
    mutant = "m__conv_forward__stride_forgotten"
    en, zh = acc_course.records()[mutant], zh_graded.records()[mutant]
    assert [f.code for _, f in en.failures()] == [f.code for _, f in zh.failures()]
    assert all(CJK.search(m) for m in zh.messages()) and not any(CJK.search(m) for m in en.messages())
    graded = acc_course.root / "autograded" / mutant / ZH / f"{ZH}.ipynb"
    nb = json.loads(graded.read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and all(CJK.search(o["evalue"]) for o in errors)


@pytest.mark.slow
def test_chinese_feedback_page_is_in_chinese(acc_course, zh_graded):
    from cnngrader.tools.workspace import nbgrader

    student = "m__pool_forward__stride_forgotten"
    proc = nbgrader(acc_course.root, "generate_feedback", ZH, "--student", student, "--force", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (acc_course.root / "feedback" / student / ZH / f"{ZH}.html").read_text(encoding="utf-8")
    assert '<html lang="zh">' in page and "反馈" in page and "未通过" in page
    assert "池化" in page  # the lesson text itself is the Chinese edition's


@pytest.mark.slow
def test_report_and_exports_cover_both_editions(acc_course, zh_graded, tmp_path):
    """One report for the assignment, every submission with its edition; exports give one score per student."""
    import csv
    import os

    from cnngrader.tools import report
    from cnngrader.tools.workspace import nbgrader

    os.environ["CNN_COURSE_ROOT"] = str(acc_course.root)
    try:
        data = report.collect(acc_course.db_url, ZH, acc_course.root)
    finally:
        os.environ.pop("CNN_COURSE_ROOT")
    assert data["assignment"] == "conv_step_by_step"
    assert data["editions"]["en"] == data["editions"]["zh"] >= 50
    rows = [r for r in data["students"] if r["student"] == "m__conv_forward__stride_forgotten"]
    assert sorted(r["edition"] for r in rows) == ["en", "zh"]
    assert rows[0]["functions"] == rows[1]["functions"]
    assert any("submitted in 2 editions" in reason for item in data["attention"] for reason in item["reasons"])
    out = tmp_path / "canvas.csv"
    proc = nbgrader(acc_course.root, "export", "--exporter=cnngrader.glue.exports.CanvasExportPlugin",
                    f"--to={out}", check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    header = next(csv.reader(out.open()))
    assert "conv_step_by_step" in header and ZH not in header


def test_make_lab_opens_the_chinese_edition(tmp_path):
    """`make lab LANG=zh`: JupyterLab's menus in Chinese and each fetched Chinese notebook opened."""
    import os
    import subprocess

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "jupyter.args"
    (venv / "bin" / "jupyter").write_text(f'#!/bin/sh\necho "LANG=$LANG" > {log}\nfor a in "$@"; do echo "$a" >> {log}; done\n')
    (venv / "bin" / "cnn").write_text("#!/bin/sh\nprintf 'conv_step_by_step\\ntrain_cnn\\n'\n")
    for exe in ("jupyter", "cnn"):
        (venv / "bin" / exe).chmod(0o755)
    work = tmp_path / "student"
    (work / "conv_step_by_step_zh").mkdir(parents=True)
    (work / "conv_step_by_step_zh" / "conv_step_by_step_zh.ipynb").write_text("{}")
    env = {**os.environ, "VENV": str(venv), "WORK": str(work), "LANG": "zh", "EDITION": ""}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "lab.sh"), "student"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = log.read_text().splitlines()
    assert args[0] == "LANG=C.UTF-8" and args[-1] == "conv_step_by_step_zh/conv_step_by_step_zh.ipynb"
    assert "fetch it in Nbgrader > Assignments" in proc.stderr and "train_cnn_zh" in proc.stderr
    settings = work / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "translation-extension"
    assert json.loads((settings / "plugin.jupyterlab-settings").read_text()) == {"locale": "zh_CN"}
    env["EDITION"] = "fr"
    bad = subprocess.run(["bash", str(REPO / "scripts" / "lab.sh"), "student"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "EDITION must be en or zh" in bad.stderr
