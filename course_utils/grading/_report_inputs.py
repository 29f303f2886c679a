"""Reading graded submissions for the class report: the batch grader's JSON reports (and grades.csv), or
nbgrader's autograded notebooks (and gradebook.db); and keeping learners anonymous in what is shown."""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from ..checks import EXERCISES, MIME_TYPE

__all__ = ["Entry", "Submission", "anonymise", "anonymise_code", "compare_with_csv", "read_grader_reports",
           "read_nbgrader_course", "read_source", "submission_from_report"]


# --------------------------------------------------------------- anonymity
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-~]+){2,}")  # two or more segments: /home/x, C:\\x\\y
_NOTEBOOK = re.compile(r"[\w.\-]+\.ipynb\b")


def _name_pattern(name: str) -> re.Pattern:
    """``name`` as a word of its own (``_``, ``.``, ``-`` and spaces separate words), case-insensitive."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", re.IGNORECASE)


def anonymise(text: str, names: Iterable[str]) -> str:
    """``text`` without any of ``names`` (case-insensitive), without file paths and notebook file names."""
    text = _NOTEBOOK.sub("[notebook]", _PATH.sub("[path]", text))
    for name in sorted({n for n in names if n and len(n) >= 2}, key=len, reverse=True):
        text = _name_pattern(name).sub("[learner]", text)
    return text


# ------------------------------------------------------------------ inputs
@dataclass
class Entry:
    """One exercise of one submission, as the grader or the notebook reported it."""

    exercise: str
    unit: str
    status: str
    points: float
    max_points: float
    message: str | None = None
    mistakes: tuple[str, ...] = ()
    code: str | None = None  # the learner's function (from the notebook), not yet anonymised


@dataclass
class Submission:
    """One graded notebook. ``key`` and ``names`` identify the learner: they are used to scrub the
    examples and are never written out."""

    key: str
    names: tuple[str, ...]
    unit: str | None
    status: str
    points: float
    max_points: float
    entries: list[Entry] = field(default_factory=list)


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None and value != "" else 0.0
    except (TypeError, ValueError):
        return 0.0


def _unit_of(exercise: str, fallback: str | None) -> str:
    if exercise in EXERCISES:
        return EXERCISES[exercise].unit
    return fallback or "(unknown unit)"


#: words of file names and student ids that do not identify anyone (the course's own vocabulary)
_COURSE_WORDS = {"ipynb", "json", "lab", "hw", "homework", "assignment", "submission", "submitted", "final", "copy",
                 "version", "notebook", "solution", "solutions", "exercise", "unit", "draft", "new", "old", "rnn",
                 "lstm", "gru", "cell", "clip", "grad", "norm", "model", "build", "gradients", "through", "time",
                 "comparison", "student", "course", "the"}


def _learner_names(*identifiers: str) -> tuple[str, ...]:
    """The strings that may identify a learner: each identifier (a file name and its stem, a student id) and
    its words, less the course's own words (unit and exercise names) and numbers."""
    units = {e.unit for e in EXERCISES.values()}
    vocabulary = _COURSE_WORDS | {w for name in (*units, *EXERCISES) for w in re.split(r"[_\W]+", name.lower())}
    names = set()
    for identifier in identifiers:
        for name in (identifier, Path(identifier).stem):
            if name and name not in units:
                names.add(name)
                names |= {w for w in re.split(r"[_\W\d]+", name) if len(w) >= 2 and w.lower() not in vocabulary}
    return tuple(sorted(names))


