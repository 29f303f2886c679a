"""Tests of the unit-01/02 exercises added with issue 11: ``rnn_forward``, ``rnn_step_backward``,
``rnn_backward`` (and the clip_grad_norm contract of issue 16).

The references' backward passes are verified against autograd with ``gradcheck`` (float64); each
check is fed the reference (passes), a function that raises NotImplementedError, and one function
per named mistake, written as a learner would write it, asserting the mistake's stable id.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils import functional as Fn
from course_utils.checks.registry import EXERCISES

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
    assert result.status == "wrong", result.message
    assert result.points == 0 and result.max_points == max_points
    assert mistake_id in result.mistakes, (result.mistakes, result.message)


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
    (forward_with_h0, "hs_includes_h0", "not h0"),
    (forward_always_tanh, "nonlinearity_ignored", "the `nonlinearity` argument is ignored"),
    (forward_list_of_states, "states_not_stacked", "got a list of 5 items — `torch.stack(states)`"),
])
def test_rnn_forward_mistakes_are_named(learner, mistake_id, text):
    result = checks.check_rnn_forward(learner, max_points=2, quiet=True, watch=False)
    assert_named(result, mistake_id, 2)
    assert text in result.message


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
    (step_dw_transposed, "transposed_weight_grad"),
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
