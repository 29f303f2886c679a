"""Tests of the LSTM and GRU checks (units 03 and 04) and of the references they compare with.

Each named mistake is fed as a learner would write it (written here independently of the checks'
own variants) and its stable id is asserted in ``result.mistakes``, with the status and the points.
The backward references are verified against autograd with ``torch.autograd.gradcheck`` in float64.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils import functional as Fn
from course_utils.checks import EXERCISES, exercises_of
from course_utils.checks import gru as gru_checks
from course_utils.checks import loops as loop_checks
from course_utils.checks import lstm as lstm_checks
from course_utils.checks import lstm_backward as backward_checks
from course_utils.checks.cells import cell_inputs
from course_utils.checks.diagnosis import Spec, name_error, pairs, split_ids
from course_utils.checks.harness import Case, Mistake
from course_utils.checks.result import CheckResult

NEW = [
    ("lstm_forward", "03_lstm", checks.check_lstm_forward, Fn.lstm_forward),
    ("lstm_cell_backward", "03_lstm", checks.check_lstm_cell_backward, Fn.lstm_cell_backward),
    ("gru_cell_chung", "04_gru", checks.check_gru_cell_chung, Fn.gru_cell_chung),
    ("gru_forward", "04_gru", checks.check_gru_forward, Fn.gru_forward),
]
ALL = NEW + [("lstm_cell", "03_lstm", checks.check_lstm_cell, Fn.lstm_cell),
             ("gru_cell", "04_gru", checks.check_gru_cell, Fn.gru_cell)]


def lin(x, w, b=None):
    return x @ w.T + (b if b is not None else 0)


def named(result: CheckResult, *ids: str, max_points: float = 1) -> None:
    assert result.status == "wrong", result
    assert result.points == 0 and result.max_points == max_points
    assert sorted(result.mistakes) == sorted(ids) and len(set(result.mistakes)) == len(ids), result
    assert "Likely mistake" in result.message


# ------------------------------------------------------------------ the references
def test_lstm_forward_matches_torch_lstm():
    torch.manual_seed(0)
    layer = nn.LSTM(3, 4).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)  # (T, N, H_in)
    h0, c0 = torch.randn(1, 2, 4, dtype=torch.float64), torch.randn(1, 2, 4, dtype=torch.float64)
    out, (h_n, c_n) = layer(x, (h0, c0))
    ours, (h_t, c_t) = Fn.lstm_forward(x, (h0[0], c0[0]), layer.weight_ih_l0, layer.weight_hh_l0,
                                       layer.bias_ih_l0, layer.bias_hh_l0)
    assert ours.shape == (6, 2, 4)
    torch.testing.assert_close(ours, out, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_t, h_n[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(c_t, c_n[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(ours[-1], h_t, rtol=0, atol=0)


def test_gru_forward_matches_torch_gru():
    torch.manual_seed(1)
    layer = nn.GRU(3, 4, bias=False).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h0 = torch.randn(1, 2, 4, dtype=torch.float64)
    out, h_n = layer(x, h0)
    ours, h_t = Fn.gru_forward(x, h0[0], layer.weight_ih_l0, layer.weight_hh_l0)
    torch.testing.assert_close(ours, out, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_t, h_n[0], rtol=0, atol=1e-12)


def test_gru_cell_chung_is_the_textbook_form():
    gen = torch.Generator().manual_seed(2)
    h_in, hid = 3, 4
    x, h = torch.randn(2, h_in, generator=gen, dtype=torch.float64), torch.randn(2, hid, generator=gen, dtype=torch.float64)
    w_ih, w_hh = torch.randn(3 * hid, h_in, generator=gen, dtype=torch.float64), torch.randn(3 * hid, hid, generator=gen, dtype=torch.float64)
    b_ih, b_hh = torch.randn(3 * hid, generator=gen, dtype=torch.float64), torch.randn(3 * hid, generator=gen, dtype=torch.float64)
    # written out block by block, independently of the reference
    W_ir, W_iz, W_in = w_ih[:hid], w_ih[hid:2 * hid], w_ih[2 * hid:]
    W_hr, W_hz, W_hn = w_hh[:hid], w_hh[hid:2 * hid], w_hh[2 * hid:]
    r = torch.sigmoid(x @ W_ir.T + b_ih[:hid] + h @ W_hr.T + b_hh[:hid])
    z = torch.sigmoid(x @ W_iz.T + b_ih[hid:2 * hid] + h @ W_hz.T + b_hh[hid:2 * hid])
    n = torch.tanh(x @ W_in.T + b_ih[2 * hid:] + (r * h) @ W_hn.T + b_hh[2 * hid:])
    expected = z * n + (1 - z) * h
    torch.testing.assert_close(Fn.gru_cell_chung(x, h, w_ih, w_hh, b_ih, b_hh), expected, rtol=0, atol=1e-12)
    # with r = 1 and the update gate's rows negated (z -> 1 - z), it is PyTorch's GRU
    b_open = b_hh.clone()
    b_open[:hid] += 40.0
    w_ih_neg, w_hh_neg, b_ih_neg, b_open_neg = w_ih.clone(), w_hh.clone(), b_ih.clone(), b_open.clone()
    for t in (w_ih_neg, w_hh_neg, b_ih_neg, b_open_neg):
        t[hid:2 * hid] *= -1
    torch.testing.assert_close(Fn.gru_cell_chung(x, h, w_ih_neg, w_hh_neg, b_ih_neg, b_open_neg),
                               Fn.gru_cell(x, h, w_ih, w_hh, b_ih, b_open), rtol=0, atol=1e-12)
    assert not torch.allclose(Fn.gru_cell_chung(x, h, w_ih, w_hh, b_ih, b_hh), Fn.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh))
    # unbatched input, as torch.nn.GRUCell accepts it
    assert Fn.gru_cell_chung(x[0], h[0], w_ih, w_hh, b_ih, b_hh).shape == (hid,)
    torch.testing.assert_close(Fn.gru_cell_chung(x[0], h[0], w_ih, w_hh), Fn.gru_cell_chung(x, h, w_ih, w_hh)[0])


class _LSTMStep(torch.autograd.Function):
    """One LSTM step whose backward is the course's hand-written lstm_cell_backward."""

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        gates = Fn.lstm_cell_gates(x, (h, c), w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, gates.i, gates.f, gates.g, gates.o, gates.c)
        return gates.h, gates.c

    @staticmethod
    def backward(ctx, dh, dc):
        x, h, c, w_ih, w_hh, i, f, g, o, c_t = ctx.saved_tensors
        dx, dh_prev, dc_prev, dw_ih, dw_hh, db = Fn.lstm_cell_backward(dh, dc, x, (h, c), (i, f, g, o, c_t), w_ih, w_hh)
        return dx, dh_prev, dc_prev, dw_ih, dw_hh, db, db


