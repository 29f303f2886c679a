"""Grading one submission: copy it into a sandbox, run its cells in a kernel, run the checks, build its report.

A kernel that dies, runs out of memory or ignores the interrupt at a cell's time limit costs
only that cell: the grader starts a new kernel and runs the cells again *without* the cells
that broke a kernel (at most ``MAX_KERNELS`` kernels), so later definitions still count. A
cell that merely raises is recorded and the next cell runs (like nbclient's ``allow_errors``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from ._course import Course
from ._kernel import Kernel, Outcome
from ._notebook import EXERCISES, InvalidSubmission, Plan, plan, read_notebook

GRADER_VERSION = 1
MAX_KERNELS = 3
START_TIMEOUT_S = 120.0  # starting a kernel and importing torch in it, on a loaded machine
REPORT_TIMEOUT_S = 60.0
BIG_OUTPUT_CHARS = 1_000_000  # a cell printing more than this gets a note (its output is never kept)
#: run in this order in one module inside the kernel (the guard first: the other file uses its names)
_KERNEL_FILES = (Path(__file__).with_name("_kernel_guard.py"), Path(__file__).with_name("_kernel_side.py"))
#: the submission's status, most important first
STATUS_ORDER = ("grader_error", "invalid", "tampered", "memory", "crashed", "timeout", "no_exercises", "ok")


@dataclass(frozen=True)
class Options:
    """Limits for one submission (seconds, megabytes); part of every report, so a rerun can tell if they changed."""

    timeout_cell: float = 60.0
    timeout_notebook: float = 600.0
    timeout_check: float = 120.0
    memory_mb: int = 4096
    threads: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ text
def _clean(text: str, sandbox: str | None = None, limit: int = 300) -> str:
    """Error text without what changes from run to run (paths, addresses, cell file names), shortened."""
    if sandbox:
        text = text.replace(sandbox, "<sandbox>")
    text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x…", text)
    text = re.sub(r"\(\d+\.py, line", "(line", text)
    text = re.sub(r"/tmp/ipykernel_\d+/\d+\.py", "<cell>", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _points(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 4)


# --------------------------------------------------------------- the kernel
def _preamble(kernel: Kernel, course: Course, options: Options, sandbox: Path) -> str:
    """Load the grader's kernel-side module under a random name; return that name."""
    handle = f"_cu_grader_{secrets.token_hex(8)}"
    config = {
        "sandbox": str(sandbox), "package_dir": course.package_dir, "hashes": course.hashes,
        "exercises": {name: {"function": fn, "check": check, "tripwire": trip, "max_points": course.points[name]}
                      for name, (fn, check, trip) in EXERCISES.items()},
    }
    sources = [(str(p), p.read_text(encoding="utf-8")) for p in _KERNEL_FILES]
    code = (f"def {handle}():\n"
            f"    import sys, types\n"
            f"    module = types.ModuleType({handle!r})\n"
            f"    for path, source in {sources!r}:\n"
            f"        exec(compile(source, path, 'exec'), module.__dict__)\n"
            f"    sys.modules[{handle!r}] = module\n"
            f"    module.install({config!r})\n"
            f"{handle}()\n"
            f"del {handle}\n")
    out = kernel.execute(code, START_TIMEOUT_S, store_history=False)
    if out.status != "ok":
        raise RuntimeError(f"the grader's set-up failed in the kernel: {out.status} {out.ename}: "
                           f"{_clean(out.evalue)} {kernel.log_tail(300)}")
    return handle


def _cell_event(out: Outcome, limit: float, notebook_limited: bool, sandbox: str, memory_mb: int) -> dict | None:
    which = "the notebook's time limit" if notebook_limited else "the cell time limit"
    if out.status == "ok":
        return None
    if out.status == "error" and out.ename == "MemoryError":
        detail = f"MemoryError (limit {memory_mb} MB): {_clean(out.evalue, sandbox)}".rstrip(": ")
        return {"outcome": "memory", "detail": detail}
    if out.status == "error":
        return {"outcome": "error", "detail": f"{out.ename}: {_clean(out.evalue, sandbox)}".rstrip(": ")}
    if out.status == "timeout":
        return {"outcome": "timeout", "detail": f"stopped at {which} ({limit:g} s)"}
    if out.status == "hung":
        return {"outcome": "timeout", "detail": f"did not stop when interrupted at {which} ({limit:g} s); "
                                                f"the kernel was stopped"}
    if out.memory:
        return {"outcome": "memory", "detail": f"the kernel died running out of memory (limit {memory_mb} MB)"}
    return {"outcome": "crashed", "detail": f"the kernel died (exit code {out.exit_code})"}


