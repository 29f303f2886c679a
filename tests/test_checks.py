"""Tests of course_utils.checks: right answers pass, each named mistake is recognised and named.

The wrong implementations below are the mistakes learners make; each test asserts on the
message a learner would read.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils import functional as Fn
from course_utils.checks import CheckResult
from course_utils.gradients import clip_grad_norm as reference_clip


def lin(x, w, b=None):
    return x @ w.T + (b if b is not None else 0)


# ------------------------------------------------------------------ results
def test_check_result_fields_and_text():
    r = CheckResult("rnn_cell", "passed", 2, 2, "rnn_cell: passed — fine.")
    assert r.passed is True and r.points == 2 and r.max_points == 2
    assert str(r) == repr(r) == "✅ rnn_cell: passed — fine.\n(2/2 points)"
    assert "0x" not in repr(r)
    md = r._repr_markdown_()
    assert md.startswith("✅ rnn\\_cell") and "*2/2 points*" in md
    assert r.to_dict() == {"exercise": "rnn_cell", "status": "passed", "points": 2, "max_points": 2,
                           "message": "rnn_cell: passed — fine.", "mistakes": [], "passed": True}
    wrong = CheckResult("gru_cell", "wrong", 0, 1.5, "gru_cell: wrong values.\nLikely mistake: `z_t` swapped.")
    assert wrong.passed is False
    assert str(wrong).endswith("(0/1.5 points)")
    assert "`z_t` swapped" in wrong._repr_markdown_()  # code spans are not escaped


def test_check_result_rejects_unknown_status():
    with pytest.raises(ValueError, match="expected status in .* got 'ok'"):
        CheckResult("rnn_cell", "ok", 0, 1, "")


@pytest.mark.parametrize("check, reference", [
    (checks.check_rnn_cell, Fn.rnn_cell),
    (checks.check_lstm_cell, Fn.lstm_cell),
    (checks.check_gru_cell, Fn.gru_cell),
    (checks.check_clip_grad_norm, reference_clip),
])
def test_reference_passes_and_global_rng_untouched(check, reference):
    state = torch.get_rng_state()
    result = check(reference, max_points=3)
    assert torch.equal(state, torch.get_rng_state())
    assert result.status == "passed" and result.passed and result.points == 3 and result.max_points == 3
    assert "passed — matches the reference" in result.message
    assert repr(result) == repr(check(reference, max_points=3))  # deterministic text


@pytest.mark.parametrize("check, name", [
    (checks.check_rnn_cell, "rnn_cell"),
    (checks.check_lstm_cell, "lstm_cell"),
    (checks.check_gru_cell, "gru_cell"),
    (checks.check_clip_grad_norm, "clip_grad_norm"),
    (checks.check_adding_model, "build_model"),
])
def test_not_implemented(check, name):
    def learner(*args, **kwargs):
        # YOUR CODE HERE
        raise NotImplementedError()

    result = check(learner)
    assert result.status == "not_implemented" and not result.passed and result.points == 0
    assert result.exercise == name
    assert result.message == (f"{name}: not implemented yet — write your code in the cell above and run it again.")
    assert "Traceback" not in str(result)


def test_error_points_at_the_learners_line():
    def my_rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
        raise ValueError("oops, bad shapes")

    result = checks.check_rnn_cell(my_rnn_cell)
    assert result.status == "error" and result.points == 0
    msg = result.message
    assert "rnn_cell: your function raised ValueError: oops, bad shapes" in msg
    assert "test_checks.py, in `my_rnn_cell`" in msg
    assert '`raise ValueError("oops, bad shapes")`' in msg
    assert "course_utils" not in msg and "_core" not in msg and "Traceback" not in msg


def test_error_inside_torch_reports_the_learners_line_and_a_shape_hint():
    def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = state
        gates = x @ weight_ih + h @ weight_hh  # forgot .T
        return gates.chunk(2, dim=-1)

    msg = checks.check_lstm_cell(lstm_cell).message
    assert "raised RuntimeError" in msg
    assert "`gates = x @ weight_ih + h @ weight_hh  # forgot .T`" in msg
    assert "Hint: check the shapes of your matrix products" in msg
    assert "weight_ih is (4H, H_in)" in msg
    assert "course_utils" not in msg


def test_wrong_signature_gets_the_signature_as_a_hint():
    def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, activation="tanh"):
        return rnn_ok(x, h, weight_ih, weight_hh, bias_ih, bias_hh, activation)

    result = checks.check_rnn_cell(rnn_cell)
    assert result.status == "error"
    assert "unexpected keyword argument 'nonlinearity'" in result.message
    assert ('Hint: the function is called as `rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, '
            'nonlinearity="tanh")`') in result.message


def test_not_callable():
    result = checks.check_gru_cell(None)
    assert result.status == "error"
    assert "expected a function, got None" in result.message


# ---------------------------------------------------------------------- RNN
def rnn_ok(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    return act(lin(x, w_ih, b_ih) + lin(h, w_hh, b_hh))


def rnn_relu(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return torch.relu(lin(x, w_ih, b_ih) + lin(h, w_hh, b_hh))


def rnn_ignores_nonlinearity(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return torch.tanh(lin(x, w_ih, b_ih) + lin(h, w_hh, b_hh))


def rnn_no_bias_hh(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return torch.tanh(lin(x, w_ih, b_ih) + h @ w_hh.T)


def rnn_x_at_w(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return torch.tanh(x @ w_ih + (b_ih if b_ih is not None else 0) + lin(h, w_hh, b_hh))


def rnn_h_at_w(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return torch.tanh(lin(x, w_ih, b_ih) + h @ w_hh + (b_hh if b_hh is not None else 0))


def rnn_returns_h(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return h


def rnn_ignores_h(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    return torch.tanh(lin(x, w_ih, b_ih) + (b_hh if b_hh is not None else 0))


@pytest.mark.parametrize("learner, expected", [
    (rnn_relu, "relu is applied where tanh belongs"),
    (rnn_ignores_nonlinearity, "the `nonlinearity` argument is ignored"),
    (rnn_no_bias_hh, "the bias `bias_hh` is never added (missing bias)"),
    (rnn_x_at_w, "`x @ weight_ih` is used where `x @ weight_ih.T` belongs"),
    (rnn_h_at_w, "`h @ weight_hh` is used where `h @ weight_hh.T` belongs"),
    (rnn_returns_h, "the hidden state is not updated"),
    (rnn_ignores_h, "the previous hidden state h is ignored"),
])
def test_rnn_mistakes_are_named(learner, expected):
    result = checks.check_rnn_cell(learner)
    assert result.status == "wrong" and result.points == 0
    assert result.message.startswith("rnn_cell: wrong values for N=")
    assert f"Likely mistake: {expected}" in result.message


def test_rnn_hidden_state_ignored_only_without_biases_is_named():
    """h @ weight_hh.T written inside the `if bias_hh is not None` branch: right with biases, h ignored without."""
    def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        pre = lin(x, w_ih, b_ih)
        if b_hh is not None:
            pre = pre + lin(h, w_hh, b_hh)
        return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)

    result = checks.check_rnn_cell(rnn_cell, quiet=True)
    assert (result.status, result.mistakes) == ("wrong", ("hidden_state_ignored",))
    assert result.message.startswith("rnn_cell: wrong values for N=3, H_in=5, H=3, without biases, float32.")


def test_rnn_written_differently_still_passes():
    assert checks.check_rnn_cell(rnn_ok).passed


def test_rnn_returns_none():
    def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        h_new = rnn_ok(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)  # noqa: F841 (the bug: no return)

    result = checks.check_rnn_cell(rnn_cell)
    assert result.status == "wrong"
    assert "returned None — did you forget the `return` statement?" in result.message


def test_rnn_wrong_shape():
    result = checks.check_rnn_cell(lambda *a, **k: rnn_ok(*a, **k)[0])
    assert result.status == "wrong"
    assert "expected h_t of shape (3, 4), got (4,)" in result.message


def test_rnn_wrong_dtype():
    result = checks.check_rnn_cell(lambda *a, **k: rnn_ok(*a, **k).float())
    assert result.status == "wrong"
    assert "expected h_t of dtype torch.float64 (the dtype of the inputs), got torch.float32" in result.message
    assert "float64" in result.message.split("(for ")[1]


def test_rnn_not_a_tensor():
    result = checks.check_rnn_cell(lambda *a, **k: rnn_ok(*a, **k).numpy())
    assert "expected h_t to be a torch.Tensor, got ndarray" in result.message
    assert isinstance(np.zeros(1), np.ndarray)


def test_unknown_mistake_shows_first_difference():
    result = checks.check_rnn_cell(lambda *a, **k: rnn_ok(*a, **k) + 0.5)
    assert result.status == "wrong"
    assert "Likely mistake" not in result.message
    assert "h_t first differs at index (0, 0): expected " in result.message
    assert "largest absolute error 0.5, " in result.message


# --------------------------------------------------------------------- LSTM
def make_lstm(order="ifgo", acts=("sigmoid", "sigmoid", "tanh", "sigmoid"), use_b_ih=True, out_tanh=True,
              returns="hc"):
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}

    def lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
        h, c = state
        gates = lin(x, w_ih, b_ih if use_b_ih else None) + lin(h, w_hh, b_hh)
        parts = dict(zip(order, gates.chunk(4, dim=-1)))
        i, f, g, o = (act[a](parts[k]) for k, a in zip("ifgo", acts))
        c_new = f * c + i * g
        h_new = o * (torch.tanh(c_new) if out_tanh else c_new)
        if returns == "ch":
            return c_new, h_new
        if returns == "old":
            return h, c
        return h_new, c_new
    return lstm_cell


@pytest.mark.parametrize("learner, expected", [
    (make_lstm(order="ifog"), "gates in the wrong order: your code reads them as i, f, o, g"),
    (make_lstm(order="figo"), "gates in the wrong order: your code reads them as f, i, g, o"),
    (make_lstm(acts=("tanh", "tanh", "tanh", "tanh")), "tanh where sigmoid belongs: every gate uses tanh"),
    (make_lstm(acts=("sigmoid", "tanh", "tanh", "sigmoid")), "tanh where sigmoid belongs: the forget gate f"),
    (make_lstm(acts=("sigmoid",) * 4), "sigmoid where tanh belongs: the gate gate g"),
    (make_lstm(use_b_ih=False), "the bias `bias_ih` is never added (missing bias)"),
    (make_lstm(out_tanh=False), "`c` instead of `tanh(c)` in the output"),
    (make_lstm(returns="ch"), "your function returns (c, h); the order is (h, c)"),
    (make_lstm(returns="old"), "the state is not updated"),
])
def test_lstm_mistakes_are_named(learner, expected):
    result = checks.check_lstm_cell(learner)
    assert result.status == "wrong"
    assert f"Likely mistake: {expected}" in result.message


def test_lstm_right_answer_written_differently_passes():
    assert checks.check_lstm_cell(make_lstm()).passed


def test_lstm_in_place_update_of_the_state_is_wrong():
    def lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
        h, c = state
        i, f, g, o = (lin(x, w_ih, b_ih) + lin(h, w_hh, b_hh)).chunk(4, dim=-1)
        c.mul_(f.sigmoid()).add_(i.sigmoid() * g.tanh())  # changes the caller's c
        return o.sigmoid() * c.tanh(), c

    result = checks.check_lstm_cell(lstm_cell)
    assert result.status == "wrong"
    assert "the values are right, but your function changed its input `c` in place" in result.message


def test_lstm_returns_only_h():
    result = checks.check_lstm_cell(lambda *a: make_lstm()(*a)[0])
    assert "expected a pair (h_t, c_t), got a single Tensor" in result.message


def test_lstm_only_h_wrong_says_c_is_right():
    def lstm_cell(*args):
        h, c = make_lstm()(*args)
        return h * 1.5, c

    msg = checks.check_lstm_cell(lstm_cell).message
    assert "c_t is right; h_t is not." in msg and "h_t first differs" in msg


# ---------------------------------------------------------------------- GRU
def make_gru(order="rzn", swap_z=False, reset="after", z_act=torch.sigmoid, use_b_hh=True, returns="h"):
    def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        b_hh = b_hh if use_b_hh else None
        xi = dict(zip(order, lin(x, w_ih, b_ih).chunk(3, dim=-1)))
        wh = dict(zip(order, w_hh.chunk(3)))
        bh = dict(zip(order, b_hh.chunk(3))) if b_hh is not None else dict.fromkeys(order)
        r = torch.sigmoid(xi["r"] + lin(h, wh["r"], bh["r"]))
        z = z_act(xi["z"] + lin(h, wh["z"], bh["z"]))
        if reset == "after":
            n = torch.tanh(xi["n"] + r * lin(h, wh["n"], bh["n"]))
        elif reset == "before":
            n = torch.tanh(xi["n"] + lin(r * h, wh["n"], bh["n"]))
        else:  # bias outside
            n = torch.tanh(xi["n"] + r * lin(h, wh["n"]) + (bh["n"] if bh["n"] is not None else 0))
        if returns == "n":
            return n
        return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h
    return gru_cell


@pytest.mark.parametrize("learner, expected", [
    (make_gru(swap_z=True), "`z` and `1 − z` are swapped"),
    (make_gru(reset="before"), "the reset gate is applied before the hidden matmul, W_hn (r ⊙ h) + b_hn"),
    (make_gru(reset="before", swap_z=True), "this is the textbook GRU of Chung et al. (2014), not PyTorch's"),
    (make_gru(reset="bias_outside"), "the bias b_hn is added outside the reset gate"),
    (make_gru(order="zrn"), "gates in the wrong order: your code reads them as z, r, n"),
    (make_gru(z_act=torch.tanh), "tanh where sigmoid belongs: the update gate z"),
    (make_gru(use_b_hh=False), "the bias `bias_hh` is never added (missing bias)"),
    (make_gru(returns="n"), "your function returns the candidate n_t"),
    (lambda x, h, *rest: h, "the hidden state is not updated"),
])
def test_gru_mistakes_are_named(learner, expected):
    result = checks.check_gru_cell(learner)
    assert result.status == "wrong"
    assert f"Likely mistake: {expected}" in result.message


def test_gru_right_answer_written_differently_passes():
    assert checks.check_gru_cell(make_gru()).passed


def test_gru_wrong_dtype_and_shape():
    dtype = checks.check_gru_cell(lambda *a: make_gru()(*a).to(torch.float32))
    assert "expected h_t of dtype torch.float64" in dtype.message
    shape = checks.check_gru_cell(lambda *a: make_gru()(*a).T)
    assert "expected h_t of shape (4, 5), got (5, 4)" in shape.message


# ----------------------------------------------------------------- clipping
def joint_norm(grads):
    return torch.sqrt(sum((g ** 2).sum() for g in grads))


def clip_ok(grads, max_norm):
    total = joint_norm(grads)
    scale = min(1.0, max_norm / float(total)) if float(total) > 0 else 1.0
    return [g * scale for g in grads], total


def clip_per_tensor(grads, max_norm):
    out = [g * min(1.0, max_norm / max(float(g.norm()), 1e-12)) for g in grads]
    return out, joint_norm(grads)


def clip_scales_up(grads, max_norm):
    total = joint_norm(grads)
    return [g * (max_norm / total) for g in grads], total


def clip_squared_norm(grads, max_norm):
    clipped, total = clip_ok(grads, max_norm)
    return clipped, total ** 2


def clip_norm_after(grads, max_norm):
    clipped, _ = clip_ok(grads, max_norm)
    return clipped, joint_norm(clipped)


def clip_in_place(grads, max_norm):
    total = joint_norm(grads)
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / total)
    return grads, total


def clip_per_tensor_and_squared(grads, max_norm):
    out, total = clip_per_tensor(grads, max_norm)
    return out, total ** 2


@pytest.mark.parametrize("learner, expected", [
    (clip_per_tensor, ["Likely mistake: per-tensor clipping"]),
    (clip_scales_up, ["Likely mistake: gradients that are already below max_norm are scaled up"]),
    (clip_squared_norm, ["Likely mistake: total_norm is the squared norm"]),
    (clip_norm_after, ["Likely mistake: total_norm is the norm after clipping"]),
    (clip_per_tensor_and_squared, ["Likely mistake: per-tensor clipping", "total_norm is the squared norm"]),
    (clip_in_place, ["your function changed its input `grads[0]`", "in place", "[g * scale for g in grads]"]),
])
def test_clip_mistakes_are_named(learner, expected):
    result = checks.check_clip_grad_norm(learner)
    assert result.status == "wrong"
    for text in expected:
        assert text in result.message


def test_clip_without_eps_passes_and_a_float_norm_does_not():
    passed = checks.check_clip_grad_norm(clip_ok)  # no eps, scale as a Python float, 0-d tensor norm
    assert passed.passed and (passed.points, passed.max_points) == (1, 1)  # one point unless told otherwise
    as_float = checks.check_clip_grad_norm(lambda g, m: (clip_ok(g, m)[0], float(clip_ok(g, m)[1])), quiet=True)
    assert as_float.status == "wrong" and as_float.mistakes == ("total_norm_not_a_tensor",)


def test_clip_total_norm_accumulated_in_float64_passes():
    """total_norm is compared in the gradients' dtype: a norm of float32 gradients accumulated in float64 is right."""
    def in_float64(grads, max_norm):
        total = torch.sqrt(sum(g.double().pow(2).sum() for g in grads))
        return [g * min(1.0, max_norm / float(total)) for g in grads], total

    result = checks.check_clip_grad_norm(in_float64, quiet=True)
    assert result.passed, result.message


