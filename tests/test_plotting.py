"""course_utils.plotting: figures outside pyplot, PNG bytes, colours by sign, and the diagram pieces.

The assertions read the artists (their data, positions, colours, sizes), not pixels; only
:func:`png_bytes` is checked on its pixels, because pixels are what it returns.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.font_manager import FontProperties
from matplotlib.lines import TICKDOWN, TICKLEFT
from matplotlib.patches import Circle, PathPatch, Rectangle
from matplotlib.path import Path
from matplotlib.textpath import TextPath
from matplotlib.ticker import AutoLocator, NullLocator
from PIL import Image

from course_utils import plotting
from course_utils.plotting import (
    GATE_FACE,
    NEGATIVE_COLOR,
    NEUTRAL_COLOR,
    POSITIVE_COLOR,
    Flow,
    GateBox,
    PathText,
    PathTicks,
    diagram_axes,
    new_figure,
    op_node,
    png_bytes,
    signed_color,
)

matplotlib.use("Agg")

DPI = 100
PIXELS_PER_POINT = DPI / 72


@pytest.fixture
def ax():
    """Axes filling a 4 x 3 inch figure, data limits 0..10 both ways."""
    fig = new_figure(4.0, 3.0, dpi=DPI)
    axes = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, 10)
    axes.set_ylim(0, 10)
    return axes


def outline(text: PathText) -> Path:
    """The glyph outlines of a PathText, in points, without the leading MOVETO (0, 0) every path starts with."""
    path = text.patch.get_path()
    assert tuple(path.vertices[0]) == (0.0, 0.0) and path.codes[0] == Path.MOVETO
    return Path(path.vertices[1:], path.codes[1:])


def anchor_pixels(text: PathText, point=(0.0, 0.0)) -> np.ndarray:
    """Where a point of the text (in points, relative to its anchor) lands on the canvas, in pixels."""
    return text.patch.get_transform().transform(np.array([point], dtype=float))[0]


def path_texts(ax) -> list[PathPatch]:
    return [a for a in ax.get_children() if isinstance(a, PathPatch)]


def reference_outline(text: str, size: float, **style) -> Path:
    """The outline a fresh PathText with these settings draws (on a throwaway figure)."""
    other = new_figure(1.0, 1.0).add_axes((0, 0, 1, 1))
    return outline(PathText(other, (0, 0), text, size=size, **style))


def same_outline(patch: PathPatch, expected: Path) -> bool:
    path = patch.get_path()
    return path.vertices.shape[0] == expected.vertices.shape[0] + 1 and np.allclose(path.vertices[1:],
                                                                                      expected.vertices)


def data_anchor(ax, patch: PathPatch) -> tuple[float, float]:
    """The data coordinates of a PathText's anchor (its patch transform's image of (0, 0) points)."""
    pixels = patch.get_transform().transform(np.zeros((1, 2)))
    return tuple(np.round(ax.transData.inverted().transform(pixels)[0], 9))


# ------------------------------------------------------------------ figures, PNG, colours
def test_new_figure_has_its_own_agg_canvas_outside_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = new_figure(3.0, 2.0, dpi=50)
    assert isinstance(fig.canvas, FigureCanvasAgg) and fig.canvas.figure is fig
    assert tuple(fig.get_size_inches()) == (3.0, 2.0) and fig.dpi == 50
    assert fig.canvas.get_width_height() == (150, 100)
    assert to_rgba(fig.get_facecolor()) == to_rgba("white")
    assert plt.get_fignums() == before  # pyplot never sees it


def test_new_figure_default_dpi_is_100():
    assert new_figure(2.0, 1.0).canvas.get_width_height() == (200, 100)


def test_png_bytes_is_the_drawn_canvas_top_row_first():
    fig = new_figure(2.0, 1.0, dpi=50)  # 100 x 50 pixels
    fig.add_artist(Rectangle((0.0, 0.5), 1.0, 0.5, transform=fig.transFigure, facecolor="#ff0000", lw=0))
    fig.canvas.draw()
    data = png_bytes(fig)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (100, 50)
    pixels = np.asarray(image)  # (rows, columns, 3), row 0 at the top
    assert (pixels[:20] == [255, 0, 0]).all()  # the red rectangle covers the upper half
    assert (pixels[30:] == [255, 255, 255]).all()  # the white face the lower half


def test_png_bytes_has_every_physical_pixel_of_a_hidpi_canvas():
    fig = new_figure(2.0, 1.0, dpi=50)
    fig.add_artist(Rectangle((0.0, 0.5), 1.0, 0.5, transform=fig.transFigure, facecolor="#ff0000", lw=0))
    fig.canvas._set_device_pixel_ratio(2)  # what a HiDPI backend does: twice the pixels, the same inches
    fig.canvas.draw()
    pixels = np.asarray(Image.open(io.BytesIO(png_bytes(fig))))
    assert pixels.shape == (100, 200, 3)
    assert (pixels[:40] == [255, 0, 0]).all() and (pixels[60:] == [255, 255, 255]).all()


def test_png_bytes_are_compressed():
    fig = new_figure(4.0, 3.0)
    fig.canvas.draw()
    data = png_bytes(fig)
    assert len(data) < 400 * 300 * 3 / 50  # a blank figure compresses far below its raw size
    raw = Image.open(io.BytesIO(data))
    assert raw.size == (400, 300)


def test_png_bytes_does_not_draw_again():
    fig = new_figure(1.0, 1.0, dpi=20)
    fig.canvas.draw()
    fig.add_artist(Rectangle((0, 0), 1, 1, transform=fig.transFigure, facecolor="black"))  # not drawn yet
    assert (np.asarray(Image.open(io.BytesIO(png_bytes(fig)))) == 255).all()


@pytest.mark.parametrize("value, color", [
    (0.5, POSITIVE_COLOR), (-0.5, NEGATIVE_COLOR), (1e6, POSITIVE_COLOR), (-1e6, NEGATIVE_COLOR),
    (0.0, NEUTRAL_COLOR), (0.0009, NEUTRAL_COLOR), (-0.0009, NEUTRAL_COLOR),
    (0.001, POSITIVE_COLOR), (-0.001, NEGATIVE_COLOR),  # the tolerance itself already counts as a value
])
def test_signed_color(value, color):
    assert signed_color(value) == color


def test_the_colours_are_the_courses():
    assert (POSITIVE_COLOR, NEGATIVE_COLOR, NEUTRAL_COLOR, GATE_FACE) == ("#d1495b", "#2e86ab", "#9a9a9a", "#f4f1ea")


@pytest.mark.parametrize("rect, width, height, ylim", [
    ((0.0, 0.0, 1.0, 1.0), 8.0, 2.0, (-1.0, 3.0)),  # 4 x 2 inches: 8 units wide -> 4 units high, centred on 1
    ((0.1, 0.2, 0.5, 0.6), 10.0, 3.0, (-3.3, 6.3)),  # 2.5 x 2.4 inches: 9.6 units high, centred on 1.5
])
def test_diagram_axes_has_equal_scales_centred_on_the_height(rect, width, height, ylim):
    fig = new_figure(4.0, 2.0) if rect[2] == 1.0 else new_figure(5.0, 4.0)
    ax = fig.add_axes(rect)
    assert diagram_axes(ax, width, height) is ax
    assert ax.get_xlim() == (0.0, width)
    assert ax.get_ylim() == pytest.approx(ylim)
    x_per_pixel = width / ax.bbox.width
    y_per_pixel = (ax.get_ylim()[1] - ax.get_ylim()[0]) / ax.bbox.height
    assert x_per_pixel == pytest.approx(y_per_pixel)  # circles stay round
    assert not ax.axison


# ------------------------------------------------------------------ PathText
def test_path_text_draws_matplotlibs_outlines():
    """Glyph by glyph, advance by advance: the same outlines as TextPath (no kerning in these strings)."""
    fig = new_figure(2.0, 1.0)
    ax = fig.add_axes((0, 0, 1, 1))
    for text, size, weight in (("HH", 10.0, "normal"), ("Hg x", 12.0, "normal"), ("W_hh 1", 9.0, "bold")):
        drawn = outline(PathText(ax, (0, 0), text, size=size, weight=weight))
        expected = TextPath((0, 0), text, prop=FontProperties(size=size, weight=weight))
        assert drawn.vertices.shape == expected.vertices.shape, text
        assert np.allclose(drawn.vertices, expected.vertices, atol=2e-3), text
        assert (drawn.codes == expected.codes).all(), text


@pytest.mark.parametrize("char, size, advance", [("H", 10.0, 7.51953125), ("H", 8.0, 6.015625), (" ", 10.0, 3.1787109375)])
def test_glyph_advances_are_the_fonts_unhinted_widths(char, size, advance):
    """DejaVu Sans: H is 1540 and a space 651 of 2048 font units per em; one em is ``size`` points."""
    assert plotting._glyph(char, size, "normal", "normal")[1] == advance


def test_path_text_patch_style(ax):
    text = PathText(ax, (1, 2), "x", color="#123456", zorder=7)
    assert text.patch in ax.get_children()
    assert to_rgba(text.patch.get_facecolor()) == to_rgba("#123456")
    assert text.patch.get_edgecolor()[3] == 0 and text.patch.get_linewidth() == 0
    assert text.patch.get_zorder() == 7 and not text.patch.get_clip_on()
    assert PathText(ax, (0, 0), "y").patch.get_zorder() == 4.0
    assert to_rgba(PathText(ax, (0, 0), "y").patch.get_facecolor()) == to_rgba("black")


@pytest.mark.parametrize("ha, shift", [("left", 0.0), ("center", 0.5), ("right", 1.0)])
def test_path_text_horizontal_alignment_shifts_by_the_advance_width(ax, ha, shift):
    width = sum(plotting._glyph(c, 10.0, "normal", "normal")[1] for c in "HxH")
    left = outline(PathText(ax, (0, 0), "HxH", size=10))
    aligned = outline(PathText(ax, (0, 0), "HxH", size=10, ha=ha))
    assert np.allclose(aligned.vertices, left.vertices - [shift * width, 0.0])


def test_path_text_vertical_alignment():
    cap, descent = plotting._vertical_metrics(10.0, "normal", "normal")
    assert cap == pytest.approx(7.29, abs=0.01) and descent == pytest.approx(2.08, abs=0.01)  # DejaVu Sans, 10 pt
    extents = {va: reference_outline("Hg", 10.0, va=va).get_extents() for va in ("baseline", "top", "bottom",
                                                                                    "center")}
    assert (extents["baseline"].y0, extents["baseline"].y1) == pytest.approx((-descent, cap))
    assert (extents["top"].y0, extents["top"].y1) == pytest.approx((-cap - descent, 0.0))
    assert (extents["bottom"].y0, extents["bottom"].y1) == pytest.approx((0.0, cap + descent))
    assert (extents["center"].y0, extents["center"].y1) == pytest.approx((-(cap + descent) / 2, (cap + descent) / 2))


def test_path_text_lines_are_one_and_a_quarter_sizes_apart():
    cap, descent = plotting._vertical_metrics(8.0, "normal", "normal")
    one, two = reference_outline("H", 8.0), reference_outline("H\nH", 8.0)
    assert np.allclose(two.vertices, np.concatenate([one.vertices, one.vertices - [0.0, 10.0]]))
    # va="bottom": the last line's descent reaches down to the anchor (H itself stops at its baseline)
    bottom = reference_outline("H\nH", 8.0, va="bottom").get_extents()
    assert bottom.y0 == pytest.approx(descent)
    assert bottom.y1 == pytest.approx(10.0 + descent + cap)
    center = reference_outline("H\nH", 8.0, va="center").get_extents()
    assert center.y1 == pytest.approx((cap + 10.0 + descent) / 2)
    top = reference_outline("H\nH", 8.0, va="top").get_extents()
    assert top.y1 == pytest.approx(0.0) and top.y0 == pytest.approx(-cap - 10.0)


def test_path_text_centres_each_line_of_a_block():
    short = reference_outline("H", 10.0, ha="center")
    block = reference_outline("HHH\nH", 10.0, ha="center")
    second_line = block.vertices[-len(short.vertices):]
    assert np.allclose(second_line, short.vertices - [0.0, 12.5])


def test_path_text_spaces_advance_without_outlines():
    space = plotting._glyph(" ", 10.0, "normal", "normal")
    assert space[0] is None and space[1] > 0
    tight, spaced = reference_outline("HH", 10.0), reference_outline("H H", 10.0)
    half = len(tight.vertices) // 2
    assert np.allclose(spaced.vertices[:half], tight.vertices[:half])
    assert np.allclose(spaced.vertices[half:], tight.vertices[half:] + [space[1], 0.0])


def test_path_text_anchor_offset_and_rotation(ax):
    text = PathText(ax, (2, 5), "H", offset=(3.0, -6.0))
    anchor = ax.transData.transform((2, 5))
    assert np.allclose(anchor_pixels(text), anchor + np.array([3.0, -6.0]) * PIXELS_PER_POINT)
    assert np.allclose(anchor_pixels(text, (10.0, 0.0)), anchor + np.array([13.0, -6.0]) * PIXELS_PER_POINT)
    turned = PathText(ax, (2, 5), "H", rotation=90, offset=(1.0, 0.0))  # rotated about the anchor, then offset
    assert np.allclose(anchor_pixels(turned, (10.0, 0.0)), anchor + np.array([1.0, 10.0]) * PIXELS_PER_POINT)
    assert text.xy == (2.0, 5.0)


def test_path_text_set_position_moves_the_anchor_only(ax):
    text = PathText(ax, (2, 5), "H", offset=(0.0, 4.0))
    before = text.patch.get_path()
    text.set_position((7, 1))
    assert text.xy == (7.0, 1.0) and isinstance(text.xy[0], float)
    assert np.allclose(anchor_pixels(text), ax.transData.transform((7, 1)) + [0.0, 4.0 * PIXELS_PER_POINT])
    assert text.patch.get_path() is before


def test_path_text_follows_the_data_when_the_limits_change(ax):
    text = PathText(ax, (5, 5), "H")
    ax.set_xlim(0, 20)
    assert np.allclose(anchor_pixels(text), ax.transData.transform((5, 5)))


def test_path_text_in_other_coordinates(ax):
    text = PathText(ax, (0.5, 1.0), "H", transform=ax.transAxes)
    assert np.allclose(anchor_pixels(text), [200.0, 300.0])  # the top middle of a 400 x 300 pixel axes


def test_path_text_on_a_figure():
    fig = new_figure(2.0, 1.0)
    text = PathText(fig, (0.5, 0.5), "H", transform=fig.transFigure)
    assert text.patch in fig.get_children()
    assert np.allclose(anchor_pixels(text), [100.0, 50.0])


def test_path_text_set_text(ax):
    text = PathText(ax, (0, 0))
    assert text.get_text() == "" and outline(text).vertices.shape == (0, 2)
    text.set_text(0.5)
    assert text.get_text() == "0.5"
    assert np.allclose(outline(text).vertices, reference_outline("0.5", 9.0).vertices)
    drawn = text.patch.get_path()
    text.set_text("0.5")
    assert text.patch.get_path() is drawn  # the same text is not rebuilt
    text.set_text("1")
    assert np.allclose(outline(text).vertices, reference_outline("1", 9.0).vertices)


def test_path_text_colour_and_visibility(ax):
    text = PathText(ax, (0, 0), "H")
    text.set_color(POSITIVE_COLOR)
    assert to_rgba(text.patch.get_facecolor()) == to_rgba(POSITIVE_COLOR)
    text.set_visible(False)
    assert not text.patch.get_visible()
    text.set_visible(True)
    assert text.patch.get_visible()


@pytest.mark.parametrize("kwargs, message", [
    ({"ha": "middle"}, "PathText: expected ha 'left', 'center' or 'right', got 'middle'"),
    ({"va": "centre"}, "PathText: expected va 'baseline', 'bottom', 'center' or 'top', got 'centre'"),
])
def test_path_text_rejects_unknown_alignments(ax, kwargs, message):
    with pytest.raises(ValueError) as err:
        PathText(ax, (0, 0), "H", **kwargs)
    assert str(err.value) == message


# ------------------------------------------------------------------ PathTicks
def label_texts(ticks: PathTicks) -> list[str]:
    return [label.get_text() for label in ticks.labels if label.patch.get_visible()]


def test_x_ticks_replace_matplotlibs(ax):
    ticks = PathTicks(ax, "x")
    assert isinstance(ax.xaxis.get_major_locator(), NullLocator)
    assert isinstance(ax.xaxis.get_minor_locator(), NullLocator)
    assert isinstance(ax.yaxis.get_major_locator(), AutoLocator)  # the other axis keeps its ticks
    assert ticks.marks in ax.get_children() and ticks.grid is None
    assert ticks.marks.get_marker() == TICKDOWN and ticks.marks.get_linestyle() == "None"
    assert ticks.marks.get_markersize() == 3.5 and ticks.marks.get_markeredgewidth() == 0.8
    assert to_rgba(ticks.marks.get_color()) == to_rgba("black") and not ticks.marks.get_clip_on()


def test_ticks_on_a_log_axis_drop_matplotlibs_minor_ticks_too(ax):
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1e3)
    PathTicks(ax, "y").set_ticks([1e-3, 1, 1e3], ["-3", "0", "3"])
    assert isinstance(ax.yaxis.get_major_locator(), NullLocator)
    assert isinstance(ax.yaxis.get_minor_locator(), NullLocator)
    assert len(ax.yaxis.get_minorticklocs()) == 0 and len(ax.yaxis.get_majorticklocs()) == 0


def test_y_ticks_replace_matplotlibs(ax):
    ticks = PathTicks(ax, "y")
    assert isinstance(ax.yaxis.get_major_locator(), NullLocator)
    assert isinstance(ax.yaxis.get_minor_locator(), NullLocator)
    assert isinstance(ax.xaxis.get_major_locator(), AutoLocator)
    assert ticks.marks.get_marker() == TICKLEFT


def test_x_ticks_sit_on_the_bottom_edge_with_labels_below(ax):
    ax.set_ylim(-3, 50)  # the ticks do not depend on the y data
    ticks = PathTicks(ax, "x", size=7.0)
    ticks.set_ticks([0, 2.5, 10])
    xs, ys = ticks.marks.get_data()
    assert list(xs) == [0.0, 2.5, 10.0] and list(ys) == [0.0, 0.0, 0.0]
    assert np.allclose(ticks.marks.get_transform().transform([(2.5, 0.0), (2.5, 1.0)]), [(100.0, 0.0), (100.0, 300.0)])
    assert label_texts(ticks) == ["0", "2.5", "10"]
    for label, t in zip(ticks.labels, (0.0, 2.5, 10.0)):
        assert label.xy == (t, 0.0) and (label.ha, label.va, label.size) == ("center", "top", 7.0)
        assert np.allclose(anchor_pixels(label), [40.0 * t, -7.0 * PIXELS_PER_POINT])  # 7 points below the axis


def test_y_ticks_sit_on_the_left_edge_with_labels_beside(ax):
    ticks = PathTicks(ax, "y")
    ticks.set_ticks([1, 5])
    xs, ys = ticks.marks.get_data()
    assert list(xs) == [0.0, 0.0] and list(ys) == [1.0, 5.0]
    assert np.allclose(ticks.marks.get_transform().transform([(0.0, 5.0), (1.0, 5.0)]), [(0.0, 150.0), (400.0, 150.0)])
    assert label_texts(ticks) == ["1", "5"]
    for label, t in zip(ticks.labels, (1.0, 5.0)):
        assert label.xy == (0.0, t) and (label.ha, label.va, label.size) == ("right", "center", 8.0)
        assert np.allclose(anchor_pixels(label), [-7.0 * PIXELS_PER_POINT, 30.0 * t])


@pytest.mark.parametrize("axis", ["x", "y"])
def test_grid_is_one_polyline_with_a_gap_per_tick(ax, axis):
    ticks = PathTicks(ax, axis, grid=True)
    assert ticks.grid in ax.get_children()
    assert to_rgba(ticks.grid.get_color()) == to_rgba("#dddddd") and ticks.grid.get_linewidth() == 0.8
    assert ticks.grid.get_zorder() == 0.5
    ticks.set_ticks([1, 4])
    along, across = np.array([1, 1, 1, 4, 4, 4.0]), np.array([0, 1, np.nan, 0, 1, np.nan])
    expected = (along, across) if axis == "x" else (across, along)
    np.testing.assert_array_equal(ticks.grid.get_data()[0], expected[0])
    np.testing.assert_array_equal(ticks.grid.get_data()[1], expected[1])
    assert ticks.grid.get_transform() == ticks.marks.get_transform()


def test_ticks_with_their_own_labels_and_format(ax):
    ticks = PathTicks(ax, "x", fmt="{:.1f}")
    ticks.set_ticks(iter([1, 2]))
    assert label_texts(ticks) == ["1.0", "2.0"]
    ticks.set_ticks([3, 4], labels=("x_1", "x_2"))
    assert label_texts(ticks) == ["x_1", "x_2"]


def test_fewer_ticks_hide_the_labels_left_over(ax):
    ticks = PathTicks(ax, "x")
    ticks.set_ticks([1, 2, 3])
    first = list(ticks.labels)
    ticks.set_ticks([4])
    assert ticks.labels == first  # reused, not rebuilt
    assert [label.patch.get_visible() for label in ticks.labels] == [True, False, False]
    assert label_texts(ticks) == ["4"] and ticks.labels[0].xy == (4.0, 0.0)
    assert list(ticks.marks.get_data()[0]) == [4.0]
    ticks.set_ticks([5, 6, 7, 8])
    assert len(ticks.labels) == 4 and label_texts(ticks) == ["5", "6", "7", "8"]


def test_ticks_need_one_label_each(ax):
    ticks = PathTicks(ax, "x")
    with pytest.raises(ValueError) as err:
        ticks.set_ticks([1, 2], labels=["a", "b", "c"])
    assert str(err.value) == "PathTicks: expected one label per tick (2), got 3"


def test_ticks_reject_an_unknown_axis(ax):
    with pytest.raises(ValueError) as err:
        PathTicks(ax, "z")
    assert str(err.value) == "PathTicks: expected axis 'x' or 'y', got 'z'"


# ------------------------------------------------------------------ op_node, GateBox, Flow
@pytest.mark.parametrize("symbol, radius, size", [("+", 0.28, 13), ("tanh", 0.38, 8)])
def test_op_node_is_a_circle_with_its_symbol(ax, symbol, radius, size):
    assert op_node(ax, (3.0, 4.0), symbol) == radius
    (circle,) = ax.patches[:1]
    assert isinstance(circle, Circle) and circle.center == (3.0, 4.0) and circle.radius == radius
    assert to_rgba(circle.get_facecolor()) == to_rgba("white") and to_rgba(circle.get_edgecolor()) == to_rgba("black")
    assert circle.get_linewidth() == 1.2 and circle.get_zorder() == 3
    (label,) = path_texts(ax)
    assert data_anchor(ax, label) == (3.0, 4.0)
    assert same_outline(label, reference_outline(symbol, size, ha="center", va="center"))


def test_sigmoid_gate_box(ax):
    gate = GateBox(ax, (1.0, 2.0), "f_t", "σ")
    frame, fill = ax.patches[:2]
    assert isinstance(frame, Rectangle) and frame.get_xy() == (1.0, 2.0)
    assert (frame.get_width(), frame.get_height()) == (0.9, 1.5)
    assert to_rgba(frame.get_facecolor()) == to_rgba(GATE_FACE) and to_rgba(frame.get_edgecolor()) == to_rgba("black")
    assert frame.get_linewidth() == 1.2 and frame.get_zorder() == 2  # under the fill (2.5)
    assert fill is gate.fill and fill.get_xy() == (1.0, 2.0) and (fill.get_width(), fill.get_height()) == (0.9, 0.0)
    assert fill.get_alpha() == 0.55 and fill.get_zorder() == 2.5
    assert gate.base_y == 2.0 and gate.top == 3.5 and gate.center_x == pytest.approx(1.45)
    assert len(ax.lines) == 0  # no middle line: a sigmoid fills from the bottom
    label, symbol, value = path_texts(ax)
    assert data_anchor(ax, label) == (1.45, 1.85)
    assert same_outline(label, reference_outline("f_t", 9.0, ha="center", va="top"))
    assert data_anchor(ax, symbol) == (1.45, 2.75)
    assert same_outline(symbol, reference_outline("σ", 11.0, ha="center", va="center"))
    assert value is gate.text.patch and data_anchor(ax, value) == (1.45, 3.62)
    assert (gate.text.size, gate.text.weight, gate.text.ha, gate.text.va) == (10.0, "bold", "center", "bottom")
    assert gate.text.get_text() == ""


def test_tanh_gate_box_fills_from_the_middle_line(ax):
    gate = GateBox(ax, (2.0, 1.0), "g_t", "tanh", low=-1.0, width=1.2, height=2.0)
    assert gate.base_y == 2.0 and gate.top == 3.0 and gate.center_x == 2.6
    assert gate.fill.get_xy() == (2.0, 2.0) and gate.fill.get_width() == 1.2
    (middle,) = ax.lines
    assert list(middle.get_xdata()) == [2.0, 3.2] and list(middle.get_ydata()) == [2.0, 2.0]
    assert to_rgba(middle.get_color()) == to_rgba("black") and middle.get_linewidth() == 0.6
    assert middle.get_zorder() == 2.6
    _, symbol, _ = path_texts(ax)
    assert data_anchor(ax, symbol) == (2.6, 2.0)
    assert same_outline(symbol, reference_outline("tanh", 9.0, ha="center", va="center"))


@pytest.mark.parametrize("low, high, value, height, color, shown", [
    (0.0, 1.0, 0.75, 1.125, POSITIVE_COLOR, "0.75"),
    (0.0, 1.0, 0.0, 0.0, NEUTRAL_COLOR, "0.00"),
    (-1.0, 1.0, -0.5, -0.375, NEGATIVE_COLOR, "-0.50"),
    (-1.0, 1.0, 1.0, 0.75, POSITIVE_COLOR, "1.00"),
    (-2.0, 4.0, 3.0, 0.75, POSITIVE_COLOR, "3.00"),
])
def test_gate_box_shows_its_value(ax, low, high, value, height, color, shown):
    gate = GateBox(ax, (0.0, 0.0), "x", "y", low=low, high=high)
    gate.set_value(value)
    assert gate.fill.get_height() == pytest.approx(height)
    assert to_rgba(gate.fill.get_facecolor()) == to_rgba(color, 0.55)
    assert gate.text.get_text() == shown


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (1.0, 0.0)])
def test_gate_box_needs_low_below_high(ax, low, high):
    with pytest.raises(ValueError) as err:
        GateBox(ax, (0, 0), "x", "y", low=low, high=high)
    assert str(err.value) == f"GateBox: expected low < high, got low={low}, high={high}"


def test_flow_arrow(ax):
    flow = Flow(ax, (1.0, 2.0), (4.0, 2.0), limit=2.0)
    arrow = flow.arrow
    assert arrow in ax.patches and arrow._posA_posB == [(1.0, 2.0), (4.0, 2.0)]
    assert arrow.get_mutation_scale() == 12 and arrow.shrinkA == 0 and arrow.shrinkB == 0
    assert type(arrow.get_arrowstyle()).__name__ == "CurveFilledB"  # "-|>"
    assert to_rgba(arrow.get_edgecolor()) == to_rgba(NEUTRAL_COLOR) and arrow.get_linewidth() == 0.6
    assert arrow.get_zorder() == 1
    assert flow.label is None
    flow.set_value(1.0, label="ignored without a label")  # no label to write to


@pytest.mark.parametrize("value, width, color", [
    (0.0, 0.6, NEUTRAL_COLOR), (1.0, 3.3, POSITIVE_COLOR), (-0.5, 1.95, NEGATIVE_COLOR),
    (2.0, 6.0, POSITIVE_COLOR), (-9.0, 6.0, NEGATIVE_COLOR),  # clipped at the limit
])
def test_flow_thickness_and_colour_show_the_value(ax, value, width, color):
    flow = Flow(ax, (0, 0), (1, 0), limit=2.0)
    flow.set_value(value)
    assert flow.arrow.get_linewidth() == pytest.approx(width)
    assert to_rgba(flow.arrow.get_edgecolor()) == to_rgba(color) == to_rgba(flow.arrow.get_facecolor())


def test_flow_label(ax):
    flow = Flow(ax, (0, 0), (1, 0), limit=1.0, label_xy=(0.5, 0.3), label_ha="left")
    assert isinstance(flow.label, PathText) and flow.label.xy == (0.5, 0.3)
    assert (flow.label.ha, flow.label.va) == ("left", "center")
    flow.set_value(-0.25)
    assert flow.label.get_text() == "-0.25"
    flow.set_value(0.5, label="h_t")
    assert flow.label.get_text() == "h_t"
    percent = Flow(ax, (0, 0), (1, 0), limit=1.0, label_xy=(0, 0), fmt="{:.0%}")
    percent.set_value(0.5)
    assert percent.label.get_text() == "50%" and percent.label.ha == "center"


def test_flow_is_one_arrow_patch(ax):
    """A Flow adds one arrow patch (and its label, if any), no lines."""
    before = ax.get_children()
    flow = Flow(ax, (0, 0), (1, 0), limit=1.0)
    assert [a for a in ax.get_children() if a not in before] == [flow.arrow]
    labelled = Flow(ax, (0, 0), (1, 0), limit=1.0, label_xy=(0, 1))
    assert [a for a in ax.get_children() if a not in before] == [flow.arrow, labelled.arrow, labelled.label.patch]
