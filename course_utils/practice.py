"""Recurrent layers in practice (unit 07): reading a padded batch, combining directions, a task that needs the future.

The two functions a learner writes in unit 07 have their references here:

- :func:`last_valid_output`: the output of each sequence of a padded batch at its own last step
  (``output[-1]`` is the last step of the *longest* sequence, padding for the others);
- :func:`final_states`: the last layer's final states of a (bidirectional) layer, read from ``h_n``
  (laid out ``(num_layers * num_directions, N, H)``, layer by layer, forward before backward).

:func:`lookahead_batch` makes the unit's task that needs the future: tag each token of a sequence
with the token that follows it (the last one with "end"). A unidirectional layer has not seen
the next token when it must answer; a bidirectional one has.

Shapes: ``L`` padded length, ``N`` batch, ``F`` features, ``H`` hidden size, ``D`` directions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .data import make_generator

__all__ = ["IGNORE_INDEX", "final_states", "last_valid_output", "lengths_mask", "lookahead_batch"]

#: the target value ``torch.nn.functional.cross_entropy`` skips by default: the padded positions
IGNORE_INDEX = -100


def last_valid_output(output: Tensor, lengths: Tensor, batch_first: bool = False) -> Tensor:
    """The output of each sequence at its own last valid step.

    Args:
        output: a padded batch, (L, N, F), or (N, L, F) if ``batch_first``.
        lengths: (N,) integers, the length of each sequence (1 <= lengths[n] <= L), in any order.
        batch_first: the layout of ``output``, as the layer that produced it.

    Returns:
        (N, F): row n is ``output[lengths[n] - 1, n]`` (``output[n, lengths[n] - 1]`` if batch_first).
    """
    time_dim = 1 if batch_first else 0
    L = output.shape[time_dim]
    lengths = torch.as_tensor(lengths, device=output.device).long()  # (N,)
    if lengths.dim() != 1 or lengths.numel() != output.shape[1 - time_dim]:
        raise ValueError(f"last_valid_output: expected lengths of shape ({output.shape[1 - time_dim]},) for an "
                         f"output of shape {tuple(output.shape)} (batch_first={batch_first}), "
                         f"got {tuple(lengths.shape)}")
    if lengths.numel() and not (bool((lengths >= 1).all()) and bool((lengths <= L).all())):
        raise ValueError(f"last_valid_output: expected lengths between 1 and {L}, got {lengths.tolist()}")
    last = lengths - 1  # a sequence of length l ends at index l - 1
    rows = torch.arange(lengths.numel(), device=output.device)  # (N,)
    return output[rows, last] if batch_first else output[last, rows]  # (N, F)


def final_states(h_n: Tensor, num_layers: int, bidirectional: bool) -> Tensor:
    """The last layer's final states, forward then backward, side by side.

    ``h_n`` stacks one state per (layer, direction), layer by layer and, within a layer, the
    forward direction before the backward one: row ``layer * D + direction``.

    Args:
        h_n: (num_layers * D, N, H), as a recurrent layer returns it (for an LSTM, h_n or c_n).
        num_layers: the layer's ``num_layers``.
        bidirectional: the layer's ``bidirectional`` (D = 2 if true, else 1).

    Returns:
        (N, D * H): ``[forward | backward]`` of the last layer (``h_n[-1]`` when unidirectional).
    """
    D = 2 if bidirectional else 1
    if h_n.dim() != 3 or h_n.shape[0] != num_layers * D:
        raise ValueError(f"final_states: expected h_n of shape ({num_layers * D}, N, H) for num_layers={num_layers}, "
                         f"bidirectional={bidirectional}, got {tuple(h_n.shape)}")
    last = h_n.view(num_layers, D, *h_n.shape[1:])[-1]  # (D, N, H): the last layer, its directions
    return torch.cat(last.unbind(0), dim=-1)  # D x (N, H) -> (N, D·H)


def lengths_mask(lengths: Tensor, max_len: int | None = None, batch_first: bool = True) -> Tensor:
    """A boolean mask of the valid steps: (N, L) if batch_first, else (L, N); True where t < lengths[n]."""
    lengths = torch.as_tensor(lengths).long()  # (N,)
    L = int(lengths.max()) if max_len is None else max_len
    steps = torch.arange(L, device=lengths.device)  # (L,)
    mask = steps[None, :] < lengths[:, None]  # (N, L)
    return mask if batch_first else mask.T  # (N, L) or (L, N)


def lookahead_batch(batch_size: int, *, n_symbols: int = 6, min_len: int = 4, max_len: int = 12,
                    generator: torch.Generator | None = None, seed: int | None = None,
                    device=None) -> tuple[Tensor, Tensor, Tensor]:
    """A batch of the look-ahead tagging task: each token's label is the token that follows it.

    Tokens are ``0 .. n_symbols - 1``; the label of the last token of a sequence is ``n_symbols``
    ("end"), so there are ``n_symbols + 1`` classes. Sequences have lengths drawn uniformly from
    ``min_len .. max_len`` and are padded, batch-first, with the token ``n_symbols`` (use it as the
    embedding's ``padding_idx``) and the label :data:`IGNORE_INDEX`.

    Returns:
        tokens (N, L) long, labels (N, L) long, lengths (N,) long (on the CPU, for packing), with
        L = the longest length drawn.
    """
    if not (1 <= min_len <= max_len) or n_symbols < 2 or batch_size < 1:
        raise ValueError(f"lookahead_batch: expected batch_size >= 1, n_symbols >= 2 and 1 <= min_len <= max_len, "
                         f"got batch_size={batch_size}, n_symbols={n_symbols}, min_len={min_len}, max_len={max_len}")
    gen = make_generator(seed, generator)
    lengths = torch.randint(min_len, max_len + 1, (batch_size,), generator=gen)  # (N,)
    L = int(lengths.max())
    tokens = torch.randint(0, n_symbols, (batch_size, L), generator=gen)  # (N, L)
    valid = lengths_mask(lengths, L)  # (N, L)
    labels = torch.full((batch_size, L), n_symbols, dtype=torch.long)
    labels[:, :-1] = tokens[:, 1:]  # the label of step t is the token at t + 1 ...
    labels[torch.arange(batch_size), lengths - 1] = n_symbols  # ... and "end" at each sequence's last step
    tokens = tokens.masked_fill(~valid, n_symbols)  # padding token
    labels = labels.masked_fill(~valid, IGNORE_INDEX)
    return tokens.to(device), labels.to(device), lengths
