"""The widget explorers without a kernel: set controls, check state against the equations and the artists.

The explorers draw on their own Agg canvas and never touch pyplot; Agg is selected here as
well so that nothing in this module can open a window.
"""

import base64
import itertools
import json
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils.gradients import gradient_norms
from course_utils.widgets import (
    GateInspector,
    GradientFlowExplorer,
    GRUGateExplorer,
    LSTMGateExplorer,
    RNNUnrollExplorer,
    memory_left,
    unrolled_states,
)
from course_utils.widgets.lstm import BAR_SCALE
from course_utils.widgets.unroll import input_pattern

matplotlib.use("Agg")  # pyplot picks its backend at the first figure, so this still comes first

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def logit(p):
    return math.log(p / (1.0 - p))


def readout_value(explorer, name: str) -> float:
    """The number the readout shows under data-name=``name`` (what the browser test reads)."""
    html = explorer.readout.value
    marker = f'data-name="{name}">'
    start = html.index(marker) + len(marker)
    return float(html[start:html.index("<", start)])


def artist_snapshot(explorer):
    """Identity of the figure and of everything on it, to prove that updates never rebuild it."""
    return id(explorer.fig), [(id(ax), [id(child) for child in ax.get_children()]) for ax in explorer.fig.axes]


def assert_finite_artists(fig):
    for ax in fig.axes:
        for line in ax.lines:  # every Line2D on the axes, tick marks and grid included
            # NaN is a gap (pen up between grid lines, or a norm that underflowed on a log axis); inf is a bug
            xy = np.asarray(line.get_xydata(), dtype=float)
            assert not np.isinf(xy).any(), f"infinite data in {line}"
            assert not np.isnan(xy).all() or len(xy) == 0, f"only NaN in {line}"
        for patch in ax.patches:
            if isinstance(patch, matplotlib.patches.Rectangle):
                assert np.isfinite([patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height()]).all()
            if isinstance(patch, matplotlib.patches.FancyArrowPatch):
                assert np.isfinite(patch.get_linewidth())
        for collection in ax.collections:
            assert all(np.isfinite(path.vertices).all() for path in collection.get_paths())
        for image in ax.images:
            assert np.isfinite(np.asarray(image.get_array(), dtype=float)).all()


