"""Tests for the course figures of the first assignment (its grading/figures.py hook)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from cnngrader.core import i18n, spec
from cnngrader.core.reference import load_reference

figures = spec.load().module("figures")

PNGS = [name for name in figures.FILENAMES if name.endswith(".png")]
GIF = "conv_sliding.gif"

#: POOL_INPUT pooled by hand: quadrants [[1,3],[2,9]], [[2,1],[1,1]], [[1,4],[5,6]], [[2,3],[8,1]].
EXPECTED_MAX = np.array([[9.0, 2.0], [6.0, 8.0]])
EXPECTED_AVERAGE = np.array([[3.75, 1.25], [4.0, 3.5]])


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """All figures drawn once, with the default (reference) pool_forward."""
    out = tmp_path_factory.mktemp("figures")
    return out, figures.draw_all(out)


def _gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]


def _independent_pool() -> tuple[np.ndarray, np.ndarray]:
    # (row block, row in block, column block, column in block): reducing axes 1 and 3 pools each 2x2 block.
    blocks = figures.POOL_INPUT.astype(float).reshape(2, 2, 2, 2)
    return blocks.max(axis=(1, 3)), blocks.mean(axis=(1, 3))


def test_draw_all_writes_every_figure(drawn: tuple[Path, list[Path]]) -> None:
    out, paths = drawn
    assert sorted(p.name for p in paths) == sorted(figures.FILENAMES)
    assert len(figures.FILENAMES) == 6
    for path in paths:
        assert path.parent == out
        size = path.stat().st_size
        assert size > 0, path.name
        limit = 600_000 if path.suffix == ".gif" else 150_000
        assert size < limit, f"{path.name} is {size} bytes"


def test_pngs_load_with_sensible_shapes(drawn: tuple[Path, list[Path]]) -> None:
    out, _ = drawn
    for name in PNGS:
        img = mpimg.imread(out / name)
        assert img.ndim == 3 and img.shape[2] in (3, 4), (name, img.shape)
        height, width = img.shape[:2]
        assert 250 <= height <= 1500 and 400 <= width <= 2000, (name, img.shape)
        # Not a blank canvas: dark text and coloured cells are present.
        assert img[..., :3].min() < 0.3, name
        assert img[..., :3].std() > 0.05, name


def test_gif_is_animated(drawn: tuple[Path, list[Path]]) -> None:
    out, _ = drawn
    with Image.open(out / GIF) as im:
        assert im.format == "GIF"
        assert im.n_frames > 5
        assert im.info["duration"] == figures.FRAME_MS
    frames = _gif_frames(out / GIF)
    assert not np.array_equal(frames[0], frames[-1])
    assert not np.array_equal(frames[0], frames[1])


def test_png_files_carry_no_software_stamp(drawn: tuple[Path, list[Path]]) -> None:
    out, _ = drawn
    for name in PNGS:
        with Image.open(out / name) as im:
            assert "Software" not in im.info, name


def test_regenerating_gives_identical_bytes(tmp_path: Path) -> None:
    first = figures.draw_window_corners(tmp_path)
    again = tmp_path / "again"
    again.mkdir()
    second = figures.draw_window_corners(again)
    assert first.read_bytes() == second.read_bytes()


def test_pooling_numbers_match_an_independent_computation() -> None:
    expected_max, expected_average = _independent_pool()
    # The independent computation itself, pinned to hand-checked values.
    np.testing.assert_array_equal(expected_max, EXPECTED_MAX)
    np.testing.assert_array_equal(expected_average, EXPECTED_AVERAGE)
    # Swapping the off-diagonal quadrants (transposing the block layout) must give a
    # different array, or the exact comparison below could not catch that bug.
    assert not np.array_equal(EXPECTED_AVERAGE, EXPECTED_AVERAGE.T)
    assert not np.array_equal(EXPECTED_MAX, EXPECTED_MAX.T)

    numbers = figures.pooling_numbers(load_reference()["pool_forward"])
    assert set(numbers) == {"max", "average"}
    np.testing.assert_array_equal(numbers["max"], EXPECTED_MAX)
    np.testing.assert_array_equal(numbers["average"], EXPECTED_AVERAGE)


def test_pooling_numbers_calls_pool_forward_with_the_course_api() -> None:
    calls = []

    def fake_pool(a_prev: np.ndarray, hparameters: dict, mode: str = "max") -> tuple[np.ndarray, tuple]:
        calls.append((a_prev.copy(), dict(hparameters), mode))
        return np.full((1, 2, 2, 1), 7.0 if mode == "max" else 0.5), (a_prev, hparameters)

    numbers = figures.pooling_numbers(fake_pool)
    assert sorted(mode for _, _, mode in calls) == ["average", "max"]
    for a_prev, hparameters, _ in calls:
        assert a_prev.shape == (1, 4, 4, 1)
        assert a_prev.dtype == np.float64
        np.testing.assert_array_equal(a_prev[0, :, :, 0], figures.POOL_INPUT)
        assert hparameters == {"f": 2, "stride": 2}
    np.testing.assert_array_equal(numbers["max"], np.full((2, 2), 7.0))
    np.testing.assert_array_equal(numbers["average"], np.full((2, 2), 0.5))


def test_pooling_figure_draws_the_numbers_it_is_given(tmp_path: Path) -> None:
    reference = load_reference()["pool_forward"]

    def transposed_pool(a_prev: np.ndarray, hparameters: dict, mode: str = "max") -> tuple[np.ndarray, tuple]:
        a, cache = reference(a_prev, hparameters, mode=mode)
        return a.transpose(0, 2, 1, 3), cache

    (tmp_path / "right").mkdir()
    (tmp_path / "wrong").mkdir()
    right = mpimg.imread(figures.draw_pooling(tmp_path / "right", reference))
    wrong = mpimg.imread(figures.draw_pooling(tmp_path / "wrong", transposed_pool))
    assert right.shape == wrong.shape
    assert not np.array_equal(right, wrong)


def test_main_passes_out_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = []
    monkeypatch.setattr(figures, "draw_all", lambda out, lang="en": seen.append((out, lang)) or [])
    assert figures.main(["--out", str(tmp_path)]) == 0
    assert seen == [(tmp_path, "en")]


def test_main_draws_every_edition_into_its_own_images_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(figures, "draw_all", lambda out, lang="en": seen.append((out, lang)) or [])
    assert figures.main([]) == 0
    source = figures.DEFAULT_OUT.parents[1]
    assert seen[0] == (figures.DEFAULT_OUT, "en")
    assert seen[1:] == [(source / f"conv_step_by_step_{lang}" / "images", lang) for lang in i18n.languages()]
    seen.clear()
    assert figures.main(["--lang", "zh"]) == 0
    assert seen == [(source / "conv_step_by_step_zh" / "images", "zh")]


class _FakeTranslator:
    """Marks every drawn string, so a figure drawn through it differs from the English one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def __call__(self, context: str, text: str, /, **params: object) -> str:
        self.calls.append((context, text, params))
        return "T:" + text.upper().format(**{k.upper(): v for k, v in params.items()})