@pytest.mark.parametrize("learner, expected", [
    (lambda g, m: clip_ok(g, m)[0], "return the total norm too"),
    (lambda g, m: clip_ok(g, m)[::-1], "the order is (clipped_list, total_norm)"),
    (lambda g, m: (clip_ok(g, m)[0][:1], clip_ok(g, m)[1]), "expected clipped_list to hold 3 tensors"),
    (lambda g, m: (clip_ok(g, m)[0], torch.stack([x.norm() for x in g])),
     "expected total_norm to be a 0-dimensional tensor, got a tensor of shape (3,)"),
    (lambda g, m: None, "returned None"),
])
def test_clip_malformed_answers(learner, expected):
    result = checks.check_clip_grad_norm(learner)
    assert result.status == "wrong" and expected in result.message


def _clip_by(grads, max_norm, divisor):
    return [g * min(1.0, max_norm / float(divisor)) for g in grads]


def _norms(grads):
    return torch.stack([g.norm() for g in grads])


CLIP_LEARNERS = {
    "per_tensor_clipping": clip_per_tensor,
    "scales_up_small_gradients": clip_scales_up,
    "not_clipped": lambda g, m: ([x.clone() for x in g], joint_norm(g)),
    "squared_norm_scale": lambda g, m: (_clip_by(g, m, joint_norm(g) ** 2), joint_norm(g)),
    "summed_norms_scale": lambda g, m: (_clip_by(g, m, _norms(g).sum()), joint_norm(g)),
    "total_norm_squared": clip_squared_norm,
    "total_norm_summed": lambda g, m: (clip_ok(g, m)[0], _norms(g).sum()),
    "total_norm_max": lambda g, m: (clip_ok(g, m)[0], _norms(g).max()),
    "total_norm_after_clipping": clip_norm_after,
}


