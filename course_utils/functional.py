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
    "rnn_forward",
    "rnn_step_backward",
    "rnn_backward",
    "RNNGrads",
    "lstm_cell",
    "gru_cell",
    "rnn_step",
    "lstm_step",
    "gru_step",
    "lstm_cell_gates",
    "gru_cell_gates",
    "lstm_forward",
    "lstm_cell_backward",
    "gru_forward",
    "gru_cell_chung",
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


def rnn_forward(x: Tensor, h0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
                nonlinearity: str = "tanh") -> tuple[Tensor, Tensor]:
    """The loop over time: :func:`rnn_cell` applied at every step with the same weights.

    Args:
        x: the input sequence, time first as in ``torch.nn.RNN``: (T, N, H_in).
        h0: the initial hidden state, (N, H); ``None`` starts from zeros.
        weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity: as in :func:`rnn_cell`.

    Returns:
        (hs, h_T): every hidden state h_1 .. h_T, (T, N, H), and the last one, (N, H).
        ``hs`` is ``nn.RNN``'s ``output`` and ``h_T`` its ``h_n[0]``.
    """
    h = h0 if h0 is not None else x.new_zeros(x.shape[1], weight_hh.shape[1])  # (N, H)
    states = []
    for x_t in x.unbind(0):  # T tensors (N, H_in)
        # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh): the same weights at every step
        h = rnn_cell(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)  # (N, H)
        states.append(h)
    return torch.stack(states), h  # (T, N, H), (N, H)


class RNNGrads(NamedTuple):
    """The gradients one backward pass of a tanh RNN returns, in this order.

    ``dbias`` serves both biases: ∂L/∂b_ih = ∂L/∂b_hh, since both are added to the same
    pre-activation a_t.
    """

    dx: Tensor  # ∂L/∂x: (N, H_in) for one step, (T, N, H_in) for a sequence
    dh_prev: Tensor  # ∂L/∂h_{t-1} for one step, ∂L/∂h_0 for a sequence, (N, H)
    dweight_ih: Tensor  # ∂L/∂W_ih, (H, H_in)
    dweight_hh: Tensor  # ∂L/∂W_hh, (H, H)
    dbias: Tensor  # ∂L/∂b_ih = ∂L/∂b_hh, (H,)


def rnn_step_backward(dh: Tensor, x: Tensor, h_prev: Tensor, h: Tensor, weight_ih: Tensor,
                      weight_hh: Tensor) -> RNNGrads:
    """Backward through one tanh step h = tanh(a), a = W_ih x + b_ih + W_hh h_prev + b_hh.

    Args:
        dh: ∂L/∂h_t, everything the loss sends to this step's output, (N, H).
        x: the step's input x_t, (N, H_in). h_prev: h_{t-1}, (N, H). h: h_t, the step's output, (N, H).
        weight_ih: (H, H_in). weight_hh: (H, H).

    Returns:
        :class:`RNNGrads` ``(dx, dh_prev, dweight_ih, dweight_hh, dbias)``: ∂L/∂x_t (N, H_in),
        ∂L/∂h_{t-1} (N, H), this step's share of ∂L/∂W_ih (H, H_in) and ∂L/∂W_hh (H, H),
        and of ∂L/∂b (H,), summed over the batch.
    """
    # ∂L/∂a_t = ∂L/∂h_t ⊙ tanh'(a_t) = ∂L/∂h_t ⊙ (1 - h_t²)
    da = dh * (1 - h * h)  # (N, H)
    # ∂L/∂x_t = W_ihᵀ ∂L/∂a_t, for every row: da @ W_ih
    dx = da @ weight_ih  # (N, H_in)
    # ∂L/∂h_{t-1} = W_hhᵀ ∂L/∂a_t, for every row: da @ W_hh
    dh_prev = da @ weight_hh  # (N, H)
    # ∂L/∂W_ih = Σ_n ∂L/∂a_t x_tᵀ,  ∂L/∂W_hh = Σ_n ∂L/∂a_t h_{t-1}ᵀ   (sums over the batch rows)
    dweight_ih = da.T @ x  # (H, H_in)
    dweight_hh = da.T @ h_prev  # (H, H)
    # ∂L/∂b_ih = ∂L/∂b_hh = Σ_n ∂L/∂a_t
    dbias = da.sum(0)  # (H,)
    return RNNGrads(dx, dh_prev, dweight_ih, dweight_hh, dbias)