def test_lstm_cell_backward_passes_gradcheck():
    gen = torch.Generator().manual_seed(3)
    n, h_in, hid = 3, 4, 5

    def leaf(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(True)

    inputs = (leaf(n, h_in), leaf(n, hid), leaf(n, hid), leaf(4 * hid, h_in), leaf(4 * hid, hid), leaf(4 * hid),
              leaf(4 * hid))
    assert torch.autograd.gradcheck(_LSTMStep.apply, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_lstm_cell_backward_equals_autograd_of_lstm_cell():
    """The same, against autograd through the forward reference (and so through torch.nn.LSTMCell's math)."""
    gen = torch.Generator().manual_seed(4)
    n, h_in, hid = 2, 3, 4
    x, h, c = (torch.randn(n, k, generator=gen, dtype=torch.float64).requires_grad_(True) for k in (h_in, hid, hid))
    cell = nn.LSTMCell(h_in, hid).double()
    h_t, c_t = cell(x, (h, c))
    dh, dc = torch.randn(n, hid, generator=gen, dtype=torch.float64), torch.randn(n, hid, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((h_t, c_t), (x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),
                                (dh, dc))
    saved = Fn.lstm_cell_gates(x, (h, c), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    ours = Fn.lstm_cell_backward(dh, dc, x, (h, c), tuple(saved)[:5], cell.weight_ih, cell.weight_hh)
    for got, want in zip(ours, grads[:6]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours[5], grads[6], rtol=1e-10, atol=1e-12)  # d bias_hh == d bias_ih


# ------------------------------------------------------------------ registry and common paths
def test_new_exercises_are_registered():
    for grade_id, unit, check, _ in NEW:
        ex = EXERCISES[grade_id]
        assert ex.function == grade_id and ex.unit == unit and ex.check is check and ex.kind == "function"
        dotted = f"course_utils.functional.{grade_id}"
        assert any(dotted == f or dotted.startswith(f + ".") for f in ex.forbidden), ex.forbidden
    assert [e.grade_id for e in exercises_of("03_lstm")] == ["lstm_cell", "lstm_forward", "lstm_cell_backward"]
    assert [e.grade_id for e in exercises_of("04_gru")] == ["gru_cell", "gru_cell_chung", "gru_forward"]
    assert "torch.autograd" in EXERCISES["lstm_cell_backward"].forbidden


@pytest.mark.parametrize("grade_id, unit, check, reference", ALL)
def test_reference_passes(grade_id, unit, check, reference):
    state = torch.get_rng_state()
    result = check(reference, max_points=4, quiet=True, watch=False)
    assert torch.equal(state, torch.get_rng_state())
    assert result.status == "passed" and result.points == 4 and result.max_points == 4 and result.mistakes == ()
    assert result.exercise == grade_id and "passed — matches the reference" in result.message


@pytest.mark.parametrize("grade_id, unit, check, reference", ALL)
def test_not_implemented(grade_id, unit, check, reference, capsys):
    def learner(*args, **kwargs):
        raise NotImplementedError()

    result = check(learner, max_points=3, quiet=True, watch=False)
    assert result.status == "not_implemented" and result.points == 0 and result.max_points == 3
    assert result.message == f"{grade_id}: not implemented yet — write your code in the cell above and run it again."
    assert capsys.readouterr().err == ""
    check(learner, max_points=3)  # not quiet: one line on stderr, as nbgrader needs
    assert capsys.readouterr().err == f"{grade_id}: not implemented — 0/3 points\n"


@pytest.mark.parametrize("grade_id, unit, check, reference", NEW)
def test_returns_none_and_error(grade_id, unit, check, reference):
    none = check(lambda *a: None, quiet=True, watch=False)
    assert none.status == "wrong" and none.points == 0 and "forget the `return`" in none.message

    def broken(*args):
        raise KeyError("oops")

    error = check(broken, max_points=2, quiet=True, watch=False)
    assert error.status == "error" and error.points == 0 and error.max_points == 2 and error.mistakes == ()
    assert "raised KeyError" in error.message


def test_split_ids_keeps_order_and_drops_repeats():
    r = CheckResult("x", "wrong", 0, 1, "m", ("gate_order+missing_bias_ih", "missing_bias_ih", "c_for_tanh_c"))
    assert split_ids(r).mistakes == ("gate_order", "missing_bias_ih", "c_for_tanh_c")
    plain = CheckResult("x", "wrong", 0, 1, "m", ("gate_order",))
    assert split_ids(plain) is plain


def test_pairs_combines_specs_on_different_axes_once_each():
    specs = [Spec("order", {"order": "figo"}, "wrong order", "gate_order"),
             Spec("bias", {"bias": "ih"}, "no bias_ih", "missing_bias_ih"),
             Spec("bias", {"bias": "hh"}, "no bias_hh", "missing_bias_hh")]
    built = []

    def build(**kwargs):
        built.append(kwargs)
        return lambda: kwargs

    combined = pairs(specs, build)
    assert [m.id for m in combined] == ["gate_order+missing_bias_ih", "gate_order+missing_bias_hh"]
    assert built == [{"order": "figo", "bias": "ih"}, {"order": "figo", "bias": "hh"}]
    assert combined[0].fn() == {"order": "figo", "bias": "ih"}
    assert combined[0].description == "two mistakes at once:\n  1. wrong order\n  2. no bias_ih"
    assert pairs(specs[1:], build) == []  # one axis only: nothing to combine


def _raises(exc: Exception):
    def fn(*args, **kwargs):
        raise exc
    return fn


_RAISED = CheckResult("x", "error", 0, 2, "x: your function raised RuntimeError")


@pytest.mark.parametrize("learner, variant, same", [
    (RuntimeError("sizes 4 and 12 do not match"), RuntimeError("sizes 4 and 12 do not match"), True),
    (RuntimeError("sizes 4 and 12 do not match"), RuntimeError("sizes 12 and 4 do not match"), True),  # operand order
    (RuntimeError("sizes 4 and 12 do not match"), RuntimeError("sizes 4 and 16 do not match"), False),  # other numbers
    (RuntimeError("sizes 4 and 12 do not match"), RuntimeError("sizes 4 and 12 differ"), False),  # other words
    (RuntimeError("sizes 4 and 12 do not match"), ValueError("sizes 4 and 12 do not match"), False),  # other type
])
def test_name_error_names_a_variant_only_for_the_same_error(learner, variant, same):
    cases = [Case("first", (torch.zeros(2),))]
    result = name_error(_RAISED, _raises(learner), cases, [Mistake("the variant", _raises(variant), id="v")])
    if same:
        assert result.mistakes == ("v",) and result.status == "error" and result.points == 0
        assert result.message == _RAISED.message + "\nLikely mistake: the variant"
    else:
        assert result is _RAISED


@pytest.mark.parametrize("result, variants", [
    (CheckResult("x", "wrong", 0, 2, "x: wrong values"), True),
    (CheckResult("x", "passed", 2, 2, "x: passed"), True),
    (CheckResult("x", "error", 0, 2, "x: raised", ("named_before",)), True),  # already named
    (_RAISED, False),  # no variant to compare with
])
def test_name_error_leaves_other_results_alone(result, variants):
    calls = []

    def learner(*args):
        calls.append(args)
        raise RuntimeError("sizes 4 and 12 do not match")

    same = [Mistake("the variant", _raises(RuntimeError("sizes 4 and 12 do not match")), id="v")]
    assert name_error(result, learner, [Case("first", (torch.zeros(2),))], same if variants else []) is result
    assert calls == []  # the learner's function is not called again


def test_name_error_stops_at_not_implemented():
    learner = _raises(NotImplementedError())
    variant = [Mistake("the variant", _raises(NotImplementedError()), id="v")]
    assert name_error(_RAISED, learner, [Case("first", (torch.zeros(2),))], variant) is _RAISED


def test_spec_is_immutable():
    spec = Spec("bias", {"drop_b_ih": True}, "no bias_ih", "missing_bias_ih")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.id = "other"


# ------------------------------------------------------------------ the matrix-product hint of the cells
_GRU_SHAPES = "x is (N, H_in), h is (N, H), weight_ih is (3H, H_in), weight_hh is (3H, H)"


def _real_matmul_error() -> RuntimeError:
    try:
        torch.zeros(2, 3) @ torch.zeros(2, 3)
    except RuntimeError as exc:
        return exc
    raise AssertionError("the product did not raise")


@pytest.mark.parametrize("exc, hinted", [
    (_real_matmul_error(), True),
    (RuntimeError("The size of tensor a (4) must match the size of tensor b (5) at non-singleton dimension 1"), True),
    (RuntimeError("the gates went wrong"), False),  # a RuntimeError, not about shapes
    (ValueError("mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)"), False),  # not a RuntimeError
])
def test_matmul_hint_only_for_shape_errors(exc, hinted):
    result = checks.check_gru_cell(_raises(exc), quiet=True, watch=False)
    assert result.status == "error" and result.points == 0
    hint = (f"Hint: check the shapes of your matrix products: {_GRU_SHAPES}. "
            "`x @ weight_ih.T` (or `F.linear(x, weight_ih, bias_ih)`) gives the input part.")
    assert (hint in result.message) is hinted, result.message



_CELL_CASE0 = "(for N=4, H_in=3, H=5, with biases, float32)"


@pytest.mark.parametrize("check, answer, message", [
    (checks.check_gru_cell, lambda *a: (Fn.gru_cell(*a), Fn.gru_cell(*a)),
     f"gru_cell: expected one tensor h_t, got a tuple of 2 items {_CELL_CASE0}"),
    (checks.check_gru_cell_chung, lambda *a: [Fn.gru_cell_chung(*a)],
     f"gru_cell_chung: expected one tensor h_t, got a list of 1 items {_CELL_CASE0}"),
    (checks.check_gru_cell, lambda *a: 3.0, f"gru_cell: expected h_t to be a torch.Tensor, got float {_CELL_CASE0}"),
])
def test_gru_cells_want_one_tensor(check, answer, message):
    result = check(answer, max_points=2, quiet=True, watch=False)
    assert (result.status, result.points, result.message, result.mistakes) == ("wrong", 0, message, ())


# ------------------------------------------------------------------ lstm_cell, written as learners write it
def make_lstm(order="ifgo", acts="ssts", b_ih=True, b_hh=True, output="tanh_c", cell_rule="ok", ogate="gate",
              returns="hc", split_dim=-1):
    act = {"s": torch.sigmoid, "t": torch.tanh}

    def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = state
        if returns == "old":
            return h, c
        pre = lin(x, weight_ih, bias_ih if b_ih else None) + lin(h, weight_hh, bias_hh if b_hh else None)
        blocks = dict(zip(order, pre.chunk(4, dim=split_dim)))
        i, f, g, o = (act[a](blocks[k]) for a, k in zip(acts, "ifgo"))
        c_new = {"ok": f * c + i * g, "no_f": c + i * g, "no_i": f * c + g}[cell_rule]
        if ogate == "c":
            o = torch.sigmoid(c_new)
        elif ogate == "old_c":
            o = torch.sigmoid(c)
        elif ogate == "peephole":
            o = torch.sigmoid(blocks["o"] + c_new)
        h_new = {"tanh_c": o * torch.tanh(c_new), "c": o * c_new, "sigmoid": o * torch.sigmoid(c_new),
                 "old_c": o * torch.tanh(c)}[output]
        return (c_new, h_new) if returns == "ch" else (h_new, c_new)
    return lstm_cell


@pytest.mark.parametrize("learner, ids", [
    (make_lstm(order="figo"), ("gate_order",)),
    (make_lstm(acts="stts"), ("tanh_for_sigmoid_gate",)),
    (make_lstm(acts="tttt"), ("tanh_for_all_gates",)),
    (make_lstm(acts="ssss"), ("sigmoid_for_tanh_candidate",)),
    (make_lstm(b_ih=False), ("missing_bias_ih",)),
    (make_lstm(b_hh=False), ("missing_bias_hh",)),  # never fed before (issue 13)
    (make_lstm(b_ih=False, b_hh=False), ("missing_both_biases",)),  # never fed before
    (make_lstm(output="c"), ("c_for_tanh_c",)),
    (make_lstm(output="sigmoid"), ("sigmoid_in_output",)),  # never fed before
    (make_lstm(output="old_c"), ("h_from_old_c",)),  # never fed before
    (make_lstm(cell_rule="no_f"), ("missing_forget_gate",)),  # never fed before
    (make_lstm(cell_rule="no_i"), ("missing_input_gate",)),  # never fed before
    (make_lstm(returns="ch"), ("returns_c_h",)),
    (make_lstm(returns="old"), ("state_not_updated",)),
    # issue 16: the output gate computed from the cell state
    (make_lstm(ogate="c"), ("output_gate_from_c",)),
    (make_lstm(ogate="old_c"), ("output_gate_from_c",)),
    (make_lstm(ogate="peephole"), ("output_gate_from_c",)),
    # issue 16: two mistakes at once, each named by its own id
    (make_lstm(order="ifog", b_hh=False), ("gate_order", "missing_bias_hh")),
    (make_lstm(order="fiog", output="c"), ("gate_order", "c_for_tanh_c")),
    (make_lstm(acts="tsts", b_ih=False), ("tanh_for_sigmoid_gate", "missing_bias_ih")),
    (make_lstm(output="c", cell_rule="no_f"), ("c_for_tanh_c", "missing_forget_gate")),
    (make_lstm(ogate="c", b_ih=False, b_hh=False), ("missing_both_biases", "output_gate_from_c")),
    (make_lstm(acts="ssss", returns="ch"), ("sigmoid_for_tanh_candidate", "returns_c_h")),
])
def test_lstm_cell_mistakes_are_named(learner, ids):
    named(checks.check_lstm_cell(learner, max_points=3, quiet=True, watch=False), *ids, max_points=3)


def test_lstm_cell_combined_message_lists_both():
    msg = checks.check_lstm_cell(make_lstm(order="ifog", b_hh=False), quiet=True, watch=False).message
    assert "two mistakes at once:\n  1. gates in the wrong order: your code reads them as i, f, o, g" in msg
    assert "\n  2. the bias `bias_hh` is never added" in msg


def test_lstm_cell_chunk_along_the_batch_is_named_from_its_error():
    result = checks.check_lstm_cell(make_lstm(split_dim=0), max_points=3, quiet=True, watch=False)
    assert result.status == "error" and result.points == 0 and result.mistakes == ("chunk_wrong_dim",)
    assert "a block of 4H columns meets one of H columns" in result.message  # the hint, not the matmul one
    assert "check the shapes of your matrix products" not in result.message
    assert "`i, f, g, o = gates.chunk(4, dim=-1)`" in result.message

    def unrelated_error(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        return lin(x, weight_hh), state[1]  # a transposed-weight shape error: not the chunk mistake

    other = checks.check_lstm_cell(unrelated_error, quiet=True, watch=False)
    assert other.status == "error" and other.mistakes == ()
    assert "check the shapes of your matrix products" in other.message


# ------------------------------------------------------------------ gru_cell and gru_cell_chung
def make_gru(order="rzn", acts="sst", b_ih=True, b_hh=True, z_side="old", reset="after", returns="h",
             split_after_sum=False):
    act = {"s": torch.sigmoid, "t": torch.tanh}

    def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        if returns == "old":
            return h
        xp = lin(x, weight_ih, bias_ih if b_ih else None)  # (N, 3H)
        b = bias_hh if b_hh else None
        if split_after_sum:  # adds the projections first, then splits: r multiplies the input part too
            s = dict(zip(order, (xp + lin(h, weight_hh, b)).chunk(3, dim=-1)))
            r, z = act[acts[0]](s["r"]), act[acts[1]](s["z"])
            n = act[acts[2]](r * s["n"])
        else:
            xs = dict(zip(order, xp.chunk(3, dim=-1)))
            ws = dict(zip(order, weight_hh.chunk(3, dim=0)))
            bs = dict(zip(order, b.chunk(3))) if b is not None else dict.fromkeys(order)
            r = act[acts[0]](xs["r"] + lin(h, ws["r"], bs["r"]))
            z = act[acts[1]](xs["z"] + lin(h, ws["z"], bs["z"]))
            hidden = {"after": lambda: r * lin(h, ws["n"], bs["n"]), "before": lambda: lin(r * h, ws["n"], bs["n"]),
                      "outside": lambda: r * lin(h, ws["n"]) + (bs["n"] if bs["n"] is not None else 0),
                      "none": lambda: lin(h, ws["n"], bs["n"])}[reset]()
            n = act[acts[2]](xs["n"] + hidden)
        if returns == "n":
            return n
        return (1 - z) * n + z * h if z_side == "old" else z * n + (1 - z) * h
    return gru_cell


@pytest.mark.parametrize("learner, ids", [
    (make_gru(z_side="new"), ("z_swapped",)),
    (make_gru(reset="before"), ("reset_before_matmul",)),
    (make_gru(reset="before", z_side="new"), ("chung_form",)),
    (make_gru(reset="outside"), ("b_hn_outside_reset",)),
    (make_gru(reset="none"), ("reset_unused",)),  # never fed before (issue 13)
    (make_gru(order="zrn"), ("gate_order",)),
    (make_gru(acts="tst"), ("tanh_for_sigmoid_gate",)),
    (make_gru(acts="ttt"), ("tanh_for_both_gates",)),  # never fed before
    (make_gru(acts="sss"), ("sigmoid_for_tanh_candidate",)),  # never fed before
    (make_gru(b_ih=False), ("missing_bias_ih",)),  # never fed before
    (make_gru(b_hh=False), ("missing_bias_hh",)),
    (make_gru(b_ih=False, b_hh=False), ("missing_both_biases",)),
    (make_gru(returns="n"), ("returns_candidate",)),
    (make_gru(returns="old"), ("state_not_updated",)),
    # issue 16: the projections added before splitting
    (make_gru(split_after_sum=True), ("projections_summed_before_split",)),
    # two at once
    (make_gru(z_side="new", b_ih=False), ("z_swapped", "missing_bias_ih")),
    (make_gru(order="zrn", reset="before"), ("gate_order", "reset_before_matmul")),
    (make_gru(split_after_sum=True, acts="tst"), ("projections_summed_before_split", "tanh_for_sigmoid_gate")),
])
def test_gru_cell_mistakes_are_named(learner, ids):
    named(checks.check_gru_cell(learner, max_points=3, quiet=True, watch=False), *ids, max_points=3)


def test_gru_cell_summed_before_split_without_reset_says_why():
    msg = checks.check_gru_cell(make_gru(reset="none"), quiet=True, watch=False).message
    assert "added before splitting" in msg


@pytest.mark.parametrize("learner, ids", [
    (make_gru(reset="before", z_side="old"), ("z_swapped",)),
    (make_gru(reset="after", z_side="new"), ("reset_after_matmul",)),
    (make_gru(), ("torch_form",)),
    (make_gru(reset="none", z_side="new"), ("reset_unused",)),
    (make_gru(order="rnz", reset="before", z_side="new"), ("gate_order",)),
    (make_gru(acts="tst", reset="before", z_side="new"), ("tanh_for_sigmoid_gate",)),
    (make_gru(acts="ttt", reset="before", z_side="new"), ("tanh_for_both_gates",)),
    (make_gru(acts="sss", reset="before", z_side="new"), ("sigmoid_for_tanh_candidate",)),
    (make_gru(b_ih=False, reset="before", z_side="new"), ("missing_bias_ih",)),
    (make_gru(b_hh=False, reset="before", z_side="new"), ("missing_bias_hh",)),
    (make_gru(b_ih=False, b_hh=False, reset="before", z_side="new"), ("missing_both_biases",)),
    (make_gru(returns="n", reset="before", z_side="new"), ("returns_candidate",)),
    (make_gru(returns="old"), ("state_not_updated",)),
    (make_gru(b_hh=False, reset="before", z_side="old"), ("z_swapped", "missing_bias_hh")),
    (make_gru(order="zrn", reset="after", z_side="new"), ("gate_order", "reset_after_matmul")),
])
def test_gru_cell_chung_mistakes_are_named(learner, ids):
    named(checks.check_gru_cell_chung(learner, max_points=3, quiet=True, watch=False), *ids, max_points=3)


# ------------------------------------------------------------------ the loops over time
def make_loop(cell, lstm, carry="all", outputs="h", last="last", reverse=False, dim=0):
    def forward(x, state0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        T = x.shape[0]
        state, hs, first = state0, [], None
        order = range(T - 1, -1, -1) if reverse else range(T)
        for t in order:
            start = {"all": state, "none": state0,
                     "h": (state[0], state0[1]) if lstm else None, "c": (state0[0], state[1]) if lstm else None}[carry]
            new = cell(x[t], start, weight_ih, weight_hh, bias_ih, bias_hh)
            if outputs == "prev":
                hs.append(state[0] if lstm else state)
            elif outputs == "c":
                hs.append(new[1])
            else:
                hs.append(new[0] if lstm else new)
            first = new if first is None else first
            state = new
        result = {"last": state, "initial": state0, "first": first}[last]
        return torch.stack(hs, dim=dim), result
    return forward


def lstm_loop(**kw):
    return make_loop(Fn.lstm_cell, True, **kw)


def gru_loop(cell=Fn.gru_cell, **kw):
    return make_loop(cell, False, **kw)


@pytest.mark.parametrize("learner, ids", [
    (lstm_loop(carry="none"), ("state_not_carried",)),
    (lstm_loop(carry="h"), ("cell_state_not_carried",)),
    (lstm_loop(carry="c"), ("hidden_state_not_carried",)),
    (lstm_loop(outputs="prev"), ("outputs_shifted",)),
    (lstm_loop(outputs="c"), ("outputs_are_cell_states",)),
    (lstm_loop(last="initial"), ("returns_initial_state",)),
    (lstm_loop(last="first"), ("returns_first_state",)),
    (lstm_loop(reverse=True), ("time_reversed",)),
    (lstm_loop(carry="none", last="initial"), ("state_not_carried", "returns_initial_state")),
    (lstm_loop(outputs="prev", last="first"), ("outputs_shifted", "returns_first_state")),
])
def test_lstm_forward_mistakes_are_named(learner, ids):
    named(checks.check_lstm_forward(learner, max_points=2, quiet=True, watch=False), *ids, max_points=2)


@pytest.mark.parametrize("learner, ids", [
    (gru_loop(carry="none"), ("state_not_carried",)),
    (gru_loop(outputs="prev"), ("outputs_shifted",)),
    (gru_loop(last="initial"), ("returns_initial_state",)),
    (gru_loop(last="first"), ("returns_first_state",)),
    (gru_loop(reverse=True), ("time_reversed",)),
    (gru_loop(cell=Fn.gru_cell_chung), ("uses_chung_cell",)),
    (gru_loop(cell=Fn.gru_cell_chung, reverse=True), ("time_reversed", "uses_chung_cell")),
])
def test_gru_forward_mistakes_are_named(learner, ids):
    named(checks.check_gru_forward(learner, max_points=2, quiet=True, watch=False), *ids, max_points=2)


def test_loops_wrong_stacking_and_structure():
    batch_first = checks.check_lstm_forward(lstm_loop(dim=1), quiet=True, watch=False)
    assert batch_first.status == "wrong" and batch_first.points == 0
    assert "stack the steps along dim 0" in batch_first.message
    as_list = checks.check_gru_forward(lambda *a: (list(Fn.gru_forward(*a)[0].unbind(0)), Fn.gru_forward(*a)[1]),
                                       quiet=True, watch=False)
    assert as_list.status == "wrong" and "`torch.stack(outputs, dim=0)`" in as_list.message
    flat = checks.check_lstm_forward(lambda *a: (Fn.lstm_forward(*a)[0],) + Fn.lstm_forward(*a)[1], quiet=True, watch=False)
    assert flat.status == "wrong" and "expected a pair (outputs, (h_T, c_T))" in flat.message


def _one_output_off(reference, which: str):
    """The reference loop with only the output ``which`` (outputs, h_T or c_T) moved by 1e-3."""
    def fn(*args):
        outputs, last = reference(*args)
        lstm = isinstance(last, tuple)
        h_t, c_t = last if lstm else (last, None)
        outputs, h_t = outputs + (which == "outputs") * 1e-3, h_t + (which == "h_T") * 1e-3
        return outputs, ((h_t, c_t + (which == "c_T") * 1e-3) if lstm else h_t)
    return fn


@pytest.mark.parametrize("check, reference, which, right", [
    (checks.check_lstm_forward, Fn.lstm_forward, "outputs", "h_T, c_T are right; outputs is not."),
    (checks.check_lstm_forward, Fn.lstm_forward, "h_T", "outputs, c_T are right; h_T is not."),
    (checks.check_lstm_forward, Fn.lstm_forward, "c_T", "outputs, h_T are right; c_T is not."),
    (checks.check_gru_forward, Fn.gru_forward, "outputs", "h_T is right; outputs is not."),
    (checks.check_gru_forward, Fn.gru_forward, "h_T", "outputs is right; h_T is not."),
])
def test_loops_compare_each_output_on_its_own(check, reference, which, right):
    result = check(_one_output_off(reference, which), max_points=2, quiet=True, watch=False)
    assert result.status == "wrong" and result.points == 0 and result.mistakes == ()
    assert result.message.split("\n")[1] == right, result.message
    assert result.message.split("\n")[2].startswith(f"{which} first differs at index ")


_CASE0 = "(for N=3, H_in=4, H=3, with biases, float32, T=5)"


@pytest.mark.parametrize("check, answer, message", [
    (checks.check_gru_forward, lambda *a: Fn.gru_forward(*a) + (1,),
     f"gru_forward: expected a pair (outputs, h_T), got tuple (Tensor, Tensor, int) {_CASE0}"),
    (checks.check_gru_forward, lambda *a: Fn.gru_forward(*a)[0],
     f"gru_forward: expected a pair (outputs, h_T), got Tensor {_CASE0}"),
    (checks.check_lstm_forward, lambda *a: Fn.lstm_forward(*a) + (1,),
     (f"lstm_forward: expected a pair (outputs, (h_T, c_T)), got tuple (Tensor, tuple (Tensor, Tensor), int) "
      f"{_CASE0}")),
    (checks.check_lstm_forward, lambda *a: (Fn.lstm_forward(*a)[0], Fn.lstm_forward(*a)[1][0]),
     (f"lstm_forward: expected a pair (outputs, (h_T, c_T)), got (outputs, Tensor) — the last state is the pair "
      f"(h_T, c_T) {_CASE0}")),
])
def test_loops_want_a_pair(check, answer, message):
    result = check(answer, max_points=2, quiet=True, watch=False)
    assert (result.status, result.points, result.message) == ("wrong", 0, message)


_STATE_HINT = "Hint: the initial state of an LSTM is the pair (h_0, c_0), and your `lstm_cell` returns the pair (h, c)."


def _unpacks_three(x, state0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    h, c, _ = state0
    return h, c


def _unpacks_none(x, state0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    h, c = None
    return h, c


def _other_value_error(x, state0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    raise ValueError("x has the wrong shape")


@pytest.mark.parametrize("learner, hinted", [(_unpacks_three, True), (_unpacks_none, True),
                                             (_other_value_error, False)])
def test_lstm_forward_hints_at_the_state_pair_only_for_unpacking_errors(learner, hinted):
    result = checks.check_lstm_forward(learner, quiet=True, watch=False)
    assert result.status == "error" and result.points == 0
    assert result.message.endswith(_STATE_HINT) is hinted, result.message
    assert ("Hint:" in result.message) is hinted


# ------------------------------------------------------------------ lstm_cell_backward, written as learners write it
def make_backward(order="ifgo", dsig="ok", dtanh_g="ok", dtanh_c="ok", dc_in=True, h_path=True, dc_prev="f",
                  d_o="tanh", d_f="c_prev", dbias_sum=True, seven=False):
    def lstm_cell_backward(dh, dc, x, state, gates, weight_ih, weight_hh):
        h_prev, c_prev = state
        i, f, g, o, c = gates
        th = torch.tanh(c)
        do = dh * (th if d_o == "tanh" else c)
        slope = {"ok": 1 - th * th, "none": 1.0, "c": 1 - c * c}[dtanh_c]
        dct = (dc if dc_in else 0) + (dh * o * slope if h_path else 0)
        df = dct * (c_prev if d_f == "c_prev" else c)
        di, dg = dct * g, dct * i
        sig = {"ok": lambda s: s * (1 - s), "none": lambda s: 1.0,
               "again": lambda s: torch.sigmoid(s) * (1 - torch.sigmoid(s))}[dsig]
        tg = {"ok": 1 - g * g, "none": 1.0, "again": 1 - torch.tanh(g) ** 2}[dtanh_g]
        parts = {"i": di * sig(i), "f": df * sig(f), "g": dg * tg, "o": do * sig(o)}
        da = torch.cat([parts[k] for k in order], dim=1)
        dcp = {"f": dct * f, "no_f": dct, "zero": torch.zeros_like(dc), "dc_only": dc * f}[dc_prev]
        db = da.sum(0) if dbias_sum else da
        out = (da @ weight_ih, da @ weight_hh, dcp, da.T @ x, da.T @ h_prev, db)
        return out + (db,) if seven else out
    return lstm_cell_backward


def test_learner_style_backward_is_right_when_nothing_is_changed():
    result = checks.check_lstm_cell_backward(make_backward(), max_points=4, quiet=True, watch=False)
    assert result.passed and result.points == 4


@pytest.mark.parametrize("learner, ids", [
    (make_backward(dc_in=False), ("missing_dc_next",)),
    (make_backward(h_path=False), ("missing_h_to_c_path",)),
    (make_backward(dc_prev="no_f"), ("dc_prev_missing_f",)),
    (make_backward(dc_prev="zero"), ("cell_path_dropped",)),
    (make_backward(dc_prev="dc_only"), ("dc_prev_from_dc_only",)),
    (make_backward(dsig="none"), ("missing_sigmoid_derivative",)),
    (make_backward(dsig="again"), ("sigmoid_derivative_recomputed",)),
    (make_backward(dtanh_g="none"), ("missing_tanh_derivative",)),
    (make_backward(dtanh_g="again"), ("tanh_derivative_recomputed",)),
    (make_backward(dtanh_c="none"), ("missing_tanh_c_derivative",)),
    (make_backward(dtanh_c="c"), ("tanh_c_derivative_uses_c",)),
    (make_backward(d_o="c"), ("do_uses_c",)),
    (make_backward(d_f="c"), ("df_uses_new_c",)),
    (make_backward(order="ifog"), ("gate_order",)),
    (make_backward(order="fiog"), ("gate_order",)),
    # two at once
    (make_backward(dsig="none", dtanh_g="none"), ("missing_sigmoid_derivative", "missing_tanh_derivative")),
    (make_backward(dc_prev="no_f", dtanh_c="none"), ("dc_prev_missing_f", "missing_tanh_c_derivative")),
    (make_backward(order="igfo", dc_in=False), ("gate_order", "missing_dc_next")),
    (make_backward(dc_prev="zero", dsig="none"), ("cell_path_dropped", "missing_sigmoid_derivative")),
])
def test_lstm_cell_backward_mistakes_are_named(learner, ids):
    named(checks.check_lstm_cell_backward(learner, max_points=4, quiet=True, watch=False), *ids, max_points=4)


def test_lstm_cell_backward_shapes_and_structure():
    unsummed = checks.check_lstm_cell_backward(make_backward(dbias_sum=False), quiet=True, watch=False)
    assert unsummed.status == "wrong" and unsummed.points == 0 and "da.sum(dim=0)" in unsummed.message
    seven = checks.check_lstm_cell_backward(make_backward(seven=True), quiet=True, watch=False)
    assert seven.status == "wrong" and "return one `dbias`" in seven.message

    def transposed(*args):
        dx, dh, dc, dwi, dwh, db = Fn.lstm_cell_backward(*args)
        return dx, dh, dc, dwi.T, dwh, db

    t = checks.check_lstm_cell_backward(transposed, quiet=True, watch=False)
    assert t.status == "wrong" and "dweight_ih = da.T @ x" in t.message


_SIX = "dx, dh_prev, dc_prev, dweight_ih, dweight_hh, dbias"
_BACKWARD_CASE0 = "(for N=4, H_in=3, H=5, float32)"


@pytest.mark.parametrize("answer, message", [
    (lambda *a: Fn.lstm_cell_backward(*a)[:5], f"expected the 6 gradients ({_SIX}), got 5 items {_BACKWARD_CASE0}"),
    (lambda *a: Fn.lstm_cell_backward(*a) + (0, 0),
     f"expected the 6 gradients ({_SIX}), got 8 items {_BACKWARD_CASE0}"),
    (lambda *a: Fn.lstm_cell_backward(*a)[0], f"expected the 6 gradients {_SIX}, got Tensor {_BACKWARD_CASE0}"),
])
def test_lstm_cell_backward_wants_six_gradients(answer, message):
    result = checks.check_lstm_cell_backward(answer, max_points=4, quiet=True, watch=False)
    assert (result.status, result.points, result.max_points) == ("wrong", 0, 4)
    assert result.message == f"lstm_cell_backward: {message}"


def test_lstm_cell_backward_accepts_a_list_of_six():
    assert checks.check_lstm_cell_backward(lambda *a: list(Fn.lstm_cell_backward(*a)), quiet=True, watch=False).passed


def test_lstm_cell_backward_cases_are_saved_from_a_forward_step():
    """The saved gates and c_t are those of a forward step on the case's x, state and weights, whose biases
    (the same for every row of the batch) are N(0, 0.6²) each, so that no gate saturates."""
    calls = []

    def recording(*args):
        calls.append(args)
        return Fn.lstm_cell_backward(*args)

    assert checks.check_lstm_cell_backward(recording, quiet=True, watch=False).passed
    assert len(calls) == len(backward_checks.BACKWARD_SHAPES)
    biases = []
    for _, _, x, (h_prev, c_prev), gates, w_ih, w_hh in calls:
        x, h_prev, c_prev, w_ih, w_hh = (t.double() for t in (x, h_prev, c_prev, w_ih, w_hh))
        i, f, g, o, c = (t.double() for t in gates)
        torch.testing.assert_close(c, f * c_prev + i * g, rtol=0, atol=1e-6)
        pre = torch.cat([torch.logit(i), torch.logit(f), torch.atanh(g), torch.logit(o)], dim=-1)
        bias = pre - x @ w_ih.T - h_prev @ w_hh.T  # bias_ih + bias_hh, broadcast over the batch
        torch.testing.assert_close(bias, bias[:1].expand_as(bias), rtol=0, atol=1e-4)
        biases.append(bias[0])
    assert 0.5 < torch.cat(biases).std().item() < 1.2  # the sum of two N(0, 0.6²): about 0.85


def test_lstm_cell_backward_in_place_is_wrong():
    def in_place(dh, dc, x, state, gates, weight_ih, weight_hh):
        out = Fn.lstm_cell_backward(dh, dc.clone(), x, state, gates, weight_ih, weight_hh)
        dc += 1.0
        return out

    result = checks.check_lstm_cell_backward(in_place, quiet=True, watch=False)
    assert result.status == "wrong" and result.points == 0 and "`dc`" in result.message


# ------------------------------------------------------------------ every variant is reachable
@pytest.mark.parametrize("mistakes, check", [
    (backward_checks._mistakes, checks.check_lstm_cell_backward),
    (loop_checks._mistakes(True), checks.check_lstm_forward),
    (loop_checks._mistakes(False), checks.check_gru_forward),
    (lstm_checks._lstm_mistakes, checks.check_lstm_cell),
    (gru_checks._gru_mistakes, checks.check_gru_cell),
    (gru_checks._chung_mistakes, checks.check_gru_cell_chung),
])
def test_every_single_mistake_is_named_by_its_own_id(mistakes, check):
    """No single mistake is shadowed by another one listed before it (pairs are tested above)."""
    for m in mistakes():
        if "+" in m.id:
            continue
        result = check(m.fn, quiet=True, watch=False)
        assert result.mistakes == (m.id,), (m.id, result)


# ------------------------------------------------------------------ every case counts, tolerances pinned
def _perturbed(reference, wrong_call: int, by: float):
    """The reference, except that the ``wrong_call``-th call (0-based) returns every tensor changed by ``by``."""
    calls = []

    def shift(value):
        if isinstance(value, torch.Tensor):
            return value + by
        return type(value)(shift(v) for v in value)

    def fn(*args, **kwargs):
        calls.append(1)
        out = reference(*args, **kwargs)
        return shift(out) if len(calls) - 1 == wrong_call else out
    return fn


#: the cases each check runs, by their labels in messages (pinned: batch 1 and > 1, N ≠ H_in, with and without
#: biases, float32 and float64, T = 1 and T > 1)
_CELL_CASES = ["N=4, H_in=3, H=5, with biases, float32", "N=1, H_in=4, H=2, with biases, float32",
               "N=3, H_in=5, H=3, without biases, float32", "N=2, H_in=3, H=4, with biases, float64",
               "N=1, H_in=2, H=3, without biases, float64"]
_LOOP_CASES = ["N=3, H_in=4, H=3, with biases, float32, T=5", "N=2, H_in=3, H=2, with biases, float32, T=1",
               "N=1, H_in=2, H=3, without biases, float32, T=4", "N=2, H_in=3, H=4, with biases, float64, T=3",
               "N=2, H_in=2, H=3, without biases, float64, T=6"]
_BACKWARD_CASES = ["N=4, H_in=3, H=5, float32", "N=1, H_in=4, H=2, float32", "N=3, H_in=5, H=3, float64",
                   "N=2, H_in=3, H=4, float64"]


def _label_of(args: tuple, gates: int) -> str:
    """The label a call's arguments should carry, read from the tensors (their shapes checked on the way)."""
    if len(args) == 7:  # lstm_cell_backward(dh, dc, x, (h_prev, c_prev), (i, f, g, o, c), weight_ih, weight_hh)
        dh, dc, x, state, saved, w_ih, w_hh = args
        (n, h_in), h = x.shape, dh.shape[1]
        assert all(t.shape == (n, h) for t in (dh, dc, *state, *saved))
        return f"N={n}, H_in={h_in}, H={h}, {str(x.dtype).removeprefix('torch.')}"
    x, state, w_ih, w_hh, *biases = args
    (n, h_in), h = x.shape[-2:], w_hh.shape[1]
    assert w_ih.shape == (gates * h, h_in) and w_hh.shape == (gates * h, h)
    assert all(t.shape == (n, h) for t in (state if isinstance(state, tuple) else (state,)))
    assert all(b.shape == (gates * h,) for b in biases) and len(biases) in (0, 2)
    steps = f", T={x.shape[0]}" if x.dim() == 3 else ""
    return (f"N={n}, H_in={h_in}, H={h}, {'with' if biases else 'without'} biases, "
            f"{str(x.dtype).removeprefix('torch.')}{steps}")


_CASES_OF = [
    ("lstm_forward", checks.check_lstm_forward, Fn.lstm_forward, 4, _LOOP_CASES),
    ("lstm_cell_backward", checks.check_lstm_cell_backward, Fn.lstm_cell_backward, 4, _BACKWARD_CASES),
    ("gru_cell_chung", checks.check_gru_cell_chung, Fn.gru_cell_chung, 3, _CELL_CASES),
    ("gru_forward", checks.check_gru_forward, Fn.gru_forward, 3, _LOOP_CASES),
    ("lstm_cell", checks.check_lstm_cell, Fn.lstm_cell, 4, _CELL_CASES),
    ("gru_cell", checks.check_gru_cell, Fn.gru_cell, 3, _CELL_CASES),
]


@pytest.mark.parametrize("grade_id, check, reference, gates, labels", _CASES_OF, ids=[c[0] for c in _CASES_OF])
def test_every_case_is_compared(grade_id, check, reference, gates, labels):
    """The check runs the pinned cases in order, and an answer wrong on any single one fails, named by its label."""
    calls = []

    def recording(*args):
        calls.append(args)
        return reference(*args)

    assert check(recording, quiet=True, watch=False).passed
    assert [_label_of(args, gates) for args in calls] == labels
    for k, label in enumerate(labels):
        result = check(_perturbed(reference, k, 1e-3), max_points=2, quiet=True, watch=False)
        assert result.status == "wrong" and result.points == 0, (grade_id, k)
        assert result.message.startswith(f"{grade_id}: wrong values for {label}."), result.message
    assert check(_perturbed(reference, len(labels), 1e-3), quiet=True, watch=False).passed  # no case after the last


def test_cell_inputs_default_to_one_hidden_state():
    gen = torch.Generator().manual_seed(0)
    x, h, w_ih, w_hh = cell_inputs(gen, 1, 2, 3, 4, False, torch.float64)  # as check_rnn_cell calls it
    assert (x.shape, h.shape, w_ih.shape, w_hh.shape) == ((2, 3), (2, 4), (4, 3), (4, 4))
    x, (h, c), *weights = cell_inputs(gen, 4, 2, 3, 4, True, torch.float32, cell_state=True)
    assert [t.shape for t in (h, c, *weights)] == [(2, 4), (2, 4), (16, 3), (16, 4), (16,), (16,)]
    assert all(t.dtype == torch.float32 for t in (x, h, c, *weights))


def _flat(*tensors) -> torch.Tensor:
    return torch.cat([t.double().flatten() for t in tensors])


@pytest.mark.parametrize("check, reference", [
    (checks.check_lstm_cell, Fn.lstm_cell),
    (checks.check_gru_cell, Fn.gru_cell),
    (checks.check_gru_cell_chung, Fn.gru_cell_chung),
    (checks.check_lstm_forward, Fn.lstm_forward),
    (checks.check_gru_forward, Fn.gru_forward),
    (checks.check_lstm_cell_backward, Fn.lstm_cell_backward),
])
def test_cases_draw_inputs_at_unit_scale_and_weights_at_0_6(check, reference):
    """Inputs, states and incoming gradients are N(0, 1); weights and biases N(0, 0.6²) (no saturated gates);
    float64 cases carry float64 values, not float32 draws cast up."""
    calls = []

    def recording(*args):
        calls.append(args)
        return reference(*args)

    assert check(recording, quiet=True, watch=False).passed
    doubles = [args[2 if reference is Fn.lstm_cell_backward else 0] for args in calls]
    doubles = [x for x in doubles if x.dtype == torch.float64]
    assert doubles and not any(torch.equal(x, x.float().double()) for x in doubles)  # drawn in float64, not cast up
    if reference is Fn.lstm_cell_backward:
        unit = [_flat(dh, dc, x, *state) for dh, dc, x, state, _, _, _ in calls]
        weights = [_flat(w_ih, w_hh) for *_, w_ih, w_hh in calls]
        biases = []
    else:
        unit = [_flat(x, *(state if isinstance(state, tuple) else (state,))) for x, state, *_ in calls]
        weights = [_flat(*args[2:4]) for args in calls]
        biases = [_flat(*args[4:]) for args in calls if len(args) == 6]
        assert 0 < len(biases) < len(calls)  # cases with and without biases
    for name, values, low, high in [("inputs", unit, 0.75, 1.35), ("weights", weights, 0.45, 0.8),
                                    ("biases", biases, 0.45, 0.8)]:
        if values:
            assert low < torch.cat(values).std().item() < high, name


def test_tolerances_are_pinned():
    """float32 answers within 1e-5 pass and 1e-4 away fail; float64 within 1e-10 pass and 1e-8 away fail."""
    def off_by(delta32, delta64):
        def fn(*args):
            out = Fn.gru_forward(*args)
            delta = delta32 if out[0].dtype == torch.float32 else delta64
            return out[0] + delta, out[1] + delta
        return fn

    assert checks.check_gru_forward(off_by(2e-6, 1e-12), quiet=True, watch=False).passed
    assert checks.check_gru_forward(off_by(1e-4, 0.0), quiet=True, watch=False).status == "wrong"
    assert checks.check_gru_forward(off_by(0.0, 1e-8), quiet=True, watch=False).status == "wrong"


def _gru_args(bias: bool):
    return cell_inputs(torch.Generator().manual_seed(3), 3, 2, 3, 4, bias, torch.float64)


def test_b_hn_outside_the_reset_gate_differs_from_torchs_gru_only_with_a_bias():
    """With no bias, r ⊙ (W_hn h) + b_hn and r ⊙ (W_hn h + b_hn) are the same cell: never a mistake there."""
    outside = gru_checks._gru_variant(reset="bias_outside")
    assert torch.allclose(outside(*_gru_args(False)), Fn.gru_cell(*_gru_args(False)), rtol=0, atol=1e-12)
    assert not torch.allclose(outside(*_gru_args(True)), Fn.gru_cell(*_gru_args(True)), rtol=0, atol=1e-3)


@pytest.mark.parametrize("check", [checks.check_gru_cell, checks.check_gru_cell_chung])
def test_a_gru_answer_never_split_into_gates_is_told_how_to_split(check):
    def split_wrong(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        return torch.tanh(torch.nn.functional.linear(x, weight_ih, bias_ih))  # (N, 3H): never split into gates

    result = check(split_wrong, max_points=2, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert "Hint: split the (N, 3H) projections along the last dimension: `.chunk(3, dim=-1)`." in result.message


def _loop(kind: str, outputs_as, last_as=lambda s: s):
    """A right loop over the reference cell whose outputs (T, N, H) and last state are then reshaped."""
    cell = Fn.lstm_cell if kind == "lstm" else Fn.gru_cell

    def forward(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        outs = []
        for x_t in x:
            state = cell(x_t, state, weight_ih, weight_hh, bias_ih, bias_hh)
            outs.append(state[0] if kind == "lstm" else state)
        outputs = outputs_as(torch.stack(outs))
        if kind == "lstm":
            return outputs, (last_as(state[0]), state[1])
        return outputs, last_as(state)
    return forward


@pytest.mark.parametrize("kind, check", [("lstm", checks.check_lstm_forward), ("gru", checks.check_gru_forward)])
@pytest.mark.parametrize("outputs_as, last_as, hint", [
    (lambda o: o.transpose(0, 1), lambda s: s,
     "the outputs are time first, (T, N, H): stack the steps along dim 0, `torch.stack(outputs, dim=0)`."),
    (lambda o: o.reshape(-1, o.shape[-1]), lambda s: s,
     "the outputs hold one hidden state (N, H) per time step, stacked along a new first dimension: (T, N, H)."),
    (lambda o: o, lambda s: s[None], "the last state has the shape of the initial state, (N, H)."),
])
def test_a_loops_wrong_shape_gets_the_hint_for_that_output(kind, check, outputs_as, last_as, hint):
    result = check(_loop(kind, outputs_as, last_as), max_points=2, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert f"Hint: {hint}" in result.message


def test_an_lstm_answer_never_split_into_gates_is_told_how_to_split():
    def unsplit(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        gates = torch.nn.functional.linear(x, weight_ih, bias_ih) + torch.nn.functional.linear(state[0], weight_hh)
        return torch.tanh(gates), torch.sigmoid(gates)  # (N, 4H) each

    result = checks.check_lstm_cell(unsplit, max_points=2, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert ("Hint: split the (N, 4H) gate pre-activations along the last dimension: `gates.chunk(4, dim=-1)`."
            in result.message)


@pytest.mark.parametrize("wrap, got", [
    (lambda h, c: (h, c, c), "tuple (Tensor, Tensor, Tensor)"),
    (lambda h, c: [h], "list (Tensor)"),
    (lambda h, c: {"h": h, "c": c}, "dict"),
])
def test_an_lstm_answer_that_is_not_a_pair_is_told_to_return_h_and_c(wrap, got):
    def answer(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = make_lstm()(x, state, weight_ih, weight_hh, bias_ih, bias_hh)
        return wrap(h, c)

    result = checks.check_lstm_cell(answer, max_points=2, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert f"expected a pair (h_t, c_t), got {got}" in result.message, result.message
