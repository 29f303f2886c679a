"""Seeded synthetic tasks and an offline text corpus: nothing is downloaded.

Every generator takes a ``torch.Generator`` (or a ``seed``) and a ``device``; batches
are created on the CPU from that generator (so a seed gives the same data on every
device) and moved to ``device``. Sequences are batch-first: ``(N, T, features)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import torch
from torch import Tensor

__all__ = ["adding_problem", "ADDING_BASELINE_MSE", "copy_task", "sine_wave", "load_text", "CharVocab",
           "char_batches", "make_generator", "TEXTS"]

#: MSE of always predicting the mean (1.0): the variance of a sum of two U(0, 1) numbers, 2/12.
ADDING_BASELINE_MSE = 1.0 / 6.0

TEXTS = ("sonnets", "zen")


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """Use ``generator`` if given, else a new CPU generator seeded with ``seed`` (default 0)."""
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(0 if seed is None else seed)


def _check_positive(owner: str, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{owner}: expected {name} to be an int >= 1, got {value!r}")


def adding_problem(batch_size: int, seq_len: int, *, generator: torch.Generator | None = None,
                   seed: int | None = None, device=None, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """The adding problem (Hochreiter & Schmidhuber, 1997): add the two marked numbers.

    Each step carries two features: a number drawn from U(0, 1) and a marker that is 1 at
    exactly two steps, one in the first half of the sequence and one in the second half.
    The target is the sum of the two marked numbers. Predicting the mean (1.0) gives an
    MSE of :data:`ADDING_BASELINE_MSE` ≈ 0.167; a model has learned the task when it is
    far below that.

    Returns:
        x: (N, T, 2), y: (N,)
    """
    _check_positive("adding_problem", batch_size=batch_size, seq_len=seq_len)
    if seq_len < 2:
        raise ValueError(f"adding_problem: expected seq_len >= 2 (two marked steps), got {seq_len}")
    g = make_generator(seed, generator)
    values = torch.rand(batch_size, seq_len, generator=g)  # (N, T)
    half = seq_len // 2
    first = torch.randint(0, half, (batch_size,), generator=g)  # (N,)
    second = torch.randint(half, seq_len, (batch_size,), generator=g)  # (N,)
    markers = torch.zeros(batch_size, seq_len)  # (N, T)
    rows = torch.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (N, T, 2)
    # y = x_a + x_b, the two marked values
    y = values[rows, first] + values[rows, second]  # (N,)
    return x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)


def copy_task(batch_size: int, delay: int, *, n_symbols: int = 8, pattern_len: int = 5,
              generator: torch.Generator | None = None, seed: int | None = None,
              device=None) -> tuple[Tensor, Tensor]:
    """The copy (recall) task: see a pattern, wait ``delay`` steps, then repeat the pattern.

    Inputs are one-hot over ``n_symbols + 2`` channels (the symbols, a blank, a "go" cue).
    The sequence is the pattern, ``delay`` blanks, one "go" cue, then ``pattern_len - 1`` blanks;
    the model must output the pattern on the last ``pattern_len`` steps and the blank before.
    Guessing gives a cross-entropy of ln(n_symbols) on the recall steps.

    Returns:
        x: (N, T, n_symbols + 2) float, y: (N, T) long class indices (blank = n_symbols),
        with T = 2·pattern_len + delay.
    """
    _check_positive("copy_task", batch_size=batch_size, n_symbols=n_symbols, pattern_len=pattern_len)
    if not isinstance(delay, int) or delay < 0:
        raise ValueError(f"copy_task: expected delay to be an int >= 0, got {delay!r}")
    g = make_generator(seed, generator)
    blank, go = n_symbols, n_symbols + 1
    T = 2 * pattern_len + delay
    pattern = torch.randint(0, n_symbols, (batch_size, pattern_len), generator=g)  # (N, P)
    tokens = torch.full((batch_size, T), blank)  # (N, T)
    tokens[:, :pattern_len] = pattern
    tokens[:, pattern_len + delay] = go
    target = torch.full((batch_size, T), blank)  # (N, T)
    target[:, T - pattern_len:] = pattern
    x = torch.nn.functional.one_hot(tokens, n_symbols + 2).float()  # (N, T, n_symbols + 2)
    return x.to(device), target.to(device)


def sine_wave(batch_size: int, seq_len: int, *, generator: torch.Generator | None = None,
              seed: int | None = None, noise: float = 0.0, device=None,
              dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """A small sequence-regression task: predict the next value of a sine wave.

    Each sequence has its own angular frequency (0.2 to 0.6 radians per step)
    and phase. The model reads x_0..x_{T-1} and predicts x_1..x_T.

    Returns:
        x: (N, T, 1), y: (N, T, 1)
    """
    _check_positive("sine_wave", batch_size=batch_size, seq_len=seq_len)
    g = make_generator(seed, generator)
    omega = 0.2 + 0.4 * torch.rand(batch_size, 1, generator=g)  # (N, 1) radians per step
    phase = 2 * math.pi * torch.rand(batch_size, 1, generator=g)  # (N, 1)
    t = torch.arange(seq_len + 1, dtype=torch.float32)  # (T+1,)
    wave = torch.sin(omega * t + phase)  # (N, T+1)
    if noise:
        wave = wave + noise * torch.randn(wave.shape, generator=g)
    x, y = wave[:, :-1, None], wave[:, 1:, None]  # (N, T, 1) each
    return x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)


# ------------------------------------------------------------------------ text
def load_text(name: str = "sonnets") -> str:
    """A text that ships with Python or with this package.

    ``"sonnets"``: eight of Shakespeare's sonnets (public domain; see ``corpus/README.md``).
    ``"zen"``: the Zen of Python, which every Python install carries in the ``this`` module.
    """
    if name == "sonnets":
        return resources.files("course_utils").joinpath("corpus", "sonnets.txt").read_text(encoding="utf-8")
    if name == "zen":
        import codecs
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # `import this` prints the poem on first import
            import this
        return codecs.decode(this.s, "rot13")
    raise ValueError(f"load_text: expected one of {TEXTS}, got {name!r}")


@dataclass(frozen=True)
class CharVocab:
    """A character vocabulary: ``encode`` text to indices, ``decode`` indices to text."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        missing = sorted(set(text) - set(index))
        if missing:
            raise ValueError(f"CharVocab.encode: expected characters from the vocabulary, got {missing[:5]!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)  # (len(text),)

    def decode(self, indices) -> str:
        return "".join(self.chars[int(i)] for i in indices)


def char_batches(encoded: Tensor, batch_size: int, seq_len: int, *, generator: torch.Generator | None = None,
                 seed: int | None = None, device=None) -> tuple[Tensor, Tensor]:
    """Random windows of an encoded text: inputs and the next character at each step.

    Returns:
        x: (N, T) long, y: (N, T) long, where y[:, t] is the character after x[:, t].
    """
    _check_positive("char_batches", batch_size=batch_size, seq_len=seq_len)
    if encoded.dim() != 1 or len(encoded) <= seq_len:
        raise ValueError(f"char_batches: expected a 1-D text longer than seq_len={seq_len}, "
                         f"got shape {tuple(encoded.shape)}")
    g = make_generator(seed, generator)
    starts = torch.randint(0, len(encoded) - seq_len, (batch_size,), generator=g)  # (N,)
    idx = starts[:, None] + torch.arange(seq_len + 1)  # (N, T+1)
    windows = encoded[idx]  # (N, T+1)
    return windows[:, :-1].to(device), windows[:, 1:].to(device)
