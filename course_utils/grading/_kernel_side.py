"""The grader's code that runs *inside* a submission's kernel.

The grader never imports this module in the kernel: it reads this file and
:mod:`._kernel_guard` (the snapshot and the audit hook), sends their sources in the first
execute request (before any learner cell), runs both in one new module and keeps it only
in ``sys.modules`` under a random name, so ``%reset`` or a learner's ``globals().clear()``
cannot remove it. It defines three entry points, called by later execute requests:

- :func:`install` (right away): imports torch and the pristine ``course_utils``, snapshots
  what the checks rely on (module attributes, function code) and adds an audit hook that
  refuses writes outside the sandbox folder and new processes;
- :func:`run_check` (after the learner's cells): runs one check from a *fresh* copy of
  ``course_utils.checks``, loaded from the files whose SHA-256 the grader recorded, with the
  reference functions watched by a profiler tripwire while the learner's function runs;
- :func:`report` (a separate request that carries a per-request nonce, so no learner code
  runs while the result line is printed): prints one result as ``<nonce><json>``.

Why the same kernel and not a fresh one for the checks: the learner's functions are
closures over the notebook's state (helpers, globals, classes defined in cells); moving them
to a clean process would mean pickling arbitrary code and state, which fails on exactly the
notebooks that matter. Instead, the checks come from a copy that did not exist while the
learner's code ran, and everything that copy uses from outside (torch, numpy, builtins,
json, ...) is compared with a snapshot taken before the learner's first cell.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.abc
import importlib.util
import json
import os
import sys

try:  # imported as a module (tools, docs); in the kernel both files run in one namespace instead
    from ._kernel_guard import _S, _audit, _course_modules, _snapshot, verify
except ImportError:
    pass

_TORCH_CELL_BUILTINS = frozenset({"rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "rnn_tanh", "rnn_relu",
                                  "lstm", "gru", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell"})
_REFERENCE_FUNCTIONS = {
    "cell": ("functional.rnn_cell", "functional.rnn_step", "functional.lstm_cell", "functional.lstm_step",
             "functional.lstm_cell_gates", "functional.gru_cell", "functional.gru_step", "functional.gru_cell_gates"),
    "clip": ("gradients.clip_grad_norm",),
}
_REASONS = {"wrong": "wrong answer (the message says what is wrong)", "not_implemented": "not implemented yet",
            "error": "the function raised an error (see the message)"}
_OUTPUT_KEEP = 2000  # characters of the learner's printing during a check that are kept (then dropped)


# ------------------------------------------------------------------ install
def install(config: dict) -> None:
    """Snapshot the pristine libraries, record the references, add the audit hook."""
    import numpy  # noqa: F401  (imported before the snapshot, as the notebook will)
    import torch
    import torch.nn.utils
    import torch.optim  # noqa: F401

    import course_utils
    import course_utils.checks  # pulls in functional, gradients, data, training
    import course_utils.functional
    import course_utils.gradients

    _S.update(config=config, results={}, dumps=json.dumps, out=sys.stdout, setprofile=sys.setprofile,
              getprofile=sys.getprofile, ip=get_ipython())  # noqa: F821  (the kernel's builtin)
    _S["snapshot"] = _snapshot()
    _S["references"] = {kind: _reference_codes(course_utils, names) for kind, names in _REFERENCE_FUNCTIONS.items()}
    _S["torch_clip"] = _torch_clip_codes()
    _S["sandbox"] = os.path.realpath(config["sandbox"])
    _S["own_pid"], _S["own_pgid"] = os.getpid(), os.getpgid(0)
    sys.addaudithook(_audit)


# ----------------------------------------------- a fresh copy of course_utils
class _VerifiedSource(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``course_utils.*`` from the package folder, only from files whose SHA-256 the grader recorded."""

    def __init__(self, package_dir: str, hashes: dict[str, str]):
        self.package_dir, self.hashes = package_dir, hashes

    def find_spec(self, name, path=None, target=None):
        if name != "course_utils" and not name.startswith("course_utils."):
            return None
        base = os.path.join(self.package_dir, *name.split(".")[1:])
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return importlib.util.spec_from_file_location(name, init, loader=self, submodule_search_locations=[base])
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_file_location(name, base + ".py", loader=self)
        raise ImportError(f"the grader's copy of course_utils has no module {name}")

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        path = module.__spec__.origin
        rel = os.path.relpath(path, self.package_dir).replace(os.sep, "/")
        with open(path, "rb") as f:
            source = f.read()
        if hashlib.sha256(source).hexdigest() != self.hashes.get(rel):
            raise ImportError(f"course_utils/{rel} changed on disk since the grading started")
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102  (a verified course_utils file)


