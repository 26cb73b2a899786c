"""Figures for the notebook "Convolutional Neural Networks, step by step".

Every figure is drawn from scratch on an Agg canvas (no pyplot, so no global
backend state) with fixed seeds, fixed figure sizes and no timestamps in the
files, so regenerating gives the same bytes on the same software stack.

Regenerate all figures with::

    cnn figures [--lang LANG ...] [--out DIR]        (make figures)

Figures with words are drawn once per edition: English into this assignment's
``images`` folder, each translated edition into ``source/<id>_<lang>/images``.
Every word drawn goes through :func:`_` (strings kept in tables are marked with
:func:`N_` and translated where drawn), so ``cnn translate sync`` extracts them
into ``locale/<lang>/<assignment>.po`` under the context ``figures.py``.

This file is course content: it lives in the assignment's grading folder and
``spec.toml`` names it as the assignment's ``figures`` hook.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
from matplotlib import font_manager, get_cachedir, rc_context
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from cnngrader.core import i18n

#: The released notebook's images folder, beside this grading folder.
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "images"
#: This assignment's id (its folder's name): the catalogue domain and the base of its editions' ids.
BASE_ID = Path(__file__).resolve().parents[1].name

FILENAMES = (
    "zero_padding.png",
    "conv_sliding.gif",
    "conv_sliding_strip.png",
    "window_corners.png",
    "pooling.png",
    "pool_backward.png",
)

DPI = 110
GIF_DPI = 100
FRAME_MS = 700
PAD_SEED = 2  # no value below 10, so no original cell could be mistaken for padding
CONV_SEED = 16  # chosen so that the nine outputs are all different

#: The 4x4 pooling example. Every quadrant has a different max and a different
#: mean, and the off-diagonal quadrants differ, so a swapped or transposed
#: result can never draw the right picture by accident.
POOL_INPUT = np.array(
    [
        [1, 3, 2, 1],
        [2, 9, 1, 1],
        [1, 4, 2, 3],
        [5, 6, 8, 1],
    ]
)
POOL_INPUT.setflags(write=False)
POOL_HPARAMS = {"f": 2, "stride": 2}

PoolForward = Callable[..., Any]
P = ParamSpec("P")
R = TypeVar("R")

# Okabe-Ito palette: stays distinguishable under the common colour-vision deficiencies.
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
BLUE = "#0072B2"
VERMILION = "#D55E00"
PURPLE = "#CC79A7"
INK = "#1F1F1F"
GRID = "#555555"
MUTED = "#6E6E6E"
PAD_FILL = "#E6E6E6"
PENDING = "#F1F1F1"
MONO = "DejaVu Sans Mono"

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "text.color": INK,
    "hatch.linewidth": 0.7,
    "savefig.facecolor": "white",
}

#: Fonts with Chinese glyphs, tried in this order as fallbacks behind the house fonts.
CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC")
CJK_APT_PACKAGE = "fonts-wqy-microhei"

#: The message catalogue context of every string drawn here (the module's file name).
CONTEXT = "figures.py"

#: Translates the words drawn; English by default, swapped by :func:`draw_all` for an edition.
_TRANSLATOR: Callable[..., str] = i18n.Translator()
#: Fallback fonts behind the house fonts while an edition is drawn (empty for English).
_FALLBACK_FONTS: tuple[str, ...] = ()


def _(text: str, /, **params: Any) -> str:
    """``text`` (a literal, with named ``{placeholders}``) in the language being drawn, then formatted."""
    return _TRANSLATOR(CONTEXT, text, **params)


def N_(text: str) -> str:
    """Mark a string in a table for translation; :func:`_` translates it where it is drawn."""
    return text


# --------------------------------------------------------------------------- helpers


def _styled(draw: Callable[P, R]) -> Callable[P, R]:
    """Run a public ``draw_*`` function under the house style, also when called on its own."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with rc_context(_style()):
            return draw(*args, **kwargs)

    return wrapper


def _style() -> dict[str, Any]:
    """The house style, with the edition's fallback fonts behind the house font."""
    if not _FALLBACK_FONTS:
        return _STYLE
    return {**_STYLE, "font.family": [_STYLE["font.family"], *_FALLBACK_FONTS]}