@pytest.mark.parametrize("mistake", sorted(CLIP_LEARNERS))
def test_every_clip_mistake_is_named(mistake):
    result = checks.check_clip_grad_norm(CLIP_LEARNERS[mistake], max_points=2, quiet=True)
    assert (result.status, result.points, result.max_points) == ("wrong", 0, 2), result.message
    assert result.mistakes == (mistake,), result.message
    assert result.message.startswith("clip_grad_norm: wrong values for ") and "\nLikely mistake: " in result.message


CLIP_FIRST = "3 gradients of shapes (3, 4), (5,), (2, 2, 2), float32, max_norm=1.0 (joint norm above max_norm)"


@pytest.mark.parametrize("learner, expected", [
    (lambda g, m: (torch.cat([x.flatten() for x in clip_ok(g, m)[0]]), joint_norm(g)),
     "expected clipped_list to be a list of tensors, got Tensor"),
    (lambda g, m: (min(1.0, m / float(joint_norm(g))), joint_norm(g)),
     "expected clipped_list to be a list of tensors, got float"),
    (lambda g, m: (clip_ok(g, m)[0], list(_norms(g))),
     "expected total_norm to be a 0-dimensional tensor, got list (Tensor, Tensor, Tensor)"),
    (lambda g, m: (clip_ok(g, m)[0], "1.0"), "expected total_norm to be a 0-dimensional tensor, got str"),
    (lambda g, m: (clip_ok(g, m)[0], True), "expected total_norm to be a 0-dimensional tensor, got bool"),
    (lambda g, m: (*clip_ok(g, m), min(1.0, m / float(joint_norm(g)))),
     "expected a pair (clipped_list, total_norm), got tuple (list (Tensor, Tensor, Tensor), Tensor, float)"),
])
def test_clip_answer_of_the_wrong_kind_is_told_what_was_expected(learner, expected):
    result = checks.check_clip_grad_norm(learner, max_points=2, quiet=True)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ())
    assert result.message == f"clip_grad_norm: {expected} (for {CLIP_FIRST})"


