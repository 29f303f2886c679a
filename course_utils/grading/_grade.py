"""Grading one submission: its cells run in a sandboxed kernel, its functions are judged here.

1. The notebook is read (nothing runs) and the exercises it holds are found; each exercise's
   function is read for calls of the reference (:func:`course_utils.checks.static.reference_use`).
2. Its cells run one by one in a kernel inside bubblewrap (:mod:`._sandbox`), except check cells
   and the course's demonstration/training cells. A kernel that dies, runs out of memory or
   ignores the interrupt at a cell's time limit costs only that cell: the grader starts a new
   kernel and runs the cells again *without* it (at most ``MAX_KERNELS`` kernels), so later
   definitions still count. A cell that merely raises is recorded and the next cell runs.
3. Then the grader's module is loaded into the kernel and each exercise's check runs *here*,
   in the grader's process, on inputs drawn from a seed chosen for this run; the learner's
   function is a proxy that runs in the kernel (:mod:`._remote`). Points come from the
   course's solutions only, and only for a passed check.
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

from ..checks import static, tripwire
from ..checks.registry import EXERCISES as REGISTRY
from ._course import Course
from ._kernel import Kernel, Outcome
from ._notebook import EXERCISES, InvalidSubmission, Plan, normalized, plan, read_notebook
from ._remote import Kernelside, RemoteAbort, RemoteFunction, RemoteModelRunner
from ._sandbox import INSIDE_COURSE, Sandbox, find_bwrap

GRADER_VERSION = 2
MAX_KERNELS = 3
START_TIMEOUT_S = 120.0  # starting a kernel and importing torch in it, on a loaded machine
BIG_OUTPUT_CHARS = 1_000_000  # a cell printing more than this gets a note (its output is never kept)
_KERNEL_FILES = (Path(__file__).with_name("_codec.py"), Path(__file__).with_name("_kernel_side.py"))
#: the submission's status, most important first
STATUS_ORDER = ("grader_error", "invalid", "tampered", "memory", "crashed", "timeout", "no_exercises", "ok")
_MESSAGE_KEEP = 2000  # characters of a check's message kept in a report


@dataclass(frozen=True)
class Options:
    """Limits for one submission (seconds, megabytes); part of every report, so a rerun can tell if they changed."""

    timeout_cell: float = 60.0
    timeout_notebook: float = 600.0
    timeout_check: float = 120.0
    memory_mb: int = 4096
    threads: int = 1
    sandbox: bool = True
    max_size_mb: float = 20.0
    unit: str | None = None
    skip_demos: bool = True

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
def _install(kernel: Kernel) -> str:
    """Load the grader's kernel-side module (after the learner's cells) under a random name; return that name."""
    handle = f"_cu_grader_{secrets.token_hex(8)}"
    sources = [(p.name, p.read_text(encoding="utf-8")) for p in _KERNEL_FILES]
    code = (f"def {handle}():\n"
            f"    import sys, types\n"
            f"    module = types.ModuleType({handle!r})\n"
            f"    for path, source in {sources!r}:\n"
            f"        exec(compile(source, path, 'exec'), module.__dict__)\n"
            f"    sys.modules[{handle!r}] = module\n"
            f"    module.install({{}})\n"
            f"{handle}()\n"
            f"del {handle}\n")
    out = kernel.execute(code, START_TIMEOUT_S, store_history=False)
    if out.status != "ok":
        raise RemoteAbort("crashed" if out.status == "died" else "grader_error",
                          f"the grader's module could not be loaded in the kernel: {out.status} {out.ename}")
    return handle


def _memory_error(out: Outcome) -> bool:
    text = f"{out.ename} {out.evalue}"
    return out.ename == "MemoryError" or any(sign in text for sign in (
        "can't allocate memory", "Cannot allocate memory", "not enough memory", "out of memory"))


def _cell_event(out: Outcome, limit: float, notebook_limited: bool, sandbox: str, memory_mb: int) -> dict | None:
    which = "the notebook's time limit" if notebook_limited else "the cell time limit"
    if out.status == "ok":
        return None
    if out.status == "error" and _memory_error(out):
        return {"outcome": "memory", "detail": f"ran out of memory (limit {memory_mb} MB): {out.ename}"}
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


def _targets(forbidden: tuple, course: Course, sandboxed: bool) -> tuple[list[str], list[str]]:
    """The tripwire's source files as the kernel sees them (the package is at /opt/course there), and names."""
    files, names = tripwire.targets(tuple(forbidden))
    package = course.package_dir.rstrip("/") + "/"
    inside = []
    for f in sorted(files):
        if sandboxed and f.startswith(package):
            f = f"{INSIDE_COURSE}/course_utils/" + f[len(package):]
        inside.append(f)
    return inside, sorted(names)