def control_grid(explorer, skip=()):
    """Every combination of min / mid / max for sliders and every option for toggles."""
    names, choices = [], []
    for name, control in explorer.controls.items():
        if name in skip:
            continue
        if hasattr(control, "options"):
            values = [value for _, value in control.options]
        elif isinstance(control.value, int):
            values = sorted({control.min, (control.min + control.max) // 2, control.max})
        else:
            values = [control.min, (control.min + control.max) / 2, control.max]
        names.append(name)
        choices.append(values)
    for combo in itertools.product(*choices):
        yield dict(zip(names, combo, strict=True))


# ---------------------------------------------------------------------------- LSTM
def test_lstm_forget0_input1_writes_the_candidate():
    e = LSTMGateExplorer()
    e.set(forget=0.0, input=1.0, candidate=0.5, c_prev=1.7, output=1.0)
    assert e.c == pytest.approx(0.5, abs=1e-12)
    assert e.h == pytest.approx(math.tanh(0.5), abs=1e-12)
    a = e.artists
    assert a["c_flow"].label.get_text() == "cₜ = 0.50"
    assert a["h_flow"].label.get_text() == f"hₜ = {math.tanh(0.5):.2f}"
    assert a["kept_flow"].label.get_text() == "f·cₜ₋₁ = 0.00"
    assert [bar.get_height() for bar in a["state_bars"]] == pytest.approx([BAR_SCALE * 1.7, BAR_SCALE * 0.5,
                                                                           BAR_SCALE * math.tanh(0.5)])
    assert a["f_box"].fill.get_height() == 0.0 and a["f_box"].text.get_text() == "0.00"
    assert a["g_box"].text.get_text() == "0.50"
    assert readout_value(e, "c") == pytest.approx(0.5) and readout_value(e, "h") == pytest.approx(math.tanh(0.5), 1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_lstm_state_follows_the_equations(seed):
    rng = np.random.default_rng(seed)
    f, i, o = rng.uniform(0, 1, 3)
    g, c_prev = rng.uniform(-1, 1), rng.uniform(-2, 2)
    e = LSTMGateExplorer()
    e.set(forget=f, input=i, output=o, candidate=g, c_prev=c_prev)
    f, i, o, g, c_prev = (e.controls[n].value for n in ("forget", "input", "output", "candidate", "c_prev"))
    c = f * c_prev + i * g  # c_t = f·c_{t-1} + i·g
    assert (e.f, e.i, e.o, e.g) == pytest.approx((f, i, o, g), abs=1e-12)
    assert e.c == pytest.approx(c, abs=1e-12)
    assert e.h == pytest.approx(o * math.tanh(c), abs=1e-12)  # h_t = o·tanh(c_t)
    assert e.artists["state_bars"][1].get_height() == pytest.approx(BAR_SCALE * c)
    assert e.artists["c_flow"].label.get_text() == f"cₜ = {c:.2f}"


def test_lstm_forget_one_keeps_the_pulse_for_every_step():
    e = LSTMGateExplorer()
    e.set(forget=1.0, input=1.0, candidate=0.8, c_prev=0.0, steps=50)
    assert len(e.cells) == 50
    np.testing.assert_array_equal(e.cells, np.full(50, e.c))
    np.testing.assert_array_equal(e.grads, np.ones(50))
    np.testing.assert_array_equal(e.artists["grad_line"].get_ydata(), np.ones(50))
    np.testing.assert_array_equal(e.artists["cell_line"].get_ydata(), e.cells)
    assert e.artists["grad_text"].get_text() == "f^49 = 1"


def test_lstm_forget_half_halves_the_pulse_each_step():
    e = LSTMGateExplorer()
    e.set(forget=0.5, input=1.0, candidate=1.0, c_prev=0.0, output=0.7, steps=20)
    k = np.arange(20)
    np.testing.assert_allclose(e.cells, 0.5 ** k, rtol=1e-12)
    np.testing.assert_allclose(e.grads, 0.5 ** k, rtol=1e-12)  # ∂c_k/∂c_0 = f^k, from autograd
    np.testing.assert_allclose(e.hiddens, 0.7 * np.tanh(0.5 ** k), rtol=1e-12)
    np.testing.assert_allclose(e.artists["grad_line"].get_ydata(), 0.5 ** k, rtol=1e-12)
    np.testing.assert_array_equal(e.artists["grad_line"].get_xdata(), k)
    assert e.cells[3] < 0.2  # forgotten within a few steps
    assert readout_value(e, "grad_last") == pytest.approx(0.5 ** 19, rel=1e-2)


def test_lstm_steps_slider_sets_the_length_and_the_axis():
    e = LSTMGateExplorer(steps=30)
    e.steps.value = 7
    assert len(e.cells) == len(e.grads) == len(e.artists["cell_line"].get_xdata()) == 7
    assert e.artists["grad_line"].axes.get_xlim() == (-0.5, 6.5)


def test_lstm_updates_in_place_and_the_image_changes():
    e = LSTMGateExplorer()
    before, png_before, fig = artist_snapshot(e), bytes(e.image.value), e.fig
    e.forget.value = 0.2
    e.candidate.value = -0.9
    assert e.fig is fig
    assert artist_snapshot(e) == before
    assert bytes(e.image.value).startswith(PNG_SIGNATURE) and bytes(e.image.value) != png_before
    assert set(e.timings) == {"compute", "artists_draw", "png"}


# ----------------------------------------------------------------------------- GRU
def gru_cell_oracle(r, z, h_prev, input_part, weight_hh, hidden_bias):
    """torch.nn.GRUCell with one unit whose gates are r and z: the trusted implementation."""
    cell = torch.nn.GRUCell(1, 1).double()
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.bias_ih.copy_(torch.tensor([logit(r), logit(z), input_part], dtype=torch.float64))
        cell.weight_hh.copy_(torch.tensor([[0.0], [0.0], [weight_hh]], dtype=torch.float64))
        cell.bias_hh.copy_(torch.tensor([0.0, 0.0, hidden_bias], dtype=torch.float64))
        return cell(torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), h_prev, dtype=torch.float64)).item()


@pytest.mark.parametrize("seed", range(5))
def test_gru_torch_convention_matches_torch_gru_cell(seed):
    rng = np.random.default_rng(seed)
    r, z = rng.uniform(0.05, 0.95, 2)
    h_prev, x, b = rng.uniform(-1, 1), rng.uniform(-3, 3), rng.uniform(-1.5, 1.5)
    e = GRUGateExplorer(weight_hh=0.7)
    e.set(reset=r, update=z, h_prev=h_prev, input=x, hidden_bias=b, convention="torch")
    r, z, h_prev, x, b = (e.controls[n].value for n in ("reset", "update", "h_prev", "input", "hidden_bias"))
    assert e.h == pytest.approx(gru_cell_oracle(r, z, h_prev, x, 0.7, b), abs=1e-12)
    # Chung et al.: n = tanh(x + W_hn·(r·h) + b_hn), h_t = z·n + (1 − z)·h_{t-1}
    n_chung = math.tanh(x + 0.7 * (r * h_prev) + b)
    assert e.n_chung == pytest.approx(n_chung, abs=1e-12)
    assert e.h_chung == pytest.approx(z * n_chung + (1 - z) * h_prev, abs=1e-12)


def test_gru_update_one_keeps_the_previous_state_in_torch_convention():
    e = GRUGateExplorer()
    e.set(update=1.0, h_prev=-0.37, input=2.0, convention="torch")
    assert e.h == -0.37 and e.h_torch == -0.37
    assert e.h_chung == pytest.approx(e.n_chung)  # in Chung's convention z = 1 takes the candidate instead
    assert e.artists["keep_weight"].get_text() == "× z = 1.00"
    e.convention.value = "chung"
    assert e.h == pytest.approx(e.n_chung)
    assert e.artists["keep_weight"].get_text() == "× (1−z) = 0.00"
    e.update.value = 0.0
    assert e.h == -0.37  # Chung: z = 0 keeps h_{t-1}


def test_gru_reset_placement_shows_through_the_hidden_bias():
    e = GRUGateExplorer(weight_hh=1.0)
    e.set(reset=0.0, h_prev=0.9, input=0.2, hidden_bias=1.0)
    assert e.n_torch == pytest.approx(math.tanh(0.2))        # r = 0 silences W_hn·h + b_hn, bias included
    assert e.n_chung == pytest.approx(math.tanh(0.2 + 1.0))    # r = 0 silences h only; b_hn still enters


def test_gru_toggle_changes_the_diagram_and_both_results_stay_visible():
    e = GRUGateExplorer()
    bars = e.artists["compare_bars"]
    before = artist_snapshot(e)
    assert bars["h_torch"].get_height() == pytest.approx(e.h_torch)
    assert bars["h_chung"].get_height() == pytest.approx(e.h_chung)
    assert e.h_torch != pytest.approx(e.h_chung, abs=1e-3)
    assert bars["h_torch"].get_alpha() == 1.0 and bars["h_chung"].get_alpha() < 1.0
    assert "torch" in e.artists["title"].get_text() and e.artists["box1"].get_text() == "W_hn·h + b_hn"
    e.convention.value = "chung"
    assert bars["h_chung"].get_alpha() == 1.0 and bars["h_torch"].get_alpha() < 1.0
    assert "Chung" in e.artists["title"].get_text() and e.artists["box1"].get_text() == "r · h"
    assert e.h == pytest.approx(e.h_chung) and readout_value(e, "h") == pytest.approx(e.h_chung, abs=1e-4)
    assert artist_snapshot(e) == before


def test_gru_rejects_an_unknown_convention():
    with pytest.raises(ValueError, match="expected convention 'torch' or 'chung', got 'keras'"):
        GRUGateExplorer(convention="keras")


# -------------------------------------------------------------------- gradient flow
@pytest.mark.parametrize("cell, scale, seq_len, forget_bias", [("rnn", 0.6, 30, 0.0), ("lstm", 1.2, 40, 2.0),
                                                             ("gru", 2.0, 25, 0.0)])
def test_gradient_plot_is_gradient_norms(cell, scale, seq_len, forget_bias):
    e = GradientFlowExplorer(hidden_size=16)
    before = artist_snapshot(e)
    e.set(cell=cell, weight_scale=scale, seq_len=seq_len, forget_bias=forget_bias)
    expected = gradient_norms(cell, seq_len, 16, 4, weight_scale=scale, forget_bias=forget_bias, wrt="input",
                              seed=0, dtype=torch.float64).numpy()
    line = e.artists["line"]
    np.testing.assert_allclose(e.norms, expected, rtol=1e-12)
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(seq_len)[::-1])  # distance from the loss
    low, high = line.axes.get_ylim()
    assert low <= expected.min() and expected.max() <= high
    assert e.forget_bias.disabled == (cell != "lstm")
    assert artist_snapshot(e) == before


