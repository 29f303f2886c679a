"""Matplotlib helpers shared by the widgets (and usable from notebooks).

Figures made by :func:`new_figure` belong to no pyplot backend: they carry their own
Agg canvas, so the notebook's inline backend neither shows them a second time nor
keeps them alive, and ``fig.canvas.draw()`` renders them the same way everywhere.
:func:`png_bytes` turns the drawn canvas into PNG bytes for an ``ipywidgets.Image``.

The diagram pieces (:class:`GateBox`, :func:`op_node`, :class:`Flow`) draw a cell
diagram once; their ``set_value`` methods then change the artists in place.

Text is the slow part of a redraw: Matplotlib lays out every ``Text`` again on every
draw, about 1 ms per string on a 2-core CPU, so a diagram with forty labels cannot
redraw in 30 ms. :class:`PathText` draws a string as glyph outlines (one ``PathPatch``,
about 0.05 ms to draw) built from cached glyphs, and :class:`PathTicks` draws an axis's
ticks, labels and grid with three artists. Kerning is ignored, invisible at these sizes.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from matplotlib import ft2font
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.lines import TICKDOWN, TICKLEFT, Line2D
from matplotlib.patches import Circle, FancyArrowPatch, PathPatch, Rectangle
from matplotlib.path import Path
from matplotlib.textpath import TextPath
from matplotlib.ticker import NullLocator
from matplotlib.transforms import Affine2D, ScaledTranslation, Transform, blended_transform_factory
from PIL import Image as PILImage

__all__ = [
    "NEGATIVE_COLOR",
    "NEUTRAL_COLOR",
    "POSITIVE_COLOR",
    "Flow",
    "GateBox",
    "PathText",
    "PathTicks",
    "diagram_axes",
    "new_figure",
    "op_node",
    "png_bytes",
    "signed_color",
]

POSITIVE_COLOR = "#d1495b"  # values > 0
NEGATIVE_COLOR = "#2e86ab"  # values < 0
NEUTRAL_COLOR = "#9a9a9a"   # values that are (almost) 0
GATE_FACE = "#f4f1ea"
ZERO_TOLERANCE = 1e-3       # |value| below this is drawn as "nothing flows"
PNG_COMPRESS_LEVEL = 1      # zlib level: 1 is several times faster than the default 6, files ~1.3x larger


def new_figure(width: float, height: float, dpi: int = 100) -> Figure:
    """A figure with its own Agg canvas, outside pyplot (no global state, never auto-displayed)."""
    fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def png_bytes(fig: Figure) -> bytes:
    """PNG of what the Agg canvas drew last (call ``fig.canvas.draw()`` first); no second draw."""
    width, height = fig.canvas.get_width_height(physical=True)
    rgba = PILImage.frombuffer("RGBA", (width, height), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    out = io.BytesIO()
    rgba.convert("RGB").save(out, format="png", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def signed_color(value: float) -> str:
    """Red for positive, blue for negative, grey for (almost) zero."""
    if abs(value) < ZERO_TOLERANCE:
        return NEUTRAL_COLOR
    return POSITIVE_COLOR if value > 0 else NEGATIVE_COLOR


def diagram_axes(ax: Axes, width: float, height: float) -> Axes:
    """Turn ``ax`` into a blank drawing board: x in 0..width, y centred on 0..height, equal scales.

    Equal scales keep circles round; the y range grows beyond ``height`` to fill the axes.
    """
    fig = ax.figure
    box = ax.get_position()
    span = width * (box.height * fig.get_figheight()) / (box.width * fig.get_figwidth())  # y units that fit
    ax.set_xlim(0, width)
    ax.set_ylim(height / 2 - span / 2, height / 2 + span / 2)
    ax.set_axis_off()
    return ax


POINTS_PER_INCH = 72
NO_HINTING = ft2font.LoadFlags.NO_HINTING if hasattr(ft2font, "LoadFlags") else ft2font.LOAD_NO_HINTING  # mpl < 3.10
LINE_SPACING = 1.25     # distance between baselines, in font sizes
TICK_LABEL_GAP = 7.0    # points between an axis and its tick labels (tick length 3.5 + pad 3.5)


@lru_cache(maxsize=2048)
def _glyph(char: str, size: float, weight: str, style: str) -> tuple[Path | None, float]:
    """One character's outline in points (origin on the baseline) and its advance width in points."""
    prop = FontProperties(size=size, weight=weight, style=style)
    font = get_font(findfont(prop))
    font.set_size(size, POINTS_PER_INCH)  # at 72 dpi one pixel is one point
    advance = font.load_char(ord(char), flags=NO_HINTING).linearHoriAdvance / 65536  # 16.16 fixed point
    return (None if char.isspace() else TextPath((0, 0), char, prop=prop)), advance


