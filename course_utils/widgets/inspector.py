"""GateInspector: a trained LSTM's or GRU's gate activations over a sequence, as heatmaps and bars."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from matplotlib.collections import PolyCollection
from torch import nn

from .. import functional as Fn
from ..plotting import PathText, PathTicks, new_figure
from ._base import Explorer, int_slider, value_span

# per cell type: (field of LSTMGates/GRUGates, label, lowest value, colormap), torch's gate order
GATES = {
    "lstm": (("i", "input i", 0.0, "viridis"), ("f", "forget f", 0.0, "viridis"),
             ("g", "candidate g", -1.0, "RdBu_r"), ("o", "output o", 0.0, "viridis")),
    "gru": (("r", "reset r", 0.0, "viridis"), ("z", "update z", 0.0, "viridis"),
            ("n", "candidate n", -1.0, "RdBu_r")),
}
HIGHLIGHT = "#ff3b30"
BAR_HEIGHT = 0.8  # of one hidden unit's row


def tick_step(span: int, max_ticks: int = 9) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that puts at most ``max_ticks`` ticks on ``span`` steps."""
    for magnitude in itertools.count():
        for base in (1, 2, 5):
            if span / (base * 10 ** magnitude) <= max_ticks:
                return base * 10 ** magnitude
    raise AssertionError("unreachable")  # itertools.count() never ends


def bar_vertices(values: np.ndarray) -> np.ndarray:
    """Horizontal bars from 0 to each value, one per hidden unit: (U,) -> (U, 4, 2) rectangle corners."""
    rows = np.arange(len(values))[:, None] + np.array([-0.5, -0.5, 0.5, 0.5]) * BAR_HEIGHT  # (U, 4)
    zeros = np.zeros_like(values)
    widths = np.stack([zeros, values, values, zeros], axis=1)  # (U, 4): corners 2 and 3 sit at the value
    return np.stack([widths, rows], axis=-1)  # (U, 4, 2)


def layer0_parameters(module: nn.Module) -> tuple[str, dict[str, torch.Tensor]]:
    """("lstm" | "gru", layer 0's weights and biases) of a module with torch's parameter names."""
    weight_ih = getattr(module, "weight_ih_l0", None)
    weight_hh = getattr(module, "weight_hh_l0", None)
    if not (isinstance(weight_ih, torch.Tensor) and isinstance(weight_hh, torch.Tensor)):
        raise TypeError("GateInspector: expected an LSTM or GRU module with torch's parameter names "
                        f"(weight_ih_l0, weight_hh_l0, ...), got {type(module).__name__} without them")
    if getattr(module, "weight_hr_l0", None) is not None:
        raise ValueError("GateInspector: expected an LSTM without projections (proj_size=0), got weight_hr_l0")
    hidden_size = weight_hh.shape[1]
    gates = weight_ih.shape[0] // hidden_size
    kinds = {4: "lstm", 3: "gru"}
    if gates not in kinds or weight_ih.shape[0] != gates * hidden_size:
        raise ValueError(f"GateInspector: expected weight_ih_l0 of shape (4H, H_in) or (3H, H_in) with H = "
                         f"{hidden_size}, got {tuple(weight_ih.shape)}")
    params = {"weight_ih": weight_ih, "weight_hh": weight_hh,
              "bias_ih": getattr(module, "bias_ih_l0", None), "bias_hh": getattr(module, "bias_hh_l0", None)}
    return kinds[gates], {k: (v.detach() if v is not None else None) for k, v in params.items()}