def _fresh_checks():
    """``course_utils.checks`` loaded anew from the verified files; the notebook's modules are put back after."""
    if "fresh" in _S:
        return _S["fresh"]
    config = _S["config"]
    saved = {name: sys.modules.pop(name) for name in _course_modules()}
    finder = _VerifiedSource(config["package_dir"], config["hashes"])
    sys.meta_path.insert(0, finder)
    try:
        checks = importlib.import_module("course_utils.checks")
        fresh = {name: sys.modules[name] for name in _course_modules()}
    finally:
        sys.meta_path.remove(finder)
        for name in _course_modules():
            del sys.modules[name]
        sys.modules.update(saved)
    _S["fresh"] = checks
    _S["references"]["cell"] |= _reference_codes(fresh["course_utils"], _REFERENCE_FUNCTIONS["cell"])
    _S["references"]["clip"] |= _reference_codes(fresh["course_utils"], _REFERENCE_FUNCTIONS["clip"])
    return checks


def _reference_codes(package, dotted: tuple[str, ...]) -> dict:
    codes = {}
    for name in dotted:
        module, attr = name.split(".")
        fn = getattr(getattr(package, module), attr)
        codes[fn.__code__] = f"course_utils.{name}"
    return codes


def _torch_clip_codes() -> dict:
    import torch.nn.utils as U
    codes = {}
    for name in ("clip_grad_norm_", "clip_grad_norm", "get_total_norm", "clip_grads_with_norm_"):
        fn = getattr(U, name, None)
        while fn is not None and hasattr(fn, "__code__"):
            codes[fn.__code__] = f"torch.nn.utils.{name}"
            fn = getattr(fn, "__wrapped__", None)
    return codes


# ----------------------------------------------------- the reference tripwire
def _identity(fn, kind: str) -> str | None:
    """The reference's name when ``fn`` *is* a reference (alias, partial, wrapper with __wrapped__)."""
    codes = {**_S["references"].get(kind, {}), **(_S["torch_clip"] if kind == "clip" else {})}
    seen = 0
    while fn is not None and seen < 10:
        code = getattr(fn, "__code__", None)
        if code is not None and code in codes:
            return codes[code]
        if kind == "cell" and getattr(fn, "__module__", None) == "torch" and getattr(fn, "__name__", "") in \
                _TORCH_CELL_BUILTINS:
            return f"torch.{fn.__name__}"
        fn = getattr(fn, "func", None) or getattr(fn, "__wrapped__", None) or getattr(fn, "__func__", None)
        seen += 1
    return None


def _tripwired(fn, kind: str, hits: set):
    """``fn`` wrapped so that every call of a reference (or of torch's own cell) while it runs is recorded."""
    codes = {**_S["references"].get(kind, {}), **(_S["torch_clip"] if kind == "clip" else {})}
    setprofile, getprofile = _S["setprofile"], _S["getprofile"]

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            hits.add(codes[frame.f_code])
        elif event == "c_call" and kind == "cell" and getattr(arg, "__module__", None) == "torch" \
                and getattr(arg, "__name__", "") in _TORCH_CELL_BUILTINS:
            hits.add(f"torch.{arg.__name__}")

    @functools.wraps(fn)
    def watched(*args, **kwargs):
        previous = getprofile()
        setprofile(profile)
        try:
            return fn(*args, **kwargs)
        finally:
            if getprofile() is not profile:
                hits.add("sys.setprofile (the tripwire was switched off)")
            setprofile(previous)
    return watched


