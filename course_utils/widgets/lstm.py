"""LSTMGateExplorer: set an LSTM's gates by hand, watch c_t and h_t, and how long a pulse survives."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.patches import Rectangle

from .. import functional as Fn
from ..plotting import (
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    Flow,
    GateBox,
    PathText,
    PathTicks,
    diagram_axes,
    new_figure,
    op_node,
    signed_color,
)
from ._base import Explorer, float_slider, int_slider, value_span

C_PREV_LIMIT = 2.0                 # the c_{t-1} slider spans [-2, 2], so |c_t| <= 2 + 1
STATE_LIMIT = C_PREV_LIMIT + 1.0
MIN_STEPS, MAX_STEPS = 5, 50
BAR_ZERO_Y, BAR_SCALE = 3.6, 0.8   # state bars in the diagram: zero line and diagram units per unit of value


def _gate_params(i: float, f: float, g: float, o: float) -> dict[str, torch.Tensor]:
    """Parameters of a one-unit LSTM whose gates are exactly ``i, f, g, o`` whatever its input.

    The weights are zero and each bias is the gate's pre-activation: σ⁻¹(p) = logit(p) for
    the sigmoid gates and tanh⁻¹ for g. The ends 0 and ±1 become ±inf, which σ and tanh
    map back to exactly 0 and ±1, so forget = 1.0 really keeps everything.
    """
    values = torch.tensor([i, f, g, o], dtype=torch.float64)  # (4,), torch order: i, f, g, o
    pre = torch.cat([values[:2].logit(), values[2:3].atanh(), values[3:].logit()])  # (4,)
    return {"weight_ih": torch.zeros(4, 1, dtype=torch.float64), "weight_hh": torch.zeros(4, 1, dtype=torch.float64),
            "bias_ih": pre, "bias_hh": torch.zeros(4, dtype=torch.float64)}


def lstm_step_from_gates(i: float, f: float, g: float, o: float, c_prev: float) -> Fn.LSTMGates:
    """One step of :func:`course_utils.functional.lstm_cell_gates` with the gates set to the given values."""
    x = torch.zeros(1, 1, dtype=torch.float64)                       # (N=1, H_in=1), ignored: weights are 0
    state = (torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), float(c_prev), dtype=torch.float64))
    return Fn.lstm_cell_gates(x, state, **_gate_params(i, f, g, o))  # each (1, 1)


def pulse_memory(i: float, f: float, o: float, c_0: float, h_0: float,
                 steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the cell for ``steps`` steps from (c_0, h_0) with the gates held and nothing new written (g = 0).

    Returns (c_k, h_k, ∂c_k/∂c_0) for k = 0 .. steps-1, each (steps,). The states come from
    :func:`lstm_cell_gates`, the derivatives from autograd through it; for constant gates
    ∂c_k/∂c_0 = f^k.
    """
    params = _gate_params(i, f, 0.0, o)  # g = 0: after the pulse the cell only keeps or forgets
    # one copy of the pulse per read-out step k; the copies never interact, so a single backward
    # pass through Σ_k (copy k's c after k steps) gives every ∂c_k/∂c_0 at once
    c_first = torch.full((steps, 1), float(c_0), dtype=torch.float64, requires_grad=True)  # (steps, 1)
    x = torch.zeros(steps, 1, dtype=torch.float64)  # (N=steps, H_in=1), ignored: weights are 0
    h, c = torch.zeros(steps, 1, dtype=torch.float64), c_first
    cells, hiddens = [c_first], [torch.full((steps, 1), float(h_0), dtype=torch.float64)]
    with torch.enable_grad():
        for _ in range(1, steps):
            gates = Fn.lstm_cell_gates(x, (h, c), **params)
            h, c = gates.h, gates.c
            cells.append(c)
            hiddens.append(h)
        cells = torch.stack(cells)[:, :, 0]  # (step k, copy)
        (grads,) = torch.autograd.grad(cells.diagonal().sum(), c_first)  # (steps, 1)
    hiddens = torch.stack(hiddens)[:, 0, 0]  # (steps,), copy 0
    return cells[:, 0].detach().numpy(), hiddens.detach().numpy(), grads[:, 0].numpy()


