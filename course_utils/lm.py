"""A character-level language model's working parts: batches, a truncated-BPTT step, perplexity, sampling.

These are the course's references for unit 06's exercises (the notebook shows each one whole)
and the helpers its measurements use. The model is any ``nn.Module`` called as
``model(tokens, state, return_state=True) -> (logits, state)``, as :class:`course_utils.training.CharLM`:
tokens ``(N, T)`` long, logits ``(N, T, V)``, state a tensor (RNN, GRU) or a tuple ``(h, c)`` (LSTM).

Notation: a text of indices x_0, x_1, ...; the model reads x_0..x_t and gives p(. | x_0..x_t), a
distribution over the next character x_{t+1}.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["make_batches", "detach_state", "tbptt_step", "perplexity", "next_char_probs", "sample",
           "sequence_loss", "next_char_entropy", "words", "real_word_share", "ngram_log_probs", "ngram_loss"]


# ------------------------------------------------------------------- batches
def make_batches(encoded: Tensor, batch_size: int, seq_len: int) -> tuple[Tensor, Tensor]:
    """Cut a text into ``batch_size`` contiguous streams and the streams into chunks of ``seq_len``.

    Row ``n`` of chunk ``k + 1`` continues row ``n`` of chunk ``k``, so the state a model ends a
    chunk with is the right state to start the next one with (truncated BPTT carries it).
    The targets are the inputs shifted by one: the character *after* each input character.

    Args:
        encoded: (L,) long, the text as indices.
        batch_size: N, the number of streams.
        seq_len: T, the length of a chunk.

    Returns:
        inputs, targets: (K, N, T) long each, K = (L // N - 1) // T, with
        ``targets[k, n, t] = inputs[k, n, t + 1]`` inside a chunk; the characters left over at the
        end of the text (fewer than a whole chunk or a whole stream) are dropped.
    """
    if encoded.dim() != 1:
        raise ValueError(f"make_batches: expected a 1-D text, got shape {tuple(encoded.shape)}")
    stream_len = len(encoded) // batch_size  # L_s characters per stream
    streams = encoded[:batch_size * stream_len].reshape(batch_size, stream_len)  # (N, L_s)
    chunks = (stream_len - 1) // seq_len  # K: the last target needs one character more
    if chunks < 1:
        raise ValueError(f"make_batches: a text of {len(encoded)} characters is too short for "
                         f"{batch_size} streams of at least {seq_len + 1} characters")
    used = chunks * seq_len
    # x_t is the input, x_{t+1} its target
    inputs = streams[:, :used].reshape(batch_size, chunks, seq_len).transpose(0, 1)  # (K, N, T)
    targets = streams[:, 1:used + 1].reshape(batch_size, chunks, seq_len).transpose(0, 1)  # (K, N, T)
    return inputs.contiguous(), targets.contiguous()


# ------------------------------------------------------------ truncated BPTT
def detach_state(state):
    """The state cut from the graph that made it: ``None``, a tensor, or a tuple of tensors ``(h, c)``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return tuple(detach_state(s) for s in state)


def tbptt_step(model: nn.Module, x: Tensor, y: Tensor, state=None) -> tuple[Tensor, object]:
    """One step of truncated backpropagation through time on one chunk; the caller steps the optimizer.

    The carried state is detached first: gradients flow through the ``T`` steps of this chunk and
    stop at its start (without that, backward would try to go through every earlier chunk too).

    Args:
        model: ``model(x, state, return_state=True) -> (logits (N, T, V), new_state)``.
        x, y: (N, T) long, inputs and targets (the next characters).
        state: the state the previous chunk ended with, or ``None`` (zeros) at the start.

    Returns:
        (loss, new_state): the mean cross-entropy over the N·T predictions (a 0-d tensor, detached)
        and the state at the end of the chunk (detached). The gradients of the loss are left in the
        parameters' ``.grad`` (the old ones are cleared first).
    """
    state = detach_state(state)  # truncate: no gradient flows into earlier chunks
    logits, new_state = model(x, state, return_state=True)  # (N, T, V)
    # L = -1/(N T) Σ_{n,t} log p(y_{n,t} | x_{n,≤t})
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))  # (N·T, V) against (N·T,)
    model.zero_grad(set_to_none=True)  # clear the previous chunk's gradients
    loss.backward()
    return loss.detach(), detach_state(new_state)


# ---------------------------------------------------------------- perplexity
def perplexity(logits: Tensor, targets: Tensor) -> Tensor:
    """exp of the mean cross-entropy: the number of characters the model is as unsure as choosing among.

    Args:
        logits: (N, T, V) unnormalised scores.
        targets: (N, T) long, the true next characters.

    Returns:
        a 0-d tensor, PPL = exp(-1/(N T) Σ_{n,t} log softmax(logits_{n,t})[targets_{n,t}]).
    """
    log_p = torch.log_softmax(logits, dim=-1)  # (N, T, V)
    # log p_θ(y_{n,t} | x_{n,≤t}), the log-probability of each true next character
    log_p_true = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N, T)
    # PPL = exp(-mean log p)
    return torch.exp(-log_p_true.mean())


