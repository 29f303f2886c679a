"""Unit 06: the language-model references (course_utils.lm) and their checks (course_utils.checks.lm).

Each check is fed the reference (passes), a function that raises NotImplementedError, and one
learner-style function per named mistake, whose id must be in ``result.mistakes``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import checks, data, lm, training
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


# ------------------------------------------------------------ the checks: fixtures
REFERENCES = [(checks.check_make_batches, lm.make_batches), (checks.check_tbptt_step, lm.tbptt_step),
              (checks.check_perplexity, lm.perplexity), (checks.check_sample, lm.sample)]


@pytest.mark.parametrize("check, reference", REFERENCES)
def test_reference_passes_with_points(check, reference):
    result = check(reference, max_points=3, quiet=True)
    assert result.status == "passed" and result.points == 3 and result.mistakes == (), result.message


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
