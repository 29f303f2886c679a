"""Checks for backpropagation through time by hand: ``rnn_step_backward`` and ``rnn_backward``.

Both return the five gradients of :class:`course_utils.functional.RNNGrads`, in this order:
``(dx, dh_prev, dweight_ih, dweight_hh, dbias)`` for one step and ``(dx, dh0, dweight_ih,
dweight_hh, dbias)`` for a sequence (``dbias`` serves both biases).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as Fn
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, expect_tensor, notebook_check
from .result import CheckResult, type_name
from .rnn_forward import sequence_inputs

__all__ = ["check_rnn_step_backward", "check_rnn_backward"]

DEFAULT_SEED = 1357
STEP_SIGNATURE = ("rnn_step_backward(dh, x, h_prev, h, weight_ih, weight_hh) "
                  "-> (dx, dh_prev, dweight_ih, dweight_hh, dbias)")
SEQ_SIGNATURE = "rnn_backward(dhs, x, h0, hs, weight_ih, weight_hh) -> (dx, dh0, dweight_ih, dweight_hh, dbias)"
STEP_NAMES = ("dx", "dh_prev", "dweight_ih", "dweight_hh", "dbias")
SEQ_NAMES = ("dx", "dh0", "dweight_ih", "dweight_hh", "dbias")

_DA = "∂L/∂a_t = ∂L/∂h_t ⊙ (1 − h_t²)"


# ------------------------------------------------------------------ one step, right and wrong
def _step(dh, x, h_prev, h, w_ih, w_hh, rule: str = "") -> list[Tensor]:
    """One step backward, the reference's way unless ``rule`` names a mistake."""
    derivative = {"no_tanh_derivative": lambda: torch.ones_like(h),
                  "derivative_of_h_prev": lambda: 1 - h_prev * h_prev,
                  "tanh_applied_again": lambda: 1 - torch.tanh(h) ** 2}.get(rule, lambda: 1 - h * h)()
    da = dh * derivative  # (N, H)
    dx = da @ (w_ih.T if rule == "transposed_weight_ih" else w_ih)  # (N, H_in)
    if rule == "dh_prev_without_weight":
        dh_prev = da
    else:
        dh_prev = da @ (w_hh.T if rule == "transposed_weight_hh" else w_hh)  # (N, H)
    dw_ih = x.T @ da if rule == "transposed_dweight_ih" else da.T @ x  # (H, H_in)
    states = h if rule == "dweight_hh_uses_h_t" else h_prev
    dw_hh = states.T @ da if rule == "transposed_dweight_hh" else da.T @ states  # (H, H)
    db = da.mean(0) if rule == "bias_grad_mean" else da.sum(0)  # (H,)
    if rule == "swapped_dx_dh_prev":
        dx, dh_prev = dh_prev, dx
    return [dx, dh_prev, dw_ih, dw_hh, db]


_STEP_RULES = [
    ("no_tanh_derivative", None, "missing_tanh_derivative",
     f"the derivative of tanh is missing: h_t = tanh(a_t), so first {_DA}; every gradient goes through it."),
    ("derivative_of_h_prev", None, "tanh_derivative_of_h_prev",
     "the derivative of tanh uses h_{t-1}; it is the derivative at this step's output: 1 − h_t²."),
    ("tanh_applied_again", None, "tanh_derivative_of_tanh_h",
     "the derivative of tanh is computed as 1 − tanh(h_t)²; h_t already *is* tanh(a_t), so it is 1 − h_t²."),
    ("transposed_weight_hh", ("dh_prev",), "transposed_weight_hh",
     ("dh_prev uses W_hh transposed wrongly: ∂L/∂h_{t-1} = W_hhᵀ ∂L/∂a_t, which for rows is `da @ weight_hh` "
      "(the forward pass used `h @ weight_hh.T`).")),
    ("transposed_weight_ih", ("dx",), "transposed_weight_ih",
     "dx uses W_ih transposed wrongly: ∂L/∂x_t = W_ihᵀ ∂L/∂a_t, which for rows is `da @ weight_ih`."),
    ("dh_prev_without_weight", ("dh_prev",), "dh_prev_missing_weight",
     "dh_prev is ∂L/∂a_t itself: the gradient reaches h_{t-1} through W_hh, `da @ weight_hh`."),
    ("transposed_dweight_ih", ("dweight_ih",), "transposed_weight_grad",
     "dweight_ih is transposed: ∂L/∂W_ih = Σ_n ∂L/∂a_t x_tᵀ is `da.T @ x`, (H, H_in) like weight_ih."),
    ("transposed_dweight_hh", ("dweight_hh",), "transposed_weight_grad",
     "dweight_hh is transposed: ∂L/∂W_hh = Σ_n ∂L/∂a_t h_{t-1}ᵀ is `da.T @ h_prev`."),
    ("dweight_hh_uses_h_t", ("dweight_hh",), "dweight_hh_uses_h_t",
     "dweight_hh uses h_t; W_hh multiplied h_{t-1} in the forward pass, so ∂L/∂W_hh = `da.T @ h_prev`."),
    ("bias_grad_mean", ("dbias",), "bias_grad_mean",
     "dbias is the mean over the batch; the loss adds up the rows' contributions, so it is the sum: `da.sum(0)`."),
    ("swapped_dx_dh_prev", ("dx", "dh_prev"), "swapped_outputs",
     "dx and dh_prev are swapped: the order is (dx, dh_prev, dweight_ih, dweight_hh, dbias)."),
]


