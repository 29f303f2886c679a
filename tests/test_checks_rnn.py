"""Tests of the unit-01/02 exercises added with issue 11: ``rnn_forward``, ``rnn_step_backward``,
``rnn_backward`` (and the clip_grad_norm contract of issue 16). The cases of these checks and of
``rnn_cell`` and ``clip_grad_norm`` are pinned by the labels messages name them by.

The references' backward passes are verified against autograd with ``gradcheck`` (float64); each
check is fed the reference (passes), a function that raises NotImplementedError, and one function
per named mistake, written as a learner would write it, asserting the mistake's stable id.
"""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils import functional as Fn
from course_utils.checks.registry import EXERCISES
from course_utils.gradients import clip_grad_norm

F64 = torch.float64


# ------------------------------------------------------------ the references against autograd
class _StepByHand(torch.autograd.Function):
    """One tanh step whose backward is the reference ``rnn_step_backward``: gradcheck compares it with
    finite differences."""

    @staticmethod
    def forward(ctx, x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
        h = Fn.rnn_cell(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)
        ctx.save_for_backward(x, h_prev, h, weight_ih, weight_hh)
        return h

    @staticmethod
    def backward(ctx, dh):
        dx, dh_prev, dw_ih, dw_hh, db = Fn.rnn_step_backward(dh, *ctx.saved_tensors)
        return dx, dh_prev, dw_ih, dw_hh, db, db


class _SequenceByHand(torch.autograd.Function):
    """The loop over time whose backward is the reference ``rnn_backward``."""

    @staticmethod
    def forward(ctx, x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        hs, _ = Fn.rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
        ctx.save_for_backward(x, h0, hs, weight_ih, weight_hh)
        return hs

    @staticmethod
    def backward(ctx, dhs):
        dx, dh0, dw_ih, dw_hh, db = Fn.rnn_backward(dhs, *ctx.saved_tensors)
        return dx, dh0, dw_ih, dw_hh, db, db


def _params(T=5, N=3, H_in=4, H=6, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=F64) * scale).requires_grad_(True)

    return randn(T, N, H_in), randn(N, H, scale=0.5), randn(H, H_in, scale=0.5), randn(H, H, scale=0.5), \
        randn(H, scale=0.3), randn(H, scale=0.3)


def test_rnn_step_backward_passes_gradcheck():
    x, h0, *weights = _params()
    assert torch.autograd.gradcheck(_StepByHand.apply, (x[0], h0, *weights))


def test_rnn_backward_passes_gradcheck():
    assert torch.autograd.gradcheck(_SequenceByHand.apply, _params())
    assert torch.autograd.gradcheck(_SequenceByHand.apply, _params(T=1, N=1, H_in=2, H=3, seed=1))


def test_rnn_backward_matches_autograd_through_the_reference_forward():
    x, h0, w_ih, w_hh, b_ih, b_hh = _params(T=7, seed=2)
    hs, h_T = Fn.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
    dhs = torch.randn(hs.shape, dtype=F64, generator=torch.Generator().manual_seed(3))
    auto = torch.autograd.grad(hs, (x, h0, w_ih, w_hh, b_ih, b_hh), dhs)
    by_hand = Fn.rnn_backward(dhs, x.detach(), h0.detach(), hs.detach(), w_ih.detach(), w_hh.detach())
    for name, a, b in zip(("dx", "dh0", "dweight_ih", "dweight_hh", "dbias"), auto, by_hand):
        assert torch.allclose(a, b, atol=1e-12), name
    assert torch.allclose(auto[5], by_hand.dbias, atol=1e-12)  # both biases get the same gradient
    assert torch.equal(h_T, hs[-1])


def test_rnn_forward_matches_torch_rnn():
    x, h0, w_ih, w_hh, b_ih, b_hh = (t.detach() for t in _params(T=6, seed=4))
    layer = nn.RNN(4, 6).double()
    layer.load_state_dict({"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh})
    with torch.no_grad():
        output, h_n = layer(x, h0.unsqueeze(0))
    hs, h_T = Fn.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
    assert torch.allclose(hs, output, atol=1e-12) and torch.allclose(h_T, h_n[0], atol=1e-12)
    zeros, _ = Fn.rnn_forward(x, None, w_ih, w_hh, b_ih, b_hh)  # h0=None starts from zeros, like nn.RNN
    assert torch.allclose(zeros, layer(x)[0], atol=1e-12)


# ------------------------------------------------------------------------ registry and basics
CHECKS = [
    ("rnn_forward", checks.check_rnn_forward, Fn.rnn_forward, "01_rnn"),
    ("rnn_step_backward", checks.check_rnn_step_backward, Fn.rnn_step_backward, "02_gradients_through_time"),
    ("rnn_backward", checks.check_rnn_backward, Fn.rnn_backward, "02_gradients_through_time"),
]


@pytest.mark.parametrize("name, check, reference, unit", CHECKS)
def test_registered_and_reference_passes(name, check, reference, unit):
    exercise = EXERCISES[name]
    assert exercise.check is check and exercise.unit == unit and exercise.function == name
    dotted = f"course_utils.functional.{name}"
    assert any(dotted == f or dotted.startswith(f + ".") for f in exercise.forbidden), exercise.forbidden
    state = torch.get_rng_state()
    result = check(reference, max_points=4, quiet=True, watch=False)
    assert torch.equal(state, torch.get_rng_state())
    assert result.status == "passed" and result.points == 4 and result.mistakes == ()
    assert repr(result) == repr(check(reference, max_points=4, quiet=True, watch=False))


@pytest.mark.parametrize("name, check, reference, unit", CHECKS)
def test_not_implemented(name, check, reference, unit, capsys):
    def learner(*args, **kwargs):
        raise NotImplementedError()

    result = check(learner, max_points=4, quiet=True, watch=False)
    assert result.status == "not_implemented" and result.points == 0 and result.max_points == 4
    assert result.message == f"{name}: not implemented yet — write your code in the cell above and run it again."
    assert capsys.readouterr().err == ""
    check(learner)  # not quiet: one line on stderr for nbgrader
    assert capsys.readouterr().err == f"{name}: not implemented — 0/1 points\n"


def assert_named(result, mistake_id, max_points):
    """Wrong, no points, and exactly the named mistake (a tuple of ids: exactly these, in order)."""
    assert result.status == "wrong", result.message
    assert result.points == 0 and result.max_points == max_points
    expected = mistake_id if isinstance(mistake_id, tuple) else (mistake_id,)
    assert result.mistakes == expected, (result.mistakes, result.message)


# ------------------------------------------------------------------------------ rnn_forward
def cell(x_t, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    pre = x_t @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        pre = pre + b_ih + b_hh
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def forward_ok(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    h, states = h0, []
    for t in range(x.shape[0]):
        h = cell(x[t], h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        states.append(h)
    return torch.stack(states), h


def forward_last_only(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)[1]


def forward_last_twice(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    h = forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)[1]
    return h, h


def forward_batch_first(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    hs, h = forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return torch.stack(list(hs), dim=1), h


def forward_not_carried(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    states = [cell(x[t], h0, w_ih, w_hh, b_ih, b_hh, nonlinearity) for t in range(x.shape[0])]
    return torch.stack(states), states[-1]


def forward_from_zeros(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return forward_ok(x, torch.zeros_like(h0), w_ih, w_hh, b_ih, b_hh, nonlinearity)


def forward_same_input(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return forward_ok(x[:1].expand_as(x), h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)


def forward_states_before(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    h, states = h0, []
    for t in range(x.shape[0]):
        states.append(h)  # the bug: the state is stored before the step
        h = cell(x[t], h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return torch.stack(states), h


def forward_with_h0(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    hs, h = forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return torch.cat([h0[None], hs]), h


def forward_list_of_states(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    hs, h = forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return list(hs), h


def forward_first_as_last(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    hs, _ = forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return hs, hs[0]  # the bug: the first state for the last


def forward_always_tanh(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh)


@pytest.mark.parametrize("learner, mistake_id, text", [
    (forward_last_only, "returns_last_state_only", "only the last state"),
    (forward_last_twice, "returns_last_state_only", "only the last state"),
    (forward_batch_first, "stacked_wrong_dim", "stacked along the wrong dimension"),
    (forward_not_carried, "state_not_carried", "not carried from step to step"),
    (forward_from_zeros, "h0_ignored", "h0 is ignored"),
    (forward_same_input, "input_not_advanced", "every step reads the first input"),
    (forward_states_before, "hs_includes_h0", "the states *before* each step"),
    (forward_with_h0, "hs_includes_h0",
     "expected hs of shape (5, 3, 4), got (6, 3, 4): hs holds h_1 .. h_T, the states the T steps return, not h0"),
    (forward_always_tanh, "nonlinearity_ignored", "the `nonlinearity` argument is ignored"),
    (forward_first_as_last, "last_state_wrong", "h_T is the first state h_1, not the last one."),
    (forward_list_of_states, "states_not_stacked", "got a list of 5 items — `torch.stack(states)`"),
])
def test_rnn_forward_mistakes_are_named(learner, mistake_id, text):
    result = checks.check_rnn_forward(learner, max_points=2, quiet=True, watch=False)
    assert_named(result, mistake_id, 2)
    assert text in result.message


FORWARD_FIRST = "T=5, N=3, H_in=4, H=4, with biases, float32"


@pytest.mark.parametrize("learner, expected", [
    (lambda *a, **k: forward_ok(*a, **k)[0],
     "expected a pair (hs, h_T), got one tensor of shape (5, 3, 4) — return both: `return torch.stack(states), h`"),
    (lambda *a, **k: (*forward_ok(*a, **k), a[1]), "expected a pair (hs, h_T), got tuple (Tensor, Tensor, Tensor)"),
    (lambda *a, **k: (forward_ok(*a, **k)[0], None), "expected h_T to be a torch.Tensor, got None"),
    (lambda *a, **k: (forward_ok(*a, **k)[0], forward_ok(*a, **k)[1][None]),  # h_n of nn.RNN is (1, N, H)
     "expected h_T of shape (3, 4), got (1, 3, 4). Hint: h_T is the last state, (N, H), like h0."),
])
def test_rnn_forward_answer_that_is_not_the_pair_is_told_what_to_return(learner, expected):
    result = checks.check_rnn_forward(learner, max_points=2, quiet=True, watch=False)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ())
    assert result.message == f"rnn_forward: {expected} (for {FORWARD_FIRST})"


def forward_squeezed(x, h0, *args, **kwargs):
    hs, h = forward_ok(x, h0, *args, **kwargs)
    return hs.squeeze(0), h  # the bug: one step's hs loses its time dimension


def forward_h_alone_for_one_step(x, h0, *args, **kwargs):
    hs, h = forward_ok(x, h0, *args, **kwargs)
    return h if x.shape[0] == 1 else (hs, h)


@pytest.mark.parametrize("learner, expected", [
    (forward_squeezed,
     "expected hs of shape (1, 2, 2), got (2, 2). Hint: hs is (T, N, H): one state per step, time first like x."),
    (forward_h_alone_for_one_step,
     "expected a pair (hs, h_T), got one tensor of shape (2, 2) — return both: `return torch.stack(states), h`"),
])
def test_rnn_forward_one_step_answer_of_shape_n_h_is_not_called_the_last_state_only(learner, expected):
    """With T = 1 the last state is every state: an (N, H) answer is told the shape, not "only the last state"."""
    result = checks.check_rnn_forward(learner, max_points=2, quiet=True, watch=False)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ())
    assert result.message == f"rnn_forward: {expected} (for T=1, N=2, H_in=3, H=2, without biases, float64)"


def test_rnn_forward_states_stacked_wrong_where_the_shape_cannot_tell_are_named():
    """On the case with N = T, hs stacked along dim 1 has the right shape: the values name the mistake."""
    def learner(x, h0, *args, **kwargs):
        hs, h = forward_ok(x, h0, *args, **kwargs)
        return (hs.transpose(0, 1) if x.shape[0] == x.shape[1] else hs), h  # wrong on the N = T case only

    result = checks.check_rnn_forward(learner, max_points=2, quiet=True, watch=False)
    assert_named(result, "stacked_wrong_dim", 2)
    assert result.message.startswith("rnn_forward: wrong values for T=3, N=3, H_in=2, H=4, with biases, float64.")


def test_rnn_forward_written_differently_passes_and_in_place_is_caught():
    def forward_unbind(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        return forward_ok(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)

    assert checks.check_rnn_forward(forward_unbind, quiet=True, watch=False).passed

    def forward_in_place(x, h0, *args, **kwargs):
        hs, h = forward_ok(x, h0, *args, **kwargs)
        h0.zero_()
        return hs, h

    result = checks.check_rnn_forward(forward_in_place, quiet=True, watch=False)
    assert result.status == "wrong" and "changed its input `h0` in place" in result.message


def test_rnn_forward_unrecognised_values_show_the_first_difference():
    result = checks.check_rnn_forward(lambda *a, **k: (forward_ok(*a, **k)[0] * 1.01, forward_ok(*a, **k)[1]),
                                      quiet=True, watch=False)
    assert result.status == "wrong" and result.mistakes == ()
    assert "hs first differs at index" in result.message and "h_T is right; hs is not." in result.message


# ------------------------------------------------------------------------ rnn_step_backward
def step_ok(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da.sum(dim=0)


def step_no_derivative(dh, x, h_prev, h, w_ih, w_hh):
    da = dh
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da.sum(dim=0)


def step_derivative_tanh_again(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - torch.tanh(h) ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da.sum(dim=0)


def step_derivative_h_prev(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h_prev ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da.sum(dim=0)


def step_w_hh_transposed(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh.T, da.T @ x, da.T @ h_prev, da.sum(dim=0)


def step_w_ih_transposed(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih.T, da @ w_hh, da.T @ x, da.T @ h_prev, da.sum(dim=0)


def step_dw_transposed(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, x.T @ da, h_prev.T @ da, da.sum(dim=0)


def step_dw_hh_with_h(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h, da.sum(dim=0)


def step_dw_ih_transposed(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, x.T @ da, da.T @ h_prev, da.sum(dim=0)


def step_dw_hh_transposed(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, h_prev.T @ da, da.sum(dim=0)


def step_bias_mean(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da.mean(dim=0)


def step_bias_not_summed(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da


def step_swapped(dh, x, h_prev, h, w_ih, w_hh):
    dx, dh_prev, *rest = step_ok(dh, x, h_prev, h, w_ih, w_hh)
    return (dh_prev, dx, *rest)


def step_dh_prev_no_weight(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da, da.T @ x, da.T @ h_prev, da.sum(dim=0)


@pytest.mark.parametrize("learner, mistake_id", [
    (step_no_derivative, "missing_tanh_derivative"),
    (step_derivative_tanh_again, "tanh_derivative_of_tanh_h"),
    (step_derivative_h_prev, "tanh_derivative_of_h_prev"),
    (step_w_hh_transposed, "transposed_weight_hh"),
    (step_w_ih_transposed, "transposed_weight_ih"),
    (step_dw_transposed, ("transposed_weight_grad", "transposed_weight_grad")),  # one for each weight
    (step_dw_ih_transposed, "transposed_weight_grad"),
    (step_dw_hh_transposed, "transposed_weight_grad"),
    (step_dw_hh_with_h, "dweight_hh_uses_h_t"),
    (step_bias_mean, "bias_grad_mean"),
    (step_bias_not_summed, "bias_grad_not_summed"),
    (step_swapped, "swapped_outputs"),
    (step_dh_prev_no_weight, "dh_prev_missing_weight"),
])
def test_rnn_step_backward_mistakes_are_named(learner, mistake_id):
    assert_named(checks.check_rnn_step_backward(learner, max_points=4, quiet=True, watch=False), mistake_id, 4)


def test_rnn_step_backward_dw_ih_transposed_non_square_names_the_shape():
    def learner(dh, x, h_prev, h, w_ih, w_hh):
        dx, dh_prev, dw_ih, dw_hh, db = step_ok(dh, x, h_prev, h, w_ih, w_hh)
        return dx, dh_prev, (x.T @ (dh * (1 - h ** 2))) if w_ih.shape[0] != w_ih.shape[1] else dw_ih, dw_hh, db

    result = checks.check_rnn_step_backward(learner, quiet=True, watch=False)
    assert_named(result, "transposed_weight_grad", 1)
    assert "expected dweight_ih of shape (5, 3) (like weight_ih), got (3, 5)" in result.message


def test_rnn_step_backward_structure_messages():
    six = checks.check_rnn_step_backward(lambda *a: (*step_ok(*a), step_ok(*a)[-1]), quiet=True, watch=False)
    assert six.status == "wrong" and "got six — the two biases get the same gradient" in six.message
    one = checks.check_rnn_step_backward(lambda *a: step_ok(*a)[0], quiet=True, watch=False)
    assert one.status == "wrong" and "expected the five gradients (dx, dh_prev, dweight_ih" in one.message


def test_rnn_step_backward_in_place_on_dh_is_caught():
    def learner(dh, x, h_prev, h, w_ih, w_hh):
        dh *= 1 - h ** 2
        return dh @ w_ih, dh @ w_hh, dh.T @ x, dh.T @ h_prev, dh.sum(0)

    result = checks.check_rnn_step_backward(learner, quiet=True, watch=False)
    assert result.status == "wrong" and "changed its input `dh` in place" in result.message


# ----------------------------------------------------------------------------- rnn_backward
def make_backward(step=step_ok, rule=""):
    """A learner's BPTT loop built on ``step``, with one loop-level bug named by ``rule``."""

    def backward(dhs, x, h0, hs, w_ih, w_hh):
        T = x.shape[0]
        dw_ih, dw_hh, db = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(hs[0, 0])
        dh_next = torch.zeros_like(h0)
        dxs = []
        times = range(T) if rule == "forward" else range(T - 1, -1, -1)
        for t in times:
            if rule == "no_next":
                dh = dhs[t]
            elif rule == "no_output":
                dh = dhs[t] if t == T - 1 else dh_next
            else:
                dh = dhs[t] + dh_next
            dh_at_first = dh
            h_prev = hs[t - 1] if t > 0 else (torch.zeros_like(h0) if rule == "zero_h0" else h0)
            dx, dh_next, gw_ih, gw_hh, gb = step(dh, x[t], h_prev, hs[t], w_ih, w_hh)
            dxs.append(dx)
            if rule == "overwrite":
                dw_ih, dw_hh, db = gw_ih, gw_hh, gb
            elif rule == "last_only":
                if t == T - 1:
                    dw_ih, dw_hh, db = gw_ih, gw_hh, gb
            else:
                dw_ih, dw_hh, db = dw_ih + gw_ih, dw_hh + gw_hh, db + gb
        if rule != "forward" and rule != "dx_reversed":
            dxs = dxs[::-1]
        dh0 = dh_at_first if rule == "dh0_early" else dh_next
        return torch.stack(dxs), dh0, dw_ih, dw_hh, db
    return backward


def test_rnn_backward_learners_loop_passes():
    assert checks.check_rnn_backward(make_backward(), quiet=True, watch=False).passed


@pytest.mark.parametrize("learner, mistake_id", [
    (make_backward(step_no_derivative), "missing_tanh_derivative"),
    (make_backward(rule="no_next"), "missing_next_step_gradient"),
    (make_backward(rule="no_output"), "missing_output_gradient"),
    (make_backward(rule="last_only"), "weight_grads_last_step_only"),
    (make_backward(rule="overwrite"), "weight_grads_overwritten"),
    (make_backward(step_w_hh_transposed), "transposed_weight_hh"),
    (make_backward(step_w_ih_transposed), "transposed_weight_ih"),
    (make_backward(rule="zero_h0"), "h0_ignored"),
    (make_backward(step_dw_hh_with_h), "dweight_hh_uses_h_t"),
    (make_backward(rule="forward"), "loop_forward_in_time"),
    (make_backward(rule="dx_reversed"), "dx_in_reverse_order"),
    (make_backward(rule="dh0_early"), "dh0_not_through_first_step"),
    (make_backward(step_bias_not_summed), "bias_grad_not_summed"),
])
def test_rnn_backward_mistakes_are_named(learner, mistake_id):
    assert_named(checks.check_rnn_backward(learner, max_points=4, quiet=True, watch=False), mistake_id, 4)


def test_rnn_backward_in_place_on_dhs_is_caught():
    def learner(dhs, x, h0, hs, w_ih, w_hh):
        out = make_backward()(dhs, x, h0, hs, w_ih, w_hh)
        dhs[0] += 1  # the bug: accumulating into the caller's tensor
        return out

    result = checks.check_rnn_backward(learner, quiet=True, watch=False)
    assert result.status == "wrong" and "changed its input `dhs` in place" in result.message
    assert "dh = dhs[t] + dh_next" in result.message


# ----------------------------------------------------- backward: answers read, errors hinted
def backward_generator(dhs, x, h0, hs, w_ih, w_hh):
    return (g for g in make_backward()(dhs, x, h0, hs, w_ih, w_hh))


STEP_GRADS, SEQ_GRADS = "(dx, dh_prev, dweight_ih, dweight_hh, dbias)", "(dx, dh0, dweight_ih, dweight_hh, dbias)"
STEP_FIRST = "N=3, H_in=4, H=4, float32"
SEQ_FIRST = "T=5, N=3, H_in=4, H=4, float32, a loss on every output"


@pytest.mark.parametrize("check, learner, expected", [
    (checks.check_rnn_step_backward, lambda *a: dict(zip(("dx", "dh_prev", "dw_ih", "dw_hh", "db"), step_ok(*a))),
     f"rnn_step_backward: expected the five gradients {STEP_GRADS}, got dict (for {STEP_FIRST})"),
    (checks.check_rnn_step_backward, lambda *a: 0.5,
     f"rnn_step_backward: expected the five gradients {STEP_GRADS}, got float (for {STEP_FIRST})"),
    (checks.check_rnn_step_backward, lambda *a: step_ok(*a)[:4],
     f"rnn_step_backward: expected five gradients {STEP_GRADS}, got 4 (for {STEP_FIRST})"),
    (checks.check_rnn_backward, backward_generator,
     f"rnn_backward: expected the five gradients {SEQ_GRADS}, got generator (for {SEQ_FIRST})"),
])
def test_backward_answer_that_is_not_five_gradients_is_told_what_to_return(check, learner, expected):
    result = check(learner, max_points=2, quiet=True, watch=False)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ())
    assert result.message == expected


def step_bias_keepdim(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da.sum(dim=0, keepdim=True)


def backward_dh0_with_time(dhs, x, h0, hs, w_ih, w_hh):
    dx, dh0, *rest = make_backward()(dhs, x, h0, hs, w_ih, w_hh)
    return dx, dh0[None], *rest


@pytest.mark.parametrize("check, learner, expected", [
    (checks.check_rnn_step_backward, lambda *a: (step_ok(*a)[0].T, *step_ok(*a)[1:]),
     f"rnn_step_backward: expected dx of shape (3, 4), got (4, 3). Hint: dx has the shape of x. (for {STEP_FIRST})"),
    (checks.check_rnn_step_backward, step_bias_keepdim,
     ("rnn_step_backward: expected dbias of shape (4,), got (1, 4). Hint: dbias has the shape of a bias, (H,). "
      f"(for {STEP_FIRST})")),
    (checks.check_rnn_backward, backward_dh0_with_time,
     f"rnn_backward: expected dh0 of shape (3, 4), got (1, 3, 4). Hint: dh0 has the shape of h0. (for {SEQ_FIRST})"),
])
def test_backward_gradient_of_the_wrong_shape_is_told_the_shape_it_has(check, learner, expected):
    result = check(learner, max_points=2, quiet=True, watch=False)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ())
    assert result.message == expected


def step_da_times_x(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da @ w_ih, da @ w_hh, da @ x, da.T @ h_prev, da.sum(dim=0)  # the bug: `da @ x` for `da.T @ x`


def step_elementwise(dh, x, h_prev, h, w_ih, w_hh):
    da = dh * (1 - h ** 2)
    return da * w_ih, da @ w_hh, da.T @ x, da.T @ h_prev, da.sum(dim=0)  # the bug: `*` for `@`


def backward_never_looping(dhs, x, h0, hs, w_ih, w_hh):
    dxs = [step_ok(dhs[t], x[t], hs[t - 1], hs[t], w_ih, w_hh)[0] for t in range(x.shape[0] - 1, 0, 1)]
    return torch.stack(dxs), h0, w_ih, w_hh, hs[0, 0]  # stack of an empty list


STEP_SHAPES = "dh, h_prev and h are (N, H), x is (N, H_in), weight_ih is (H, H_in), weight_hh is (H, H)"
SEQ_SHAPES = ("dhs and hs are (T, N, H), x is (T, N, H_in), h0 is (N, H), weight_ih is (H, H_in), "
              "weight_hh is (H, H)")
MATMUL_HINT = "; with da = ∂L/∂a_t of shape (N, H), `da @ weight_ih` is (N, H_in) and `da.T @ x` is (H, H_in)."


@pytest.mark.parametrize("check, learner, error, shapes", [
    (checks.check_rnn_step_backward, step_da_times_x, "mat1 and mat2 shapes cannot be multiplied", STEP_SHAPES),
    (checks.check_rnn_step_backward, step_elementwise, "must match the size of tensor b", STEP_SHAPES),
    (checks.check_rnn_backward, make_backward(step_da_times_x), "cannot be multiplied", SEQ_SHAPES),
    (checks.check_rnn_backward, make_backward(step_elementwise), "must match", SEQ_SHAPES),
    (checks.check_rnn_backward, backward_never_looping, "stack expects a non-empty TensorList", None),
])
def test_backward_shape_errors_get_the_shapes_hint_and_other_errors_none(check, learner, error, shapes):
    result = check(learner, max_points=2, quiet=True, watch=False)
    assert (result.status, result.points) == ("error", 0)
    assert "raised RuntimeError: " in result.message and error in result.message
    if shapes is None:
        assert "Hint" not in result.message
    else:
        assert result.message.endswith(f"\nHint: check the shapes of your matrix products: {shapes}{MATMUL_HINT}")


# ------------------------------------------------------------------------- the cases, pinned
class Spoiler:
    """Answers as the reference does and records each call's arguments; the answer to call ``spoil`` is 0.5 off."""

    def __init__(self, reference, spoil=None):
        self.reference, self.spoil, self.calls = reference, spoil, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        out = self.reference(*args, **kwargs)
        return _shifted(out) if len(self.calls) - 1 == self.spoil else out


def _shifted(out):
    if isinstance(out, torch.Tensor):
        return out + 0.5
    return [_shifted(o) for o in out] if isinstance(out, list) else tuple(_shifted(o) for o in out)


CASE_CHECKS = {name: (check, reference) for name, check, reference, _ in CHECKS}
CASE_CHECKS["clip_grad_norm"] = (checks.check_clip_grad_norm, clip_grad_norm)
CASE_CHECKS["rnn_cell"] = (checks.check_rnn_cell, Fn.rnn_cell)

#: the label of every case each check runs, in order: what a message names a case by
CASE_LABELS = {
    "rnn_forward": [
        "T=5, N=3, H_in=4, H=4, with biases, float32",
        "T=4, N=2, H_in=3, H=5, with biases, float64",
        "T=6, N=1, H_in=2, H=3, without biases, float32",
        "T=3, N=3, H_in=2, H=4, with biases, float64",
        "T=4, N=2, H_in=3, H=3, with biases, float32, nonlinearity='relu'",
        "T=1, N=2, H_in=3, H=2, without biases, float64",
    ],
    "rnn_step_backward": [
        "N=3, H_in=4, H=4, float32",
        "N=2, H_in=3, H=5, float64",
        "N=1, H_in=2, H=3, float32",
        "N=4, H_in=5, H=3, float64",
    ],
    "rnn_backward": [
        "T=5, N=3, H_in=4, H=4, float32, a loss on every output",
        "T=4, N=2, H_in=3, H=5, float64, a loss on every output",
        "T=6, N=1, H_in=2, H=3, float64, a loss on the last state only",
        "T=3, N=2, H_in=3, H=2, float32, a loss on every output",
        "T=1, N=2, H_in=2, H=3, float64, a loss on every output",
    ],
    "rnn_cell": [
        "N=3, H_in=4, H=4, with biases, float32",
        "N=4, H_in=3, H=5, with biases, float32",
        "N=1, H_in=4, H=2, with biases, float32",
        "N=3, H_in=5, H=3, without biases, float32",
        "N=2, H_in=3, H=4, with biases, float64",
        "N=1, H_in=2, H=3, without biases, float64",
        "N=3, H_in=3, H=5, with biases, float32, nonlinearity='relu'",
        "N=2, H_in=3, H=4, with biases, float64, nonlinearity='tanh'",
    ],
    "clip_grad_norm": [
        "3 gradients of shapes (3, 4), (5,), (2, 2, 2), float32, max_norm=1.0 (joint norm above max_norm)",
        "2 gradients of shapes (4, 3), (6,), float32, max_norm=5.0 (joint norm below max_norm)",
        "3 gradients of shapes (2, 3), (3,), (4, 1), float64, max_norm=2.5 (joint norm above max_norm)",
        "1 gradient of shapes (7,), float64, max_norm=1.5 (joint norm above max_norm)",
        "2 gradients of shapes (3,), (2, 2), float32, max_norm=0.5 (joint norm above max_norm)",
        "2 gradients of shapes (3,), (2, 2), float64, max_norm=1.0 (joint norm below max_norm)",
    ],
}


def _calls(name):
    check, reference = CASE_CHECKS[name]
    recorder = Spoiler(reference)
    assert check(recorder, quiet=True, watch=False).passed
    return recorder.calls


@pytest.mark.parametrize("name", sorted(CASE_LABELS))
def test_the_cases_are_pinned_by_their_labels(name):
    """A wrong answer on case k is reported with case k's label; the passed message counts the cases."""
    check, reference = CASE_CHECKS[name]
    labels = CASE_LABELS[name]
    assert len(_calls(name)) == len(labels)
    for k, label in enumerate(labels):
        result = check(Spoiler(reference, spoil=k), quiet=True, watch=False)
        assert result.message.split("\n")[0] == f"{name}: wrong values for {label}.", k
    passed = check(reference, quiet=True, watch=False).message
    assert passed.startswith(f"{name}: passed — matches the reference on {len(labels)} "), passed


def _dtype(t) -> str:
    return str(t.dtype).removeprefix("torch.")


def _described(name, args, kwargs) -> str:
    """A case read off its tensors, in the words of the check's labels."""
    if name == "rnn_forward":
        x, h0 = args[:2]
        biases = "with" if len(args) == 6 and args[4] is not None else "without"
        act = f", nonlinearity='{kwargs['nonlinearity']}'" if kwargs.get("nonlinearity", "tanh") != "tanh" else ""
        T, N, H_in = x.shape
        return f"T={T}, N={N}, H_in={H_in}, H={h0.shape[1]}, {biases} biases, {_dtype(x)}{act}"
    if name == "rnn_cell":
        x, h = args[:2]
        biases = "with" if len(args) == 6 and args[4] is not None else "without"
        act = f", nonlinearity='{kwargs['nonlinearity']}'" if kwargs else ""
        return f"N={x.shape[0]}, H_in={x.shape[1]}, H={h.shape[1]}, {biases} biases, {_dtype(x)}{act}"
    if name == "rnn_step_backward":
        dh, x, h_prev, h = args[:4]
        assert dh.shape == h_prev.shape == h.shape
        return f"N={x.shape[0]}, H_in={x.shape[1]}, H={h.shape[1]}, {_dtype(x)}"
    if name == "rnn_backward":
        dhs, x = args[:2]
        every = all(bool(dhs[t].abs().sum() > 0) for t in range(len(dhs)))
        last_only = bool((dhs[:-1] == 0).all() and dhs[-1].abs().sum() > 0)
        loss = "a loss on every output" if every else "a loss on the last state only" if last_only else "?"
        T, N, H_in = x.shape
        return f"T={T}, N={N}, H_in={H_in}, H={dhs.shape[2]}, {_dtype(x)}, {loss}"
    grads, max_norm = args
    norm = float(torch.linalg.vector_norm(torch.cat([g.double().flatten() for g in grads])))
    shapes = ", ".join(str(tuple(g.shape)) for g in grads)
    count = f"{len(grads)} gradient{'s' if len(grads) != 1 else ''}"
    side = "above" if norm > max_norm else "below"
    return f"{count} of shapes {shapes}, {_dtype(grads[0])}, max_norm={max_norm} (joint norm {side} max_norm)"


@pytest.mark.parametrize("name", sorted(CASE_LABELS))
def test_case_labels_state_the_true_cases(name):
    """Sizes, dtype, biases, nonlinearity, where the loss is, the side of max_norm: as the label says."""
    assert [_described(name, args, kwargs) for args, kwargs in _calls(name)] == CASE_LABELS[name]


def _digest(calls) -> str:
    """A digest of the cases' arguments: shapes, dtypes and values (rounded to 10 decimals), keywords."""
    h = hashlib.sha256()

    def add(v):
        if isinstance(v, torch.Tensor):
            h.update(repr((tuple(v.shape), str(v.dtype))).encode())
            h.update(v.to(torch.float64).numpy().round(10).tobytes())
        elif isinstance(v, (tuple, list)):
            for item in v:
                add(item)
        else:
            h.update(repr(v).encode())

    for args, kwargs in calls:
        add(args)
        add(sorted(kwargs.items()))
    return h.hexdigest()[:16]


#: the cases' values at the default seeds (clip_grad_norm's are pinned in test_checks_contract.py).
#: A change here is a change of what learners are judged on: update a digest only on purpose.
PINNED_CASES = {"rnn_forward": "37aebd2409e9acf4", "rnn_step_backward": "75bd95d7b2803613", "rnn_backward": "4232367f45ed8dcf"}


@pytest.mark.parametrize("name", sorted(PINNED_CASES))
def test_the_case_values_are_pinned(name):
    assert _digest(_calls(name)) == PINNED_CASES[name]


# -------------------------------------------------------------- clip_grad_norm (issue 16)
def _clip(grads, max_norm):
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * scale for g in grads], total


@pytest.mark.parametrize("learner, mistake_id, text", [
    (lambda g, m: (_clip(g, m)[0], _clip(g, m)[1].item()), "total_norm_not_a_tensor",
     ("expected total_norm to be a 0-dimensional tensor (as `torch.nn.utils.clip_grad_norm_` returns), "
      "got a Python float")),
    (lambda g, m: (_clip(g, m)[0], float(_clip(g, m)[1])), "total_norm_not_a_tensor", "without `.item()`"),
    (lambda g, m: (_clip(g, m)[0], _clip(g, m)[1].reshape(1)), "total_norm_not_0d",
     "got a tensor of shape (1,) — `.reshape(())`"),
])
def test_clip_total_norm_must_be_a_0d_tensor(learner, mistake_id, text):
    result = checks.check_clip_grad_norm(learner, max_points=2, quiet=True, watch=False)
    assert_named(result, mistake_id, 2)
    assert text in result.message


def test_clip_returning_a_0d_tensor_passes():
    assert checks.check_clip_grad_norm(_clip, quiet=True, watch=False).passed
    assert _clip([torch.ones(3)], 1.0)[1].dim() == 0
