"""Checks for unit 06's exercises: ``make_batches``, ``tbptt_step``, ``perplexity`` and ``sample``.

``make_batches`` and ``perplexity`` take plain tensors and are checked here by
:func:`.harness.check_function`. ``tbptt_step`` and ``sample`` take a model (and ``sample`` a
``torch.Generator``); their checks live in :mod:`.lm_model` and are exported here too.

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

import torch
from torch import Tensor

from .. import lm as ref
from .harness import Case, FunctionExercise, Malformed, Mistake, check_function, expect_tensor, notebook_check
from .lm_model import check_sample, check_tbptt_step
from .result import CheckResult, type_name

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
           "error": "raised an error in its check",
           "uses_reference": "calls the reference instead of computing the result"}[result.status]
    print(f"{name}: your function {why} — the cells below use the course's reference, "
          f"lm.{reference.__name__}, instead.")
    return reference