@pytest.mark.parametrize("wrt, cell, symbol", [("input", "rnn", "xₜ"), ("state", "rnn", "hₜ"),
                                               ("state", "lstm", "(hₜ, cₜ)"), ("state", "gru", "hₜ")])
def test_gradient_flow_names_what_it_measures(wrt, cell, symbol):
    e = GradientFlowExplorer(hidden_size=8, wrt=wrt, cell=cell)
    assert e.readout.value.startswith(f"<code>‖∂L/∂{symbol}‖ at the loss")
    assert e.artists["y_label"].get_text() == f"‖∂L/∂{symbol}‖"
    expected = gradient_norms(cell, 50, 8, 4, weight_scale=1.0, wrt=wrt, seed=0, dtype=torch.float64).numpy()
    np.testing.assert_allclose(e.norms, expected, rtol=1e-12)


def test_gradient_flow_shows_vanishing_for_a_small_recurrent_scale():
    e = GradientFlowExplorer()
    e.set(cell="rnn", weight_scale=0.3, seq_len=60)
    assert e.ratio < 1e-12
    assert readout_value(e, "ratio") == pytest.approx(e.ratio, rel=1e-3)


# -------------------------------------------------------------------- RNN unrolled
@pytest.mark.parametrize("pattern, rec, inp, steps", [("pulse", 0.9, 1.0, 30), ("sine", 1.5, 0.5, 12),
                                                      ("noise", 0.3, 2.0, 60), ("step", 1.0, 1.0, 3)])
