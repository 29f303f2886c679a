"""The math of one recurrent step, as small pure functions.

Every function here takes plain tensors and returns plain tensors; the modules in
:mod:`course_utils.modules` only own the parameters and loop over time. The
notation follows PyTorch's documentation of ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``:
weights are stacked gate by gate in torch's order (LSTM ``i, f, g, o``; GRU
``r, z, n``), so a ``state_dict`` moves between these functions and ``torch.nn``
unchanged.

Shapes: ``N`` batch, ``H_in`` input features, ``H`` hidden features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "rnn_cell",
    "lstm_cell",
    "gru_cell",
    "rnn_step",
    "lstm_step",
    "gru_step",
    "lstm_cell_gates",
    "gru_cell_gates",
    "LSTMGates",
    "GRUGates",
    "NONLINEARITIES",
]

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


def _plus_hidden(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """x_proj + W_hh h + b_hh, with the matmul and the sum in one ``addmm`` for a batch (N, H).

    One fused operation instead of three (matmul, two adds) saves time and autograd nodes at
    every step; an unbatched h (H,) takes the plain route.
    """
    if bias_hh is not None:
        x_proj = x_proj + bias_hh  # the layers fold b_hh into x_proj once per sequence instead
    if h.dim() == 2:
        return torch.addmm(x_proj, h, weight_hh.t())  # (N, G·H) = x_proj + h W_hhᵀ
    return x_proj + F.linear(h, weight_hh)  # (G·H,)


# --------------------------------------------------------------------------- RNN
def rnn_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None = None,
             nonlinearity: str = "tanh") -> Tensor:
    """One RNN step whose input projection ``W_ih x + b_ih`` is already computed.

    Shape: x_proj (N, H), h (N, H) -> (N, H).
    """
    # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    return NONLINEARITIES[nonlinearity](_plus_hidden(x_proj, h, weight_hh, bias_hh))  # (N, H)


def rnn_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
             nonlinearity: str = "tanh") -> Tensor:
    """One step of an Elman RNN, as ``torch.nn.RNNCell`` computes it.

    Args:
        x: input at this time step, (N, H_in).
        h: previous hidden state h_{t-1}, (N, H).
        weight_ih: (H, H_in). weight_hh: (H, H). bias_ih, bias_hh: (H,) or None.
        nonlinearity: "tanh" or "relu".

    Returns:
        h_t, (N, H).
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"rnn_cell: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
    # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    return rnn_step(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh, nonlinearity)  # (N, H)


# -------------------------------------------------------------------------- LSTM
class LSTMGates(NamedTuple):
    """Every activation of one LSTM step, each (N, H)."""

    i: Tensor  # input gate, sigmoid
    f: Tensor  # forget gate, sigmoid
    g: Tensor  # gate gate (cell candidate), tanh
    o: Tensor  # output gate, sigmoid
    c: Tensor  # new cell state c_t
    h: Tensor  # new hidden state h_t


def lstm_step(x_proj: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor,
              bias_hh: Tensor | None = None, weight_hr: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step whose input projection ``W_ih x + b_ih`` (N, 4H) is already computed.

    With ``weight_hr`` (P, H), an LSTM with projections (``torch.nn.LSTM(..., proj_size=P)``):
    the hidden state is projected down to P features, ``h_t = W_hr (o_t ⊙ tanh(c_t))``, and it is
    this h (N, P) that the next step multiplies by ``weight_hh`` (4H, P). The cell stays (N, H).
    """
    h, c = state
    # W_ih x_t + b_ih + W_hh h_{t-1} + b_hh for the four gates at once
    gates = _plus_hidden(x_proj, h, weight_hh, bias_hh)  # (N, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (N, H), torch order: i, f, g, o
    # c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    # h_t = σ(o) ⊙ tanh(c_t)
    h = torch.sigmoid(o) * torch.tanh(c)
    if weight_hr is not None:
        # h_t = W_hr (o_t ⊙ tanh(c_t))
        h = F.linear(h, weight_hr)  # (N, H) -> (N, P)
    return h, c


def lstm_cell(x: Tensor, state: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step, as ``torch.nn.LSTMCell`` computes it.

    Args:
        x: input, (N, H_in). state: (h_{t-1}, c_{t-1}), each (N, H).
        weight_ih: (4H, H_in). weight_hh: (4H, H). bias_ih, bias_hh: (4H,) or None.
            Rows are stacked in torch's order: input, forget, gate gate (candidate), output.

    Returns:
        (h_t, c_t), each (N, H).
    """
    return lstm_step(F.linear(x, weight_ih, bias_ih), state, weight_hh, bias_hh)  # (N, 4H) in


def lstm_cell_gates(x: Tensor, state: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor,
                    bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> LSTMGates:
    """Like :func:`lstm_cell`, but returns every gate activation by name (for plots and widgets)."""
    h, c = state
    # every gate is σ or tanh of a linear combination of x_t and h_{t-1}
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (N, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (N, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    # c_t = f ⊙ c_{t-1} + i ⊙ g
    c = f * c + i * g
    # h_t = o ⊙ tanh(c_t)
    h = o * torch.tanh(c)
    return LSTMGates(i=i, f=f, g=g, o=o, c=c, h=h)


# --------------------------------------------------------------------------- GRU
class GRUGates(NamedTuple):
    """Every activation of one GRU step (torch's convention), each (N, H)."""

    r: Tensor  # reset gate, sigmoid
    z: Tensor  # update gate, sigmoid (the share of h_{t-1} that is kept)
    n: Tensor  # candidate (new gate), tanh
    h: Tensor  # new hidden state h_t


def gru_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step whose input projection ``W_ih x + b_ih`` (N, 3H) is already computed."""
    x_r, x_z, x_n = x_proj.chunk(3, dim=-1)  # 3 x (N, H), torch order: r, z, n
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)  # 3 x (N, H)
    # r_t = σ(W_ir x + b_ir + W_hr h + b_hr),  z_t = σ(W_iz x + b_iz + W_hz h + b_hz)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    # n_t = tanh(W_in x + b_in + r_t ⊙ (W_hn h + b_hn))   (reset applied after the matmul)
    n = torch.tanh(x_n + r * h_n)
    # h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}  =  n_t + z_t ⊙ (h_{t-1} - n_t)
    return n + z * (h - n)


def gru_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step in PyTorch's convention, as ``torch.nn.GRUCell`` computes it.

    Args:
        x: input, (N, H_in). h: h_{t-1}, (N, H).
        weight_ih: (3H, H_in). weight_hh: (3H, H). bias_ih, bias_hh: (3H,) or None.
            Rows are stacked in torch's order: reset, update, new (candidate).

    Returns:
        h_t, (N, H).
    """
    return gru_step(F.linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh)  # (N, 3H) in


def gru_cell_gates(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                   bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> GRUGates:
    """Like :func:`gru_cell`, but returns every gate activation by name (for plots and widgets)."""
    x_r, x_z, x_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)  # 3 x (N, H)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)  # 3 x (N, H)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    # h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    h_new = (1 - z) * n + z * h
    return GRUGates(r=r, z=z, n=n, h=h_new)
