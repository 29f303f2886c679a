"""Checks for unit 07 (recurrent layers in practice): ``last_valid_output`` and ``final_states``.

Both exercises read a recurrent layer's result correctly: the last *valid* output of each
sequence of a padded batch, and the last layer's final states of a (bidirectional) layer from
``h_n``. The checks feed random tensors laid out as a layer lays them out (values are random, so
every position differs and a wrong index shows) and name the classic misreadings.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..practice import final_states as reference_final_states
from ..practice import last_valid_output as reference_last_valid_output
from .cells import single_output
from .harness import Case, FunctionExercise, Mistake, check_function, notebook_check
from .result import CheckResult

__all__ = ["DEFAULT_SEED", "check_final_states", "check_last_valid_output"]

DEFAULT_SEED = 7


# ------------------------------------------------------------ last_valid_output
def _at(output: Tensor, steps: Tensor, batch_first: bool) -> Tensor:
    """Row n at time steps[n], with no checks (the wrong variants index where the learner did)."""
    n = torch.arange(steps.numel(), device=output.device)
    return output[n, steps] if batch_first else output[steps, n]  # (N, F)


def _padded_last_step(output, lengths, batch_first=False):
    return output[:, -1] if batch_first else output[-1]  # the last padded step: only the longest sequence ends there


def _off_by_one(output, lengths, batch_first=False):
    return _at(output, torch.as_tensor(lengths).long(), batch_first)  # lengths, not lengths - 1


def _wrong_time_dim(output, lengths, batch_first=False):
    return _at(output, torch.as_tensor(lengths).long() - 1, not batch_first)  # batch_first read the other way


def _longest_for_all(output, lengths, batch_first=False):
    steps = torch.full_like(torch.as_tensor(lengths).long(), int(max(lengths)) - 1)
    return _at(output, steps, batch_first)


def _first_step(output, lengths, batch_first=False):
    return output[:, 0] if batch_first else output[0]


def _last_valid_mistakes() -> list[Mistake]:
    return [
        Mistake("you read the last padded time step (`output[-1]`, or `output[:, -1]` batch-first): only the "
                "longest sequence ends there; the others are padding by then. Take row n at step lengths[n] - 1.",
                _padded_last_step, id="padded_last_step"),
        Mistake("off by one: you read step lengths[n], the first padded step; a sequence of length l ends at "
                "index l - 1.", _off_by_one, id="off_by_one"),
        Mistake("the time dimension is the wrong one: with batch_first=True the output is (N, L, F) and the time "
                "step is the second index, `output[n, lengths[n] - 1]`; with batch_first=False it is (L, N, F), "
                "`output[lengths[n] - 1, n]`.", _wrong_time_dim, id="wrong_time_dim"),
        Mistake("every sequence is read at the longest length, lengths.max() - 1: each sequence has its own "
                "length.", _longest_for_all, id="longest_length_for_all"),
        Mistake("you read the first time step: the last valid output is at step lengths[n] - 1.", _first_step,
                id="first_step"),
    ]


def _last_valid_hint(exc: Exception) -> str | None:
    text = str(exc)
    if isinstance(exc, (IndexError, RuntimeError)) and ("out of bounds" in text or "out of range" in text):
        return ("an index went past the padded length: lengths count steps, so the last valid step of a "
                "sequence of length l is l - 1 (and with batch_first=True the time step is the second index).")
    return None


_LAST_VALID = FunctionExercise(
    name="last_valid_output",
    reference=reference_last_valid_output,
    unpack=single_output("last"),
    mistakes=_last_valid_mistakes,
    arg_names=("output", "lengths"),
    signature="last_valid_output(output, lengths, batch_first=False)",
    coverage="6 padded batches (time-major and batch-first, lengths in any order, the longest shorter than the "
             "padding or not, batch of 1, float32 and float64)",
    error_hint=_last_valid_hint,
    shape_hint=lambda name, e, g: ("one row per sequence and the features of one step, (N, F): "
                                   "index the time and the batch dimension together, e.g. "
                                   "`output[lengths - 1, torch.arange(N)]`."),
    inplace_hint="index or gather into a new tensor; do not write into `output` or `lengths`",
)


def _padded_case(gen: torch.Generator, L: int, lengths: list[int], F: int, batch_first: bool,
                 dtype=torch.float32) -> Case:
    N = len(lengths)
    shape = (N, L, F) if batch_first else (L, N, F)
    output = torch.randn(shape, generator=gen, dtype=dtype)
    layout = "(N, L, F) batch_first=True" if batch_first else "(L, N, F)"
    label = f"output {layout} = {tuple(shape)}, lengths={lengths}" + (", float64" if dtype == torch.float64 else "")
    return Case(label, (output, torch.tensor(lengths)), {"batch_first": batch_first})


@notebook_check
def check_last_valid_output(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``last_valid_output(output, lengths, batch_first=False)`` -> (N, F).

    Compares with :func:`course_utils.practice.last_valid_output` on random padded outputs and
    names the mistakes: the last padded step (``output[-1]``), off by one (``lengths`` for
    ``lengths - 1``), the wrong time dimension for ``batch_first``, the longest length for every
    sequence, the first step.
    """
    gen = torch.Generator().manual_seed(seed)
    cases = [
        _padded_case(gen, 7, [5, 3, 6, 2, 4, 1], 3, batch_first=False),  # longest < L: lengths stays in range
        _padded_case(gen, 7, [2, 6, 4, 1, 5, 3], 3, batch_first=True),
        _padded_case(gen, 5, [5, 2, 4, 1], 4, batch_first=False),  # the longest fills the padding
        _padded_case(gen, 6, [3, 6, 1, 4], 2, batch_first=True),
        _padded_case(gen, 4, [3], 5, batch_first=False),
        _padded_case(gen, 6, [4, 1, 6, 2, 5], 3, batch_first=True, dtype=torch.float64),
    ]
    return check_function(_LAST_VALID, fn, cases, max_points)