def read_grader_reports(folder: str | Path, submissions: str | Path | None = None) -> list[Submission]:
    """The submissions of a folder of the batch grader's JSON reports (other JSON files are skipped).

    With ``submissions`` (the folder of the submitted notebooks), the learners' functions are read
    from them too, for the code examples.
    """
    subs = []
    for path in sorted(Path(folder).glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(report, dict) or "submission" not in report or "status" not in report:
            continue
        sub = submission_from_report(report)
        if submissions is not None:
            _attach_code(sub, Path(submissions) / sub.key)
        subs.append(sub)
    return subs


def _attach_code(sub: Submission, notebook: Path) -> None:
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:  # noqa: BLE001  (missing or not a notebook: no code example from it)
        return
    code = _solution_sources(nb)
    for entry in sub.entries:
        entry.code = code.get(entry.exercise)


def submission_from_report(report: dict) -> Submission:
    """One grader report as a :class:`Submission` (unknown keys are ignored)."""
    name = str(report["submission"])
    exercises = report.get("exercises") or {}
    unit = report.get("unit") or next((EXERCISES[g].unit for g in exercises if g in EXERCISES), None)
    entries = []
    for grade_id, ex in exercises.items():
        if not isinstance(ex, dict):
            continue
        entries.append(Entry(exercise=grade_id, unit=_unit_of(grade_id, unit), status=str(ex.get("status", "?")),
                             points=_number(ex.get("points")), max_points=_number(ex.get("max_points")),
                             message=ex.get("message"), mistakes=tuple(ex.get("mistakes") or ())))
    return Submission(key=name, names=_learner_names(name), unit=unit, status=str(report["status"]),
                      points=_number(report.get("points")), max_points=_number(report.get("max_points")),
                      entries=entries)


# the learner's code ----------------------------------------------------------
def _solution_sources(nb) -> dict[str, str]:
    """exercise -> the source of the last code cell that defines its function (the definition that ran last,
    usually nbgrader's solution cell)."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        for grade_id, exercise in EXERCISES.items():
            if re.search(rf"^def {re.escape(exercise.function)}\(", source, re.MULTILINE):
                found[grade_id] = source
    return found


#: a string literal longer than this, or not a plain word, is shown as "..." in a code example
_KEEP_STRING = re.compile(r"^[A-Za-z_][\w ]{0,15}$")


def _bare_string(node: ast.AST) -> bool:
    """A statement that is only a string: a docstring, or a comment written as a string."""
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


class _Scrub(ast.NodeTransformer):
    """Drop docstrings and other bare string statements, blank out long strings, rename identifiers
    that contain a learner's name."""

    def __init__(self, names: Iterable[str]):
        self.patterns = [_name_pattern(n) for n in names if len(n) >= 2]

    def _name(self, name: str) -> str:
        for pattern in self.patterns:
            name = pattern.sub("learner", name)
        return name

    def generic_visit(self, node):
        node = super().generic_visit(node)
        for attr in ("name", "id", "arg", "attr"):
            if isinstance(getattr(node, attr, None), str):
                setattr(node, attr, self._name(getattr(node, attr)))
        if isinstance(getattr(node, "body", None), list):
            body = [n for n in node.body if not _bare_string(n)]
            node.body = body or [ast.Pass()]
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, str) and not _KEEP_STRING.match(node.value):
            return ast.copy_location(ast.Constant("..."), node)
        return node

    def visit_JoinedStr(self, node):
        return ast.copy_location(ast.Constant("..."), node)


def anonymise_code(source: str | None, function: str, names: Iterable[str], max_lines: int = 40) -> str | None:
    """The learner's ``def function(...)`` re-printed from its syntax tree: no comments, no docstrings, long
    strings as "...", identifiers holding a learner's name renamed; None when it cannot be parsed or is not there."""
    if not source:
        return None
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]  # IPython magics
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    if not defs:
        return None
    names = tuple(names)
    node = _Scrub(names).visit(defs[-1])
    node.decorator_list = []
    text = anonymise(ast.unparse(ast.fix_missing_locations(node)), names)
    out = text.splitlines()
    return "\n".join(out[:max_lines] + (["    ..."] if len(out) > max_lines else []))


# nbgrader ------------------------------------------------------------------
_ERROR_STATUS = {"CellTimeoutError": "timeout", "TimeoutError": "timeout", "DeadKernelError": "crashed",
                 "MemoryError": "memory", "KeyboardInterrupt": "timeout"}


