"""RNNUnrollExplorer: an RNN unrolled over time, the same weights at every step, live."""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib
import numpy as np
import torch
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D

from .. import functional as Fn
from ..plotting import NEGATIVE_COLOR, PathText, PathTicks, new_figure
from ._base import SLIDER_LAYOUT, SLIDER_STYLE, Explorer, float_slider, int_slider, value_span

PATTERNS = (("pulse", "pulse"), ("step", "step"), ("sine", "sine"), ("noise", "noise"))
MIN_STEPS, MAX_STEPS = 3, 60
HEAT_MAP = matplotlib.colormaps["RdBu_r"]
CHAIN_Y, BOX_HALF = 0.45, 0.32  # the unrolled chain: boxes centred at y = CHAIN_Y in its axes (0..1)


def input_pattern(name: str, steps: int, seed: int = 0) -> np.ndarray:
    """The input sequence x_1 .. x_T (one feature), values in [-1, 1]: (steps,).

    - ``pulse``: 1 at the first step, then 0 (what is left of it later is memory);
    - ``step``: 0 for the first quarter, then 1;
    - ``sine``: one period every 12 steps;
    - ``noise``: uniform in [-1, 1], from its own generator (``seed``).
    """
    t = np.arange(steps)
    if name == "pulse":
        return (t == 0).astype(float)
    if name == "step":
        return (t >= max(1, steps // 4)).astype(float)
    if name == "sine":
        return np.sin(2 * math.pi * t / 12)
    if name == "noise":
        return np.random.default_rng(seed).uniform(-1, 1, steps)
    raise ValueError(f"input_pattern: expected one of {[p for _, p in PATTERNS]}, got {name!r}")


def unroll_weights(hidden_size: int, recurrent_scale: float, input_scale: float,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight_ih (H, 1), weight_hh (H, H)), float64: fixed random directions times the two scales.

    weight_hh = recurrent_scale · Q, with Q a Gaussian matrix divided by its spectral radius, so
    that the spectral radius of weight_hh *is* ``recurrent_scale``; weight_ih = input_scale · u, u ~ N(0, 1).
    The directions depend on ``seed`` only, never on the scales.
    """
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(hidden_size, hidden_size, generator=gen, dtype=torch.float64)  # (H, H)
    q = q / torch.linalg.eigvals(q).abs().max()  # spectral radius exactly 1
    u = torch.randn(hidden_size, 1, generator=gen, dtype=torch.float64)  # (H, H_in=1)
    return input_scale * u, recurrent_scale * q


def unrolled_states(pattern: str = "pulse", steps: int = 30, recurrent_scale: float = 0.9, input_scale: float = 1.0,
                    hidden_size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What :class:`RNNUnrollExplorer` computes, without a figure: (x (T,), hs (T, H)).

    ``hs`` holds h_1 .. h_T of :func:`course_utils.functional.rnn_forward` from h_0 = 0 with the
    weights of :func:`unroll_weights` and no biases.
    """
    x = input_pattern(pattern, steps, seed)  # (T,)
    weight_ih, weight_hh = unroll_weights(hidden_size, recurrent_scale, input_scale, seed)
    xs = torch.as_tensor(x, dtype=torch.float64).reshape(steps, 1, 1)  # (T, N=1, H_in=1)
    h0 = torch.zeros(1, hidden_size, dtype=torch.float64)  # (N, H)
    hs, _ = Fn.rnn_forward(xs, h0, weight_ih, weight_hh)  # (T, 1, H)
    return x, hs[:, 0].numpy()  # (T,), (T, H)


def memory_left(norms: np.ndarray) -> float:
    """‖h_T‖ / max_t ‖h_t‖: how much of the largest state is left at the last step (0 when all are 0)."""
    peak = float(np.max(norms))
    return float(norms[-1]) / peak if peak > 0 else 0.0


def _box_vertices(steps: int) -> np.ndarray:
    """One square per step t = 1..T, centred at (t, CHAIN_Y): (T, 4, 2) corners."""
    t = np.arange(1, steps + 1)[:, None]  # (T, 1)
    xs = t + np.array([-1, 1, 1, -1]) * 0.3  # (T, 4)
    ys = CHAIN_Y + np.array([-1, -1, 1, 1]) * BOX_HALF  # (4,)
    return np.stack([xs, np.broadcast_to(ys, xs.shape)], axis=-1)  # (T, 4, 2)


class RNNUnrollExplorer(Explorer):
    """A tanh RNN unrolled over time: the input sequence, the hidden state at every step, one set of weights.

    Usage (notebook)::

        from course_utils.widgets import RNNUnrollExplorer
        RNNUnrollExplorer(recurrent_scale=0.9)   # the last expression of a cell displays it

    Every column is one step of :func:`course_utils.functional.rnn_forward`,
    h_t = tanh(W_ih x_t + W_hh h_{t-1}), starting from h_0 = 0, with the **same** W_ih and W_hh at
    every step (no biases, so that a zero input keeps a zero state). The weights are fixed random
    directions times the two scale sliders: W_hh = recurrent_scale · Q with Q a random Gaussian
    matrix divided by its spectral radius (so the spectral radius of W_hh *is* ``recurrent_scale``),
    and W_ih = input_scale · u with u ~ N(0, 1).

    Top: the unrolled chain, one box per step, its colour the mean of h_t (the heatmap's colours). Then the input x_t,
    the hidden state h_t as a heatmap (unit × time) and its norm ‖h_t‖.

    Attributes:
        recurrent_scale, input_scale, pattern, steps: the controls (``ipywidgets``).
        x: numpy (T,), the input. hs: numpy (T, H), h_1 .. h_T. norms: numpy (T,), ‖h_t‖.
        weight_ih (H, 1), weight_hh (H, H): the tensors used at every step (float64).
        spectral_radius: the largest |eigenvalue| of weight_hh.
        fig, artists, image, readout, widget: as in the other explorers.
    """

    def __init__(self, recurrent_scale: float = 0.9, input_scale: float = 1.0, pattern: str = "pulse",
                 steps: int = 30, hidden_size: int = 8, seed: int = 0, dpi: int = 90):
        if pattern not in dict(PATTERNS).values():
            raise ValueError(f"RNNUnrollExplorer: expected pattern in {[p for _, p in PATTERNS]}, got {pattern!r}")
        if not MIN_STEPS <= steps <= MAX_STEPS:
            raise ValueError(f"RNNUnrollExplorer: expected steps in [{MIN_STEPS}, {MAX_STEPS}], got {steps}")
        self.hidden_size, self.seed = hidden_size, seed
        self.recurrent_scale = float_slider("recurrent scale", recurrent_scale, 0.0, 2.0, step=0.05)
        self.input_scale = float_slider("input scale", input_scale, 0.0, 3.0, step=0.05)
        self.pattern = widgets.ToggleButtons(options=PATTERNS, value=pattern, description="input",
                                             layout=SLIDER_LAYOUT, style={**SLIDER_STYLE, "button_width": "52px"})
        self.steps = int_slider("steps T", steps, MIN_STEPS, MAX_STEPS)
        self.fig = new_figure(10.5, 5.6, dpi)
        self._build_figure()
        self._finish({"recurrent_scale": self.recurrent_scale, "input_scale": self.input_scale,
                      "pattern": self.pattern, "steps": self.steps}, css_class="cu-rnn-unroll-explorer")

    # ------------------------------------------------------------------ figure, built once
    def _build_figure(self) -> None:
        fig, H, a = self.fig, self.hidden_size, {}
        left, width = 0.1, 0.86
        chain = fig.add_axes((left, 0.80, width, 0.12))
        chain.set_ylim(0, 1)
        chain.set_axis_off()
        a["boxes"] = chain.add_collection(PolyCollection(_box_vertices(1), edgecolors="#555555", linewidths=0.8))
        a["links"] = Line2D([], [], color="#555555", lw=1.0)  # h_{t-1} -> box t, one NaN-separated polyline
        chain.add_line(a["links"])
        a["heads"] = Line2D([], [], ls="none", marker=">", ms=4, color="#555555")
        chain.add_line(a["heads"])
        PathText(chain, (0.0, CHAIN_Y), "h₀ = 0", ha="right", va="center", offset=(-4, 0),
                 transform=chain.get_yaxis_transform())
        a["chain_title"] = PathText(fig, (left, 0.995), "", size=10, va="top", offset=(0, -3),
                                    transform=fig.transFigure)

        x_ax = fig.add_axes((left, 0.62, width, 0.15))
        a["input_stems"] = Line2D([], [], color="#333333", lw=1.2)
        a["input_dots"] = Line2D([], [], ls="none", marker="o", ms=3.5, color="#333333")
        x_ax.add_line(a["input_stems"])
        x_ax.add_line(a["input_dots"])
        x_ax.axhline(0.0, color="#999999", lw=0.6)
        x_ax.set_ylim(-1.25, 1.25)
        PathTicks(x_ax, "y", size=7).set_ticks([-1, 0, 1])
        PathText(x_ax, (0.0, 0.5), "input xₜ", rotation=90, ha="center", va="bottom", offset=(-30, 0),
                 transform=x_ax.transAxes)

        heat = fig.add_axes((left, 0.28, width, 0.30))
        a["heatmap"] = heat.imshow(np.zeros((H, 1)), aspect="auto", origin="lower", cmap=HEAT_MAP, vmin=-1.0,
                                   vmax=1.0, interpolation="none", extent=(0.5, 1.5, -0.5, H - 0.5))
        PathTicks(heat, "y", size=7).set_ticks([0, H - 1])
        PathText(heat, (0.0, 0.5), "hidden unit", rotation=90, ha="center", va="bottom", offset=(-30, 0),
                 transform=heat.transAxes)
        PathText(heat, (1.0, 1.0), "hₜ: red > 0, blue < 0 (tanh keeps it in (−1, 1))", size=7, ha="right",
                 va="bottom", offset=(0, 2), transform=heat.transAxes)

        norm_ax = fig.add_axes((left, 0.09, width, 0.15))
        (a["norm_line"],) = norm_ax.plot([], [], "o-", ms=2.5, lw=1.4, color=NEGATIVE_COLOR)
        PathText(norm_ax, (0.0, 0.5), "‖hₜ‖", rotation=90, ha="center", va="bottom", offset=(-30, 0),
                 transform=norm_ax.transAxes)
        PathText(norm_ax, (0.5, 0.0), "time step t", ha="center", va="top", offset=(0, -16),
                 transform=norm_ax.transAxes)
        self._axes = {"chain": chain, "x": x_ax, "heat": heat, "norm": norm_ax}
        self._x_ticks = PathTicks(norm_ax, "x", size=7)
        self._x_ticks.set_ticks(range(1, 13))  # the most labels any length needs (T <= 12: every step)
        self._norm_ticks = PathTicks(norm_ax, "y", size=7)
        for name in ("x", "heat"):
            self._axes[name].set_xticks([])
        self.artists = a

    # ------------------------------------------------------------------ state
    def _compute(self) -> None:
        rec, inp = self.recurrent_scale.value, self.input_scale.value
        # the same weight_ih (H, 1) and weight_hh (H, H) at every step
        self.weight_ih, self.weight_hh = unroll_weights(self.hidden_size, rec, inp, self.seed)
        self.x, self.hs = unrolled_states(self.pattern.value, self.steps.value, rec, inp, self.hidden_size,
                                          self.seed)  # (T,), (T, H)
        self.norms = np.linalg.norm(self.hs, axis=1)  # (T,)
        self.spectral_radius = float(torch.linalg.eigvals(self.weight_hh).abs().max())  # = recurrent_scale

    def _update_artists(self) -> None:
        a, T, H = self.artists, self.steps.value, self.hidden_size
        t = np.arange(1, T + 1)
        for name in ("chain", "x", "norm"):
            self._axes[name].set_xlim(0.5, T + 0.5)
        # the chain: box t coloured by the mean of h_t; a link from box t-1 (or h_0) into box t
        a["boxes"].set_verts(_box_vertices(T))
        means = self.hs.mean(axis=1)  # (T,)
        a["boxes"].set_facecolors(HEAT_MAP((means + 1) / 2))  # the heatmap's colours: -1 blue, 0 white, 1 red
        starts = np.where(t > 1, t - 1 + 0.3, 0.5)  # (T,): the right edge of box t-1, or the left edge (h_0)
        ends = t - 0.3  # (T,): the left edge of box t
        a["links"].set_data(np.stack([starts, ends, np.full(T, np.nan)], 1).ravel(),
                            np.tile([CHAIN_Y, CHAIN_Y, np.nan], T))
        a["heads"].set_data(ends - 0.02, np.full(T, CHAIN_Y))
        a["chain_title"].set_text(f"unrolled: {T} steps, one cell, the same W_ih and W_hh at every step "
                                  f"({H * H + H} numbers, whatever T is)")
        # the input
        a["input_stems"].set_data(np.repeat(t, 3), np.stack([np.zeros(T), self.x, np.full(T, np.nan)], 1).ravel())
        a["input_dots"].set_data(t, self.x)
        # the hidden state
        a["heatmap"].set_data(self.hs.T)  # (H, T)
        a["heatmap"].set_extent((0.5, T + 0.5, -0.5, H - 0.5))
        a["norm_line"].set_data(t, self.norms)
        top = max(float(self.norms.max()) * 1.15, 0.1)
        self._axes["norm"].set_ylim(0.0, top)
        self._norm_ticks.set_ticks([0.0, round(top / 1.15, 2)])
        every = 1 if T <= 12 else 5 if T <= 40 else 10
        self._x_ticks.set_ticks([1] + list(range(every, T + 1, every))[1 if every == 1 else 0:])

    @property
    def memory(self) -> float:
        """‖h_T‖ / max_t ‖h_t‖: how much of the largest state is left at the last step (0 when all are 0)."""
        return memory_left(self.norms)

    def _readout_html(self) -> str:
        T = self.steps.value
        return (f"<code>spectral radius of W_hh {value_span('spectral_radius', self.spectral_radius, '.3f')}; "
                f"‖h_1‖ = {value_span('h_first', self.norms[0], '.4f')}, "
                f"‖h_{T}‖ = {value_span('h_last', self.norms[-1], '.4f')}, "
                f"‖h_T‖ / max ‖h_t‖ = {value_span('memory', self.memory, '.4f')}</code>")