# ------------------------------------------------------------ adding model
FAST = {"seq_len": 8, "steps": 60, "batch_size": 32, "test_size": 200}


class MarkedSum(nn.Module):
    """Learns the adding problem without recurrence (a · Σ value·marker + b): the check's fast pass path."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))
        self.b = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return self.a * (x[..., 0] * x[..., 1]).sum(dim=1) + self.b  # (N,)


class RecurrentSum(nn.Module):
    """Learns the adding problem in a one-unit ReLU RNN over value·marker (fast: two weights to learn)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
        with torch.no_grad():
            self.rnn.weight_ih_l0.fill_(0.5)
            self.rnn.weight_hh_l0.fill_(0.8)

    def forward(self, x):
        out, _ = self.rnn((x[..., 0] * x[..., 1]).unsqueeze(-1))  # (N, T, 1)
        return out[:, -1, 0]  # (N,)


class FormulaWithIdleRNN(MarkedSum):
    """The closed-form answer plus a recurrent layer that barely matters: must not pass."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(2, 4, batch_first=True)

    def forward(self, x):
        return super().forward(x) + 1e-3 * self.rnn(x)[0][:, -1, 0]


class Constant(nn.Module):
    """Ignores its input: cannot beat predicting the mean."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(1))
        self.rnn = nn.RNN(2, 2, batch_first=True)  # present, never used

    def forward(self, x):
        return self.b.expand(x.shape[0])


