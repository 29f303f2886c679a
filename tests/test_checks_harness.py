"""The machinery under every exercise check: the function-check harness (tolerances, shapes, naming a
mistake), the notebook wrapper's reference watch, the result object, the tripwire and the registry.

The harness is driven here through a toy exercise (``double(x) -> 2 * x``), so that each rule is
seen on its own; the registered exercises are pinned by ``test_checks_contract.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import linecache
import re
import sys
import threading
import types

import pytest
import torch

from course_utils import checks
from course_utils import functional as ref
from course_utils.checks import EXERCISES, exercises_of, harness, registry, tripwire
from course_utils.checks import result as result_module
from course_utils.checks.harness import Case, FunctionExercise, Malformed, Mistake, check_function, expect_tensor
from course_utils.checks.registry import CELL_REFERENCES, LM_REFERENCES
from course_utils.checks.result import (
    STATUSES,
    CheckResult,
    _inside,
    _md_escape,
    fmt,
    not_implemented,
    raised,
    type_name,
    uses_reference,
)

torch.set_num_threads(1)

X = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]])
CASES = [Case("x of shape (2, 3)", (X,))]


def _unpack_one(out, case):
    return [("y", expect_tensor(out, "y"))]


def _double(**kwargs) -> FunctionExercise:
    """A toy exercise: ``double(x)`` returns ``2 * x``; keyword arguments override its fields."""
    return FunctionExercise(**{"name": "double", "reference": lambda x: 2 * x, "unpack": _unpack_one,
                               "mistakes": list, "arg_names": ("x",), "signature": "double(x) -> y",
                               "coverage": "1 input", **kwargs})


# ------------------------------------------------------------------ the harness
def test_cases_mistakes_and_exercises_are_values():
    for value, field in ((CASES[0], "label"), (_scaled(2.0, "twice"), "id"), (_double(), "name")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, "changed")


def test_malformed_is_its_message_and_keeps_the_mistake_id_apart():
    bad = Malformed("expected a pair (h, c), got Tensor", "last_state_only")
    assert (str(bad), bad.args, bad.id) == ("expected a pair (h, c), got Tensor",
                                            ("expected a pair (h, c), got Tensor",), "last_state_only")

    def unpack(out, case):
        if isinstance(out, torch.Tensor):
            raise Malformed(f"expected a pair (y, z), got {type(out).__name__}", "one_output")
        return [("y", out[0]), ("z", out[1])]

    ex = _double(reference=lambda x: (2 * x, 3 * x), unpack=unpack)
    result = check_function(ex, lambda x: 2 * x, CASES, 1)
    assert (result.status, result.points, result.mistakes) == ("wrong", 0, ("one_output",))
    assert result.message == "double: expected a pair (y, z), got Tensor (for x of shape (2, 3))"


def test_an_answer_that_is_not_a_tensor_is_malformed():
    with pytest.raises(Malformed, match=r"^expected y to be a torch.Tensor, got float$"):
        expect_tensor(2.0, "y")
    t = torch.ones(2, requires_grad=True)
    assert not expect_tensor(t, "y").requires_grad
    result = check_function(_double(), lambda x: 2.0, CASES, 1)
    assert (result.status, result.mistakes) == ("wrong", ())
    assert result.message == "double: expected y to be a torch.Tensor, got float (for x of shape (2, 3))"


@pytest.mark.parametrize("answer, status", [(0.4, "passed"), (0.8, "wrong")])
def test_the_relative_tolerance_scales_with_the_reference_not_the_answer(answer, status):
    """As ``torch.allclose(answer, reference)``: |answer - reference| <= tol + tol * |reference|."""
    ex = _double(reference=torch.zeros_like, tolerances={torch.float32: 0.5})
    result = check_function(ex, lambda x: torch.full_like(x, answer), CASES, 1)
    assert result.status == status, result.message


def test_the_shape_hint_is_given_the_output_name_then_the_expected_and_the_got_shape():
    seen = []

    def hint(name, expected, got):
        seen.append((name, expected, got))
        return f"{name} should be {expected}"

    result = check_function(_double(shape_hint=hint), lambda x: 2 * x.T, CASES, 1)
    assert seen == [("y", (2, 3), (3, 2))]
    assert result.message == ("double: expected y of shape (2, 3), got (3, 2). Hint: y should be (2, 3) "
                              "(for x of shape (2, 3))")


def _scaled(factor: float, id: str) -> Mistake:
    return Mistake(f"every value scaled by {factor}", lambda x: 2 * x * factor, id=id)


def test_a_mistake_is_named_when_the_answer_matches_its_variant():
    ex = _double(mistakes=lambda: [_scaled(1.01, "scaled")])
    result = check_function(ex, lambda x: 2 * x * 1.01, CASES, 2)
    assert (result.status, result.points, result.max_points, result.mistakes) == ("wrong", 0, 2, ("scaled",))
    assert result.message == "double: wrong values for x of shape (2, 3).\nLikely mistake: every value scaled by 1.01"


def test_a_variant_within_the_mistake_tolerance_of_the_reference_is_not_named():
    """A variant 5e-5 off the reference (float32: mistakes are told apart at 1e-4) says nothing about an answer
    that is wrong at the check's own tolerance (1e-5): the first difference is shown instead."""
    ex = _double(mistakes=lambda: [_scaled(1 + 5e-5, "barely")])
    result = check_function(ex, lambda x: 2 * x * (1 + 5e-5), CASES, 1)
    assert (result.status, result.mistakes) == ("wrong", ())
    assert result.message == ("double: wrong values for x of shape (2, 3).\ny first differs at index (0, 0): "
                              "expected 2.0000, got 2.0001 (largest absolute error 0.0004, tolerance 1e-05)")


def test_tolerance_by_dtype_falls_back_to_float32s():
    assert harness.tolerance(torch.float64) == 1e-10 and harness.tolerance(torch.float32) == 1e-5
    assert harness.tolerance(torch.float16) == 1e-5 and harness.tolerance(torch.int64, {}) == 1e-5
    assert harness.tolerance(torch.float64, harness.MISTAKE_TOLERANCES) == 1e-8
    assert harness.tolerance(torch.float64, {torch.float64: 0.5}) == 0.5
    assert Case("no tensors", (3, [None])).dtype == torch.float32
    assert Case("float64", (2, (torch.zeros(1, dtype=torch.float64), X))).dtype == torch.float64


