"""GradientFlowExplorer: how much gradient reaches each earlier step, for RNN, LSTM and GRU, live."""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import torch

from ..gradients import gradient_norms
from ..plotting import NEGATIVE_COLOR, PathText, PathTicks, new_figure
from ._base import SLIDER_LAYOUT, SLIDER_STYLE, Explorer, float_slider, int_slider, value_span

CELLS = (("RNN", "rnn"), ("LSTM", "lstm"), ("GRU", "gru"))
MIN_SEQ_LEN, MAX_SEQ_LEN = 5, 150
MAX_DECADE_LABELS = 7
MIN_DECADE = -300  # float64 reaches 1e-308; 10**-324 would round to 0, which a log axis cannot show
SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _decade_label(exponent: int) -> str:
    return "10" + str(exponent).translate(SUPERSCRIPTS)


class GradientFlowExplorer(Explorer):
    """Recurrent weight scale, sequence length and cell type; a live log-scale plot of ‖∂L/∂x_t‖ or ‖∂L/∂h_t‖.

    Usage (notebook)::

        from course_utils.widgets import GradientFlowExplorer
        GradientFlowExplorer(cell="rnn")      # the last expression of a cell displays it

    The loss reads the last step only, so every bit of gradient that reaches an earlier step
    travelled back through the recurrence. The curve is :func:`course_utils.gradients.gradient_norms`
    for the chosen settings (float64, so that tiny values stay visible instead of rounding to 0).

    Args:
        cell: "rnn", "lstm" or "gru". weight_scale: spectral radius of the recurrent weights.
        seq_len: number of steps. forget_bias: added to the LSTM's forget bias (ignored otherwise).
        hidden_size, input_size, wrt, seed: passed on to ``gradient_norms``.

    Attributes:
        cell, weight_scale, seq_len, forget_bias: the controls (``ipywidgets``).
        norms: numpy array (seq_len,), ``norms[t]`` is the norm at step t (the loss is at the last one).
        distance: numpy array (seq_len,), steps from the loss, ``seq_len - 1 - t``.
        fig, artists (``line``, ``ratio_text``), image, readout, widget: as in the other explorers.
    """

    def __init__(self, cell: str = "rnn", weight_scale: float = 1.0, seq_len: int = 50, forget_bias: float = 0.0,
                 hidden_size: int = 32, input_size: int = 4, wrt: str = "input", seed: int = 0, dpi: int = 90):
        if cell not in ("rnn", "lstm", "gru"):
            raise ValueError(f"GradientFlowExplorer: expected cell 'rnn', 'lstm' or 'gru', got {cell!r}")
        self.hidden_size, self.input_size, self.wrt, self.seed = hidden_size, input_size, wrt, seed
        self.cell = widgets.ToggleButtons(options=CELLS, value=cell, description="cell", layout=SLIDER_LAYOUT,
                                          style=SLIDER_STYLE)
        self.weight_scale = float_slider("recurrent scale", weight_scale, 0.1, 3.0, step=0.05)
        self.seq_len = int_slider("sequence length", seq_len, MIN_SEQ_LEN, MAX_SEQ_LEN)
        self.forget_bias = float_slider("LSTM forget bias", forget_bias, 0.0, 5.0, step=0.1)
        self.fig = new_figure(9.0, 3.6, dpi)
        self._build_figure()
        self._finish({"cell": self.cell, "weight_scale": self.weight_scale, "seq_len": self.seq_len,
                      "forget_bias": self.forget_bias}, css_class="cu-gradient-flow-explorer")

    def _build_figure(self) -> None:
        ax = self.fig.add_axes((0.1, 0.17, 0.86, 0.72))
        ax.set_yscale("log")
        (line,) = ax.plot([], [], "o-", ms=2.5, lw=1.5, color=NEGATIVE_COLOR)
        PathText(ax, (0.5, 0.0), "distance from the loss (steps back in time)", ha="center", va="top",
                 offset=(0, -18), transform=ax.transAxes)
        y_label = PathText(ax, (0.0, 0.5), "", rotation=90, ha="center", va="bottom", offset=(-46, 0),
                           transform=ax.transAxes)
        title = PathText(ax, (0.5, 1.0), "", size=10, ha="center", offset=(0, 6), transform=ax.transAxes)
        ratio = PathText(ax, (0.98, 0.94), "", ha="right", va="top", transform=ax.transAxes)
        self.artists = {"line": line, "title": title, "ratio_text": ratio, "y_label": y_label}
        self._ax, self._x_ticks, self._y_ticks = ax, PathTicks(ax, "x"), PathTicks(ax, "y", grid=True)

    def _compute(self) -> None:
        cell = self.cell.value
        self.forget_bias.disabled = cell != "lstm"
        self.norms = gradient_norms(cell, self.seq_len.value, self.hidden_size, self.input_size,
                                    weight_scale=self.weight_scale.value,
                                    forget_bias=self.forget_bias.value if cell == "lstm" else 0.0,
                                    wrt=self.wrt, seed=self.seed, dtype=torch.float64).numpy()  # (T,)
        self.distance = np.arange(len(self.norms))[::-1]  # (T,): step t is T-1-t steps from the loss

    def _update_artists(self) -> None:
        a, ax, norms, T = self.artists, self._ax, self.norms, len(self.norms)
        shown = np.where(norms > 0, norms, np.nan)  # a norm that underflowed to 0 leaves a gap on the log axis
        a["line"].set_data(self.distance, shown)
        ax.set_xlim(-0.5, T - 0.5)
        step = 10 if T <= 60 else 25
        self._x_ticks.set_ticks(range(0, T, step))
        positive = norms[np.isfinite(norms) & (norms > 0)]
        low = math.floor(math.log10(positive.min())) if positive.size else -1
        high = math.ceil(math.log10(positive.max())) if positive.size else 1
        low = max(low, MIN_DECADE)
        high = max(high, low + 1)
        ax.set_ylim(10.0 ** low, 10.0 ** high)
        every = max(1, math.ceil((high - low + 1) / MAX_DECADE_LABELS))
        decades = list(range(high, low - 1, -every))[::-1]
        self._y_ticks.set_ticks([10.0 ** d for d in decades], [_decade_label(d) for d in decades])
        names = {value: label for label, value in CELLS}
        extra = f", forget bias {self.forget_bias.value:.1f}" if self.cell.value == "lstm" else ""
        a["title"].set_text(f"{names[self.cell.value]}, recurrent scale {self.weight_scale.value:.2f}{extra}, "
                            f"{T} steps")
        a["ratio_text"].set_text(f"farthest / nearest = {self.ratio:.2g}")
        a["y_label"].set_text(f"‖∂L/∂{self.symbol}‖")

    @property
    def symbol(self) -> str:
        """What the gradient is taken with respect to: "xₜ" (wrt="input"), else "hₜ", "(hₜ, cₜ)" for the LSTM."""
        if self.wrt == "input":
            return "xₜ"
        return "(hₜ, cₜ)" if self.cell.value == "lstm" else "hₜ"

    @property
    def ratio(self) -> float:
        """‖gradient at the first step‖ / ‖gradient at the last step‖: < 1 vanishes, > 1 explodes."""
        return float(self.norms[0] / self.norms[-1]) if self.norms[-1] > 0 else float("nan")

    def _readout_html(self) -> str:
        T = len(self.norms)
        return (f"<code>‖∂L/∂{self.symbol}‖ at the loss (step {T - 1}): "
                f"{value_span('nearest', self.norms[-1], '.6f')}, "
                f"{T - 1} steps back (step 0): {value_span('farthest', self.norms[0], '.3e')}, "
                f"ratio {value_span('ratio', self.ratio, '.3e')}</code>")
