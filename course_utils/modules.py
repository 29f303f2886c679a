"""``nn.Module`` wrappers around :mod:`course_utils.functional`, with ``torch.nn``'s API.

The modules own parameters and loop over time; the math is in ``functional``.
Names, argument order, parameter names and shapes, initialisation and return
structures are those of ``torch.nn.RNNCell/LSTMCell/GRUCell`` and
``torch.nn.RNN/LSTM/GRU``, so ``load_state_dict`` works both ways.

Shapes: ``L`` sequence length, ``N`` batch, ``H_in`` input size, ``H`` hidden size,
``D`` directions (2 if bidirectional), ``G`` gate blocks (RNN 1, LSTM 4, GRU 3).
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import functional as Fn

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"]


# ------------------------------------------------------------------ validation
def _check_tensor(owner: str, what: str, t, *, rank: tuple[int, ...], ref: Tensor) -> None:
    """Reject what torch would reject, with a message naming what was expected and what came."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{owner}: expected {what} to be a Tensor, got {type(t).__name__}")
    if t.dim() not in rank:
        ranks = " or ".join(f"{r}-D" for r in rank)
        raise ValueError(f"{owner}: expected {what} to be {ranks}, got {t.dim()}-D of shape {tuple(t.shape)}")
    if t.device != ref.device:
        raise RuntimeError(f"{owner}: expected {what} on device {ref.device} (where the parameters are), "
                           f"got {t.device}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{owner}: expected {what} of dtype {ref.dtype} (the parameters' dtype), got {t.dtype}")


def _check_shape(owner: str, what: str, t: Tensor, expected: tuple[int, ...], pretty: str) -> None:
    if tuple(t.shape) != expected:
        raise ValueError(f"{owner}: expected {what} of shape {pretty} = {expected}, got {tuple(t.shape)}")


def _check_args(owner: str, input_size, hidden_size, bias) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{owner}: expected {name} > 0, got {value}")
    if not isinstance(bias, bool):
        raise TypeError(f"{owner}: expected bias to be a bool, got {type(bias).__name__}")


# ----------------------------------------------------------------------- cells
class _CellBase(nn.Module):
    """Parameters of one cell: weight_ih (G·H, H_in), weight_hh (G·H, H), bias_ih, bias_hh (G·H,)."""

    num_chunks = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        _check_args(type(self).__name__, input_size, hidden_size, bias)
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gh = self.num_chunks * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gh, input_size, **kw))  # (G·H, H_in)
        self.weight_hh = nn.Parameter(torch.empty(gh, hidden_size, **kw))  # (G·H, H)
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gh, **kw))  # (G·H,)
            self.bias_hh = nn.Parameter(torch.empty(gh, **kw))  # (G·H,)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/√H, 1/√H) for every parameter, in registration order, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"

    def _prepare(self, input: Tensor, hx, n_states: int):
        """Validate, add a batch dimension to unbatched input, make zero states."""
        name = type(self).__name__
        _check_tensor(name, "input", input, rank=(1, 2), ref=self.weight_ih)
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (N, H_in)
        N = x.shape[0]
        _check_shape(name, "input", x if batched else input,
                     (N, self.input_size) if batched else (self.input_size,),
                     f"(N, {self.input_size})" if batched else f"({self.input_size},)")
        if hx is None:
            zeros = x.new_zeros(N, self.hidden_size)  # (N, H)
            return x, (zeros,) * n_states, batched
        states = hx if n_states > 1 else (hx,)
        if n_states > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != n_states):
            raise TypeError(f"{name}: expected hx to be a tuple (h, c) of two Tensors, got {type(hx).__name__}")
        out = []
        for label, s in zip(("hx", "cx"), states):
            _check_tensor(name, label, s, rank=(input.dim(),), ref=self.weight_ih)
            s = s if batched else s.unsqueeze(0)  # (N, H)
            _check_shape(name, label, s, (N, self.hidden_size), f"(N, {self.hidden_size}) with N={N}")
            out.append(s)
        return x, tuple(out), batched


