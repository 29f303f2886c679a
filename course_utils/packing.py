"""Running one step function over time, for a padded batch or a packed one.

A ``PackedSequence`` stores a batch of sequences of different lengths time step by time step,
longest sequence first: ``batch_sizes[t]`` says how many sequences are still running at step t,
and they are always the first ``batch_sizes[t]`` rows. So the time loop of a recurrent layer
needs only one extra rule for packed input: **at step t, only the first batch_sizes[t] rows
advance**. A row that stops advancing keeps its state, and that state is its final one.

The backward direction of a bidirectional layer reads each sequence from its own last step
back to its first: it starts at the last time step with the few rows still running there, and
a row joins (from its initial state) at the step where its sequence ends. Its final state is
the state after the first step, i.e. after the whole sequence read backwards.

A padded batch is the special case where every step has all N rows, so the same loop serves
both. The math of a step stays in :mod:`course_utils.functional`; this module only decides which
rows a step sees. Shapes: ``B_t`` rows at step t, ``N = B_0`` sequences, ``H`` state features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["unroll", "time_steps"]

State = tuple[Tensor, ...]  # (h,) or (h, c), each (N, ·)
Step = Callable[[Tensor, State], State]  # (x_proj (B, G·H), state (B, ·)) -> new state (B, ·)


def time_steps(x_proj: Tensor, batch_sizes: list[int] | None) -> Sequence[Tensor]:
    """Cut the projected input into time steps.

    Padded: x_proj (L, N, G·H) -> L x (N, G·H). Packed: x_proj (sum(batch_sizes), G·H), the
    steps one after the other -> L x (batch_sizes[t], G·H).
    """
    if batch_sizes is None:
        return x_proj.unbind(0)  # L x (N, G·H)
    return x_proj.split(batch_sizes)  # L x (B_t, G·H)


def unroll(step: Step, inputs: Sequence[Tensor], state: State, reverse: bool = False) -> tuple[list[Tensor], State]:
    """Run ``step`` over ``inputs`` (one tensor per time step, B_t rows, B_t never growing).

    Args:
        step: one time step, ``step(x_proj, state) -> state``; its output is ``state[0]`` (h).
        inputs: L tensors (B_t, G·H), with B_0 >= B_1 >= ... (all N for a padded batch).
        state: the initial state of every sequence, each (N, ·) with N = B_0.
        reverse: read the time steps from the last to the first.

    Returns:
        (outputs, final): L tensors h_t (B_t, H) in time order; the final state of each sequence,
        each (N, ·) in the rows of ``state``.
    """
    outputs = []
    if not reverse:
        ended: list[State] = []  # states of the rows that stopped advancing, latest rows first
        for x in inputs:
            running = x.shape[0]
            if running < state[0].shape[0]:
                # rows running.. ended at the previous step: their state now is their final state
                ended.append(tuple(s[running:] for s in state))
                state = tuple(s[:running] for s in state)  # (B_t, ·)
            state = step(x, state)
            outputs.append(state[0])
        if ended:
            ended.append(state)
            # the rows that ended first are the last rows: put the pieces back in row order
            state = tuple(torch.cat(parts[::-1]) for parts in zip(*ended))  # (N, ·)
        return outputs, state

    initial = state
    state = tuple(s[: inputs[-1].shape[0]] for s in initial)  # the rows still running at the last step
    for x in reversed(inputs):
        running, have = x.shape[0], state[0].shape[0]
        if running > have:
            # rows have..running end at this step: read backwards, they start here, from their h_0
            state = tuple(torch.cat([s, s0[have:running]]) for s, s0 in zip(state, initial))  # (B_t, ·)
        state = step(x, state)
        outputs.append(state[0])
    outputs.reverse()
    return outputs, state
