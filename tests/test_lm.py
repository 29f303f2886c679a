"""Unit 06: the language-model references (course_utils.lm) and their checks (course_utils.checks.lm).

Each check is fed the reference (passes), a function that raises NotImplementedError, and one
learner-style function per named mistake, whose id must be in ``result.mistakes``.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks, data, lm, training
from course_utils.checks import lm as lm_checks
from course_utils.checks import lm_model as lm_model_checks
from course_utils.checks.registry import LM_REFERENCES


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ---------------------------------------------------------------- references
def test_make_batches_shifts_targets_and_continues_streams():
    text = torch.arange(50)
    x, y = lm.make_batches(text, batch_size=4, seq_len=5)  # streams of 12: K = (12 - 1) // 5 = 2
    assert x.shape == y.shape == (2, 4, 5)
    assert torch.equal(y, x + 1)  # the target is the next character
    assert torch.equal(x[1, :, 0], x[0, :, -1] + 1)  # row n of chunk 1 continues row n of chunk 0
    assert torch.equal(x[0, :, 0], torch.tensor([0, 12, 24, 36]))  # each row is one contiguous stream


def test_make_batches_rejects_a_short_text():
    with pytest.raises(ValueError, match="too short"):
        lm.make_batches(torch.arange(5), batch_size=4, seq_len=3)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    for V in (2, 7, 55):
        assert math.isclose(float(lm.perplexity(torch.zeros(3, 4, V), torch.randint(0, V, (3, 4)))), V, rel_tol=1e-5)


def test_perplexity_is_exp_of_cross_entropy():
    z, y = torch.randn(2, 6, 9), torch.randint(0, 9, (2, 6))
    expected = math.exp(F.cross_entropy(z.reshape(-1, 9), y.reshape(-1)).item())
    assert math.isclose(float(lm.perplexity(z, y)), expected, rel_tol=1e-5)


def small_lm(cell="lstm", V=7, seed=0):
    torch.manual_seed(seed)
    return training.CharLM(V, cell, embed_size=4, hidden_size=8)


def test_tbptt_step_matches_full_backward_on_one_chunk_and_stops_at_the_chunk():
    model = small_lm()
    x = torch.randint(0, 7, (2, 6))
    y = torch.randint(0, 7, (2, 6))
    _, state = model(x, None, return_state=True)  # attached to this chunk's graph
    loss, new_state = lm.tbptt_step(model, x, y, state)
    assert all(not s.requires_grad for s in new_state)
    grads = [p.grad.clone() for p in model.parameters()]
    # the same gradients as a fresh forward from the detached state: nothing flowed into the earlier chunk
    logits, _ = model(x, tuple(s.detach() for s in state), return_state=True)
    expected = torch.autograd.grad(F.cross_entropy(logits.reshape(-1, 7), y.reshape(-1)), list(model.parameters()))
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e)
    assert loss.dim() == 0 and not loss.requires_grad


def test_tbptt_without_detach_fails_on_the_second_chunk():
    model = small_lm()
    x = torch.randint(0, 7, (2, 6))
    logits, state = model(x, None, return_state=True)
    F.cross_entropy(logits.reshape(-1, 7), x.reshape(-1)).backward()
    logits, _ = model(x, state, return_state=True)  # the carried state, not detached
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        F.cross_entropy(logits.reshape(-1, 7), x.reshape(-1)).backward()


def test_sample_is_reproducible_and_argmax_at_low_temperature():
    model = small_lm()
    prefix = torch.tensor([1, 2, 3])
    a = lm.sample(model, prefix, 30, 1.0, torch.Generator().manual_seed(5))
    b = lm.sample(model, prefix, 30, 1.0, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (30,) and a.dtype == torch.long
    with torch.no_grad():
        first = model(prefix[None])[0, -1].argmax()
    cold = lm.sample(model, prefix, 1, 1e-4, torch.Generator().manual_seed(0))
    assert int(cold[0]) == int(first)  # τ → 0 is argmax
    with pytest.raises(ValueError, match="temperature"):
        lm.next_char_probs(torch.zeros(3), 0.0)


def test_entropy_grows_with_temperature_and_words():
    model = small_lm()
    text = torch.randint(0, 7, (40,))
    h = [lm.next_char_entropy(model, text, t) for t in (0.5, 1.0, 2.0)]
    assert h[0] < h[1] < h[2] <= math.log(7) + 1e-6
    assert lm.words("Thou art, thou ow'st!") == ["thou", "art", "thou", "ow'st"]
    assert lm.real_word_share("thou zzz art", {"thou", "art"}) == pytest.approx(2 / 3)
    assert lm.real_word_share("  ", {"thou"}) == 0.0


def test_ngram_tables_are_normalised_and_fit_the_text():
    text = data.load_text("sonnets")
    vocab = data.CharVocab.from_text(text)
    enc = vocab.encode(text)
    V = len(vocab)
    for order in (1, 2, 3):
        table = lm.ngram_log_probs(enc, V, order, k=0.1)
        assert table.shape == (V,) * order
        torch.testing.assert_close(table.exp().sum(-1), torch.ones((V,) * (order - 1), dtype=torch.float64))
    uniform = math.log(V)
    bigram = lm.ngram_loss(lm.ngram_log_probs(enc, V, 2, 0.1), enc, 1)
    unigram = lm.ngram_loss(lm.ngram_log_probs(enc, V, 1, 0.1), enc, 1)
    assert bigram < unigram < uniform  # on its own text each order helps


class Spy(nn.Module):
    """A model that records its mode and its tokens' device, and predicts every character equally (CPU logits)."""

    def __init__(self, V=7):
        super().__init__()
        self.V, self.weight, self.calls = V, nn.Parameter(torch.zeros(1)), []

    def forward(self, tokens, state=None, return_state=False):
        self.calls.append((self.training, tokens.device.type, tuple(tokens.shape)))
        logits = torch.zeros(*tokens.shape, self.V)
        return (logits, state) if return_state else logits


