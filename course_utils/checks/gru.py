"""Checks for the GRU exercises: ``gru_cell`` in PyTorch's convention and ``gru_cell_chung`` in Chung et al.'s."""

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
from .diagnosis import Spec, pairs, split_ids
from .harness import FunctionExercise, Mistake, check_function, notebook_check
from .result import CheckResult

__all__ = ['check_gru_cell', 'check_gru_cell_chung']


_GRU_ORDER = "rzn"
_GRU_NAMES = {"r": "reset gate r", "z": "update gate z", "n": "candidate n"}
_GRU_ACTS = {"r": "sigmoid", "z": "sigmoid", "n": "tanh"}


def _gru_variant(order: str = _GRU_ORDER, acts: dict | None = None, drop_b_ih=False, drop_b_hh=False,
                 swap_z=False, reset: str = "after", returns: str = "h_t"):
    """A GRU step, PyTorch's by default; ``reset="before", swap_z=True`` is Chung et al.'s form."""
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
        if reset == "summed":  # x and h projections added first, then split: r scales W_in x + b_in too
            n = ACT[acts["n"]](r * (xs["n"] + linear(h, ws["n"], bs["n"])))
        else:
            h_n = {"after": lambda: r * linear(h, ws["n"], bs["n"]),  # r ⊙ (W_hn h + b_hn), torch
                   "before": lambda: linear(r * h, ws["n"], bs["n"]),  # W_hn (r ⊙ h) + b_hn, Cho et al.
                   "bias_outside": lambda: r * linear(h, ws["n"], None) + (bs["n"] if bs["n"] is not None else 0),
                   "none": lambda: linear(h, ws["n"], bs["n"])}[reset]()
            n = ACT[acts["n"]](xs["n"] + h_n)
        if returns == "n":
            return n
        return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h
    return cell


def _chung_variant(**kwargs):
    """A variant of Chung et al.'s form: reset before the matmul, z weights the candidate, unless told otherwise."""
    return _gru_variant(**{"reset": "before", "swap_z": True, **kwargs})


_ORDER_TEXT = ("gates in the wrong order: your code reads them as {order}, but torch stacks the rows "
               "of weight_ih and weight_hh as r, z, n (reset, update, new): `.chunk(3, dim=-1)` gives the "
               "blocks r, z, n in that order.")


def _shared_specs(candidate: str) -> list[Spec]:
    """Mistakes that read the same in both conventions (``candidate``: how the candidate is written)."""
    specs = [Spec("order", {"order": "".join(p)}, _ORDER_TEXT.format(order=", ".join(p)), "gate_order")
             for p in itertools.permutations(_GRU_ORDER) if "".join(p) != _GRU_ORDER]
    specs += [Spec("act", {"acts": {k: "tanh"}}, f"tanh where sigmoid belongs: the {_GRU_NAMES[k]} needs a sigmoid "
                                                 f"(values in (0, 1)).", "tanh_for_sigmoid_gate") for k in "rz"]
    specs += [
        Spec("act", {"acts": {"r": "tanh", "z": "tanh"}}, "tanh where sigmoid belongs: r and z both need a sigmoid "
             "(values in (0, 1)).", "tanh_for_both_gates"),
        Spec("act", {"acts": {"n": "sigmoid"}}, f"sigmoid where tanh belongs: the candidate uses tanh, values in "
             f"(-1, 1): {candidate}.", "sigmoid_for_tanh_candidate"),
        Spec("bias", {"drop_b_ih": True}, "the bias `bias_ih` is never added (missing bias).", "missing_bias_ih"),
        Spec("bias", {"drop_b_hh": True}, "the bias `bias_hh` is never added (missing bias).", "missing_bias_hh"),
        Spec("bias", {"drop_b_ih": True, "drop_b_hh": True}, "neither bias is added (missing biases `bias_ih` and "
             "`bias_hh`).", "missing_both_biases"),
    ]
    return specs


_TORCH_N = "n_t = tanh(W_in x + b_in + r_t ⊙ (W_hn h + b_hn))"
_CHUNG_N = "ñ_t = tanh(W_in x + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)"


def _gru_specs() -> list[Spec]:
    return [
        Spec("z", {"swap_z": True}, "`z` and `1 − z` are swapped: PyTorch's GRU keeps z_t of the old state, "
             "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}; z ⊙ n + (1 − z) ⊙ h is the other convention.", "z_swapped"),
        Spec("reset", {"reset": "before"}, "the reset gate is applied before the hidden matmul, W_hn (r ⊙ h) + b_hn "
             f"(Cho et al.'s form); PyTorch applies it after: {_TORCH_N}.", "reset_before_matmul"),
        Spec("reset", {"reset": "bias_outside"}, "the bias b_hn is added outside the reset gate: PyTorch computes "
             "r_t ⊙ (W_hn h + b_hn).", "b_hn_outside_reset"),
        Spec("reset", {"reset": "none"}, "the reset gate r is never used (as when the input and hidden projections "
             "are added before splitting and the candidate is the tanh of their sum): "
             f"{_TORCH_N}.", "reset_unused"),
        Spec("reset", {"reset": "summed"}, "the input and hidden projections are added before splitting, so the "
             "reset gate scales the input part too: r_t ⊙ (W_in x + b_in + W_hn h + b_hn). Keep the two apart "
             f"for the candidate, where r_t multiplies the hidden part only: {_TORCH_N}.",
             "projections_summed_before_split"),
    ] + _shared_specs(_TORCH_N) + [
        Spec("returns", {"returns": "n"}, "your function returns the candidate n_t; the new state is "
             "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}.", "returns_candidate"),
    ]