def _run_check(kernel: Kernel, handle: str, exercise: str, options: Options, sandbox: str) -> dict:
    fn = EXERCISES[exercise][0]
    out = kernel.execute(f"__import__({handle!r}).run_check({exercise!r})", options.timeout_check,
                         store_history=False)
    if out.status == "died":
        status = "memory" if out.memory else "crashed"
        return {"status": status, "reason": f"the kernel died while `{fn}` was checked (exit code {out.exit_code})"}
    if out.status in ("timeout", "hung"):
        return {"status": "timeout", "reason": f"the check of `{fn}` did not finish in {options.timeout_check:g} s"}
    if out.status == "error":
        status = "memory" if out.ename == "MemoryError" else "grader_error"
        return {"status": status, "reason": f"the grader's check could not run: {out.ename}: "
                                            f"{_clean(out.evalue, sandbox)}"}
    nonce = secrets.token_hex(16)
    rep = kernel.execute(f"__import__({handle!r}).report({nonce!r}, {exercise!r})", REPORT_TIMEOUT_S,
                         store_history=False, keep=2**20)
    at = rep.text.find(nonce)
    if rep.status != "ok" or at < 0:
        return {"status": "grader_error", "reason": f"the grader could not read the result of the check "
                                                    f"({rep.status} {rep.ename})".rstrip()}
    try:
        payload, _ = json.JSONDecoder().raw_decode(rep.text, at + len(nonce))
        result = payload["result"]
        assert payload["exercise"] == exercise and isinstance(result, dict)
    except (ValueError, KeyError, AssertionError, TypeError):
        return {"status": "grader_error", "reason": "the grader could not read the result of the check"}
    if result.get("reason"):
        result["reason"] = _clean(result["reason"], sandbox, 500)
    return result


def _session(p: Plan, sandbox: Path, private: Path, options: Options, course: Course):
    """Run the cells and the checks, in as many kernels as it takes (at most MAX_KERNELS)."""
    skip: dict[int, str] = {}  # cell -> why later kernels leave it out
    events: dict[int, dict] = {}  # cell -> what happened the last time it ran
    sizes: dict[int, int] = {}
    results: dict[str, dict] = {}
    todo, used, kernels = list(p.exercises), 0.0, 0
    box = str(sandbox)
    while todo and kernels < MAX_KERNELS:
        kernels += 1
        kernel = Kernel(sandbox, private, options.memory_mb, options.threads)
        broken = False
        try:
            kernel.start(START_TIMEOUT_S)
            handle = _preamble(kernel, course, options, sandbox)
            for cell in p.cells:
                if not cell.runs or cell.number in skip:
                    continue
                left = options.timeout_notebook - used
                if left <= 0:
                    events[cell.number] = {"outcome": "not run", "detail": "the notebook's time limit was reached"}
                    continue
                limit = min(options.timeout_cell, left)
                out = kernel.execute(cell.source, limit)
                used += out.seconds
                sizes[cell.number] = out.output_chars
                event = _cell_event(out, limit, limit < options.timeout_cell, box, options.memory_mb)
                if event is None:
                    events.pop(cell.number, None)
                    continue
                events[cell.number] = event
                if out.status in ("died", "hung") or event["outcome"] == "memory":
                    skip[cell.number] = event["outcome"]
                    event["detail"] += "; the notebook ran again in a new kernel without this cell"
                    broken = True
                    break
            if broken:
                continue
            for exercise in list(todo):
                results[exercise] = _run_check(kernel, handle, exercise, options, box)
                todo.remove(exercise)
                if not kernel.alive():
                    broken = True
                    break
        finally:
            kernel.kill()
    for exercise in todo:
        results[exercise] = {"status": "crashed", "reason": f"not checked: {MAX_KERNELS} kernels in a row crashed, "
                                                           f"ran out of memory or hung"}
    notes = [f"cell {n} printed {chars:,} characters (outputs are counted, not kept)"
             for n, chars in sorted(sizes.items()) if chars > BIG_OUTPUT_CHARS]
    return results, events, skip, notes


# --------------------------------------------------------------- the report
def _exercise_entry(name: str, res: dict, p: Plan, events: dict, skip: dict, course: Course) -> dict:
    max_points = course.points[name]
    status = res.get("status", "grader_error")
    reason = res.get("reason")
    defining = p.defining_cell.get(name)
    if status == "missing" and defining is not None:
        if defining in skip:
            reason += f" (cell {defining}, which defines it, was left out: it broke the kernel)"
        elif defining in events:
            reason += f" (cell {defining}, which defines it: {events[defining]['detail']})"
    points = res.get("points", 0) if status == "passed" else 0
    entry = {"status": status, "points": _points(points), "max_points": _points(max_points),
             "message": res.get("message"), "reason": None if status == "passed" else reason or status}
    if res.get("printed"):
        entry["printed"] = res["printed"]
    return entry


