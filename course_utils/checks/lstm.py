"""Check for the LSTM exercise: ``lstm_cell``, one step returning ``(h, c)``."""

from __future__ import annotations

import itertools
import re

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
from .diagnosis import Spec, name_error, pairs, split_ids
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, expect_tensor, notebook_check
from .result import CheckResult, type_name

__all__ = ['check_lstm_cell']


_LSTM_ORDER = "ifgo"
_LSTM_NAMES = {"i": "input gate i", "f": "forget gate f", "g": "gate gate g (the cell candidate)",
               "o": "output gate o"}
_LSTM_ACTS = {"i": "sigmoid", "f": "sigmoid", "g": "tanh", "o": "sigmoid"}


def _lstm_variant(order: str = _LSTM_ORDER, acts: dict | None = None, drop_b_ih=False, drop_b_hh=False,
                  output: str = "tanh_c", cell_rule: str = "ref", returns: str = "hc", ogate: str = "linear",
                  split_dim: int = -1):
    acts = {**_LSTM_ACTS, **(acts or {})}

    def cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        h, c = state
        if returns == "state":
            return h, c
        gates = linear(x, weight_ih, bias_ih, use_bias=not drop_b_ih) + \
            linear(h, weight_hh, bias_hh, use_bias=not drop_b_hh)  # (N, 4H)
        chunks = dict(zip(order, gates.chunk(4, dim=split_dim)))
        i, f, g, o = (ACT[acts[k]](chunks[k]) for k in "ifgo")
        if cell_rule == "no_forget":
            c_new = c + i * g
        elif cell_rule == "no_input":
            c_new = f * c + g
        else:
            c_new = f * c + i * g
        o = {"linear": lambda: o, "from_c": lambda: torch.sigmoid(c_new), "from_old_c": lambda: torch.sigmoid(c),
             "peephole": lambda: torch.sigmoid(chunks["o"] + c_new)}[ogate]()
        h_new = {"tanh_c": lambda: o * torch.tanh(c_new), "c": lambda: o * c_new,
                 "sigmoid_c": lambda: o * torch.sigmoid(c_new), "old_c": lambda: o * torch.tanh(c)}[output]()
        return (c_new, h_new) if returns == "ch" else (h_new, c_new)
    return cell


_ORDER_TEXT = ("gates in the wrong order: your code reads them as {order}, but torch stacks the rows of "
               "weight_ih and weight_hh as i, f, g, o (input, forget, gate gate, output): "
               "`i, f, g, o = gates.chunk(4, dim=-1)`.")
_OGATE_TEXT = ("the output gate is computed from the cell state{what}; it is a gate like the other three, a sigmoid "
               "of a linear combination of x_t and h_{{t-1}}: o_t = σ(W_io x_t + b_io + W_ho h_{{t-1}} + b_ho), "
               "the fourth block of the pre-activations. c_t enters the output only through tanh(c_t) in "
               "h_t = o_t ⊙ tanh(c_t).")
#: the chunk along the batch dimension, recognised by the error it raises (a 4H-wide block meets c's H columns)
_CHUNK_DIM0 = Mistake("the pre-activations are split along the wrong dimension: `gates` is (N, 4H), and "
                      "`chunk(4, dim=0)` splits the batch (or `gates` is not split at all), so a block of 4H "
                      "columns meets c's H columns. Split along the last dimension: "
                      "`i, f, g, o = gates.chunk(4, dim=-1)`.", _lstm_variant(split_dim=0), id="chunk_wrong_dim")