def _mono() -> str | list[str]:
    """The monospace family for code-like text, with the edition's fallback fonts behind it."""
    return [MONO, *_FALLBACK_FONTS] if _FALLBACK_FONTS else MONO


def _available_cjk_fonts() -> tuple[str, ...]:
    """The fonts of :data:`CJK_FONTS` that matplotlib can find on this machine."""
    found = []
    for name in CJK_FONTS:
        try:
            font_manager.findfont(font_manager.FontProperties(family=[name]), fallback_to_default=False)
        except ValueError:
            continue
        found.append(name)
    return tuple(found)


def _fallback_fonts(lang: str) -> tuple[str, ...]:
    """Fonts to draw ``lang``'s glyphs with behind the house fonts; exits if none is installed."""
    if lang == i18n.ENGLISH:
        return ()
    fonts = _available_cjk_fonts()
    if not fonts:
        raise SystemExit(
            f"cannot draw the {lang!r} figures: no font with Chinese glyphs found "
            f"(tried {', '.join(CJK_FONTS)}). Install one, e.g. `apt-get install {CJK_APT_PACKAGE}`; "
            f"if it is installed already, delete matplotlib's font cache ({get_cachedir()}/fontlist-*.json)."
        )
    return fonts


class _NoBoldFallbackNotice(logging.Filter):
    """Drops matplotlib's notice that a CJK fallback font has no bold face (its regular face is used)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("findfont: Failed to find font weight")


def _translator(lang: str) -> Callable[..., str]:
    """The translator of ``lang``'s edition of this assignment (its catalogue ``locale/<lang>/<id>.po``)."""
    return i18n.Translator(lang, (BASE_ID,))


def out_dir_for(lang: str) -> Path:
    """Where ``lang``'s edition keeps its figures: ``source/<edition id>/images``."""
    return Path(__file__).resolve().parents[2] / i18n.edition_id(BASE_ID, lang) / "images"


def _tint(color: str, amount: float) -> tuple[float, float, float]:
    """``color`` mixed with white; ``amount=1`` is the full colour."""
    rgb = np.array(to_rgb(color))
    r, g, b = (1.0 - amount * (1.0 - rgb)).tolist()
    return (r, g, b)


def _text_color(face: Any) -> str:
    r, g, b = to_rgb(face)
    return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45 else INK


def _num(value: float) -> str:
    """Integers without a decimal point, other values with at most 2 decimals."""
    value = float(value)
    if value == round(value):
        text = str(int(round(value)))
    else:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace("-", "\u2212")


def _canvas(width: float, height: float, unit: float, dpi: int = DPI) -> tuple[Figure, Axes]:
    """A figure whose single axes spans it, in cell units with y pointing down."""
    fig = Figure(figsize=(width * unit, height * unit), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    _frame(ax, width, height)
    return fig, ax


def _frame(ax: Axes, width: float, height: float) -> None:
    ax.set_xlim(0, width)
    # Rows grow downwards, like array indices, so grids read the way numpy prints them.
    ax.set_ylim(height, 0)
    ax.set_axis_off()


def _cell(
    ax: Axes,
    x: float,
    y: float,
    text: str | None = None,
    *,
    face: Any = "white",
    edge: str = GRID,
    lw: float = 0.9,
    fontsize: float = 10,
    color: str | None = None,
    weight: str = "normal",
    hatch: str | None = None,
    hatchcolor: str | None = None,
    w: float = 1.0,
    h: float = 1.0,
) -> None:
    extra = {"hatch": hatch, "hatchcolor": hatchcolor} if hatch else {}
    ax.add_patch(Rectangle((x, y), w, h, facecolor=face, edgecolor=edge, linewidth=lw, zorder=1, **extra))
    if text is not None:
        ax.text(
            x + w / 2,
            y + h / 2,
            text,
            ha="center",
            va="center",
            fontsize=fontsize,
            color=color or _text_color(face),
            weight=weight,
            zorder=3,
        )


def _outline(
    ax: Axes, x: float, y: float, w: float, h: float, color: str, lw: float, ls: str = "-", z: float = 4
) -> None:
    ax.add_patch(
        Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=lw, linestyle=ls, zorder=z, joinstyle="miter")
    )


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str = GRID, **kw: Any) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=14, linewidth=1.6, color=color, zorder=2, **kw
        )
    )