class EveryStep(nn.Module):
    def __init__(self, squeeze_all=False):
        super().__init__()
        self.rnn = nn.GRU(2, 4, batch_first=True)
        self.head = nn.Linear(4, 1)
        self.squeeze_all = squeeze_all

    def forward(self, x):
        out, _ = self.rnn(x)
        if self.squeeze_all:
            return self.head(out[:, -1]).squeeze()  # (N,) but () when N = 1
        return self.head(out)  # (N, T, 1): one value per step


def test_adding_model_that_learns_passes_and_rng_untouched():
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    result = checks.check_adding_model(RecurrentSum, max_points=2, lr=0.05, num_threads=threads + 1, **FAST)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.get_num_threads() == threads
    assert result.status == "passed" and result.points == 2, result.message
    assert "the test MSE is below the target 0.05" in result.message


@pytest.mark.slow  # the default training budget: about 5 s on an idle CPU core
def test_adding_model_default_budget_passes_a_small_lstm():
    from course_utils.training import SequenceRegressor

    result = checks.check_adding_model(lambda: SequenceRegressor("lstm", 2, 32, impl="torch"))
    assert result.status == "passed", result.message


def test_adding_model_that_learns_too_little():
    result = checks.check_adding_model(RecurrentSum, lr=0.05, target_mse=1e-9, **FAST)
    assert result.status == "wrong" and "your model learns, but not enough" in result.message


