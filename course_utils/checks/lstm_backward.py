"""Check for the LSTM's backward step: ``lstm_cell_backward``, through both h_t and the cell state.

Signature (:func:`course_utils.functional.lstm_cell_backward`)::

    lstm_cell_backward(dh, dc, x, (h_prev, c_prev), (i, f, g, o, c), weight_ih, weight_hh)
        -> (dx, dh_prev, dc_prev, dweight_ih, dweight_hh, dbias)

``dh`` and ``dc`` are ∂L/∂h_t and the ∂L/∂c_t that arrives from step t+1; ``(i, f, g, o, c)`` are
the gate activations and c_t that the forward step saved. The inputs of every case come from the
reference forward on random weights, so the saved values are consistent with x and the state.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from .. import functional as Fn
from .cells import DEFAULT_SEED, cell_label
from .diagnosis import Spec, pairs, split_ids
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, expect_tensor, notebook_check
from .result import CheckResult, type_name

__all__ = ["BACKWARD_SHAPES", "GRADIENTS", "check_lstm_cell_backward"]

GRADIENTS = ("dx", "dh_prev", "dc_prev", "dweight_ih", "dweight_hh", "dbias")
#: the outputs that come from the gate pre-activations' gradient da (everything but dc_prev)
_FROM_DA = ("dx", "dh_prev", "dweight_ih", "dweight_hh", "dbias")
#: (N, H_in, H, dtype)
BACKWARD_SHAPES = [
    (4, 3, 5, torch.float32),
    (1, 4, 2, torch.float32),
    (3, 5, 3, torch.float64),
    (2, 3, 4, torch.float64),
]


def _cases(seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, dtype, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)

    cases = []
    for n, h_in, h, dtype in BACKWARD_SHAPES:
        x, h_prev, c_prev = randn(n, h_in, dtype=dtype), randn(n, h, dtype=dtype), randn(n, h, dtype=dtype)
        w_ih, w_hh = randn(4 * h, h_in, dtype=dtype, scale=0.6), randn(4 * h, h, dtype=dtype, scale=0.6)
        b_ih, b_hh = randn(4 * h, dtype=dtype, scale=0.6), randn(4 * h, dtype=dtype, scale=0.6)
        saved = Fn.lstm_cell_gates(x, (h_prev, c_prev), w_ih, w_hh, b_ih, b_hh)
        gates = (saved.i, saved.f, saved.g, saved.o, saved.c)  # what the forward step saved
        dh, dc = randn(n, h, dtype=dtype), randn(n, h, dtype=dtype)
        cases.append(Case(cell_label(n, h_in, h, True, dtype).replace("with biases, ", ""),
                          (dh, dc, x, (h_prev, c_prev), gates, w_ih, w_hh)))
    return cases


# ----------------------------------------------------------------- the variants
def _variant(order: str = "ifgo", sigmoid_deriv: str = "ok", tanh_g_deriv: str = "ok", tanh_c_deriv: str = "ok",
             dc_next: bool = True, h_to_c: bool = True, dc_prev: str = "ok", d_o: str = "tanh_c", d_f: str = "c_prev"):
    """The reference backward step with one or more things changed."""

    def backward(dh, dc, x, state, gates, weight_ih, weight_hh):
        h_prev, c_prev = state
        i, f, g, o, c = gates
        tanh_c = torch.tanh(c)
        d_out = dh * {"tanh_c": tanh_c, "c": c}[d_o]
        slope_c = {"ok": 1 - tanh_c ** 2, "missing": torch.ones_like(c), "uses_c": 1 - c ** 2}[tanh_c_deriv]
        dc_t = (dc if dc_next else torch.zeros_like(dc)) + (dh * o * slope_c if h_to_c else 0)
        d_f_ = dc_t * {"c_prev": c_prev, "c": c}[d_f]
        d_i, d_g = dc_t * g, dc_t * i

        def dsig(s):
            return {"ok": s * (1 - s), "missing": torch.ones_like(s),
                    "recomputed": torch.sigmoid(s) * (1 - torch.sigmoid(s))}[sigmoid_deriv]
        slope_g = {"ok": 1 - g ** 2, "missing": torch.ones_like(g), "recomputed": 1 - torch.tanh(g) ** 2}[tanh_g_deriv]
        blocks = {"i": d_i * dsig(i), "f": d_f_ * dsig(f), "g": d_g * slope_g, "o": d_out * dsig(o)}
        da = torch.cat([blocks[k] for k in order], dim=-1)  # (N, 4H)
        dc_p = {"ok": dc_t * f, "no_f": dc_t, "zero": torch.zeros_like(dc_t), "dc_only": dc * f}[dc_prev]
        return da @ weight_ih, da @ weight_hh, dc_p, da.T @ x, da.T @ h_prev, da.sum(dim=0)
    return backward


_ORDER_TEXT = ("the gate gradients are stacked in the wrong order ({order}): da must line up with the rows of "
               "weight_ih and weight_hh, which torch stacks as i, f, g, o — "
               "`torch.cat([da_i, da_f, da_g, da_o], dim=-1)`.")


def _specs() -> list[tuple[Spec, tuple[str, ...] | None]]:
    """Every single mistake with the outputs it changes (None: all of them)."""
    specs: list[tuple[Spec, tuple[str, ...] | None]] = [
        (Spec("order", {"order": "".join(p)}, _ORDER_TEXT.format(order=", ".join(p)), "gate_order"), _FROM_DA)
        for p in itertools.permutations("ifgo") if "".join(p) != "ifgo"]
    specs += [
        (Spec("dc_next", {"dc_next": False}, "the gradient arriving through the cell state from the next step, dc, "
              "is not added: ∂L/∂c_t = dc + dh ⊙ o ⊙ (1 − tanh²(c_t)). Dropping it cuts the additive path "
              "through the cell state that lets the gradient travel far back.", "missing_dc_next"), None),
        (Spec("h_to_c", {"h_to_c": False}, "the path from h_t into c_t is missing: besides dc, c_t reaches the loss "
              "through h_t = o ⊙ tanh(c_t), so ∂L/∂c_t = dc + dh ⊙ o ⊙ (1 − tanh²(c_t)).", "missing_h_to_c_path"),
         None),
        (Spec("dc_prev", {"dc_prev": "no_f"}, "the f factor is missing from ∂L/∂c_{t-1}: c_t = f ⊙ c_{t-1} + i ⊙ g, "
              "so ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f_t.", "dc_prev_missing_f"), ("dc_prev",)),
        (Spec("dc_prev", {"dc_prev": "zero"}, "∂L/∂c_{t-1} is zero: the path through the cell state is dropped. "
              "c_t = f ⊙ c_{t-1} + i ⊙ g gives ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f_t.", "cell_path_dropped"), ("dc_prev",)),
        (Spec("dc_prev", {"dc_prev": "dc_only"}, "∂L/∂c_{t-1} uses only the incoming dc: it is ∂L/∂c_t ⊙ f_t with "
              "the whole ∂L/∂c_t = dc + dh ⊙ o ⊙ (1 − tanh²(c_t)).", "dc_prev_from_dc_only"), ("dc_prev",)),
        (Spec("sigmoid", {"sigmoid_deriv": "missing"}, "the sigmoid's derivative is missing: the pre-activation "
              "gradients of i, f and o are multiplied by σ' = σ (1 − σ), e.g. da_f = df ⊙ f ⊙ (1 − f).",
              "missing_sigmoid_derivative"), _FROM_DA),
        (Spec("sigmoid", {"sigmoid_deriv": "recomputed"}, "the sigmoid's derivative is taken of the saved gate again, "
              "σ(f)(1 − σ(f)): f is already σ(a_f), so σ'(a_f) = f ⊙ (1 − f).", "sigmoid_derivative_recomputed"),
         _FROM_DA),
        (Spec("tanh_g", {"tanh_g_deriv": "missing"}, "the tanh derivative of the gate gate is missing: "
              "da_g = dg ⊙ (1 − g²).", "missing_tanh_derivative"), _FROM_DA),
        (Spec("tanh_g", {"tanh_g_deriv": "recomputed"}, "the tanh derivative of the gate gate is taken of g again, "
              "1 − tanh²(g): g is already tanh(a_g), so tanh'(a_g) = 1 − g².", "tanh_derivative_recomputed"),
         _FROM_DA),
        (Spec("tanh_c", {"tanh_c_deriv": "missing"}, "the derivative of tanh(c_t) is missing from the path through "
              "h_t: ∂L/∂c_t = dc + dh ⊙ o ⊙ (1 − tanh²(c_t)).", "missing_tanh_c_derivative"), None),
        (Spec("tanh_c", {"tanh_c_deriv": "uses_c"}, "the derivative of tanh(c_t) is written 1 − c_t²; it is "
              "1 − tanh²(c_t).", "tanh_c_derivative_uses_c"), None),
        (Spec("d_o", {"d_o": "c"}, "∂L/∂o uses c_t where tanh(c_t) belongs: h_t = o ⊙ tanh(c_t) gives "
              "∂L/∂o = dh ⊙ tanh(c_t).", "do_uses_c"), _FROM_DA),
        (Spec("d_f", {"d_f": "c"}, "∂L/∂f uses the new cell state c_t; it is ∂L/∂c_t ⊙ c_{t-1}, the old one.",
              "df_uses_new_c"), _FROM_DA),
    ]
    return specs


def _mistakes() -> list[Mistake]:
    specs = _specs()
    # every variant speaks about all six outputs (a mistake that leaves some of them right matches there too), so
    # two mistakes at once are named by their pair, never by a single one that happens to match part of the outputs
    return [s.mistake(_variant) for s, _ in specs] + pairs([s for s, _ in specs], _variant)


def _unpack(value, case: Case) -> list[tuple[str, Tensor]]:
    if not isinstance(value, (tuple, list)):
        raise Malformed(f"expected the 6 gradients {', '.join(GRADIENTS)}, got {type_name(value)}")
    if len(value) == 7:
        raise Malformed("expected 6 gradients, got 7 — return one `dbias`: bias_ih and bias_hh are added to the same "
                        "pre-activations, so their gradients are equal")
    if len(value) != 6:
        raise Malformed(f"expected the 6 gradients ({', '.join(GRADIENTS)}), got {len(value)} items")
    return [(name, expect_tensor(v, name)) for name, v in zip(GRADIENTS, value)]


_SHAPE_HINTS = {
    "dx": "dx = da @ weight_ih: (N, 4H) @ (4H, H_in).",
    "dh_prev": "dh_prev = da @ weight_hh: (N, 4H) @ (4H, H).",
    "dc_prev": "dc_prev has the shape of c, (N, H).",
    "dweight_ih": "a weight's gradient has the weight's shape: dweight_ih = da.T @ x, (4H, N) @ (N, H_in), "
                  "which also sums over the batch.",
    "dweight_hh": "a weight's gradient has the weight's shape: dweight_hh = da.T @ h_prev, (4H, N) @ (N, H).",
    "dbias": "the bias is added to every row of the batch, so its gradient sums over the batch: da.sum(dim=0), (4H,).",
}

_BACKWARD = FunctionExercise(
    name="lstm_cell_backward",
    reference=Fn.lstm_cell_backward,
    unpack=_unpack,
    mistakes=_mistakes,
    arg_names=("dh", "dc", "x", ("h_prev", "c_prev"), ("i", "f", "g", "o", "c"), "weight_ih", "weight_hh"),
    signature="lstm_cell_backward(dh, dc, x, (h_prev, c_prev), (i, f, g, o, c), weight_ih, weight_hh) "
              "-> (dx, dh_prev, dc_prev, dweight_ih, dweight_hh, dbias)",
    coverage=f"{len(BACKWARD_SHAPES)} random steps (batch 1 and > 1, several input and hidden sizes, float32 and "
             f"float64)",
    shape_hint=lambda name, e, g: _SHAPE_HINTS.get(name),
    inplace_hint="e.g. `dc_t = dc + ...`, not `dc += ...`",
)


@notebook_check
def check_lstm_cell_backward(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``lstm_cell_backward`` (signature in this module's docstring) against
    :func:`course_utils.functional.lstm_cell_backward`.

    Names: the incoming dc not added, the path from h_t into c_t missing, the f factor missing from
    dc_prev (or dc_prev zero, or from dc alone), a missing or recomputed sigmoid or tanh derivative,
    the derivative of tanh(c_t) missing or written 1 − c², c_t where tanh(c_t) or c_{t-1} belongs,
    the gate gradients stacked in the wrong order, and two of these at once (each by its own id).
    """
    return split_ids(check_function(_BACKWARD, fn, _cases(seed), max_points))
