"""``nn.Module`` wrappers around :mod:`course_utils.functional`, with ``torch.nn``'s API.

The modules own parameters and loop over time; the math is in ``functional``, and which rows
of a packed batch a time step sees is in :mod:`course_utils.packing`. Names, argument order,
parameter names and shapes, initialisation, return structures, ``repr`` and the exception
classes are those of ``torch.nn.RNNCell/LSTMCell/GRUCell`` and ``torch.nn.RNN/LSTM/GRU``, so
``load_state_dict`` works both ways; the messages say more (what was expected, what came).
Input checks live in :mod:`course_utils._validation`.

Not supported: ``torch.jit.script`` (cells and layers). TorchScript compiles a statically
typed subset of Python; these modules look their parameters up by computed names
(``getattr(self, "weight_hh_l1")``), pass the step function around as a closure, keep the
LSTM's state as a tuple and the others' as a tensor through one loop, take a Tensor *or* a
PackedSequence, and check their input with plain Python (``isinstance`` on any value, an
exception class picked to match torch's). ``torch.nn`` scripts only because each mode hands
all of that to one C++ kernel behind typed overloads; doing the same here would hide the loop
the course is about. Where a scripted model is needed, load the state_dict into ``torch.nn``'s
layer (it moves over unchanged) and script that.

Shapes: ``L`` sequence length, ``N`` batch, ``H_in`` input size, ``H`` hidden size,
``P`` proj_size (LSTM), ``D`` directions (2 if bidirectional), ``G`` gate blocks
(RNN 1, LSTM 4, GRU 3).
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from . import _validation as V
from . import functional as Fn
from .packing import time_steps, unroll

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"]


# ----------------------------------------------------------------------- cells
class _CellBase(nn.Module):
    """Parameters of one cell: weight_ih (G·H, H_in), weight_hh (G·H, H), bias_ih, bias_hh (G·H,)."""

    num_chunks = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        V.check_cell_args(name, input_size, hidden_size)
        if not isinstance(bias, bool):
            # torch.nn's cells take any truthy value; so do we, but a string here is usually a
            # nonlinearity passed in bias's position: RNNCell(10, 20, "relu")
            warnings.warn(f"{name}: bias={bias!r} is not a bool; read as bias={bool(bias)} as torch.nn does "
                          f"(the third argument is bias; nonlinearity is the fourth)",
                          stacklevel=2 if type(self).__init__ is _CellBase.__init__ else 3)
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
        """U(-1/√H, 1/√H) for every parameter, in registration order, as torch does (0 if H = 0)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _prepare(self, input: Tensor, hx, n_states: int):
        """Validate, add a batch dimension to unbatched input, make zero states."""
        x, states = V.check_cell_forward(type(self).__name__, input, hx, n_states, self.weight_ih,
                                         self.input_size, self.hidden_size)
        batched = input.dim() == 2
        return (x if batched else x.unsqueeze(0)), tuple(s if batched else s.unsqueeze(0) for s in states), batched


