"""What the three cell checks share: random inputs, messages, small building blocks of wrong cells."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .harness import Case, Malformed, expect_tensor

__all__ = ["DEFAULT_SEED", "ACT", "SHAPES", "COVERAGE", "cell_inputs", "cell_label", "cell_cases", "matmul_hint",
           "single_output", "linear"]

DEFAULT_SEED = 1234
ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "identity": lambda t: t}
_MATMUL_ERRORS = ("cannot be multiplied", "size mismatch", "must match the size", "Expected size",
                  "shape '", "doesn't match the broadcast shape")


# -------------------------------------------------------------------- inputs
def cell_inputs(gen: torch.Generator, gates: int, n: int, h_in: int, h: int, bias: bool, dtype: torch.dtype,
                cell_state: bool = False) -> tuple:
    """Positional arguments for one call: x, state, weight_ih, weight_hh[, bias_ih, bias_hh]."""
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)

    x = randn(n, h_in)  # (N, H_in)
    state = (randn(n, h), randn(n, h)) if cell_state else randn(n, h)  # (N, H)
    w_ih = randn(gates * h, h_in, scale=0.6)  # (G·H, H_in)
    w_hh = randn(gates * h, h, scale=0.6)  # (G·H, H)
    if not bias:
        return (x, state, w_ih, w_hh)
    return (x, state, w_ih, w_hh, randn(gates * h, scale=0.6), randn(gates * h, scale=0.6))


#: (N, H_in, H, biases, dtype): batch 1 and > 1, different sizes, with and without biases, both dtypes
SHAPES = [
    (4, 3, 5, True, torch.float32),
    (1, 4, 2, True, torch.float32),
    (3, 5, 3, False, torch.float32),
    (2, 3, 4, True, torch.float64),
    (1, 2, 3, False, torch.float64),
]
COVERAGE = ("{n} random inputs (batch 1 and > 1, several input and hidden sizes, with and without biases, "
            "float32 and float64)")


def cell_label(n, h_in, h, bias, dtype, extra="") -> str:
    """How a case is named in messages: "N=4, H_in=3, H=5, with biases, float32"."""
    return (f"N={n}, H_in={h_in}, H={h}, {'with' if bias else 'without'} biases, "
            f"{str(dtype).removeprefix('torch.')}{extra}")


def cell_cases(gates: int, seed: int, cell_state: bool = False, shapes=SHAPES) -> list[Case]:
    """One case per entry of ``shapes``, drawn from a generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return [Case(cell_label(n, h_in, h, bias, dtype), cell_inputs(gen, gates, n, h_in, h, bias, dtype, cell_state))
            for n, h_in, h, bias, dtype in shapes]


def matmul_hint(shapes: str) -> Callable[[Exception], str | None]:
    """A hint for the shape errors a wrongly transposed weight causes; ``shapes`` lists the argument shapes."""

    def hint(exc: Exception) -> str | None:
        if isinstance(exc, RuntimeError) and any(s in str(exc) for s in _MATMUL_ERRORS):
            return (f"check the shapes of your matrix products: {shapes}. "
                    f"`x @ weight_ih.T` (or `F.linear(x, weight_ih, bias_ih)`) gives the input part.")
        return None
    return hint


def single_output(name: str) -> Callable:
    """``unpack`` for a function that returns one tensor called ``name``."""

    def unpack(value, case: Case) -> list[tuple[str, Tensor]]:
        if isinstance(value, (tuple, list)):
            raise Malformed(f"expected one tensor {name}, got a {type(value).__name__} of {len(value)} items")
        return [(name, expect_tensor(value, name))]
    return unpack


def linear(x: Tensor, w: Tensor, b: Tensor | None, transposed: bool = False, use_bias: bool = True) -> Tensor:
    """x @ W.T + b, or the wrong x @ W (``transposed``), with or without the bias: a building block of wrong cells."""
    out = x @ (w if transposed else w.T)
    return out + b if (b is not None and use_bias) else out
