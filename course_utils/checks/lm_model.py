"""Checks for unit 06's exercises that take a model: ``tbptt_step`` and ``sample``.

Both take a :class:`course_utils.training.CharLM` over ``torch.nn`` layers, and ``sample`` a
``torch.Generator``; every call (the learner's, the reference's, each deliberate mistake's) gets its
own fresh model, state and generator from the check's seed (:mod:`.model_calls`), and the check reads
the returned values and the model's parameters' ``.grad`` after the call. Mistake ids: see :mod:`.lm`.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import lm as ref
from ..training import CharLM
from .harness import Malformed, Mistake, notebook_check
from .model_calls import ModelCase, close, judge
from .result import CheckResult, type_name

__all__ = ["check_tbptt_step", "check_sample"]


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


def _tbptt_cases(seed: int) -> list[ModelCase]:
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
        ModelCase(f"an LSTM CharLM, state None ({size})", first("lstm")),
        ModelCase(f"an LSTM CharLM, state (h, c) carried from a previous chunk and still attached to its graph "
                   f"({size})", carried("lstm")),
        ModelCase(f"a GRU CharLM, state h carried from a previous chunk ({size})", carried("gru")),
        ModelCase(f"two calls in a row on an LSTM CharLM, the second with the state the first returned ({size})",
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
    return judge("tbptt_step", fn, _tbptt_cases(seed), ref.tbptt_step, _tbptt_mistakes(), _tbptt_read, max_points,
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


def _sample_cases(seed: int) -> list[ModelCase]:
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

        article = "an" if cell in ("lstm", "rnn") else "a"
        cases.append(ModelCase(f"{article} {cell.upper()} CharLM (V={V}), a prefix of {p_len}, length={length}, "
                                f"temperature={temperature}, a seeded generator", run))
    return cases


@notebook_check
def check_sample(fn, *, max_points: float = 1, seed: int = 636) -> CheckResult:
    """Check ``sample(model, prefix, length, temperature, generator)`` against :func:`course_utils.lm.sample`.

    Every character must be one draw ``torch.multinomial(p, 1, generator=generator)`` with
    p = softmax(logits / temperature), so that a seeded generator gives the reference's characters.
    """
    def again(case: ModelCase, got) -> Mistake | None:  # a second call: is the answer random?
        try:
            second = _sample_read(*case.run(fn))
        except Exception:
            return None
        return None if close(second[0][1], dict(got)["sample"], 0) else _GENERATOR_NOT_USED

    return judge("sample", fn, _sample_cases(seed), ref.sample, _sample_mistakes(), _sample_read, max_points,
                  signature="sample(model, prefix, length, temperature, generator) -> (length,) long tensor",
                  coverage="4 models and prefixes (LSTM and GRU, temperatures 0.5 to 2.0, seeded generators)",
                  shape_hint=lambda n, e, g: ("return only the drawn characters, without the prefix."
                                              if g and e and g[0] > e[0] else None),
                  after_wrong=again)


