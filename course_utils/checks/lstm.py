"""Check for the LSTM exercise: ``lstm_cell``, one step returning ``(h, c)``."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from .. import functional as Fn
from .cells import (
    ACT,
    COVERAGE,
    DEFAULT_SEED,
    SHAPES,
    cell_cases,
    linear,
    matmul_hint,
)
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, notebook_check, expect_tensor
from .result import CheckResult, type_name

__all__ = ['check_lstm_cell']


_LSTM_ORDER = "ifgo"
_LSTM_NAMES = {"i": "input gate i", "f": "forget gate f", "g": "gate gate g (the cell candidate)",
               "o": "output gate o"}
_LSTM_ACTS = {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid"}


def _lstm_variant(order: str = _LSTM_ORDER, acts: dict | None = None, drop_b_ih=False, drop_b_hh=False,
                  output: str = "tanh_c", cell_rule: str = "ref", returns: str = "hc"):
    acts = {**_LSTM_ACTS, **(acts or {})}

    def cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = state
        if returns == "state":
            return h, c
        gates = linear(x, weight_ih, bias_ih, use_bias=not drop_b_ih) + \
            linear(h, weight_hh, bias_hh, use_bias=not drop_b_hh)  # (N, 4H)
        chunks = dict(zip(order, gates.chunk(4, dim=-1)))
        i, f, g, o = (ACT[acts[k]](chunks[k]) for k in "ifgo")
        if cell_rule == "no_forget":
            c_new = c + i * g
        elif cell_rule == "no_input":
            c_new = f * c + g
        else:
            c_new = f * c + i * g
        h_new = {"tanh_c": lambda: o * torch.tanh(c_new), "c": lambda: o * c_new,
                 "sigmoid_c": lambda: o * torch.sigmoid(c_new), "old_c": lambda: o * torch.tanh(c)}[output]()
        return (c_new, h_new) if returns == "ch" else (h_new, c_new)
    return cell


def _lstm_mistakes() -> list[Mistake]:
    v = _lstm_variant
    out = []
    for perm in itertools.permutations(_LSTM_ORDER):
        order = "".join(perm)
        if order != _LSTM_ORDER:
            out.append(Mistake(
                f"gates in the wrong order: your code reads them as {', '.join(order)}, but torch stacks the "
                f"rows of weight_ih and weight_hh as i, f, g, o (input, forget, gate gate, output): "
                f"`i, f, g, o = gates.chunk(4, dim=-1)`.", v(order=order), id="gate_order"))
    for k in "ifo":
        out.append(Mistake(f"tanh where sigmoid belongs: the {_LSTM_NAMES[k]} needs a sigmoid (values in (0, 1)); "
                           f"only the gate gate g uses tanh.", v(acts={k: "tanh"}), id="tanh_for_sigmoid_gate"))
    out += [
        Mistake("tanh where sigmoid belongs: every gate uses tanh, but i, f and o need a sigmoid "
                "(only the gate gate g uses tanh).", v(acts={k: "tanh" for k in "ifo"}), id="tanh_for_all_gates"),
        Mistake("sigmoid where tanh belongs: the gate gate g (the cell candidate) uses tanh, "
                "values in (-1, 1).", v(acts={"g": "sigmoid"}), id="sigmoid_for_tanh_candidate"),
        Mistake("the bias `bias_ih` is never added (missing bias).", v(drop_b_ih=True), id="missing_bias_ih"),
        Mistake("the bias `bias_hh` is never added (missing bias).", v(drop_b_hh=True), id="missing_bias_hh"),
        Mistake("neither bias is added (missing biases `bias_ih` and `bias_hh`).", v(drop_b_ih=True, drop_b_hh=True), id="missing_both_biases"),
        Mistake("`c` instead of `tanh(c)` in the output: h_t = o_t ⊙ tanh(c_t), not o_t ⊙ c_t.", v(output="c"), id="c_for_tanh_c"),
        Mistake("sigmoid where tanh belongs in the output: h_t = o_t ⊙ tanh(c_t).", v(output="sigmoid_c"), id="sigmoid_in_output"),
        Mistake("h_t uses the old cell state c_{t-1}: compute c_t first, then h_t = o_t ⊙ tanh(c_t).",
                v(output="old_c"), id="h_from_old_c"),
        Mistake("the forget gate is missing from the cell update: c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t.",
                v(cell_rule="no_forget"), id="missing_forget_gate"),
        Mistake("the input gate is missing from the cell update: c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t.",
                v(cell_rule="no_input"), id="missing_input_gate"),
        Mistake("your function returns (c, h); the order is (h, c), as in `torch.nn.LSTMCell`.", v(returns="ch"), id="returns_c_h"),
        Mistake("the state is not updated: your function returns the previous (h, c) unchanged.",
                v(returns="state"), id="state_not_updated"),
    ]
    return out


def _unpack_pair(value, case: Case) -> list[tuple[str, Tensor]]:
    if isinstance(value, Tensor):
        raise Malformed("expected a pair (h_t, c_t), got a single Tensor — return both: `return h, c`")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Malformed(f"expected a pair (h_t, c_t), got {type_name(value)}")
    return [("h_t", expect_tensor(value[0], "h_t")), ("c_t", expect_tensor(value[1], "c_t"))]


_LSTM = FunctionExercise(
    name="lstm_cell",
    reference=Fn.lstm_cell,
    unpack=_unpack_pair,
    mistakes=_lstm_mistakes,
    arg_names=("x", ("h", "c"), "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature="lstm_cell(x, (h, c), weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> (h, c)",
    coverage=COVERAGE.format(n=len(SHAPES)),
    error_hint=matmul_hint("x is (N, H_in), h and c are (N, H), weight_ih is (4H, H_in), weight_hh is (4H, H)"),
    shape_hint=lambda name, e, g: ("split the (N, 4H) gate pre-activations along the last dimension: "
                                   "`gates.chunk(4, dim=-1)`." if g != e else None),
)


@notebook_check
def check_lstm_cell(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``lstm_cell(x, (h, c), weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> (h, c)``.

    Compares with :func:`course_utils.functional.lstm_cell` and names the common mistakes:
    gates in the wrong order, tanh where sigmoid belongs (or the reverse), a missing bias,
    ``c`` instead of ``tanh(c)`` in the output, a gate missing from the cell update, (c, h)
    returned instead of (h, c), the state not updated.
    """
    return check_function(_LSTM, fn, cell_cases(4, seed, cell_state=True), max_points)