def test_adding_model_that_does_not_learn():
    result = checks.check_adding_model(Constant, **FAST)
    assert result.status == "wrong"
    assert "your model does not learn" in result.message and "0.1667" in result.message


@pytest.mark.parametrize("build, expected", [
    (EveryStep, "got (4, 8, 1). It looks like one value per time step"),
    (lambda: EveryStep(squeeze_all=True), "`squeeze()` removed the batch dimension too"),
    (lambda: nn.LSTM(2, 4, batch_first=True), "Note that `nn.LSTM` returns `(output, (h_n, c_n))`"),
    (lambda: None, "build_model() returned None"),
    (lambda: "lstm", "expected build_model() to return an nn.Module, got str"),
    (lambda: nn.ReLU(), "no trainable parameters"),
])
def test_adding_model_wrong_structure(build, expected):
    result = checks.check_adding_model(build, **FAST)
    assert result.status == "wrong" and expected in result.message


def test_adding_model_must_learn_in_a_recurrent_layer():
    result = checks.check_adding_model(MarkedSum, lr=0.05, **FAST)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ("no_recurrent_layer",))
    result = checks.check_adding_model(FormulaWithIdleRNN, lr=0.05, **FAST)
    assert (result.status, result.mistakes) == ("wrong", ("recurrent_layer_unused",)), result.message
    assert "does not need its recurrent layer" in result.message