def _save_png(fig: Figure, path: Path) -> Path:
    # No "Software" entry: the version string would make the bytes depend on matplotlib.
    fig.savefig(path, dpi=fig.dpi, metadata={"Software": None}, pil_kwargs={"optimize": True})
    return path


# --------------------------------------------------------------------- zero padding


@_styled
def draw_zero_padding(out_dir: Path) -> Path:
    """Three channels of a 5x5x3 image, each zero-padded by p = 2."""
    rng = np.random.default_rng(PAD_SEED)
    image = rng.integers(0, 256, size=(5, 5, 3))
    pad = 2
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    n = padded.shape[0]
    channels = (("R", VERMILION), ("G", GREEN), ("B", BLUE))

    margin, gap, top = 0.6, 1.6, 2.6
    width = 2 * margin + 3 * n + 2 * gap
    height = top + n + 1.7
    fig, ax = _canvas(width, height, unit=0.34)
    ax.text(
        width / 2,
        0.75,
        _("Zero padding with p = {pad}: shape {before} \u2192 {after}", pad=pad, before=image.shape, after=padded.shape),
        ha="center",
        va="center",
        fontsize=14,
        weight="bold",
    )
    for c, (name, hue) in enumerate(channels):
        x0 = margin + c * (n + gap)
        ax.text(x0 + n / 2, top - 0.4, _("channel {c} ({name}) padded with p = {pad}", c=c, name=name, pad=pad), ha="center", fontsize=10.5)
        for i in range(n):
            for j in range(n):
                inside = pad <= i < n - pad and pad <= j < n - pad
                if inside:
                    value = int(padded[i, j, c])
                    face = _tint(hue, 0.12 + 0.78 * value / 255)
                    _cell(ax, x0 + j, top + i, str(value), face=face, fontsize=7.5)
                else:
                    _cell(
                        ax, x0 + j, top + i, "0", face=PAD_FILL, hatch="///", hatchcolor="#C4C4C4",
                        edge="#9A9A9A", fontsize=7.5, color=MUTED,
                    )
        _outline(ax, x0 + pad, top + pad, n - 2 * pad, n - 2 * pad, INK, 2.6)

    # Legend, drawn by hand so its swatches match the cells exactly.
    ly = top + n + 0.55
    lx = width / 2 - 8.2
    _cell(ax, lx, ly, face=PAD_FILL, hatch="///", hatchcolor="#C4C4C4", edge="#9A9A9A", w=1.2, h=0.8)
    ax.text(lx + 1.6, ly + 0.4, _("zero border added by padding (p = {pad} on each side)", pad=pad), va="center", fontsize=10)
    lx2 = width / 2 + 4.6
    _outline(ax, lx2, ly, 1.2, 0.8, INK, 2.6)
    ax.text(lx2 + 1.6, ly + 0.4, _("original 5 \u00d7 5 values"), va="center", fontsize=10)
    return _save_png(fig, out_dir / "zero_padding.png")


# ---------------------------------------------------------------------- convolution