def rnn_backward(dhs: Tensor, x: Tensor, h0: Tensor, hs: Tensor, weight_ih: Tensor,
                 weight_hh: Tensor) -> RNNGrads:
    """Backpropagation through time for a tanh RNN run by :func:`rnn_forward`.

    Args:
        dhs: ∂L/∂h_t arriving *from the outputs* at every step (what the loss reads from each
            h_t directly, not through later steps), (T, N, H). A loss on the last state only has
            zeros everywhere but ``dhs[-1]``.
        x: the input sequence, (T, N, H_in). h0: the initial state, (N, H).
        hs: the states h_1 .. h_T that :func:`rnn_forward` returned, (T, N, H).
        weight_ih: (H, H_in). weight_hh: (H, H).

    Returns:
        :class:`RNNGrads` ``(dx, dh0, dweight_ih, dweight_hh, dbias)``: ∂L/∂x_t for every step
        (T, N, H_in), ∂L/∂h_0 (N, H), and the weight and bias gradients summed over time.
    """
    dweight_ih, dweight_hh = torch.zeros_like(weight_ih), torch.zeros_like(weight_hh)
    dbias = hs.new_zeros(hs.shape[-1])  # (H,)
    h_prevs = torch.cat([h0.unsqueeze(0), hs[:-1]])  # (T, N, H): h_{t-1} for every t
    dh_next = torch.zeros_like(h0)  # ∂L/∂h_T from beyond the last step: nothing
    dxs = []
    for t in reversed(range(x.shape[0])):
        # ∂L/∂h_t = (from the output at t) + (from step t+1, through h_t's use in h_{t+1})
        dh = dhs[t] + dh_next  # (N, H)
        step = rnn_step_backward(dh, x[t], h_prevs[t], hs[t], weight_ih, weight_hh)
        dxs.append(step.dx)  # (N, H_in)
        dh_next = step.dh_prev  # (N, H), carried to step t-1
        # the same weights serve every step: their gradients are summed over time
        dweight_ih = dweight_ih + step.dweight_ih
        dweight_hh = dweight_hh + step.dweight_hh
        dbias = dbias + step.dbias
    return RNNGrads(torch.stack(dxs[::-1]), dh_next, dweight_ih, dweight_hh, dbias)  # dx: (T, N, H_in)


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