def test_unroll_states_are_torch_rnn_with_the_same_weights_at_every_step(pattern, rec, inp, steps):
    e = RNNUnrollExplorer(hidden_size=6)
    before = artist_snapshot(e)
    e.set(pattern=pattern, recurrent_scale=rec, input_scale=inp, steps=steps)
    layer = torch.nn.RNN(1, 6, bias=False).double()
    layer.load_state_dict({"weight_ih_l0": e.weight_ih, "weight_hh_l0": e.weight_hh})
    x = torch.as_tensor(input_pattern(pattern, steps), dtype=torch.float64).reshape(steps, 1, 1)
    with torch.no_grad():
        output, _ = layer(x)  # one nn.RNN, its two weight matrices used at every step
    np.testing.assert_allclose(e.hs, output[:, 0].numpy(), atol=1e-12)
    np.testing.assert_array_equal(e.x, x[:, 0, 0].numpy())
    np.testing.assert_allclose(e.norms, np.linalg.norm(e.hs, axis=1))
    assert e.spectral_radius == pytest.approx(rec, abs=1e-9)  # the slider is the spectral radius of W_hh
    assert e.artists["heatmap"].get_array().shape == (6, steps)
    np.testing.assert_allclose(e.artists["norm_line"].get_ydata(), e.norms)
    assert len(e.artists["boxes"].get_paths()) == steps
    assert readout_value(e, "h_last") == pytest.approx(e.norms[-1], abs=1e-4)
    assert artist_snapshot(e) == before  # the figure and its artists were updated, never rebuilt


