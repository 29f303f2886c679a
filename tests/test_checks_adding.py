"""The adding-problem check's steps, one at a time: the output shapes it accepts and names, the
training it gives (its batches, threads, seeding, no progress bar), the ablation, and the paths a
learner's model rarely takes (unreadable predictions, errors that are not the tuple mistake).

Most tests drive the check through the runner protocol the grader uses (``build``, ``forward``,
``train``, ``predict``, ``ablate``) with canned answers, so each path is judged without training.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils.checks import adding
from course_utils.data import ADDING_BASELINE_MSE, adding_problem

FAST = {"seq_len": 8, "steps": 30, "batch_size": 16, "test_size": 50}


class Runner:
    """A runner with canned answers; ``predict`` gives the target itself (MSE 0) unless told otherwise."""

    def __init__(self, *, info=None, forward=None, predict=None, after_ablation=None):
        self.info = info or {"is_module": True, "type": "M", "trainable": 10, "recurrent": ["LSTM"]}
        self._forward, self._predict, self._after = forward, predict, after_ablation
        self.ablated = False
        self.calls: list[str] = []

    def build(self):
        self.calls.append("build")
        return self.info

    def forward(self, x):
        self.calls.append(f"forward{tuple(x.shape)}")
        return self._forward(x) if self._forward else torch.zeros(x.shape[0])

    def train(self, **settings):
        self.calls.append("train")
        return {"diverged": None}

    def predict(self, x):
        fn = self._after if self.ablated and self._after else self._predict
        if fn is None:  # the true sums: the answer the check's test set expects
            return (x[..., 0] * x[..., 1]).sum(dim=1)
        return fn(x)

    def ablate(self):
        self.ablated = True
        return 1


# ----------------------------------------------------------------------------- output shapes
@pytest.mark.parametrize("out, expected", [
    (torch.zeros(4), None),
    (torch.zeros(4, 1), None),
    (torch.zeros(4, dtype=torch.long), "wrong_dtype"),
    (torch.zeros(4, 8, 1), "every_step_output"),
    (torch.zeros(4, 8), "every_step_output"),
    (torch.zeros(8, 4, 1), "time_major"),
    (torch.zeros(8, 4), "time_major"),
    (torch.zeros(3), "wrong_shape"),
    (torch.zeros(4, 2), "wrong_shape"),
    ((torch.zeros(4, 8, 5), torch.zeros(1, 4, 5)), "returns_tuple"),
    ([torch.zeros(4)], "returns_tuple"),
    (0.5, "not_a_tensor"),
])
def test_shape_problem_accepts_n_and_n_by_1_and_names_the_rest(out, expected):
    problem = adding._shape_problem(out, 4, 8)
    assert (problem[1] if problem else None) == expected, problem


def test_shape_problem_squeezed_batch_of_one():
    assert adding._shape_problem(torch.zeros(()), 1, 8)[1] == "squeeze_all"
    assert adding._shape_problem(torch.zeros(()), 4, 8)[1] == "wrong_shape"  # N > 1: an ordinary wrong shape


def test_an_n_by_1_output_is_accepted_by_the_whole_check():
    runner = Runner(forward=lambda x: torch.zeros(x.shape[0], 1))
    result = checks.check_adding_model(runner, quiet=True, **FAST)
    assert (result.status, result.points) == ("wrong", 0) and result.mistakes == ("recurrent_layer_unused",)
    assert runner.calls == ["build", "forward(4, 8, 2)", "forward(1, 8, 2)", "train"]


def test_probes_are_drawn_from_their_own_seeded_stream():
    seen = []
    runner = Runner(forward=lambda x: seen.append(x.clone()) or torch.zeros(x.shape[0]))
    checks.check_adding_model(runner, seed=3, quiet=True, **FAST)
    gen = torch.Generator().manual_seed(3 + 1)
    assert [tuple(x.shape) for x in seen] == [(4, 8, 2), (1, 8, 2)]
    for got, n in zip(seen, (4, 1)):
        assert torch.equal(got, adding_problem(n, 8, generator=gen)[0])


def test_a_forward_still_to_write_is_not_implemented():
    def forward(x):
        raise NotImplementedError

    result = checks.check_adding_model(Runner(forward=forward), max_points=2, quiet=True, **FAST)
    assert (result.status, result.points, result.max_points) == ("not_implemented", 0, 2)


def test_probes_are_a_batch_of_four_then_a_batch_of_one():
    """N = 1 is where `squeeze()` goes wrong, so it is probed after an ordinary batch."""
    runner = Runner(forward=lambda x: torch.zeros(x.shape[0]).squeeze())
    result = checks.check_adding_model(runner, quiet=True, **FAST)
    assert result.mistakes == ("squeeze_all",) and runner.calls[-1] == "forward(1, 8, 2)"


# ----------------------------------------------------------------------------- the judging
def test_passes_when_the_ablated_model_is_much_worse():
    result = checks.check_adding_model(Runner(after_ablation=lambda x: torch.zeros(x.shape[0])), max_points=2,
                                       quiet=True, **FAST)
    assert (result.status, result.points, result.max_points) == ("passed", 2, 2), result.message


def test_unreadable_predictions_are_wrong_not_a_crash():
    """A model whose output changes in eval mode (the check predicts in eval mode) cannot be scored."""
    result = checks.check_adding_model(Runner(predict=lambda x: torch.zeros(x.shape[0], 2)), quiet=True, **FAST)
    assert (result.status, result.points) == ("wrong", 0)
    assert "predictions on the test set could not be read" in result.message and "shape (50,)" in result.message


@pytest.mark.parametrize("mse_share, mistake", [(0.81, "does_not_learn"), (0.79, "learns_too_slowly")])
def test_not_learning_is_told_apart_from_learning_too_slowly(mse_share, mistake):
    """Predictions off by a constant d give an MSE of d²: placed just either side of 0.8 × the baseline."""
    d = (mse_share * ADDING_BASELINE_MSE) ** 0.5
    result = checks.check_adding_model(Runner(predict=lambda x: (x[..., 0] * x[..., 1]).sum(dim=1) + d),
                                       quiet=True, **FAST)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, (mistake,))


@pytest.mark.parametrize("exc, hinted", [
    (TypeError("linear(): argument 'input' must be Tensor, not tuple"), True),
    (TypeError("unsupported operand type(s) for +: 'Tensor' and 'str'"), False),
    (RuntimeError("expected a tuple of sizes"), False),
])
def test_the_tuple_hint_only_for_a_type_error_about_a_tuple(exc, hinted):
    def forward(x):
        raise exc

    result = checks.check_adding_model(Runner(forward=forward), quiet=True, **FAST)
    assert result.status == "error" and result.points == 0
    assert ("recurrent layers return a tuple" in result.message) is hinted


# ----------------------------------------------------------------------------- the training it gives
class Recorder(nn.Module):
    """A tiny GRU regressor that records what training shows it."""

    def __init__(self):
        super().__init__()
        self.rnn, self.head = nn.GRU(2, 3, batch_first=True), nn.Linear(3, 1)
        self.batches: list[torch.Tensor] = []
        self.threads: list[int] = []

    def forward(self, x):
        if self.training:
            self.batches.append(x.clone())
        self.threads.append(torch.get_num_threads())
        return self.head(self.rnn(x)[0][:, -1]).squeeze(-1)


def test_training_batches_are_the_seeded_stream_apart_from_the_probes_and_the_test_set():
    model = Recorder()
    adding.train_model(model, seed=5, steps=3, batch_size=4, seq_len=6, lr=1e-3, clip=1.0)
    gen = torch.Generator().manual_seed(5 + 2)
    expected = [adding_problem(4, 6, generator=gen)[0] for _ in range(3)]
    assert len(model.batches) == 3
    for got, want in zip(model.batches, expected):
        assert torch.equal(got, want)
    probe = adding_problem(4, 6, generator=torch.Generator().manual_seed(5 + 1))[0]
    test = adding_problem(4, 6, generator=torch.Generator().manual_seed(5 + 3))[0]
    assert not torch.equal(model.batches[0], probe) and not torch.equal(model.batches[0], test)


def test_the_check_runs_on_its_thread_count_and_restores_the_callers():
    before = torch.get_num_threads()
    model = Recorder()
    checks.check_adding_model(lambda: model, quiet=True, **FAST)
    assert set(model.threads) == {adding.ADDING_NUM_THREADS} and torch.get_num_threads() == before

    model = Recorder()
    checks.check_adding_model(lambda: model, num_threads=None, quiet=True, **FAST)
    assert set(model.threads) == {before}


def test_the_check_is_repeatable_whatever_the_callers_random_state():
    """The model is built inside the check's seeded RNG: the same seed, the same verdict to the digit."""
    messages = []
    for caller_seed in (1, 2):
        torch.manual_seed(caller_seed)
        result = checks.check_adding_model(Recorder, target_mse=1e-9, quiet=True, **FAST)
        messages.append(result.message)
    assert messages[0] == messages[1] and "test MSE is" in messages[0]