def _summary(report: dict) -> tuple[str, str]:
    """The submission's status and a short reason for the CSV."""
    found: dict[str, str] = {}
    for cell in report.get("cells", []):
        kind = {"not run": "timeout"}.get(cell["outcome"], cell["outcome"])
        found.setdefault(kind, f"cell {cell['cell']}: {cell['detail']}")
    for name, ex in report.get("exercises", {}).items():
        if ex["status"] in ("tampered", "memory", "crashed", "timeout", "grader_error"):
            found.setdefault(ex["status"], f"{name}: {ex['reason']}")
    for status in STATUS_ORDER:
        if status in found:
            return status, found[status]
    problems = [f"{name}: {ex['status'].replace('_', ' ')}" for name, ex in report.get("exercises", {}).items()
                if ex["status"] != "passed"]
    errors = sum(1 for c in report.get("cells", []) if c["outcome"] == "error")
    if errors:
        problems.append(f"{errors} cell{'s' if errors > 1 else ''} raised an error")
    return "ok", "; ".join(problems)


def grade_file(path: str | os.PathLike, options: Options, course: Course) -> dict:
    """Grade one submission; never raises (a grader failure becomes status ``grader_error``)."""
    path = Path(path)
    report: dict = {"submission": path.name, "sha256": None, "status": "ok", "reason": "", "points": 0,
                    "max_points": 0, "exercises": {}, "cells": [], "notes": [],
                    "grader": {"version": GRADER_VERSION, "options": options.as_dict(), "course": course.digest}}
    try:
        data = path.read_bytes()
        report["sha256"] = hashlib.sha256(data).hexdigest()
        _grade(path, data, report, options, course)
        if path.read_bytes() != data:  # the kernel cannot write there (audit hook): someone else changed it
            report["notes"].append("the file changed on disk while it was graded; this report is for the "
                                   "bytes read first (sha256 above); the grader never writes submissions")
    except Exception as exc:  # noqa: BLE001  (a bug or an environment problem: this submission is not graded)
        report.update(status="grader_error", reason=f"{type(exc).__name__}: {_clean(str(exc))}")
        report["notes"].append(_clean(traceback.format_exc(limit=3), limit=2000))
    return report


def _grade(path: Path, data: bytes, report: dict, options: Options, course: Course) -> None:
    try:
        nb, notes = read_notebook(data)
    except InvalidSubmission as exc:
        report.update(status="invalid", reason=str(exc))
        return
    report["notes"] += notes
    p = plan(nb)
    report["notes"] += p.notes
    if not p.exercises:
        report.update(status="no_exercises", reason="no exercise of the course found (no nbgrader grade_id "
                                                    f"among {', '.join(EXERCISES)})")
        return
    with tempfile.TemporaryDirectory(prefix="cu-grade-", ignore_cleanup_errors=True) as tmp:
        sandbox, private = Path(tmp) / "sandbox", Path(tmp) / "private"
        (sandbox / "work").mkdir(parents=True)
        private.mkdir()
        (sandbox / "work" / path.name).write_bytes(data)
        results, events, skip, notes = _session(p, sandbox.resolve(), private, options, course)
    report["notes"] += notes
    report["cells"] = [{"cell": n, **events[n]} for n in sorted(events)]
    report["cells"] += [{"cell": c.number, "outcome": "skipped", "detail": "a check cell: the grader runs its own check"}
                        for c in p.cells if not c.runs and c.source.strip()]
    report["cells"].sort(key=lambda c: c["cell"])
    report["exercises"] = {name: _exercise_entry(name, results[name], p, events, skip, course) for name in p.exercises}
    report["points"] = _points(sum(e["points"] for e in report["exercises"].values()))
    report["max_points"] = _points(sum(e["max_points"] for e in report["exercises"].values()))
    report["status"], report["reason"] = _summary(report)
    if report["status"] == "tampered":  # patching the grader's libraries forfeits every exercise of the notebook
        for entry in report["exercises"].values():
            if entry["status"] == "passed":
                entry.update(status="tampered", points=0, reason="no points: the notebook tampered with the grader "
                                                                 f"({report['reason']})")
        report["points"] = 0
