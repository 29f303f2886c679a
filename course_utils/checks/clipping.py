"""Check for the gradient-clipping exercise: ``clip_grad_norm(grads, max_norm) -> (clipped_list, total_norm)``."""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from ..gradients import clip_grad_norm as reference_clip_grad_norm
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, notebook_check, expect_tensor
from .result import CheckResult, type_name

__all__ = ["check_clip_grad_norm", "CLIP_TOLERANCES"]

#: float64 is compared at 1e-6 here, not 1e-10: adding eps = 1e-6 to the norm (as torch does) is optional
CLIP_TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-6}
_EPS = 1e-6


def _norms(grads) -> tuple[Tensor, Tensor]:
    """(per-tensor norms (K,), joint norm ())."""
    per = torch.stack([torch.linalg.vector_norm(g) for g in grads])  # (K,)
    return per, torch.linalg.vector_norm(per)


def _variant(scale_rule: str = "joint", norm_rule: str = "joint"):
    def clip(grads, max_norm):
        per, total = _norms(grads)
        divisor = {"joint": total, "squared": total ** 2, "sum": per.sum()}.get(scale_rule, total)
        if scale_rule == "per_tensor":
            clipped = [g * torch.clamp(max_norm / (n + _EPS), max=1.0) for g, n in zip(grads, per)]
        elif scale_rule == "always":
            clipped = [g * (max_norm / (total + _EPS)) for g in grads]
        elif scale_rule == "none":
            clipped = [g.clone() for g in grads]
        else:
            clipped = [g * torch.clamp(max_norm / (divisor + _EPS), max=1.0) for g in grads]
        norm = {"joint": lambda: total, "squared": lambda: total ** 2, "sum": lambda: per.sum(),
                "max": lambda: per.max(), "after": lambda: _norms(clipped)[1]}[norm_rule]()
        return clipped, norm
    return clip


_JOINT = "the joint norm ‖g‖ = sqrt(Σ_k ‖g_k‖²) of all the gradients together"


def _mistakes() -> list[Mistake]:
    v = _variant
    c, n = ("clipped",), ("total_norm",)
    return [
        Mistake(f"per-tensor clipping: each gradient is scaled by its own norm. Clip by {_JOINT}, "
                f"with one scale for all of them.", v(scale_rule="per_tensor"), c, id="per_tensor_clipping"),
        Mistake("gradients that are already below max_norm are scaled up: the scale is min(1, max_norm / ‖g‖), "
                "so a small gradient is left as it is.", v(scale_rule="always"), c, id="scales_up_small_gradients"),
        Mistake("the gradients are not clipped: scale every one by min(1, max_norm / ‖g‖) when ‖g‖ > max_norm.",
                v(scale_rule="none"), c, id="not_clipped"),
        Mistake("the scale uses the squared norm Σ g²: take its square root first.", v(scale_rule="squared"), c, id="squared_norm_scale"),
        Mistake(f"the scale uses the sum of the per-tensor norms Σ_k ‖g_k‖; use {_JOINT}.", v(scale_rule="sum"), c, id="summed_norms_scale"),
        Mistake("total_norm is the squared norm Σ g²: return its square root.",
                v(norm_rule="squared"), n, id="total_norm_squared"),
        Mistake(f"total_norm is the sum of the per-tensor norms Σ_k ‖g_k‖; return {_JOINT}.", v(norm_rule="sum"), n, id="total_norm_summed"),
        Mistake(f"total_norm is the largest per-tensor norm; return {_JOINT}.", v(norm_rule="max"), n, id="total_norm_max"),
        Mistake("total_norm is the norm after clipping; return the norm before clipping (it tells how large "
                "the gradient was).", v(norm_rule="after"), n, id="total_norm_after_clipping"),
    ]


