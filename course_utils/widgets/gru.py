"""GRUGateExplorer: set a GRU's update and reset gates by hand, in torch's and in Chung et al.'s convention."""

from __future__ import annotations

import ipywidgets as widgets
import torch
from matplotlib.patches import Rectangle

from .. import functional as Fn
from ..plotting import GATE_FACE, Flow, GateBox, PathText, PathTicks, diagram_axes, new_figure, op_node
from ._base import SLIDER_LAYOUT, SLIDER_STYLE, Explorer, float_slider, value_span

CONVENTIONS = (("torch", "torch"), ("Chung et al.", "chung"))
INPUT_LIMIT = 3.0        # the W_in·x + b_in slider spans [-3, 3]
HIDDEN_BIAS_LIMIT = 1.5  # the b_hn slider spans [-1.5, 1.5]
TORCH_COLOR, CHUNG_COLOR = "#3d5a80", "#ee964b"
INACTIVE_ALPHA = 0.35
# what the two boxes of the candidate path do, and what the mixing weights are, in each convention
BOX_TEXT = {"torch": ("W_hn·h + b_hn", "r · ( … )"), "chung": ("r · h", "W_hn·( … ) + b_hn")}
NOTE = {"torch": "torch: reset after the hidden matmul (it scales b_hn too); z is the share of hₜ₋₁ kept",
        "chung": "Chung et al.: reset before the hidden matmul (b_hn is not reset); z is the share of n taken"}


def gru_step_from_gates(r: float, z: float, h_prev: float, input_part: float, weight_hh: float,
                        hidden_bias: float, convention: str = "torch") -> Fn.GRUGates:
    """One step of :func:`course_utils.functional.gru_cell_gates` for a one-unit GRU with gates r and z.

    Torch: n = tanh(W_in·x + b_in + r·(W_hn·h + b_hn)),  h_t = (1 − z)·n + z·h_{t-1}.
    Chung et al.: n = tanh(W_in·x + b_in + W_hn·(r·h) + b_hn),  h_t = z·n + (1 − z)·h_{t-1}.
    With one unit r·(W_hn·h) = W_hn·(r·h), so Chung's step is torch's step with b_hn moved to the input
    side (out of the reset's reach) and the update gate flipped, z -> 1 − z. (With more units the
    order of reset and matmul matters as well: r·(W h) mixes units before resetting, W·(r·h) after.)

    ``input_part`` is W_in·x + b_in; the weights are zero except W_hn, and the gate values enter as
    biases σ⁻¹(p) = logit(p), which σ maps back exactly, ends included.
    """
    if convention not in ("torch", "chung"):
        raise ValueError(f"gru_step_from_gates: expected convention 'torch' or 'chung', got {convention!r}")
    torch_z = z if convention == "torch" else 1.0 - z
    input_side = input_part if convention == "torch" else input_part + hidden_bias
    hidden_side = hidden_bias if convention == "torch" else 0.0
    gates = torch.tensor([r, torch_z], dtype=torch.float64).logit()  # (2,), torch order: r, z
    bias_ih = torch.cat([gates, torch.tensor([input_side], dtype=torch.float64)])  # (3,): r, z, n
    bias_hh = torch.tensor([0.0, 0.0, hidden_side], dtype=torch.float64)           # (3,)
    weight_hh = torch.tensor([[0.0], [0.0], [weight_hh]], dtype=torch.float64)      # (3H, H) = (3, 1)
    x = torch.zeros(1, 1, dtype=torch.float64)                                      # (N=1, H_in=1), weights 0
    h = torch.full((1, 1), float(h_prev), dtype=torch.float64)                       # (N=1, H=1)
    return Fn.gru_cell_gates(x, h, torch.zeros(3, 1, dtype=torch.float64), weight_hh, bias_ih, bias_hh)