def test_a_diverging_model_is_told_so_in_at_most_200_characters_of_the_error(monkeypatch):
    def diverge(*args, **kwargs):
        raise FloatingPointError("loss is nan at step 3; " + "x" * 400)

    monkeypatch.setattr(adding, "fit", diverge)
    assert adding.train_model(Recorder(), seed=0, steps=1, batch_size=2, seq_len=4, lr=1e-3, clip=None) == \
        {"diverged": ("loss is nan at step 3; " + "x" * 400)[:200]}


def test_the_check_shows_no_progress_bar(capfd):
    checks.check_adding_model(Recorder, target_mse=1e-9, quiet=True, **FAST)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_ablation_is_seeded_on_its_own():
    """Fresh parameters for the recurrent layers, the same whatever the global random state."""
    models = []
    for caller_seed in (1, 2):
        torch.manual_seed(0)
        model = Recorder()
        torch.manual_seed(caller_seed)
        assert adding.ablate_recurrent(model) == 1
        models.append(model)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.equal(a, b), name
    torch.manual_seed(0)
    fresh = Recorder()  # as built, before the ablation
    assert not torch.equal(fresh.rnn.weight_hh_l0, models[0].rnn.weight_hh_l0)  # the recurrent layer changed
    assert torch.equal(fresh.head.weight, models[0].head.weight)  # the rest did not