def _one_changed(x):
    y = 2 * x
    y[1, 2] = -2.999999
    return y


@pytest.mark.parametrize("x, tol, reference, answer, line", [
    (X.double(), 1e-10, lambda x: 2 * x, _one_changed,
     "y first differs at index (1, 2): expected -3.000000, got -2.999999 (largest absolute error 1e-06, tolerance 1e-10)"),
    (X, 1e-5, lambda x: x.sum(), lambda x: x.sum() + 1,
     "y first differs: expected 5.0000, got 6.0000 (largest absolute error 1, tolerance 1e-05)"),
    (X.double(), 1e-30, lambda x: torch.full((), 1e-18, dtype=x.dtype), lambda x: torch.full((), 3e-18, dtype=x.dtype),
     ("y first differs: expected 0.00000000000000000, got 0.00000000000000000 (largest absolute error 2e-18, "
      "tolerance 1e-30)")),  # at most 17 decimals, even when they cannot tell the numbers apart
    (X, 1e-5, lambda x: 2 * x, lambda x: torch.full_like(x, float("nan")),
     "y first differs at index (0, 0): expected 2.0000, got nan (largest absolute error nan, tolerance 1e-05)"),
])
def test_the_first_difference_is_located_and_printed_with_the_digits_that_tell_it_apart(x, tol, reference, answer,
                                                                                       line):
    ex = _double(reference=reference, tolerances={x.dtype: tol})
    result = check_function(ex, answer, [Case("x of shape (2, 3)", (x,))], 1)
    assert result.message == f"double: wrong values for x of shape (2, 3).\n{line}"


def _outputs(*names):
    def unpack(out, case):
        if not isinstance(out, tuple) or len(out) != len(names):
            raise Malformed(f"expected {len(names)} outputs")
        return [(n, expect_tensor(o, n)) for n, o in zip(names, out)]
    return unpack


def test_right_outputs_are_named_and_at_most_two_wrong_ones_are_shown():
    ex = _double(reference=lambda x: (x, 2 * x, 3 * x, 4 * x), unpack=_outputs("a", "b", "c", "d"))
    result = check_function(ex, lambda x: (x, 2 * x + 1, 3 * x + 1, 4 * x + 1), CASES, 1)
    lines = result.message.split("\n")
    assert lines[:2] == ["double: wrong values for x of shape (2, 3).", "a is right; b, c, d are not."]
    assert [line.split(" first differs")[0] for line in lines[2:]] == ["b", "c"]
    result = check_function(ex, lambda x: (x + 1, 2 * x, 3 * x, 4 * x), CASES, 1)
    assert result.message.split("\n")[1] == "b, c, d are right; a is not."


def test_structure_problems_say_what_was_expected_and_what_came():
    ex = _double(reference=lambda x: (x, 2 * x), unpack=lambda out, case: [(f"o{k}", o) for k, o in enumerate(out)])
    assert check_function(ex, lambda x: (x,), CASES, 1).message == \
        "double: expected 2 outputs, got 1 (for x of shape (2, 3))"
    assert check_function(ex, lambda x: (x, 2 * x.double()), CASES, 1).message == (
        "double: expected o1 of dtype torch.float32 (the dtype of the inputs), got torch.float64. Hint: tensors you "
        "create need `dtype=x.dtype` (or use `torch.zeros_like`). (for x of shape (2, 3))")
    assert check_function(ex, lambda x: (x.to("meta"), 2 * x), CASES, 1).message == \
        "double: expected o0 on device cpu, got meta (for x of shape (2, 3))"
    for answer in (lambda x: (x,), lambda x: (x, 2 * x.double()), lambda x: (x.to("meta"), 2 * x)):
        result = check_function(ex, answer, CASES, 2)
        assert (result.status, result.points, result.max_points) == ("wrong", 0, 2)
    result = check_function(ex, lambda x: None, CASES, 3)
    assert (result.status, result.points, result.max_points) == ("wrong", 0, 3)
    assert result.message == "double: your function returned None — did you forget the `return` statement?"
    result = check_function(ex, ex.reference(X), CASES, 1)
    assert (result.status, result.points) == ("error", 0)
    assert result.message == ("double: expected a function, got tuple (Tensor, Tensor) — pass the function itself, "
                              "`check_double(double)`, without calling it.")


def test_an_input_changed_in_place_is_named_by_its_argument_name():
    h, c = torch.zeros(2, 3), torch.ones(2, 3)
    ex = _double(reference=lambda x, state, extra: 2 * x, arg_names=("x", ("h", "c")))
    cases = [Case("x, (h, c) and a list", (X, (h, c), [X]))]

    def changes_c(x, state, extra):
        state[1].add_(1)
        return 2 * x

    result = check_function(ex, changes_c, cases, 2)
    assert (result.status, result.points, result.max_points) == ("wrong", 0, 2)
    assert result.message == ("double: the values are right, but your function changed its input `c` in place (for "
                              "x, (h, c) and a list). Compute new tensors instead (e.g. `h = h + ...`, not `h += ...` "
                              "or `.mul_()`).")
    assert torch.equal(c, torch.ones(2, 3))  # the case itself is left alone

    def changes_x_and_extra(x, state, extra):
        x.mul_(2)
        extra[0].unsqueeze_(0)
        return x

    result = check_function(_double(reference=lambda x, state, extra: 2 * x, arg_names=("x", ("h", "c")),
                                    inplace_hint="`x * 2`"), changes_x_and_extra, cases, 1)
    assert "changed its input `x`, `args[2][0]` in place" in result.message and result.message.endswith(
        "(`x * 2`).")