def test_sequence_loss_is_the_mean_cross_entropy_of_the_next_characters():
    model = small_lm()
    text = torch.randint(0, 7, (30,))
    with torch.no_grad():
        logits = model(text[None, :-1])[0]  # row t predicts text[t + 1]
    for start in (1, 4):
        expected = F.cross_entropy(logits[start - 1:], text[start:]).item()
        assert lm.sequence_loss(model, text, start) == pytest.approx(expected, rel=1e-6)
    assert lm.sequence_loss(model, text) == pytest.approx(F.cross_entropy(logits, text[1:]).item(), rel=1e-6)


@pytest.mark.parametrize("measure", [
    lambda model, text: lm.sequence_loss(model, text),
    lambda model, text: lm.next_char_entropy(model, text, 1.0),
    lambda model, text: lm.sample(model, text[:3], 4, 1.0, torch.Generator().manual_seed(0)),
], ids=["sequence_loss", "next_char_entropy", "sample"])
def test_measurements_run_the_model_in_eval_mode_and_restore_its_mode(measure):
    text = torch.randint(0, 7, (12,))
    for mode in (True, False):
        model = Spy().train(mode)
        measure(model, text)
        assert model.calls and not any(training for training, _, _ in model.calls)  # no dropout while measuring
        assert model.training is mode


def test_uniform_model_measures_log_v():
    text = torch.randint(0, 7, (12,))
    assert lm.sequence_loss(Spy(), text) == pytest.approx(math.log(7))
    assert lm.next_char_entropy(Spy(), text, 0.5) == pytest.approx(math.log(7))


def test_next_char_entropy_moves_the_text_to_the_given_device():
    model, text = Spy(), torch.randint(0, 7, (12,))
    assert lm.next_char_entropy(model, text, 1.0, device="meta") == pytest.approx(math.log(7))
    assert lm.next_char_entropy(model, text, 1.0) == pytest.approx(math.log(7))
    assert [device for _, device, _ in model.calls] == ["meta", "cpu"]


@pytest.mark.parametrize("prefix, shape", [(torch.tensor([], dtype=torch.long), "(0,)"),
                                           (torch.tensor([[1, 2, 3]]), "(1, 3)")])
def test_sample_refuses_a_prefix_that_is_empty_or_not_1d(prefix, shape):
    with pytest.raises(ValueError, match=rf"expected a non-empty 1-D prefix, got shape \({shape[1:-1]}\)"):
        lm.sample(small_lm(), prefix, 5)


@pytest.mark.parametrize("order, ngrams", [
    (1, [(0,), (0,), (1,), (1,), (2,), (0,)]),
    (2, [(0, 0), (0, 1), (1, 1), (1, 2), (2, 0)]),
    (3, [(0, 0, 1), (0, 1, 1), (1, 1, 2), (1, 2, 0)]),
])
def test_ngram_log_probs_count_every_ngram_up_to_the_last(order, ngrams):
    counts = torch.zeros((3,) * order, dtype=torch.float64)
    for ngram in ngrams:
        counts[ngram] += 1
    table = lm.ngram_log_probs(torch.tensor([0, 0, 1, 1, 2, 0]), 3, order, k=0.5)  # a a b b c a
    torch.testing.assert_close(table, torch.log((counts + 0.5) / (counts + 0.5).sum(-1, keepdim=True)))


def test_ngram_log_probs_default_to_add_one_bigrams():
    text = torch.tensor([0, 0, 1, 1, 2, 0])
    torch.testing.assert_close(lm.ngram_log_probs(text, 3), lm.ngram_log_probs(text, 3, order=2, k=1.0))
    assert float(lm.ngram_log_probs(text, 3)[2, 2]) == pytest.approx(math.log(1 / 4))  # "cc" unseen: (0 + 1) / (1 + 3)


@pytest.mark.parametrize("order, start, scored", [(1, 1, [1, 2, 3, 4, 5]), (2, 1, [1, 2, 3, 4, 5]),
                                                  (3, 1, [2, 3, 4, 5]), (2, 3, [3, 4, 5])])