def _gru_mistakes() -> list[Mistake]:
    specs = _gru_specs()
    chung = Mistake("this is the textbook GRU of Chung et al. (2014), not PyTorch's: the reset gate is applied "
                    "before the hidden matmul (use r ⊙ (W_hn h + b_hn)) and `z` and `1 − z` are swapped "
                    "(use h_t = (1 − z) ⊙ n + z ⊙ h).", _gru_variant(reset="before", swap_z=True), id="chung_form")
    state = Mistake("the hidden state is not updated: your function returns the previous h unchanged.",
                    _gru_variant(returns="h"), id="state_not_updated")
    return [chung] + [s.mistake(_gru_variant) for s in specs] + [state] + pairs(specs, _gru_variant)


def _chung_specs() -> list[Spec]:
    return [
        Spec("z", {"swap_z": False}, "z_t weights the old state here, h_t = (1 − z_t) ⊙ ñ_t + z_t ⊙ h_{t-1} "
             "(PyTorch's and Cho et al.'s side); in Chung et al.'s form z_t is the share of the candidate: "
             "h_t = z_t ⊙ ñ_t + (1 − z_t) ⊙ h_{t-1}.", "z_swapped"),
        Spec("reset", {"reset": "after"}, "the reset gate is applied after the hidden matmul, r ⊙ (W_hn h + b_hn) "
             f"(PyTorch's placement); in Chung et al.'s form it scales h_{{t-1}} before: {_CHUNG_N}.",
             "reset_after_matmul"),
        Spec("reset", {"reset": "none"}, f"the reset gate r is never used: {_CHUNG_N}.", "reset_unused"),
    ] + _shared_specs(_CHUNG_N) + [
        Spec("returns", {"returns": "n"}, "your function returns the candidate ñ_t; the new state is "
             "h_t = z_t ⊙ ñ_t + (1 − z_t) ⊙ h_{t-1}.", "returns_candidate"),
    ]


def _chung_mistakes() -> list[Mistake]:
    specs = _chung_specs()
    torch_form = Mistake("this is PyTorch's GRU (your `gru_cell` of section 2), not Chung et al.'s: apply the reset "
                         f"gate before the hidden matmul, {_CHUNG_N}, and let z_t weight the candidate, "
                         "h_t = z_t ⊙ ñ_t + (1 − z_t) ⊙ h_{t-1}.", _gru_variant(), id="torch_form")
    state = Mistake("the hidden state is not updated: your function returns the previous h unchanged.",
                    _chung_variant(returns="h"), id="state_not_updated")
    return [torch_form] + [s.mistake(_chung_variant) for s in specs] + [state] + pairs(specs, _chung_variant)


_GRU_SHAPE_HINT = (lambda name, e, g:  # (called only for a shape that differs)
                   "split the (N, 3H) projections along the last dimension: `.chunk(3, dim=-1)`.")


_GRU = FunctionExercise(
    name="gru_cell",
    reference=Fn.gru_cell,
    unpack=single_output("h_t"),
    mistakes=_gru_mistakes,
    arg_names=("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature="gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> h",
    coverage=COVERAGE.format(n=len(SHAPES)),
    error_hint=matmul_hint("x is (N, H_in), h is (N, H), weight_ih is (3H, H_in), weight_hh is (3H, H)"),
    shape_hint=_GRU_SHAPE_HINT,
)

_CHUNG = FunctionExercise(
    name="gru_cell_chung",
    reference=Fn.gru_cell_chung,
    unpack=single_output("h_t"),
    mistakes=_chung_mistakes,
    arg_names=("x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature="gru_cell_chung(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> h",
    coverage=COVERAGE.format(n=len(SHAPES)),
    error_hint=matmul_hint("x is (N, H_in), h is (N, H), weight_ih is (3H, H_in), weight_hh is (3H, H); "
                           "W_hn = weight_hh.chunk(3, dim=0)[2] is (H, H)"),
    shape_hint=_GRU_SHAPE_HINT,
)


@notebook_check
def check_gru_cell(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> h`` (torch's form).

    Compares with :func:`course_utils.functional.gru_cell` and names the common mistakes:
    ``z`` and ``1 − z`` swapped, the reset gate applied before the hidden matmul (Cho et al.),
    both together, b_hn outside the reset gate, the reset gate unused or scaling the input part
    too (projections added before splitting), gates in the wrong order, tanh where sigmoid
    belongs (or the reverse), a missing bias, the candidate or the old state returned, and any
    two of these at once (each named by its own id in ``result.mistakes``).
    """
    return split_ids(check_function(_GRU, fn, cell_cases(3, seed), max_points))


@notebook_check
def check_gru_cell_chung(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``gru_cell_chung(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> h``.

    Chung et al.'s (2014) form with torch's stacked weights (:func:`course_utils.functional.gru_cell_chung`):
    ñ_t = tanh(W_in x + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn), h_t = z_t ⊙ ñ_t + (1 − z_t) ⊙ h_{t-1}.
    Names PyTorch's form (or half of it: z on the old state's side, the reset after the matmul),
    the reset gate unused, gates in the wrong order, tanh where sigmoid belongs (or the reverse),
    a missing bias, the candidate or the old state returned, and any two of these at once.
    """
    return split_ids(check_function(_CHUNG, fn, cell_cases(3, seed), max_points))
