"""Check for the comparison unit's exercise: a ``build_model()`` that learns the adding problem.

The check builds the learner's model, checks its output shape on a small batch, trains it
with :func:`course_utils.training.fit` for a fixed budget and measures the MSE on a fixed
test set. Everything random (the model's initialisation included) happens inside
``torch.random.fork_rng`` with the check's own seed, so the check is repeatable and the
caller's random state is left as it was.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import ADDING_BASELINE_MSE, adding_problem
from ..training import fit
from .harness import notebook_check
from .result import CheckResult, fmt, not_implemented, raised, type_name

__all__ = ["check_adding_model", "ADDING_SEQ_LEN", "ADDING_STEPS", "ADDING_BATCH_SIZE", "ADDING_LR",
           "ADDING_TARGET_MSE", "ADDING_TEST_SIZE", "ADDING_NUM_THREADS"]

EXERCISE = "build_model"
ADDING_SEQ_LEN = 30
ADDING_STEPS = 800  # LSTM H=32 or 64 passed on 10 of 10 seeds (500 steps: 8 of 10)
ADDING_BATCH_SIZE = 64
ADDING_LR = 1e-2
ADDING_CLIP = 1.0
ADDING_TARGET_MSE = 0.05
ADDING_TEST_SIZE = 1000
ADDING_NUM_THREADS = 1
#: a test MSE above this share of the baseline means the model learned (almost) nothing
NOT_LEARNING_SHARE = 0.8
_PROBE_SIZES = (4, 1)


def _wrong(message: str, max_points: float) -> CheckResult:
    return CheckResult(EXERCISE, "wrong", 0, max_points, f"{EXERCISE}: {message}")


def _shape_problem(out, n: int, seq_len: int) -> str | None:
    """What is wrong with the model's output for an (n, seq_len, 2) input, or None."""
    if isinstance(out, (tuple, list)):
        return (f"your model returns a {type(out).__name__} ({type_name(out)}), expected one tensor of shape "
                f"({n},) or ({n}, 1). Note that `nn.LSTM` returns `(output, (h_n, c_n))`: take the last step "
                f"of `output` and pass it through a linear layer.")
    if not isinstance(out, Tensor):
        return f"your model returns {type_name(out)}, expected a tensor of shape ({n},) or ({n}, 1)"
    shape = tuple(out.shape)
    if shape in ((n,), (n, 1)):
        return None if out.is_floating_point() else f"expected a floating-point output, got dtype {out.dtype}"
    text = f"expected an output of shape ({n},) or ({n}, 1) for an input of shape ({n}, {seq_len}, 2), got {shape}"
    if len(shape) >= 2 and shape[:2] == (n, seq_len):
        text += (". It looks like one value per time step: read out the last step only, "
                 "e.g. `self.head(output[:, -1])`.")
    elif len(shape) >= 2 and shape[0] == seq_len:
        text += ". It looks time-major: create the recurrent layer with `batch_first=True`."
    elif n == 1 and shape == ():
        text += ". `squeeze()` removed the batch dimension too when N = 1: use `squeeze(-1)`."
    return text