def test_adding_model_too_large_is_refused_before_training():
    result = checks.check_adding_model(lambda: nn.LSTM(2, 256, batch_first=True))
    assert (result.status, result.mistakes) == ("wrong", ("too_large",))


def test_adding_model_sequential_gets_the_tuple_hint():
    result = checks.check_adding_model(lambda: nn.Sequential(nn.GRU(2, 8, batch_first=True), nn.Linear(8, 1)), **FAST)
    assert result.status == "error" and "recurrent layers return a tuple" in result.message


def test_adding_model_errors_point_at_the_learner():
    def build_model():
        return nn.Sequential(nn.Linear(3, 1), nn.RNN(1, 1))  # expects 3 features, the input has 2

    result = checks.check_adding_model(build_model, **FAST)
    assert result.status == "error"
    assert "your model's forward() raised RuntimeError" in result.message
    assert "input of shape (4, 8, 2)" in result.message

    def broken_build_model():
        raise ValueError("hidden_size missing")

    result = checks.check_adding_model(broken_build_model)
    assert result.status == "error"
    assert "build_model() raised ValueError: hidden_size missing" in result.message
    assert "in `broken_build_model`" in result.message and "course_utils" not in result.message


def test_adding_model_diverging():
    class Exploding(RecurrentSum):
        def forward(self, x):
            return super().forward(x) * torch.exp(torch.tensor(100.0)) ** 10

    result = checks.check_adding_model(Exploding, **FAST)
    assert result.status == "wrong" and "training diverged" in result.message


def test_tiny_difference_is_shown_with_enough_digits():
    """An answer off by float32 rounding must not read "expected 0.7558, got 0.7558"."""
    result = checks.check_rnn_cell(lambda *a, **k: rnn_ok(*a, **k) * (1 + 3e-5), quiet=True)
    assert result.status == "wrong"
    line = next(ln for ln in result.message.splitlines() if "first differs" in ln)
    expected, got = line.split("expected ")[1].split(", got ")
    got = got.split(" (")[0]
    assert expected != got, line


def test_mistake_equal_to_the_reference_on_a_case_is_never_named():
    """Off by 1e-9 in float64: on the tanh case "nonlinearity ignored" equals the reference, so it must not be named."""
    def off(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        out = rnn_ok(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        return out + 1e-9 if out.dtype == torch.float64 else out
    result = checks.check_rnn_cell(off, quiet=True)
    assert result.status == "wrong" and result.mistakes == ()
    assert "Likely mistake" not in result.message


def test_failed_check_announces_on_stderr_and_quiet_does_not(capsys):
    checks.check_rnn_cell(lambda *a, **k: rnn_ok(*a, **k) + 0.5)
    assert capsys.readouterr().err == "rnn_cell: wrong — 0/1 points\n"
    checks.check_rnn_cell(lambda *a, **k: rnn_ok(*a, **k) + 0.5, quiet=True)
    checks.check_rnn_cell(rnn_ok)
    assert capsys.readouterr().err == ""


def test_result_carries_mistake_ids_and_a_json_bundle():
    result = checks.check_rnn_cell(lambda *a, **k: torch.relu(rnn_ok(*a, **k) * 0 + torch.nn.functional.linear(
        a[0], a[2], a[4] if len(a) > 4 else None) + torch.nn.functional.linear(a[1], a[3], a[5] if len(a) > 5 else None)),
        quiet=True)
    assert result.mistakes == ("relu_for_tanh",)
    bundle = result._repr_mimebundle_()
    assert bundle[checks.MIME_TYPE]["mistakes"] == ["relu_for_tanh"]
    assert bundle["text/plain"] == str(result)


def test_adding_model_with_a_plain_rnn_is_told_why():
    class PlainRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.RNN(2, 4, batch_first=True), nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1]).squeeze(-1)

    result = checks.check_adding_model(PlainRNN, target_mse=1e-6, quiet=True, **FAST)
    assert result.status == "wrong" and "plain RNN" in result.message
    assert result.mistakes in (("does_not_learn",), ("learns_too_slowly",))


