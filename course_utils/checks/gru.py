"""Check for the GRU exercise: ``gru_cell`` in PyTorch's convention."""

from __future__ import annotations

import itertools

from .. import functional as Fn
from .cells import (
    ACT,
    COVERAGE,
    DEFAULT_SEED,
    SHAPES,
    cell_cases,
    linear,
    matmul_hint,
    single_output,
)
from .harness import FunctionExercise, Mistake, check_function, notebook_check
from .result import CheckResult

__all__ = ['check_gru_cell']


_GRU_ORDER = "rzn"
_GRU_NAMES = {"r": "reset gate r", "z": "update gate z", "n": "candidate n"}
_GRU_ACTS = {"r": "sigmoid", "z": "sigmoid", "n": "tanh"}


def _gru_variant(order: str = _GRU_ORDER, acts: dict | None = None, drop_b_ih=False, drop_b_hh=False,
                 swap_z=False, reset: str = "after", returns: str = "h_t"):
    acts = {**_GRU_ACTS, **(acts or {})}

    def cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        if returns == "h":
            return h
        b_ih = None if drop_b_ih else bias_ih
        b_hh = None if drop_b_hh else bias_hh
        xs = dict(zip(order, linear(x, weight_ih, b_ih).chunk(3, dim=-1)))  # 3 x (N, H)
        ws = dict(zip(order, weight_hh.chunk(3, dim=0)))  # 3 x (H, H)
        bs = dict(zip(order, b_hh.chunk(3))) if b_hh is not None else {k: None for k in order}
        r = ACT[acts["r"]](xs["r"] + linear(h, ws["r"], bs["r"]))
        z = ACT[acts["z"]](xs["z"] + linear(h, ws["z"], bs["z"]))
        h_n = {"after": lambda: r * linear(h, ws["n"], bs["n"]),  # r ⊙ (W_hn h + b_hn), torch
               "before": lambda: linear(r * h, ws["n"], bs["n"]),  # W_hn (r ⊙ h) + b_hn, Cho et al.
               "bias_outside": lambda: r * linear(h, ws["n"], None) + (bs["n"] if bs["n"] is not None else 0),
               "none": lambda: linear(h, ws["n"], bs["n"])}[reset]()
        n = ACT[acts["n"]](xs["n"] + h_n)
        if returns == "n":
            return n
        return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h
    return cell


def _gru_mistakes() -> list[Mistake]:
    v = _gru_variant
    out = [
        Mistake("`z` and `1 − z` are swapped: PyTorch's GRU keeps z_t of the old state, "
                "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}; z ⊙ n + (1 − z) ⊙ h is the other convention.",
                v(swap_z=True), id="z_swapped"),
        Mistake("the reset gate is applied before the hidden matmul, W_hn (r ⊙ h) + b_hn (Cho et al.'s form); "
                "PyTorch applies it after: n_t = tanh(W_in x + b_in + r_t ⊙ (W_hn h + b_hn)).", v(reset="before"), id="reset_before_matmul"),
        Mistake("this is the textbook GRU of Chung et al. (2014), not PyTorch's: the reset gate is applied before the hidden matmul "
                "(use r ⊙ (W_hn h + b_hn)) and `z` and `1 − z` are swapped "
                "(use h_t = (1 − z) ⊙ n + z ⊙ h).", v(reset="before", swap_z=True), id="chung_form"),
        Mistake("the bias b_hn is added outside the reset gate: PyTorch computes r_t ⊙ (W_hn h + b_hn).",
                v(reset="bias_outside"), id="b_hn_outside_reset"),
        Mistake("the reset gate r is never used: n_t = tanh(W_in x + b_in + r_t ⊙ (W_hn h + b_hn)).",
                v(reset="none"), id="reset_unused"),
    ]
    for perm in itertools.permutations(_GRU_ORDER):
        order = "".join(perm)
        if order != _GRU_ORDER:
            out.append(Mistake(
                f"gates in the wrong order: your code reads them as {', '.join(order)}, but torch stacks the rows "
                f"of weight_ih and weight_hh as r, z, n (reset, update, new): "
                f"`r, z, n = ....chunk(3, dim=-1)`.", v(order=order), id="gate_order"))
    for k in "rz":
        out.append(Mistake(f"tanh where sigmoid belongs: the {_GRU_NAMES[k]} needs a sigmoid (values in (0, 1)).",
                           v(acts={k: "tanh"}), id="tanh_for_sigmoid_gate"))
    out += [
        Mistake("tanh where sigmoid belongs: r and z both need a sigmoid (values in (0, 1)).",
                v(acts={"r": "tanh", "z": "tanh"}), id="tanh_for_both_gates"),
        Mistake("sigmoid where tanh belongs: the candidate n uses tanh, values in (-1, 1).", v(acts={"n": "sigmoid"}), id="sigmoid_for_tanh_candidate"),
        Mistake("the bias `bias_ih` is never added (missing bias).", v(drop_b_ih=True), id="missing_bias_ih"),
        Mistake("the bias `bias_hh` is never added (missing bias).", v(drop_b_hh=True), id="missing_bias_hh"),
        Mistake("neither bias is added (missing biases `bias_ih` and `bias_hh`).", v(drop_b_ih=True, drop_b_hh=True), id="missing_both_biases"),
        Mistake("your function returns the candidate n_t; the new state is h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}.",
                v(returns="n"), id="returns_candidate"),
        Mistake("the hidden state is not updated: your function returns the previous h unchanged.", v(returns="h"), id="state_not_updated"),
    ]
    return out


_GRU = FunctionExercise(
    name="gru_cell",
    reference=Fn.gru_cell,
    unpack=single_output("h_t"),
    mistakes=_gru_mistakes,
    arg_names=("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature="gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> h",
    coverage=COVERAGE.format(n=len(SHAPES)),
    error_hint=matmul_hint("x is (N, H_in), h is (N, H), weight_ih is (3H, H_in), weight_hh is (3H, H)"),
    shape_hint=lambda name, e, g: ("split the (N, 3H) projections along the last dimension: "
                                   "`.chunk(3, dim=-1)`." if g != e else None),
)


@notebook_check
def check_gru_cell(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> h`` (torch's form).

    Compares with :func:`course_utils.functional.gru_cell` and names the common mistakes:
    ``z`` and ``1 − z`` swapped, the reset gate applied before the hidden matmul (Cho et al.),
    both together, b_hn outside the reset gate, gates in the wrong order, tanh where sigmoid
    belongs (or the reverse), a missing bias, the candidate or the old state returned.
    """
    return check_function(_GRU, fn, cell_cases(3, seed), max_points)
