"""Input checks of :mod:`course_utils.modules`: reject what ``torch.nn`` rejects, with torch's exception class.

Each message names the module, what was expected and what came. The exception *class* is the
one ``torch.nn`` raises for the same input (tests/test_torch_parity.py compares them case by
case), so code that catches torch's errors catches ours. Where torch fails only by accident
(``AttributeError: 'list' object has no attribute 'dim'``), we raise ``TypeError`` instead.

Differences on purpose (the test's ``DELIBERATE`` table holds torch's outcome next to ours):
a list as input, or a tuple as the RNN's or GRU's hx: TypeError (torch: AttributeError); the
LSTM's hx a Tensor: TypeError (torch: IndexError or TypeError); the LSTM's hx a tuple of one:
RuntimeError (torch: IndexError); RNNCell with an unknown nonlinearity: ValueError when built
(torch: RuntimeError at the first step); an LSTMCell c of another dtype, or input_size=True:
refused (torch accepts them); packed input to the LSTM of the wrong dtype: ValueError as for the
RNN and GRU (torch.nn.LSTM checks no packed input and its kernel raises RuntimeError), and a 2-D
h_0 with it: RuntimeError (torch: IndexError).
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

SHAPE_ERROR = RuntimeError  # torch: wrong sizes and states of the wrong rank are RuntimeErrors
RANK_ERROR = ValueError  # torch: an input of the wrong rank is a ValueError


# ------------------------------------------------------------------ constructor arguments
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_cell_args(owner: str, input_size, hidden_size) -> None:
    """Cells, as torch's: any size >= 0 (hidden_size=0 gives empty states); negative sizes are a RuntimeError."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not _is_int(value):
            raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
        if value < 0:
            raise RuntimeError(f"{owner}: expected {name} >= 0, got {value}")


def check_nonlinearity(owner: str, nonlinearity) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{owner}: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")


def refuse_proj_size(owner: str, proj_size) -> None:
    if proj_size is not None:
        raise ValueError(f"{owner}: proj_size is an LSTM argument only (torch.nn.{owner} refuses it too), "
                         f"got proj_size={proj_size!r}")


