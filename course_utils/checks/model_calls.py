"""Running a check whose arguments must be new for every call: a model that keeps gradients, a generator.

:func:`.harness.check_function` clones tensors between the calls of the reference, the learner's
function and each deliberate mistake, but a model (whose ``.grad`` a call changes) or a
``torch.Generator`` (whose state a call advances) cannot be shared that way. Here each case is a
``run(fn)`` that builds its arguments anew from the check's seed, calls ``fn`` (once, or several
times in a chain) and returns ``(answer, args)``; a ``read(answer, args)`` turns that into named
tensors (returned values and, for a model, every parameter's ``.grad`` after the call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .harness import MISTAKE_TOLERANCES, Malformed, Mistake, _first_difference, tolerance
from .result import CheckResult, not_implemented, raised, type_name

__all__ = ["ModelCase", "judge", "close"]

@dataclass(frozen=True)
class ModelCase:
    """One call (or a chain of calls): ``run(fn)`` builds fresh arguments, calls ``fn`` and returns
    ``(answer, args)``, the arguments as they are after the call (the model holds its gradients)."""

    label: str
    run: Callable[[Callable], tuple]
    dtype: torch.dtype = torch.float32


def close(a: Tensor, b: Tensor, tol: float) -> bool:
    if a.dtype in (torch.long, torch.int32) or b.dtype in (torch.long, torch.int32):
        return a.shape == b.shape and torch.equal(a.long(), b.long())
    return bool(torch.allclose(a, b, rtol=tol, atol=tol))


def judge(name: str, fn, cases: list[ModelCase], reference: Callable, mistakes: list[Mistake],
           read: Callable, max_points: float, signature: str, coverage: str,
           error_mistakes: Callable[[Exception], Mistake | None] = lambda exc: None,
           shape_hint: Callable[[str, tuple, tuple], str | None] = lambda n, e, g: None,
           after_wrong: Callable[[ModelCase, list], Mistake | None] = lambda case, got: None) -> CheckResult:
    """Run ``fn`` on every case against ``reference``; the first problem becomes the result.

    torch runs on one CPU thread meanwhile (restored after): the models are tiny, and on a busy
    machine a second thread that waits for a core makes every small operation many times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _judge_cases(name, fn, cases, reference, mistakes, read, max_points, signature, coverage,
                            error_mistakes, shape_hint, after_wrong)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _judge_cases(name, fn, cases, reference, mistakes, read, max_points, signature, coverage, error_mistakes,
                 shape_hint, after_wrong) -> CheckResult:
    if not callable(fn):
        return CheckResult(name, "error", 0, max_points,
                           f"{name}: expected a function, got {type_name(fn)} — pass the function itself, "
                           f"`check_{name}({name})`, without calling it.")
    for case in cases:
        expected = read(*case.run(reference))
        try:
            answer, args = case.run(fn)
        except NotImplementedError:
            return not_implemented(name, max_points)
        except Exception as exc:  # the learner's bug, reported with the learner's line
            mistake = error_mistakes(exc)
            if mistake is not None:
                return CheckResult(name, "wrong", 0, max_points,
                                   f"{name}: your function raised {type(exc).__name__} (for {case.label}).\n"
                                   f"Likely mistake: {mistake.description}", (mistake.id,))
            hint = f"the function is called as `{signature}`." if isinstance(exc, TypeError) else None
            return raised(name, exc, max_points, during=case.label, hint=hint)
        if answer is None:
            return CheckResult(name, "wrong", 0, max_points,
                               f"{name}: your function returned None — did you forget the `return` statement?")
        try:
            got = read(answer, args)
        except Malformed as bad:
            return CheckResult(name, "wrong", 0, max_points, f"{name}: {bad} (for {case.label})")
        for (n, g), (_, e) in zip(got, expected):
            if tuple(g.shape) != tuple(e.shape):
                hint = shape_hint(n, tuple(e.shape), tuple(g.shape))
                return CheckResult(name, "wrong", 0, max_points,
                                   f"{name}: expected {n} of shape {tuple(e.shape)}, got {tuple(g.shape)}"
                                   + (f". Hint: {hint}" if hint else "") + f" (for {case.label})")
        tol = tolerance(case.dtype)
        wrong = [n for (n, g), (_, e) in zip(got, expected) if not close(g, e, tol)]
        if not wrong:
            continue
        head = f"{name}: wrong values for {case.label}."
        found = _diagnose(case, got, expected, wrong, mistakes, read)
        if not found:
            extra = after_wrong(case, got)
            found = [extra] if extra is not None else []
        if found:
            return CheckResult(name, "wrong", 0, max_points,
                               "\n".join([head] + [f"Likely mistake: {m.description}" for m in found]),
                               tuple(m.id for m in found))
        lines = [head, (f"{', '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''} "
                        f"{'is' if len(wrong) == 1 else 'are'} not right.")]
        got_d, exp_d = dict(got), dict(expected)
        lines += [_first_difference(n, got_d[n].double(), exp_d[n].double(), tol) for n in wrong[:2]]
        return CheckResult(name, "wrong", 0, max_points, "\n".join(lines))
    return CheckResult(name, "passed", max_points, max_points, f"{name}: passed — matches the reference on {coverage}.")


def _diagnose(case: ModelCase, got, expected, wrong: list[str], mistakes: list[Mistake], read) -> list[Mistake]:
    """The first mistake whose variant gives the answer's values where the answer is wrong (and is itself wrong)."""
    tol, strict = tolerance(case.dtype, MISTAKE_TOLERANCES), tolerance(case.dtype)
    got_d, exp_d = dict(got), dict(expected)
    for mistake in mistakes:
        try:
            variant = dict(read(*case.run(mistake.fn)))
        except Exception:  # a variant that cannot run here says nothing
            continue
        if not all(n in variant and variant[n].shape == got_d[n].shape and close(got_d[n], variant[n], tol)
                   for n in got_d):
            continue
        if all(close(variant[n], exp_d[n], strict) for n in wrong):
            continue  # on this case the mistake gives the right values: it cannot be what went wrong
        return [mistake]
    return []