def test_ngram_loss_scores_every_position_from_start_that_has_a_context(order, start, scored):
    text = torch.tensor([0, 0, 1, 1, 2, 0])
    table = lm.ngram_log_probs(text, 3, order, k=0.5)
    expected = -sum(float(table[tuple(text[t - order + 1:t + 1].tolist())]) for t in scored) / len(scored)
    assert lm.ngram_loss(table, text, start) == pytest.approx(expected)


@pytest.mark.parametrize("length, chunks", [(4 * (2 * 5 + 1), 2), (4 * 2 * 5, 1), (4 * (2 * 5 + 1) + 3, 2)])
def test_make_batches_keeps_one_character_after_the_last_input(length, chunks):
    x, y = lm.make_batches(torch.arange(length), batch_size=4, seq_len=5)
    assert x.shape == y.shape == (chunks, 4, 5)
    assert torch.equal(y, x + 1)


# ------------------------------------------------------------ the checks: fixtures
REFERENCES = [(checks.check_make_batches, lm.make_batches), (checks.check_tbptt_step, lm.tbptt_step),
              (checks.check_perplexity, lm.perplexity), (checks.check_sample, lm.sample)]


@pytest.mark.parametrize("check, reference", REFERENCES)
def test_reference_passes_with_points(check, reference):
    result = check(reference, max_points=3, quiet=True)
    assert result.status == "passed" and result.points == 3 and result.mistakes == (), result.message


@pytest.mark.parametrize("check, reference", REFERENCES)
def test_called_without_points_a_check_is_out_of_one(check, reference):
    result = check(reference, quiet=True)
    assert (result.status, result.points, result.max_points) == ("passed", 1, 1), result.message


@pytest.mark.parametrize("check", [c for c, _ in REFERENCES])
def test_not_implemented(check, capsys):
    result = check(not_implemented, max_points=3, quiet=True)
    assert result.status == "not_implemented" and result.points == 0 and "not implemented" in result.message
    assert capsys.readouterr().err == ""
    loud = check(not_implemented, max_points=3)
    assert "not implemented" in capsys.readouterr().err and loud.points == 0


def test_registered_for_unit_06():
    names = [e.grade_id for e in checks.exercises_of("06_char_lm")]
    assert names == ["make_batches", "tbptt_step", "perplexity", "sample"]
    for e in checks.exercises_of("06_char_lm"):
        assert e.forbidden == LM_REFERENCES and "course_utils.lm" in e.forbidden


def assert_mistake(result, mistake_id):
    assert result.status == "wrong" and result.points == 0, result
    assert mistake_id in result.mistakes, (mistake_id, result.mistakes, result.message)
    assert "Likely mistake" in result.message


# --------------------------------------------------------------- make_batches
def batches_not_shifted(encoded, batch_size, seq_len):
    L = len(encoded) // batch_size
    streams = encoded[:batch_size * L].view(batch_size, L)
    K = (L - 1) // seq_len
    x = torch.stack([streams[:, k * seq_len:(k + 1) * seq_len] for k in range(K)])
    return x, x.clone()


def batches_wrong_way(encoded, batch_size, seq_len):
    L = len(encoded) // batch_size
    streams = encoded[:batch_size * L].view(batch_size, L)
    K = (L - 1) // seq_len
    x = torch.stack([streams[:, k * seq_len + 1:(k + 1) * seq_len + 1] for k in range(K)])
    y = torch.stack([streams[:, k * seq_len:(k + 1) * seq_len] for k in range(K)])  # the character before
    return x, y


def batches_interleaved(encoded, batch_size, seq_len):
    L = len(encoded) // batch_size
    streams = encoded[:batch_size * L].view(L, batch_size).t()
    K = (L - 1) // seq_len
    x = torch.stack([streams[:, k * seq_len:(k + 1) * seq_len] for k in range(K)])
    y = torch.stack([streams[:, k * seq_len + 1:(k + 1) * seq_len + 1] for k in range(K)])
    return x, y


def batches_not_continuing(encoded, batch_size, seq_len):
    K = (len(encoded) // batch_size - 1) // seq_len
    size = batch_size * seq_len
    x = torch.stack([encoded[k * size:(k + 1) * size].view(batch_size, seq_len) for k in range(K)])
    y = torch.stack([encoded[k * size + 1:(k + 1) * size + 1].view(batch_size, seq_len) for k in range(K)])
    return x, y


@pytest.mark.parametrize("learner, mistake_id", [
    (batches_not_shifted, "targets_not_shifted"),
    (batches_wrong_way, "targets_shifted_wrong_way"),
    (batches_interleaved, "streams_interleaved"),
    (batches_not_continuing, "chunks_not_continuing"),
])
def test_make_batches_mistakes(learner, mistake_id):
    assert_mistake(checks.check_make_batches(learner, max_points=3, quiet=True), mistake_id)


def test_make_batches_wrong_shape_and_in_place():
    result = checks.check_make_batches(lambda e, n, t: tuple(a.transpose(0, 1) for a in lm.make_batches(e, n, t)),
                                       quiet=True, watch=False)  # a mistake built on the reference
    assert result.status == "wrong" and "(K, N, T)" in result.message


# ----------------------------------------------------------------- perplexity
def ppl_summed(logits, targets):
    V = logits.shape[-1]
    return torch.exp(F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="sum"))