# ----------------------------------------------------------------- final_states
def _layers(h_n: Tensor, num_layers: int, bidirectional: bool) -> Tensor:
    D = 2 if bidirectional else 1
    return h_n.view(num_layers, D, *h_n.shape[1:])  # (layers, D, N, H)


def _directions_swapped(h_n, num_layers, bidirectional):
    last = _layers(h_n, num_layers, bidirectional)[-1]  # (D, N, H)
    return torch.cat(last.flip(0).unbind(0), dim=-1)  # [backward | forward]


def _first_layer(h_n, num_layers, bidirectional):
    return torch.cat(_layers(h_n, num_layers, bidirectional)[0].unbind(0), dim=-1)


def _direction_major(h_n, num_layers, bidirectional):
    D = 2 if bidirectional else 1
    by_direction = h_n.view(D, num_layers, *h_n.shape[1:])  # read as (D, layers, N, H): the wrong layout
    return torch.cat(by_direction[:, -1].unbind(0), dim=-1)


def _reshape_without_permute(h_n, num_layers, bidirectional):
    D = 2 if bidirectional else 1
    N, H = h_n.shape[1:]
    return h_n[-D:].reshape(N, D * H)  # (D, N, H) -> (N, D·H) mixes rows of different sequences


def _final_states_mistakes() -> list[Mistake]:
    return [
        Mistake("the two directions are swapped: put the forward state first and the backward state second, "
                "[h_n[-2] | h_n[-1]], as `output` does ([forward | backward] along its last dimension).",
                _directions_swapped, id="directions_swapped"),
        Mistake("you read the first layer: h_n is laid out layer by layer, so the last layer's states are its "
                "last D rows (h_n[-2] and h_n[-1] when bidirectional, h_n[-1] when not).", _first_layer,
                id="first_layer"),
        Mistake("h_n is read direction by direction, but it is laid out layer by layer: row layer * D + direction, "
                "i.e. `h_n.view(num_layers, D, N, H)`, not `view(D, num_layers, N, H)`.", _direction_major,
                id="direction_major_layout"),
        Mistake("`h_n[-2:].reshape(N, 2 * H)` mixes up sequences: the two directions are separate (N, H) blocks "
                "along the first dimension; concatenate them along the last one, "
                "`torch.cat([h_n[-2], h_n[-1]], dim=-1)`.", _reshape_without_permute, id="reshape_without_permute"),
    ]


_FINAL_STATES = FunctionExercise(
    name="final_states",
    reference=reference_final_states,
    unpack=single_output("final"),
    mistakes=_final_states_mistakes,
    arg_names=("h_n",),
    signature="final_states(h_n, num_layers, bidirectional)",
    coverage="7 random h_n (1 to 3 layers, one and two directions, float32 and float64)",
    shape_hint=lambda name, e, g: ("one row per sequence and the last layer's D directions side by side, "
                                   "(N, D * H): both directions when bidirectional, one when not."),
    inplace_hint="build a new tensor with torch.cat; do not write into `h_n`",
)


def _h_n_case(gen: torch.Generator, num_layers: int, bidirectional: bool, N: int, H: int,
              dtype=torch.float32) -> Case:
    D = 2 if bidirectional else 1
    h_n = torch.randn(num_layers * D, N, H, generator=gen, dtype=dtype)
    label = (f"h_n of shape {tuple(h_n.shape)}, num_layers={num_layers}, bidirectional={bidirectional}"
             + (", float64" if dtype == torch.float64 else ""))
    return Case(label, (h_n, num_layers, bidirectional))


@notebook_check
def check_final_states(fn, *, max_points: float = 1, seed: int = DEFAULT_SEED) -> CheckResult:
    """Check the learner's ``final_states(h_n, num_layers, bidirectional)`` -> (N, D * H).

    Compares with :func:`course_utils.practice.final_states` on random ``h_n`` and names the
    mistakes: directions swapped, the first layer read, h_n read direction by direction, a
    reshape that mixes sequences.
    """
    gen = torch.Generator().manual_seed(seed)
    cases = [  # the first case has num_layers != D, so that reading (D, layers) for (layers, D) shows at once
        _h_n_case(gen, 3, True, 2, 3),
        _h_n_case(gen, 2, True, 3, 4),
        _h_n_case(gen, 1, True, 4, 2),
        _h_n_case(gen, 2, False, 3, 4),
        _h_n_case(gen, 3, False, 2, 5),
        _h_n_case(gen, 1, False, 3, 3),
        _h_n_case(gen, 2, True, 5, 2, torch.float64),
    ]
    return check_function(_FINAL_STATES, fn, cases, max_points)