def _step_variant(rule: str):
    def step(dh, x, h_prev, h, weight_ih, weight_hh):
        return tuple(_step(dh, x, h_prev, h, weight_ih, weight_hh, rule))
    return step


def _step_mistakes() -> list[Mistake]:
    return [Mistake(text, _step_variant(rule), outputs, id=mid) for rule, outputs, mid, text in _STEP_RULES]


# ------------------------------------------------------------- the sequence, right and wrong
def _sequence_variant(rule: str):
    """A wrong BPTT loop; ``rule`` is a step rule of ``_STEP_RULES`` or a mistake of the loop itself."""

    def backward(dhs, x, h0, hs, weight_ih, weight_hh):
        T = x.shape[0]
        dw_ih, dw_hh = torch.zeros_like(weight_ih), torch.zeros_like(weight_hh)
        db = hs.new_zeros(hs.shape[-1])
        start = torch.zeros_like(h0) if rule == "h0_ignored" else h0
        h_prevs = [start] + list(hs[:-1].unbind(0))
        dh_next, dxs, dh_first = torch.zeros_like(h0), [None] * T, None
        order = range(T) if rule == "loop_forward_in_time" else reversed(range(T))
        for t in order:
            if rule == "missing_next_step_gradient":
                dh = dhs[t]
            elif rule == "missing_output_gradient":
                dh = dhs[t] if t == T - 1 else dh_next
            else:
                dh = dhs[t] + dh_next
            dh_first = dh
            dx, dh_next, gw_ih, gw_hh, gb = _step(dh, x[t], h_prevs[t], hs[t], weight_ih, weight_hh, rule)
            dxs[t] = dx
            if rule == "weight_grads_overwritten" or (rule == "weight_grads_last_step_only" and t == T - 1):
                dw_ih, dw_hh, db = gw_ih, gw_hh, gb
            elif rule != "weight_grads_last_step_only":
                dw_ih, dw_hh, db = dw_ih + gw_ih, dw_hh + gw_hh, db + gb
        dx = torch.stack(dxs[::-1] if rule == "dx_in_reverse_order" else dxs)
        dh0 = dh_first if rule == "dh0_not_through_first_step" else dh_next
        return dx, dh0, dw_ih, dw_hh, db
    return backward