def ppl_no_exp(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def ppl_base_2(logits, targets):
    return 2 ** ppl_no_exp(logits, targets)


def ppl_raw_logits(logits, targets):
    return torch.exp(-logits.gather(-1, targets[..., None]).mean())


def ppl_per_sequence(logits, targets):
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (N, T)
    return nll.mean(dim=1).exp().mean()


def ppl_probabilities(logits, targets):
    p = torch.softmax(logits, -1).gather(-1, targets[..., None])
    return torch.exp(-p.mean())


@pytest.mark.parametrize("learner, mistake_id", [
    (ppl_summed, "summed_loss"),
    (ppl_no_exp, "no_exp"),
    (ppl_base_2, "base_2"),
    (ppl_raw_logits, "no_log_softmax"),
    (ppl_per_sequence, "mean_of_sequence_perplexities"),
    (ppl_probabilities, "probabilities_not_log"),
])
def test_perplexity_mistakes(learner, mistake_id):
    assert_mistake(checks.check_perplexity(learner, max_points=3, quiet=True), mistake_id)


def test_perplexity_via_cross_entropy_passes():
    result = checks.check_perplexity(lambda z, y: torch.exp(F.cross_entropy(z.transpose(1, 2), y)), quiet=True)
    assert result.passed, result.message


# ----------------------------------------------------------------- tbptt_step
def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else (
        None if state is None else state.detach())


def make_step(detach_in=True, zero=True, reduction="mean", carry=True, use_inputs=False, zero_after=False):
    def tbptt_step(model, x, y, state):
        if not carry:
            state = None
        elif detach_in:
            state = detach(state)
        logits, new_state = model(x, state, return_state=True)
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.reshape(-1, V), (x if use_inputs else y).reshape(-1), reduction=reduction)
        if zero:
            for p in model.parameters():
                p.grad = None
        loss.backward()
        if zero_after:
            model.zero_grad()
        return loss.item(), new_state  # a float loss and a state that is not detached: both allowed
    return tbptt_step


def test_tbptt_detaching_the_returned_state_only_is_accepted_in_a_loop_but_not_on_an_attached_state():
    result = checks.check_tbptt_step(make_step(detach_in=False), quiet=True)
    assert_mistake(result, "state_not_detached")
    assert checks.check_tbptt_step(make_step(), quiet=True).passed


@pytest.mark.parametrize("learner, mistake_id", [
    (make_step(detach_in=False), "state_not_detached"),
    (make_step(zero=False), "grad_not_zeroed"),
    (make_step(reduction="sum"), "loss_summed"),
    (make_step(carry=False), "state_not_carried"),
    (make_step(use_inputs=True), "targets_are_inputs"),
    (make_step(zero_after=True), "zero_grad_after_backward"),
])
def test_tbptt_mistakes(learner, mistake_id):
    assert_mistake(checks.check_tbptt_step(learner, max_points=3, quiet=True), mistake_id)


def test_tbptt_error_from_a_loop_without_detach_is_named():
    def step(model, x, y, state):  # keeps the graph of the state it returns and never detaches
        logits, new_state = model(x, state, return_state=True)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        model.zero_grad()
        loss.backward()
        return loss, new_state

    result = checks.check_tbptt_step(step, quiet=True)
    assert_mistake(result, "state_not_detached")


def test_tbptt_step_that_raises_points_at_the_learner():
    def step(model, x, y, state):
        return model.no_such_method(x)

    result = checks.check_tbptt_step(step, quiet=True)
    assert result.status == "error" and "AttributeError" in result.message


# --------------------------------------------------------------------- sample
def make_sampler(rule=""):
    @torch.no_grad()
    def sample(model, prefix, length, temperature, generator):
        logits, state = model(prefix.unsqueeze(0), None, return_state=True)
        out = []
        for _ in range(length):
            z = logits[0, -1]
            if rule == "after_softmax":
                p = torch.softmax(z, dim=-1) / temperature
            elif rule == "times":
                p = torch.softmax(z * temperature, dim=-1)
            else:
                p = torch.softmax(z / temperature, dim=-1)
            if rule == "argmax":
                c = int(p.argmax())
            elif rule == "global_rng":
                c = int(torch.multinomial(p, 1))
            else:
                c = int(torch.multinomial(p, 1, generator=generator))
            out.append(c)
            logits, state = model(torch.tensor([[c]]), None if rule == "no_state" else state, return_state=True)
        return out  # a list of ints is accepted
    return sample