def lstm_forward(x: Tensor, state0: tuple[Tensor, Tensor], weight_ih: Tensor, weight_hh: Tensor,
                 bias_ih: Tensor | None = None, bias_hh: Tensor | None = None
                 ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """An LSTM layer's loop over time: :func:`lstm_cell` at every step, the state carried along.

    Args:
        x: inputs, (T, N, H_in), time first (``torch.nn.LSTM``'s default layout).
        state0: (h_0, c_0), each (N, H).
        weight_ih, weight_hh, bias_ih, bias_hh: as for :func:`lstm_cell`.

    Returns:
        (outputs, (h_T, c_T)): the hidden state of every step, (T, N, H), and the last state,
        each (N, H). ``outputs[-1]`` is ``h_T``.
    """
    h, c = state0
    x_proj = F.linear(x, weight_ih, bias_ih)  # (T, N, 4H): the input part of every step in one product
    outputs = []
    for x_t in x_proj.unbind(0):  # x_t: (N, 4H)
        # (h_t, c_t) = lstm_cell(x_t, (h_{t-1}, c_{t-1}))
        h, c = lstm_step(x_t, (h, c), weight_hh, bias_hh)  # (N, H) each
        outputs.append(h)
    return torch.stack(outputs, dim=0), (h, c)  # (T, N, H), ((N, H), (N, H))


def lstm_cell_backward(dh: Tensor, dc: Tensor, x: Tensor, state: tuple[Tensor, Tensor],
                       gates: tuple[Tensor, Tensor, Tensor, Tensor, Tensor], weight_ih: Tensor,
                       weight_hh: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The backward pass of one LSTM step (:func:`lstm_cell`), through both h_t and c_t.

    Args:
        dh: ∂L/∂h_t, (N, H). dc: ∂L/∂c_t arriving from the next step (not through h_t), (N, H).
        x: the step's input, (N, H_in). state: (h_{t-1}, c_{t-1}), each (N, H).
        gates: what the forward step saved, ``(i, f, g, o, c)``: the gate activations and c_t,
            each (N, H) (the first five fields of :func:`lstm_cell_gates`).
        weight_ih: (4H, H_in). weight_hh: (4H, H).

    Returns:
        ``(dx, dh_prev, dc_prev, dweight_ih, dweight_hh, dbias)``: ∂L/∂x (N, H_in),
        ∂L/∂h_{t-1} (N, H), ∂L/∂c_{t-1} (N, H), ∂L/∂W_ih (4H, H_in), ∂L/∂W_hh (4H, H) and
        ∂L/∂b (4H,), which is the gradient of ``bias_ih`` and of ``bias_hh`` alike (both are
        added to the same pre-activations).
    """
    h_prev, c_prev = state
    i, f, g, o, c = gates
    tanh_c = torch.tanh(c)
    # h_t = o ⊙ tanh(c_t)  ->  ∂L/∂o = ∂L/∂h_t ⊙ tanh(c_t)
    d_o = dh * tanh_c
    # c_t reaches L directly (dc, from step t+1) and through h_t:  ∂L/∂c_t = dc + dh ⊙ o ⊙ (1 − tanh²(c_t))
    dc_t = dc + dh * o * (1 - tanh_c ** 2)
    # c_t = f ⊙ c_{t-1} + i ⊙ g  ->  ∂L/∂f = ∂L/∂c_t ⊙ c_{t-1},  ∂L/∂i = ∂L/∂c_t ⊙ g,  ∂L/∂g = ∂L/∂c_t ⊙ i
    d_f, d_i, d_g = dc_t * c_prev, dc_t * g, dc_t * i
    # ... and ∂L/∂c_{t-1} = ∂L/∂c_t ⊙ f: the additive path, no weight matrix
    dc_prev = dc_t * f
    # through the activations, σ' = σ (1 − σ) and tanh' = 1 − tanh², stacked in torch's order i, f, g, o
    da = torch.cat([d_i * i * (1 - i), d_f * f * (1 - f), d_g * (1 - g ** 2), d_o * o * (1 - o)], dim=-1)  # (N, 4H)
    # a = W_ih x + b_ih + W_hh h_{t-1} + b_hh
    dx = da @ weight_ih  # (N, 4H) @ (4H, H_in) -> (N, H_in)
    dh_prev = da @ weight_hh  # (N, 4H) @ (4H, H) -> (N, H)
    dweight_ih = da.T @ x  # (4H, N) @ (N, H_in) -> (4H, H_in): summed over the batch
    dweight_hh = da.T @ h_prev  # (4H, N) @ (N, H) -> (4H, H)
    dbias = da.sum(dim=0)  # (4H,)
    return dx, dh_prev, dc_prev, dweight_ih, dweight_hh, dbias


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


def gru_forward(x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """A GRU layer's loop over time (PyTorch's convention): :func:`gru_cell` at every step.

    Args:
        x: inputs, (T, N, H_in), time first. h0: (N, H).
        weight_ih, weight_hh, bias_ih, bias_hh: as for :func:`gru_cell`.

    Returns:
        (outputs, h_T): the hidden state of every step, (T, N, H), and the last one, (N, H).
    """
    h = h0
    x_proj = F.linear(x, weight_ih, bias_ih)  # (T, N, 3H): the input part of every step in one product
    outputs = []
    for x_t in x_proj.unbind(0):  # x_t: (N, 3H)
        # h_t = gru_cell(x_t, h_{t-1})
        h = gru_step(x_t, h, weight_hh, bias_hh)  # (N, H)
        outputs.append(h)
    return torch.stack(outputs, dim=0), h  # (T, N, H), (N, H)


def gru_cell_chung(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                   bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step in the textbook form of Chung et al. (2014), with torch's stacked weights.

    The reset gate scales h_{t-1} *before* the hidden matmul, and z_t is the share of the
    *candidate*: ñ_t = tanh(W_in x + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn),
    h_t = z_t ⊙ ñ_t + (1 − z_t) ⊙ h_{t-1}. r_t and z_t are computed as in :func:`gru_cell`.
    Same arguments and shapes as :func:`gru_cell` (blocks stacked r, z, n).
    """
    x_r, x_z, x_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)  # 3 x (N, H)
    w_hr, w_hz, w_hn = weight_hh.chunk(3, dim=0)  # 3 x (H, H)
    b_hr, b_hz, b_hn = bias_hh.chunk(3) if bias_hh is not None else (None, None, None)  # 3 x (H,)
    # r_t = σ(W_ir x + b_ir + W_hr h + b_hr),  z_t = σ(W_iz x + b_iz + W_hz h + b_hz), as in PyTorch's form
    r = torch.sigmoid(x_r + F.linear(h, w_hr, b_hr))
    z = torch.sigmoid(x_z + F.linear(h, w_hz, b_hz))
    # ñ_t = tanh(W_in x + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)   (reset applied before the matmul)
    n = torch.tanh(x_n + F.linear(r * h, w_hn, b_hn))
    # h_t = z_t ⊙ ñ_t + (1 − z_t) ⊙ h_{t-1}   (z weights the candidate)
    return z * n + (1 - z) * h