# ----------------------------------------------------------------------------- the budget and the boundaries
class BudgetRunner(Runner):
    """Records what the check asks for: the training settings and the test set's size."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.settings: dict = {}
        self.predicted: list[tuple] = []
        self.xs: list = []

    def train(self, **settings):
        self.settings = settings
        return super().train(**settings)

    def predict(self, x):
        self.predicted.append(tuple(x.shape))
        self.xs.append(x)
        return super().predict(x)


def test_the_default_budget_is_the_one_the_lessons_state():
    """Unit 05's lesson (en and ko) says: 800 Adam steps on sequences of length 30, clipped, target 0.05
    on new sequences; the check's message and the settings the grader's runner receives say the same."""
    runner = BudgetRunner(after_ablation=lambda x: torch.zeros(x.shape[0]))
    result = checks.check_adding_model(runner, quiet=True)
    assert result.status == "passed"
    assert runner.settings == {"seed": 0, "steps": 800, "batch_size": 64, "seq_len": 30, "lr": 1e-2, "clip": 1.0}
    assert runner.calls[1:3] == ["forward(4, 30, 2)", "forward(1, 30, 2)"]
    assert runner.predicted == [(1000, 30, 2), (1000, 30, 2)]  # trained, then with the recurrent layer ablated
    test_x = adding_problem(1000, 30, generator=torch.Generator().manual_seed(0 + 3))[0]  # the same for everyone
    assert torch.equal(runner.xs[0], test_x) and torch.equal(runner.xs[1], test_x)
    assert "after 800 training steps (batch 64, T=30) the test MSE is below the target 0.05" in result.message
    from pathlib import Path
    lessons = Path(__file__).resolve().parent.parent / "lessons"
    en = (lessons / "en" / "05_comparison.md").read_text(encoding="utf-8")
    ko = (lessons / "ko" / "05_comparison.md").read_text(encoding="utf-8")
    assert "a fixed budget\nof 800 steps (Adam, gradient clipping)" in en and "(0.05 after 800 steps at $T = 30$)" in en
    assert "길이 30의 덧셈 문제로 800단계를 학습시키고, 새 데이터의 평균제곱오차가 0.05보다 낮으면 통과" in ko


def test_the_seed_moves_every_stream_the_check_draws():
    runner = BudgetRunner(after_ablation=lambda x: torch.zeros(x.shape[0]))
    checks.check_adding_model(runner, seed=4, quiet=True, **FAST)
    assert runner.settings["seed"] == 4


@pytest.mark.parametrize("trainable, too_large", [(adding.MAX_PARAMETERS, False), (adding.MAX_PARAMETERS + 1, True)])
def test_a_model_may_have_up_to_100_000_parameters(trainable, too_large):
    assert adding.MAX_PARAMETERS == 100_000  # "keep it under 100,000" in the message
    info = {"is_module": True, "type": "M", "trainable": trainable, "recurrent": ["LSTM"]}
    result = checks.check_adding_model(Runner(info=info, after_ablation=lambda x: torch.zeros(x.shape[0])),
                                       quiet=True, **FAST)
    assert (result.mistakes == ("too_large",)) is too_large
    assert result.status == ("wrong" if too_large else "passed")
    if too_large:
        assert "100,001 trainable parameters; keep it under 100,000" in result.message


def test_something_that_is_not_a_function_gets_no_points():
    result = checks.check_adding_model(3, max_points=2, quiet=True)
    assert (result.status, result.points, result.max_points) == ("error", 0, 2)
    assert "expected a function that builds the model, got int" in result.message
    assert "pass the function itself: `check_adding_model(build_model)`" in result.message


def test_the_model_instead_of_its_builder_is_told_to_pass_the_function():
    """A module is callable: called with no input it would report a confusing error in forward()."""
    result = checks.check_adding_model(nn.LSTM(2, 4), max_points=2, quiet=True)
    assert (result.status, result.points, result.max_points) == ("error", 0, 2)
    assert "got the model itself (LSTM)" in result.message
    assert "`check_adding_model(build_model)`, not `check_adding_model(build_model())`" in result.message


def _mse_sequence(monkeypatch, values):
    values = iter(values)
    monkeypatch.setattr(adding, "_mse", lambda runner, x, y: next(values))


@pytest.mark.parametrize("ablated, status", [(0.1, "passed"), (0.0999, "wrong")])
def test_the_ablated_mse_must_rise_at_least_to_the_bound(monkeypatch, ablated, status):
    """At least ABLATION_FACTOR-fold and at least twice the target: reaching the bound exactly passes."""
    _mse_sequence(monkeypatch, [0.01, ablated])  # max(3 × 0.01, 2 × 0.05) = 0.1
    result = checks.check_adding_model(Runner(), quiet=True, **FAST)
    assert result.status == status
    assert result.mistakes == (() if status == "passed" else ("recurrent_layer_unused",))


@pytest.mark.parametrize("mse, mistake", [(0.8 * ADDING_BASELINE_MSE, "does_not_learn"),
                                          (0.05, "learns_too_slowly")])
def test_at_the_boundaries_a_model_does_not_learn_or_misses_the_target(monkeypatch, mse, mistake):
    """An MSE at 0.8 × the baseline counts as learning nothing; exactly the target is not below it."""
    _mse_sequence(monkeypatch, [mse])
    result = checks.check_adding_model(Runner(), quiet=True, **FAST)
    assert (result.status, result.mistakes) == ("wrong", (mistake,))


def test_the_ablation_draws_the_same_fresh_parameters_in_every_release():
    """The seed of the ablation is part of the verdict: a learner's grade must not move between releases."""
    torch.manual_seed(0)
    model = nn.LSTM(2, 3)
    adding.ablate_recurrent(model)
    torch.manual_seed(12345)
    expected = nn.LSTM(2, 3)
    for (name, got), want in zip(model.named_parameters(), expected.parameters()):
        assert torch.equal(got, want), name


@pytest.mark.parametrize("recurrent, plain", [(["RNN"], True), (["RNN", "RNNCell"], True), (["RNNCell"], True),
                                              (["RNN", "LSTM"], False), (["GRU"], False)])
def test_the_plain_rnn_hint_is_for_models_with_only_plain_recurrent_layers(recurrent, plain):
    info = {"is_module": True, "type": "M", "trainable": 10, "recurrent": recurrent}
    result = checks.check_adding_model(Runner(info=info, predict=lambda x: torch.zeros(x.shape[0])), quiet=True,
                                       **FAST)
    assert result.mistakes == ("does_not_learn",)
    assert ("Your recurrent layer is a plain RNN" in result.message) is plain
