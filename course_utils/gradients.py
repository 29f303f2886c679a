"""Gradients through time: measure how much of the loss's gradient reaches each earlier step.

The unit on vanishing and exploding gradients uses these functions; so does the
gradient-flow explorer in :mod:`course_utils.widgets`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from . import functional as Fn

__all__ = ["clip_grad_norm", "make_cell_params", "gradient_norms", "CELL_GATES"]

CELL_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def clip_grad_norm(grads: Sequence[Tensor], max_norm: float, eps: float = 1e-6) -> tuple[list[Tensor], Tensor]:
    """Scale a list of gradients so that their *joint* L2 norm is at most ``max_norm``.

    The same rule as ``torch.nn.utils.clip_grad_norm_``, as a pure function.

    Args:
        grads: gradient tensors of any shapes.
        max_norm: largest total norm allowed.
        eps: keeps the division finite when the norm is 0.

    Returns:
        (clipped gradients, total norm before clipping).
    """
    # ‖g‖ = sqrt(Σ_k ‖g_k‖²) over all tensors together
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    # scale = min(1, max_norm / (‖g‖ + ε)): never scale a small gradient up
    scale = torch.clamp(max_norm / (total + eps), max=1.0)
    return [g * scale for g in grads], total


def make_cell_params(cell: str, input_size: int, hidden_size: int, weight_scale: float | None = None,
                     forget_bias: float = 0.0, seed: int = 0, device=None,
                     dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Parameters for one cell, as in torch (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``).

    Args:
        cell: "rnn", "lstm" or "gru".
        weight_scale: ``None`` initialises like torch, U(-1/√H, 1/√H). A number draws each
            recurrent block from N(0, scale²/H), whose spectral radius is close to ``scale``.
        forget_bias: added to the LSTM's forget-gate bias (a common trick: 1.0 or more).
        seed: the parameters come from their own generator, so the caller's seed is untouched.
    """
    if cell not in CELL_GATES:
        raise ValueError(f"make_cell_params: expected cell 'rnn', 'lstm' or 'gru', got {cell!r}")
    gen = torch.Generator().manual_seed(seed)
    G, H = CELL_GATES[cell], hidden_size
    bound = 1.0 / math.sqrt(H)

    def uniform(*shape):
        return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound

    p = {"weight_ih": uniform(G * H, input_size), "weight_hh": uniform(G * H, H),
         "bias_ih": uniform(G * H), "bias_hh": uniform(G * H)}
    if weight_scale is not None:
        # each gate's H x H block ~ N(0, scale²/H): eigenvalues fill a disc of radius ≈ scale
        p["weight_hh"] = torch.randn(G * H, H, generator=gen, dtype=torch.float64) * (weight_scale / math.sqrt(H))
    if cell == "lstm":
        p["bias_ih"][H:2 * H] += forget_bias  # rows H..2H are the forget gate (order i, f, g, o)
    return {k: v.to(device=device, dtype=dtype) for k, v in p.items()}


def _step(cell: str, x: Tensor, state, p: dict[str, Tensor]):
    if cell == "rnn":
        return Fn.rnn_cell(x, state, **p)
    if cell == "lstm":
        return Fn.lstm_cell(x, state, **p)
    return Fn.gru_cell(x, state, **p)


def gradient_norms(cell: str = "rnn", seq_len: int = 50, hidden_size: int = 32, input_size: int = 4,
                   weight_scale: float | None = None, forget_bias: float = 0.0, wrt: str = "input",
                   params: dict[str, Tensor] | None = None, seed: int = 0, device=None,
                   dtype: torch.dtype = torch.float32) -> Tensor:
    """‖∂L/∂x_t‖ (or ‖∂L/∂state_t‖) for every step t, where L depends on the last step only.

    L = Σ h_T ⊙ v with a fixed random unit vector v, so any gradient that reaches step t
    got there through the recurrence. Index ``t`` of the result is step t; the distance
    from the loss is ``seq_len - 1 - t``.

    Args:
        cell: "rnn", "lstm" or "gru".
        wrt: "input" for the gradient reaching each input x_t (comparable across cells), or
            "state" for the gradient reaching each state (h_t; for the LSTM, (h_t, c_t) together).
        params: cell parameters; ``None`` makes them with :func:`make_cell_params`.

    Returns:
        a (seq_len,) tensor of norms, on the CPU, float64.
    """
    if wrt not in ("input", "state"):
        raise ValueError(f"gradient_norms: expected wrt 'input' or 'state', got {wrt!r}")
    if seq_len < 1:
        raise ValueError(f"gradient_norms: expected seq_len >= 1, got {seq_len}")
    if params is None:
        params = make_cell_params(cell, input_size, hidden_size, weight_scale, forget_bias, seed, device, dtype)
    w = params["weight_ih"]
    gen = torch.Generator().manual_seed(seed + 1)
    xs = torch.randn(seq_len, 1, w.shape[1], generator=gen, dtype=torch.float64).to(w)  # (T, 1, H_in)
    xs.requires_grad_(True)
    v = torch.randn(1, hidden_size, generator=gen, dtype=torch.float64).to(w)
    v = v / v.norm()
    h = w.new_zeros(1, hidden_size)
    state = (h, h.clone()) if cell == "lstm" else h
    kept = []
    with torch.enable_grad():
        for x in xs.unbind(0):  # x: (1, H_in)
            state = _step(cell, x, state, params)
            parts = state if cell == "lstm" else (state,)
            for s in parts:
                s.retain_grad()
            kept.append(parts)
        h_last = state[0] if cell == "lstm" else state
        (h_last * v).sum().backward()
    if wrt == "input":
        return xs.grad[:, 0].norm(dim=-1).detach().cpu().double()  # (T,)
    norms = [torch.sqrt(sum((s.grad.double() ** 2).sum() if s.grad is not None else 0.0 for s in parts))
             for parts in kept]
    return torch.stack([n if torch.is_tensor(n) else torch.tensor(n) for n in norms]).cpu()
