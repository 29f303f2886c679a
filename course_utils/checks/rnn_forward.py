"""Check for ``rnn_forward``: the loop over time, returning every hidden state and the last."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as Fn
from .cells import ACT, linear, matmul_hint
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, expect_tensor, notebook_check
from .result import CheckResult, type_name

__all__ = ["check_rnn_forward", "sequence_inputs"]

DEFAULT_SEED = 2468
SIGNATURE = 'rnn_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh") -> (hs, h_T)'


def _step(x_t, h, w_ih, w_hh, b_ih, b_hh, act):
    return ACT[act](linear(x_t, w_ih, b_ih) + linear(h, w_hh, b_hh))  # (N, H)


def _forward_variant(rule: str):
    """A wrong loop over time; ``rule`` says what is wrong with it."""

    def forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
        act = "tanh" if rule == "nonlinearity_ignored" else nonlinearity
        h = torch.zeros_like(h0) if rule == "h0_ignored" else h0
        states = []
        for t, x_t in enumerate(x.unbind(0)):
            if rule == "same_input":
                x_t = x[0]
            previous = h0 if rule == "state_not_carried" else h
            h = _step(x_t, previous, weight_ih, weight_hh, bias_ih, bias_hh, act)
            states.append(h)
        if rule == "includes_h0":  # the state *before* each step: h_0 .. h_{T-1}
            states = [h0] + states[:-1]
        hs = torch.stack(states, dim=1 if rule == "stacked_wrong_dim" else 0)
        last = states[0] if rule == "first_as_last" else h
        return hs, last
    return forward


def _mistakes() -> list[Mistake]:
    v = _forward_variant
    return [
        Mistake("the hidden state is not carried from step to step: every step starts again from h0. "
                "Feed each step the state the step before returned: `h = rnn_cell(x_t, h, ...)`.",
                v("state_not_carried"), id="state_not_carried"),
        Mistake("h0 is ignored: the loop starts from zeros. The first step reads the h0 it is given.",
                v("h0_ignored"), id="h0_ignored"),
        Mistake("every step reads the first input x[0]: step t reads x[t] (`for x_t in x.unbind(0)`).",
                v("same_input"), id="input_not_advanced"),
        Mistake("hs holds the states *before* each step, h_0 .. h_{T-1}; it holds the states each step "
                "returns, h_1 .. h_T (as `nn.RNN`'s output does).", v("includes_h0"), ("hs",), id="hs_includes_h0"),
        Mistake("the states are stacked along the wrong dimension: hs is (T, N, H), time first like x, "
                "`torch.stack(states)` (dim=0), not (N, T, H).", v("stacked_wrong_dim"), ("hs",),
                id="stacked_wrong_dim"),
        Mistake("h_T is the first state h_1, not the last one.", v("first_as_last"), ("h_T",), id="last_state_wrong"),
        Mistake("the `nonlinearity` argument is ignored: tanh is applied even when nonlinearity='relu'.",
                v("nonlinearity_ignored"), id="nonlinearity_ignored"),
    ]


def _unpack(value, case: Case) -> list[tuple[str, Tensor]]:
    x, h0 = case.args[0], case.args[1]
    T, N, H = x.shape[0], x.shape[1], h0.shape[1]
    if isinstance(value, Tensor):
        if tuple(value.shape) == (N, H) and T > 1:
            raise Malformed(f"expected a pair (hs, h_T), got one tensor of shape {(N, H)}: only the last state. "
                            f"Keep every state in a list and return `torch.stack(states), h`",
                            id="returns_last_state_only")
        raise Malformed(f"expected a pair (hs, h_T), got one tensor of shape {tuple(value.shape)} — "
                        f"return both: `return torch.stack(states), h`")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Malformed(f"expected a pair (hs, h_T), got {type_name(value)}")
    if isinstance(value[0], (tuple, list)):
        raise Malformed(f"expected hs to be one tensor of shape {(T, N, H)}, got a {type(value[0]).__name__} of "
                        f"{len(value[0])} items — `torch.stack(states)` stacks the states along a new dimension 0",
                        id="states_not_stacked")
    hs, last = expect_tensor(value[0], "hs"), expect_tensor(value[1], "h_T")
    if tuple(hs.shape) == (N, H) and T > 1:
        raise Malformed(f"expected hs of shape {(T, N, H)} (every state, time first), got {(N, H)}: only the "
                        f"last state. Keep the state of every step in a list and `torch.stack` it",
                        id="returns_last_state_only")
    if tuple(hs.shape) == (N, T, H) and N != T:
        raise Malformed(f"expected hs of shape {(T, N, H)} (time first, like x), got {(N, T, H)}: the states "
                        f"are stacked along the wrong dimension — `torch.stack(states)` stacks along dim 0",
                        id="stacked_wrong_dim")
    if hs.dim() == 3 and tuple(hs.shape) == (T + 1, N, H):
        raise Malformed(f"expected hs of shape {(T, N, H)}, got {(T + 1, N, H)}: hs holds h_1 .. h_T, the "
                        f"states the T steps return, not h0", id="hs_includes_h0")
    return [("hs", hs), ("h_T", last)]


def sequence_inputs(gen: torch.Generator, T: int, N: int, h_in: int, h: int, bias: bool,
                    dtype: torch.dtype) -> tuple:
    """x (T, N, H_in), h0 (N, H), weight_ih (H, H_in), weight_hh (H, H)[, bias_ih, bias_hh (H,)]."""
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)

    args = (randn(T, N, h_in), randn(N, h, scale=0.8), randn(h, h_in, scale=0.6), randn(h, h, scale=0.6))
    return args + ((randn(h, scale=0.5), randn(h, scale=0.5)) if bias else ())


def _label(T, N, h_in, h, bias, dtype, extra="") -> str:
    return (f"T={T}, N={N}, H_in={h_in}, H={h}, {'with' if bias else 'without'} biases, "
            f"{str(dtype).removeprefix('torch.')}{extra}")


#: (T, N, H_in, H, biases, dtype, nonlinearity)
SHAPES = [
    (5, 3, 4, 4, True, torch.float32, "tanh"),
    (4, 2, 3, 5, True, torch.float64, "tanh"),
    (6, 1, 2, 3, False, torch.float32, "tanh"),
    (3, 3, 2, 4, True, torch.float64, "tanh"),  # N = T: states stacked the wrong way keep the shape
    (4, 2, 3, 3, True, torch.float32, "relu"),
    (1, 2, 3, 2, False, torch.float64, "tanh"),
]


def _cases(seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for T, N, h_in, h, bias, dtype, act in SHAPES:
        extra = f", nonlinearity='{act}'" if act != "tanh" else ""
        cases.append(Case(_label(T, N, h_in, h, bias, dtype, extra), sequence_inputs(gen, T, N, h_in, h, bias, dtype),
                          {"nonlinearity": act} if act != "tanh" else {}))
    return cases


_FORWARD = FunctionExercise(
    name="rnn_forward",
    reference=Fn.rnn_forward,
    unpack=_unpack,
    mistakes=_mistakes,
    arg_names=("x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    signature=SIGNATURE,
    coverage=(f"{len(SHAPES)} random sequences (T from 1 to 6, batch 1 and > 1, with and without biases, "
              f"float32 and float64, tanh and relu)"),
    error_hint=matmul_hint("x is (T, N, H_in), so x[t] is (N, H_in); h0 is (N, H), weight_ih is (H, H_in), "
                           "weight_hh is (H, H)"),
    shape_hint=lambda name, e, g: ("hs is (T, N, H): one state per step, time first like x."
                                   if name == "hs" else "h_T is the last state, (N, H), like h0."),
)


@notebook_check
def check_rnn_forward(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``rnn_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
    nonlinearity="tanh") -> (hs, h_T)``.

    Compares with :func:`course_utils.functional.rnn_forward` on random sequences and names the
    common mistakes: only the last state returned, the states stacked along the wrong dimension,
    the state not carried between steps, h0 ignored, the first input read at every step, h0
    included in hs, the wrong last state, the nonlinearity ignored.
    """
    return check_function(_FORWARD, fn, _cases(seed), max_points)