def test_unroll_weights_do_not_depend_on_the_length_or_the_input():
    e = RNNUnrollExplorer()
    w_hh, w_ih = e.weight_hh.clone(), e.weight_ih.clone()
    e.set(steps=55, pattern="noise")
    assert torch.equal(e.weight_hh, w_hh) and torch.equal(e.weight_ih, w_ih)
    e.set(recurrent_scale=0.45, input_scale=0.5)
    torch.testing.assert_close(e.weight_hh, w_hh * 0.5, rtol=1e-12, atol=0)  # default 0.9 -> 0.45
    torch.testing.assert_close(e.weight_ih, w_ih * 0.5, rtol=1e-12, atol=0)


def test_unroll_states_without_a_figure_are_the_explorers():
    e = RNNUnrollExplorer(recurrent_scale=1.2, input_scale=0.7, pattern="sine", steps=25, seed=3)
    x, hs = unrolled_states("sine", 25, recurrent_scale=1.2, input_scale=0.7, seed=3)
    np.testing.assert_array_equal(x, e.x)
    np.testing.assert_array_equal(hs, e.hs)
    assert memory_left(np.linalg.norm(hs, axis=1)) == e.memory
    assert memory_left(np.zeros(4)) == 0.0


def test_unroll_pulse_memory_fades_below_one_and_persists_above():
    e = RNNUnrollExplorer(pattern="pulse", steps=40)
    e.set(recurrent_scale=0.0)
    assert e.norms[0] > 0 and np.all(e.norms[1:] == 0)  # no recurrence: the pulse is gone after one step
    e.set(recurrent_scale=0.5)
    assert e.memory < 1e-6  # fades roughly like 0.5^t
    e.set(recurrent_scale=1.5)
    assert e.memory > 0.5  # spectral radius above 1: the state does not die out
    e.set(input_scale=0.0)
    assert np.all(e.hs == 0)  # no input, zero start, no bias: nothing ever moves
    assert readout_value(e, "memory") == 0.0


def test_unroll_image_changes_and_bad_arguments_are_named():
    e = RNNUnrollExplorer()
    first = bytes(e.image.value)
    e.recurrent_scale.value = 1.7
    assert bytes(e.image.value) != first and bytes(e.image.value).startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="expected pattern in .*got 'square'"):
        RNNUnrollExplorer(pattern="square")
    with pytest.raises(ValueError, match=r"expected steps in \[3, 60\], got 100"):
        RNNUnrollExplorer(steps=100)


# -------------------------------------------------------------------- gate inspector
def replay_lstm(acts, n):
    """h_t from the inspector's gates alone: c_t = f·c_{t-1} + i·g, h_t = o·tanh(c_t)."""
    c = np.zeros(acts["i"].shape[2])
    hs = []
    for t in range(acts["i"].shape[0]):
        c = acts["f"][t, n] * c + acts["i"][t, n] * acts["g"][t, n]
        hs.append(acts["o"][t, n] * np.tanh(c))
    return np.stack(hs)


def replay_gru(acts, n, h0):
    """h_t = (1 − z)·n + z·h_{t-1} from the inspector's gates."""
    h, hs = h0, []
    for t in range(acts["z"].shape[0]):
        h = (1 - acts["z"][t, n]) * acts["n"][t, n] + acts["z"][t, n] * h
        hs.append(h)
    return np.stack(hs)


def test_inspector_lstm_gates_reproduce_torch_lstm_outputs():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 12, batch_first=True)
    x = torch.randn(4, 25, 3)  # (N, T, H_in), batch_first like the module
    e = GateInspector(lstm, x)
    assert e.kind == "lstm" and e.gate_names == ["i", "f", "g", "o"]
    assert e.activations["f"].shape == (25, 4, 12)
    out, _ = lstm(x)
    for n in range(4):
        np.testing.assert_allclose(replay_lstm(e.activations, n), out[n].detach().numpy(), atol=1e-5)


def test_inspector_gru_gates_reproduce_torch_gru_outputs():
    torch.manual_seed(1)
    gru = torch.nn.GRU(5, 8)
    x = torch.randn(30, 5)  # (T, H_in): one sequence
    e = GateInspector(gru, x)
    assert e.kind == "gru" and e.index.disabled and e.activations["n"].shape == (30, 1, 8)
    out, _ = gru(x)
    np.testing.assert_allclose(replay_gru(e.activations, 0, np.zeros(8)), out.detach().numpy(), atol=1e-5)