@pytest.mark.parametrize("learner, mistake_id", [
    (make_sampler("after_softmax"), "temperature_after_softmax"),
    (make_sampler("times"), "temperature_multiplied"),
    (make_sampler("argmax"), "argmax_sampling"),
    (make_sampler("no_state"), "state_not_carried"),
    (make_sampler("global_rng"), "generator_not_used"),
])
def test_sample_mistakes(learner, mistake_id):
    assert_mistake(checks.check_sample(learner, max_points=3, quiet=True), mistake_id)


def test_sample_written_differently_passes_and_prefix_is_not_returned():
    assert checks.check_sample(make_sampler(), quiet=True).passed
    result = checks.check_sample(lambda m, p, n, t, g: torch.cat([p, lm.sample(m, p, n, t, g)]), quiet=True, watch=False)
    assert result.status == "wrong" and "without the prefix" in result.message


# ------------------------------------------------------- other correct answers pass
def batches_with_a_loop(encoded, batch_size, seq_len):
    L = len(encoded) // batch_size
    rows = [encoded[n * L:(n + 1) * L] for n in range(batch_size)]
    xs, ys = [], []
    for start in range(0, L - seq_len, seq_len):
        xs.append(torch.stack([r[start:start + seq_len] for r in rows]))
        ys.append(torch.stack([r[start + 1:start + seq_len + 1] for r in rows]))
    return torch.stack(xs), torch.stack(ys)


def step_detaching_with_a_tuple_and_transpose(model, x, y, state):
    if state is not None:
        state = (state[0].detach(), state[1].detach()) if isinstance(state, tuple) else state.detach()
    logits, new_state = model(x, state, return_state=True)
    loss = F.cross_entropy(logits.transpose(1, 2), y)  # (N, V, T) against (N, T): the same mean
    model.zero_grad()
    loss.backward()
    return loss, new_state


@torch.no_grad()
def sample_rereading_everything(model, prefix, length, temperature, generator):
    seq = prefix.tolist()
    for _ in range(length):  # slow but correct: the whole text so far, from a zero state, every step
        logits = model(torch.tensor([seq]))
        p = torch.softmax(logits[:, -1, :] / temperature, dim=-1)  # (1, V)
        seq.append(int(torch.multinomial(p, 1, generator=generator)))
    return torch.tensor(seq[len(prefix):])


@pytest.mark.parametrize("check, learner", [
    (checks.check_make_batches, batches_with_a_loop),
    (checks.check_tbptt_step, step_detaching_with_a_tuple_and_transpose),
    (checks.check_sample, sample_rereading_everything),
])
def test_other_correct_answers_pass(check, learner):
    result = check(learner, quiet=True)
    assert result.passed, result.message


# ------------------------------------------------- the checks' cases and answers they refuse
def test_make_batches_answer_must_be_a_pair():
    stacked = checks.check_make_batches(lambda e, n, t: torch.stack(batches_with_a_loop(e, n, t)), quiet=True)
    triple = checks.check_make_batches(lambda e, n, t: (*batches_with_a_loop(e, n, t), len(e)), quiet=True)
    head = "make_batches: expected a pair (inputs, targets), got"
    case = "(for a text of 66 characters (random), batch_size=4, seq_len=5)"
    assert (stacked.status, stacked.message) == ("wrong", f"{head} Tensor {case}")
    assert (triple.status, triple.message) == ("wrong", f"{head} tuple (Tensor, Tensor, int) {case}")


def test_make_batches_cases_match_their_labels_and_coverage():
    cases = lm_checks._batches_cases(606)
    passed = checks.check_make_batches(batches_with_a_loop, quiet=True)
    assert "batch sizes 1 to 5, chunk lengths 3 to 7" in passed.message
    assert sorted({c.args[1] for c in cases}) == [1, 2, 3, 4, 5]
    assert (min(c.args[2] for c in cases), max(c.args[2] for c in cases)) == (3, 7)
    for case in cases:
        text, n, t = case.args
        kind = "0, 1, 2, ..." if torch.equal(text, torch.arange(len(text))) else "random"
        assert case.label == f"a text of {len(text)} characters ({kind}), batch_size={n}, seq_len={t}"
        # every mistake makes as many chunks as the reference, so each one can be told by its values
        shape = lm.make_batches(text, n, t)[0].shape
        assert all(m.fn(text, n, t)[0].shape == shape for m in lm_checks._batches_mistakes()), case.label
    random = torch.cat([c.args[0] for c in cases if "random" in c.label])
    assert (int(random.min()), int(random.max())) == (0, 29)  # the whole range of characters


def test_perplexity_cases_match_their_labels():
    cases = lm_checks._perplexity_cases(616)
    assert [(tuple(c.args[0].shape), c.args[0].dtype) for c in cases] == [
        ((2, 3, 5), torch.float32), ((3, 4, 7), torch.float64), ((1, 5, 4), torch.float32),
        ((2, 2, 6), torch.float64), ((2, 3, 8), torch.float32)]
    for case in cases[:-1]:
        z, y = case.args
        n, t, v = z.shape
        assert case.label == f"logits ({n}, {t}, {v}) {str(z.dtype).removeprefix('torch.')}, targets ({n}, {t})"
        assert y.shape == (n, t) and 0 <= int(y.min()) and int(y.max()) < v
    z, y = cases[-1].args
    assert cases[-1].label == "uniform logits (2, 3, 8): every character has probability 1/8, perplexity 8"
    assert torch.equal(z, torch.zeros(2, 3, 8)) and int(y.max()) < 8
    assert float(lm.perplexity(z, y)) == pytest.approx(8)