def _check_output(outputs: list) -> tuple[dict | None, str | None, bool]:
    """(the check's fields from its MIME output, the name of an exception the cell raised, any stderr)."""
    fields, error, stderr = None, None, False
    for out in outputs:
        kind = out.get("output_type")
        if kind in ("display_data", "execute_result") and MIME_TYPE in out.get("data", {}):
            data = out["data"][MIME_TYPE]
            fields = json.loads(data) if isinstance(data, str) else dict(data)
        elif kind == "error":
            error = str(out.get("ename") or "Exception")
        elif kind == "stream" and out.get("name") == "stderr":
            stderr = True
    return fields, error, stderr


def _nbgrader_entry(cell, unit: str) -> Entry | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = str(meta.get("grade_id", ""))
    exercise = grade_id.removeprefix("check_")
    fields, error, stderr = _check_output(cell.get("outputs", []))
    if fields is None and exercise not in EXERCISES:
        return None  # a test cell that is not one of the course's checks
    cell_points = _number(meta.get("points", 0))
    if fields is not None:
        exercise = str(fields.get("exercise") or exercise)
        status = str(fields.get("status", "?"))
        # nbgrader's rule: an error or stderr output scores 0, anything else full marks
        points = cell_points if status == "passed" and error is None and not stderr else 0.0
        return Entry(exercise, _unit_of(exercise, unit), status, points, cell_points,
                     fields.get("message"), tuple(fields.get("mistakes") or ()))
    if error is not None:
        status = _ERROR_STATUS.get(error, "error")
        if error == "NameError":
            status = "missing"  # the check cell could not find the learner's function
        return Entry(exercise, _unit_of(exercise, unit), status, 0.0, cell_points, f"the check cell raised {error}")
    return Entry(exercise, _unit_of(exercise, unit), "not_run", 0.0, cell_points)


def _submission_status(entries: list[Entry]) -> str:
    for status in ("tampered", "memory", "crashed", "timeout"):
        if any(e.status == status for e in entries):
            return status
    return "ok" if entries else "no_exercises"


