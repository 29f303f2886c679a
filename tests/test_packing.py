"""course_utils.packing on its own: the bookkeeping of a packed batch, seen through a running sum.

With the step ``h_t = h_{t-1} + x_t`` the state of a sequence is the sum of what it has read, so
every output and final state can be written down by hand from the padded batch.
"""

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from course_utils.packing import time_steps, unroll


def _running_sum(x, state):
    return (state[0] + x,)


def _packed_steps(padded, lengths):
    packed = pack_padded_sequence(padded, lengths)  # lengths sorted, longest first
    return time_steps(packed.data, packed.batch_sizes.tolist())


def test_time_steps_cut_padded_and_packed_input():
    padded = torch.arange(12.0).reshape(4, 3, 1)  # (L, N, 1)
    assert [t.shape[0] for t in time_steps(padded, None)] == [3, 3, 3, 3]
    assert [t.shape[0] for t in _packed_steps(padded, [4, 2, 1])] == [3, 2, 1, 1]


def test_forward_rows_stop_at_their_own_end():
    padded = torch.arange(1.0, 13.0).reshape(4, 3, 1)  # (L, N, 1), step t of sequence b is padded[t, b]
    lengths = [4, 2, 1]
    h0 = torch.tensor([[100.0], [200.0], [300.0]])  # (N, 1)
    outputs, (final,) = unroll(_running_sum, _packed_steps(padded, lengths), (h0,))
    assert [o.shape[0] for o in outputs] == [3, 2, 1, 1]  # only the running rows advance
    for b, length in enumerate(lengths):
        running = h0[b] + padded[:length, b].cumsum(0)  # (length, 1)
        assert torch.equal(torch.stack([outputs[t][b] for t in range(length)]), running)
        assert torch.equal(final[b], running[-1])  # the state after the sequence's own last step


def test_reverse_rows_start_at_their_own_end():
    padded = torch.arange(1.0, 13.0).reshape(4, 3, 1)
    lengths = [4, 2, 1]
    h0 = torch.tensor([[100.0], [200.0], [300.0]])
    outputs, (final,) = unroll(_running_sum, _packed_steps(padded, lengths), (h0,), reverse=True)
    assert [o.shape[0] for o in outputs] == [3, 2, 1, 1]  # outputs come back in time order
    for b, length in enumerate(lengths):
        # read backwards from its own last step: the output at t is h_0 plus the sum of steps t..length-1
        running = h0[b] + padded[:length, b].flip(0).cumsum(0).flip(0)  # (length, 1)
        assert torch.equal(torch.stack([outputs[t][b] for t in range(length)]), running)
        assert torch.equal(final[b], running[0])  # the state after its first step: the whole sequence read


def test_padded_batch_is_the_case_without_bookkeeping():
    padded = torch.randn(5, 2, 3, dtype=torch.float64)
    h0 = torch.zeros(2, 3, dtype=torch.float64)
    outputs, (final,) = unroll(_running_sum, time_steps(padded, None), (h0,))
    torch.testing.assert_close(torch.stack(outputs), padded.cumsum(0))
    torch.testing.assert_close(final, padded.sum(0))