_SEQ_RULES = [
    ("no_tanh_derivative", None, "missing_tanh_derivative",
     f"the derivative of tanh is missing: at every step {_DA}."),
    ("missing_next_step_gradient", None, "missing_next_step_gradient",
     ("the gradient from the next step is missing: h_t feeds h_{t+1} too, so ∂L/∂h_t = dhs[t] + (dh_prev of "
      "step t+1). Carry dh_prev from one step to the one before it.")),
    ("missing_output_gradient", None, "missing_output_gradient",
     ("the gradient from the outputs is used at the last step only: every h_t is an output, so "
      "∂L/∂h_t = dhs[t] + (dh_prev of step t+1) at every step.")),
    ("weight_grads_last_step_only", ("dweight_ih", "dweight_hh", "dbias"), "weight_grads_last_step_only",
     ("the weight gradients come from the last step only: the same weights serve every step, so their "
      "gradients are summed over all T steps.")),
    ("weight_grads_overwritten", ("dweight_ih", "dweight_hh", "dbias"), "weight_grads_overwritten",
     ("the weight gradients are overwritten at every step, so the first step's remain: the same weights serve "
      "every step, so add every step's gradient (`dweight_hh = dweight_hh + step_dweight_hh`).")),
    ("transposed_weight_hh", None, "transposed_weight_hh",
     ("the gradient to the previous state uses W_hh transposed wrongly: ∂L/∂h_{t-1} = W_hhᵀ ∂L/∂a_t, "
      "for rows `da @ weight_hh`.")),
    ("transposed_weight_ih", ("dx",), "transposed_weight_ih",
     "dx uses W_ih transposed wrongly: ∂L/∂x_t = W_ihᵀ ∂L/∂a_t, for rows `da @ weight_ih`."),
    ("h0_ignored", ("dweight_hh",), "h0_ignored",
     "the first step's h_{t-1} is taken as zero: it is h0, so step 1 adds `da.T @ h0` to dweight_hh."),
    ("dweight_hh_uses_h_t", ("dweight_hh",), "dweight_hh_uses_h_t",
     "dweight_hh uses h_t at each step; W_hh multiplied h_{t-1}: use hs[t-1] (h0 at the first step)."),
    ("loop_forward_in_time", None, "loop_forward_in_time",
     ("the loop runs forward in time: the gradient flows backwards, from step T to step 1 "
      "(`for t in reversed(range(T))`), so that dh_prev of step t+1 is known when step t needs it.")),
    ("dx_in_reverse_order", ("dx",), "dx_in_reverse_order",
     ("dx is in reverse time order: the loop collects the steps from T down to 1; reverse the list before "
      "stacking so that dx[t] belongs to x[t].")),
    ("dh0_not_through_first_step", ("dh0",), "dh0_not_through_first_step",
     "dh0 is ∂L/∂h_1; ∂L/∂h_0 is one step further back: the dh_prev the first step returns."),
]


def _sequence_mistakes() -> list[Mistake]:
    return [Mistake(text, _sequence_variant(rule), outputs, id=mid) for rule, outputs, mid, text in _SEQ_RULES]


# ------------------------------------------------------------------ reading an answer
def _unpacker(names: tuple[str, ...], what: str):
    def unpack(value, case: Case) -> list[tuple[str, Tensor]]:
        if isinstance(value, Tensor) or not isinstance(value, (tuple, list)):
            raise Malformed(f"expected the five gradients ({', '.join(names)}), got {type_name(value)}")
        if len(value) == 6:
            raise Malformed(f"expected five gradients ({', '.join(names)}), got six — the two biases get the same "
                            f"gradient, return it once as dbias")
        if len(value) != 5:
            raise Malformed(f"expected five gradients ({', '.join(names)}), got {len(value)}")
        out = [(n, expect_tensor(v, n)) for n, v in zip(names, value)]
        got = dict(out)
        x, w_ih = case.args[1], case.args[4]
        H, H_in = w_ih.shape
        if H != H_in and tuple(got["dweight_ih"].shape) == (H_in, H):
            raise Malformed(f"expected dweight_ih of shape {(H, H_in)} (like weight_ih), got {(H_in, H)}: it is "
                            f"transposed — ∂L/∂W_ih = Σ_n ∂L/∂a x{what}ᵀ is `da.T @ x`",
                            id="transposed_weight_grad")
        n_rows = x.shape[-2]
        if got["dbias"].dim() == 2 and tuple(got["dbias"].shape) == (n_rows, H):
            raise Malformed(f"expected dbias of shape {(H,)}, got {(n_rows, H)}: sum the rows of the batch, "
                            f"`da.sum(0)`", id="bias_grad_not_summed")
        return out
    return unpack