# ------------------------------------------- every named mistake of rnn_cell, written as a learner would
def _pre(x, h, w_ih, w_hh, b_ih, b_hh, *, ih=True, hh=True, t_ih=False, t_hh=False, use_h=True):
    out = x @ (w_ih if t_ih else w_ih.T)
    if use_h:
        out = out + h @ (w_hh if t_hh else w_hh.T)
    if ih and b_ih is not None:
        out = out + b_ih
    if hh and b_hh is not None:
        out = out + b_hh
    return out


RNN_LEARNERS = {
    "relu_for_tanh": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.relu(_pre(x, h, a, b, c, d)),
    "nonlinearity_ignored": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(_pre(x, h, a, b, c, d)),
    "sigmoid_for_tanh": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.sigmoid(_pre(x, h, a, b, c, d)),
    "no_nonlinearity": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": _pre(x, h, a, b, c, d),
    "missing_bias_ih": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d, ih=False)) if nonlinearity == "tanh" else torch.relu(_pre(x, h, a, b, c, d, ih=False)),
    "missing_bias_hh": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d, hh=False)) if nonlinearity == "tanh" else torch.relu(_pre(x, h, a, b, c, d, hh=False)),
    "missing_both_biases": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d, ih=False, hh=False)) if nonlinearity == "tanh" else torch.relu(
        _pre(x, h, a, b, c, d, ih=False, hh=False)),
    "transposed_weight_ih": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d, t_ih=True)),
    "transposed_weight_hh": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d, t_hh=True)),
    "transposed_both_weights": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d, t_ih=True, t_hh=True)),
    "swapped_weights": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(_pre(x, h, b, a, c, d)),
    "hidden_state_ignored": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d, use_h=False)),
    "state_not_updated": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": h.clone(),
    "returns_input": lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": x.clone(),
}


@pytest.mark.parametrize("mistake", sorted(RNN_LEARNERS))
def test_every_rnn_cell_mistake_is_named(mistake):
    result = checks.check_rnn_cell(RNN_LEARNERS[mistake], max_points=2, quiet=True)
    assert (result.status, result.points) == ("wrong", 0), result.message
    assert result.mistakes == (mistake,), result.message
    assert "Likely mistake" in result.message


def test_clip_answer_with_only_the_clipped_list_gets_the_pair_message():
    result = checks.check_clip_grad_norm(lambda grads, max_norm: [g.clone() for g in grads], quiet=True)
    assert result.status == "wrong" and "return the total norm too" in result.message


def test_a_call_with_the_wrong_arguments_gets_the_signature_hint():
    result = checks.check_rnn_cell(lambda x, h: x, quiet=True)
    assert result.status == "error"
    assert 'the function is called as `rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, ' \
           'nonlinearity="tanh")`' in result.message


def test_a_wrong_shape_gets_the_checks_shape_hint():
    result = checks.check_rnn_cell(lambda x, h, a, b, c=None, d=None, nonlinearity="tanh": torch.tanh(
        _pre(x, h, a, b, c, d)).T.contiguous() if x.shape[0] != b.shape[0] else torch.tanh(
        _pre(x, h, a, b, c, d))[:, :1], quiet=True)
    assert result.status == "wrong" and "Hint: h_t has one row per batch element" in result.message


def test_distinct_prints_as_few_digits_as_tell_numbers_apart():
    from course_utils.checks.harness import _distinct
    assert _distinct(0.5, 0.25) == ("0.5000", "0.2500")
    assert _distinct(0.7558, 0.75581) == ("0.75580", "0.75581")
    assert _distinct(1.0, 1.0 + 1e-12) == ("1.000000000000", "1.000000000001")
    assert _distinct(1.0, 1.0) == ("1.00000000000000000", "1.00000000000000000")


def test_a_wrong_structure_of_other_length_is_not_told_to_return_the_norm():
    result = checks.check_clip_grad_norm(lambda grads, max_norm: ("a", "b", "c", "d", "e"), quiet=True)
    assert result.status == "wrong" and "expected a pair (clipped_list, total_norm)" in result.message
    assert "return the total norm too" not in result.message


def test_an_error_other_than_a_call_mismatch_gets_no_signature_hint():
    def broken(*args, **kwargs):
        raise ValueError("an argument went wrong")  # the word "argument", but not a TypeError

    result = checks.check_rnn_cell(broken, quiet=True)
    assert result.status == "error" and "the function is called as" not in result.message
