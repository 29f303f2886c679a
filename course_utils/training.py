"""A small, explicit training loop and the sequence models the notebooks train.

``fit`` is one loop a learner can read whole: draw a batch, forward, loss, backward,
optional clipping by the joint gradient norm, step, record. It returns a
:class:`History` of the loss and of the gradient norm before clipping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import modules

__all__ = ["fit", "History", "SequenceRegressor", "CharLM", "evaluate", "count_parameters", "RECURRENT",
           "summary_line"]

#: cell name -> (course_utils layer, torch.nn layer)
RECURRENT = {"rnn": (modules.RNN, nn.RNN), "lstm": (modules.LSTM, nn.LSTM), "gru": (modules.GRU, nn.GRU)}


@dataclass
class History:
    """What :func:`fit` recorded, one entry per step."""

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)

    def final_loss(self, last: int = 20) -> float:
        """Mean loss over the last ``last`` steps (training loss is noisy step to step)."""
        if not self.loss:
            raise ValueError("History.final_loss: expected at least one recorded step, got none")
        tail = self.loss[-last:]
        return sum(tail) / len(tail)


def fit(model: nn.Module, batch_fn: Callable[[int], tuple[Tensor, Tensor]], loss_fn: Callable[[Tensor, Tensor], Tensor],
        steps: int, *, lr: float = 1e-2, optimizer: torch.optim.Optimizer | None = None,
        clip: float | None = None, progress: bool = True, desc: str | None = None,
        history: History | None = None) -> History:
    """Train ``model`` for ``steps`` steps and return the loss and gradient-norm history.

    Args:
        model: any ``nn.Module``; it is put in training mode.
        batch_fn: ``batch_fn(step) -> (x, y)``, on the model's device.
        loss_fn: ``loss_fn(model(x), y) -> scalar``.
        steps: number of optimisation steps.
        lr: learning rate of the default optimizer, Adam.
        optimizer: use this optimizer instead of a new Adam.
        clip: if given, scale the gradients so their joint norm is at most ``clip``.
        progress: show a ``tqdm`` progress bar (in a notebook, a widget bar).
        desc: the progress bar's label.
        history: append to this history instead of a new one (to continue training).

    Returns:
        the :class:`History`; ``grad_norm`` holds the norm before clipping.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"fit: expected steps to be an int >= 0, got {steps!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("fit: expected a model with trainable parameters, got none")
    opt = optimizer if optimizer is not None else torch.optim.Adam(params, lr=lr)
    hist = history if history is not None else History()
    model.train()
    label = desc or type(model).__name__
    bar, shown = _progress_bar(steps, label, progress)
    for step in bar:
        x, y = batch_fn(step)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            bar.close()
            raise FloatingPointError(f"fit: expected a finite loss, got {loss.item()} at step {step} "
                                     f"(try a smaller lr or clip=1.0)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = clip if clip is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)  # ‖g‖ before clipping
        opt.step()
        hist.loss.append(loss.item())
        hist.grad_norm.append(norm.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{hist.loss[-1]:.4f}")
    bar.close()
    if shown is not None:  # the notebook's bar gives way to what the training reached
        shown.update(_Summary(summary_line(label, hist)))
    model.eval()
    return hist


def summary_line(label: str, history: History) -> str:
    """One line on what a training run reached: ``"LSTM: 300 steps, loss 0.1712 -> 0.0031"``."""
    if not history.loss:
        return f"{label}: 0 steps"
    return (f"{label}: {len(history.loss)} steps, loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f}")


class _Summary:
    """Plain text for a display (no quotes, unlike a str)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _progress_bar(steps: int, label: str, progress: bool):
    """``(bar, display handle)``: in a notebook the bar is a widget whose output is replaced, when training
    ends, by :func:`summary_line` (so a stored notebook shows what was reached, not a bar at 0 %)."""
    from tqdm.notebook import tqdm_notebook

    if progress and issubclass(tqdm, tqdm_notebook):
        from IPython.display import display
        bar = tqdm(range(steps), desc=label, leave=False, display=False)
        return bar, display(bar.container, display_id=True)
    return tqdm(range(steps), desc=label, disable=not progress, leave=False), None


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> float:
    """The loss of ``model`` on one batch, in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    value = loss_fn(model(x), y).item()
    model.train(was_training)
    return value


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class SequenceRegressor(nn.Module):
    """A recurrent layer and a linear read-out of the last step: (N, T, H_in) -> (N,) or (N, out).

    Args:
        cell: "rnn", "lstm" or "gru".
        input_size, hidden_size, num_layers: as for the recurrent layer.
        output_size: 1 gives an output of shape (N,).
        impl: "course" uses ``course_utils``' layers, "torch" uses ``torch.nn``'s (same parameters).
        every_step: read out every step, (N, T, out), instead of the last one; otherwise the
            output is (N, out), or (N,) when ``output_size`` is 1.
        forget_bias: added to the LSTM's forget-gate biases at initialisation.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int = 1, num_layers: int = 1,
                 impl: str = "course", every_step: bool = False, forget_bias: float = 0.0) -> None:
        super().__init__()
        if cell not in RECURRENT:
            raise ValueError(f"SequenceRegressor: expected cell 'rnn', 'lstm' or 'gru', got {cell!r}")
        if impl not in ("course", "torch"):
            raise ValueError(f"SequenceRegressor: expected impl 'course' or 'torch', got {impl!r}")
        layer_cls = RECURRENT[cell][0 if impl == "course" else 1]
        self.cell, self.output_size, self.every_step = cell, output_size, every_step
        self.rnn = layer_cls(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        if cell == "lstm" and forget_bias:
            H = hidden_size
            with torch.no_grad():
                for k in range(num_layers):
                    getattr(self.rnn, f"bias_ih_l{k}")[H:2 * H] += forget_bias  # forget-gate rows (i, f, g, o)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (N, T, H)
        if self.every_step:
            return self.head(out)  # (N, T, out), like the targets of data.sine_wave
        y = self.head(out[:, -1])  # (N, out)
        return y.squeeze(-1) if self.output_size == 1 else y  # (N,) for one output


class CharLM(nn.Module):
    """A character-level language model: embedding, recurrent layer, linear read-out to logits."""

    def __init__(self, vocab_size: int, cell: str = "lstm", embed_size: int = 32, hidden_size: int = 128,
                 num_layers: int = 1, impl: str = "torch") -> None:
        super().__init__()
        if cell not in RECURRENT:
            raise ValueError(f"CharLM: expected cell 'rnn', 'lstm' or 'gru', got {cell!r}")
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, embed_size)
        layer_cls = RECURRENT[cell][0 if impl == "course" else 1]
        self.rnn = layer_cls(embed_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: Tensor, state=None, return_state: bool = False):
        out, state = self.rnn(self.embed(tokens), state)  # (N, T, E) -> (N, T, H)
        logits = self.head(out)  # (N, T, V)
        return (logits, state) if return_state else logits

    @torch.no_grad()
    def sample(self, prompt: Tensor, length: int, *, temperature: float = 0.8,
               generator: torch.Generator | None = None) -> Tensor:
        """Continue ``prompt`` (a 1-D tensor of indices) by ``length`` sampled characters."""
        if prompt.dim() != 1 or len(prompt) == 0:
            raise ValueError(f"CharLM.sample: expected a non-empty 1-D prompt, got shape {tuple(prompt.shape)}")
        was_training = self.training
        self.eval()
        logits, state = self(prompt[None], return_state=True)  # (1, T, V)
        out = []
        for _ in range(length):
            probs = torch.softmax(logits[0, -1] / temperature, dim=-1).cpu()  # (V,)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (1,)
            out.append(int(nxt))
            logits, state = self(nxt.to(prompt.device)[None], state, return_state=True)
        self.train(was_training)
        return torch.tensor(out, dtype=torch.long)
