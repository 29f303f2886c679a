"""Check for the first exercise: ``rnn_cell``, one step of an Elman RNN."""

from __future__ import annotations

import torch

from .. import functional as Fn
from .cells import (
    ACT,
    COVERAGE,
    DEFAULT_SEED,
    cell_cases,
    cell_inputs,
    cell_label,
    linear,
    matmul_hint,
    single_output,
)
from .harness import Case, FunctionExercise, Mistake, check_function, notebook_check
from .result import CheckResult

__all__ = ['check_rnn_cell']


def _rnn_variant(act: str | None = None, drop_b_ih=False, drop_b_hh=False, t_ih=False, t_hh=False,
                 no_h=False, swap_weights=False, returns: str = "h_t"):
    def cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
        if returns == "h":
            return h
        if returns == "x":
            return x
        w_ih, w_hh = (weight_hh, weight_ih) if swap_weights else (weight_ih, weight_hh)
        pre = linear(x, w_ih, bias_ih, t_ih, not drop_b_ih)
        if not no_h:
            pre = pre + linear(h, w_hh, bias_hh, t_hh, not drop_b_hh)
        elif not drop_b_hh and bias_hh is not None:
            pre = pre + bias_hh
        return ACT[act or nonlinearity](pre)
    return cell


def _rnn_mistakes() -> list[Mistake]:
    v = _rnn_variant
    return [
        Mistake("relu is applied where tanh belongs: the default nonlinearity is tanh, "
                "h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).", v(act="relu"), id="relu_for_tanh"),
        Mistake("the `nonlinearity` argument is ignored: tanh is applied even when nonlinearity='relu'.",
                v(act="tanh"), id="nonlinearity_ignored"),
        Mistake("sigmoid is applied where tanh belongs.", v(act="sigmoid"), id="sigmoid_for_tanh"),
        Mistake("no nonlinearity is applied: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).",
                v(act="identity"), id="no_nonlinearity"),
        Mistake("the bias `bias_ih` is never added (missing bias).", v(drop_b_ih=True), id="missing_bias_ih"),
        Mistake("the bias `bias_hh` is never added (missing bias).", v(drop_b_hh=True), id="missing_bias_hh"),
        Mistake("neither bias is added (missing biases `bias_ih` and `bias_hh`).", v(drop_b_ih=True, drop_b_hh=True), id="missing_both_biases"),
        Mistake("`x @ weight_ih` is used where `x @ weight_ih.T` belongs: weight_ih has shape (H, H_in), "
                "so W transposed wrongly; `F.linear(x, weight_ih)` computes x @ weight_ih.T.", v(t_ih=True), id="transposed_weight_ih"),
        Mistake("`h @ weight_hh` is used where `h @ weight_hh.T` belongs: W transposed wrongly; "
                "`F.linear(h, weight_hh)` computes h @ weight_hh.T.", v(t_hh=True), id="transposed_weight_hh"),
        Mistake("both weights are transposed wrongly: use `x @ weight_ih.T` and `h @ weight_hh.T` "
                "(or `F.linear`).", v(t_ih=True, t_hh=True), id="transposed_both_weights"),
        Mistake("`weight_ih` and `weight_hh` are swapped: weight_ih multiplies the input x, "
                "weight_hh the previous hidden state h.", v(swap_weights=True), id="swapped_weights"),
        Mistake("the previous hidden state h is ignored: h_t depends on W_hh h_{t-1} too.", v(no_h=True), id="hidden_state_ignored"),
        Mistake("the hidden state is not updated: your function returns the previous h unchanged.",
                v(returns="h"), id="state_not_updated"),
        Mistake("your function returns the input x, not the new hidden state h_t.", v(returns="x"), id="returns_input"),
    ]


_RNN = FunctionExercise(
    name="rnn_cell",
    reference=Fn.rnn_cell,
    unpack=single_output("h_t"),
    mistakes=_rnn_mistakes,
    arg_names=("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature='rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh")',
    coverage=COVERAGE.format(n=8) + ", tanh and relu",
    error_hint=matmul_hint("x is (N, H_in), h is (N, H), weight_ih is (H, H_in), weight_hh is (H, H)"),
    shape_hint=lambda name, e, g: "h_t has one row per batch element and H columns, like h.",
)


@notebook_check
def check_rnn_cell(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh")``.

    Compares with :func:`course_utils.functional.rnn_cell` on random inputs (a square case
    first, where a transposed weight gives wrong values rather than a shape error) and names
    the common mistakes: relu or sigmoid for tanh, a missing bias, a transposed weight, the
    hidden state ignored or returned unchanged.
    """
    gen = torch.Generator().manual_seed(seed)
    f32, f64 = torch.float32, torch.float64
    cases = [Case(cell_label(3, 4, 4, True, f32), cell_inputs(gen, 1, 3, 4, 4, True, f32))]  # square: H_in = H
    cases += cell_cases(1, seed + 1)
    for n, h_in, h, dtype, act in ((3, 3, 5, f32, "relu"), (2, 3, 4, f64, "tanh")):
        cases.append(Case(cell_label(n, h_in, h, True, dtype, f", nonlinearity='{act}'"),
                          cell_inputs(gen, 1, n, h_in, h, True, dtype), {"nonlinearity": act}))
    return check_function(_RNN, fn, cases, max_points)
