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
           "ADDING_TARGET_MSE", "ADDING_TEST_SIZE", "ADDING_NUM_THREADS",
           "MAX_PARAMETERS", "ABLATION_FACTOR", "describe_model", "model_forward", "train_model", "model_predict",
           "ablate_recurrent", "LocalModelRunner"]

EXERCISE = "build_model"
ADDING_SEQ_LEN = 30
ADDING_STEPS = 800  # LSTM H=32 or 64 passed on 10 of 10 seeds (500 steps: 8 of 10)
ADDING_BATCH_SIZE = 64
ADDING_LR = 1e-2
ADDING_CLIP = 1.0
ADDING_TARGET_MSE = 0.05
ADDING_TEST_SIZE = 1000
ADDING_NUM_THREADS = 1
#: a test MSE at or above this share of the baseline means the model learned (almost) nothing
NOT_LEARNING_SHARE = 0.8
_PROBE_SIZES = (4, 1)


def _wrong(message: str, max_points: float) -> CheckResult:
    return CheckResult(EXERCISE, "wrong", 0, max_points, f"{EXERCISE}: {message}")


def _shape_problem(out, n: int, seq_len: int) -> tuple[str, str] | None:
    """What is wrong with the model's output for an (n, seq_len, 2) input (message, mistake id), or None."""
    if isinstance(out, (tuple, list)):
        return (f"your model returns a {type(out).__name__} ({type_name(out)}), expected one tensor of shape "
                f"({n},) or ({n}, 1). Note that `nn.LSTM` returns `(output, (h_n, c_n))`: take the last step "
                f"of `output` and pass it through a linear layer.", "returns_tuple")
    if not isinstance(out, Tensor):
        return f"your model returns {type_name(out)}, expected a tensor of shape ({n},) or ({n}, 1)", "not_a_tensor"
    shape = tuple(out.shape)
    if shape in ((n,), (n, 1)):
        return None if out.is_floating_point() else (f"expected a floating-point output, got dtype {out.dtype}",
                                                     "wrong_dtype")
    text = f"expected an output of shape ({n},) or ({n}, 1) for an input of shape ({n}, {seq_len}, 2), got {shape}"
    if len(shape) >= 2 and shape[:2] == (n, seq_len):
        return (text + ". It looks like one value per time step: read out the last step only, "
                "e.g. `self.head(output[:, -1])`.", "every_step_output")
    if len(shape) >= 2 and shape[0] == seq_len:
        return text + ". It looks time-major: create the recurrent layer with `batch_first=True`.", "time_major"
    if n == 1 and shape == ():
        return (text + ". `squeeze()` removed the batch dimension too when N = 1: use `squeeze(-1)`.",
                "squeeze_all")
    return text, "wrong_shape"


# ----------------------------------------------------- the steps, where the model lives
#: layer classes that count as "a recurrent layer" (torch.nn's and the course's, cells included)
def _recurrent_classes() -> tuple:
    from .. import modules
    return (nn.RNNBase, nn.RNNCellBase, modules.RNN, modules.LSTM, modules.GRU, modules.RNNCell, modules.LSTMCell,
            modules.GRUCell)


def describe_model(model) -> dict:
    """What the check needs to know of the built model, as plain values."""
    if not isinstance(model, nn.Module):
        return {"is_module": False, "type": type_name(model)}
    recurrent = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _recurrent_classes())})
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"is_module": True, "type": type(model).__name__, "trainable": trainable, "recurrent": recurrent}


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def model_forward(model: nn.Module, x: Tensor):
    with torch.no_grad():
        return model(x.to(_device(model)))


def train_model(model: nn.Module, *, seed: int, steps: int, batch_size: int, seq_len: int, lr: float,
                clip: float | None) -> dict:
    """Train ``model`` on fresh adding-problem batches drawn from ``seed``; ``{"diverged": message or None}``."""
    torch.manual_seed(seed)
    gen, device = torch.Generator().manual_seed(seed + 2), _device(model)

    def batch_fn(step: int) -> tuple[Tensor, Tensor]:
        return adding_problem(batch_size, seq_len, generator=gen, device=device)

    def loss_fn(pred: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(pred.reshape(-1), y)

    try:
        fit(model, batch_fn, loss_fn, steps, lr=lr, clip=clip, progress=False)
    except FloatingPointError as exc:
        return {"diverged": str(exc)[:200]}
    return {"diverged": None}


def model_predict(model: nn.Module, x: Tensor) -> Tensor:
    model.eval()
    with torch.no_grad():
        return model(x.to(_device(model))).reshape(-1).float().cpu()


def ablate_recurrent(model: nn.Module) -> int:
    """Give every recurrent layer fresh random parameters (seeded); return how many layers were reset."""
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12345)
        for m in model.modules():
            if isinstance(m, _recurrent_classes()) and hasattr(m, "reset_parameters"):
                m.reset_parameters()
                count += 1
    return count