@torch.no_grad()
def gate_activations(kind: str, params: dict[str, torch.Tensor | None], x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every gate of layer 0 at every step: name -> (T, N, H) numpy array; x is (T, N, H_in), zero initial state."""
    N, H = x.shape[1], params["weight_hh"].shape[1]
    h = x.new_zeros(N, H)  # (N, H)
    state = (h, h.clone()) if kind == "lstm" else h
    names = [name for name, *_ in GATES[kind]]
    steps = {name: [] for name in names}
    for x_t in x.unbind(0):  # x_t: (N, H_in)
        if kind == "lstm":
            gates = Fn.lstm_cell_gates(x_t, state, **params)
            state = (gates.h, gates.c)
        else:
            gates = Fn.gru_cell_gates(x_t, state, **params)
            state = gates.h
        for name in names:
            steps[name].append(getattr(gates, name))  # (N, H)
    return {name: torch.stack(values).float().cpu().numpy() for name, values in steps.items()}  # (T, N, H)


class GateInspector(Explorer):
    """Gate activations of a trained LSTM or GRU (layer 0) over an input sequence.

    Usage (notebook)::

        from course_utils.widgets import GateInspector
        GateInspector(model.lstm, x_test[:8])   # module with weight_ih_l0..., input (T, H_in) or a batch

    Each gate is a heatmap of hidden unit against time; the ``step`` slider moves a marker
    across them and shows that step's values as bars, one per unit; ``index`` picks the
    sequence of a batch. Gates come from :func:`course_utils.functional.lstm_cell_gates` or
    :func:`~course_utils.functional.gru_cell_gates` with layer 0's parameters, from a zero state.

    Args:
        module: ``torch.nn.LSTM``/``GRU``, ``course_utils.LSTM``/``GRU`` or anything with the
            parameters ``weight_ih_l0``, ``weight_hh_l0`` (and optionally ``bias_ih_l0``, ``bias_hh_l0``).
        input: (T, H_in), or a batch (T, N, H_in), or (N, T, H_in) when ``batch_first``.
        batch_first: default: the module's own ``batch_first`` (False if it has none).
        max_units: show the first ``max_units`` hidden units (all are computed).

    Attributes:
        step, index: the sliders. kind: "lstm" or "gru". gate_names: torch's order.
        activations: name -> numpy (T, N, H). current: name -> numpy (units,) at (index, step).
        fig, artists (``images``, ``markers``, ``bars`` by gate name; the bars of a gate are one
        ``PolyCollection`` whose path k spans 0 .. value of unit k), image, readout, widget.
    """

    def __init__(self, module: nn.Module, input, batch_first: bool | None = None,
                 max_units: int = 32, step: int = 0, index: int = 0, dpi: int = 90):
        self.kind, params = layer0_parameters(module)
        weight = params["weight_ih"]
        x = torch.as_tensor(input).to(device=weight.device, dtype=weight.dtype)
        batch_first = getattr(module, "batch_first", False) if batch_first is None else batch_first
        H_in = weight.shape[1]
        expected = f"(T, {H_in}), " + ("(N, T, " if batch_first else "(T, N, ") + f"{H_in})"
        if x.dim() not in (2, 3) or x.shape[-1] != H_in:
            raise ValueError(f"GateInspector: expected input of shape {expected}, got {tuple(x.shape)}")
        if x.dim() == 2:
            x = x.unsqueeze(1)  # (T, 1, H_in)
        elif batch_first:
            x = x.transpose(0, 1)  # (N, T, H_in) -> (T, N, H_in)
        T, N, _ = x.shape
        self.gate_names = [name for name, *_ in GATES[self.kind]]
        self.activations = gate_activations(self.kind, params, x)
        self.units = min(max_units, params["weight_hh"].shape[1])
        self.step = int_slider("time step", min(step, T - 1), 0, T - 1)
        self.index = int_slider("sequence", min(index, N - 1), 0, max(N - 1, 0))
        self.index.disabled = N == 1
        self.fig = new_figure(11.0, 0.8 + 1.3 * len(self.gate_names), dpi)
        self._build_figure(T)
        self._finish({"step": self.step, "index": self.index}, css_class="cu-gate-inspector")

    def _build_figure(self, T: int) -> None:
        fig, U, rows = self.fig, self.units, len(GATES[self.kind])
        bottom, top = 0.5 / fig.get_figheight(), 1 - 0.3 / fig.get_figheight()
        row_h = (top - bottom) / rows
        a = {"images": {}, "markers": {}, "bars": {}}
        for k, (name, label, low, cmap) in enumerate(GATES[self.kind]):
            y0 = top - (k + 1) * row_h + 0.12 * row_h
            heat = fig.add_axes((0.13, y0, 0.58, 0.76 * row_h))
            a["images"][name] = heat.imshow(np.zeros((U, T)), aspect="auto", origin="lower", cmap=cmap, vmin=low,
                                            vmax=1.0, interpolation="none", extent=(-0.5, T - 0.5, -0.5, U - 0.5))
            a["markers"][name] = heat.axvline(0, color=HIGHLIGHT, lw=1.5)
            PathText(heat, (0.0, 0.5), label, ha="right", va="center", offset=(-24, 0), transform=heat.transAxes)
            PathTicks(heat, "y").set_ticks([0, U - 1])
            if k == rows - 1:  # the time axis, shown once under the last row
                PathTicks(heat, "x").set_ticks(range(0, T, tick_step(T)))
                PathText(heat, (0.5, 0.0), "time step", ha="center", va="top", offset=(0, -18),
                         transform=heat.transAxes)
            else:
                heat.set_xticks([])
            bars_ax = fig.add_axes((0.75, y0, 0.22, 0.76 * row_h), sharey=heat)
            # one PolyCollection instead of U Rectangles: one artist to draw, not U
            a["bars"][name] = bars_ax.add_collection(PolyCollection(
                bar_vertices(np.zeros(U)), facecolors="#2e86ab" if low == 0 else "#d1495b", edgecolors="none"))
            bars_ax.set_xlim(low, 1.0)
            bars_ax.axvline(0.0, color="black", lw=0.6)
            PathTicks(bars_ax, "x", size=7).set_ticks([low, 1.0] if low == 0 else [low, 0.0, 1.0])
        a["step_text"] = PathText(fig, (0.86, 1.0), "", ha="center", va="top", offset=(0, -4),
                                  transform=fig.transFigure)
        PathText(fig, (0.13, 1.0), f"{self.kind.upper()} layer 0: gate activations, hidden unit × time",
                 size=10, va="top", offset=(0, -4), transform=fig.transFigure)
        self.artists = a

    def _compute(self) -> None:
        t, n, U = self.step.value, self.index.value, self.units
        self.current = {name: self.activations[name][t, n, :U] for name in self.gate_names}  # each (U,)

    def _update_artists(self) -> None:
        a, t, n, U = self.artists, self.step.value, self.index.value, self.units
        if n != getattr(self, "_shown_index", None):  # a new sequence: new heatmaps
            for name in self.gate_names:
                a["images"][name].set_data(self.activations[name][:, n, :U].T)  # (T, U) -> (U, T)
            self._shown_index = n
        for name in self.gate_names:
            a["markers"][name].set_xdata([t, t])
            a["bars"][name].set_verts(bar_vertices(self.current[name]))
        a["step_text"].set_text(f"step t = {t}")

    def _readout_html(self) -> str:
        means = ", ".join(f"{name} = {value_span('mean_' + name, float(self.current[name].mean()), '.3f')}"
                          for name in self.gate_names)
        return (f"<code>sequence {self.index.value}, step t = {self.step.value}: mean over the shown "
                f"{self.units} units: {means}</code>")