def _lstm_specs() -> list[Spec]:
    """The single mistakes, each on its axis (two on different axes can happen together)."""
    specs = [Spec("order", {"order": "".join(p)}, _ORDER_TEXT.format(order=", ".join(p)), "gate_order")
             for p in itertools.permutations(_LSTM_ORDER) if "".join(p) != _LSTM_ORDER]
    specs += [Spec("act", {"acts": {k: "tanh"}},
                   f"tanh where sigmoid belongs: the {_LSTM_NAMES[k]} needs a sigmoid (values in (0, 1)); "
                   f"only the gate gate g uses tanh.", "tanh_for_sigmoid_gate") for k in "ifo"]
    specs += [
        Spec("act", {"acts": {k: "tanh" for k in "ifo"}}, "tanh where sigmoid belongs: every gate uses tanh, but "
             "i, f and o need a sigmoid (only the gate gate g uses tanh).", "tanh_for_all_gates"),
        Spec("act", {"acts": {"g": "sigmoid"}}, "sigmoid where tanh belongs: the gate gate g (the cell candidate) "
             "uses tanh, values in (-1, 1).", "sigmoid_for_tanh_candidate"),
        Spec("bias", {"drop_b_ih": True}, "the bias `bias_ih` is never added (missing bias).", "missing_bias_ih"),
        Spec("bias", {"drop_b_hh": True}, "the bias `bias_hh` is never added (missing bias).", "missing_bias_hh"),
        Spec("bias", {"drop_b_ih": True, "drop_b_hh": True}, "neither bias is added (missing biases `bias_ih` and "
             "`bias_hh`).", "missing_both_biases"),
        Spec("output", {"output": "c"}, "`c` instead of `tanh(c)` in the output: h_t = o_t ⊙ tanh(c_t), "
             "not o_t ⊙ c_t.", "c_for_tanh_c"),
        Spec("output", {"output": "sigmoid_c"}, "sigmoid where tanh belongs in the output: h_t = o_t ⊙ tanh(c_t).",
             "sigmoid_in_output"),
        Spec("output", {"output": "old_c"}, "h_t uses the old cell state c_{t-1}: compute c_t first, then "
             "h_t = o_t ⊙ tanh(c_t).", "h_from_old_c"),
        Spec("ogate", {"ogate": "from_c"}, _OGATE_TEXT.format(what=", o_t = σ(c_t)"), "output_gate_from_c"),
        Spec("ogate", {"ogate": "from_old_c"}, _OGATE_TEXT.format(what=", o_t = σ(c_{t-1})"), "output_gate_from_c"),
        Spec("ogate", {"ogate": "peephole"}, _OGATE_TEXT.format(what=" added to its pre-activation (a \"peephole\")"),
             "output_gate_from_c"),
        Spec("cell", {"cell_rule": "no_forget"}, "the forget gate is missing from the cell update: "
             "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t.", "missing_forget_gate"),
        Spec("cell", {"cell_rule": "no_input"}, "the input gate is missing from the cell update: "
             "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t.", "missing_input_gate"),
        Spec("returns", {"returns": "ch"}, "your function returns (c, h); the order is (h, c), as in "
             "`torch.nn.LSTMCell`.", "returns_c_h"),
    ]
    return specs


def _lstm_mistakes() -> list[Mistake]:
    specs = _lstm_specs()
    singles = [spec.mistake(_lstm_variant) for spec in specs]
    state = Mistake("the state is not updated: your function returns the previous (h, c) unchanged.",
                    _lstm_variant(returns="state"), id="state_not_updated")
    return singles + [state] + pairs(specs, _lstm_variant)


def _lstm_error_hint(exc: Exception) -> str | None:
    numbers = [int(n) for n in re.findall(r"\((\d+)\)", str(exc))]
    if isinstance(exc, RuntimeError) and len(numbers) == 2 and max(numbers) == 4 * min(numbers) > 0:
        return ("a block of 4H columns meets one of H columns: split the (N, 4H) pre-activations into the four "
                "gates along the last dimension, `gates.chunk(4, dim=-1)`.")
    return _MATMUL_HINT(exc)


_MATMUL_HINT = matmul_hint("x is (N, H_in), h and c are (N, H), weight_ih is (4H, H_in), weight_hh is (4H, H)")


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
    error_hint=_lstm_error_hint,
    shape_hint=lambda name, e, g: ("split the (N, 4H) gate pre-activations along the last dimension: "
                                   "`gates.chunk(4, dim=-1)`."),  # (called only for a shape that differs)
)


@notebook_check
def check_lstm_cell(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``lstm_cell(x, (h, c), weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> (h, c)``.

    Compares with :func:`course_utils.functional.lstm_cell` and names the common mistakes:
    gates in the wrong order, tanh where sigmoid belongs (or the reverse), a missing bias,
    ``c`` instead of ``tanh(c)`` in the output, the output gate computed from the cell state, a gate
    missing from the cell update, (c, h) returned instead of (h, c), the state not updated, the
    gates split along the batch (by the error it raises), and any two of these at once (each
    named by its own id in ``result.mistakes``).
    """
    cases = cell_cases(4, seed, cell_state=True)
    result = check_function(_LSTM, fn, cases, max_points)
    return split_ids(name_error(result, fn, cases, [_CHUNK_DIM0]))
