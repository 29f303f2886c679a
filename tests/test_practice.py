"""Unit 07 (recurrent layers in practice): the references in course_utils.practice and their checks.

The references are tested against torch: a layer run on a PackedSequence (torch's own packing)
stops each sequence at its own end, so its h_n is the ground truth for "the last valid output"
(forward direction) and, for the backward direction, the output at step 0. The checks are fed the
reference (passes), a NotImplementedError (not_implemented), one function per named mistake
(its stable id in ``result.mistakes``), and a few answers a learner really writes.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

import course_utils
from course_utils import practice
from course_utils.checks import EXERCISES, check_final_states, check_last_valid_output
from course_utils.checks import practice as P


def _batch(lengths, F=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    seqs = [torch.randn(n, F, generator=gen) for n in lengths]
    return pad_sequence(seqs), torch.tensor(lengths)  # (L, N, F), (N,)


# ------------------------------------------------------------------ references against torch
@pytest.mark.parametrize("impl", [nn.GRU, course_utils.GRU])
@pytest.mark.parametrize("batch_first", [False, True])
def test_last_valid_output_is_the_packed_final_state(impl, batch_first):
    torch.manual_seed(0)
    x, lengths = _batch([5, 2, 7, 3, 1])  # unsorted on purpose
    gru = impl(3, 4)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    with torch.no_grad():
        out_packed, h_n = gru(packed)
        out, _ = pad_packed_sequence(out_packed, batch_first=batch_first)  # (L, N, H) or (N, L, H)
        padded_out, padded_h_n = gru(x)  # (L, N, H): runs over the padding too
    last = practice.last_valid_output(out, lengths, batch_first=batch_first)
    torch.testing.assert_close(last, h_n[-1], rtol=0, atol=0)
    # the padded run agrees at each sequence's own last step, and its output[-1] does not (but for the longest)
    torch.testing.assert_close(practice.last_valid_output(padded_out, lengths), h_n[-1], rtol=1e-6, atol=1e-6)
    wrong = ~torch.isclose(padded_out[-1], h_n[-1]).all(dim=-1)
    assert wrong.tolist() == [n != 7 for n in lengths.tolist()]
    assert not torch.allclose(padded_h_n[-1], h_n[-1])  # the padded h_n is the state after the padding


def test_last_valid_output_accepts_a_list_and_refuses_bad_lengths():
    out = torch.arange(12.0).reshape(3, 2, 2)  # (L, N, F)
    assert practice.last_valid_output(out, [3, 1]).tolist() == [[8.0, 9.0], [2.0, 3.0]]
    with pytest.raises(ValueError, match="between 1 and 3"):
        practice.last_valid_output(out, torch.tensor([4, 1]))
    with pytest.raises(ValueError, match=r"lengths of shape \(2,\)"):
        practice.last_valid_output(out, torch.tensor([1, 1, 1]))


@pytest.mark.parametrize("impl", [nn.GRU, nn.LSTM, course_utils.GRU, course_utils.LSTM])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_final_states_against_packed_outputs(impl, num_layers, bidirectional):
    torch.manual_seed(1)
    x, lengths = _batch([4, 6, 1, 3])
    layer = impl(3, 5, num_layers=num_layers, bidirectional=bidirectional)
    with torch.no_grad():
        out, h_n = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n
    out, _ = pad_packed_sequence(out)  # (L, N, D·H)
    final = practice.final_states(h_n, num_layers, bidirectional)
    assert final.shape == (4, 5 * (2 if bidirectional else 1))
    # forward: the output at each sequence's last step; backward: the output at step 0
    forward = practice.last_valid_output(out[..., :5], lengths)
    torch.testing.assert_close(final[:, :5], forward, rtol=0, atol=0)
    if bidirectional:
        torch.testing.assert_close(final[:, 5:], out[0, :, 5:], rtol=0, atol=0)


def test_final_states_refuses_a_wrong_layout():
    with pytest.raises(ValueError, match=r"expected h_n of shape \(4, N, H\)"):
        practice.final_states(torch.zeros(2, 3, 4), 2, True)


def test_lengths_mask():
    mask = practice.lengths_mask(torch.tensor([2, 4, 1]))
    assert mask.tolist() == [[True, True, False, False], [True] * 4, [True, False, False, False]]
    assert practice.lengths_mask(torch.tensor([2, 1]), 3, batch_first=False).shape == (3, 2)


def test_lookahead_batch():
    tokens, labels, lengths = practice.lookahead_batch(64, n_symbols=5, min_len=3, max_len=9, seed=3)
    again = practice.lookahead_batch(64, n_symbols=5, min_len=3, max_len=9, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((tokens, labels, lengths), again))
    assert tokens.shape == labels.shape == (64, int(lengths.max()))
    assert 3 <= int(lengths.min()) and int(lengths.max()) <= 9
    for row, lab, n in zip(tokens, labels, lengths.tolist()):
        assert lab[: n - 1].tolist() == row[1:n].tolist()  # the label is the next token
        assert int(lab[n - 1]) == 5  # "end"
        assert set(row[n:].tolist()) <= {5} and set(lab[n:].tolist()) <= {practice.IGNORE_INDEX}
        assert int(row[:n].max()) < 5
    with pytest.raises(ValueError, match="min_len <= max_len"):
        practice.lookahead_batch(4, min_len=5, max_len=2)


def test_last_valid_output_refuses_a_zero_length_among_valid_ones():
    with pytest.raises(ValueError, match=r"between 1 and 3, got \[0, 2\]"):
        practice.last_valid_output(torch.zeros(3, 2, 2), torch.tensor([0, 2]))


def test_lengths_mask_accepts_a_list():
    assert practice.lengths_mask([2, 1], 3).tolist() == [[True, True, False], [True, False, False]]


def test_lookahead_batch_smallest_settings():
    tokens, labels, lengths = practice.lookahead_batch(8, n_symbols=2, min_len=1, max_len=1, seed=0)
    assert tokens.shape == labels.shape == (8, 1) and lengths.tolist() == [1] * 8
    assert set(tokens.flatten().tolist()) <= {0, 1} and labels.flatten().tolist() == [2] * 8  # all "end"
    for bad in ({"n_symbols": 1}, {"min_len": 0}, {"batch_size": 0}):
        with pytest.raises(ValueError, match="expected batch_size >= 1, n_symbols >= 2 and 1 <= min_len <= max_len"):
            practice.lookahead_batch(**{"batch_size": 4, **bad})


# ---------------------------------------------------------------------------------- the checks
def _not_implemented(*args, **kwargs):
    raise NotImplementedError()


def test_registered():
    for name in ("last_valid_output", "final_states"):
        ex = EXERCISES[name]
        assert ex.unit == "07_layers_in_practice" and ex.function == name and ex.kind == "function"
        assert f"course_utils.practice.{name}" in ex.forbidden and "course_utils.checks" in ex.forbidden


@pytest.mark.parametrize("check, reference", [(check_last_valid_output, practice.last_valid_output),
                                              (check_final_states, practice.final_states)])
def test_reference_passes_and_stub_is_not_implemented(check, reference):
    result = check(reference, max_points=3, quiet=True)
    assert (result.status, result.points, result.max_points, result.mistakes) == ("passed", 3, 3, ())
    stub = check(_not_implemented, max_points=3, quiet=True)
    assert (stub.status, stub.points, stub.max_points) == ("not_implemented", 0, 3)


@pytest.mark.parametrize("mistake", P._last_valid_mistakes(), ids=lambda m: m.id)
def test_last_valid_output_names_each_mistake(mistake):
    result = check_last_valid_output(mistake.fn, max_points=3, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert result.mistakes == (mistake.id,), result.message


@pytest.mark.parametrize("mistake", P._final_states_mistakes(), ids=lambda m: m.id)
def test_final_states_names_each_mistake(mistake):
    result = check_final_states(mistake.fn, max_points=3, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert result.mistakes == (mistake.id,), result.message


# answers a learner writes, each with the mistake the check must name
def _always_time_major(output, lengths, batch_first=False):
    return output[lengths - 1, torch.arange(len(lengths))]


def _loop_off_by_one(output, lengths, batch_first=False):
    rows = [output[n, int(length)] if batch_first else output[int(length), n] for n, length in enumerate(lengths)]
    return torch.stack(rows)


def _gather_last(output, lengths, batch_first=False):
    return output[:, -1] if batch_first else output[-1]


def _learner_gather(output, lengths, batch_first=False):
    time_major = output.transpose(0, 1) if batch_first else output  # (L, N, F)
    index = (lengths - 1).view(1, -1, 1).expand(1, *time_major.shape[1:])  # (1, N, F)
    return time_major.gather(0, index).squeeze(0)  # (N, F)


def _first_step_when_batch_first(output, lengths, batch_first=False):
    if batch_first:
        return output[:, 0]  # the first step, not the last valid one
    return output[lengths - 1, torch.arange(len(lengths))]


@pytest.mark.parametrize("fn, status, mistakes", [
    (_always_time_major, "wrong", ("wrong_time_dim",)),
    (_first_step_when_batch_first, "wrong", ("first_step",)),
    (_loop_off_by_one, "wrong", ("off_by_one",)),
    (_gather_last, "wrong", ("padded_last_step",)),
    (_learner_gather, "passed", ()),
])
def test_last_valid_output_learner_answers(fn, status, mistakes):
    result = check_last_valid_output(fn, max_points=3, quiet=True)
    assert (result.status, result.mistakes) == (status, mistakes), result.message
    assert result.points == (3 if status == "passed" else 0)


def test_last_valid_output_shape_and_in_place():
    keepdim = check_last_valid_output(lambda o, n, batch_first=False: _learner_gather(o, n, batch_first)[None],
                                      quiet=True)
    assert keepdim.status == "wrong" and "(N, F)" in keepdim.message
    reference = check_last_valid_output(lambda o, n, batch_first=False: practice.last_valid_output(o, n, batch_first),
                                        quiet=True)
    assert reference.status == "uses_reference"  # a function of the test module that calls the reference

    def in_place(output, lengths, batch_first=False):
        lengths -= 1
        rows = torch.arange(len(lengths))
        return output[rows, lengths] if batch_first else output[lengths, rows]
    result = check_last_valid_output(in_place, quiet=True)
    assert result.status == "wrong" and "in place" in result.message and "`lengths`" in result.message


def _sum_directions(h_n, num_layers, bidirectional):
    return h_n[-1] + h_n[-2] if bidirectional else h_n[-1]


def _learner_view(h_n, num_layers, bidirectional):
    D = 2 if bidirectional else 1
    last = h_n.view(num_layers, D, h_n.shape[1], h_n.shape[2])[-1]  # (D, N, H)
    return last.permute(1, 0, 2).reshape(h_n.shape[1], -1)  # (N, D·H)


def _fixed_rows(h_n, num_layers, bidirectional):
    return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # right when bidirectional, wrong shape otherwise


def test_final_states_learner_answers():
    assert check_final_states(_learner_view, quiet=True).status == "passed"
    summed = check_final_states(_sum_directions, quiet=True)
    assert summed.status == "wrong" and "(N, D * H)" in summed.message and "expected final of shape" in summed.message
    fixed = check_final_states(_fixed_rows, quiet=True)
    assert fixed.status == "wrong" and "bidirectional=False" in fixed.message


def test_check_does_not_touch_the_global_random_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_last_valid_output(practice.last_valid_output, quiet=True)
    check_final_states(practice.final_states, quiet=True)
    assert torch.equal(torch.rand(3), expected)


def test_last_valid_output_index_error_gets_the_hint():
    def past_the_end(output, lengths, batch_first=False):
        return output[int(lengths.max()) + 5]  # IndexError: past the padded length

    result = check_last_valid_output(past_the_end, max_points=3, quiet=True)
    assert (result.status, result.points) == ("error", 0)
    assert "IndexError" in result.message and "l - 1" in result.message, result.message


def _defaults(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("mistake", P._last_valid_mistakes(), ids=lambda m: m.id)
def test_last_valid_output_mistakes_are_called_like_the_exercise(mistake):
    assert _defaults(mistake.fn) == _defaults(practice.last_valid_output)


def test_last_valid_output_cases_are_the_documented_ones():
    calls = []

    def answer(output, lengths, batch_first=False):
        calls.append((tuple(output.shape), lengths.tolist(), batch_first, output.dtype))
        return _learner_gather(output, lengths, batch_first)

    assert check_last_valid_output(answer, quiet=True).passed
    f32, f64 = torch.float32, torch.float64
    assert calls == [((7, 6, 3), [5, 3, 6, 2, 4, 1], False, f32), ((6, 7, 3), [2, 6, 4, 1, 5, 3], True, f32),
                     ((5, 4, 4), [5, 2, 4, 1], False, f32), ((4, 6, 2), [3, 6, 1, 4], True, f32),
                     ((4, 1, 5), [3], False, f32), ((5, 6, 3), [4, 1, 6, 2, 5], True, f64)]


def test_final_states_cases_are_the_documented_ones():
    calls = []

    def answer(h_n, num_layers, bidirectional):
        calls.append((tuple(h_n.shape), num_layers, bidirectional, h_n.dtype))
        return _learner_view(h_n, num_layers, bidirectional)

    assert check_final_states(answer, quiet=True).passed
    f32 = torch.float32
    assert calls == [((6, 2, 3), 3, True, f32), ((4, 3, 4), 2, True, f32), ((2, 4, 2), 1, True, f32),
                     ((2, 3, 4), 2, False, f32), ((3, 2, 5), 3, False, f32), ((1, 3, 3), 1, False, f32),
                     ((4, 5, 2), 2, True, torch.float64)]


def test_messages_name_the_case():
    last = check_last_valid_output(_gather_last, quiet=True)
    assert last.message.splitlines()[0] == ("last_valid_output: wrong values for output (L, N, F) = (7, 6, 3), "
                                            "lengths=[5, 3, 6, 2, 4, 1].")
    last32 = check_last_valid_output(lambda o, n, batch_first=False: _learner_gather(o, n, batch_first).float(),
                                     quiet=True)
    assert last32.status == "wrong" and last32.message.endswith(
        "(for output (N, L, F) batch_first=True = (5, 6, 3), lengths=[4, 1, 6, 2, 5], float64)")
    final = check_final_states(_sum_directions, quiet=True)
    assert final.message.endswith("(for h_n of shape (6, 2, 3), num_layers=3, bidirectional=True)")
    final32 = check_final_states(lambda h, n, b: _learner_view(h, n, b).float(), quiet=True)
    assert final32.status == "wrong" and final32.message.endswith(
        "(for h_n of shape (4, 5, 2), num_layers=2, bidirectional=True, float64)")


@pytest.mark.parametrize("check, reference", [(check_last_valid_output, practice.last_valid_output),
                                              (check_final_states, practice.final_states)])
def test_called_without_points_a_check_is_out_of_one(check, reference):
    result = check(reference, quiet=True)
    assert (result.status, result.points, result.max_points) == ("passed", 1, 1)
    assert check(_not_implemented, quiet=True).max_points == 1


def test_last_valid_output_other_errors_get_no_index_hint():
    def mismatched(output, lengths, batch_first=False):
        return output[-1] @ torch.ones(output.shape[-1] + 1, 2)  # a RuntimeError unrelated to indexing

    result = check_last_valid_output(mismatched, max_points=3, quiet=True)
    assert (result.status, result.points) == ("error", 0)
    assert "RuntimeError" in result.message and "l - 1" not in result.message, result.message


# final_states answers written as a learner would, one per mistake (not the check's own variants)
def _learner_directions_swapped(h_n, num_layers, bidirectional):
    return torch.cat([h_n[-1], h_n[-2]], dim=-1) if bidirectional else h_n[-1]


def _learner_first_layer(h_n, num_layers, bidirectional):
    return torch.cat([h_n[0], h_n[1]], dim=-1) if bidirectional else h_n[0]


def _learner_direction_major(h_n, num_layers, bidirectional):
    if not bidirectional:
        return h_n[-1]
    return torch.cat([h_n[num_layers - 1], h_n[2 * num_layers - 1]], dim=-1)  # "all forward layers, then backward"


def _learner_reshape(h_n, num_layers, bidirectional):
    return h_n[-2:].reshape(h_n.shape[1], -1) if bidirectional else h_n[-1]


@pytest.mark.parametrize("fn, mistake", [
    (_learner_directions_swapped, "directions_swapped"), (_learner_first_layer, "first_layer"),
    (_learner_direction_major, "direction_major_layout"), (_learner_reshape, "reshape_without_permute"),
])
def test_final_states_names_the_mistake_of_an_answer_written_by_hand(fn, mistake):
    result = check_final_states(fn, max_points=3, quiet=True)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, (mistake,)), result.message


def test_lookahead_batch_defaults_are_the_documented_ones():
    """Lengths 4 to 12, six symbols: unit 07's task as its notebook describes it."""
    tokens, labels, lengths = practice.lookahead_batch(400, seed=0)
    assert (int(lengths.min()), int(lengths.max())) == (4, 12)
    assert tokens.shape == (400, 12) and set(tokens[tokens != 6].unique().tolist()) == set(range(6))
    assert int(labels.max()) == 6  # "end" is class n_symbols