def check_layer_args(owner: str, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                     proj_size) -> None:
    """The layers' arguments, in the order torch checks them."""
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
        raise ValueError(f"{owner}: expected dropout to be a number in [0, 1], got {dropout!r}")
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{owner}: expected {name} to be a bool, got {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not _is_int(value):
            raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{owner}: expected {name} > 0, got {value}")
    if not _is_int(num_layers):
        raise TypeError(f"{owner}: expected num_layers to be an int > 0, got {num_layers!r}")
    if num_layers <= 0:
        raise ValueError(f"{owner}: expected num_layers to be an int > 0, got {num_layers!r}")
    if not _is_int(proj_size):
        raise TypeError(f"{owner}: expected proj_size to be an int, got {type(proj_size).__name__}")
    if proj_size < 0:
        raise ValueError(f"{owner}: expected proj_size >= 0 (0: no projection), got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"{owner}: expected proj_size < hidden_size = {hidden_size}, got {proj_size}")


# ------------------------------------------------------------------ tensors
def check_tensor(owner: str, what: str, t, ref: Tensor, *, ranks: tuple[int, ...], rank_error=RANK_ERROR,
                 dtype_error=RuntimeError) -> None:
    """A Tensor (TypeError), of one of ``ranks``, on the parameters' device (RuntimeError) and dtype."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{owner}: expected {what} to be a Tensor, got {type(t).__name__}")
    if t.dim() not in ranks:
        expected = " or ".join(f"{r}-D" for r in ranks)
        raise rank_error(f"{owner}: expected {what} to be {expected}, got {t.dim()}-D of shape {tuple(t.shape)}")
    if t.device != ref.device:
        raise RuntimeError(f"{owner}: expected {what} on device {ref.device} (where the parameters are), "
                           f"got {t.device}")
    if t.dtype != ref.dtype and not torch.is_autocast_enabled(t.device.type):  # autocast mixes dtypes, as in torch
        raise dtype_error(f"{owner}: expected {what} of dtype {ref.dtype} (the parameters' dtype), got {t.dtype}")


def check_shape(owner: str, what: str, t: Tensor, expected: tuple[int, ...], pretty: str) -> None:
    if tuple(t.shape) != expected:
        raise SHAPE_ERROR(f"{owner}: expected {what} of shape {pretty} = {expected}, got {tuple(t.shape)}")


def _state_tuple(owner: str, hx, n_states: int, labels: tuple[str, str]) -> tuple:
    """hx as a tuple of n_states parts: (h, c) for an LSTM, (h,) otherwise."""
    if n_states == 1:
        if isinstance(hx, (tuple, list)):  # torch: AttributeError ('tuple' object has no attribute 'dim')
            raise TypeError(f"{owner}: expected hx to be a Tensor {labels[0]}, got a {type(hx).__name__}")
        return (hx,)
    if not isinstance(hx, (tuple, list)):
        raise TypeError(f"{owner}: expected hx to be a tuple ({labels[0]}, {labels[1]}) of two Tensors, "
                        f"got {type(hx).__name__}")
    if len(hx) != 2:
        raise RuntimeError(f"{owner}: expected hx to be a tuple ({labels[0]}, {labels[1]}) of two Tensors, "
                           f"got a {type(hx).__name__} of {len(hx)}")
    return tuple(hx)


# ------------------------------------------------------------------ cells
def check_cell_forward(owner: str, input, hx, n_states: int, ref: Tensor, input_size: int, hidden_size: int):
    """Returns (input, states) with states like input: (N, H) each, or (H,) for unbatched input."""
    check_tensor(owner, "input", input, ref, ranks=(1, 2))
    batched = input.dim() == 2
    lead = (input.shape[0],) if batched else ()
    check_shape(owner, "input", input, (*lead, input_size), f"(N, {input_size})" if batched else f"({input_size},)")
    if hx is None:
        return input, (input.new_zeros(*lead, hidden_size),) * n_states
    states = _state_tuple(owner, hx, n_states, ("h", "c"))
    pretty = f"(N, {hidden_size}) with N={lead[0]}" if batched else f"({hidden_size},)"
    for label, s in zip(("hx", "cx"), states):
        check_tensor(owner, label, s, ref, ranks=(1, 2))
        if s.dim() != input.dim():
            raise SHAPE_ERROR(f"{owner}: expected {label} to be {input.dim()}-D like the input, got {s.dim()}-D")
        check_shape(owner, label, s, (*lead, hidden_size), pretty)
    return input, states


# ------------------------------------------------------------------ layers
def _layer_states(module, hx, N: int, unbatched: bool, like: Tensor) -> tuple[Tensor, ...]:
    """h_0 (and c_0) as (D·layers, N, ·) each; zeros if hx is None."""
    owner, ref = module._owner, module.weight_ih_l0
    D = 2 if module.bidirectional else 1
    h_size = module.proj_size if module.proj_size > 0 else module.hidden_size
    sizes = [(h_size, "proj_size" if module.proj_size > 0 else "H")]
    if module.mode == "LSTM":
        sizes.append((module.hidden_size, "H"))
    if hx is None:
        return tuple(like.new_zeros(D * module.num_layers, N, size) for size, _ in sizes)
    states = _state_tuple(owner, hx, len(sizes), ("h_0", "c_0"))
    out = []
    for label, s, (size, name) in zip(("h_0", "c_0"), states, sizes):
        expected = (D * module.num_layers, size) if unbatched else (D * module.num_layers, N, size)
        pretty = f"(D*num_layers, {name})" if unbatched else f"(D*num_layers, N, {name}) with N={N}"
        check_tensor(owner, label, s, ref, ranks=(len(expected),), rank_error=SHAPE_ERROR)
        check_shape(owner, label, s, expected, pretty)
        out.append(s.unsqueeze(1) if unbatched else s)  # (D·layers, N, ·)
    return tuple(out)


def _check_features(module, input: Tensor, layout: str) -> None:
    if input.shape[-1] != module.input_size:
        raise SHAPE_ERROR(f"{module._owner}: expected input of shape {layout}{module.input_size}), "
                          f"got {tuple(input.shape)}")


def check_padded_input(module, input, hx):
    """Returns x (L, N, H_in), states each (D·layers, N, ·), batched."""
    owner = module._owner
    check_tensor(owner, "input", input, module.weight_ih_l0, ranks=(2, 3), dtype_error=ValueError)
    batched = input.dim() == 3
    _check_features(module, input, ("(N, L, " if module.batch_first else "(L, N, ") if batched else "(L, ")
    x = input if batched else input.unsqueeze(1)  # unbatched (L, H_in) -> (L, 1, H_in)
    if batched and module.batch_first:
        x = x.transpose(0, 1)  # (N, L, H_in) -> (L, N, H_in)
    if x.shape[0] == 0:
        raise RuntimeError(f"{owner}: expected a sequence of length >= 1, got input of shape {tuple(input.shape)}")
    return x, _layer_states(module, hx, x.shape[1], not batched, x), batched


def check_packed_input(module, data, batch_sizes: Tensor, hx):
    """Returns data (T, H_in), states each (D·layers, N, ·) in the caller's order, batch_sizes as a list."""
    owner = module._owner
    check_tensor(owner, "the PackedSequence's data", data, module.weight_ih_l0, ranks=(2,),
                 rank_error=SHAPE_ERROR, dtype_error=ValueError)
    _check_features(module, data, "(sum(batch_sizes), ")
    sizes = batch_sizes.tolist()
    if not sizes or sizes[-1] < 1 or any(a < b for a, b in zip(sizes, sizes[1:])) or sum(sizes) != data.shape[0]:
        raise RuntimeError(f"{owner}: expected batch_sizes >= 1, never growing, adding up to the {data.shape[0]} "
                           f"rows of the data, got {sizes}")
    return data, _layer_states(module, hx, sizes[0], False, data), sizes