@notebook_check
def check_adding_model(build_model, *, seq_len: int = ADDING_SEQ_LEN, steps: int = ADDING_STEPS,
                       batch_size: int = ADDING_BATCH_SIZE, lr: float = ADDING_LR, clip: float | None = ADDING_CLIP,
                       target_mse: float = ADDING_TARGET_MSE, test_size: int = ADDING_TEST_SIZE, seed: int = 0,
                       num_threads: int | None = ADDING_NUM_THREADS, max_points: float = 1) -> CheckResult:
    """Train the model that ``build_model()`` returns on the adding problem and check its test MSE.

    ``build_model()`` must return an ``nn.Module`` mapping a batch-first ``(N, T, 2)`` float
    tensor to ``(N,)`` or ``(N, 1)``. It is trained with Adam (``lr``), gradients clipped to
    ``clip``, for ``steps`` steps of ``batch_size`` sequences of length ``seq_len``, and
    passes when the MSE on ``test_size`` fresh sequences is below ``target_mse``. Predicting
    the mean gives :data:`course_utils.data.ADDING_BASELINE_MSE` ≈ 0.167; a result near that
    is reported as "does not learn".

    ``num_threads``: torch's CPU threads while the check runs (restored afterwards). One thread
    is the fastest for models this small, and many times faster than two on a busy machine;
    ``None`` leaves the setting alone.
    """
    if not callable(build_model):
        return CheckResult(EXERCISE, "error", 0, max_points,
                           f"{EXERCISE}: expected a function that builds the model, got {type_name(build_model)} — "
                           f"pass the function itself: `check_adding_model(build_model)`.")
    threads = torch.get_num_threads()
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with torch.random.fork_rng(devices=[]):  # the model's initialisation is seeded, the caller's RNG untouched
            torch.manual_seed(seed)
            return _run(build_model, seq_len, steps, batch_size, lr, clip, target_mse, test_size, seed, max_points)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _run(build_model, seq_len, steps, batch_size, lr, clip, target_mse, test_size, seed, max_points) -> CheckResult:
    try:
        model = build_model()
    except NotImplementedError:
        return not_implemented(EXERCISE, max_points)
    except Exception as exc:
        return raised(EXERCISE, exc, max_points, who="build_model()")
    if model is None:
        return _wrong("build_model() returned None — did you forget the `return` statement?", max_points)
    if not isinstance(model, nn.Module):
        return _wrong(f"expected build_model() to return an nn.Module, got {type_name(model)}", max_points)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return _wrong("your model has no trainable parameters (expected e.g. an nn.LSTM and an nn.Linear).",
                      max_points)
    device = params[0].device

    probe_gen = torch.Generator().manual_seed(seed + 1)
    for n in _PROBE_SIZES:
        x, _ = adding_problem(n, seq_len, generator=probe_gen, device=device)
        try:
            with torch.no_grad():
                out = model(x)
        except NotImplementedError:
            return not_implemented(EXERCISE, max_points)
        except Exception as exc:
            return raised(EXERCISE, exc, max_points, who="your model's forward()",
                          during=f"an input of shape ({n}, {seq_len}, 2), batch-first")
        problem = _shape_problem(out, n, seq_len)
        if problem:
            return _wrong(problem, max_points)

    train_gen = torch.Generator().manual_seed(seed + 2)

    def batch_fn(step: int) -> tuple[Tensor, Tensor]:
        return adding_problem(batch_size, seq_len, generator=train_gen, device=device)

    def loss_fn(pred: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(pred.reshape(-1), y)

    try:
        fit(model, batch_fn, loss_fn, steps, lr=lr, clip=clip, progress=False)
    except FloatingPointError as exc:
        return _wrong(f"training diverged: {exc}. Check for operations that can overflow "
                      f"(e.g. an exp without a bound).", max_points)
    except Exception as exc:
        return raised(EXERCISE, exc, max_points, who="your model (during training)")

    x_test, y_test = adding_problem(test_size, seq_len, generator=torch.Generator().manual_seed(seed + 3),
                                    device=device)
    model.eval()
    with torch.no_grad():
        mse = float(F.mse_loss(model(x_test).reshape(-1).float(), y_test))
    budget = f"{steps} training steps (batch {batch_size}, T={seq_len})"
    if mse < target_mse:
        return CheckResult(EXERCISE, "passed", max_points, max_points,
                           f"{EXERCISE}: passed — after {budget} the test MSE is below the target {target_mse} "
                           f"(predicting the mean gives {fmt(ADDING_BASELINE_MSE)}).")
    if not mse < NOT_LEARNING_SHARE * ADDING_BASELINE_MSE:  # also catches nan
        return _wrong(f"your model does not learn: after {budget} its test MSE is {fmt(mse)}, no better than the "
                      f"{fmt(ADDING_BASELINE_MSE)} of always predicting the mean (1.0); the target is below "
                      f"{target_mse}. Check that the model reads the whole sequence (`batch_first=True`), "
                      f"reads out the last time step, and that every layer's output is used.", max_points)
    return _wrong(f"your model learns, but not enough: after {budget} its test MSE is {fmt(mse)}, the target is "
                  f"below {target_mse} (predicting the mean gives {fmt(ADDING_BASELINE_MSE)}). A gated cell "
                  f"(LSTM or GRU) with a larger hidden size learns faster.", max_points)