def read_nbgrader_course(course: str | Path, *, gradebook: bool = True) -> list[Submission]:
    """The submissions of an nbgrader course: ``autograded/<student>/<assignment>/*.ipynb``.

    Points come from ``gradebook.db`` (through nbgrader's API, on a temporary copy) when there is one,
    nbgrader is installed and ``gradebook`` is true; otherwise from the check cells' outputs and
    their ``points``, by nbgrader's rule (a check that did not pass writes to stderr: 0 points).
    """
    course = Path(course)
    root = course / "autograded" if (course / "autograded").is_dir() else course
    books = _Gradebook.open(course / "gradebook.db") if gradebook else None
    subs = []
    try:
        for path in sorted(root.glob("*/*/*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            student, assignment = path.parent.parent.name, path.parent.name
            names = _learner_names(student, *(books.names(student) if books else ()))
            key = f"{student}/{assignment}/{path.name}"
            try:
                nb = nbformat.read(path, as_version=4)
            except Exception:  # noqa: BLE001  (any unreadable file is an invalid notebook)
                subs.append(Submission(key, names, None, "invalid", 0.0, 0.0))
                continue
            entries, code = [], _solution_sources(nb)
            for cell in nb.cells:
                if cell.get("cell_type") == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                    entry = _nbgrader_entry(cell, path.stem)
                    if entry is not None:
                        if books:
                            books.rescore(entry, cell, path.stem, assignment, student)
                        entry.code = code.get(entry.exercise)
                        entries.append(entry)
            unit = entries[0].unit if entries else path.stem
            subs.append(Submission(key, names, unit, _submission_status(entries),
                                   sum(e.points for e in entries), sum(e.max_points for e in entries), entries))
    finally:
        if books:
            books.close()
    return subs


class _Gradebook:
    """nbgrader's gradebook, read from a temporary copy (opening it with nbgrader's API may write to it)."""

    def __init__(self, gb, tmp: tempfile.TemporaryDirectory):
        self.gb, self.tmp = gb, tmp

    @classmethod
    def open(cls, db: Path) -> _Gradebook | None:
        if not db.is_file():
            return None
        try:
            from nbgrader.api import Gradebook
        except ImportError:
            print(f"note: {db} found but nbgrader is not installed; points come from the notebooks' check cells",
                  file=sys.stderr)
            return None
        tmp = tempfile.TemporaryDirectory(prefix="cu-report-")
        copy = Path(tmp.name) / "gradebook.db"
        shutil.copyfile(db, copy)
        return cls(Gradebook(f"sqlite:///{copy}"), tmp)

    def names(self, student: str) -> tuple[str, ...]:
        try:
            s = self.gb.find_student(student)
        except Exception:  # noqa: BLE001  (MissingEntry: a student the gradebook does not know)
            return ()
        parts = [s.first_name, s.last_name, s.email]
        full = " ".join(p for p in (s.first_name, s.last_name) if p)
        return tuple(p for p in [*parts, full] if p)

    def rescore(self, entry: Entry, cell, notebook: str, assignment: str, student: str) -> None:
        grade_id = cell["metadata"]["nbgrader"]["grade_id"]
        try:
            grade = self.gb.find_grade(grade_id, notebook, assignment, student)
        except Exception:  # noqa: BLE001  (MissingEntry: not autograded into this gradebook)
            return
        if grade.score is not None:
            entry.points = float(grade.score)
        if grade.max_score is not None:
            entry.max_points = float(grade.max_score)

    def close(self) -> None:
        self.gb.close()
        self.tmp.cleanup()


def read_source(path: str | Path, *, gradebook: bool = True,
                submissions: str | Path | None = None) -> tuple[str, list[Submission]]:
    """("grader" or "nbgrader", the submissions) for a folder of grader reports or an nbgrader course."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"expected a folder of grader reports or an nbgrader course, got {path} "
                                f"({'not a folder' if path.exists() else 'no such path'})")
    if (path / "autograded").is_dir():
        return "nbgrader", read_nbgrader_course(path, gradebook=gradebook)
    if any(path.glob("*.json")):
        return "grader", read_grader_reports(path, submissions)
    if any(path.glob("*/*/*.ipynb")):  # the autograded folder itself
        return "nbgrader", read_nbgrader_course(path, gradebook=gradebook)
    raise FileNotFoundError(f"expected in {path} the grader's <name>.json reports or nbgrader's "
                            f"autograded/<student>/<assignment>/*.ipynb, found neither")


# ------------------------------------------------------------ grades.csv
def compare_with_csv(subs: list[Submission], csv_path: str | Path) -> list[str]:
    """Where ``grades.csv`` disagrees with the reports (points, total, max, status), one line each.

    The lines name the submission: print them for the instructor, never put them in the report.
    """
    by_name = {s.key: s for s in subs}
    problems = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        name = row.get("submission", "")
        sub = by_name.get(name)
        if sub is None:
            problems.append(f"{name}: in grades.csv, no report")
            continue
        points = {e.exercise: e.points for e in sub.entries}
        for column, text in row.items():
            if column in EXERCISES or column in points:
                got = points.get(column)
                if (text or "") == "" and got is None:
                    continue
                if got is None or text in ("", None) or abs(float(text) - got) > 1e-9:
                    problems.append(f"{name}: {column} is {text!r} in grades.csv, {got} in the report")
        for column, value in (("total", sub.points), ("max", sub.max_points)):
            if column in row and abs(_number(row[column]) - value) > 1e-9:
                problems.append(f"{name}: {column} is {row[column]!r} in grades.csv, {value:g} in the report")
        if "status" in row and row["status"] != sub.status:
            problems.append(f"{name}: status is {row['status']!r} in grades.csv, {sub.status!r} in the report")
    listed = {row.get("submission") for row in rows}
    problems += [f"{s.key}: a report, no row in grades.csv" for s in subs if s.key not in listed]
    return problems


