"""What every function check must do, pinned for every registered exercise (issue: tests that catch the bugs).

For each exercise of ``course_utils.checks.EXERCISES`` whose check is built on
``harness.FunctionExercise``:

- the reference passes, with the check cell's points; the result is the same on every seed;
- the points on every other path are 0, with the status the path must have: not implemented,
  raised, returned None, wrong dtype, wrong shape, wrong device, values off;
- a wrong answer on *any single one* of the cases is caught (so no case can be dropped unnoticed),
  and the cases the check runs (their shapes, dtypes and keyword arguments) are pinned;
- the tolerances are pinned.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
import torch

from course_utils import checks
from course_utils.checks.harness import MISTAKE_TOLERANCES, TOLERANCES, FunctionExercise

torch.set_num_threads(1)


def _function_exercise(exercise) -> FunctionExercise | None:
    raw = inspect.unwrap(exercise.check)
    module = importlib.import_module(raw.__module__)
    found = [v for v in vars(module).values() if isinstance(v, FunctionExercise) and v.name == exercise.grade_id]
    return found[0] if found else None


FUNCTION_EXERCISES = {g: (e, fx) for g, e in checks.EXERCISES.items()
                      if e.kind == "function" and (fx := _function_exercise(e)) is not None}
IDS = sorted(FUNCTION_EXERCISES)


#: function exercises whose checks are built differently (fresh models per call), and the tests that pin them
OWN_TESTS = {"tbptt_step": "tests/test_lm.py", "sample": "tests/test_lm.py"}


def test_every_function_exercise_is_pinned_here_or_by_its_own_tests():
    from pathlib import Path
    functions = sorted(g for g, e in checks.EXERCISES.items() if e.kind == "function")
    assert sorted(IDS + list(OWN_TESTS)) == functions, "a function exercise escapes the contract tests"
    root = Path(__file__).resolve().parent.parent
    for grade_id, test_file in OWN_TESTS.items():
        assert grade_id in (root / test_file).read_text()


def test_tolerances_are_pinned():
    assert TOLERANCES == {torch.float32: 1e-5, torch.float64: 1e-10}
    assert MISTAKE_TOLERANCES == {torch.float32: 1e-4, torch.float64: 1e-8}
    assert checks.CLIP_TOLERANCES == {torch.float32: 1e-5, torch.float64: 1e-6}


class Recorder:
    """Calls the reference, records each call's argument shapes, dtypes and keywords; can spoil one call."""

    def __init__(self, reference, spoil: int | None = None, how=None):
        self.reference, self.spoil, self.how, self.calls = reference, spoil, how, []

    def __call__(self, *args, **kwargs):
        self.calls.append(_signature(args, kwargs))
        out = self.reference(*args, **kwargs)
        if self.spoil is not None and len(self.calls) - 1 == self.spoil:
            out = _map_tensors(out, self.how or (lambda t: t + 0.5))
        return out


def _signature(args, kwargs):
    def describe(v):
        if isinstance(v, torch.Tensor):
            return ("T", tuple(v.shape), str(v.dtype))
        if isinstance(v, (tuple, list)):
            return tuple(describe(x) for x in v)
        return repr(v)
    return describe(args), tuple(sorted((k, describe(v)) for k, v in kwargs.items()))


def _map_tensors(out, fn):
    if isinstance(out, torch.Tensor):
        return fn(out)
    if isinstance(out, tuple):
        return tuple(_map_tensors(o, fn) for o in out)
    if isinstance(out, list):
        return [_map_tensors(o, fn) for o in out]
    return out


def _scalar_output(grade_id) -> bool:
    _, fx = FUNCTION_EXERCISES[grade_id]
    outputs = []
    recorder = Recorder(lambda *a, **k: outputs.append(fx.reference(*a, **k)) or outputs[-1])
    _run(grade_id, recorder)
    return all(isinstance(o, torch.Tensor) and o.dim() == 0 for o in outputs)


def _run(grade_id, fn, **kwargs):
    exercise, _ = FUNCTION_EXERCISES[grade_id]
    return exercise.check(fn, quiet=True, **kwargs)


@pytest.mark.parametrize("grade_id", IDS)
def test_reference_passes_with_the_given_points_on_any_seed(grade_id):
    _, fx = FUNCTION_EXERCISES[grade_id]
    for seed in (0, 1, 987654):
        result = _run(grade_id, Recorder(fx.reference), max_points=3, seed=seed)
        assert (result.status, result.points, result.max_points) == ("passed", 3, 3), result.message


@pytest.mark.parametrize("grade_id", IDS)
def test_called_without_points_a_check_is_out_of_one(grade_id):
    """The notebooks' check cells pass their points; a check called bare (a learner's own cell) is out of 1."""
    _, fx = FUNCTION_EXERCISES[grade_id]
    result = _run(grade_id, Recorder(fx.reference))
    assert (result.status, result.points, result.max_points) == ("passed", 1, 1), result.message


def test_every_check_is_out_of_one_point_unless_told_otherwise():
    assert {grade_id: inspect.signature(e.check).parameters["max_points"].default
            for grade_id, e in checks.EXERCISES.items()} == dict.fromkeys(checks.EXERCISES, 1)


@pytest.mark.parametrize("grade_id", IDS)
def test_a_wrong_answer_on_any_single_case_is_caught(grade_id):
    _, fx = FUNCTION_EXERCISES[grade_id]
    recorder = Recorder(fx.reference)
    _run(grade_id, recorder)
    cases = len(recorder.calls)
    assert cases >= 4, f"{grade_id}: only {cases} cases"
    for k in range(cases):
        result = _run(grade_id, Recorder(fx.reference, spoil=k), max_points=2)
        assert (result.status, result.points) == ("wrong", 0), (k, result.message)