class LSTMGateExplorer(Explorer):
    """Sliders for an LSTM's forget, input and output gates, the candidate g and c_{t-1}.

    Usage (notebook)::

        from course_utils.widgets import LSTMGateExplorer
        LSTMGateExplorer(forget=0.9)          # the last expression of a cell displays it

    The left panel is one step, c_t = f·c_{t-1} + i·g and h_t = o·tanh(c_t), computed by
    :func:`course_utils.functional.lstm_cell_gates`; arrow thickness and box filling show the
    values. The right panels write a pulse at step 0, hold the gates and feed nothing new,
    and plot the cell state c_k and its gradient dc_k/dc_0 (= f^k) for ``steps`` steps.

    Attributes:
        forget, input, output, candidate, c_prev, steps: the sliders (``ipywidgets``).
        gates: the step's :class:`~course_utils.functional.LSTMGates` (tensors of shape (1, 1)).
        f, i, g, o, c, h: the same values as floats (c is c_t, h is h_t).
        cells, hiddens, grads: numpy arrays (steps,) of c_k, h_k and dc_k/dc_0 after the pulse.
        fig, artists, image, readout, widget: the figure, its live artists by name, the PNG
            ``Image`` widget, the ``HTML`` readout and the ``VBox`` that displays all of it.
    """

    def __init__(self, forget: float = 0.9, input: float = 1.0, output: float = 1.0,
                 candidate: float = 0.5, c_prev: float = 0.0, steps: int = 30, dpi: int = 90):
        self.forget = float_slider("forget f", forget, 0.0, 1.0)
        self.input = float_slider("input i", input, 0.0, 1.0)
        self.output = float_slider("output o", output, 0.0, 1.0)
        self.candidate = float_slider("candidate g", candidate, -1.0, 1.0)
        self.c_prev = float_slider("c(t-1)", c_prev, -C_PREV_LIMIT, C_PREV_LIMIT)
        self.steps = int_slider("steps", steps, MIN_STEPS, MAX_STEPS)
        self.fig = new_figure(11.0, 4.2, dpi)
        self._build_figure()
        self._finish({"forget": self.forget, "input": self.input, "output": self.output,
                      "candidate": self.candidate, "c_prev": self.c_prev, "steps": self.steps},
                     css_class="cu-lstm-gate-explorer")

    # ------------------------------------------------------------------ figure, built once
    def _build_figure(self) -> None:
        fig, a = self.fig, {}
        ax = diagram_axes(fig.add_axes((0.0, 0.0, 0.6, 1.0)), 14.0, 7.0)
        PathText(ax, (0.2, 6.9), "one LSTM step", size=11, weight="bold", va="top")
        # cell-state highway: c_{t-1} -> ×f -> +i·g -> c_t
        a["c_prev_flow"] = Flow(ax, (0.2, 6.0), (2.72, 6.0), STATE_LIMIT, label_xy=(0.2, 6.4), label_ha="left")
        op_node(ax, (3.0, 6.0), "×")
        a["kept_flow"] = Flow(ax, (3.28, 6.0), (5.72, 6.0), STATE_LIMIT, label_xy=(4.5, 6.4))
        op_node(ax, (6.0, 6.0), "+")
        a["c_flow"] = Flow(ax, (6.28, 6.0), (11.8, 6.0), STATE_LIMIT, label_xy=(11.8, 6.4), label_ha="right")
        # gates, each σ or tanh of W·[h_{t-1}, x_t] + b; here the sliders set their values
        a["f_box"] = GateBox(ax, (2.55, 1.0), "forget f", "σ")
        a["i_box"] = GateBox(ax, (4.15, 1.0), "input i", "σ")
        a["g_box"] = GateBox(ax, (5.55, 1.0), "candidate g", "tanh", low=-1.0)
        a["o_box"] = GateBox(ax, (7.55, 1.0), "output o", "σ")
        a["f_flow"] = Flow(ax, (3.0, 3.0), (3.0, 5.72), 1.0)
        op_node(ax, (6.0, 4.2), "×")
        a["i_flow"] = Flow(ax, (4.6, 3.0), (5.75, 4.08), 1.0)
        a["g_flow"] = Flow(ax, (6.0, 3.0), (6.0, 3.92), 1.0)
        a["ig_flow"] = Flow(ax, (6.0, 4.48), (6.0, 5.72), 1.0, label_xy=(6.15, 5.1), label_ha="left")
        # output: h_t = o · tanh(c_t)
        a["c_branch"] = Flow(ax, (9.4, 6.0), (9.4, 4.98), STATE_LIMIT)
        op_node(ax, (9.4, 4.6), "tanh")
        a["tanh_flow"] = Flow(ax, (9.4, 4.22), (9.4, 3.58), 1.0, label_xy=(9.55, 3.95), label_ha="left")
        op_node(ax, (9.4, 3.3), "×")
        a["o_flow"] = Flow(ax, (8.0, 3.0), (9.12, 3.25), 1.0)
        a["h_flow"] = Flow(ax, (9.4, 3.02), (9.4, 1.2), 1.0, label_xy=(9.55, 1.5), label_ha="left")
        PathText(ax, (0.2, 0.0), "gates are σ or tanh of W·[hₜ₋₁, xₜ] + b; here the sliders set them directly",
                 size=8, style="italic", color="#555555")
        # state bars c_{t-1}, c_t, h_t, drawn in the diagram: value v is BAR_SCALE·v above the zero line
        zero, left = BAR_ZERO_Y, 12.35
        ax.add_patch(Rectangle((left - 0.1, zero - BAR_SCALE * STATE_LIMIT), 1.75, 2 * BAR_SCALE * STATE_LIMIT,
                               facecolor="none", edgecolor="#bbbbbb", lw=0.8))
        ax.plot([left - 0.1, left + 1.65], [zero, zero], color="black", lw=0.8)
        for value in (-STATE_LIMIT, 0.0, STATE_LIMIT):
            PathText(ax, (left - 0.2, zero + BAR_SCALE * value), f"{value:g}", size=8, ha="right", va="center")
        a["state_bars"] = []
        for k, name in enumerate(("cₜ₋₁", "cₜ", "hₜ")):
            a["state_bars"].append(ax.add_patch(Rectangle((left + 0.05 + 0.55 * k, zero), 0.4, 0.0)))
            PathText(ax, (left + 0.25 + 0.55 * k, zero - BAR_SCALE * STATE_LIMIT - 0.15), name, ha="center", va="top")
        PathText(ax, (left + 0.78, zero + BAR_SCALE * STATE_LIMIT + 0.15), "state", size=10, ha="center")

        # multi-step view: a pulse written at step 0, then the gates held and g = 0
        cell_ax = fig.add_axes((0.67, 0.56, 0.31, 0.34))
        (a["cell_line"],) = cell_ax.plot([], [], "o-", ms=3, lw=1.4, color=POSITIVE_COLOR)
        (a["hidden_line"],) = cell_ax.plot([], [], "--", lw=1.2, color="#555555")
        cell_ax.axhline(0.0, color="black", lw=0.6)
        PathText(cell_ax, (0.5, 1.0), "a pulse at step 0, gates held, nothing new written", size=9, ha="center",
                 offset=(0, 5), transform=cell_ax.transAxes)
        PathText(cell_ax, (0.97, 0.93), "cₖ", color=POSITIVE_COLOR, ha="right", va="top", transform=cell_ax.transAxes)
        PathText(cell_ax, (0.97, 0.78), "hₖ (dashed)", color="#555555", ha="right", va="top",
                 transform=cell_ax.transAxes)
        grad_ax = fig.add_axes((0.67, 0.12, 0.31, 0.38), sharex=cell_ax)
        (a["grad_line"],) = grad_ax.plot([], [], "o-", ms=3, lw=1.4, color=NEGATIVE_COLOR)
        grad_ax.set_ylim(-0.05, 1.1)
        PathTicks(grad_ax, "y").set_ticks([0.0, 0.5, 1.0])
        PathText(grad_ax, (0.0, 0.5), "∂cₖ/∂c₀ = fᵏ", rotation=90, ha="center", va="bottom", offset=(-24, 0),
                 transform=grad_ax.transAxes)
        PathText(grad_ax, (0.5, 0.0), "step k after the pulse", ha="center", va="top", offset=(0, -18),
                 transform=grad_ax.transAxes)
        a["grad_text"] = PathText(grad_ax, (0.97, 0.9), "", ha="right", va="top", transform=grad_ax.transAxes)
        self.artists, self._cell_ax = a, cell_ax
        self._step_ticks, self._cell_ticks = PathTicks(grad_ax, "x"), PathTicks(cell_ax, "y", fmt="{:.2g}")

    # ------------------------------------------------------------------ update cycle
    def _compute(self) -> None:
        self.gates = lstm_step_from_gates(self.input.value, self.forget.value, self.candidate.value,
                                          self.output.value, self.c_prev.value)
        self.i, self.f, self.g, self.o, self.c, self.h = (t.item() for t in self.gates)
        self.cells, self.hiddens, self.grads = pulse_memory(self.i, self.f, self.o, self.c, self.h,
                                                            self.steps.value)

    def _update_artists(self) -> None:
        a, c_prev = self.artists, self.c_prev.value
        for name in "figo":
            a[f"{name}_box"].set_value(getattr(self, name))
            a[f"{name}_flow"].set_value(getattr(self, name))
        # the products below only label arrows; c_t and h_t themselves come from lstm_cell_gates
        a["c_prev_flow"].set_value(c_prev, f"cₜ₋₁ = {c_prev:.2f}")
        a["kept_flow"].set_value(self.f * c_prev, f"f·cₜ₋₁ = {self.f * c_prev:.2f}")
        a["ig_flow"].set_value(self.i * self.g, f"i·g = {self.i * self.g:.2f}")
        a["c_flow"].set_value(self.c, f"cₜ = {self.c:.2f}")
        a["c_branch"].set_value(self.c)
        a["tanh_flow"].set_value(np.tanh(self.c), f"tanh cₜ = {np.tanh(self.c):.2f}")
        a["h_flow"].set_value(self.h, f"hₜ = {self.h:.2f}")
        for bar, value in zip(a["state_bars"], (c_prev, self.c, self.h), strict=True):
            bar.set_height(BAR_SCALE * value)  # negative heights draw downwards from the zero line
            bar.set_facecolor(signed_color(value))
        steps = np.arange(len(self.cells))
        a["cell_line"].set_data(steps, self.cells)
        a["hidden_line"].set_data(steps, self.hiddens)
        a["grad_line"].set_data(steps, self.grads)
        a["grad_text"].set_text(f"f^{len(steps) - 1} = {self.grads[-1]:.3g}")
        if self._cell_ax.get_xlim() != (-0.5, len(steps) - 0.5):  # the steps slider moved
            self._cell_ax.set_xlim(-0.5, len(steps) - 0.5)
            self._step_ticks.set_ticks(range(0, len(steps), 10 if len(steps) > 25 else 5))
        peak = max(0.01, float(np.abs(self.cells).max()))
        self._cell_ax.set_ylim(-1.2 * peak, 1.2 * peak)
        self._cell_ticks.set_ticks([-peak, 0.0, peak])

    def _readout_html(self) -> str:
        f, i, g, o, c_prev, last = self.f, self.i, self.g, self.o, self.c_prev.value, len(self.cells) - 1
        return ("<code>"
                f"c<sub>t</sub> = f·c<sub>t-1</sub> + i·g = {f:.2f}·{c_prev:.2f} + {i:.2f}·{g:.2f} = "
                f"{value_span('c', self.c)}<br>"
                f"h<sub>t</sub> = o·tanh(c<sub>t</sub>) = {o:.2f}·tanh({self.c:.2f}) = {value_span('h', self.h)}<br>"
                f"after {last} steps: c = {value_span('c_last', self.cells[-1], '.3g')}, "
                f"∂c<sub>{last}</sub>/∂c<sub>0</sub> = f<sup>{last}</sup> = {value_span('grad_last', self.grads[-1], '.3g')}"
                "</code>")