class GRUGateExplorer(Explorer):
    """Sliders for a GRU's update gate z, reset gate r, h_{t-1} and the input, with a convention toggle.

    Usage (notebook)::

        from course_utils.widgets import GRUGateExplorer
        GRUGateExplorer(update=0.8)           # the last expression of a cell displays it

    Torch's convention is h_t = (1 − z)·n + z·h_{t-1} with the reset applied after the hidden
    matmul; Chung et al. write h_t = z·n + (1 − z)·h_{t-1} and reset before it. The diagram follows
    the ``convention`` toggle; the bars on the right always show both results for the same sliders.
    Values come from :func:`course_utils.functional.gru_cell_gates`.

    Args:
        update, reset: starting gate values in [0, 1]. h_prev: h_{t-1} in [-1, 1].
        input: W_in·x + b_in, the input's share of the candidate's pre-activation.
        hidden_bias: b_hn, the bias the two conventions treat differently. weight_hh: W_hn (fixed).
        convention: "torch" or "chung".

    Attributes:
        update, reset, h_prev, input, hidden_bias, convention: the controls (``ipywidgets``).
        gates: :class:`~course_utils.functional.GRUGates` of the shown convention; gates_torch, gates_chung.
        r, z, n, h: floats of the shown convention (z as the slider sets it); n_torch, h_torch, n_chung, h_chung.
        fig, artists, image, readout, widget: as in :class:`~course_utils.widgets.LSTMGateExplorer`.
    """

    def __init__(self, update: float = 0.8, reset: float = 0.5, h_prev: float = 0.6,
                 input: float = 0.5, hidden_bias: float = 0.5, weight_hh: float = 1.0,
                 convention: str = "torch", dpi: int = 90):
        if convention not in ("torch", "chung"):
            raise ValueError(f"GRUGateExplorer: expected convention 'torch' or 'chung', got {convention!r}")
        self.weight_hh = float(weight_hh)
        self.update = float_slider("update z", update, 0.0, 1.0)
        self.reset = float_slider("reset r", reset, 0.0, 1.0)
        self.h_prev = float_slider("h(t-1)", h_prev, -1.0, 1.0)
        self.input = float_slider("W_in·x + b_in", input, -INPUT_LIMIT, INPUT_LIMIT)
        self.hidden_bias = float_slider("b_hn", hidden_bias, -HIDDEN_BIAS_LIMIT, HIDDEN_BIAS_LIMIT)
        self.convention = widgets.ToggleButtons(options=CONVENTIONS, value=convention, description="convention",
                                                layout=SLIDER_LAYOUT, style=SLIDER_STYLE)
        self.fig = new_figure(11.0, 4.2, dpi)
        self._build_figure()
        self._finish({"update": self.update, "reset": self.reset, "h_prev": self.h_prev, "input": self.input,
                      "hidden_bias": self.hidden_bias, "convention": self.convention},
                     css_class="cu-gru-gate-explorer")

    # ------------------------------------------------------------------ figure, built once
    def _build_figure(self) -> None:
        fig, a = self.fig, {}
        ax = diagram_axes(fig.add_axes((0.0, 0.0, 0.68, 1.0)), 14.0, 7.0)
        a["title"] = PathText(ax, (0.2, 6.9), "", size=11, weight="bold", va="top")
        # the hidden state's path: h_{t-1} -> × keep -> + -> h_t
        a["h_prev_flow"] = Flow(ax, (0.2, 6.0), (6.72, 6.0), 1.0, label_xy=(0.2, 6.4), label_ha="left")
        op_node(ax, (7.0, 6.0), "×")
        a["keep_weight"] = PathText(ax, (7.0, 5.6), "", ha="center", va="top", weight="bold")
        a["kept_flow"] = Flow(ax, (7.28, 6.0), (9.72, 6.0), 1.0, label_xy=(8.5, 6.4))
        op_node(ax, (10.0, 6.0), "+")
        a["h_flow"] = Flow(ax, (10.28, 6.0), (13.2, 6.0), 1.0, label_xy=(13.2, 6.4), label_ha="right")
        # the candidate's path: h_{t-1} -> box 1 -> box 2 -> + input -> tanh -> n -> × -> +
        a["branch_flow"] = Flow(ax, (1.6, 6.0), (1.6, 3.9), 1.0)
        for k, center in enumerate((1.6, 4.9)):
            ax.add_patch(Rectangle((center - 1.2, 2.9), 2.4, 1.0, facecolor=GATE_FACE, edgecolor="black", lw=1.2))
            a[f"box{k + 1}"] = PathText(ax, (center, 3.4), "", size=8.5, ha="center", va="center")
        a["box1_flow"] = Flow(ax, (2.8, 3.4), (3.7, 3.4), 2.0, label_xy=(3.25, 3.8))
        a["box2_flow"] = Flow(ax, (6.1, 3.4), (6.92, 3.4), 2.0, label_xy=(6.5, 3.8))
        op_node(ax, (7.2, 3.4), "+")
        a["input_flow"] = Flow(ax, (7.2, 1.4), (7.2, 3.12), INPUT_LIMIT, label_xy=(7.35, 1.9), label_ha="left")
        a["pre_flow"] = Flow(ax, (7.48, 3.4), (8.12, 3.4), INPUT_LIMIT)
        op_node(ax, (8.5, 3.4), "tanh")
        a["n_flow"] = Flow(ax, (8.8, 3.6), (9.8, 4.4), 1.0, label_xy=(8.9, 4.2), label_ha="right")
        op_node(ax, (10.0, 4.6), "×")
        a["take_weight"] = PathText(ax, (10.4, 4.6), "", va="center", weight="bold")
        a["taken_flow"] = Flow(ax, (10.0, 4.88), (10.0, 5.72), 1.0, label_xy=(10.15, 5.3), label_ha="left")
        a["r_box"] = GateBox(ax, (2.8, 0.7), "reset r", "σ")
        a["r_flow"] = Flow(ax, (3.25, 2.65), (4.9, 2.9), 1.0)
        a["z_box"] = GateBox(ax, (11.6, 2.6), "update z", "σ")
        a["note"] = PathText(ax, (0.2, -0.3), "", size=8, style="italic", color="#555555")

        # both conventions side by side, for the same slider values
        cmp_ax = fig.add_axes((0.73, 0.14, 0.25, 0.7))
        cmp_ax.set_xlim(-0.5, 4.1)
        cmp_ax.set_ylim(-1.1, 1.1)
        cmp_ax.axhline(0.0, color="black", lw=0.8)
        PathTicks(cmp_ax, "y").set_ticks([-1.0, 0.0, 1.0])
        PathTicks(cmp_ax, "x", size=9).set_ticks([0.0, 1.8, 3.4], ["hₜ₋₁", "n", "hₜ"])
        positions = {"h_prev": 0.0, "n_torch": 1.6, "n_chung": 2.0, "h_torch": 3.2, "h_chung": 3.6}
        colors = {"h_prev": "#888888", "n_torch": TORCH_COLOR, "n_chung": CHUNG_COLOR, "h_torch": TORCH_COLOR,
                  "h_chung": CHUNG_COLOR}
        bars = cmp_ax.bar(list(positions.values()), [0.0] * 5, width=0.4, color=list(colors.values()))
        a["compare_bars"] = dict(zip(positions, bars, strict=True))
        PathText(cmp_ax, (0.5, 1.0), "same sliders, both conventions", size=9, ha="center", offset=(0, 18),
                 transform=cmp_ax.transAxes)
        a["torch_key"] = PathText(cmp_ax, (0.25, 1.0), "■ torch", color=TORCH_COLOR, ha="center", offset=(0, 5),
                                  transform=cmp_ax.transAxes)
        a["chung_key"] = PathText(cmp_ax, (0.72, 1.0), "■ Chung et al.", color=CHUNG_COLOR, ha="center", offset=(0, 5),
                                transform=cmp_ax.transAxes)
        self.artists = a

    # ------------------------------------------------------------------ update cycle
    def _compute(self) -> None:
        args = (self.reset.value, self.update.value, self.h_prev.value, self.input.value, self.weight_hh,
                self.hidden_bias.value)
        self.gates_torch = gru_step_from_gates(*args, convention="torch")
        self.gates_chung = gru_step_from_gates(*args, convention="chung")
        self.n_torch, self.h_torch = self.gates_torch.n.item(), self.gates_torch.h.item()
        self.n_chung, self.h_chung = self.gates_chung.n.item(), self.gates_chung.h.item()
        self.gates = self.gates_torch if self.convention.value == "torch" else self.gates_chung
        self.r, self.n, self.h = self.gates.r.item(), self.gates.n.item(), self.gates.h.item()
        self.z = self.update.value if self.convention.value == "torch" else 1.0 - self.gates.z.item()

    def _update_artists(self) -> None:
        a, conv, h_prev, w = self.artists, self.convention.value, self.h_prev.value, self.weight_hh
        torch_style = conv == "torch"
        keep = self.z if torch_style else 1.0 - self.z  # the share of h_{t-1} that is kept
        a["title"].set_text("one GRU step, " + ("torch's convention" if torch_style else "Chung et al.'s convention"))
        a["keep_weight"].set_text(f"× z = {self.z:.2f}" if torch_style else f"× (1−z) = {keep:.2f}")
        a["take_weight"].set_text(f"× (1−z) = {1 - keep:.2f}" if torch_style else f"× z = {self.z:.2f}")
        a["h_prev_flow"].set_value(h_prev, f"hₜ₋₁ = {h_prev:.2f}")
        a["kept_flow"].set_value(keep * h_prev)
        a["h_flow"].set_value(self.h, f"hₜ = {self.h:.2f}")
        a["branch_flow"].set_value(h_prev)
        box1, box2 = BOX_TEXT[conv]
        a["box1"].set_text(box1)
        a["box2"].set_text(box2)
        # the intermediate terms below only label arrows; n and h_t themselves come from gru_cell_gates
        if torch_style:  # W_hn·h + b_hn, then r·(…)
            first, second = w * h_prev + self.hidden_bias.value, self.r * (w * h_prev + self.hidden_bias.value)
        else:            # r·h, then W_hn·(…) + b_hn
            first, second = self.r * h_prev, w * self.r * h_prev + self.hidden_bias.value
        a["box1_flow"].set_value(first)
        a["box2_flow"].set_value(second)
        a["r_flow"].arrow.set_positions((3.25, 2.65), (4.9 if torch_style else 1.6, 2.9))
        a["r_flow"].set_value(self.r)
        a["input_flow"].set_value(self.input.value, f"W_in·x + b_in = {self.input.value:.2f}")
        a["pre_flow"].set_value(self.input.value + second)
        a["n_flow"].set_value(self.n, f"n = {self.n:.2f}")
        a["taken_flow"].set_value((1 - keep) * self.n)
        a["r_box"].set_value(self.r)
        a["z_box"].set_value(self.z)
        a["note"].set_text(NOTE[conv])
        bars = a["compare_bars"]
        for name, value in (("h_prev", h_prev), ("n_torch", self.n_torch), ("n_chung", self.n_chung),
                            ("h_torch", self.h_torch), ("h_chung", self.h_chung)):
            bars[name].set_height(value)
            active = name == "h_prev" or name.endswith(conv)
            bars[name].set_alpha(1.0 if active else INACTIVE_ALPHA)

    def _readout_html(self) -> str:
        r, z, w, b, x, h_prev = (self.reset.value, self.update.value, self.weight_hh, self.hidden_bias.value,
                                 self.input.value, self.h_prev.value)
        torch_line = (f"torch: n = tanh({x:.2f} + r·(W_hn·{h_prev:.2f} + {b:.2f})) = "
                      f"{value_span('n_torch', self.n_torch)}, "
                      f"h<sub>t</sub> = (1−z)·n + z·h<sub>t-1</sub> = {value_span('h_torch', self.h_torch)}")
        chung_line = (f"Chung et al.: n = tanh({x:.2f} + W_hn·(r·{h_prev:.2f}) + {b:.2f}) = "
                    f"{value_span('n_chung', self.n_chung)}, "
                    f"h<sub>t</sub> = z·n + (1−z)·h<sub>t-1</sub> = {value_span('h_chung', self.h_chung)}")
        shown = torch_line if self.convention.value == "torch" else chung_line
        other = chung_line if self.convention.value == "torch" else torch_line
        return (f"<code>r = {r:.2f}, z = {z:.2f}, W_hn = {w:.2f}<br><b>{shown}</b><br>{other}<br>"
                f"shown h<sub>t</sub> = {value_span('h', self.h)}</code>")