def _judge(side: Kernelside, exercise: str, options: Options, course: Course, seed: int) -> dict:
    """Run the course's check here, with the learner's function as a proxy into the kernel."""
    ex = REGISTRY[exercise]
    files, names = _targets(ex.forbidden, course, options.sandbox)
    side.hits.clear()
    proxy = (RemoteModelRunner if ex.kind == "model" else RemoteFunction)(side, ex.function, files, names)
    max_points = course.points[exercise]
    try:
        result = ex.check(proxy, max_points=max_points, seed=seed, quiet=True)
    except RemoteAbort as abort:
        if abort.status == "missing":
            return {"status": "missing", "reason": f"`{ex.function}` {abort.reason}"}
        return {"status": abort.status, "reason": f"`{ex.function}`: {abort.reason}"}
    except Exception as exc:  # noqa: BLE001  (a bug in a check on what came back: this exercise says so)
        return {"status": "grader_error", "reason": f"the check failed: {type(exc).__name__}: {_clean(str(exc))}"}
    res = {"status": result.status, "points": max_points if result.passed else 0,
           "message": result.message[:_MESSAGE_KEEP], "mistakes": list(result.mistakes)[:20]}
    if side.hits:
        res.update(status="uses_reference", points=0, mistakes=["uses_reference"],
                   reason=f"`{ex.function}` calls {tripwire.describe(sorted(side.hits))} while it runs: the exercise "
                          f"asks you to compute the result yourself")
    elif result.status != "passed":
        res["reason"] = _REASONS.get(result.status, result.status)
    if side.printed > BIG_OUTPUT_CHARS:
        res["printed"] = f"printed {side.printed:,} characters while checked (not kept)"
    return res


_REASONS = {"wrong": "wrong answer (the message says what is wrong)", "not_implemented": "not implemented yet",
            "error": "the function raised an error (see the message)",
            "uses_reference": "uses the reference instead of computing the result"}


def _session(p: Plan, box: Path, private: Path, options: Options, course: Course, todo: list[str], seed: int):
    """Run the cells and the checks, in as many kernels as it takes (at most MAX_KERNELS)."""
    skip: dict[int, str] = {}  # cell -> why later kernels leave it out
    events: dict[int, dict] = {}  # cell -> what happened the last time it ran
    sizes: dict[int, int] = {}
    results: dict[str, dict] = {}
    todo, used, kernels = list(todo), 0.0, 0
    tag = str(box)
    bwrap = find_bwrap() if options.sandbox else None
    while todo and kernels < MAX_KERNELS:
        kernels += 1
        sandbox = Sandbox(box, private / f"run{kernels}", Path(course.package_dir), [Path(course.repo_dir)],
                          bwrap) if options.sandbox else None
        kernel = Kernel(box, private, options.memory_mb, options.threads, sandbox)
        broken = False
        try:
            kernel.start(START_TIMEOUT_S)
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
                event = _cell_event(out, limit, limit < options.timeout_cell, tag, options.memory_mb)
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
            try:
                handle = _install(kernel)
            except RemoteAbort as abort:
                if kernel.alive():
                    raise RuntimeError(abort.reason) from None
                continue
            side = Kernelside(kernel, handle, options.timeout_check, options.memory_mb)
            for exercise in list(todo):
                results[exercise] = _judge(side, exercise, options, course, seed)
                todo.remove(exercise)
                if not kernel.alive():
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
    points = max_points if status == "passed" else 0  # the course's points, never the check's or the kernel's
    entry = {"status": status, "points": _points(points), "max_points": _points(max_points),
             "message": res.get("message"), "mistakes": res.get("mistakes", []),
             "reason": None if status == "passed" else reason or status}
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


def new_report(name: str, options: Options, course: Course) -> dict:
    return {"submission": name, "sha256": None, "status": "ok", "reason": "", "points": 0, "max_points": 0,
            "unit": None, "exercises": {}, "cells": [], "notes": [],
            "isolation": "bubblewrap" if options.sandbox else "none",
            "grader": {"version": GRADER_VERSION, "options": options.as_dict(), "course": course.digest}}