def _step_cases(seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    cases = []
    # (N, H_in, H, dtype): square first, where a transposed weight gives wrong values rather than a shape error
    for n, h_in, h, dtype in ((3, 4, 4, torch.float32), (2, 3, 5, torch.float64), (1, 2, 3, torch.float32),
                              (4, 5, 3, torch.float64)):
        x, h0, w_ih, w_hh, b_ih, b_hh = sequence_inputs(gen, 1, n, h_in, h, True, dtype)
        x = x[0]  # (N, H_in)
        h_new = Fn.rnn_cell(x, h0, w_ih, w_hh, b_ih, b_hh)  # (N, H)
        dh = torch.randn(n, h, generator=gen, dtype=torch.float64).to(dtype)
        cases.append(Case(f"N={n}, H_in={h_in}, H={h}, {str(dtype).removeprefix('torch.')}",
                          (dh, x, h0, h_new, w_ih, w_hh)))
    return cases


def _sequence_cases(seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    cases = []
    # (T, N, H_in, H, dtype, loss on the last state only)
    for T, n, h_in, h, dtype, last_only in ((5, 3, 4, 4, torch.float32, False), (4, 2, 3, 5, torch.float64, False),
                                            (6, 1, 2, 3, torch.float64, True), (3, 2, 3, 2, torch.float32, False),
                                            (1, 2, 2, 3, torch.float64, False)):
        x, h0, w_ih, w_hh, b_ih, b_hh = sequence_inputs(gen, T, n, h_in, h, True, dtype)
        hs, _ = Fn.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh)  # (T, N, H)
        dhs = torch.randn(T, n, h, generator=gen, dtype=torch.float64).to(dtype)
        if last_only:
            dhs[:-1] = 0
        label = (f"T={T}, N={n}, H_in={h_in}, H={h}, {str(dtype).removeprefix('torch.')}, "
                 f"{'a loss on the last state only' if last_only else 'a loss on every output'}")
        cases.append(Case(label, (dhs, x, h0, hs, w_ih, w_hh)))
    return cases


_SHAPES_STEP = "dh, h_prev and h are (N, H), x is (N, H_in), weight_ih is (H, H_in), weight_hh is (H, H)"
_SHAPES_SEQ = "dhs and hs are (T, N, H), x is (T, N, H_in), h0 is (N, H), weight_ih is (H, H_in), weight_hh is (H, H)"


def _matmul_hint(shapes: str):
    def hint(exc: Exception) -> str | None:
        if isinstance(exc, RuntimeError) and ("cannot be multiplied" in str(exc) or "must match" in str(exc)):
            return (f"check the shapes of your matrix products: {shapes}; with da = ∂L/∂a_t of shape (N, H), "
                    f"`da @ weight_ih` is (N, H_in) and `da.T @ x` is (H, H_in).")
        return None
    return hint


def _shape_hint(name, expected, got) -> str:
    return {"dx": "dx has the shape of x.", "dh_prev": "dh_prev has the shape of h_prev.", "dh0": "dh0 has the "
            "shape of h0.", "dweight_ih": "dweight_ih has the shape of weight_ih.",
            "dweight_hh": "dweight_hh has the shape of weight_hh.",
            "dbias": "dbias has the shape of a bias, (H,)."}.get(name, "")


_STEP = FunctionExercise(
    name="rnn_step_backward",
    reference=Fn.rnn_step_backward,
    unpack=_unpacker(STEP_NAMES, "_t"),
    mistakes=_step_mistakes,
    arg_names=("dh", "x", "h_prev", "h", "weight_ih", "weight_hh"),
    signature=STEP_SIGNATURE,
    coverage="4 random steps (batch 1 and > 1, square and non-square weights, float32 and float64)",
    error_hint=_matmul_hint(_SHAPES_STEP),
    shape_hint=_shape_hint,
    inplace_hint="e.g. `da = dh * (1 - h * h)`, not `dh *= ...`",
)

_SEQ = FunctionExercise(
    name="rnn_backward",
    reference=Fn.rnn_backward,
    unpack=_unpacker(SEQ_NAMES, "_t"),
    mistakes=_sequence_mistakes,
    arg_names=("dhs", "x", "h0", "hs", "weight_ih", "weight_hh"),
    signature=SEQ_SIGNATURE,
    coverage=("5 random sequences (T from 1 to 6, batch 1 and > 1, a loss on every output and on the last "
              "state only, float32 and float64)"),
    error_hint=_matmul_hint(_SHAPES_SEQ),
    shape_hint=_shape_hint,
    inplace_hint="e.g. `dh = dhs[t] + dh_next`, not `dhs[t] += dh_next`",
)


@notebook_check
def check_rnn_step_backward(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``rnn_step_backward(dh, x, h_prev, h, weight_ih, weight_hh)
    -> (dx, dh_prev, dweight_ih, dweight_hh, dbias)``.

    Compares with :func:`course_utils.functional.rnn_step_backward` and names the common
    mistakes: the derivative of tanh missing or taken at the wrong place, a weight transposed
    wrongly (in dx, dh_prev or the weight gradients), h_t where h_{t-1} belongs, the bias
    gradient averaged or not summed over the batch, outputs swapped.
    """
    return check_function(_STEP, fn, _step_cases(seed), max_points)


@notebook_check
def check_rnn_backward(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED + 1) -> CheckResult:
    """Check the learner's ``rnn_backward(dhs, x, h0, hs, weight_ih, weight_hh)
    -> (dx, dh0, dweight_ih, dweight_hh, dbias)``.

    Compares with :func:`course_utils.functional.rnn_backward` and names the common mistakes:
    the derivative of tanh missing, the gradient from the next step or from the outputs left
    out, weight gradients from one step instead of summed over time, a transposed weight,
    h0 ignored, the loop run forward in time, dx in reverse order, dh0 taken one step early.
    """
    return check_function(_SEQ, fn, _sequence_cases(seed), max_points)
