"""gradient_norms against an independent computation, and every functional step on unbatched input vs torch.nn.

Written for the gaps a mutation sample found: ``gradients.gradient_norms``' two modes, its loss and its
defaults were only pinned by notebook 02's stored printout, and the unbatched branch of the functional cells
(1-D x and h) was never run.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from course_utils import functional as Fn
from course_utils import gradients


def _independent(cell: str, seq_len: int, hidden: int, inputs: int, seed: int, wrt: str) -> torch.Tensor:
    """The same quantity with torch.nn's cell and autograd.grad, from the same parameters and inputs."""
    params = gradients.make_cell_params(cell, inputs, hidden, None, 0.0, seed, None, torch.float64)
    gen = torch.Generator().manual_seed(seed + 1)
    xs = torch.randn(seq_len, 1, inputs, generator=gen, dtype=torch.float64).requires_grad_(True)
    v = torch.randn(1, hidden, generator=gen, dtype=torch.float64)
    v = v / v.norm()
    module = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell](inputs, hidden).double()
    module.load_state_dict({k: params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    h = torch.zeros(1, hidden, dtype=torch.float64)
    state = (h, h.clone()) if cell == "lstm" else h
    states = []
    for x in xs.unbind(0):
        state = module(x, state)
        states.append(state)
    h_last = state[0] if cell == "lstm" else state
    loss = (h_last * v).sum()
    if wrt == "input":
        (g,) = torch.autograd.grad(loss, xs)
        return g[:, 0].norm(dim=-1)
    flat = [s for st in states for s in (st if cell == "lstm" else (st,))]
    grads = torch.autograd.grad(loss, flat, allow_unused=True)
    per = 2 if cell == "lstm" else 1
    out = []
    for t in range(seq_len):
        parts = [g for g in grads[t * per:(t + 1) * per] if g is not None]
        out.append(torch.sqrt(sum((g ** 2).sum() for g in parts)) if parts else torch.tensor(0.0, dtype=torch.float64))
    return torch.stack(out)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("wrt", ["input", "state"])
def test_gradient_norms_match_an_independent_computation(cell, wrt):
    got = gradients.gradient_norms(cell, seq_len=7, hidden_size=5, input_size=3, wrt=wrt, seed=3,
                                   dtype=torch.float64)
    expected = _independent(cell, 7, 5, 3, 3, wrt)
    assert got.shape == (7,) and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_the_two_modes_differ_and_the_last_step_is_the_largest_for_a_contracting_rnn():
    by_input = gradients.gradient_norms("rnn", seq_len=20, weight_scale=0.5, wrt="input", dtype=torch.float64)
    by_state = gradients.gradient_norms("rnn", seq_len=20, weight_scale=0.5, wrt="state", dtype=torch.float64)
    assert not torch.allclose(by_input, by_state)
    assert by_state[-1] == pytest.approx(1.0)  # dL/dh_T = v, a unit vector
    assert by_state[0] < 1e-3 * by_state[-1]


def test_gradient_norms_work_under_no_grad():
    """A widget or a notebook may call it inside ``torch.no_grad()``: the gradients are still taken."""
    expected = gradients.gradient_norms("gru", seq_len=6, hidden_size=4, dtype=torch.float64)
    with torch.no_grad():
        got = gradients.gradient_norms("gru", seq_len=6, hidden_size=4, dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert (got > 0).all()


def test_gradient_norms_defaults_are_pinned():
    defaults = {k: p.default for k, p in inspect.signature(gradients.gradient_norms).parameters.items()}
    assert defaults == {"cell": "rnn", "seq_len": 50, "hidden_size": 32, "input_size": 4, "weight_scale": None,
                        "forget_bias": 0.0, "wrt": "input", "params": None, "seed": 0, "device": None,
                        "dtype": torch.float32}
    assert gradients.gradient_norms().shape == (50,)


@pytest.mark.parametrize("name, module_cls, gates", [("rnn_cell", nn.RNNCell, 1), ("lstm_cell", nn.LSTMCell, 4),
                                                      ("gru_cell", nn.GRUCell, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_on_unbatched_input_match_torch(name, module_cls, gates, bias):
    torch.manual_seed(0)
    module = module_cls(3, 4, bias=bias).double()
    x, h = torch.randn(3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)  # 1-D: no batch
    weights = [module.weight_ih, module.weight_hh] + ([module.bias_ih, module.bias_hh] if bias else [])
    fn = getattr(Fn, name)
    if name == "lstm_cell":
        c = torch.randn(4, dtype=torch.float64)
        got, expected = fn(x, (h, c), *weights), module(x, (h, c))
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
            assert g.shape == (4,)
    else:
        got, expected = fn(x, h, *weights), module(x, h)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        assert got.shape == (4,)
    assert module.weight_ih.shape[0] == gates * 4


@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_make_cell_params_initialise_like_torch(cell, gates):
    """Without weight_scale every parameter is U(-1/√H, 1/√H), in torch's shapes, float32 by default."""
    params = gradients.make_cell_params(cell, 3, 16, seed=1)
    shapes = {"weight_ih": (gates * 16, 3), "weight_hh": (gates * 16, 16), "bias_ih": (gates * 16,),
              "bias_hh": (gates * 16,)}
    assert {k: tuple(v.shape) for k, v in params.items()} == shapes
    bound = 1 / 16 ** 0.5
    for name, p in params.items():
        assert p.dtype == torch.float32 and p.abs().max() <= bound, name
    every = torch.cat([p.flatten() for p in params.values()])
    assert every.min() < -0.9 * bound and every.max() > 0.9 * bound  # the whole interval
    assert gradients.CELL_GATES[cell] == gates


def test_make_cell_params_weight_scale_sets_the_recurrent_spectrum():
    """weight_scale draws each gate's H x H block from N(0, scale²/H): spectral radius close to scale."""
    H, scale = 100, 2.0
    params = gradients.make_cell_params("lstm", 3, H, weight_scale=scale, dtype=torch.float64)
    for block in params["weight_hh"].chunk(4):  # i, f, g, o
        assert block.mean().abs() < 0.02
        assert block.std() * H ** 0.5 == pytest.approx(scale, rel=0.05)
        assert torch.linalg.eigvals(block).abs().max() == pytest.approx(scale, rel=0.2)
    torch_like = gradients.make_cell_params("lstm", 3, H, dtype=torch.float64)
    assert torch.equal(params["weight_ih"], torch_like["weight_ih"])  # only weight_hh is redrawn


@pytest.mark.parametrize("weight_scale", [None, 1.5])
def test_make_cell_params_float32_are_the_float64_ones_rounded(weight_scale):
    """One draw in float64 for every dtype: a seed gives the same parameters, float64 at full precision."""
    p64 = gradients.make_cell_params("gru", 3, 8, weight_scale=weight_scale, seed=4, dtype=torch.float64)
    p32 = gradients.make_cell_params("gru", 3, 8, weight_scale=weight_scale, seed=4)
    for name in p64:
        assert p64[name].dtype == torch.float64 and torch.equal(p32[name], p64[name].float()), name
        assert not torch.equal(p64[name], p64[name].float().double()), name  # not float32 numbers widened


def test_make_cell_params_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    a = gradients.make_cell_params("rnn", 2, 4, weight_scale=1.0, seed=5)
    assert torch.equal(torch.rand(3), expected)
    b = gradients.make_cell_params("rnn", 2, 4, weight_scale=1.0, seed=5)
    c = gradients.make_cell_params("rnn", 2, 4, weight_scale=1.0, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a) and not any(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_forget_bias_raises_the_lstm_forget_gate_only(cell):
    H = 4
    plain = gradients.make_cell_params(cell, 3, H, dtype=torch.float64)
    raised = gradients.make_cell_params(cell, 3, H, forget_bias=1.5, dtype=torch.float64)
    shift = torch.zeros_like(plain["bias_ih"])
    if cell == "lstm":
        shift[H:2 * H] = 1.5  # the forget gate's rows (order i, f, g, o)
    torch.testing.assert_close(raised["bias_ih"] - plain["bias_ih"], shift, rtol=0, atol=1e-15)
    for name in ("weight_ih", "weight_hh", "bias_hh"):
        assert torch.equal(raised[name], plain[name]), name


def test_make_cell_params_refuses_an_unknown_cell():
    with pytest.raises(ValueError, match="^make_cell_params: expected cell 'rnn', 'lstm' or 'gru', got 'LSTM'$"):
        gradients.make_cell_params("LSTM", 3, 4)