def conv_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 5x5 input, 3x3 filter and 3x3 output (stride 1, no bias) used in the animation."""
    rng = np.random.default_rng(CONV_SEED)
    x = rng.integers(0, 5, size=(5, 5))
    w = rng.integers(-1, 2, size=(3, 3))
    out = np.zeros((3, 3), dtype=int)
    for h in range(3):
        for c in range(3):
            out[h, c] = int(np.sum(x[h : h + 3, c : c + 3] * w))
    return x, w, out


def _grid_label(ax: Axes, x: float, y: float, text: str, fontsize: float) -> None:
    ax.text(x, y, text, ha="center", va="bottom", fontsize=fontsize, color=INK)


def _draw_filter(ax: Axes, x0: float, y0: float, w: np.ndarray, fs: float, label_fs: float) -> None:
    _grid_label(ax, x0 + 1.5, y0 - 0.15, _("filter W (3\u00d73)"), label_fs)
    for i in range(3):
        for j in range(3):
            _cell(ax, x0 + j, y0 + i, _num(w[i, j]), face=_tint(SKY, 0.35), fontsize=fs)


def _draw_conv_state(
    ax: Axes,
    x0: float,
    y0: float,
    step: int,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    fs: float,
    label_fs: float,
    full: bool,
) -> None:
    """Input, (filter,) and partial output after ``step`` windows; step 9 means finished.

    ``full`` adds the filter between input and output plus the filter weights in
    the corners of the window cells; the compact form draws an arrow instead.
    """
    x, w, out = data
    done = step >= 9
    hh, ww = divmod(min(step, 8), 3)

    _grid_label(ax, x0 + 2.5, y0 - 0.15, _("input x (5\u00d75)"), label_fs)
    for i in range(5):
        for j in range(5):
            in_window = not done and hh <= i < hh + 3 and ww <= j < ww + 3
            face = _tint(ORANGE, 0.4) if in_window else "white"
            _cell(ax, x0 + j, y0 + i, _num(x[i, j]), face=face, fontsize=fs)
            if in_window and full:
                ax.text(
                    x0 + j + 0.94, y0 + i + 0.95, "\u00d7" + _num(w[i - hh, j - ww]),
                    ha="right", va="bottom", fontsize=fs * 0.62, color=BLUE, zorder=3,
                )
    if not done:
        _outline(ax, x0 + ww, y0 + hh, 3, 3, ORANGE, 3.0)

    if full:
        ax.text(x0 + 5.75, y0 + 2.5, "\u2217", ha="center", va="center", fontsize=fs * 1.8)
        _draw_filter(ax, x0 + 6.5, y0 + 1, w, fs, label_fs)
        ax.text(x0 + 10.25, y0 + 2.5, "=", ha="center", va="center", fontsize=fs * 1.6)
        ox = x0 + 11.0
    else:
        _arrow(ax, (x0 + 5.2, y0 + 2.5), (x0 + 6.4, y0 + 2.5))
        ox = x0 + 6.6
    oy = y0 + 1
    _grid_label(ax, ox + 1.5, oy - 0.15, _("output (3\u00d73)"), label_fs)
    for k in range(9):
        i, j = divmod(k, 3)
        current = not done and k == step
        if current:
            _cell(ax, ox + j, oy + i, _num(out[i, j]), face=_tint(ORANGE, 0.4), fontsize=fs, weight="bold")
        elif done or k < step:
            _cell(ax, ox + j, oy + i, _num(out[i, j]), fontsize=fs)
        else:
            _cell(ax, ox + j, oy + i, face=PENDING)
    if not done:
        _outline(ax, ox + ww, oy + hh, 1, 1, ORANGE, 3.0)


def _conv_caption(step: int, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[str, str]:
    x, w, out = data
    if step >= 9:
        return (
            _("all 9 windows done: 5\u00d75 input \u2217 3\u00d73 filter, stride 1 \u2192 3\u00d73 output"),
            "n_H = (n_H_prev \u2212 f) / stride + 1 = (5 \u2212 3) / 1 + 1 = 3",
        )
    h, c = divmod(step, 3)
    window = x[h : h + 3, c : c + 3]
    terms = [f"{a}\u00b7{_num(b) if b >= 0 else '(' + _num(b) + ')'}" for a, b in zip(window.ravel(), w.ravel(), strict=True)]
    return (
        f"output[{h}, {c}] = sum(x[{h}:{h + 3}, {c}:{c + 3}] * W) = {_num(out[h, c])}",
        "= " + " + ".join(terms),
    )


_CONV_W, _CONV_H = 15.0, 8.7


def _draw_conv_frame(ax: Axes, step: int, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ax.clear()
    _frame(ax, _CONV_W, _CONV_H)
    title = (
        _("Convolution, stride 1: done") if step >= 9
        else _("Convolution, stride 1: window {k} of {n}", k=step + 1, n=9)
    )
    ax.text(_CONV_W / 2, 0.65, title, ha="center", va="center", fontsize=14, weight="bold")
    _draw_conv_state(ax, 0.5, 1.75, step, data, fs=12, label_fs=10.5, full=True)
    line1, line2 = _conv_caption(step, data)
    ax.text(_CONV_W / 2, 7.5, line1, ha="center", va="center", fontsize=10.5, family=_mono())
    ax.text(_CONV_W / 2, 8.2, line2, ha="center", va="center", fontsize=9, family=_mono(), color=MUTED)


@_styled
def draw_conv_sliding(out_dir: Path) -> Path:
    """Animated GIF of a 3x3 filter sliding over a 5x5 input (stride 1)."""
    data = conv_example()
    fig, ax = _canvas(_CONV_W, _CONV_H, unit=0.52, dpi=GIF_DPI)
    # The finished frame is repeated so it lingers; Pillow merges the copies into one long frame.
    frames = [*range(9), 9, 9, 9]
    anim = FuncAnimation(
        fig,
        lambda step: _draw_conv_frame(ax, step, data),
        frames=frames,
        interval=FRAME_MS,
        blit=False,
        repeat=False,
        cache_frame_data=False,
    )
    path = out_dir / "conv_sliding.gif"
    anim.save(path, writer=PillowWriter(fps=1000 / FRAME_MS), dpi=GIF_DPI)
    return path


@_styled
def draw_conv_strip(out_dir: Path) -> Path:
    """Static 3x3 strip of the nine convolution steps, for renderers that do not animate GIFs."""
    data = conv_example()
    x, w, out = data
    left, panel_w, col_gap, top, row_h = 4.8, 9.6, 1.4, 2.1, 7.0
    width = left + 3 * panel_w + 2 * col_gap + 0.4
    height = top + 3 * row_h - 0.1
    fig, ax = _canvas(width, height, unit=0.3)
    ax.text(
        width / 2, 0.75, _("Convolution of a 5\u00d75 input with a 3\u00d73 filter, stride 1, no bias"),
        ha="center", va="center", fontsize=14, weight="bold",
    )
    fy = top + row_h * 1.5 - 2.5
    _draw_filter(ax, 0.7, fy, w, 9, 10)
    ax.text(2.2, fy + 3.35, _("output = sum of\nwindow \u2299 W"), ha="center", va="top", fontsize=9, color=MUTED)
    for step in range(9):
        r, c = divmod(step, 3)
        px = left + c * (panel_w + col_gap)
        py = top + r * row_h
        h, col = divmod(step, 3)
        ax.text(
            px + panel_w / 2, py + 0.15, _("step {k}: output[{h}, {w}] = {value}", k=step + 1, h=h, w=col, value=_num(out[h, col])),
            ha="center", va="center", fontsize=10, weight="bold",
        )
        _draw_conv_state(ax, px, py + 1.25, step, data, fs=9, label_fs=8, full=False)
    ax.plot([left - 0.7, left - 0.7], [top - 0.4, height - 0.3], color="#BBBBBB", lw=1)
    return _save_png(fig, out_dir / "conv_sliding_strip.png")


# ------------------------------------------------------------------- window corners


@_styled
def draw_window_corners(out_dir: Path) -> Path:
    """Which slice of a 7x7 input feeds output (h=1, w=2) when f=3 and stride=2."""
    n, f, stride, h, w = 7, 3, 2, 1, 2
    vs, hs = h * stride, w * stride
    ve, he = vs + f, hs + f
    n_out = (n - f) // stride + 1

    gx, gy = 4.6, 3.8
    ox, oy = gx + n + 2.2, gy + vs
    width, height = ox + n_out + 1.3, gy + n + 3.6
    fig, ax = _canvas(width, height, unit=0.42)
    ax.text(
        width / 2, 0.6, _("Window of output (h = {h}, w = {w}) with f = {f}, stride = {stride}", h=h, w=w, f=f, stride=stride),
        ha="center", va="center", fontsize=13, weight="bold",
    )

    for i in range(n):
        for j in range(n):
            inside = vs <= i < ve and hs <= j < he
            _cell(ax, gx + j, gy + i, face=_tint(ORANGE, 0.4) if inside else "white")
    _outline(ax, gx + hs, gy + vs, f, f, ORANGE, 3.2)
    for k in range(n):
        ax.text(gx - 0.3, gy + k + 0.5, str(k), ha="center", va="center", fontsize=8.5, color=MUTED)
        ax.text(gx + k + 0.5, gy - 0.3, str(k), ha="center", va="center", fontsize=8.5, color=MUTED)
    ax.text(gx + n / 2, gy + n + 0.2, f"a_prev_pad ({n}\u00d7{n})", ha="center", va="top", fontsize=10)

    # Slice bounds sit on cell edges: the end index is the first row/column left out.
    for value, name in ((vs, "vert_start"), (ve, "vert_end")):
        y = gy + value
        ax.plot([gx - 1.4, gx], [y, y], color=BLUE, lw=2.2, solid_capstyle="butt", zorder=5)
        # Under the window outline (zorder 4), so the window edge stays one clean line.
        ax.plot([gx, gx + n], [y, y], color=BLUE, lw=1.4, ls=(0, (4, 2.5)), zorder=3)
        ax.plot([gx - 1.4], [y], marker="o", ms=4, color=BLUE, zorder=5)
        ax.text(gx - 1.6, y, f"{name} = {value}", ha="right", va="center", fontsize=10, family=_mono(), color=BLUE)
    for value, name in ((hs, "horiz_start"), (he, "horiz_end")):
        xx = gx + value
        ax.plot([xx, xx], [gy - 1.2, gy], color=GREEN, lw=2.2, solid_capstyle="butt", zorder=5)
        ax.plot([xx, xx], [gy, gy + n], color=GREEN, lw=1.4, ls=(0, (4, 2.5)), zorder=3)
        ax.plot([xx], [gy - 1.2], marker="o", ms=4, color=GREEN, zorder=5)
        ax.text(xx, gy - 1.4, f"{name}\n= {value}", ha="center", va="bottom", fontsize=10, family=_mono(), color=GREEN)

    _grid_label(ax, ox + n_out / 2, oy - 0.8, _("output Z ({n}\u00d7{n})", n=n_out), 10)
    for i in range(n_out):
        for j in range(n_out):
            here = (i, j) == (h, w)
            _cell(ax, ox + j, oy + i, face=_tint(ORANGE, 0.4) if here else "white")
        ax.text(ox - 0.3, oy + i + 0.5, str(i), ha="center", va="center", fontsize=8.5, color=MUTED)
        ax.text(ox + i + 0.5, oy - 0.3, str(i), ha="center", va="center", fontsize=8.5, color=MUTED)
    _outline(ax, ox + w, oy + h, 1, 1, ORANGE, 3.2)
    ax.text(ox + n_out / 2, oy + n_out + 0.3, _("position (h = {h}, w = {w})", h=h, w=w), ha="center", va="top", fontsize=9.5)
    _arrow(ax, (gx + n + 0.15, gy + vs + f / 2), (ox - 0.6, oy + h + 0.5), color=ORANGE)

    lines = [
        f"vert_start  = h * stride        = {h} * {stride} = {vs}",
        f"vert_end    = vert_start + f    = {vs} + {f} = {ve}",
        f"horiz_start = w * stride        = {w} * {stride} = {hs}",
        f"horiz_end   = horiz_start + f   = {hs} + {f} = {he}",
        f"a_slice = a_prev_pad[{vs}:{ve}, {hs}:{he}, :]   " + _("(end index excluded)"),
    ]
    ax.text(gx - 3.8, gy + n + 1.05, "\n".join(lines), ha="left", va="top", fontsize=9.5, family=_mono(), linespacing=1.45)
    return _save_png(fig, out_dir / "window_corners.png")


# -------------------------------------------------------------------------- pooling


def _reference_pool_forward() -> PoolForward:
    from cnngrader.core.reference import load_reference

    return load_reference()["pool_forward"]


def pooling_numbers(pool_forward: PoolForward) -> dict[str, np.ndarray]:
    """Max and average pooling of ``POOL_INPUT`` as computed by ``pool_forward``."""
    numbers = {}
    for mode in ("max", "average"):
        # Fresh copies, so a function that mutates its arguments cannot leak into the next call.
        result = pool_forward(POOL_INPUT.reshape(1, 4, 4, 1).astype(float), dict(POOL_HPARAMS), mode=mode)
        # The course API returns (A, cache); accept a bare array as well.
        a = result[0] if isinstance(result, tuple) else result
        numbers[mode] = np.asarray(a, dtype=float).reshape(2, 2)
    return numbers


_QUADRANT_COLORS = ((ORANGE, SKY), (GREEN, PURPLE))


@_styled
def draw_pooling(out_dir: Path, pool_forward: PoolForward | None = None) -> Path:
    """Input next to its max- and average-pooled outputs, numbers taken from ``pool_forward``."""
    numbers = pooling_numbers(pool_forward or _reference_pool_forward())
    f, stride = POOL_HPARAMS["f"], POOL_HPARAMS["stride"]

    width, height = 10.6, 7.85
    fig, ax = _canvas(width, height, unit=0.6)
    ax.text(
        width / 2, 0.6, _("Pooling a 4\u00d74 input with f = {f}, stride = {stride}", f=f, stride=stride),
        ha="center", va="center", fontsize=14, weight="bold",
    )
    ix, iy = 0.8, 2.35
    _grid_label(ax, ix + 2, iy - 0.15, _("input (4\u00d74)"), 11)
    for i in range(4):
        for j in range(4):
            qi, qj = i // stride, j // stride
            face = _tint(_QUADRANT_COLORS[qi][qj], 0.45)
            is_max = POOL_INPUT[i, j] == numbers["max"][qi, qj]
            _cell(ax, ix + j, iy + i, _num(POOL_INPUT[i, j]), face=face, fontsize=13, weight="bold" if is_max else "normal")
            if is_max:
                _outline(ax, ix + j + 0.12, iy + i + 0.12, 0.76, 0.76, INK, 1.3, z=2)
    for k in (0, 2, 4):
        ax.plot([ix + k, ix + k], [iy, iy + 4], color=INK, lw=2.2, zorder=4)
        ax.plot([ix, ix + 4], [iy + k, iy + k], color=INK, lw=2.2, zorder=4)
    ax.text(ix + 2, iy + 4.25, _("boxed = maximum of its window"), ha="center", va="top", fontsize=9.5, color=MUTED)

    outputs = (("max", N_("max pooling"), 1.75, N_("max")), ("average", N_("average pooling"), 5.25, N_("mean")))
    ox = 7.4
    for mode, label, oy, verb in outputs:
        _grid_label(ax, ox + 1, oy - 0.15, _(label), 11)
        for i in range(2):
            for j in range(2):
                face = _tint(_QUADRANT_COLORS[i][j], 0.45)
                _cell(ax, ox + j, oy + i, _num(numbers[mode][i, j]), face=face, fontsize=13)
        _outline(ax, ox, oy, 2, 2, INK, 2.2)
        ax.plot([ox + 1, ox + 1], [oy, oy + 2], color=INK, lw=2.2, zorder=4)
        ax.plot([ox, ox + 2], [oy + 1, oy + 1], color=INK, lw=2.2, zorder=4)
        start = (ix + 4.25, iy + (1.2 if mode == "max" else 2.8))
        end = (ox - 0.25, oy + 1)
        _arrow(ax, start, end)
        ax.text(
            (start[0] + end[0]) / 2, (start[1] + end[1]) / 2 - 0.22, _(verb),
            ha="center", va="bottom", fontsize=10, color=GRID, family=_mono(),
        )
    return _save_png(fig, out_dir / "pooling.png")


# ---------------------------------------------------------------- pooling backward


@_styled
def draw_pool_backward(out_dir: Path) -> Path:
    """Backward pass of one window: the max mask (left) and the average spread (right)."""
    window = np.array([[1, 3], [4, 2]])
    dz_max = 5
    mask = window == np.max(window)
    grad_max = mask * dz_max
    dz_avg = 2
    grad_avg = np.ones(window.shape) * dz_avg / window.size

    width, height, split, gy = 20.4, 6.9, 13.0, 3.0
    fig, ax = _canvas(width, height, unit=0.5)
    for cx, title, sub in (
        (split / 2, N_("Max pooling backward"), "mask = create_mask_from_window(x)"),
        ((split + width) / 2, N_("Average pooling backward"), f"distribute_value(dz={dz_avg}, shape=(2, 2))"),
    ):
        ax.text(cx, 0.7, _(title), ha="center", va="center", fontsize=13.5, weight="bold")
        ax.text(cx, 1.45, sub, ha="center", va="center", fontsize=9.5, family=MONO, color=MUTED)
    ax.plot([split, split], [0.3, height - 0.3], color="#BBBBBB", lw=1.2)

    def grid2(x0: float, label: str, values: np.ndarray, faces: list[list[Any]], fs: float = 11) -> None:
        # The maximum's position is bold in every max-pooling grid.
        _grid_label(ax, x0 + 1, gy - 0.2, label, 10.5)
        for i in range(2):
            for j in range(2):
                text = str(values[i, j]) if values.dtype == bool else _num(values[i, j])
                weight = "bold" if faces[i][j] == hot else "normal"
                _cell(ax, x0 + j, gy + i, text, face=faces[i][j], fontsize=fs, weight=weight)
        _outline(ax, x0, gy, 2, 2, INK, 1.8)

    def arrow(a: float, b: float, text: str) -> None:
        _arrow(ax, (a + 0.3, gy + 1), (b - 0.3, gy + 1))
        ax.text((a + b) / 2, gy + 0.75, text, ha="center", va="bottom", fontsize=9.5, family=MONO, color=GRID)

    hot = _tint(ORANGE, 0.55)
    x1, x2, x3 = 0.8, 5.4, 10.0
    grid2(x1, _("window x"), window, [[hot if m else "white" for m in row] for row in mask.tolist()])
    grid2(x2, _("mask"), mask, [[hot if m else PENDING for m in row] for row in mask.tolist()], fs=10)
    grid2(x3, _("dz \u00d7 mask (dz = {dz})", dz=dz_max), grad_max, [[hot if m else PENDING for m in row] for row in mask.tolist()])
    arrow(x1 + 2, x2, "x == max(x)")
    arrow(x2 + 2, x3, "\u00d7 dz")
    ax.text(
        split / 2, gy + 2.65,
        _("only the position of the maximum influenced the output,\nso the whole gradient goes back there"),
        ha="center", va="top", fontsize=10, color=MUTED,
    )

    dx = split + 0.9
    _grid_label(ax, dx + 0.5, gy + 0.3, "dz", 10.5)
    _cell(ax, dx, gy + 0.5, _num(dz_avg), face=_tint(SKY, 0.55), fontsize=11, weight="bold")
    _outline(ax, dx, gy + 0.5, 1, 1, INK, 1.8)
    x4 = split + 4.6
    arrow(dx + 1, x4, "dz / (2\u00b72)")
    grid2(x4, _("distributed gradient"), grad_avg, [[_tint(SKY, 0.3)] * 2] * 2)
    ax.text(
        (split + width) / 2, gy + 2.65,
        _("every input contributed equally\nto the mean, so each gets dz / 4"),
        ha="center", va="top", fontsize=10, color=MUTED,
    )
    return _save_png(fig, out_dir / "pool_backward.png")


# ------------------------------------------------------------------------- driver


def draw_all(out_dir: Path, pool_forward: PoolForward | None = None, lang: str = i18n.ENGLISH) -> list[Path]:
    """Draw every figure in ``lang`` into ``out_dir`` (created if needed); return the written paths.

    A translated edition's words come from its catalogue (English where it has
    no entry yet), drawn with a CJK font behind the house fonts; without such a
    font installed this exits rather than drawing empty boxes.
    """
    global _TRANSLATOR, _FALLBACK_FONTS
    fonts = _fallback_fonts(lang)
    translator = _translator(lang)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _TRANSLATOR, _FALLBACK_FONTS
    _TRANSLATOR, _FALLBACK_FONTS = translator, fonts
    quiet = _NoBoldFallbackNotice()
    font_log = logging.getLogger(font_manager.__name__)
    font_log.addFilter(quiet)
    try:
        return [
            draw_zero_padding(out_dir),
            draw_conv_sliding(out_dir),
            draw_conv_strip(out_dir),
            draw_window_corners(out_dir),
            draw_pooling(out_dir, pool_forward),
            draw_pool_backward(out_dir),
        ]
    finally:
        font_log.removeFilter(quiet)
        _TRANSLATOR, _FALLBACK_FONTS = previous


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: regenerate all figures, once per edition."""
    editions = [i18n.ENGLISH, *i18n.languages()]
    parser = argparse.ArgumentParser(prog="cnn figures", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lang", action="append", choices=editions, default=None,
        help=f"edition to draw (repeatable; default: all of {', '.join(editions)}, "
        f"or only {i18n.ENGLISH} with --out); each goes into source/<edition id>/images",
    )
    parser.add_argument(
        "--out", type=Path, default=None,
        help=f"draw into this directory instead (one edition only; default: {DEFAULT_OUT} for English)",
    )
    args = parser.parse_args(argv)
    langs = list(dict.fromkeys(args.lang or ([i18n.ENGLISH] if args.out else editions)))
    if args.out is not None and len(langs) > 1:
        parser.error("--out takes a single --lang")
    for lang in langs:
        for path in draw_all(args.out or out_dir_for(lang), lang=lang):
            print(f"{path}  {path.stat().st_size / 1024:.1f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