def test_drawn_words_go_through_the_translator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reference = load_reference()["pool_forward"]
    (tmp_path / "en").mkdir()
    (tmp_path / "fake").mkdir()
    english = mpimg.imread(figures.draw_pooling(tmp_path / "en", reference))
    fake = _FakeTranslator()
    monkeypatch.setattr(figures, "_TRANSLATOR", fake)
    translated = mpimg.imread(figures.draw_pooling(tmp_path / "fake", reference))
    assert {context for context, _, _ in fake.calls} == {"figures.py"}
    texts = {text: params for _, text, params in fake.calls}
    assert texts["Pooling a 4\u00d74 input with f = {f}, stride = {stride}"] == {"f": 2, "stride": 2}
    # Strings kept in a table (N_) are translated where they are drawn.
    assert {"max pooling", "average pooling", "max", "mean"} <= set(texts)
    assert english.shape != translated.shape or not np.array_equal(english, translated)


def test_draw_all_draws_an_edition_with_its_translator_then_restores_english(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _FakeTranslator()
    langs = []
    monkeypatch.setattr(figures, "_translator", lambda lang: langs.append(lang) or fake)
    # The fake's words are ASCII, so the test needs no CJK font installed.
    monkeypatch.setattr(figures, "_available_cjk_fonts", lambda: ("DejaVu Sans",))
    english = figures._TRANSLATOR
    paths = figures.draw_all(tmp_path, lang="zh")
    assert langs == ["zh"]
    assert sorted(p.name for p in paths) == sorted(figures.FILENAMES)
    drawn = {text for _, text, _ in fake.calls}
    for text in ("channel {c} ({name}) padded with p = {pad}", "Convolution, stride 1: window {k} of {n}",
                 "output Z ({n}\u00d7{n})", "Max pooling backward"):
        assert text in drawn
    assert figures._TRANSLATOR is english
    assert figures._FALLBACK_FONTS == ()
    assert figures._("input (4\u00d74)") == "input (4\u00d74)"


def test_draw_all_refuses_an_edition_without_a_cjk_font(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(figures, "_available_cjk_fonts", lambda: ())
    with pytest.raises(SystemExit, match="fonts-wqy-microhei"):
        figures.draw_all(tmp_path / "zh", lang="zh")
    assert not (tmp_path / "zh").exists()


def test_committed_images_are_up_to_date(drawn: tuple[Path, list[Path]]) -> None:
    committed = figures.DEFAULT_OUT
    if not committed.is_dir():
        pytest.skip(f"{committed} does not exist yet; create it with `cnn figures` (make figures)")
    out, _ = drawn
    stale = []
    for name in PNGS:
        if not (committed / name).is_file():
            stale.append(f"{name} (missing)")
            continue
        # Pixels, not bytes: PNG compression may differ while the picture is the same.
        old, new = mpimg.imread(committed / name), mpimg.imread(out / name)
        if old.shape != new.shape or not np.array_equal(old, new):
            stale.append(name)
    if not (committed / GIF).is_file():
        stale.append(f"{GIF} (missing)")
    else:
        old_frames, new_frames = _gif_frames(committed / GIF), _gif_frames(out / GIF)
        if len(old_frames) != len(new_frames) or not all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(old_frames, new_frames, strict=True)
        ):
            stale.append(GIF)
    assert not stale, f"stale figures in {committed}: {stale}; regenerate with `cnn figures` (make figures)"
