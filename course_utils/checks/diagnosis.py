"""Naming what comparing values alone cannot: two mistakes at once, and mistakes that make the code raise.

- :func:`pairs` builds, from single mistakes described as :class:`Spec` (an axis, the keyword
  arguments of a variant builder, a description and an id), one combined :class:`Mistake` for every
  two specs on different axes. Its id joins the two ids with ``+``; :func:`split_ids` turns that
  into the two stable ids in :attr:`CheckResult.mistakes`, so reports count each mistake by its own
  name.
- :func:`name_error` handles a function that raised: it calls the learner's function again on the
  check's cases and, when a deliberately wrong variant raises the *same* error on the same case
  (same exception type, same numbers in the message, in any order), names that mistake.

Both call the learner's function only as ``fn(*args, **kwargs)`` and read only what it returns or raises.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .harness import Case, Mistake, _clone
from .result import CheckResult

__all__ = ["COMBINED", "Spec", "name_error", "pairs", "split_ids"]

#: joins the ids of a combined mistake ("gate_order+missing_bias_ih")
COMBINED = "+"


@dataclass(frozen=True)
class Spec:
    """A single mistake: which ``axis`` of the variant it changes, the builder's keyword arguments, what to say."""

    axis: str
    kwargs: dict
    description: str
    id: str

    def mistake(self, build: Callable[..., Callable]) -> Mistake:
        return Mistake(self.description, build(**self.kwargs), id=self.id)


def pairs(specs: Sequence[Spec], build: Callable[..., Callable]) -> list[Mistake]:
    """One :class:`Mistake` for every two specs on different axes, both changes made at once."""
    out = []
    for k, a in enumerate(specs):
        for b in specs[k + 1:]:
            if a.axis == b.axis:
                continue
            out.append(Mistake(f"two mistakes at once:\n  1. {a.description}\n  2. {b.description}",
                               build(**a.kwargs, **b.kwargs), id=f"{a.id}{COMBINED}{b.id}"))
    return out


def split_ids(result: CheckResult) -> CheckResult:
    """``result`` with every combined id (``a+b``) replaced by its parts, each id once, in order."""
    ids: list[str] = []
    for mistake_id in result.mistakes:
        for part in mistake_id.split(COMBINED):
            if part not in ids:
                ids.append(part)
    if tuple(ids) == tuple(result.mistakes):
        return result
    return dataclasses.replace(result, mistakes=tuple(ids))


def _signature(exc: BaseException) -> tuple[str, tuple[int, ...], str]:
    """What identifies an error whatever the operand order: its type, the numbers in it, its words."""
    text = str(exc)
    numbers = tuple(sorted(int(n) for n in re.findall(r"\d+", text)))
    words = re.sub(r"\d+|\b[ab]\b", "", text)
    return type(exc).__name__, numbers, " ".join(words.split())


def name_error(result: CheckResult, fn: Callable, cases: Sequence[Case], variants: Sequence[Mistake]) -> CheckResult:
    """If ``fn`` raised, name a variant that raises the same error on the first case where ``fn`` raises."""
    if result.status != "error" or result.mistakes or not variants:
        return result
    for case in cases:
        try:
            fn(*_clone(case.args), **case.kwargs)
        except NotImplementedError:
            return result
        except Exception as exc:  # the learner's error, compared with the variants' errors
            wanted = _signature(exc)
            for mistake in variants:
                try:
                    mistake.fn(*_clone(case.args), **case.kwargs)
                except Exception as variant_exc:
                    if _signature(variant_exc) == wanted:
                        return dataclasses.replace(result, message=f"{result.message}\nLikely mistake: "
                                                                   f"{mistake.description}",
                                                   mistakes=(mistake.id,))
            return result
    return result