def test_perplexity_cases_range_from_flat_to_peaked_logits_in_full_precision():
    random = [c.args[0] for c in lm_checks._perplexity_cases(616)[:-1]]
    spread = [float(z.std()) for z in random]
    assert max(spread) > 2.5 and min(spread) < 0.75  # a confident model and a nearly uniform one
    for z in random:
        if z.dtype == torch.float64:  # float64 values, not float32 ones stored in float64
            assert not torch.equal(z.float().double(), z)


def record_tbptt_inputs(cases):
    seen = []

    def step(model, x, y, state):
        seen.append((tuple(x.shape), tuple(y.shape), model.head.out_features, x.clone(), y.clone()))
        with torch.no_grad():
            return 0.0, model(x, state, return_state=True)[1]

    for case in cases:
        case.run(step)
    return seen


def test_tbptt_cases_match_their_labels_and_cover_the_vocabulary():
    cases = lm_model_checks._tbptt_cases(626)
    assert all(c.label.endswith("(N=3, T=5, V=9)") for c in cases)
    seen = record_tbptt_inputs(cases)
    assert len(seen) == 5  # the last case makes two calls in a row
    assert {(xs, ys, v) for xs, ys, v, _, _ in seen} == {((3, 5), (3, 5), 9)}
    # every character occurs, so every row of the embedding gets a gradient to compare
    assert torch.cat([x.flatten() for *_, x, _ in seen]).unique().tolist() == list(range(9))
    assert torch.cat([y.flatten() for *_, y in seen]).unique().tolist() == list(range(9))


def test_tbptt_unrelated_runtime_error_is_reported_as_the_learners_error():
    def step(model, x, y, state):
        logits, new_state = model(x, detach(state), return_state=True)
        loss = F.cross_entropy(logits, y)  # (N, T, V) against (N, T): T is taken for the classes
        model.zero_grad()
        loss.backward()
        return loss, new_state

    result = checks.check_tbptt_step(step, quiet=True)
    assert (result.status, result.mistakes) == ("error", ()), result.message
    assert "RuntimeError" in result.message and "Likely mistake" not in result.message


@pytest.mark.parametrize("convert, got", [
    (lambda drawn: [float(c) for c in drawn], "list (float, float, float, float, ...)"),
    (lambda drawn: drawn[0], "int"),
])
def test_sample_answer_must_be_integer_indices(convert, got):
    sampler = make_sampler()
    result = checks.check_sample(lambda *args: convert(sampler(*args)), max_points=3, quiet=True)
    case = lm_model_checks._sample_cases(636)[0].label  # the first case, whose answer is read first
    assert (result.status, result.points, result.message) == (
        "wrong", 0, f"sample: expected a tensor of character indices, got {got} (for {case})")


def test_sample_cases_are_fixed_by_the_seed_and_match_the_coverage():
    seen = []

    def record(model, prefix, length, temperature, generator):
        seen.append((type(model.rnn).__name__, prefix.tolist(), length, temperature, generator.initial_seed(),
                     model.head.out_features))
        return torch.zeros(length, dtype=torch.long)

    cases = lm_model_checks._sample_cases(636)
    for case in cases:
        case.run(record)
    assert seen == [("LSTM", [3, 3, 10], 40, 0.5, 646, 11), ("LSTM", [10], 40, 1.0, 647, 11),
                    ("GRU", [6, 0, 0, 3], 40, 2.0, 648, 11), ("LSTM", [8, 10], 40, 0.7, 649, 11)]
    for case, (cell, prefix, length, temperature, _, v) in zip(cases, seen):
        article = {"LSTM": "an", "GRU": "a"}[cell]
        assert case.label == (f"{article} {cell} CharLM (V={v}), a prefix of {len(prefix)}, length={length}, "
                              f"temperature={temperature}, a seeded generator")
    assert "temperatures 0.5 to 2.0" in checks.check_sample(make_sampler(), quiet=True).message
    assert (min(t for *_, t, _, _ in seen), max(t for *_, t, _, _ in seen)) == (0.5, 2.0)


# ------------------------------------------- checks that build their arguments per call (model_calls)
@pytest.mark.parametrize("check, name", [(checks.check_tbptt_step, "tbptt_step"), (checks.check_sample, "sample")])
def test_model_check_refuses_a_value_or_none_with_no_points(check, name):
    called = check(42, max_points=3, quiet=True)
    hint = f"pass the function itself, `check_{name}({name})`, without calling it."
    assert (called.status, called.points, called.message) == (
        "error", 0, f"{name}: expected a function, got int — {hint}")
    silent = check(lambda *args: None, max_points=3, quiet=True)
    assert (silent.status, silent.points, silent.message) == (
        "wrong", 0, f"{name}: your function returned None — did you forget the `return` statement?")