# ------------------------------------------------------------------ checks
class _Sink:
    """Where the learner's printing goes while a check runs: the first characters are kept, the rest dropped."""

    def __init__(self):
        self.kept, self.dropped = [], 0

    def write(self, text):
        room = _OUTPUT_KEEP - sum(map(len, self.kept))
        self.kept.append(text[:max(room, 0)])
        self.dropped += max(len(text) - max(room, 0), 0)
        return len(text)

    def flush(self):
        pass


def run_check(exercise: str) -> None:
    """Grade one exercise; the result waits in ``_S["results"]`` for :func:`report`."""
    spec = _S["config"]["exercises"][exercise]
    _S["results"][exercise] = _run_check(exercise, spec)


def _result(status: str, points=0, message=None, reason=None, **extra) -> dict:
    return {"status": status, "points": points, "message": message, "reason": reason, **extra}


def _run_check(exercise: str, spec: dict) -> dict:
    changed = verify()
    if changed:
        return _result("tampered", reason=f"the notebook replaced {', '.join(changed[:5])}, which the grader "
                                          f"relies on; no points are given for this notebook")
    fn = _S["ip"].user_ns.get(spec["function"], _result)  # _result: a marker that no notebook can hold
    if fn is _result:
        return _result("missing", reason=f"`{spec['function']}` is not defined after running the notebook")
    try:
        check = getattr(_fresh_checks(), spec["check"])
    except Exception as exc:  # noqa: BLE001  (the grader's own problem: reported, the batch goes on)
        return _result("grader_error", reason=f"could not load course_utils.checks.{spec['check']}: "
                                              f"{type(exc).__name__}: {exc}")
    kind, hits = spec.get("tripwire"), set()
    alias = _identity(fn, kind) if kind else None
    arg = _tripwired(fn, kind, hits) if kind and callable(fn) else fn
    sink = _Sink()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            outcome = check(arg, max_points=spec["max_points"])
    except KeyboardInterrupt:
        return _result("timeout", reason="the check was interrupted at the time limit")
    except BaseException as exc:  # noqa: BLE001  (SystemExit and the like from the learner's function)
        return _result("error", reason=f"the check stopped: {type(exc).__name__}: {str(exc)[:200]}")
    fields = outcome.to_dict() if hasattr(outcome, "to_dict") else {}
    res = _result(fields.get("status", "error"), points=fields.get("points", 0), message=fields.get("message"))
    if sink.dropped:
        res["printed"] = f"printed {sink.dropped + _OUTPUT_KEEP} characters while checked (not kept)"
    changed = verify()
    if changed:
        res.update(status="tampered", points=0, reason=f"the notebook replaced {', '.join(changed[:5])} while it "
                                                       f"was checked; no points are given for this notebook")
    elif alias or hits:
        used = alias or ", ".join(sorted(hits))
        how = f"`{spec['function']}` is {used} itself" if alias else f"`{spec['function']}` calls {used}"
        res.update(status="uses_reference", points=0,
                   reason=f"{how} instead of computing the result; the exercise asks you to write it yourself")
    elif res["status"] != "passed":
        res["reason"] = _REASONS.get(res["status"], res["status"])
    return res


def report(nonce: str, exercise: str) -> None:
    """Print one result as a single line ``<nonce><json>`` on the kernel's own stdout object."""
    payload = {"exercise": exercise, "result": _S["results"].get(exercise)}
    out = _S["out"]
    out.write(nonce + _S["dumps"](payload, sort_keys=True) + "\n")
    out.flush()


__all__ = ["install", "report", "run_check", "verify"]
