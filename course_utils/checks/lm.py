"""Checks for unit 06's exercises: ``make_batches``, ``tbptt_step``, ``perplexity`` and ``sample``.

``make_batches`` and ``perplexity`` take plain tensors and are checked by
:func:`.harness.check_function`. ``tbptt_step`` and ``sample`` take a model (a
:class:`course_utils.training.CharLM` over ``torch.nn`` layers) and, for ``sample``, a
``torch.Generator``; every call (the learner's, the reference's, each deliberate mistake's) gets
its own fresh copy of the model, the state and the generator, built from the check's seed, and
the check reads the returned values and the model's parameters' ``.grad`` after the call.

Each mistake has a stable id (``CheckResult.mistakes``):

- ``make_batches``: ``targets_not_shifted``, ``targets_shifted_wrong_way``, ``streams_interleaved``,
  ``chunks_not_continuing``;
- ``tbptt_step``: ``state_not_detached``, ``grad_not_zeroed``, ``loss_summed``, ``state_not_carried``,
  ``targets_are_inputs``, ``zero_grad_after_backward``;
- ``perplexity``: ``summed_loss``, ``no_exp``, ``base_2``, ``no_log_softmax``, ``probabilities_not_log``,
  ``mean_of_sequence_perplexities``;
- ``sample``: ``temperature_after_softmax``, ``temperature_multiplied``, ``argmax_sampling``,
  ``state_not_carried``, ``generator_not_used``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import lm as ref
from ..training import CharLM
from .harness import (
    MISTAKE_TOLERANCES,
    Case,
    FunctionExercise,
    Malformed,
    Mistake,
    _first_difference,
    check_function,
    expect_tensor,
    notebook_check,
    tolerance,
)
from .result import CheckResult, not_implemented, raised, type_name

__all__ = ["check_make_batches", "check_tbptt_step", "check_perplexity", "check_sample", "yours_or_reference"]


# ============================================================== make_batches
def _batches_variant(rule: str):
    def make_batches(encoded, batch_size, seq_len):
        inputs, targets = ref.make_batches(encoded, batch_size, seq_len)  # (K, N, T) each
        K, N, T = inputs.shape
        if rule == "not_shifted":
            return inputs, inputs.clone()
        if rule == "wrong_way":
            return targets, inputs  # y_t = x_{t-1}: each target is the character *before* its input
        if rule == "interleaved":
            stream_len = len(encoded) // N
            streams = encoded[:N * stream_len].reshape(stream_len, N).T  # row n: characters n, n+N, n+2N, ...
        elif rule == "not_continuing":
            used = encoded[:K * N * T + 1]
            return used[:-1].reshape(K, N, T), used[1:].reshape(K, N, T)  # chunk k: the k-th N·T characters
        x = streams[:, :K * T].reshape(N, K, T).transpose(0, 1)
        y = streams[:, 1:K * T + 1].reshape(N, K, T).transpose(0, 1)
        return x.contiguous(), y.contiguous()
    return make_batches


def _batches_mistakes() -> list[Mistake]:
    v = _batches_variant
    return [
        Mistake("the targets are the inputs themselves: the target of x_t is the *next* character, x_{t+1} "
                "(`targets = streams[:, 1:...]`, one further than the inputs).", v("not_shifted"),
                id="targets_not_shifted"),
        Mistake("the targets are shifted the wrong way (or inputs and targets swapped): the target of x_t is "
                "x_{t+1}, the character *after* it, not x_{t-1}.", v("wrong_way"), id="targets_shifted_wrong_way"),
        Mistake("the streams are interleaved: `reshape(L_s, N).T` makes row n the characters n, n+N, n+2N, ... "
                "Each row must be one contiguous piece of the text: `encoded[:N * L_s].reshape(N, L_s)`.",
                v("interleaved"), id="streams_interleaved"),
        Mistake("each chunk is the next N·T characters of the text, so row n of chunk k+1 does not continue "
                "row n of chunk k and the carried state belongs to another place in the text. Cut the text "
                "into N streams first, then each stream into chunks of T.", v("not_continuing"),
                id="chunks_not_continuing"),
    ]


def _batches_unpack(value, case: Case) -> list[tuple[str, Tensor]]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Malformed(f"expected a pair (inputs, targets), got {type_name(value)}")
    return [("inputs", expect_tensor(value[0], "inputs")), ("targets", expect_tensor(value[1], "targets"))]


def _batches_cases(seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    cases = []
    # lengths N * (K T + 1) + r with r < N: every rule above makes the same number of chunks K
    for n, t, k, r, kind in ((4, 5, 3, 2, "random"), (3, 4, 2, 0, "arange"), (2, 6, 4, 1, "random"),
                             (1, 7, 2, 0, "random"), (5, 3, 1, 4, "random")):
        length = n * (k * t + 1) + r
        text = torch.arange(length) if kind == "arange" else torch.randint(0, 30, (length,), generator=gen)
        cases.append(Case(f"a text of {length} characters ({'0, 1, 2, ...' if kind == 'arange' else 'random'}), "
                          f"batch_size={n}, seq_len={t}", (text, n, t)))
    return cases


def _batches_shape_hint(name: str, expected: tuple, got: tuple) -> str:
    if sorted(expected) == sorted(got):
        return "the order of the dimensions is (K, N, T): chunk, stream, step."
    return ("K = (L_s - 1) // T chunks, L_s = L // N characters per stream (the last target needs one "
            "character after the last input).")


_BATCHES = FunctionExercise(
    name="make_batches",
    reference=ref.make_batches,
    unpack=_batches_unpack,
    mistakes=_batches_mistakes,
    arg_names=("encoded",),
    signature="make_batches(encoded, batch_size, seq_len) -> (inputs, targets), each (K, N, T)",
    coverage="5 texts (random and 0, 1, 2, ...), batch sizes 1 to 5, chunk lengths 3 to 7",
    shape_hint=_batches_shape_hint,
)


@notebook_check
def check_make_batches(fn, *, max_points: float = 1, seed: int = 606) -> CheckResult:
    """Check ``make_batches(encoded, batch_size, seq_len) -> (inputs, targets)`` against :func:`course_utils.lm.make_batches`."""
    return check_function(_BATCHES, fn, _batches_cases(seed), max_points)


# ================================================================ perplexity
def _nll(logits: Tensor, targets: Tensor) -> Tensor:
    return -torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N, T)


def _perplexity_mistakes() -> list[Mistake]:
    def pick(scores, targets):
        return scores.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N, T)

    return [
        Mistake("the exponential of the *summed* loss: perplexity is exp of the *mean* cross-entropy, "
                "exp(-1/(N T) Σ log p), so it does not grow with the number of characters.",
                lambda z, y: torch.exp(_nll(z, y).sum()), id="summed_loss"),
        Mistake("the mean cross-entropy itself: perplexity is its exponential, exp(L).",
                lambda z, y: _nll(z, y).mean(), id="no_exp"),
        Mistake("2 to the power of the loss: the cross-entropy is in nats (natural log), so the perplexity "
                "is e^L (2^L goes with a loss in bits).", lambda z, y: 2 ** _nll(z, y).mean(), id="base_2"),
        Mistake("the logits are used as log-probabilities: normalise them first with `torch.log_softmax` "
                "(or use `F.cross_entropy`).", lambda z, y: torch.exp(-pick(z, y).mean()), id="no_log_softmax"),
        Mistake("softmax probabilities are averaged without the log: the loss is the mean of -log p.",
                lambda z, y: torch.exp(-pick(torch.softmax(z, -1), y).mean()), id="probabilities_not_log"),
        Mistake("one perplexity per sequence, averaged: the perplexity of the batch is exp of the mean loss over "
                "all N·T characters.", lambda z, y: torch.exp(_nll(z, y).mean(-1)).mean(),
                id="mean_of_sequence_perplexities"),
    ]


def _perplexity_unpack(value, case: Case) -> list[tuple[str, Tensor]]:
    dtype = case.args[0].dtype
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise Malformed(f"expected one number (a 0-d tensor or a float), got a tensor of shape "
                            f"{tuple(value.shape)} — average over every character before the exp")
        return [("perplexity", value.detach().reshape(()).to(dtype))]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return [("perplexity", torch.tensor(float(value), dtype=dtype))]
    raise Malformed(f"expected a number or a 0-d tensor, got {type_name(value)}")


def _perplexity_cases(seed: int) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)

    def logits(n, t, v, scale, dtype=torch.float32):
        return (torch.randn(n, t, v, generator=gen, dtype=torch.float64) * scale).to(dtype)

    cases = []
    for n, t, v, scale, dtype in ((2, 3, 5, 2.0, torch.float32), (3, 4, 7, 1.0, torch.float64),
                                  (1, 5, 4, 3.0, torch.float32), (2, 2, 6, 0.5, torch.float64)):
        z = logits(n, t, v, scale, dtype)
        y = torch.randint(0, v, (n, t), generator=gen)
        cases.append(Case(f"logits ({n}, {t}, {v}) {str(dtype).removeprefix('torch.')}, targets ({n}, {t})", (z, y)))
    z = torch.zeros(2, 3, 8)
    cases.append(Case("uniform logits (2, 3, 8): every character has probability 1/8, perplexity 8",
                      (z, torch.randint(0, 8, (2, 3), generator=gen))))
    return cases


_PERPLEXITY = FunctionExercise(
    name="perplexity",
    reference=ref.perplexity,
    unpack=_perplexity_unpack,
    mistakes=_perplexity_mistakes,
    arg_names=("logits", "targets"),
    signature="perplexity(logits, targets) -> a number; logits (N, T, V), targets (N, T)",
    coverage="5 batches (float32 and float64, one sequence and several, and uniform logits, whose perplexity is V)",
    inplace_hint="e.g. `z = logits - ...`, not `logits -= ...`",
)


@notebook_check
def check_perplexity(fn, *, max_points: float = 1, seed: int = 616) -> CheckResult:
    """Check ``perplexity(logits, targets)`` against :func:`course_utils.lm.perplexity`."""
    return check_function(_PERPLEXITY, fn, _perplexity_cases(seed), max_points)


# ============================================ checks that take a model: the runner
@dataclass(frozen=True)
class _ModelCase:
    """One call (or a chain of calls): ``run(fn)`` builds fresh arguments, calls ``fn`` and returns
    ``(answer, args)``, the arguments as they are after the call (the model holds its gradients)."""

    label: str
    run: Callable[[Callable], tuple]
    dtype: torch.dtype = torch.float32


def _close(a: Tensor, b: Tensor, tol: float) -> bool:
    if a.dtype in (torch.long, torch.int32) or b.dtype in (torch.long, torch.int32):
        return a.shape == b.shape and torch.equal(a.long(), b.long())
    return bool(torch.allclose(a, b, rtol=tol, atol=tol))


def _judge(name: str, fn, cases: list[_ModelCase], reference: Callable, mistakes: list[Mistake],
           read: Callable, max_points: float, signature: str, coverage: str,
           error_mistakes: Callable[[Exception], Mistake | None] = lambda exc: None,
           shape_hint: Callable[[str, tuple, tuple], str | None] = lambda n, e, g: None,
           after_wrong: Callable[[_ModelCase, list], Mistake | None] = lambda case, got: None) -> CheckResult:
    """Run ``fn`` on every case against ``reference``; the first problem becomes the result.

    torch runs on one CPU thread meanwhile (restored after): the models are tiny, and on a busy
    machine a second thread that waits for a core makes every small operation many times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _judge_cases(name, fn, cases, reference, mistakes, read, max_points, signature, coverage,
                            error_mistakes, shape_hint, after_wrong)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _judge_cases(name, fn, cases, reference, mistakes, read, max_points, signature, coverage, error_mistakes,
                 shape_hint, after_wrong) -> CheckResult:
    if not callable(fn):
        return CheckResult(name, "error", 0, max_points,
                           f"{name}: expected a function, got {type_name(fn)} — pass the function itself, "
                           f"`check_{name}({name})`, without calling it.")
    for case in cases:
        expected = read(*case.run(reference))
        try:
            answer, args = case.run(fn)
        except NotImplementedError:
            return not_implemented(name, max_points)
        except Exception as exc:  # the learner's bug, reported with the learner's line
            mistake = error_mistakes(exc)
            if mistake is not None:
                return CheckResult(name, "wrong", 0, max_points,
                                   f"{name}: your function raised {type(exc).__name__} (for {case.label}).\n"
                                   f"Likely mistake: {mistake.description}", (mistake.id,))
            hint = f"the function is called as `{signature}`." if isinstance(exc, TypeError) else None
            return raised(name, exc, max_points, during=case.label, hint=hint)
        if answer is None:
            return CheckResult(name, "wrong", 0, max_points,
                               f"{name}: your function returned None — did you forget the `return` statement?")
        try:
            got = read(answer, args)
        except Malformed as bad:
            return CheckResult(name, "wrong", 0, max_points, f"{name}: {bad} (for {case.label})")
        for (n, g), (_, e) in zip(got, expected):
            if tuple(g.shape) != tuple(e.shape):
                hint = shape_hint(n, tuple(e.shape), tuple(g.shape))
                return CheckResult(name, "wrong", 0, max_points,
                                   f"{name}: expected {n} of shape {tuple(e.shape)}, got {tuple(g.shape)}"
                                   + (f". Hint: {hint}" if hint else "") + f" (for {case.label})")
        tol = tolerance(case.dtype)
        wrong = [n for (n, g), (_, e) in zip(got, expected) if not _close(g, e, tol)]
        if not wrong:
            continue
        head = f"{name}: wrong values for {case.label}."
        found = _diagnose(case, got, expected, wrong, mistakes, read)
        if not found:
            extra = after_wrong(case, got)
            found = [extra] if extra is not None else []
        if found:
            return CheckResult(name, "wrong", 0, max_points,
                               "\n".join([head] + [f"Likely mistake: {m.description}" for m in found]),
                               tuple(m.id for m in found))
        lines = [head, (f"{', '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''} "
                        f"{'is' if len(wrong) == 1 else 'are'} not right.")]
        got_d, exp_d = dict(got), dict(expected)
        lines += [_first_difference(n, got_d[n].double(), exp_d[n].double(), tol) for n in wrong[:2]]
        return CheckResult(name, "wrong", 0, max_points, "\n".join(lines))
    return CheckResult(name, "passed", max_points, max_points, f"{name}: passed — matches the reference on {coverage}.")