@lru_cache(maxsize=64)
def _vertical_metrics(size: float, weight: str, style: str) -> tuple[float, float]:
    """(height of capitals above the baseline, depth of descenders below it), in points."""
    return _glyph("H", size, weight, style)[0].get_extents().y1, -_glyph("g", size, weight, style)[0].get_extents().y0


class PathText:
    """A string drawn as glyph outlines: one ``PathPatch`` whose path ``set_text`` rebuilds from cached glyphs.

    Args:
        parent: the Axes (or Figure) to draw on.
        xy: the anchor, in ``transform`` coordinates (default: the axes' data coordinates).
        ha: "left", "center" or "right". va: "baseline", "bottom", "center" or "top".
        offset: (dx, dy) in points, added to the anchor (the text moves with it, unscaled).
        rotation: degrees, counter-clockwise, about the anchor.
    """

    def __init__(self, parent, xy: tuple[float, float], text: str = "", *, size: float = 9.0,
                 weight: str = "normal", style: str = "normal", color: str = "black", ha: str = "left",
                 va: str = "baseline", offset: tuple[float, float] = (0.0, 0.0), rotation: float = 0.0,
                 transform: Transform | None = None, zorder: float = 4.0):
        if ha not in ("left", "center", "right"):
            raise ValueError(f"PathText: expected ha 'left', 'center' or 'right', got {ha!r}")
        if va not in ("baseline", "bottom", "center", "top"):
            raise ValueError(f"PathText: expected va 'baseline', 'bottom', 'center' or 'top', got {va!r}")
        self.size, self.weight, self.style, self.ha, self.va = float(size), weight, style, ha, va
        self._parent, self._offset, self._rotation = parent, offset, rotation
        self._coords = parent.transData if transform is None else transform
        self.patch = PathPatch(Path(np.zeros((1, 2)), [Path.MOVETO]), facecolor=color, edgecolor="none",
                               lw=0, zorder=zorder, clip_on=False)
        self.set_position(xy)
        parent.add_artist(self.patch)
        self._text = None
        self.set_text(text)

    def set_position(self, xy: tuple[float, float]) -> None:
        """Move the anchor to ``xy`` (in the coordinates given at construction)."""
        self.xy = (float(xy[0]), float(xy[1]))
        fig = self._parent.figure
        points_to_pixels = Affine2D().rotate_deg(self._rotation).translate(*self._offset).scale(1 / POINTS_PER_INCH)
        self.patch.set_transform(points_to_pixels + fig.dpi_scale_trans + ScaledTranslation(*self.xy, self._coords))

    def get_text(self) -> str:
        return self._text

    def set_text(self, text: str) -> None:
        """Show ``text`` (may contain newlines); costs a few glyph-cache lookups, no font layout."""
        text = str(text)
        if text == self._text:
            return
        self._text = text
        size, key = self.size, (self.size, self.weight, self.style)
        cap, descent = _vertical_metrics(*key)
        lines = text.split("\n")
        block_bottom = -(len(lines) - 1) * LINE_SPACING * size - descent
        dy = {"baseline": 0.0, "top": -cap, "bottom": -block_bottom, "center": -(cap + block_bottom) / 2}[self.va]
        vertices, codes = [np.zeros((1, 2))], [np.array([Path.MOVETO], dtype=Path.code_type)]
        for row, line in enumerate(lines):
            glyphs = [_glyph(char, *key) for char in line]
            width = sum(advance for _, advance in glyphs)
            x = -width * {"left": 0.0, "center": 0.5, "right": 1.0}[self.ha]
            y = dy - row * LINE_SPACING * size
            for path, advance in glyphs:
                if path is not None:
                    vertices.append(path.vertices + np.array([x, y]))  # (n, 2) glyph outline moved into place
                    codes.append(path.codes)
                x += advance
        self.patch.set_path(Path(np.concatenate(vertices), np.concatenate(codes)))

    def set_color(self, color) -> None:
        self.patch.set_facecolor(color)

    def set_visible(self, visible: bool) -> None:
        self.patch.set_visible(visible)