@torch.no_grad()
def sequence_loss(model: nn.Module, encoded: Tensor, start: int = 1, device=None) -> float:
    """Mean cross-entropy (nats per character) of predicting ``encoded[t]`` from ``encoded[:t]``, for t >= start.

    The model reads the whole text once from a zero state, so the first characters scored
    (``start``) are predicted with everything before them as context, like the training chunks.
    """
    was_training = model.training
    model.eval()
    tokens = encoded.to(device) if device is not None else encoded
    logits, _ = model(tokens[None, :-1], None, return_state=True)  # (1, L-1, V)
    log_p = torch.log_softmax(logits[0].float(), dim=-1)  # (L-1, V): row t predicts encoded[t+1]
    log_p_true = log_p.gather(-1, tokens[1:, None]).squeeze(-1)  # (L-1,)
    model.train(was_training)
    return float(-log_p_true[start - 1:].mean())


@torch.no_grad()
def next_char_entropy(model: nn.Module, encoded: Tensor, temperature: float = 1.0, device=None) -> float:
    """Mean entropy (nats) of softmax(logits / temperature) over every position of ``encoded``.

    H = -Σ_v p_v log p_v with p = softmax(z / τ): 0 when one character is certain, ln V when all are equal.
    """
    was_training = model.training
    model.eval()
    tokens = encoded.to(device) if device is not None else encoded
    logits, _ = model(tokens[None], None, return_state=True)  # (1, L, V)
    log_p = torch.log_softmax(logits[0].float() / temperature, dim=-1)  # (L, V)
    model.train(was_training)
    return float(-(log_p.exp() * log_p).sum(-1).mean())


# ------------------------------------------------------------------ sampling
def next_char_probs(logits: Tensor, temperature: float) -> Tensor:
    """p = softmax(z / τ): τ < 1 sharpens the distribution, τ > 1 flattens it, τ = 1 leaves it."""
    if not temperature > 0:
        raise ValueError(f"next_char_probs: expected a temperature > 0, got {temperature!r}")
    return torch.softmax(logits / temperature, dim=-1)


@torch.no_grad()
def sample(model: nn.Module, prefix: Tensor, length: int, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> Tensor:
    """Continue ``prefix`` by ``length`` characters, each drawn from softmax(logits / temperature).

    The prefix is read once; then each drawn character is fed back with the carried state.
    Each character is one draw ``torch.multinomial(p, 1, generator=generator)`` of the CPU
    probabilities ``p`` (V,), so a seeded generator gives the same text on every device.

    Args:
        prefix: (P,) long, P >= 1.
        length: the number of characters to draw.

    Returns:
        (length,) long, the drawn characters (without the prefix).
    """
    if prefix.dim() != 1 or len(prefix) == 0:
        raise ValueError(f"sample: expected a non-empty 1-D prefix, got shape {tuple(prefix.shape)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, state = model(prefix[None].to(device), None, return_state=True)  # (1, P, V)
    drawn = []
    for _ in range(length):
        p = next_char_probs(logits[0, -1].float().cpu(), temperature)  # (V,)
        nxt = torch.multinomial(p, 1, generator=generator)  # (1,)
        drawn.append(int(nxt))
        logits, state = model(nxt[None].to(device), state, return_state=True)  # (1, 1, V), fed back
    model.train(was_training)
    return torch.tensor(drawn, dtype=torch.long)


# --------------------------------------------------------- words in a sample
def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters (an apostrophe inside a word is kept), lower-cased."""
    return re.findall(r"[a-z]+(?:'[a-z]+)*", text.lower())


def real_word_share(sample_text: str, vocabulary: set[str]) -> float:
    """The share of the words of ``sample_text`` that are in ``vocabulary`` (0.0 for a sample without words)."""
    found = words(sample_text)
    return sum(w in vocabulary for w in found) / len(found) if found else 0.0


# ------------------------------------------------------------ n-gram counts
def ngram_log_probs(encoded: Tensor, vocab_size: int, order: int = 2, k: float = 1.0) -> Tensor:
    """Add-k smoothed n-gram log-probabilities, counted on ``encoded``.

    P(c | context) = (count(context, c) + k) / (count(context) + k V): every character keeps a
    little probability, however rare its context.

    Returns:
        (V,) * order float64 tensor: ``table[a, b] = log P(b | a)`` for order 2, ``table[a, b, c]``
        for order 3.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"ngram_log_probs: expected order 1, 2 or 3, got {order!r}")
    V = vocab_size
    idx = sum(encoded[i:len(encoded) - order + 1 + i] * V ** (order - 1 - i) for i in range(order))  # (L-order+1,)
    counts = torch.bincount(idx, minlength=V ** order).reshape((V,) * order).double()  # (V,) * order
    return torch.log((counts + k) / (counts + k).sum(-1, keepdim=True))


def ngram_loss(table: Tensor, encoded: Tensor, start: int) -> float:
    """Mean cross-entropy (nats per character) of an n-gram table on ``encoded[t]`` for t >= start."""
    order = table.dim()
    t = torch.arange(max(start, order - 1), len(encoded))  # positions scored
    context = tuple(encoded[t - order + 1 + i] for i in range(order - 1))
    return float(-table[context + (encoded[t],)].mean())