def test_model_case_is_frozen():
    case = lm_model_checks._sample_cases(636)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.label = "another label"
    assert hash(case) == hash(case)


def test_model_check_runs_on_one_thread_and_restores_the_thread_count():
    seen = []
    sampler = make_sampler()

    def sample(*args):
        seen.append(torch.get_num_threads())
        return sampler(*args)

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert checks.check_sample(sample, quiet=True).passed
        assert torch.get_num_threads() == 3 and set(seen) == {1}
    finally:
        torch.set_num_threads(before)


def add_to_step(loss_offset=0.0, grad_offset=0.0, zero=True):
    """A tbptt_step off by a little: its loss by ``loss_offset``, the gradients the reference leaves at 0
    (the embedding rows of characters absent from the chunk) by ``grad_offset``."""
    inner = make_step(zero=zero)

    def step(model, x, y, state):
        loss, new_state = inner(model, x, y, state)
        absent = [c for c in range(model.head.out_features) if c not in x]
        model.embed.weight.grad[absent] += grad_offset
        return loss + loss_offset, new_state
    return step


def test_tbptt_answer_off_by_a_little_names_no_mistake():
    # on the first case (no state) `state_not_detached` and `state_not_carried` give the reference's values:
    # an answer close to them is not blamed on them
    result = checks.check_tbptt_step(add_to_step(loss_offset=5e-5), max_points=3, quiet=True)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ()), result.message
    assert result.message.splitlines()[:2] == [
        "tbptt_step: wrong values for an LSTM CharLM, state None (N=3, T=5, V=9).", "loss is not right."]


def test_tbptt_mistake_is_named_when_one_wrong_output_is_off_by_a_little():
    result = checks.check_tbptt_step(add_to_step(loss_offset=5e-5, zero=False), max_points=3, quiet=True)
    assert_mistake(result, "grad_not_zeroed")


def test_tbptt_tolerance_is_1e_5_around_a_zero_reference_gradient():
    assert checks.check_tbptt_step(add_to_step(grad_offset=0.99e-5), quiet=True).passed
    result = checks.check_tbptt_step(add_to_step(grad_offset=1.000005e-5), quiet=True)
    assert (result.status, result.mistakes) == ("wrong", ()), result.message
    assert "embed.weight.grad is not right." in result.message