class LocalModelRunner:
    """``build_model`` run in this process (a notebook); the grader's runner does the same in its sandbox."""

    def __init__(self, build_model):
        self.build_model, self.model = build_model, None

    def build(self) -> dict:
        self.model = self.build_model()
        return describe_model(self.model)

    def forward(self, x):
        return model_forward(self.model, x)

    def train(self, **settings) -> dict:
        return train_model(self.model, **settings)

    def predict(self, x):
        return model_predict(self.model, x)

    def ablate(self) -> int:
        return ablate_recurrent(self.model)


#: larger models take too long to train within the check's budget (a 256-unit LSTM has about 266,000)
MAX_PARAMETERS = 100_000
#: after its recurrent layers get fresh parameters, a model that uses them must lose at least this much
ABLATION_FACTOR = 3.0


@notebook_check
def check_adding_model(build_model, *, seq_len: int = ADDING_SEQ_LEN, steps: int = ADDING_STEPS,
                       batch_size: int = ADDING_BATCH_SIZE, lr: float = ADDING_LR, clip: float | None = ADDING_CLIP,
                       target_mse: float = ADDING_TARGET_MSE, test_size: int = ADDING_TEST_SIZE, seed: int = 0,
                       num_threads: int | None = ADDING_NUM_THREADS, max_points: float = 1) -> CheckResult:
    """Train the model that ``build_model()`` returns on the adding problem and check its test MSE.

    ``build_model()`` must return an ``nn.Module`` with a recurrent layer (``torch.nn``'s or the
    course's RNN/LSTM/GRU, or their cells) mapping a batch-first ``(N, T, 2)`` float tensor to
    ``(N,)`` or ``(N, 1)``. It is trained with Adam (``lr``), gradients clipped to ``clip``, for
    ``steps`` steps of ``batch_size`` sequences of length ``seq_len``, and passes when the MSE
    on ``test_size`` fresh sequences is below ``target_mse`` *and* the model needs its trained
    recurrent layer: with that layer's parameters drawn afresh, the MSE must rise at least
    :data:`ABLATION_FACTOR`-fold (a formula that adds the marked values without learning fails).
    Predicting the mean gives :data:`course_utils.data.ADDING_BASELINE_MSE` ≈ 0.167.

    ``num_threads``: torch's CPU threads while the check runs (restored afterwards). One thread
    is the fastest for models this small, and many times faster than two on a busy machine;
    ``None`` leaves the setting alone. The grader passes a runner that does each step in the
    learner's sandboxed kernel instead of ``build_model`` itself; the judging is the same.
    """
    runner = build_model if hasattr(build_model, "ablate") and hasattr(build_model, "build") else None
    if isinstance(build_model, nn.Module):  # callable too, but calling it runs forward() with no input
        return CheckResult(EXERCISE, "error", 0, max_points,
                           f"{EXERCISE}: expected the function that builds the model, got the model itself "
                           f"({type(build_model).__name__}) — the check builds a fresh one for each run: "
                           f"`check_adding_model(build_model)`, not `check_adding_model(build_model())`.")
    if runner is None and not callable(build_model):
        return CheckResult(EXERCISE, "error", 0, max_points,
                           f"{EXERCISE}: expected a function that builds the model, got {type_name(build_model)} — "
                           f"pass the function itself: `check_adding_model(build_model)`.")
    runner = runner or LocalModelRunner(build_model)
    threads = torch.get_num_threads()
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with torch.random.fork_rng(devices=[]):  # the model's initialisation is seeded, the caller's RNG untouched
            torch.manual_seed(seed)
            return _run(runner, seq_len, steps, batch_size, lr, clip, target_mse, test_size, seed, max_points)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _wrong_id(message: str, max_points: float, mistake: str) -> CheckResult:
    return CheckResult(EXERCISE, "wrong", 0, max_points, f"{EXERCISE}: {message}", (mistake,))