def grade_file(path: str | os.PathLike, options: Options, course: Course, *, name: str | None = None,
               seed: int | None = None) -> dict:
    """Grade one submission; never raises (a grader failure becomes status ``grader_error``)."""
    path = Path(path)
    report = new_report(name or path.name, options, course)
    if not options.sandbox:
        report["notes"].append("graded WITHOUT isolation (--no-sandbox): the notebook's code ran with the "
                               "grader's rights")
    try:
        size = path.stat().st_size
        if size > options.max_size_mb * 2**20:
            report.update(status="invalid", reason=f"the file is {size / 2**20:.1f} MB, over the limit of "
                                                   f"{options.max_size_mb:g} MB (--max-size-mb)")
            return report
        data = path.read_bytes()
        report["sha256"] = hashlib.sha256(data).hexdigest()
        _grade(data, report, options, course, secrets.randbits(31) if seed is None else seed)
        if path.read_bytes() != data:  # the kernel cannot see it: someone else changed it
            report["notes"].append("the file changed on disk while it was graded; this report is for the "
                                   "bytes read first (sha256 above); the grader never writes submissions")
    except Exception as exc:  # noqa: BLE001  (a bug or an environment problem: this submission is not graded)
        report.update(status="grader_error", reason=f"{type(exc).__name__}: {_clean(str(exc))}")
        report["notes"].append(_clean(traceback.format_exc(limit=3), limit=2000))
    return report


def _check_cell_notes(p: Plan, course: Course) -> list[str]:
    notes = []
    present = {c.grade_id: c for c in p.cells if c.grade_id}
    for exercise in p.exercises:
        cid = f"check_{exercise}"
        expected = course.check_sources.get(cid)
        if expected is None:
            continue
        cell = present.get(cid)
        if cell is None:
            notes.append(f"the check cell `{cid}` was deleted (the grader runs its own check, so the grade is "
                         f"unaffected)")
        elif normalized(cell.source) != expected:
            notes.append(f"the check cell `{cid}` was edited (the grader runs its own check, so the grade is "
                         f"unaffected)")
    return notes


def _grade(data: bytes, report: dict, options: Options, course: Course, seed: int) -> None:
    try:
        nb, notes = read_notebook(data)
    except InvalidSubmission as exc:
        report.update(status="invalid", reason=str(exc))
        return
    report["notes"] += notes
    p = plan(nb, course.skip_sources if options.skip_demos else frozenset())
    report["notes"] += p.notes
    if not p.exercises:
        report.update(status="no_exercises", reason="no exercise of the course found (no nbgrader grade_id "
                                                    f"among {', '.join(EXERCISES)})")
        return
    units = sorted({REGISTRY[e].unit for e in p.exercises})
    report["unit"] = units[0] if len(units) == 1 else None
    if len(units) > 1:
        report["notes"].append(f"holds exercises of several units ({', '.join(units)})")
    if options.unit and options.unit not in units:
        report["notes"].append(f"a notebook of unit {', '.join(units)}, not of {options.unit} (--unit): its "
                               f"exercises are graded as they are")
    report["notes"] += _check_cell_notes(p, course)
    report["seed"] = seed
    sources = [c.source for c in p.cells]
    results: dict[str, dict] = {}
    for exercise in p.exercises:
        ex = REGISTRY[exercise]
        defining = next((k for k, c in enumerate(p.cells) if c.number == p.defining_cell.get(exercise)), None)
        findings = static.reference_use(sources, ex.function, ex.forbidden, defining_cell=defining)
        if findings:
            cells = {f.cell: p.cells[f.cell].number for f in findings}
            where = "; ".join(f"`{f.what}` ({f.why}), line {f.line} of cell {cells[f.cell]}" for f in findings[:3])
            results[exercise] = {"status": "uses_reference", "mistakes": ["uses_reference"],
                                 "reason": f"`{ex.function}` reaches {where}: the exercise asks you to compute "
                                           f"the result yourself"}
    todo = [e for e in p.exercises if e not in results]
    with tempfile.TemporaryDirectory(prefix="cu-grade-", ignore_cleanup_errors=True) as tmp:
        box, private = Path(tmp) / "box", Path(tmp) / "private"
        box.mkdir()
        private.mkdir()
        ran, events, skip, notes = _session(p, box, private, options, course, todo, seed) if todo else ({}, {}, {},
                                                                                                       [])
    results.update(ran)
    report["notes"] += notes
    report["cells"] = [{"cell": n, **events[n]} for n in sorted(events)]
    report["cells"] += [{"cell": c.number, "outcome": "skipped", "detail": c.why_not}
                        for c in p.cells if not c.runs and c.why_not and c.source.strip()]
    report["cells"].sort(key=lambda c: c["cell"])
    report["exercises"] = {name: _exercise_entry(name, results[name], p, events, skip, course) for name in p.exercises}
    report["points"] = _points(sum(e["points"] for e in report["exercises"].values()))
    report["max_points"] = _points(sum(e["max_points"] for e in report["exercises"].values()))
    report["status"], report["reason"] = _summary(report)
