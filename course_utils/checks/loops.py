"""Checks for the loops over time: ``lstm_forward`` (unit 03) and ``gru_forward`` (unit 04).

Both take the inputs time first, ``x (T, N, H_in)``, as ``torch.nn.LSTM`` and ``torch.nn.GRU`` do by
default, run one cell per step with the state carried along, and return every step's hidden state
``(T, N, H)`` and the last state. The mistakes they name are the loop's own: the state not carried
(every step starts again from the initial state, or only one of h and c is carried), the outputs
shifted by one step (h_{t-1} stored instead of h_t), the initial or the first state returned as the
last, time run backwards, the cell states returned as outputs, the wrong GRU convention, and any
two of these at once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as Fn
from .cells import DEFAULT_SEED, cell_label
from .diagnosis import Spec, pairs, split_ids
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, expect_tensor, notebook_check
from .result import CheckResult, type_name

__all__ = ["LOOP_SHAPES", "check_gru_forward", "check_lstm_forward"]

#: (T, N, H_in, H, biases, dtype): T = 1 and T > 1, T ≠ N (so a stack on the wrong dimension shows in the shape),
#: batch 1 and > 1, with and without biases, float32 and float64
LOOP_SHAPES = [
    (5, 3, 4, 3, True, torch.float32),
    (1, 2, 3, 2, True, torch.float32),
    (4, 1, 2, 3, False, torch.float32),
    (3, 2, 3, 4, True, torch.float64),
    (6, 2, 2, 3, False, torch.float64),
]
_COVERAGE = (f"{len(LOOP_SHAPES)} random sequences (T = 1 to 6, batch 1 and > 1, several input and hidden sizes, "
             f"with and without biases, float32 and float64)")


def _loop_cases(gates: int, seed: int, cell_state: bool) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, dtype, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)

    cases = []
    for t, n, h_in, h, bias, dtype in LOOP_SHAPES:
        x = randn(t, n, h_in, dtype=dtype)  # (T, N, H_in)
        state0 = (randn(n, h, dtype=dtype), randn(n, h, dtype=dtype)) if cell_state else randn(n, h, dtype=dtype)
        args = (x, state0, randn(gates * h, h_in, dtype=dtype, scale=0.6), randn(gates * h, h, dtype=dtype, scale=0.6))
        if bias:
            args += (randn(gates * h, dtype=dtype, scale=0.6), randn(gates * h, dtype=dtype, scale=0.6))
        cases.append(Case(cell_label(n, h_in, h, bias, dtype, f", T={t}"), args))
    return cases


# ----------------------------------------------------------------- the variants
def _loop_variant(lstm: bool, carry: str = "all", outputs: str = "h", last: str = "last", reverse: bool = False,
                  cell=None):
    """The loop over time with one thing changed (``cell``: the step function, the reference cell by default)."""
    step = cell or (Fn.lstm_cell if lstm else Fn.gru_cell)

    def forward(x, state0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        state, first, stored = state0, None, []
        steps = x.unbind(0)  # T x (N, H_in)
        for x_t in (steps[::-1] if reverse else steps):
            if carry == "none":
                start = state0
            elif carry == "h_only":
                start = (state[0], state0[1])
            elif carry == "c_only":
                start = (state0[0], state[1])
            else:
                start = state
            new = step(x_t, start, weight_ih, weight_hh, bias_ih, bias_hh)
            h_prev = state[0] if lstm else state
            h_new = new[0] if lstm else new
            stored.append({"h": h_new, "prev": h_prev, "c": new[1] if lstm else h_new}[outputs])
            state = new
            first = new if first is None else first
        final = {"last": state, "initial": state0, "first": first}[last]
        return torch.stack(stored, dim=0), final
    return forward


def _loop_specs(lstm: bool) -> list[Spec]:
    h = "(h_t, c_t)" if lstm else "h_t"
    specs = [
        Spec("carry", {"carry": "none"}, f"the state is not carried from step to step: every step starts again from "
             f"the initial state. Feed each step's new state {h} into the next step.", "state_not_carried"),
        Spec("outputs", {"outputs": "prev"}, "the outputs are shifted by one step: you store the state *before* "
             "each step (h_0 first, h_T missing). outputs[t] is the hidden state after step t, so outputs[-1] "
             "is h_T.", "outputs_shifted"),
        Spec("last", {"last": "initial"}, "the last state returned is the initial state: return the state after "
             "the last step.", "returns_initial_state"),
        Spec("last", {"last": "first"}, "the last state returned is the state after the *first* step: return the "
             "state after the last step (outputs[-1] is h_T).", "returns_first_state"),
        Spec("reverse", {"reverse": True}, "time runs backwards: the loop starts at the last input x[T-1]; run it "
             "from x[0] to x[T-1] (`for x_t in x.unbind(0)` or `for t in range(T)`).", "time_reversed"),
    ]
    if lstm:
        specs += [
            Spec("carry", {"carry": "h_only"}, "the cell state is not carried: every step starts from c_0; pass the "
                 "new (h_t, c_t) together to the next step.", "cell_state_not_carried"),
            Spec("carry", {"carry": "c_only"}, "the hidden state is not carried: every step starts from h_0; pass the "
                 "new (h_t, c_t) together to the next step.", "hidden_state_not_carried"),
            Spec("outputs", {"outputs": "c"}, "the outputs are the cell states c_t; a layer's outputs are the hidden "
                 "states h_t (as `torch.nn.LSTM` returns them).", "outputs_are_cell_states"),
        ]
    else:
        specs.append(Spec("cell", {"cell": Fn.gru_cell_chung}, "the loop runs the textbook cell of Chung et al. "
                          "(your `gru_cell_chung`); this layer uses PyTorch's convention, `gru_cell`.",
                          "uses_chung_cell"))
    return specs


def _mistakes(lstm: bool):
    def build(**kwargs):
        return _loop_variant(lstm, **kwargs)

    def mistakes() -> list[Mistake]:
        specs = _loop_specs(lstm)
        return [s.mistake(build) for s in specs] + pairs(specs, build)
    return mistakes


# ----------------------------------------------------------------- reading answers
def _outputs_tensor(value) -> Tensor:
    if isinstance(value, (list, tuple)):
        raise Malformed(f"expected outputs to be one tensor (T, N, H), got a {type(value).__name__} of "
                        f"{len(value)} items — stack the steps: `torch.stack(outputs, dim=0)`")
    return expect_tensor(value, "outputs")


def _unpack_lstm(value, case: Case) -> list[tuple[str, Tensor]]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Malformed(f"expected a pair (outputs, (h_T, c_T)), got {type_name(value)}")
    outputs, last = value
    if not isinstance(last, (tuple, list)) or len(last) != 2:
        raise Malformed(f"expected a pair (outputs, (h_T, c_T)), got (outputs, {type_name(last)}) — "
                        f"the last state is the pair (h_T, c_T)")
    return [("outputs", _outputs_tensor(outputs)), ("h_T", expect_tensor(last[0], "h_T")),
            ("c_T", expect_tensor(last[1], "c_T"))]


def _unpack_gru(value, case: Case) -> list[tuple[str, Tensor]]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Malformed(f"expected a pair (outputs, h_T), got {type_name(value)}")
    return [("outputs", _outputs_tensor(value[0])), ("h_T", expect_tensor(value[1], "h_T"))]


def _shape_hint(name: str, expected: tuple, got: tuple) -> str | None:
    if name == "outputs" and len(got) == 3 and got == (expected[1], expected[0], expected[2]):
        return "the outputs are time first, (T, N, H): stack the steps along dim 0, `torch.stack(outputs, dim=0)`."
    if name == "outputs":
        return "the outputs hold one hidden state (N, H) per time step, stacked along a new first dimension: (T, N, H)."
    return "the last state has the shape of the initial state, (N, H)."


def _error_hint(exc: Exception) -> str | None:
    if isinstance(exc, (TypeError, ValueError)) and "unpack" in str(exc):
        return "the initial state of an LSTM is the pair (h_0, c_0), and your `lstm_cell` returns the pair (h, c)."
    return None


_LSTM_FORWARD = FunctionExercise(
    name="lstm_forward",
    reference=Fn.lstm_forward,
    unpack=_unpack_lstm,
    mistakes=_mistakes(lstm=True),
    arg_names=("x", ("h_0", "c_0"), "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature="lstm_forward(x, (h_0, c_0), weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> (outputs, (h_T, c_T))",
    coverage=_COVERAGE,
    error_hint=_error_hint,
    shape_hint=_shape_hint,
)

_GRU_FORWARD = FunctionExercise(
    name="gru_forward",
    reference=Fn.gru_forward,
    unpack=_unpack_gru,
    mistakes=_mistakes(lstm=False),
    arg_names=("x", "h_0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature="gru_forward(x, h_0, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> (outputs, h_T)",
    coverage=_COVERAGE,
    shape_hint=_shape_hint,
)


@notebook_check
def check_lstm_forward(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``lstm_forward(x, (h_0, c_0), weight_ih, weight_hh, bias_ih=None, bias_hh=None)``.

    Compares with :func:`course_utils.functional.lstm_forward` (``x`` is (T, N, H_in); returns
    ``(outputs (T, N, H), (h_T, c_T))``) and names the loop's mistakes listed in this module's docstring.
    """
    return split_ids(check_function(_LSTM_FORWARD, fn, _loop_cases(4, seed, cell_state=True), max_points))


@notebook_check
def check_gru_forward(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``gru_forward(x, h_0, weight_ih, weight_hh, bias_ih=None, bias_hh=None)``.

    Compares with :func:`course_utils.functional.gru_forward` (``x`` is (T, N, H_in); returns
    ``(outputs (T, N, H), h_T)``) and names the loop's mistakes listed in this module's docstring.
    """
    return split_ids(check_function(_GRU_FORWARD, fn, _loop_cases(3, seed, cell_state=False), max_points))
