"""What every explorer shares: sliders wired to one update, an Agg figure shown as a PNG, a readout.

How the figure reaches the page: the figure is drawn by its own Agg canvas and the
PNG bytes go into an ``ipywidgets.Image``. An ``Output`` widget would have to clear
and re-display the figure on every change (the inline backend renders the same PNG
anyway, plus a flicker), it captures nothing when no kernel is attached, and its
contents cannot be asserted on in a unit test. An ``Image`` is one binary message per
update, its ``value`` is plain bytes that tests and the browser test can compare, and
it keeps working in JupyterLab, Notebook 7, Voila and exported widget state.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Iterator
from contextlib import contextmanager

import ipywidgets as widgets
from matplotlib.figure import Figure

from ..plotting import png_bytes

SLIDER_LAYOUT = {"width": "330px"}
SLIDER_STYLE = {"description_width": "110px"}


def float_slider(description: str, value: float, low: float, high: float, step: float = 0.01,
                 readout_format: str = ".2f") -> widgets.FloatSlider:
    """A FloatSlider with the explorers' common look."""
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                               readout_format=readout_format, continuous_update=True,
                               layout=SLIDER_LAYOUT, style=SLIDER_STYLE)


def int_slider(description: str, value: int, low: int, high: int) -> widgets.IntSlider:
    """An IntSlider with the explorers' common look."""
    return widgets.IntSlider(value=value, min=low, max=high, step=1, description=description,
                             continuous_update=True, layout=SLIDER_LAYOUT, style=SLIDER_STYLE)


def value_span(name: str, value: float, fmt: str = ".4f") -> str:
    """``value`` in the readout, tagged with ``data-name`` so that a browser test can find it."""
    return f'<span class="cu-value" data-name="{html.escape(name)}">{value:{fmt}}</span>'


class Explorer:
    """Base class: owns ``controls`` (name -> widget), ``fig``, ``image``, ``readout`` and ``widget``.

    A subclass builds its controls and figure, then calls :meth:`_finish`; it implements
    :meth:`_compute` (state from the controls), :meth:`_update_artists` (state -> artists,
    in place) and :meth:`_readout_html`. Any control change runs :meth:`refresh` once: it never
    rebuilds the figure, it changes the artists made at construction and draws again.
    """

    fig: Figure
    controls: dict[str, widgets.Widget]

    def _finish(self, controls: dict[str, widgets.Widget], css_class: str, columns: int = 2) -> None:
        self.controls = controls
        width = self.fig.canvas.get_width_height()[0]
        self.image = widgets.Image(format="png", layout={"width": f"{width}px", "max_width": "100%"})
        self.image.add_class("cu-figure")
        self.readout = widgets.HTML()
        self.readout.add_class("cu-readout")
        boxes = list(controls.values())
        rows = [widgets.HBox(boxes[k:k + columns]) for k in range(0, len(boxes), columns)]
        self.widget = widgets.VBox([*rows, self.readout, self.image])
        self.widget.add_class(css_class)
        self.timings: dict[str, float] = {}
        self._held = 0
        self._pending = False
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    # ------------------------------------------------------------------ updating
    def _compute(self) -> None:
        raise NotImplementedError

    def _update_artists(self) -> None:
        raise NotImplementedError

    def _readout_html(self) -> str:
        raise NotImplementedError

    def _on_change(self, change) -> None:
        if self._held:
            self._pending = True
            return
        self.refresh()

    def refresh(self, draw: bool = True) -> None:
        """Recompute the state, update the artists in place, redraw, and refresh image and readout.

        ``draw=False`` stops after the artists (no draw, no PNG): the whole update path except
        rendering. ``self.timings`` keeps the seconds each part took: ``compute``,
        ``artists_draw`` (artist updates and a full ``fig.canvas.draw()``) and ``png``
        (encoding the drawn canvas for the ``Image`` widget).
        """
        start = time.perf_counter()
        self._compute()
        computed = time.perf_counter()
        self._update_artists()
        self.readout.value = self._readout_html()
        if not draw:
            return
        self.fig.canvas.draw()
        drawn = time.perf_counter()
        self.image.value = png_bytes(self.fig)
        encoded = time.perf_counter()
        self.timings = {"compute": computed - start, "artists_draw": drawn - computed, "png": encoded - drawn}

    @contextmanager
    def hold_updates(self) -> Iterator[None]:
        """Change several controls and update once, at the end of the ``with`` block."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._pending:
                self._pending = False
                self.refresh()

    def set(self, draw: bool = True, **values) -> None:
        """Set several controls by name, e.g. ``explorer.set(forget=1.0, input=0.0)``, then refresh once."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise KeyError(f"{type(self).__name__}.set: expected control names from {sorted(self.controls)}, "
                           f"got {unknown}")
        self._held += 1
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._held -= 1
            self._pending = False
        self.refresh(draw=draw)

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, include=None, exclude=None):
        """The widget view, a static PNG of the figure as drawn now, and ``repr`` as text.

        A frontend with the widget manager and a live kernel renders the widget; a static view of
        a stored notebook (opened unrun, without a kernel, on nbviewer or GitHub) cannot, and
        shows the richest type it knows: the PNG, the figure as it was when the cell ran.
        """
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={control.value!r}" for name, control in self.controls.items())
        return f"{type(self).__name__}({values})"

    def close(self) -> None:
        """Close every widget (the figure needs no closing: it is not registered with pyplot)."""
        for child in (*self.controls.values(), self.image, self.readout, *self.widget.children, self.widget):
            child.close()
