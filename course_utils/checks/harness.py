"""Checking a learner's function against the reference, and naming the mistake when it differs.

A function exercise is described by a :class:`FunctionExercise`: the reference, how to read
an answer into named tensors, the inputs to try (:class:`Case`) and the mistakes to recognise
(:class:`Mistake`). :func:`check_function` runs the learner's function on every case and turns
the first problem it meets into a :class:`CheckResult` whose message says what is wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .result import CheckResult, fmt, not_implemented, raised, type_name

__all__ = ["TOLERANCES", "MISTAKE_TOLERANCES", "tolerance", "Case", "Mistake", "FunctionExercise", "Malformed",
           "check_function", "expect_tensor", "notebook_check"]

#: rtol = atol used when comparing with the reference, by dtype
TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-10}
#: looser tolerance for telling which deliberate mistake an answer matches (different summation orders)
MISTAKE_TOLERANCES = {torch.float32: 1e-4, torch.float64: 1e-8}


# ------------------------------------------------------------------ comparison
def tolerance(dtype: torch.dtype, table: dict | None = None) -> float:
    return (table or TOLERANCES).get(dtype, TOLERANCES[torch.float32])


def _close(got: Tensor, expected: Tensor, tol: float) -> bool:
    return bool(torch.allclose(got, expected, rtol=tol, atol=tol))


def _first_difference(name: str, got: Tensor, expected: Tensor, tol: float) -> str:
    bad = ~torch.isclose(got, expected, rtol=tol, atol=tol)
    index = tuple(int(i) for i in bad.nonzero()[0]) if bad.any() else ()
    error = (got - expected).abs()
    finite = error[torch.isfinite(error)]
    worst = f"{float(finite.max()):.3g}" if finite.numel() else "nan"
    where = f" at index {index}" if index else ""
    e, g = _distinct(float(expected[index]), float(got[index]))
    return (f"{name} first differs{where}: expected {e}, got {g} "
            f"(largest absolute error {worst}, tolerance {tol:g})")


def _distinct(a: float, b: float) -> tuple[str, str]:
    """Two numbers printed with as few decimals (at least 4, at most 17 significant digits) as tell them apart."""
    for digits in range(4, 18):
        x, y = fmt(a, digits), fmt(b, digits)
        if x != y:
            return x, y
    return fmt(a, 17), fmt(b, 17)


class Malformed(Exception):
    """An answer whose structure is wrong (not a tensor, wrong number of outputs); the message says how.

    ``id`` names the mistake when the structure itself gives it away (only the last state returned,
    a Python float where a 0-d tensor belongs); it goes into ``CheckResult.mistakes``.
    """

    def __init__(self, message: str, id: str = ""):
        super().__init__(message)
        self.id = id


# ------------------------------------------------------------- the exercises
@dataclass(frozen=True)
class Case:
    """One call: positional and keyword arguments and a short description for messages."""

    label: str
    args: tuple
    kwargs: dict = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        for _, t in _flatten(self.args):
            return t.dtype
        return torch.float32


@dataclass(frozen=True)
class Mistake:
    """A deliberately wrong variant of the reference, and what to tell a learner whose answer matches it.

    ``outputs`` names the outputs the variant speaks about (``None``: all; ``"clipped"`` also covers
    ``"clipped[0]"``, ...); an answer matches when those outputs agree with the variant's.
    """

    description: str
    fn: Callable
    outputs: tuple[str, ...] | None = None
    id: str = ""  # a stable name ("gate_order"): reports count mistakes by it, never by the message text


@dataclass(frozen=True)
class FunctionExercise:
    """Everything :func:`check_function` needs to know about one exercise."""

    name: str
    reference: Callable
    unpack: Callable[[Any, Case], list[tuple[str, Tensor]]]  # raises Malformed
    mistakes: Callable[[], list[Mistake]]
    arg_names: tuple  # names of the positional arguments, for in-place messages
    signature: str  # how the learner's function is called, for messages
    coverage: str  # "7 random inputs (...)", for the passed message
    error_hint: Callable[[Exception], str | None] = lambda exc: None
    shape_hint: Callable[[str, tuple, tuple], str | None] = lambda name, expected, got: None
    tolerances: dict = field(default_factory=lambda: dict(TOLERANCES))
    inplace_hint: str = "e.g. `h = h + ...`, not `h += ...` or `.mul_()`"


def _flatten(obj: Any, name: str = "", names: Any = None):
    """Yield (name, tensor) for every tensor in nested tuples/lists."""
    if isinstance(obj, Tensor):
        yield name, obj
    elif isinstance(obj, (tuple, list)):
        for k, item in enumerate(obj):
            sub = names[k] if isinstance(names, tuple) and k < len(names) else None
            label = sub if isinstance(sub, str) else f"{name}[{k}]"
            yield from _flatten(item, label, sub if isinstance(sub, tuple) else None)


def _clone(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.clone()
    if isinstance(obj, tuple):
        return tuple(_clone(o) for o in obj)
    if isinstance(obj, list):
        return [_clone(o) for o in obj]
    return obj


def _named_args(case: Case, arg_names: tuple) -> list[tuple[str, Tensor]]:
    return list(_flatten(case.args, "args", arg_names))


def _covers(outputs: tuple[str, ...] | None, name: str) -> bool:
    """Whether a mistake that speaks about ``outputs`` speaks about ``name`` ("clipped" covers "clipped[2]")."""
    return outputs is None or any(name == o or name.startswith(o + "[") for o in outputs)


def _diagnose(ex: FunctionExercise, case: Case, got: list[tuple[str, Tensor]], expected: list[tuple[str, Tensor]],
              wrong: set[str]) -> list[Mistake]:
    """The mistakes that explain the wrong outputs, in the order they are listed.

    A mistake is named only when the answer is close to its variant *and* the variant is
    itself wrong on the outputs it explains (far from the reference): a variant that coincides
    with the reference on this case (tanh ignored on a tanh case) says nothing about the answer.
    """
    tol = tolerance(case.dtype, MISTAKE_TOLERANCES)
    strict = tolerance(case.dtype, ex.tolerances)
    got_by_name, expected_by_name = dict(got), dict(expected)
    unexplained, found = set(wrong), []
    for mistake in ex.mistakes():
        try:
            variant = dict(ex.unpack(mistake.fn(*_clone(case.args), **case.kwargs), case))
        except Exception:  # a variant that cannot run on these shapes says nothing here
            continue
        names = tuple(n for n in variant if _covers(mistake.outputs, n))
        explains = unexplained.intersection(names)
        if not explains:
            continue
        if not all(n in got_by_name and n in variant and got_by_name[n].shape == variant[n].shape
                   and _close(got_by_name[n], variant[n], tol) for n in names):
            continue
        if any(n in expected_by_name and variant[n].shape == expected_by_name[n].shape
               and _close(variant[n], expected_by_name[n], max(tol, strict)) for n in explains):
            continue  # on this case the mistake gives (nearly) the right values: it cannot be what went wrong
        found.append(mistake)
        unexplained -= set(names)
        if not unexplained:
            break
    return found if not unexplained else []


def check_function(ex: FunctionExercise, fn: Any, cases: Sequence[Case], max_points: float) -> CheckResult:
    """Run ``fn`` on every case against the reference; the first problem becomes the result."""
    name = ex.name
    if not callable(fn):
        return CheckResult(name, "error", 0, max_points,
                           f"{name}: expected a function, got {type_name(fn)} — pass the function itself, "
                           f"`check_{name}({name})`, without calling it.")
    for case in cases:
        expected = ex.unpack(ex.reference(*_clone(case.args), **case.kwargs), case)
        learner_args = _clone(case.args)
        try:
            answer = fn(*learner_args, **case.kwargs)
        except NotImplementedError:
            return not_implemented(name, max_points)
        except Exception as exc:  # the learner's bug, reported with the learner's line
            return raised(name, exc, max_points, during=case.label, hint=_hint(ex, exc))
        if answer is None:
            return CheckResult(name, "wrong", 0, max_points,
                               f"{name}: your function returned None — did you forget the `return` statement?")
        try:
            got = ex.unpack(answer, case)
        except Malformed as bad:
            return CheckResult(name, "wrong", 0, max_points, f"{name}: {bad} (for {case.label})",
                               (bad.id,) if bad.id else ())
        problem = _structure_problem(ex, got, expected, case)
        if problem:
            return CheckResult(name, "wrong", 0, max_points, f"{name}: {problem} (for {case.label})")
        tol = tolerance(case.dtype, ex.tolerances)
        wrong = [n for (n, g), (_, e) in zip(got, expected) if not _close(g, e, tol)]
        if wrong:
            message, ids = _wrong_values(ex, case, got, expected, wrong, tol)
            return CheckResult(name, "wrong", 0, max_points, message, ids)
        changed = [n for (n, after), (_, before) in zip(_named_args(Case(case.label, learner_args), ex.arg_names),
                                                        _named_args(case, ex.arg_names))
                   if after.shape != before.shape or not torch.equal(after, before)]
        if changed:
            return CheckResult(name, "wrong", 0, max_points,
                               f"{name}: the values are right, but your function changed its input "
                               f"{', '.join(f'`{c}`' for c in changed)} in place (for {case.label}). "
                               f"Compute new tensors instead ({ex.inplace_hint}).")
    return CheckResult(name, "passed", max_points, max_points, f"{name}: passed — matches the reference on "
                                                               f"{ex.coverage}.")


def _hint(ex: FunctionExercise, exc: Exception) -> str | None:
    hint = ex.error_hint(exc)
    if hint is None and isinstance(exc, TypeError) and "argument" in str(exc):
        hint = f"the function is called as `{ex.signature}`."
    return hint


def _structure_problem(ex: FunctionExercise, got, expected, case: Case) -> str | None:
    if len(got) != len(expected):  # unpack guarantees the same names; this is a safety net
        return f"expected {len(expected)} outputs, got {len(got)}"
    for (n, g), (_, e) in zip(got, expected):
        if tuple(g.shape) != tuple(e.shape):
            hint = ex.shape_hint(n, tuple(e.shape), tuple(g.shape))
            return (f"expected {n} of shape {tuple(e.shape)}, got {tuple(g.shape)}"
                    + (f". Hint: {hint}" if hint else ""))
        if g.dtype != e.dtype:
            return (f"expected {n} of dtype {e.dtype} (the dtype of the inputs), got {g.dtype}. "
                    f"Hint: tensors you create need `dtype=x.dtype` (or use `torch.zeros_like`).")
        if g.device != e.device:
            return f"expected {n} on device {e.device}, got {g.device}"
    return None


def _wrong_values(ex, case, got, expected, wrong, tol) -> tuple[str, tuple[str, ...]]:
    """The message for wrong values and the ids of the mistakes it names (empty when none is recognised)."""
    head = f"{ex.name}: wrong values for {case.label}."
    found = _diagnose(ex, case, got, expected, set(wrong))
    if found:
        return ("\n".join([head] + [f"Likely mistake: {m.description}" for m in found]),
                tuple(m.id or "unnamed" for m in found))
    lines = [head]
    right = [n for n, _ in got if n not in wrong]
    if right:
        lines.append(f"{', '.join(right)} {'is' if len(right) == 1 else 'are'} right; "
                     f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not.")
    by_name_got, by_name_exp = dict(got), dict(expected)
    for n in wrong[:2]:
        g = by_name_got[n].detach()
        lines.append(_first_difference(n, g, by_name_exp[n], tol))
    return "\n".join(lines), ()


def expect_tensor(value: Any, name: str) -> Tensor:
    """``value`` if it is a tensor (detached), else :class:`Malformed` saying what came."""
    if not isinstance(value, Tensor):
        raise Malformed(f"expected {name} to be a torch.Tensor, got {type_name(value)}")
    return value.detach()


def notebook_check(check: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """Give a check what a notebook needs around it.

    - Calling the reference is caught as the grader catches it: the notebook's cells (IPython's
      input history, else the function's module) are read for the exercise's forbidden names
      (:func:`.static.reference_use`), and the calls the function makes while checked are watched
      (:func:`.tripwire.watching`); either gives status ``uses_reference`` and 0 points.
    - Unless ``quiet=True``, a result that did not pass is announced on stderr
      (:meth:`CheckResult.announce`), which is how nbgrader sees a failed test cell.

    The grader calls the check with ``quiet=True`` and a proxy of the learner's function, which
    this wrapper leaves alone (the grader does the same reading of the submitted file). Tests that
    build a deliberately wrong answer on top of the reference pass ``watch=False``.
    """

    @functools.wraps(check)
    def checked(fn, *args, quiet: bool = False, watch: bool = True, **kwargs) -> CheckResult:
        exercise = _exercise_of(checked)
        if watch and exercise is not None and _is_local_function(fn):
            result = _with_reference_watch(check, exercise, fn, args, kwargs)
        else:
            result = check(fn, *args, **kwargs)
        return result if quiet else result.announce()
    return checked


def _exercise_of(check):
    from .registry import EXERCISES
    return next((e for e in EXERCISES.values() if e.check is check), None)


def _history() -> list[str] | None:
    import sys
    ip = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    history = getattr(ip, "user_ns", {}).get("In") if ip is not None else None
    return [h for h in history if isinstance(h, str)] if isinstance(history, list) and history else None


def _is_local_function(fn) -> bool:
    """A plain Python function to watch: not a grader's proxy, not the course's own code outside a notebook."""
    import types
    if not isinstance(fn, types.FunctionType):
        return False
    return not (fn.__module__ or "").startswith("course_utils") or _history() is not None


def _notebook_sources(fn) -> list[str]:
    """The code the notebook ran so far (IPython's ``In``), else the source of ``fn``'s module."""
    import linecache
    history = _history()
    if history is not None:
        return history
    lines = linecache.getlines(fn.__code__.co_filename)
    return ["".join(lines)] if lines else []


def _with_reference_watch(check, exercise, fn, args, kwargs) -> CheckResult:
    from . import static, tripwire
    from .result import uses_reference
    points = kwargs.get("max_points", 1)
    findings = static.reference_use(_notebook_sources(fn), exercise.function, exercise.forbidden)
    if findings:
        return uses_reference(exercise.grade_id, points, exercise.function, "; ".join(f.text() for f in findings[:3]))
    if (fn.__module__ or "").startswith("course_utils"):  # the course's own function, named as the learner's
        return uses_reference(exercise.grade_id, points, exercise.function, f"`{fn.__module__}.{fn.__name__}`")
    hits: set = set()
    files, names = tripwire.targets(tuple(exercise.forbidden))
    result = check(tripwire.watching(fn, files, names, hits), *args, **kwargs)
    if hits:
        return uses_reference(exercise.grade_id, points, exercise.function, f"{tripwire.describe(hits)} while it runs")
    return result
