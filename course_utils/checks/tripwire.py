"""Catching a call of the reference while the learner's function runs: a profiler that records it.

:func:`targets` turns an exercise's forbidden names (:mod:`.registry`) into the source files
and torch builtin names a profiler can recognise; :func:`watching` calls a function with that
profiler on. A notebook check uses it directly; the batch grader sends the same targets to the
learner's sandboxed kernel, whose own copy of this logic reports back (see
``course_utils.grading``). It is a tripwire for honest mistakes and for the obvious shortcut,
not a security boundary: code in the same process can switch a profiler off (which is itself
recorded) — the grader's static reading of the notebook (:mod:`.static`) does not depend on it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import threading
from collections.abc import Callable, Sequence

__all__ = ["targets", "watching", "TORCH_BUILTINS"]

#: torch's C implementations of recurrent steps and layers, seen by a profiler as ``c_call`` events
TORCH_BUILTINS = ("rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "rnn_tanh", "rnn_relu", "lstm", "gru",
                  "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "_VF")

#: torch's namespaces with no Python source to watch. ``torch._VF``'s recurrent steps are watched by
#: name (``c_call``); a call through ``torch.ops`` by the ``__call__`` of its operator objects (every
#: operator, as the static reading forbids the whole namespace), because
#: ``torch.ops.aten._thnn_fused_gru_cell.default`` reaches C under no name at all
_WATCHED_BY_NAME = ("torch._VF", "torch._C._VariableFunctions")
_WATCHED_BY_OPERATOR_CALL = ("torch.ops", "torch.ops.aten")
_OPERATOR_CALLS = ("torch._ops.OpOverloadPacket.__call__", "torch._ops.OpOverload.__call__")


def _resolve(dotted: str):
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def _code_sites(obj) -> set[str]:
    """``"file:line"`` of the code of a function, or of every method of a class (decorators unwrapped)."""
    sites = set()
    members = vars(obj).values() if inspect.isclass(obj) else [obj]
    for member in members:
        fn = inspect.unwrap(getattr(member, "__func__", member)) if callable(member) or isinstance(
            member, (staticmethod, classmethod)) else None
        code = getattr(fn, "__code__", None)
        if code is not None:
            sites.add(f"{code.co_filename}:{code.co_firstlineno}")
    return sites


@functools.lru_cache(maxsize=64)
def targets(forbidden: tuple[str, ...]) -> tuple[frozenset, frozenset]:
    """(places, builtin names) that calling one of ``forbidden`` goes through.

    A place is a whole source file (for a module: ``"path"``) or one function's code
    (``"path:first line"``, for a function, a method or every method of a class), so that
    forbidding ``CharLM.sample`` does not forbid ``CharLM.forward`` next to it.
    """
    places, names = set(), set()
    for dotted in forbidden:
        if dotted in _WATCHED_BY_NAME:
            names.update(TORCH_BUILTINS)
            continue
        if dotted in _WATCHED_BY_OPERATOR_CALL:
            for call in _OPERATOR_CALLS:
                places.update(_code_sites(_resolve(call)))
            continue
        obj = _resolve(dotted)
        if obj is None:
            continue
        if inspect.ismodule(obj) and getattr(obj, "__file__", None):
            places.add(obj.__file__)
            continue
        sites = _code_sites(obj)
        if sites:
            places.update(sites)
        elif getattr(obj, "__name__", None):
            names.add(obj.__name__)
    return frozenset(places), frozenset(names)


def hit(code, places: frozenset) -> str | None:
    """The place ``code`` belongs to, if it is one of ``places``."""
    if code.co_filename in places:
        return code.co_filename
    site = f"{code.co_filename}:{code.co_firstlineno}"
    return site if site in places else None


def watching(fn: Callable, files: frozenset, names: frozenset, hits: set) -> Callable:
    """``fn`` wrapped: every call it makes into ``files`` (places) or of a builtin in ``names`` goes to ``hits``."""

    def profile(frame, event, arg):
        if event == "call":
            place = hit(frame.f_code, files)
            if place:
                hits.add(place)
        elif event == "c_call" and getattr(arg, "__name__", None) in names:
            hits.add(f"torch.{arg.__name__}")

    @functools.wraps(fn)
    def watched(*args, **kwargs):
        previous = sys.getprofile()
        sys.setprofile(profile)
        threading.setprofile(profile)
        try:
            return fn(*args, **kwargs)
        finally:
            if sys.getprofile() is not profile:
                hits.add("sys.setprofile (the tripwire was switched off)")
            sys.setprofile(previous)
            threading.setprofile(None)
    return watched


def describe(hits: Sequence[str]) -> str:
    """Hits as the message names them: module paths relative to course_utils or torch."""
    out = []
    for h in sorted(hits):
        for marker in ("course_utils/", "torch/"):
            if marker in h:
                h = marker.rstrip("/") + "/" + h.split(marker, 1)[1]
                break
        out.append(h)
    return ", ".join(out)