def _diagnose(case: _ModelCase, got, expected, wrong: list[str], mistakes: list[Mistake], read) -> list[Mistake]:
    """The first mistake whose variant gives the answer's values where the answer is wrong (and is itself wrong)."""
    tol, strict = tolerance(case.dtype, MISTAKE_TOLERANCES), tolerance(case.dtype)
    got_d, exp_d = dict(got), dict(expected)
    for mistake in mistakes:
        try:
            variant = dict(read(*case.run(mistake.fn)))
        except Exception:  # a variant that cannot run here says nothing
            continue
        if not all(n in variant and variant[n].shape == got_d[n].shape and _close(got_d[n], variant[n], tol)
                   for n in got_d):
            continue
        if all(_close(variant[n], exp_d[n], strict) for n in wrong):
            continue  # on this case the mistake gives the right values: it cannot be what went wrong
        return [mistake]
    return []


def _model(cell: str, seed: int, vocab_size: int, peaked: float = 1.0) -> CharLM:
    """A small CharLM with the check's own initialisation (the caller's random state is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CharLM(vocab_size, cell, embed_size=6, hidden_size=10, impl="torch")
    with torch.no_grad():
        model.head.weight.mul_(peaked)  # larger logits: distributions far from uniform
    return model


def _state_tensors(state, name: str = "new_state") -> list[tuple[str, Tensor]]:
    if isinstance(state, Tensor):
        return [(name, state.detach())]
    if isinstance(state, (tuple, list)) and len(state) == 2 and all(isinstance(s, Tensor) for s in state):
        return [(f"{name}[0] (h)", state[0].detach()), (f"{name}[1] (c)", state[1].detach())]
    raise Malformed(f"expected {name} to be the state the model returned (a tensor h, or a tuple (h, c) for an "
                    f"LSTM), got {type_name(state)}")


# ================================================================ tbptt_step
def _tbptt_variant(rule: str):
    def tbptt_step(model, x, y, state=None):
        if rule == "not_carried":
            state = None
        elif rule != "not_detached":
            state = ref.detach_state(state)
        logits, new_state = model(x, state, return_state=True)  # (N, T, V)
        target = x if rule == "inputs" else y
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                               reduction="sum" if rule == "summed" else "mean")
        if rule not in ("not_zeroed", "zero_after"):
            model.zero_grad(set_to_none=True)
        loss.backward()
        if rule == "zero_after":
            model.zero_grad(set_to_none=False)
        return loss.detach(), ref.detach_state(new_state)
    return tbptt_step


_NOT_DETACHED = ("the carried state is not detached: backward goes on through the previous chunks (which "
                 "is not truncated BPTT; in a loop it fails with \"Trying to backward through the graph a "
                 "second time\"). Start with `state = detach(state)` (`.detach()` on h, or on h and c).")


def _tbptt_mistakes() -> list[Mistake]:
    v = _tbptt_variant
    return [
        Mistake(_NOT_DETACHED, v("not_detached"), id="state_not_detached"),
        Mistake("the old gradients are not cleared: `backward()` adds to `.grad`, so clear it first "
                "(`model.zero_grad()`) or the gradients of the previous chunk are added to this one's.",
                v("not_zeroed"), id="grad_not_zeroed"),
        Mistake("the gradients are cleared *after* `backward()`: clear them before, so that the new ones stay "
                "for the optimizer.", v("zero_after"), id="zero_grad_after_backward"),
        Mistake("the loss is summed over the N·T characters: use the mean (`F.cross_entropy`'s default), "
                "so that the step size does not depend on the batch and chunk length.", v("summed"),
                id="loss_summed"),
        Mistake("the carried state is not used: the model starts every chunk from zeros. Pass the state to "
                "the model, `model(x, state, return_state=True)`, detached.", v("not_carried"),
                id="state_not_carried"),
        Mistake("the loss compares the logits with the inputs x: the targets are y, the next characters.",
                v("inputs"), id="targets_are_inputs"),
    ]


def _tbptt_read(answer, args) -> list[tuple[str, Tensor]]:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Malformed(f"expected a pair (loss, new_state), got {type_name(answer)}")
    loss, state = answer
    if isinstance(loss, Tensor):
        if loss.numel() != 1:
            raise Malformed(f"expected loss to be one number (the mean cross-entropy), got a tensor of shape "
                            f"{tuple(loss.shape)}")
        loss = loss.detach().reshape(()).float()
    elif isinstance(loss, numbers.Real) and not isinstance(loss, bool):
        loss = torch.tensor(float(loss))
    else:
        raise Malformed(f"expected loss to be a number or a 0-d tensor, got {type_name(loss)}")
    out = [("loss", loss)] + _state_tensors(state)
    model = args[0]
    for pname, p in model.named_parameters():
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        out.append((f"{pname}.grad", grad.detach()))
    return out


def _tbptt_cases(seed: int) -> list[_ModelCase]:
    V, N, T = 9, 3, 5
    gen = torch.Generator().manual_seed(seed)
    chunks = [torch.randint(0, V, (N, T + 1), generator=gen) for _ in range(3)]
    old_grads = torch.Generator().manual_seed(seed + 1)

    def fresh(cell: str, stale_grads: bool = True) -> CharLM:
        model = _model(cell, seed, V)
        if stale_grads:  # gradients left from an earlier step, as in a training loop
            g = torch.Generator().manual_seed(old_grads.initial_seed())
            for p in model.parameters():
                p.grad = torch.randn(p.shape, generator=g)
        return model

    def xy(k):
        return chunks[k][:, :-1].clone(), chunks[k][:, 1:].clone()  # (N, T) each

    def first(cell):
        def run(fn):
            model = fresh(cell)
            x, y = xy(0)
            return fn(model, x, y, None), (model,)
        return run

    def carried(cell):
        def run(fn):
            model = fresh(cell)
            x0, _ = xy(0)
            _, state = model(x0, None, return_state=True)  # still attached to the previous chunk's graph
            x, y = xy(1)
            return fn(model, x, y, state), (model,)
        return run

    def chained(cell):
        def run(fn):
            model = fresh(cell, stale_grads=False)
            x0, y0 = xy(0)
            _, state = fn(model, x0, y0, None)
            x1, y1 = xy(2)
            return fn(model, x1, y1, state), (model,)
        return run

    size = f"N={N}, T={T}, V={V}"
    return [
        _ModelCase(f"an LSTM CharLM, state None ({size})", first("lstm")),
        _ModelCase(f"an LSTM CharLM, state (h, c) carried from a previous chunk and still attached to its graph "
                   f"({size})", carried("lstm")),
        _ModelCase(f"a GRU CharLM, state h carried from a previous chunk ({size})", carried("gru")),
        _ModelCase(f"two calls in a row on an LSTM CharLM, the second with the state the first returned ({size})",
                   chained("lstm")),
    ]


def _tbptt_error(exc: Exception) -> Mistake | None:
    text = str(exc)
    if isinstance(exc, RuntimeError) and ("backward through the graph a second time" in text
                                          or "modified by an inplace operation" in text):
        return Mistake(_NOT_DETACHED, _tbptt_variant("not_detached"), id="state_not_detached")
    return None


@notebook_check
def check_tbptt_step(fn, *, max_points: float = 1, seed: int = 626) -> CheckResult:
    """Check ``tbptt_step(model, x, y, state) -> (loss, new_state)`` against :func:`course_utils.lm.tbptt_step`.

    Judged: the returned loss and state, and every parameter's ``.grad`` after the call (the model
    comes with stale gradients in ``.grad``, as in a training loop).
    """
    return _judge("tbptt_step", fn, _tbptt_cases(seed), ref.tbptt_step, _tbptt_mistakes(), _tbptt_read, max_points,
                  signature="tbptt_step(model, x, y, state) -> (loss, new_state)",
                  coverage="4 chunks (LSTM and GRU, no state, a state still attached to the previous chunk, two "
                           "calls in a row): the loss, the new state and every parameter's gradient",
                  error_mistakes=_tbptt_error)


# ==================================================================== sample
def _sample_variant(rule: str):
    @torch.no_grad()
    def sample(model, prefix, length, temperature, generator):
        logits, state = model(prefix[None], None, return_state=True)  # (1, P, V)
        drawn = []
        for _ in range(length):
            z = logits[0, -1]  # (V,)
            if rule == "after_softmax":
                p = torch.softmax(z, -1) / temperature
            elif rule == "multiplied":
                p = torch.softmax(z * temperature, -1)
            else:
                p = torch.softmax(z / temperature, -1)
            nxt = p.argmax().reshape(1) if rule == "argmax" else torch.multinomial(p, 1, generator=generator)
            drawn.append(int(nxt))
            logits, state = model(nxt[None], None if rule == "not_carried" else state, return_state=True)
        return torch.tensor(drawn, dtype=torch.long)
    return sample


def _sample_mistakes() -> list[Mistake]:
    v = _sample_variant
    return [
        Mistake("the temperature divides the probabilities after the softmax: `torch.multinomial` normalises "
                "them again, so the temperature does nothing. Divide the logits: softmax(z / τ).",
                v("after_softmax"), id="temperature_after_softmax"),
        Mistake("the logits are multiplied by the temperature: divide them, softmax(z / τ), so that τ > 1 "
                "flattens the distribution and τ < 1 sharpens it.", v("multiplied"), id="temperature_multiplied"),
        Mistake("the most likely character is taken every time (argmax): *draw* it from the distribution with "
                "`torch.multinomial(p, 1, generator=generator)`.", v("argmax"), id="argmax_sampling"),
        Mistake("the state is not carried while sampling: feed each drawn character back *with the state* "
                "the previous step returned, `model(next[None], state, return_state=True)`.",
                v("not_carried"), id="state_not_carried"),
    ]


_GENERATOR_NOT_USED = Mistake(
    "two calls with generators seeded alike gave different samples: draw with the generator you are given, "
    "`torch.multinomial(p, 1, generator=generator)`, not the global random state.", lambda *a: None,
    id="generator_not_used")


def _sample_read(answer, args) -> list[tuple[str, Tensor]]:
    if isinstance(answer, (list, tuple)) and all(isinstance(a, numbers.Integral) for a in answer):
        answer = torch.tensor(list(answer), dtype=torch.long)
    if not isinstance(answer, Tensor):
        raise Malformed(f"expected a tensor of character indices, got {type_name(answer)}")
    if answer.is_floating_point():
        raise Malformed(f"expected integer character indices (torch.long), got dtype {answer.dtype}")
    return [("sample", answer.detach().reshape(-1) if answer.dim() > 1 and answer.shape[0] == 1 else answer.detach())]


def _sample_cases(seed: int) -> list[_ModelCase]:
    V = 11
    gen = torch.Generator().manual_seed(seed)
    specs = [("lstm", 3, 40, 0.5), ("lstm", 1, 40, 1.0), ("gru", 4, 40, 2.0), ("lstm", 2, 40, 0.7)]
    cases = []
    for k, (cell, p_len, length, temperature) in enumerate(specs):
        prefix = torch.randint(0, V, (p_len,), generator=gen)
        draw_seed = seed + 10 + k

        def run(fn, cell=cell, prefix=prefix, length=length, temperature=temperature, draw_seed=draw_seed,
                model_seed=seed + k):
            model = _model(cell, model_seed, V, peaked=2.0)
            model.eval()
            return fn(model, prefix.clone(), length, temperature, torch.Generator().manual_seed(draw_seed)), (model,)

        cases.append(_ModelCase(f"a {cell.upper()} CharLM (V={V}), a prefix of {p_len}, length={length}, "
                                f"temperature={temperature}, a seeded generator", run))
    return cases


@notebook_check
def check_sample(fn, *, max_points: float = 1, seed: int = 636) -> CheckResult:
    """Check ``sample(model, prefix, length, temperature, generator)`` against :func:`course_utils.lm.sample`.

    Every character must be one draw ``torch.multinomial(p, 1, generator=generator)`` with
    p = softmax(logits / temperature), so that a seeded generator gives the reference's characters.
    """
    def again(case: _ModelCase, got) -> Mistake | None:  # a second call: is the answer random?
        try:
            second = _sample_read(*case.run(fn))
        except Exception:
            return None
        return None if _close(second[0][1], dict(got)["sample"], 0) else _GENERATOR_NOT_USED

    return _judge("sample", fn, _sample_cases(seed), ref.sample, _sample_mistakes(), _sample_read, max_points,
                  signature="sample(model, prefix, length, temperature, generator) -> (length,) long tensor",
                  coverage="4 models and prefixes (LSTM and GRU, temperatures 0.5 to 2.0, seeded generators)",
                  shape_hint=lambda n, e, g: ("return only the drawn characters, without the prefix."
                                              if g and e and g[0] > e[0] else None),
                  after_wrong=again)


# ================================================ after the exercise: yours or the reference
def yours_or_reference(fn, name: str, reference: Callable) -> Callable:
    """``fn`` when its check passes, else ``reference``; prints which one the cells below use.

    So a notebook runs top to bottom before an exercise is solved (or while it is wrong), and says so.
    """
    from .registry import EXERCISES

    result = EXERCISES[name].check(fn, quiet=True)
    if result.passed:
        print(f"{name}: your function passed its check; the cells below use it.")
        return fn
    why = {"not_implemented": "is not implemented yet", "wrong": "did not pass its check",
           "error": "raised an error in its check"}[result.status]
    print(f"{name}: your function {why} — the cells below use the course's reference, "
          f"lm.{reference.__name__}, instead.")
    return reference