class PathTicks:
    """Ticks of one axis drawn by this class instead of Matplotlib's tick machinery.

    Tick marks are one ``Line2D`` of markers, labels are :class:`PathText`, and ``grid=True``
    adds grid lines as one more ``Line2D``: a handful of artists instead of the per-tick
    ``Tick`` objects Matplotlib lays out on every draw (a third of a small figure's draw time).
    Call :meth:`set_ticks` again whenever the axis limits change.
    """

    TICK_LENGTH = 3.5  # points

    def __init__(self, ax: Axes, axis: str = "x", size: float = 8.0, fmt: str = "{:g}", grid: bool = False):
        if axis not in ("x", "y"):
            raise ValueError(f"PathTicks: expected axis 'x' or 'y', got {axis!r}")
        self.ax, self.axis, self.size, self.fmt = ax, axis, size, fmt
        matplotlib_axis = ax.xaxis if axis == "x" else ax.yaxis
        matplotlib_axis.set_major_locator(NullLocator())  # no Matplotlib ticks (shared axes lose theirs too)
        matplotlib_axis.set_minor_locator(NullLocator())
        if axis == "x":  # x in data coordinates, y in axes coordinates (0 = bottom edge)
            self._coords = blended_transform_factory(ax.transData, ax.transAxes)
            self._label_style = {"offset": (0, -TICK_LABEL_GAP), "ha": "center", "va": "top"}
            marker = TICKDOWN
        else:
            self._coords = blended_transform_factory(ax.transAxes, ax.transData)
            self._label_style = {"offset": (-TICK_LABEL_GAP, 0), "ha": "right", "va": "center"}
            marker = TICKLEFT
        self.marks = Line2D([], [], linestyle="none", marker=marker, markersize=self.TICK_LENGTH, markeredgewidth=0.8,
                            color="black", transform=self._coords, clip_on=False)
        ax.add_artist(self.marks)  # add_artist, not add_line: ticks must not change the data limits
        self.grid = None
        if grid:
            self.grid = Line2D([], [], color="#dddddd", lw=0.8, transform=self._coords, zorder=0.5)
            ax.add_artist(self.grid)
        self.labels: list[PathText] = []

    def set_ticks(self, ticks, labels: list[str] | None = None) -> None:
        """Put ticks at ``ticks`` (data coordinates) labelled ``labels`` (default: ``fmt`` of each tick)."""
        ticks = np.asarray([float(t) for t in ticks])  # (K,)
        labels = [self.fmt.format(t) for t in ticks] if labels is None else list(labels)
        if len(labels) != len(ticks):
            raise ValueError(f"PathTicks: expected one label per tick ({len(ticks)}), got {len(labels)}")
        edge = np.zeros_like(ticks)  # the axis line sits at 0 in axes coordinates
        self.marks.set_data((ticks, edge) if self.axis == "x" else (edge, ticks))
        if self.grid is not None:  # one polyline: (t, 0) -> (t, 1), then NaN to lift the pen, per tick
            along = np.repeat(ticks, 3)  # (3K,)
            across = np.tile([0.0, 1.0, np.nan], len(ticks))  # (3K,)
            self.grid.set_data((along, across) if self.axis == "x" else (across, along))
        while len(self.labels) < len(ticks):
            self.labels.append(PathText(self.ax, (0, 0), size=self.size, transform=self._coords, **self._label_style))
        for k, label in enumerate(self.labels):
            label.set_visible(k < len(ticks))
            if k < len(ticks):
                label.set_position((ticks[k], 0.0) if self.axis == "x" else (0.0, ticks[k]))
                label.set_text(labels[k])