def _run(runner, seq_len, steps, batch_size, lr, clip, target_mse, test_size, seed, max_points) -> CheckResult:
    try:
        info = runner.build()
    except NotImplementedError:
        return not_implemented(EXERCISE, max_points)
    except Exception as exc:
        return raised(EXERCISE, exc, max_points, who="build_model()")
    if not info.get("is_module"):
        if info.get("type") == "None":
            return _wrong("build_model() returned None — did you forget the `return` statement?", max_points)
        return _wrong(f"expected build_model() to return an nn.Module, got {info.get('type')}", max_points)
    if not info.get("trainable"):
        return _wrong_id("your model has no trainable parameters (expected e.g. an nn.LSTM and an nn.Linear).",
                         max_points, "no_parameters")
    if info["trainable"] > MAX_PARAMETERS:
        return _wrong_id(f"your model has {info['trainable']:,} trainable parameters; keep it under {MAX_PARAMETERS:,} "
                         f"(e.g. hidden size 32 to 64): the check trains it for a fixed budget on a CPU.",
                         max_points, "too_large")
    if not info.get("recurrent"):
        return _wrong_id("your model has no recurrent layer: the exercise asks for one (nn.RNN, nn.LSTM or nn.GRU, "
                         "or the course's), read out at the last time step.", max_points, "no_recurrent_layer")

    probe_gen = torch.Generator().manual_seed(seed + 1)
    for n in _PROBE_SIZES:
        x, _ = adding_problem(n, seq_len, generator=probe_gen)
        try:
            out = runner.forward(x)
        except NotImplementedError:
            return not_implemented(EXERCISE, max_points)
        except Exception as exc:
            return raised(EXERCISE, exc, max_points, who="your model's forward()",
                          during=f"an input of shape ({n}, {seq_len}, 2), batch-first",
                          hint=_tuple_hint(exc))
        problem = _shape_problem(out, n, seq_len)
        if problem:
            return _wrong_id(problem[0], max_points, problem[1])

    try:
        trained = runner.train(seed=seed, steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr, clip=clip)
    except Exception as exc:
        return raised(EXERCISE, exc, max_points, who="your model (during training)")
    if isinstance(trained, dict) and trained.get("diverged"):
        return _wrong(f"training diverged: {trained['diverged']}. Check for operations that can overflow "
                      f"(e.g. an exp without a bound).", max_points)

    x_test, y_test = adding_problem(test_size, seq_len, generator=torch.Generator().manual_seed(seed + 3))
    mse = _mse(runner, x_test, y_test)
    if mse is None:
        return _wrong("your model's predictions on the test set could not be read (expected a float tensor of "
                      f"shape ({test_size},)).", max_points)
    budget = f"{steps} training steps (batch {batch_size}, T={seq_len})"
    plain = set(info.get("recurrent", [])) <= {"RNN", "RNNCell"}
    cell_hint = (" Your recurrent layer is a plain RNN: its gradient through 30 steps mostly vanishes (unit 02), "
                 "so it rarely learns this task within the budget; an LSTM or a GRU does.") if plain else ""
    if mse < target_mse:
        runner.ablate()
        ablated = _mse(runner, x_test, y_test)
        if ablated is not None and ablated < max(ABLATION_FACTOR * mse, 2 * target_mse):
            return _wrong_id(f"your model reaches test MSE {fmt(mse)}, but it does not need its recurrent layer: with "
                             f"that layer's parameters drawn afresh it still reaches {fmt(ablated)}. The exercise "
                             f"asks for a model that learns the task in its recurrent layer, not a formula.",
                             max_points, "recurrent_layer_unused")
        return CheckResult(EXERCISE, "passed", max_points, max_points,
                           f"{EXERCISE}: passed — after {budget} the test MSE is below the target {target_mse} "
                           f"(predicting the mean gives {fmt(ADDING_BASELINE_MSE)}).")
    if not mse < NOT_LEARNING_SHARE * ADDING_BASELINE_MSE:  # also catches nan
        return _wrong_id(f"your model does not learn: after {budget} its test MSE is {fmt(mse)}, no better than the "
                         f"{fmt(ADDING_BASELINE_MSE)} of always predicting the mean (1.0); the target is below "
                         f"{target_mse}. Check that the model reads the whole sequence (`batch_first=True`), "
                         f"reads out the last time step, and that every layer's output is used.{cell_hint}",
                         max_points, "does_not_learn")
    return _wrong_id(f"your model learns, but not enough: after {budget} its test MSE is {fmt(mse)}, the target is "
                     f"below {target_mse} (predicting the mean gives {fmt(ADDING_BASELINE_MSE)}). "
                     + (cell_hint.strip() if plain else "A larger hidden size (32 to 64) or a forget-gate bias of 1 "
                        "helps a gated cell learn faster."), max_points, "learns_too_slowly")


def _mse(runner, x: Tensor, y: Tensor) -> float | None:
    pred = runner.predict(x)
    if not isinstance(pred, Tensor) or pred.shape != y.shape or not pred.is_floating_point():
        return None
    return float(F.mse_loss(pred.detach().float(), y))


def _tuple_hint(exc: Exception) -> str | None:
    text = str(exc)
    if isinstance(exc, TypeError) and "tuple" in text:
        return ("recurrent layers return a tuple: `output, h_n = self.rnn(x)` (`output, (h_n, c_n)` for an LSTM), "
                "so `nn.Sequential(nn.GRU(...), nn.Linear(...))` hands the Linear a tuple. Write a small "
                "nn.Module whose forward takes `output[:, -1]` and passes it to the Linear.")
    return None