def test_a_wrong_call_gets_the_signature_unless_the_exercise_has_its_own_hint():
    result = check_function(_double(), lambda x, y: x, CASES, 1)
    assert result.message.endswith("Hint: the function is called as `double(x) -> y`.")
    result = check_function(_double(error_hint=lambda exc: "own hint"), lambda x, y: x, CASES, 1)
    assert result.message.endswith("Hint: own hint")
    result = check_function(_double(), lambda x: x.no_such_method(), CASES, 1)
    assert "Hint" not in result.message
    result = check_function(_double(), lambda x: (_ for _ in ()).throw(NotImplementedError()), CASES, 2)
    assert (result.status, result.points, result.max_points) == ("not_implemented", 0, 2)


def _off(name, out_index, amount, id="", outputs=None, fails=False):
    def variant(x):
        if fails:
            raise RuntimeError("this variant cannot run here")
        out = [2 * x, 3 * x]
        out[out_index] = out[out_index] + amount
        return tuple(out)
    return Mistake(name, variant, outputs, id)


def test_mistakes_that_explain_different_outputs_are_named_together():
    ex = _double(reference=lambda x: (2 * x, 3 * x), unpack=_outputs("y", "z"),
                 mistakes=lambda: [_off("broken", 0, 9.0, "broken", fails=True), _off("y off", 0, 1.0, "y_off", ("y",)),
                                   _off("z off", 1, 1.0, outputs=("z",)), _off("z off again", 1, 1.0, "again")])
    result = check_function(ex, lambda x: (2 * x + 1, 3 * x + 1), CASES, 1)
    assert result.mistakes == ("y_off", "unnamed")
    assert result.message.split("\n")[1:] == ["Likely mistake: y off", "Likely mistake: z off"]
    result = check_function(ex, lambda x: (2 * x + 1, 3 * x + 5), CASES, 1)  # z wrong in a way no variant explains
    assert result.mistakes == () and "Likely mistake" not in result.message
    result = check_function(ex, lambda x: (2 * x, 3 * x + 1), CASES, 1)
    assert result.mistakes == ("unnamed",)


def test_a_mistake_is_named_only_when_the_answer_matches_its_variant_on_every_output_it_speaks_about():
    both = Mistake("y and z off", lambda x: (2 * x + 1, 3 * x + 1), ("y", "z"), "both")
    ex = _double(reference=lambda x: (2 * x, 3 * x), unpack=_outputs("y", "z"), mistakes=lambda: [both])
    assert check_function(ex, lambda x: (2 * x + 1, 3 * x + 1), CASES, 1).mistakes == ("both",)
    assert check_function(ex, lambda x: (2 * x + 1, 3 * x + 7), CASES, 1).mistakes == ()


def test_a_mistake_whose_variant_is_nearly_right_on_an_output_it_explains_is_not_named():
    """z is wrong at the check's tolerance but the variant's z is within the mistake tolerance of the reference."""
    close = Mistake("y off, z a little", lambda x: (2 * x + 1, 3 * x * (1 + 5e-5)), None, "close")
    ex = _double(reference=lambda x: (2 * x, 3 * x), unpack=_outputs("y", "z"), mistakes=lambda: [close])
    result = check_function(ex, lambda x: (2 * x + 1, 3 * x * (1 + 5e-5)), CASES, 1)
    assert result.mistakes == () and "Likely mistake" not in result.message


@pytest.mark.parametrize("reference, variant, named", [
    (lambda x: 2 * x, torch.zeros_like, False),  # |0.8 - 0| > 0.5 + 0.5 * |0|: the answer is not the variant's
    (torch.zeros_like, lambda x: torch.full_like(x, 0.8), True),  # |0.8 - 0| > 0.5 + 0.5 * |0|: the variant is wrong
])
def test_matching_a_variant_is_relative_to_the_variant_and_judging_it_relative_to_the_reference(
        monkeypatch, reference, variant, named):
    monkeypatch.setattr(harness, "MISTAKE_TOLERANCES", {torch.float32: 0.5})
    ex = _double(reference=reference, mistakes=lambda: [Mistake("a variant", variant, id="variant")])
    result = check_function(ex, lambda x: torch.full_like(x, 0.8), CASES, 1)
    assert result.status == "wrong" and result.mistakes == (("variant",) if named else ())


def test_a_mistake_about_outputs_that_are_right_is_not_named():
    ex = _double(reference=lambda x: (2 * x, 3 * x), unpack=_outputs("y", "z"),
                 mistakes=lambda: [_off("z as it should be", 1, 0.0, "z_same", ("z",)),
                                   _off("y off", 0, 1.0, "y_off", ("y",))])
    assert check_function(ex, lambda x: (2 * x + 1, 3 * x), CASES, 1).mistakes == ("y_off",)


def test_a_mistake_about_a_list_output_covers_its_items_only():
    assert harness._covers(None, "clipped[1]") and harness._covers(("clipped",), "clipped")
    assert harness._covers(("clipped",), "clipped[2]") and not harness._covers(("clipped",), "clipped_norm")
    assert not harness._covers(("h",), "c") and harness._covers(("h", "c"), "c")
    names = ("x", ("h", "c"))
    assert [n for n, _ in harness._flatten((X, (X, X), [X, 3]), "args", names)] == \
        ["x", "h", "c", "args[2][0]"]


# ---------------------------------------------------- the notebook's reference watch
def _fake_ipython(monkeypatch, user_ns: dict) -> None:
    shell = types.SimpleNamespace(user_ns=user_ns)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


@pytest.mark.parametrize("user_ns, history", [
    ({"In": ["", "x = 1", None]}, ["", "x = 1"]),
    ({"In": []}, None),
    ({"In": "x = 1"}, None),
    ({"In": ("", "x = 1")}, None),
    ({}, None),
])
def test_the_notebook_history_is_ipythons_in_list(monkeypatch, user_ns, history):
    _fake_ipython(monkeypatch, user_ns)
    assert harness._history() == history