def op_node(ax: Axes, xy: tuple[float, float], symbol: str) -> float:
    """A pointwise operation (×, +, tanh) drawn as a circle with its symbol; static. Returns the radius."""
    radius = 0.28 if len(symbol) == 1 else 0.38
    ax.add_patch(Circle(xy, radius, facecolor="white", edgecolor="black", lw=1.2, zorder=3))
    PathText(ax, xy, symbol, size=13 if len(symbol) == 1 else 8, ha="center", va="center")
    return radius


class GateBox:
    """A gate drawn as a box whose filling shows its value, printed above the box.

    A sigmoid gate (``low=0``) fills from the bottom, 0 empty and 1 full; a tanh
    activation (``low=-1``) fills up or down from the middle line.
    """

    def __init__(self, ax: Axes, xy: tuple[float, float], label: str, symbol: str,
                 low: float = 0.0, high: float = 1.0, width: float = 0.9, height: float = 1.5):
        if not low < high:
            raise ValueError(f"GateBox: expected low < high, got low={low}, high={high}")
        x, y = xy
        self.low, self.high, self.height = low, high, height
        self.base_y = y + height * (0.0 - low) / (high - low)  # where value 0 sits
        ax.add_patch(Rectangle((x, y), width, height, facecolor=GATE_FACE, edgecolor="black", lw=1.2, zorder=2))
        self.fill = Rectangle((x, self.base_y), width, 0.0, facecolor=POSITIVE_COLOR, alpha=0.55, zorder=2.5)
        ax.add_patch(self.fill)
        if low < 0:
            ax.plot([x, x + width], [self.base_y] * 2, color="black", lw=0.6, zorder=2.6)
        PathText(ax, (x + width / 2, y - 0.15), label, ha="center", va="top")
        PathText(ax, (x + width / 2, y + height / 2), symbol, size=11 if len(symbol) == 1 else 9,
                 ha="center", va="center")
        self.text = PathText(ax, (x + width / 2, y + height + 0.12), "", size=10, weight="bold", ha="center",
                             va="bottom")
        self.top = y + height   # where arrows leave the box
        self.center_x = x + width / 2

    def set_value(self, value: float) -> None:
        """Fill the box to ``value`` and print it above the box."""
        self.fill.set_height(self.height * value / (self.high - self.low))  # negative height draws downwards
        self.fill.set_facecolor(signed_color(value))
        self.text.set_text(f"{value:.2f}")


class Flow:
    """An arrow whose thickness and colour show the value that flows along it, with an optional label."""

    MIN_WIDTH, MAX_WIDTH = 0.6, 6.0

    def __init__(self, ax: Axes, start: tuple[float, float], end: tuple[float, float], limit: float,
                 label_xy: tuple[float, float] | None = None, label_ha: str = "center", fmt: str = "{:.2f}"):
        self.limit, self.fmt = limit, fmt
        self.arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, shrinkA=0, shrinkB=0,
                                     color=NEUTRAL_COLOR, lw=self.MIN_WIDTH, zorder=1)
        ax.add_patch(self.arrow)
        self.label = None if label_xy is None else PathText(ax, label_xy, ha=label_ha, va="center")

    def set_value(self, value: float, label: str | None = None) -> None:
        """Thickness ∝ |value| (clipped at ``limit``), colour by sign; the label shows ``label`` or the value."""
        share = float(np.clip(abs(value) / self.limit, 0.0, 1.0))
        self.arrow.set_linewidth(self.MIN_WIDTH + (self.MAX_WIDTH - self.MIN_WIDTH) * share)
        self.arrow.set_color(signed_color(value))
        if self.label is not None:
            self.label.set_text(self.fmt.format(value) if label is None else label)