def test_inspector_sliders_move_marker_bars_and_heatmaps():
    torch.manual_seed(2)
    e = GateInspector(torch.nn.LSTM(2, 40), torch.randn(15, 3, 2), max_units=10)
    before = artist_snapshot(e)
    e.set(step=6, index=2)
    a = e.artists
    for name in e.gate_names:
        assert list(a["markers"][name].get_xdata()) == [6, 6]
        np.testing.assert_array_equal(a["images"][name].get_array(), e.activations[name][:, 2, :10].T)
        ends = [path.vertices[1, 0] for path in a["bars"][name].get_paths()]  # corner 1 sits at the value
        np.testing.assert_allclose(ends, e.activations[name][6, 2, :10], rtol=1e-6)
    assert readout_value(e, "mean_f") == pytest.approx(e.activations["f"][6, 2, :10].mean(), abs=1e-3)
    assert artist_snapshot(e) == before


def test_inspector_rejects_what_it_cannot_read():
    with pytest.raises(TypeError, match=r"expected an LSTM or GRU module .* got Linear"):
        GateInspector(torch.nn.Linear(3, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"expected input of shape \(T, 3\), \(T, N, 3\), got \(5, 4\)"):
        GateInspector(torch.nn.GRU(3, 4), torch.randn(5, 4))
    with pytest.raises(ValueError, match="expected weight_ih_l0 of shape"):
        GateInspector(torch.nn.RNN(3, 4), torch.randn(5, 3))


# --------------------------------------------------------------------------- all of them
def make_inspector():
    torch.manual_seed(3)
    return GateInspector(torch.nn.GRU(2, 6), torch.randn(9, 3, 2))


EXPLORERS = {
    "lstm": LSTMGateExplorer,
    "gru": GRUGateExplorer,
    "gradient_flow": lambda: GradientFlowExplorer(hidden_size=8),
    "inspector": make_inspector,
    "unroll": RNNUnrollExplorer,
}
STATE = {
    "lstm": ("f", "i", "g", "o", "c", "h", "cells", "hiddens", "grads"),
    "gru": ("r", "z", "n", "h", "n_torch", "h_torch", "n_chung", "h_chung"),
    "gradient_flow": ("norms",),
    "inspector": (),
    "unroll": ("x", "hs", "norms", "spectral_radius", "memory"),
}


@pytest.mark.parametrize("kind", EXPLORERS)
def test_every_extreme_slider_combination_is_finite(kind):
    e = EXPLORERS[kind]()
    combos = list(control_grid(e))
    for k, combo in enumerate(combos):
        # the full update path on a sample (draw and PNG included), the state and artists on all
        e.set(draw=k % 50 == 0 or k == len(combos) - 1, **combo)
        for name in STATE[kind]:
            assert np.isfinite(np.asarray(getattr(e, name), dtype=float)).all(), (name, combo)
        if kind == "inspector":
            assert all(np.isfinite(v).all() for v in e.current.values())
        assert_finite_artists(e.fig)
    assert bytes(e.image.value).startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("kind", EXPLORERS)
def test_display_bundle_and_no_pyplot(kind):
    figures_before = plt.get_fignums()
    e = EXPLORERS[kind]()
    assert plt.get_fignums() == figures_before  # never registered with pyplot: no double display inline
    bundle = e._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == e.widget.model_id
    assert bundle["text/plain"].startswith(type(e).__name__ + "(")
    # the static fallback: the figure as a PNG, which a stored notebook opened without a kernel shows
    assert base64.b64decode(bundle["image/png"]) == bytes(e.image.value)
    json.dumps(bundle)  # what the kernel sends must be JSON
    assert e.image in e.widget.children and e.readout in e.widget.children
    width, height = e.fig.canvas.get_width_height()
    assert bytes(e.image.value)[16:24] == width.to_bytes(4, "big") + height.to_bytes(4, "big")  # PNG IHDR size
    with pytest.raises(KeyError, match="expected control names from"):
        e.set(no_such_slider=1)
    e.close()