# ------------------------------------------------ the pins and paths the mutation run found loose
def test_tbptt_cases_are_pinned():
    """Everything each case gives the learner's step: the model's weights and stale gradients, x, y and the
    state (a change here is a change of what learners are judged on: update the digest only on purpose)."""
    import hashlib
    h = hashlib.sha256()

    def add(t):
        h.update(repr((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.detach().to(torch.float64).numpy().round(8).tobytes())

    def step(model, x, y, state):
        h.update(type(model.rnn).__name__.encode())
        for t in (x, y, *(() if state is None else state if isinstance(state, tuple) else (state,))):
            add(t)
        for p in model.parameters():
            add(p)
            h.update(b"grad" if p.grad is not None else b"none")
            if p.grad is not None:
                add(p.grad)
        return lm.tbptt_step(model, x, y, state)

    for case in lm_model_checks._tbptt_cases(626):
        h.update(case.label.encode())
        case.run(step)
    assert h.hexdigest()[:16] == "e074aee4b365b18c"


def test_tbptt_checks_the_h_of_an_lstm_state_not_only_its_c():
    def step(model, x, y, state):
        loss, new_state = make_step()(model, x, y, state)
        if isinstance(new_state, tuple):  # the LSTM's (h, c): h lost, c right
            return loss, (torch.zeros_like(new_state[0]), new_state[1])
        return loss, new_state

    result = checks.check_tbptt_step(step, max_points=3, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert result.message.split("\n")[:2] == [  # caught on the first case, by h alone
        "tbptt_step: wrong values for an LSTM CharLM, state None (N=3, T=5, V=9).", "new_state[0] (h) is not right."]


def test_a_sample_of_shape_1_by_length_is_read_as_one_sequence():
    def sample(model, prefix, length, temperature, generator):
        return torch.tensor(make_sampler()(model, prefix, length, temperature, generator))[None]  # (1, length)

    assert checks.check_sample(sample, quiet=True).passed


@pytest.mark.parametrize("value, passed", [("float", True), ("bool", False)])
def test_perplexity_may_be_a_python_float_but_not_a_bool(value, passed):
    def perplexity(logits, targets):
        p = torch.exp(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)))
        return float(p) if value == "float" else bool(p > 0)

    result = checks.check_perplexity(perplexity, quiet=True)
    assert result.passed is passed
    if not passed:
        assert "expected a number or a 0-d tensor, got bool" in result.message


@pytest.mark.parametrize("answer, says, uses", [
    ("passes", "make_batches: your function passed its check; the cells below use it.", "yours"),
    ("not_implemented", "make_batches: your function is not implemented yet — the cells below use the course's "
                        "reference, lm.make_batches, instead.", "reference"),
    ("wrong", "make_batches: your function did not pass its check — the cells below use the course's reference, "
              "lm.make_batches, instead.", "reference"),
    ("raises", "make_batches: your function raised an error in its check — the cells below use the course's "
               "reference, lm.make_batches, instead.", "reference"),
    ("calls_reference", "make_batches: your function calls the reference instead of computing the result — the "
                        "cells below use the course's reference, lm.make_batches, instead.", "reference"),
])
def test_yours_or_reference_says_which_function_the_notebook_goes_on_with(capsys, answer, says, uses):
    def mine(encoded, batch_size, seq_len):
        if answer == "not_implemented":
            raise NotImplementedError
        if answer == "raises":
            raise ValueError("a bug")
        if answer == "calls_reference":
            return lm.make_batches(encoded, batch_size, seq_len)
        if answer == "wrong":
            return batches_not_shifted(encoded, batch_size, seq_len)
        x, y = batches_not_shifted(encoded, batch_size, seq_len)
        K, N, T = x.shape
        y = encoded[:N * ((len(encoded) // N))].view(N, -1)[:, 1:K * T + 1].reshape(N, K, T).transpose(0, 1)
        return x, y

    chosen = checks.yours_or_reference(mine, "make_batches", lm.make_batches)
    assert chosen is (mine if uses == "yours" else lm.make_batches)
    assert capsys.readouterr() == (says + "\n", "")  # the check runs quietly: one line, on stdout


def test_a_perplexity_per_sequence_is_told_to_average_over_every_character():
    def per_sequence(logits, targets):
        nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (N, T)
        return torch.exp(nll.mean(-1))  # (N,)

    result = checks.check_perplexity(per_sequence, max_points=2, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert ("expected one number (a 0-d tensor or a float), got a tensor of shape (2,) — average over every "
            "character before the exp") in result.message


@pytest.mark.parametrize("exc, named", [
    (RuntimeError("Trying to backward through the graph a second time (or directly access saved tensors after "
                  "they have already been freed)."), True),
    (RuntimeError("one of the variables needed for gradient computation has been modified by an inplace "
                  "operation: [torch.FloatTensor [3, 10]]"), True),
    (RuntimeError("Expected target size (3, 9), got torch.Size([3, 5])"), False),
    (ValueError("Trying to backward through the graph a second time"), False),
])
def test_the_errors_of_a_state_never_detached_are_named(exc, named):
    """(A step that keeps the old graph usually fails earlier, on values; an error names it where it does not.)"""
    mistake = lm_model_checks._tbptt_error(exc)
    if not named:
        assert mistake is None
        return
    assert mistake.id == "state_not_detached" and mistake.description == lm_model_checks._NOT_DETACHED
    assert callable(mistake.fn)


def test_a_loss_per_character_is_told_to_be_one_number():
    def step(model, x, y, state):
        _, new_state = make_step()(model, x, y, state)
        logits = model(x, detach(state), return_state=True)[0]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none"), new_state

    result = checks.check_tbptt_step(step, max_points=3, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert "expected loss to be one number (the mean cross-entropy), got a tensor of shape (15,)" in result.message


def test_a_batch_of_two_samples_is_told_its_shape():
    def sample(model, prefix, length, temperature, generator):
        one = torch.tensor(make_sampler()(model, prefix, length, temperature, generator))
        return torch.stack([one, one])  # (2, length)

    result = checks.check_sample(sample, max_points=3, quiet=True)
    assert (result.status, result.points) == ("wrong", 0)
    assert "got (2, 40)" in result.message


def test_sequence_loss_moves_the_text_to_the_given_device():
    model, text = Spy(), torch.randint(0, 7, (12,))
    try:
        lm.sequence_loss(model, text, device="meta")
    except (RuntimeError, NotImplementedError):
        pass  # the uniform Spy answers on the CPU: only where the model was called matters here
    lm.sequence_loss(model, text)
    assert [device for _, device, _ in model.calls] == ["meta", "cpu"]


def test_entropy_and_sampling_default_to_temperature_one():
    model, text = small_lm(), torch.randint(0, 7, (12,))
    assert lm.next_char_entropy(model, text) == lm.next_char_entropy(model, text, 1.0)
    warm = lm.sample(model, text[:3], 20, 1.0, torch.Generator().manual_seed(4))
    assert torch.equal(lm.sample(model, text[:3], 20, generator=torch.Generator().manual_seed(4)), warm)
    assert not torch.equal(lm.sample(model, text[:3], 20, 0.2, torch.Generator().manual_seed(4)), warm)


@pytest.mark.parametrize("order", [0, 4])
def test_ngram_tables_of_other_orders_are_refused(order):
    with pytest.raises(ValueError, match=f"expected order 1, 2 or 3, got {order}"):
        lm.ngram_log_probs(torch.randint(0, 5, (30,)), 5, order)