def _unpack(value, case: Case) -> list[tuple[str, Tensor]]:
    grads = case.args[0]
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        if isinstance(value, (tuple, list)) and len(value) == len(grads) and all(isinstance(v, Tensor) for v in value):
            raise Malformed(f"expected a pair (clipped_list, total_norm), got a {type(value).__name__} of "
                            f"{len(value)} tensors — return the total norm too: `return clipped, total_norm`")
        raise Malformed(f"expected a pair (clipped_list, total_norm), got {type_name(value)}")
    clipped, norm = value
    if isinstance(clipped, (Tensor, numbers.Number)) and isinstance(norm, (tuple, list)):
        raise Malformed("returned (total_norm, clipped_list); the order is (clipped_list, total_norm)")
    if not isinstance(clipped, (tuple, list)):
        raise Malformed(f"expected clipped_list to be a list of tensors, got {type_name(clipped)}")
    if len(clipped) != len(grads):
        raise Malformed(f"expected clipped_list to hold {len(grads)} tensors (one per gradient), got {len(clipped)}")
    out = [(f"clipped[{k}]", expect_tensor(g, f"clipped[{k}]")) for k, g in enumerate(clipped)]
    if isinstance(norm, Tensor):
        if norm.dim() != 0:
            hint = (" — `.reshape(())` or `.squeeze()` makes it 0-dimensional" if norm.numel() == 1 else
                    " — take the norm of all the gradients together, one number")
            raise Malformed(f"expected total_norm to be a 0-dimensional tensor, got a tensor of shape "
                            f"{tuple(norm.shape)}{hint}", id="total_norm_not_0d")
        norm = norm.detach().to(case.dtype)
    elif isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        raise Malformed(f"expected total_norm to be a 0-dimensional tensor (as `torch.nn.utils.clip_grad_norm_` "
                        f"returns), got a Python {type(norm).__name__} — return the tensor itself, without "
                        f"`.item()` or `float(...)`", id="total_norm_not_a_tensor")
    else:
        raise Malformed(f"expected total_norm to be a 0-dimensional tensor, got {type_name(norm)}")
    return out + [("total_norm", norm)]


def _label(grads: list[Tensor], max_norm: float) -> str:
    shapes = ", ".join(str(tuple(g.shape)) for g in grads)
    side = "above" if float(_norms(grads)[1]) > max_norm else "below"
    count = f"{len(grads)} gradient{'s' if len(grads) > 1 else ''}"
    return (f"{count} of shapes {shapes}, {str(grads[0].dtype).removeprefix('torch.')}, "
            f"max_norm={max_norm} (joint norm {side} max_norm)")


def _cases(seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, dtype=torch.float32):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)

    f64 = torch.float64
    specs = [
        ([randn(3, 4, scale=2.0), randn(5, scale=2.0), randn(2, 2, 2, scale=2.0)], 1.0),
        ([randn(4, 3, scale=0.05), randn(6, scale=0.05)], 5.0),
        ([randn(2, 3, scale=3.0, dtype=f64), randn(3, dtype=f64), randn(4, 1, dtype=f64)], 2.5),
        ([randn(7, scale=4.0, dtype=f64)], 1.5),
        ([torch.zeros(3), randn(2, 2, scale=3.0)], 0.5),
        ([randn(3, scale=0.1, dtype=f64), randn(2, 2, scale=0.1, dtype=f64)], 1.0),
    ]
    return [Case(_label(grads, max_norm), (grads, max_norm)) for grads, max_norm in specs]


_CLIP = FunctionExercise(
    name="clip_grad_norm",
    reference=reference_clip_grad_norm,
    unpack=_unpack,
    mistakes=_mistakes,
    arg_names=("grads",),
    signature="clip_grad_norm(grads, max_norm) -> (clipped_list, total_norm)",
    coverage="6 gradient lists (one to three tensors of different shapes, joint norm above and below max_norm, "
             "float32 and float64)",
    shape_hint=lambda name, e, g: "each clipped gradient has the shape of its gradient.",
    tolerances=CLIP_TOLERANCES,
    inplace_hint="e.g. `[g * scale for g in grads]`, not `g.mul_(scale)` or `g *= scale`",
)


@notebook_check
def check_clip_grad_norm(fn, *, max_points: float = 1, seed: int = 4321) -> CheckResult:
    """Check the learner's ``clip_grad_norm(grads, max_norm) -> (clipped_list, total_norm)``.

    Compares with :func:`course_utils.gradients.clip_grad_norm` and names the common mistakes:
    per-tensor clipping instead of the joint norm, scaling up gradients already below
    ``max_norm``, the squared (or summed, or largest) norm, the norm after clipping, and
    gradients modified in place (the input gradients must be unchanged).
    """
    return check_function(_CLIP, fn, _cases(seed), max_points)