def test_no_ipython_means_no_history(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert harness._history() is None


@pytest.mark.parametrize("max_points", [1, 2])
def test_in_a_notebook_the_courses_own_function_is_the_reference(monkeypatch, max_points):
    """Passing ``course_utils.functional.rnn_cell`` itself, in a notebook whose cells do not name it."""
    _fake_ipython(monkeypatch, {"In": ["", "import torch"]})
    result = checks.check_rnn_cell(ref.rnn_cell, quiet=True, max_points=max_points)
    assert (result.exercise, result.status, result.points, result.max_points, result.mistakes) == \
        ("rnn_cell", "uses_reference", 0, max_points, ("uses_reference",))
    assert result.message.startswith("rnn_cell: `rnn_cell` uses `course_utils.functional.rnn_cell` instead of "
                                     "computing the result itself.")


def _own_rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    pre = x @ weight_ih.T + h @ weight_hh.T
    return act(pre + (bias_ih if bias_ih is not None else 0) + (bias_hh if bias_hh is not None else 0))


class _GraderProxy:
    """Stands for the grader's proxy of a learner's function: callable, but not a Python function."""

    def __call__(self, *args, **kwargs):
        return _own_rnn_cell(*args, **kwargs)


def test_only_plain_functions_are_watched():
    assert harness._is_local_function(_own_rnn_cell)
    assert not harness._is_local_function(_GraderProxy())
    assert not harness._is_local_function(functools.partial(_own_rnn_cell))
    result = checks.check_rnn_cell(_GraderProxy(), quiet=True)
    assert (result.status, result.points) == ("passed", 1), result.message


def test_in_a_notebook_the_cells_are_read_not_the_functions_module(monkeypatch):
    cheat = ("from course_utils import functional as ref\n\n"
             "def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
             "    return ref.rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity)\n")
    _fake_ipython(monkeypatch, {"In": ["", cheat]})
    result = checks.check_rnn_cell(_own_rnn_cell, quiet=True)
    assert (result.status, result.points) == ("uses_reference", 0)
    assert "`course_utils.functional.rnn_cell` (the reference), line 4 of cell 2" in result.message
    assert result.max_points == 1
    monkeypatch.delitem(sys.modules, "IPython")
    assert checks.check_rnn_cell(_own_rnn_cell, quiet=True).status == "passed"


def test_the_notebook_message_names_at_most_three_findings(monkeypatch):
    cheat = ("def rnn_cell(*args):\n    eval('1')\n    exec('1')\n    open('x')\n"
             "    return __import__('course_utils').functional.rnn_cell(*args)\n")
    _fake_ipython(monkeypatch, {"In": ["", cheat]})
    result = checks.check_rnn_cell(_own_rnn_cell, quiet=True)
    assert result.message.startswith(
        "rnn_cell: `rnn_cell` uses `eval()` (runs code from a string), line 2 of cell 2; `exec()` (runs code from a "
        "string), line 3 of cell 2; `open()` (reads a file), line 4 of cell 2 instead of computing the result itself.")


def test_a_notebook_check_announces_a_failure_unless_quiet(capsys):
    assert checks.check_rnn_cell(lambda *args, **kwargs: None, watch=False).status == "wrong"
    assert capsys.readouterr().err == "rnn_cell: wrong — 0/1 points\n"
    checks.check_rnn_cell(lambda *args, **kwargs: None, watch=False, quiet=True)
    assert capsys.readouterr().err == ""


def test_outside_a_notebook_the_courses_own_function_is_checked_as_it_is(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    result = checks.check_rnn_cell(ref.rnn_cell, quiet=True)
    assert (result.status, result.points) == ("passed", 1), result.message


# ------------------------------------------------------------------ the result
@pytest.mark.parametrize("value, decimals, text", [
    (1.23456789, 4, "1.2346"), (2, 4, "2.0000"), (-1e-5, 4, "0.0000"), (-1e-5, 6, "-0.000010"),
    (float("nan"), 4, "nan"), (float("inf"), 4, "inf"), (float("-inf"), 6, "-inf"),
])
def test_fmt_prints_fixed_decimals_and_never_a_negative_zero(value, decimals, text):
    assert fmt(value, decimals) == text


def test_fmt_prints_four_decimals_of_any_number_like_value():
    assert fmt(1.23456789) == "1.2346"
    assert fmt(torch.tensor([0.25])) == fmt(torch.tensor(0.25, dtype=torch.float64)) == "0.2500"
    assert fmt(True) == "1.0000"


def test_the_status_must_be_one_of_the_five():
    for status in STATUSES:
        assert CheckResult("rnn_cell", status, 0, 1, "").status == status
    with pytest.raises(ValueError, match=re.escape(f"CheckResult: expected status in {STATUSES}, got 'failed'")):
        CheckResult("rnn_cell", "failed", 0, 1, "")


def test_points_must_lie_between_zero_and_the_maximum():
    assert CheckResult("rnn_cell", "wrong", 0, 0, "").points == 0
    assert CheckResult("rnn_cell", "passed", 1.5, 1.5, "").points == 1.5
    for points in (-0.5, 2):
        with pytest.raises(ValueError, match=re.escape(f"expected 0 <= points <= max_points (1.5), got {points}")):
            CheckResult("rnn_cell", "wrong", points, 1.5, "")


def test_mistakes_are_kept_as_a_tuple_of_stable_ids():
    result = CheckResult("gru_cell", "wrong", 0, 1, "gru_cell: wrong values.", ["gate_order", "missing_bias"])
    assert result.mistakes == ("gate_order", "missing_bias")
    assert result.to_dict()["mistakes"] == ["gate_order", "missing_bias"]
    assert hash(result) == hash(CheckResult("gru_cell", "wrong", 0, 1, "gru_cell: wrong values.",
                                            ("gate_order", "missing_bias")))


def test_markdown_escapes_the_text_keeps_code_spans_and_indentation():
    result = CheckResult("rnn_cell", "wrong", 0, 1.5, "rnn_cell: *h_t* is [off] `h_t = x_t*w + b`\n"
                                                      "    at <2> #3 | ~x \\ y")
    assert result._repr_markdown_() == ("❌ rnn\\_cell: \\*h\\_t\\* is \\[off\\] `h_t = x_t*w + b`  \n"
                                        "&nbsp;&nbsp;&nbsp;&nbsp;at \\<2\\> \\#3 \\| \\~x \\\\ y\n\n*0/1.5 points*\n")


def test_markdown_of_a_line_with_an_unbalanced_backtick_escapes_the_whole_line():
    assert _md_escape("expected `h_t, got h_t*2") == "expected \\`h\\_t, got h\\_t\\*2"


@pytest.mark.parametrize("line", ["expected `h_t, got h_t*2", "a \\ `b` *c* <d> #e", "`x` and `y", "``"])
def test_markdown_renders_back_to_the_text_without_stray_backslashes(line):
    """A CommonMark renderer (mistune, which nbconvert uses) shows the line as written: code spans
    as code, every other character once (a lone backtick escaped twice showed a stray backslash)."""
    import html

    import mistune

    rendered = mistune.html(_md_escape(line)).strip()
    assert rendered.startswith("<p>") and rendered.endswith("</p>")
    text = html.unescape(rendered[3:-4].replace("<code>", "`").replace("</code>", "`"))
    assert text == line


def test_announce_writes_to_stderr_by_default(capsys):
    CheckResult("gru_cell", "uses_reference", 0, 1, "gru_cell: uses the reference.").announce()
    assert capsys.readouterr() == ("", "gru_cell: uses reference — 0/1 points\n")


class _Stream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushed = []

    def flush(self):
        self.flushed.append(self.getvalue())


def test_announce_writes_one_line_when_the_check_did_not_pass():
    stream = _Stream()
    failed = CheckResult("lstm_cell", "not_implemented", 0, 2.5, "lstm_cell: not implemented yet.")
    assert failed.announce(stream) is failed
    assert stream.getvalue() == "lstm_cell: not implemented — 0/2.5 points\n"
    assert stream.flushed == ["lstm_cell: not implemented — 0/2.5 points\n"]  # before any later output
    passed = CheckResult("lstm_cell", "passed", 2.5, 2.5, "lstm_cell: passed.")
    assert passed.announce(stream) is passed
    assert stream.getvalue() == "lstm_cell: not implemented — 0/2.5 points\n"


def test_not_implemented_and_uses_reference_give_zero_points():
    assert not_implemented("gru_cell", 2) == CheckResult(
        "gru_cell", "not_implemented", 0, 2,
        "gru_cell: not implemented yet — write your code in the cell above and run it again.")
    assert uses_reference("gru_cell", 2, "gru_cell", "`torch.gru_cell`") == CheckResult(
        "gru_cell", "uses_reference", 0, 2,
        "gru_cell: `gru_cell` uses `torch.gru_cell` instead of computing the result itself. The exercise asks you "
        "to write it from tensor operations; the reference is there to compare with after the check.",
        ("uses_reference",))


class _Proxy:
    """Stands for a value that stayed in the grader's sandbox."""

    _remote_type = "class attribute, not a description"

    def __init__(self, description):
        self._remote_type = description


@pytest.mark.parametrize("value, name", [
    (None, "None"), (torch.zeros(2), "Tensor"), (2.5, "float"), ((torch.zeros(1), None), "tuple (Tensor, None)"),
    ([1, 2, 3, 4, 5], "list (int, int, int, int, ...)"), ([1, 2, 3, 4], "list (int, int, int, int)"), ([], "list ()"), (int, "type"),
    (_Proxy("tuple (Tensor, Tensor)"), "tuple (Tensor, Tensor)"), (_Proxy(3), "_Proxy"), (_Proxy, "type"),
])
def test_type_name(value, name):
    assert type_name(value) == name


def _raise_in(answer, *args):
    try:
        answer(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the subject
        return exc
    raise AssertionError("did not raise")


def test_raised_points_at_the_learners_line_not_at_torchs():
    def answer(x):
        return torch.nn.functional.dropout(x, p=2.0)

    code = "`return torch.nn.functional.dropout(x, p=2.0)`"
    exc = _raise_in(answer, torch.ones(1))
    result = raised("rnn_cell", exc, 2, during="N=1, H=4", hint="p is a probability.")
    assert (result.status, result.points, result.max_points) == ("error", 0, 2)
    assert result.message.split("\n") == [
        "rnn_cell: your function raised ValueError: dropout probability has to be between 0 and 1, but got 2.0",
        f"at line {answer.__code__.co_firstlineno + 1} of test_checks_harness.py, in `answer`: {code}",
        "(called with N=1, H=4)",
        "Hint: p is a probability.",
    ]


def test_raised_points_at_the_learners_line_not_at_the_courses():
    """The learner's function calls the course's reference wrongly: the line shown is the learner's call."""
    def answer(x):
        return ref.rnn_cell(x, x, torch.ones(4, 5), torch.ones(4, 4))

    result = check_function(_double(), answer, CASES, 1)
    assert result.status == "error"
    assert f"\nat line {answer.__code__.co_firstlineno + 1} of test_checks_harness.py, in `answer`: " in result.message


def test_raised_finds_the_course_through_a_symlink(tmp_path):
    """The course's code reached through a link to its folder is still the course's, not the learner's."""
    link = tmp_path / "course_link"
    link.symlink_to(result_module._PACKAGE_DIR, target_is_directory=True)
    helper = types.FunctionType(compile("def helper(x):\n    raise ValueError('bad x')\n", str(link / "helper.py"),
                                        "exec").co_consts[0], {})

    def answer(x):
        return helper(x)

    message = raised("rnn_cell", _raise_in(answer, 1), 1).message
    assert message.split("\n")[1].startswith(
        f"at line {answer.__code__.co_firstlineno + 1} of test_checks_harness.py, in `answer`")


def test_raised_in_library_code_only_points_at_the_library_line():
    result = check_function(_double(), functools.partial(torch.nn.functional.dropout, p=2.0), CASES, 1)
    assert result.status == "error"
    assert re.search(r"\nat line \d+ of functional\.py, in `dropout`: ", result.message), result.message


def test_raised_in_library_code_only_points_at_the_deepest_library_line(tmp_path, monkeypatch):
    monkeypatch.setattr(result_module, "_LIBRARY_DIRS", (str(tmp_path.resolve()),))
    source = "def outer(x):\n    return inner(x)\n\ndef inner(x):\n    raise ValueError('deep')\n"
    namespace: dict = {}
    code = compile(source, str(tmp_path.resolve() / "lib.py"), "exec")
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            namespace[const.co_name] = types.FunctionType(const, namespace)
    result = check_function(_double(), namespace["outer"], CASES, 1)
    assert result.message.split("\n")[:2] == ["double: your function raised ValueError: deep",
                                               "at line 5 of lib.py, in `inner`"]


def test_raised_in_a_notebook_cell_says_your_cell():
    filename = "/tmp/ipykernel_4242/3141592653.py"
    source = "def rnn_cell(x):\n    return x.no_such_method()\n"
    cell = types.FunctionType(compile(source, filename, "exec").co_consts[0], {})
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        message = raised("rnn_cell", _raise_in(cell, torch.ones(1)), 1, who="your model").message
    finally:
        del linecache.cache[filename]
    assert message == ("rnn_cell: your model raised AttributeError: 'Tensor' object has no attribute 'no_such_method'\n"
                       "at line 2 of your cell, in `rnn_cell`: `return x.no_such_method()`")


def test_raised_in_the_graders_sandbox_shows_the_line_that_came_with_it():
    exc = KeyError()
    exc.remote_where = "line 3 of your cell, in `rnn_cell`"
    assert raised("rnn_cell", exc, 1).message == ("rnn_cell: your function raised KeyError\n"
                                                  "at line 3 of your cell, in `rnn_cell`")
    exc = ValueError("first line\nsecond line")
    exc.remote_where = ""
    assert raised("rnn_cell", exc, 1).message == "rnn_cell: your function raised ValueError: first line"


@pytest.mark.parametrize("path, root, inside", [
    ("/srv/course_utils", "/srv/course_utils", True), ("/srv/course_utils/checks/rnn.py", "/srv/course_utils", True),
    ("/srv/course_utils_old/rnn.py", "/srv/course_utils", False), ("/srv/other/rnn.py", "/srv/course_utils", False),
    ("C:\\srv\\course_utils\\rnn.py", "C:\\srv\\course_utils", True),
    ("C:\\srv\\course_utils_old\\rnn.py", "C:\\srv\\course_utils", False),
])
def test_a_path_is_inside_a_folder_only_at_or_below_it(path, root, inside):
    assert _inside(path, ("/elsewhere", root)) is inside


# ------------------------------------------------------------------ the registry
_OWN = ("course_utils.checks", "course_utils.grading")
_AUTOGRAD = ("torch.autograd", "torch.func")
#: (grade_id, unit, check, kind), in the order of the course
COURSE = [
    ("rnn_cell", "01_rnn", checks.check_rnn_cell, "function"),
    ("rnn_forward", "01_rnn", checks.check_rnn_forward, "function"),
    ("rnn_step_backward", "02_gradients_through_time", checks.check_rnn_step_backward, "function"),
    ("rnn_backward", "02_gradients_through_time", checks.check_rnn_backward, "function"),
    ("clip_grad_norm", "02_gradients_through_time", checks.check_clip_grad_norm, "function"),
    ("lstm_cell", "03_lstm", checks.check_lstm_cell, "function"),
    ("lstm_forward", "03_lstm", checks.check_lstm_forward, "function"),
    ("lstm_cell_backward", "03_lstm", checks.check_lstm_cell_backward, "function"),
    ("gru_cell", "04_gru", checks.check_gru_cell, "function"),
    ("gru_cell_chung", "04_gru", checks.check_gru_cell_chung, "function"),
    ("gru_forward", "04_gru", checks.check_gru_forward, "function"),
    ("build_model", "05_comparison", checks.check_adding_model, "model"),
    ("make_batches", "06_char_lm", checks.check_make_batches, "function"),
    ("tbptt_step", "06_char_lm", checks.check_tbptt_step, "function"),
    ("perplexity", "06_char_lm", checks.check_perplexity, "function"),
    ("sample", "06_char_lm", checks.check_sample, "function"),
    ("last_valid_output", "07_layers_in_practice", checks.check_last_valid_output, "function"),
    ("final_states", "07_layers_in_practice", checks.check_final_states, "function"),
]


def test_the_course_registers_every_exercise_once_in_order():
    assert [(e.grade_id, e.unit, e.check, e.kind) for e in EXERCISES.values()] == COURSE
    assert all(e.function == e.grade_id and e.extra == {} for e in EXERCISES.values())
    units = sorted({unit for _, unit, _, _ in COURSE})
    assert [[e.grade_id for e in exercises_of(u)] for u in units] == \
        [[g for g, unit, _, _ in COURSE if unit == u] for u in units]
    assert exercises_of("08_transformers") == []


def test_an_exercise_cannot_be_changed_once_registered():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EXERCISES["rnn_cell"].forbidden = ()


def test_registering_a_grade_id_twice_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "EXERCISES", dict(EXERCISES))
    with pytest.raises(ValueError, match="exercise 'rnn_cell' is registered twice"):
        registry.register(registry.Exercise("rnn_cell", "my_rnn_cell", "01_rnn", checks.check_rnn_cell))
    extra = registry.Exercise("rnn_cell_2", "rnn_cell_2", "01_rnn", checks.check_rnn_cell)
    assert registry.register(extra) is extra and registry.EXERCISES["rnn_cell_2"] is extra
    assert "rnn_cell_2" not in EXERCISES


def test_what_each_exercise_must_not_reach():
    forbidden = {g: e.forbidden for g, e in EXERCISES.items()}
    assert CELL_REFERENCES[:3] == ("torch.nn.RNNCell", "torch.nn.LSTMCell", "torch.nn.GRUCell")
    assert {"course_utils.functional", "course_utils.modules", "torch._VF", "torch.ops.aten"} < set(CELL_REFERENCES)
    for grade_id in ("rnn_cell", "lstm_cell", "gru_cell", "gru_cell_chung"):
        assert forbidden[grade_id] == CELL_REFERENCES
    for grade_id in ("rnn_step_backward", "rnn_backward", "lstm_cell_backward"):
        assert forbidden[grade_id] == CELL_REFERENCES + _AUTOGRAD
    for kind in ("rnn", "lstm", "gru"):
        loop = forbidden[f"{kind}_forward"]
        assert loop[0] == f"course_utils.functional.{kind}_forward" and loop[-2:] == _OWN
        assert "torch.nn.LSTM" in loop and "torch._VF.lstm" in loop and "course_utils.functional" not in loop
    assert forbidden["clip_grad_norm"] == ("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm",
                                           "torch.nn.utils.get_total_norm", "torch.nn.utils.clip_grads_with_norm_",
                                           "torch.nn.utils.clip_grad", "course_utils.gradients",
                                           "course_utils.training") + _OWN
    assert forbidden["build_model"] == _OWN
    assert LM_REFERENCES == ("course_utils.lm", "course_utils.training.CharLM.sample") + _OWN
    for grade_id in ("make_batches", "tbptt_step", "perplexity", "sample"):
        assert forbidden[grade_id] == LM_REFERENCES
    for grade_id in ("last_valid_output", "final_states"):
        assert forbidden[grade_id] == (f"course_utils.practice.{grade_id}",) + _OWN


# ------------------------------------------------------------------ the tripwire
def _site(fn) -> str:
    code = inspect.unwrap(fn).__code__
    return f"{code.co_filename}:{code.co_firstlineno}"


def test_targets_are_a_modules_file_a_functions_code_or_a_builtins_name():
    from course_utils import practice, training
    assert tripwire.targets(("course_utils.functional",)) == (frozenset({ref.__file__}), frozenset())
    assert tripwire.targets(("course_utils.practice.last_valid_output",)) == \
        (frozenset({_site(practice.last_valid_output)}), frozenset())
    places, names = tripwire.targets(("course_utils.training.CharLM.sample",))
    assert (places, names) == (frozenset({_site(training.CharLM.sample)}), frozenset())
    assert _site(training.CharLM.forward) not in places  # the method next to it stays allowed
    assert tripwire.targets(("torch.rnn_tanh_cell", "torch._VF.lstm")) == \
        (frozenset(), frozenset({"rnn_tanh_cell", "lstm"}))
    assert tripwire.targets(("sys",))[0] == frozenset()  # a module built into Python has no file to watch


@pytest.mark.parametrize("dotted", ["torch.no_such_function", "no_such_package.f", "course_utils.functional.nope.__init__"])
def test_a_forbidden_name_that_does_not_exist_is_no_target(dotted):
    assert tripwire._resolve(dotted) is None
    assert tripwire.targets((dotted,)) == (frozenset(), frozenset())


def _logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper


def test_a_forbidden_class_is_every_method_it_defines():
    class Model:
        size = 3
        __doc__ = "not code"

        def forward(self, x):
            return x

        @staticmethod
        def helper(x):
            return x

        @classmethod
        def build(cls):
            return cls()

        @_logged
        def sample(self):
            return self

    assert tripwire._code_sites(Model) == {_site(Model.forward), _site(Model.helper), _site(Model.build.__func__),
                                           _site(Model.sample)}
    wrapper = Model.sample.__code__
    assert f"{wrapper.co_filename}:{wrapper.co_firstlineno}" != _site(Model.sample)  # the wrapper's code is not it


def test_hit_is_the_file_or_the_function_the_code_belongs_to():
    code = ref.rnn_cell.__code__
    assert tripwire.hit(code, frozenset({ref.__file__})) == ref.__file__
    assert tripwire.hit(code, frozenset({_site(ref.rnn_cell)})) == _site(ref.rnn_cell)
    assert tripwire.hit(code, frozenset({_site(ref.lstm_cell), "/elsewhere/functional.py"})) is None


def _cell_args():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, generator=g), torch.zeros(2, 4), torch.randn(4, 3, generator=g), torch.randn(4, 4, generator=g)


def test_watching_records_calls_into_the_places_and_of_the_builtins():
    hits: set = set()

    def answer(x, h, w_ih, w_hh):
        ref.rnn_cell(x, h, w_ih, w_hh)
        return torch.rnn_tanh_cell(x, h, w_ih, w_hh)

    before = sys.getprofile()
    watched = tripwire.watching(answer, frozenset({ref.__file__}), frozenset({"rnn_tanh_cell"}), hits)
    assert watched.__name__ == "answer"
    out = watched(*_cell_args())
    assert torch.allclose(out, ref.rnn_cell(*_cell_args()))
    assert hits == {ref.__file__, "torch.rnn_tanh_cell"}
    assert sys.getprofile() is before


def test_watching_records_nothing_for_other_calls_or_a_builtin_not_called():
    hits: set = set()

    def answer(x, h, w_ih, w_hh):
        hidden = torch.tanh(x @ w_ih.T + h @ w_hh.T)
        return hidden if len(x) else torch.rnn_tanh_cell  # names the builtin, never calls it

    out = tripwire.watching(answer, frozenset({ref.__file__}), frozenset({"rnn_tanh_cell"}), hits)(*_cell_args())
    assert hits == set() and out.shape == (2, 4)
    assert tripwire.watching(lambda: torch.rnn_tanh_cell, frozenset(), frozenset({"rnn_tanh_cell"}), hits)() \
        is torch.rnn_tanh_cell
    assert hits == set()


def test_watching_sees_threads_the_function_starts_and_a_profiler_switched_off():
    hits: set = set()

    def in_a_thread(*args):
        thread = threading.Thread(target=ref.rnn_cell, args=args)
        thread.start()
        thread.join()

    tripwire.watching(in_a_thread, frozenset({ref.__file__}), frozenset(), hits)(*_cell_args())
    assert hits == {ref.__file__}
    assert getattr(threading, "_profile_hook", None) is None  # later threads are not watched

    hits.clear()
    before = sys.getprofile()
    tripwire.watching(lambda: sys.setprofile(None), frozenset(), frozenset(), hits)()
    assert hits == {"sys.setprofile (the tripwire was switched off)"}
    assert sys.getprofile() is before


def test_torch_namespaces_without_a_file_are_watched_by_name_or_by_their_operator_calls():
    import torch._ops as ops
    builtins = frozenset(tripwire.TORCH_BUILTINS)
    assert {"_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "lstm_cell", "gru"} <= builtins
    assert tripwire.targets(("torch._VF",)) == (frozenset(), builtins)
    assert tripwire.targets(("torch._C._VariableFunctions",)) == (frozenset(), builtins)
    calls = frozenset({_site(ops.OpOverloadPacket.__call__), _site(ops.OpOverload.__call__)})
    assert tripwire.targets(("torch.ops.aten",)) == (calls, frozenset())
    assert tripwire.targets(("torch.ops",)) == (calls, frozenset())


def _gru_args():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(2, 3, generator=g), torch.randn(2, 4, generator=g), torch.randn(12, 3, generator=g),
            torch.randn(12, 4, generator=g))


@pytest.mark.parametrize("call", [
    torch.ops.aten.gru_cell.default,  # an operator overload reaches C under no name at all
    torch.ops.aten.gru_cell,
    torch._VF.gru_cell,
    torch.gru_cell,
])
def test_a_cells_forbidden_torch_step_is_caught_at_run_time_however_it_is_reached(call):
    """(The fused ``_thnn_fused_*_cell`` steps, CUDA only, are reached the same ways.)"""
    places, names = tripwire.targets(tuple(CELL_REFERENCES))
    hits: set = set()
    out = tripwire.watching(lambda *args: call(*args), places, names, hits)(*_gru_args())
    assert out.shape == (2, 4) and hits


def test_a_loop_may_call_torchs_cell_and_plain_operators_are_never_flagged():
    loop_forbidden = EXERCISES["lstm_forward"].forbidden
    places, names = tripwire.targets(tuple(loop_forbidden))
    hits: set = set()
    x, h, w_ih, w_hh = _cell_args()
    w_ih, w_hh = torch.cat([w_ih] * 4), torch.cat([w_hh] * 4)
    tripwire.watching(lambda: torch.lstm_cell(x, (h, h), w_ih, w_hh), places, names, hits)()
    assert hits == set()
    tripwire.watching(lambda: torch.ops.aten.lstm_cell(x, (h, h), w_ih, w_hh), places, names, hits)()
    assert hits == {_site(torch._ops.OpOverloadPacket.__call__)}
    hits.clear()
    places, names = tripwire.targets(tuple(CELL_REFERENCES))
    own = lambda: torch.sigmoid(torch.nn.functional.linear(x, w_ih) + h @ w_hh.T).chunk(4, 1)[0].tanh()
    assert tripwire.watching(own, places, names, hits)().shape == (2, 4)
    assert hits == set()


def test_describe_names_hits_relative_to_course_utils_or_torch():
    assert tripwire.describe({"/work/course_utils/functional.py:87", "sys.setprofile (the tripwire was switched off)",
                              "/opt/lib/python3.11/site-packages/torch/nn/modules/rnn.py", "torch.rnn_tanh_cell"}) == \
        ("torch/nn/modules/rnn.py, course_utils/functional.py:87, sys.setprofile (the tripwire was switched off), "
         "torch.rnn_tanh_cell")  # in the order of the full paths
    # the first marker found names the place: a course installed under a folder called torch stays the course's
    assert tripwire.describe({"/home/ana/torch/course_utils/functional.py:87"}) == "course_utils/functional.py:87"
    assert tripwire.describe({"/srv/course_utils/venv/lib/torch/nn/modules/rnn.py"}) == \
        "course_utils/venv/lib/torch/nn/modules/rnn.py"


# ------------------------------------------------------------------ model_calls: the judging of model checks
from course_utils.checks import model_calls  # noqa: E402


def _named(k: int, off: tuple = ()):
    return lambda: [(f"o{i}", torch.full((2,), float(i) + (1.0 if i in off else 0.0))) for i in range(k)]


def _judge_outputs(answer, k: int, **kwargs):
    case = model_calls.ModelCase("one case", lambda fn: (fn(), ()))
    return model_calls.judge("f", answer, [case], _named(k), [], lambda answer, args: answer, 2, "f()",
                             "one case", **kwargs)


@pytest.mark.parametrize("k, off, listed", [
    (1, (0,), "o0 is not right."),
    (4, (0, 1, 2, 3), "o0, o1, o2, o3 are not right."),
    (5, (0, 1, 2, 3, 4), "o0, o1, o2, o3 ... are not right."),
    (5, (3,), "o3 is not right."),
])
def test_a_model_checks_message_lists_four_wrong_outputs_and_the_first_differences_of_two(k, off, listed):
    result = _judge_outputs(_named(k, off), k)
    assert (result.status, result.points) == ("wrong", 0)
    lines = result.message.split("\n")
    assert lines[:2] == ["f: wrong values for one case.", listed]
    assert len(lines) == 2 + min(len(off), 2)  # the first difference of (at most) two outputs
    for line, name in zip(lines[2:], [f"o{i}" for i in off]):
        assert name in line


def test_a_model_checks_error_that_names_a_mistake_gets_no_points():
    def answer():
        raise RuntimeError("the graph was freed")

    named = Mistake("the state was never detached.", answer, id="state_not_detached")
    result = _judge_outputs(answer, 2, error_mistakes=lambda exc: named if "freed" in str(exc) else None)
    assert (result.status, result.points, result.max_points, result.mistakes) == (
        "wrong", 0, 2, ("state_not_detached",))
    assert result.message == ("f: your function raised RuntimeError (for one case).\n"
                              "Likely mistake: the state was never detached.")


def test_a_model_checks_shape_problem_gets_no_points():
    result = _judge_outputs(lambda: [("o0", torch.zeros(3)), ("o1", torch.ones(2))], 2)
    assert (result.status, result.points) == ("wrong", 0)
    assert result.message == "f: expected o0 of shape (2,), got (3,) (for one case)"


def test_integer_outputs_are_compared_exactly_whatever_their_integer_dtype():
    assert model_calls.close(torch.tensor([1, 2], dtype=torch.int32), torch.tensor([1, 2]), 1e-5)
    assert model_calls.close(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]), 1e-5)  # one side integer: as integers
    assert not model_calls.close(torch.tensor([1_000_001]), torch.tensor([1_000_000]), 1e-5)  # allclose: "close"
    assert not model_calls.close(torch.tensor([1, 2]), torch.tensor([[1, 2]]), 1e-5)
    assert model_calls.close(torch.tensor([1.0]), torch.tensor([1.0 + 1e-6]), 1e-5)