class RNNCell(_CellBase):
    """An Elman RNN cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh), as ``torch.nn.RNNCell``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        if nonlinearity not in Fn.NONLINEARITIES:
            raise ValueError(f"RNNCell: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, hx, 1)
        h = Fn.rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)
        return h if batched else h.squeeze(0)  # (N, H) or (H,)


class LSTMCell(_CellBase):
    """An LSTM cell, as ``torch.nn.LSTMCell``: returns ``(h', c')``."""

    num_chunks = 4

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        x, (h, c), batched = self._prepare(input, hx, 2)
        h, c = Fn.lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))  # (N, H) or (H,)


class GRUCell(_CellBase):
    """A GRU cell in torch's convention, as ``torch.nn.GRUCell``."""

    num_chunks = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, hx, 1)
        h = Fn.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else h.squeeze(0)  # (N, H) or (H,)


# ---------------------------------------------------------------------- layers
_MODES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class _RNNBase(nn.Module):
    """Stacked, optionally bidirectional recurrent layers with torch's parameter layout."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        owner = "LSTM" if mode == "LSTM" else "GRU" if mode == "GRU" else "RNN"
        self._owner = owner
        _check_args(owner, input_size, hidden_size, bias)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers <= 0:
            raise ValueError(f"{owner}: expected num_layers to be an int > 0, got {num_layers!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
            raise ValueError(f"{owner}: expected dropout to be a number in [0, 1], got {dropout!r}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"{owner}: expected batch_first to be a bool, got {type(batch_first).__name__}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{owner}: dropout acts between stacked layers only, so dropout={dropout} "
                          f"has no effect with num_layers=1", stacklevel=3)
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        kw = {"device": device, "dtype": dtype}
        D, gh = (2 if bidirectional else 1), _MODES[mode] * hidden_size
        self._layer_names: list[list[str]] = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * D
            for direction in range(D):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"] + ([f"bias_ih{sfx}", f"bias_hh{sfx}"] if bias else [])
                shapes = [(gh, layer_in), (gh, hidden_size), (gh,), (gh,)]
                for name, shape in zip(names, shapes):
                    setattr(self, name, nn.Parameter(torch.empty(shape, **kw)))
                self._layer_names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/√H, 1/√H) for every parameter, in registration order, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._layer_names]

    # ---- the time loop: one matmul for all input projections, then unbind(0)
    def _run_direction(self, x: Tensor, state, params: list[Tensor], reverse: bool):
        """One layer, one direction. x: (L, N, H_in) -> output (L, N, H), final state."""
        w_ih, w_hh = params[0], params[1]
        b_ih, b_hh = (params[2], params[3]) if self.bias else (None, None)
        if self.mode != "GRU" and b_ih is not None:
            # RNN and LSTM add b_hh where they add b_ih: fold it in once instead of at every step
            # (the GRU cannot: its reset gate scales the hidden part of n, b_hn included)
            b_ih, b_hh = b_ih + b_hh, None
        # W_ih x_t + b_ih for every t at once: the only input matmul
        x_proj = F.linear(x, w_ih, b_ih)  # (L, N, G·H)
        steps = x_proj.unbind(0)  # L x (N, G·H)
        if reverse:
            steps = steps[::-1]
        outputs = []
        for xp in steps:
            if self.mode == "LSTM":
                state = Fn.lstm_step(xp, state, w_hh, b_hh)
                outputs.append(state[0])
            elif self.mode == "GRU":
                state = Fn.gru_step(xp, state, w_hh, b_hh)
                outputs.append(state)
            else:
                state = Fn.rnn_step(xp, state, w_hh, b_hh, "tanh" if self.mode == "RNN_TANH" else "relu")
                outputs.append(state)
        if reverse:
            outputs.reverse()
        return torch.stack(outputs), state  # (L, N, H)

    def _validate(self, input: Tensor, hx):
        owner, ref = self._owner, self.weight_ih_l0
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise TypeError(f"{owner}: PackedSequence input is not supported by the course's reference; "
                            f"pad the batch and pass a Tensor, or use torch.nn.{owner}")
        _check_tensor(owner, "input", input, rank=(2, 3), ref=ref)
        batched = input.dim() == 3
        if input.shape[-1] != self.input_size:
            layout = ("(N, L, " if self.batch_first else "(L, N, ") if batched else "(L, "
            raise ValueError(f"{owner}: expected input of shape {layout}{self.input_size}), "
                             f"got {tuple(input.shape)}")
        x = input if batched else input.unsqueeze(1)  # unbatched (L, H_in) -> (L, 1, H_in)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (N, L, H_in) -> (L, N, H_in)
        if x.shape[0] == 0:
            raise ValueError(f"{owner}: expected a sequence of length >= 1, got input of shape {tuple(input.shape)}")
        D = 2 if self.bidirectional else 1
        N = x.shape[1]
        expected = (D * self.num_layers, N, self.hidden_size) if batched else (D * self.num_layers, self.hidden_size)
        pretty = (f"(D*num_layers, N, H) with N={N}" if batched else "(D*num_layers, H)")
        n_states = 2 if self.mode == "LSTM" else 1
        if hx is None:
            zeros = x.new_zeros(D * self.num_layers, N, self.hidden_size)  # (D·layers, N, H)
            return x, (zeros,) * n_states, batched
        if n_states == 2:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{owner}: expected hx to be a tuple (h_0, c_0) of two Tensors, "
                                f"got {type(hx).__name__}")
            states = tuple(hx)
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{owner}: expected hx to be a Tensor h_0, got a {type(hx).__name__}")
            states = (hx,)
        out = []
        for label, s in zip(("h_0", "c_0"), states):
            _check_tensor(owner, label, s, rank=(len(expected),), ref=ref)
            _check_shape(owner, label, s, expected, pretty)
            out.append(s if batched else s.unsqueeze(1))  # (D·layers, N, H)
        return x, tuple(out), batched

    def forward(self, input: Tensor, hx=None):
        x, states, batched = self._validate(input, hx)  # x: (L, N, H_in)
        D = 2 if self.bidirectional else 1
        finals: list[list[Tensor]] = [[] for _ in states]
        layer_input = x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(D):
                k = layer * D + direction
                init = tuple(s[k] for s in states)  # each (N, H)
                out, final = self._run_direction(layer_input, init if len(init) > 1 else init[0],
                                                 self.all_weights[k], reverse=bool(direction))
                outs.append(out)
                for store, value in zip(finals, final if len(states) > 1 else (final,)):
                    store.append(value)
            layer_input = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (L, N, D·H)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input  # (L, N, D·H)
        h_n = tuple(torch.stack(store) for store in finals)  # each (D·layers, N, H)
        if batched and self.batch_first:
            output = output.transpose(0, 1)  # (N, L, D·H)
        if not batched:
            output = output.squeeze(1)  # (L, D·H)
            h_n = tuple(h.squeeze(1) for h in h_n)  # (D·layers, H)
        return output, (h_n if len(h_n) > 1 else h_n[0])


class RNN(_RNNBase):
    """Multi-layer Elman RNN with torch's API: ``RNN(input_size, hidden_size, num_layers=1,
    nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0, bidirectional=False)``.

    Returns ``output, h_n``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        if nonlinearity not in Fn.NONLINEARITIES:
            raise ValueError(f"RNN: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, device, dtype)


class LSTM(_RNNBase):
    """Multi-layer LSTM with torch's API. Returns ``output, (h_n, c_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype)


class GRU(_RNNBase):
    """Multi-layer GRU with torch's API and convention. Returns ``output, h_n``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype)