class RNNCell(_CellBase):
    """An Elman RNN cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh), as ``torch.nn.RNNCell``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        # torch.nn.RNNCell accepts any nonlinearity here and fails at the first step; we fail here
        V.check_nonlinearity("RNNCell", nonlinearity)
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
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        owner = "LSTM" if mode == "LSTM" else "GRU" if mode == "GRU" else "RNN"
        self._owner = owner
        V.check_layer_args(owner, input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{owner}: dropout acts between stacked layers only, so dropout={dropout} "
                          f"has no effect with num_layers=1", stacklevel=3)
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        kw = {"device": device, "dtype": dtype}
        D, gh = (2 if bidirectional else 1), _MODES[mode] * hidden_size
        h_out = proj_size if proj_size > 0 else hidden_size  # what h carries: P with projections, else H
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []  # one list of names per (layer, direction), as torch
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else h_out * D
            for direction in range(D):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {f"weight_ih{sfx}": (gh, layer_in), f"weight_hh{sfx}": (gh, h_out)}
                if bias:
                    shapes.update({f"bias_ih{sfx}": (gh,), f"bias_hh{sfx}": (gh,)})
                if proj_size > 0:
                    shapes[f"weight_hr{sfx}"] = (proj_size, hidden_size)  # (P, H)
                for name, shape in shapes.items():  # torch's registration order: ih, hh, biases, hr
                    setattr(self, name, nn.Parameter(torch.empty(shape, **kw)))
                self._all_weights.append(list(shapes))
                self._flat_weights_names.extend(shapes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/√H, 1/√H) for every parameter (weight_hr too), in registration order, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        """What torch prints (which, for RNN, leaves out the nonlinearity)."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False)):
            if getattr(self, name) is not default:
                s += f", {name}={getattr(self, name)}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:  # torch prints any value but False itself (bidirectional=0 too)
            s += f", bidirectional={self.bidirectional}"
        return s

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list[Tensor | None]:
        """The weights in ``_flat_weights_names`` order, read afresh (torch keeps this list for cuDNN;
        reading it live keeps it right after ``weight_norm`` or any other reassignment)."""
        return [getattr(self, name, None) for name in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """A no-op, here for code written for ``torch.nn``: torch packs the weights into one buffer
        for cuDNN; these layers run step by step on separate parameters and need nothing of the kind."""

    # ---- one layer, one direction: one matmul for all input projections, then the step loop
    def _step(self, params: list[Tensor]):
        """One (layer, direction): ``(weight_ih, bias_ih, step)`` with ``step(x_proj, state) -> state``."""
        w_ih, w_hh, *rest = params  # torch's order: weight_ih, weight_hh, [bias_ih, bias_hh], [weight_hr]
        b_ih, b_hh = (rest[0], rest[1]) if self.bias else (None, None)
        if self.mode != "GRU" and b_ih is not None:
            # RNN and LSTM add b_hh where they add b_ih: fold it in once instead of at every step
            # (the GRU cannot: its reset gate scales the hidden part of n, b_hn included)
            b_ih, b_hh = b_ih + b_hh, None
        if self.mode == "LSTM":
            w_hr = rest[-1] if self.proj_size > 0 else None
            return w_ih, b_ih, partial(Fn.lstm_step, weight_hh=w_hh, bias_hh=b_hh, weight_hr=w_hr)  # (h, c)
        if self.mode == "GRU":
            return w_ih, b_ih, lambda x, s: (Fn.gru_step(x, s[0], w_hh, b_hh),)  # (h,)
        nonlinearity = "tanh" if self.mode == "RNN_TANH" else "relu"
        return w_ih, b_ih, lambda x, s: (Fn.rnn_step(x, s[0], w_hh, b_hh, nonlinearity),)  # (h,)

    def _layer(self, layer_input: Tensor, batch_sizes: list[int] | None, states: tuple[Tensor, ...], layer: int):
        """All directions of one layer. layer_input (L, N, F) or packed (T, F) -> output (..., D·H_out)."""
        D = 2 if self.bidirectional else 1
        outputs, finals = [], []
        for direction in range(D):
            k = layer * D + direction
            w_ih, b_ih, step = self._step([getattr(self, name) for name in self._all_weights[k]])
            # W_ih x_t + b_ih for every t at once: the only input matmul
            x_proj = F.linear(layer_input, w_ih, b_ih)  # (L, N, G·H) or (T, G·H)
            outs, final = unroll(step, time_steps(x_proj, batch_sizes), tuple(s[k] for s in states),
                                 reverse=direction == 1)
            outputs.append(torch.stack(outs) if batch_sizes is None else torch.cat(outs))  # (L, N, H_out) or (T, H_out)
            finals.append(final)
        return torch.cat(outputs, dim=-1), finals  # (..., D·H_out)

    def forward(self, input, hx=None):
        """Run the stacked layers over a padded or a packed batch.

        Args:
            input: (L, N, H_in), (N, L, H_in) if batch_first, (L, H_in) unbatched, or a PackedSequence
                (batch_first plays no part then: the packed data is laid out time step by time step).
            hx: h_0 (D·layers, N, H_out), for the LSTM (h_0, c_0) with c_0 (D·layers, N, H); zeros if None.
                For packed input, N = batch_sizes[0] and the rows are in the caller's order, as in torch.

        Returns:
            ``output, h_n`` (LSTM: ``output, (h_n, c_n)``): output (L, N, D·H_out) like the input, or a
            PackedSequence for packed input; h_n holds each sequence's state after its own last step
            (the backward direction: after its first). H_out is proj_size if set, else H.
        """
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes_tensor, sorted_indices, unsorted_indices = input
            x, states, batch_sizes = V.check_packed_input(self, data, batch_sizes_tensor, hx)
            if hx is not None and sorted_indices is not None:
                # h_0 comes in the caller's order; the packed rows are sorted longest first
                states = tuple(s.index_select(1, sorted_indices) for s in states)
            batched = True
        else:
            x, states, batched = V.check_padded_input(self, input, hx)  # x: (L, N, H_in)
            batch_sizes = None
        layer_input, finals = x, []
        for layer in range(self.num_layers):
            layer_input, layer_finals = self._layer(layer_input, batch_sizes, states, layer)
            finals.extend(layer_finals)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input  # (L, N, D·H_out) or (T, D·H_out)
        h_n = tuple(torch.stack(parts) for parts in zip(*finals))  # each (D·layers, N, ·)
        if packed:
            if unsorted_indices is not None:
                h_n = tuple(h.index_select(1, unsorted_indices) for h in h_n)  # back to the caller's order
            output = PackedSequence(output, batch_sizes_tensor, sorted_indices, unsorted_indices)
        elif batched and self.batch_first:
            output = output.transpose(0, 1)  # (N, L, D·H_out)
        elif not batched:
            output = output.squeeze(1)  # (L, D·H_out)
            h_n = tuple(h.squeeze(1) for h in h_n)  # (D·layers, ·)
        return output, (h_n if self.mode == "LSTM" else h_n[0])


class RNN(_RNNBase):
    """Multi-layer Elman RNN with torch's API: ``RNN(input_size, hidden_size, num_layers=1,
    nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0, bidirectional=False)``.

    Returns ``output, h_n``. ``proj_size`` is refused as torch refuses it (LSTM only).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, proj_size=None) -> None:
        V.refuse_proj_size("RNN", proj_size)
        V.check_nonlinearity("RNN", nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype)


class LSTM(_RNNBase):
    """Multi-layer LSTM with torch's API: ``LSTM(input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, proj_size=0)``. Returns ``output, (h_n, c_n)``.

    With ``proj_size=P > 0`` every layer projects its hidden state, ``h_t = W_hr (o_t ⊙ tanh(c_t))``
    (``weight_hr_l{k}`` (P, H)): output and h_n carry P features, c_n keeps H.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(_RNNBase):
    """Multi-layer GRU with torch's API and convention. Returns ``output, h_n``.

    ``proj_size`` is refused as torch refuses it (LSTM only).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, proj_size=None) -> None:
        V.refuse_proj_size("GRU", proj_size)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)