@pytest.mark.parametrize("grade_id", IDS)
def test_cases_cover_batch_one_both_dtypes_and_stay_the_same_on_every_seed(grade_id):
    _, fx = FUNCTION_EXERCISES[grade_id]
    seen = []
    for seed in (3, 4):
        recorder = Recorder(fx.reference)
        _run(grade_id, recorder, seed=seed)
        seen.append(recorder.calls)
    assert seen[0] == seen[1], "the shapes, dtypes and keywords of the cases must not depend on the seed"
    text = repr(seen[0])
    if "torch.float" in text:  # floating-point exercises are checked in both precisions
        assert "torch.float32" in text and "torch.float64" in text


PATHS = [("not_implemented", "not_implemented"), ("raises", "error"), ("none", "wrong"), ("float16", "wrong"),
         ("extra_dim", "wrong"), ("meta_device", "wrong"), ("off", "wrong"), ("not_callable", "error")]


def _paths():
    """Every exercise with every path; an answer of one number may also come with an extra dimension."""
    return [(g, path, expected) for g in IDS for path, expected in PATHS
            if not (path == "extra_dim" and _scalar_output(g))]


@pytest.mark.parametrize("grade_id, path, expected", _paths())
def test_every_failure_path_gives_zero_points(grade_id, path, expected):
    _, fx = FUNCTION_EXERCISES[grade_id]

    def not_implemented(*a, **k):
        raise NotImplementedError()

    def raises(*a, **k):
        raise ValueError("a bug of the learner's")

    answers = {
        "not_implemented": not_implemented, "raises": raises, "none": lambda *a, **k: None,
        "float16": Recorder(fx.reference, spoil=0, how=lambda t: t.to(torch.float16)),
        "extra_dim": Recorder(fx.reference, spoil=0, how=lambda t: t.unsqueeze(0)),
        "meta_device": Recorder(fx.reference, spoil=0, how=lambda t: t.to("meta")),
        "off": Recorder(fx.reference, spoil=0, how=lambda t: t * 1.001 + 1e-3),
        "not_callable": "a string",
    }
    result = _run(grade_id, answers[path], max_points=4)
    assert (result.status, result.points, result.max_points) == (expected, 0, 4), result.message
    assert not result.passed


# ------------------------------------------------------------ the cases, pinned
def _case_digest(grade_id: str) -> str:
    """A digest of every case a check runs at its default seed: argument shapes, dtypes, keywords and values."""
    import hashlib
    _, fx = FUNCTION_EXERCISES[grade_id]
    h = hashlib.sha256()

    def add(v):
        if isinstance(v, torch.Tensor):
            h.update(repr((tuple(v.shape), str(v.dtype))).encode())
            h.update(v.detach().to(torch.float64).contiguous().numpy().round(10).tobytes()
                     if v.is_floating_point() else v.contiguous().numpy().tobytes())
        elif isinstance(v, (tuple, list)):
            h.update(b"(")
            for x in v:
                add(x)
            h.update(b")")
        else:
            h.update(repr(v).encode())

    def record(*args, **kwargs):
        add(args)
        add(sorted(kwargs.items()))
        return fx.reference(*args, **kwargs)

    _run(grade_id, record)
    return h.hexdigest()[:16]


#: the cases of the original exercises' checks (shapes, dtypes, keywords and values at the default seed).
#: A change here is a change of what learners are judged on: update the digest only on purpose.
PINNED_CASES = {
    "rnn_cell": "554f672a2d250665", "rnn_forward": "dda9baeb9d383642", "rnn_step_backward": "0db1b2b8177a2dd6",
    "rnn_backward": "1ec4dc07d2f9da3f", "clip_grad_norm": "64fe51393c8dafed", "lstm_cell": "e091ecd4b36954e9",
    "lstm_forward": "fb37c5706763bfce", "lstm_cell_backward": "89beffd70d690ca4", "gru_cell": "46c62af41e0d09ce",
    "gru_cell_chung": "46c62af41e0d09ce",  # the same inputs as gru_cell's
    "gru_forward": "cf6c609c96fdf223", "make_batches": "8c2de57f6117821d", "perplexity": "314ba2a8a392b200",
    "last_valid_output": "3c93bd4b8b24d8c5", "final_states": "84d7e0ec0219839f",
}


def test_every_function_check_has_its_cases_pinned():
    assert sorted(PINNED_CASES) == IDS


@pytest.mark.parametrize("grade_id", sorted(PINNED_CASES))
def test_the_cases_are_pinned(grade_id):
    assert _case_digest(grade_id) == PINNED_CASES[grade_id]


@pytest.mark.parametrize("grade_id", ["rnn_cell", "lstm_cell", "gru_cell"])
def test_case_labels_state_the_true_sizes(grade_id):
    """The label a message names a case by ("N=3, H_in=4, H=4, ...") matches the tensors of that case."""
    import re
    _, fx = FUNCTION_EXERCISES[grade_id]
    recorder = Recorder(fx.reference)
    _run(grade_id, recorder)
    for k in range(len(recorder.calls)):
        spoiled = Recorder(fx.reference, spoil=k)
        result = _run(grade_id, spoiled)
        x_shape, h_shape = spoiled.calls[k][0][0][1], spoiled.calls[k][0][1]
        h_shape = h_shape[0][1] if isinstance(h_shape[0], tuple) else h_shape[1]
        n, h_in, h = (int(v) for v in re.search(r"N=(\d+), H_in=(\d+), H=(\d+)", result.message).groups())
        assert (n, h_in) == x_shape and h == h_shape[-1], (k, result.message)
