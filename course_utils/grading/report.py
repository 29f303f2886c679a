"""What did my class get wrong? A class report from graded submissions.

Usage::

    python -m course_utils.grading.report REPORTS_DIR --out DIR        # the course's batch grader
    python -m course_utils.grading.report NBGRADER_COURSE --out DIR    # an nbgrader course folder
        [--submissions DIR] [--lessons PATH] [--lessons-url BASE] [--no-gradebook]

``REPORTS_DIR`` is the ``--out`` folder of ``python -m course_utils.grading``: one JSON report
per submission (and ``grades.csv``, which the report is compared with). ``NBGRADER_COURSE`` is
a folder with ``autograded/<student>/<assignment>/*.ipynb``: the check cells' outputs carry
each diagnosis (:data:`course_utils.checks.MIME_TYPE`); when nbgrader is installed and the
course has a ``gradebook.db``, the points come from the gradebook (manual grades included),
read from a temporary copy so the instructor's database is never written.

The command writes ``DIR/class_report.html`` (one self-contained page: no script, no style
sheet or image from elsewhere, the histograms embedded as PNG), ``DIR/class_report.md`` (the
same report in Markdown, its figures in ``DIR/figures/``) and ``DIR/class_report.json`` (the
numbers). What it shows, per unit and per exercise: the number of submissions, the pass rate,
the score distribution, the named mistakes ranked by how many submissions made them (counted
by the checks' stable mistake ids, never by message text) with the check's message and one
anonymised example, the statuses that are not about the answer (timeouts, crashes, invalid
notebooks, the reference called), and a "what to revisit" list drawn from the counts, each
point linked to the lesson sections (English and Korean) that teach it (:data:`MISTAKE_SECTIONS`).

No learner's name, student id or file name appears anywhere in the outputs: the page holds
counts, the checks' own messages (scrubbed of every name and path the inputs hold) and
exception type names, never the grader's free-text reasons. Names of disagreeing rows of
``grades.csv`` are printed on the terminal only.

Exit code: 0 when the report was written, 1 when there was nothing to read, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from ..checks import EXERCISES, MIME_TYPE

__all__ = ["ANSWER_STATUSES", "EXERCISE_SECTIONS", "MISTAKE_SECTIONS", "SECTIONS", "ClassReport", "Entry",
           "ExerciseSummary", "MistakeCount", "Revisit", "Submission", "UnitSummary", "anonymise", "anonymise_code",
           "compare_with_csv", "heading_slug", "lesson_headings", "lesson_links", "main", "missing_lesson_sections",
           "read_grader_reports", "read_nbgrader_course", "read_source", "summarise", "write_report"]

# ----------------------------------------------------------------- statuses
#: exercise statuses that say something about the learner's answer; every other one (timeout, crashed,
#: memory, uses_reference, tampered, grader_error, not_run, ...) is counted apart, as not about the exercise
ANSWER_STATUSES = ("passed", "wrong", "error", "not_implemented", "missing")
_STATUS_WORDS = {
    "passed": "passed", "wrong": "wrong", "error": "raised an error", "not_implemented": "not implemented",
    "missing": "function missing", "uses_reference": "calls the reference", "tampered": "tampered",
    "timeout": "timed out", "crashed": "crashed the kernel", "memory": "ran out of memory",
    "grader_error": "grader error", "not_run": "check cell not run", "invalid": "not a valid notebook",
    "no_exercises": "no exercise found", "ok": "graded",
}
UNNAMED = "(no named mistake)"


def status_words(status: str) -> str:
    return _STATUS_WORDS.get(status, status.replace("_", " "))


# --------------------------------------------------------- lesson sections
#: section key -> {language: (lesson file under lessons/, heading text as written)}
SECTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "rnn.step": {"en": ("en/01_rnn.md", "2. One step"),
                 "ko": ("ko/01_rnn.md", "1. 은닉 상태: 지금까지 본 것의 요약")},
    "rnn.code": {"en": ("en/01_rnn.md", "2. One step"), "ko": ("ko/01_rnn.md", "수식과 코드 맞추기")},
    "rnn.mistakes": {"en": ("en/01_rnn.md", "Common mistakes"), "ko": ("ko/01_rnn.md", "4. 자주 하는 실수")},
    "rnn.exercise": {"en": ("en/01_rnn.md", "Exercise: `rnn_cell`"), "ko": ("ko/01_rnn.md", "3. 노트북에서 할 일")},
    "clip.clipping": {"en": ("en/02_gradients_through_time.md", "4. Gradient clipping"),
                      "ko": ("ko/02_gradients_through_time.md", "4. 기울기 클리핑: 폭발만 막는 안전장치")},
    "clip.mistakes": {"en": ("en/02_gradients_through_time.md", "Common mistakes"),
                      "ko": ("ko/02_gradients_through_time.md", "6. 자주 하는 실수")},
    "clip.exercise": {"en": ("en/02_gradients_through_time.md", "Exercise: `clip_grad_norm`"),
                      "ko": ("ko/02_gradients_through_time.md", "5. 노트북에서 할 일")},
    "lstm.equations": {"en": ("en/03_lstm.md", "2. The equations"), "ko": ("ko/03_lstm.md", "2. 네 게이트와 셀 갱신")},
    "lstm.code": {"en": ("en/03_lstm.md", "2. The equations"), "ko": ("ko/03_lstm.md", "코드에서는")},
    "lstm.mistakes": {"en": ("en/03_lstm.md", "Common mistakes"), "ko": ("ko/03_lstm.md", "5. 자주 하는 실수")},
    "lstm.exercise": {"en": ("en/03_lstm.md", "Exercise: `lstm_cell`"), "ko": ("ko/03_lstm.md", "4. 노트북에서 할 일")},
    "gru.equations": {"en": ("en/04_gru.md", "2. The equations (PyTorch's convention)"),
                      "ko": ("ko/04_gru.md", "1. PyTorch의 GRU")},
    "gru.code": {"en": ("en/04_gru.md", "2. The equations (PyTorch's convention)"), "ko": ("ko/04_gru.md", "코드에서는")},
    "gru.conventions": {"en": ("en/04_gru.md", "4. Two conventions, and why they differ"),
                        "ko": ("ko/04_gru.md", "2. 두 가지 표기: PyTorch 형태와 교과서 형태")},
    "gru.mistakes": {"en": ("en/04_gru.md", "Common mistakes"), "ko": ("ko/04_gru.md", "5. 자주 하는 실수")},
    "gru.exercise": {"en": ("en/04_gru.md", "Exercise: `gru_cell`"), "ko": ("ko/04_gru.md", "4. 노트북에서 할 일")},
    "cmp.exercise": {"en": ("en/05_comparison.md", "Exercise: `build_model`"),
                     "ko": ("ko/05_comparison.md", "5. 노트북에서 할 일")},
    "cmp.mistakes": {"en": ("en/05_comparison.md", "Common mistakes"), "ko": ("ko/05_comparison.md", "6. 자주 하는 실수")},
}

#: (exercise, stable mistake id) -> the sections that teach the point (the exercise's "common mistakes"
#: section is linked as well, see :func:`lesson_links`)
MISTAKE_SECTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    **{("rnn_cell", m): ("rnn.step",) for m in (
        "relu_for_tanh", "nonlinearity_ignored", "sigmoid_for_tanh", "no_nonlinearity", "missing_bias_ih",
        "missing_bias_hh", "missing_both_biases", "hidden_state_ignored", "state_not_updated", "returns_input")},
    **{("rnn_cell", m): ("rnn.code",) for m in (
        "transposed_weight_ih", "transposed_weight_hh", "transposed_both_weights", "swapped_weights")},
    **{("clip_grad_norm", m): ("clip.clipping",) for m in (
        "per_tensor_clipping", "scales_up_small_gradients", "not_clipped", "squared_norm_scale",
        "summed_norms_scale", "total_norm_squared", "total_norm_summed", "total_norm_max",
        "total_norm_after_clipping")},
    ("lstm_cell", "gate_order"): ("lstm.code",),
    **{("lstm_cell", m): ("lstm.equations",) for m in (
        "tanh_for_sigmoid_gate", "tanh_for_all_gates", "sigmoid_for_tanh_candidate", "missing_bias_ih",
        "missing_bias_hh", "missing_both_biases", "c_for_tanh_c", "sigmoid_in_output", "h_from_old_c",
        "missing_forget_gate", "missing_input_gate", "state_not_updated")},
    ("lstm_cell", "returns_c_h"): ("lstm.exercise",),
    **{("gru_cell", m): ("gru.conventions",) for m in (
        "z_swapped", "reset_before_matmul", "chung_form", "b_hn_outside_reset")},
    **{("gru_cell", m): ("gru.code",) for m in ("gate_order", "reset_unused")},
    **{("gru_cell", m): ("gru.equations",) for m in (
        "tanh_for_sigmoid_gate", "tanh_for_both_gates", "sigmoid_for_tanh_candidate", "missing_bias_ih",
        "missing_bias_hh", "missing_both_biases", "returns_candidate", "state_not_updated")},
}

#: exercise -> (the section of its exercise, the section of its common mistakes)
EXERCISE_SECTIONS: dict[str, tuple[str, str]] = {
    "rnn_cell": ("rnn.exercise", "rnn.mistakes"),
    "clip_grad_norm": ("clip.exercise", "clip.mistakes"),
    "lstm_cell": ("lstm.exercise", "lstm.mistakes"),
    "gru_cell": ("gru.exercise", "gru.mistakes"),
    "build_model": ("cmp.exercise", "cmp.mistakes"),
}


def heading_slug(heading: str) -> str:
    """The anchor GitHub (and MyST with ``heading_anchors``) gives a heading: lower case, punctuation
    dropped, spaces to hyphens; letters of every script are kept."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def lesson_links(exercise: str, mistake: str | None = None) -> list[dict[str, str]]:
    """The lesson sections for a mistake (or, with ``mistake=None``, for the exercise as a whole), without
    repeats: ``[{"lang", "file", "heading", "anchor"}]``, English first."""
    keys: list[str] = []
    if mistake is not None:
        keys += MISTAKE_SECTIONS.get((exercise, mistake), ())
    own = EXERCISE_SECTIONS.get(exercise)
    if own:
        keys += [own[1]] if mistake is not None else list(own)
    links, seen = [], set()
    for lang in ("en", "ko"):
        for key in keys:
            file, heading = SECTIONS[key][lang]
            if (file, heading) not in seen:
                seen.add((file, heading))
                links.append({"lang": lang, "file": file, "heading": heading, "anchor": heading_slug(heading)})
    return links


def lesson_headings(text: str) -> list[str]:
    """The headings of a Markdown lesson, as written (``#`` lines inside fenced code are not headings)."""
    headings, fence = [], None
    for line in text.splitlines():
        stripped = line.strip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * len(marker.group(1))
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None and (m := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            headings.append(m.group(1))
    return headings


def missing_lesson_sections(lessons: str | Path) -> list[str]:
    """The sections of :data:`SECTIONS` that ``lessons`` (the lessons/ folder) lacks, one line each."""
    problems = []
    for key, langs in SECTIONS.items():
        for file, heading in langs.values():
            path = Path(lessons) / file
            if not path.is_file():
                problems.append(f"{key}: no lesson file {file}")
            elif heading not in lesson_headings(path.read_text(encoding="utf-8")):
                problems.append(f"{key}: no heading {heading!r} in {file}")
    return problems


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
            body = [n for n in node.body
                    if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str))]
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


# ---------------------------------------------------------------- counting
@dataclass
class MistakeCount:
    id: str
    count: int  # submissions whose answer was diagnosed with this mistake
    share: float  # of the exercise's submissions
    description: str | None  # the check's message for it
    example: str | None  # one learner's full diagnosis, anonymised
    lessons: list[dict[str, str]]
    code_example: str | None = None  # one learner's function with this mistake, anonymised (when notebooks are read)


@dataclass
class ExerciseSummary:
    exercise: str
    unit: str
    submissions: int
    passed: int
    pass_rate: float
    max_points: float
    mean_points: float
    scores: dict[str, int]  # points -> submissions, as text ("0", "1", "0.5")
    statuses: dict[str, int]
    mistakes: list[MistakeCount]
    unnamed_wrong: int  # wrong answers the check did not recognise
    errors: dict[str, int]  # exception type -> submissions (status "error")


@dataclass
class UnitSummary:
    unit: str
    submissions: int
    complete: int  # submissions that passed every exercise they hold
    max_points: float
    mean_points: float
    scores: dict[str, int]
    statuses: dict[str, int]  # submission statuses
    exercises: list[ExerciseSummary]


@dataclass
class Revisit:
    text: str
    count: int
    share: float
    exercise: str | None
    mistake: str | None
    lessons: list[dict[str, str]]


@dataclass
class ClassReport:
    source: str
    submissions: int
    statuses: dict[str, int]  # submission statuses
    other_statuses: dict[str, int]  # exercise statuses not about the answer
    units: list[UnitSummary]
    revisit: list[Revisit]
    csv_disagreements: int | None = None  # rows of grades.csv that disagree (None: no grades.csv)

    def to_dict(self) -> dict:
        return asdict(self)


def _score_key(points: float) -> str:
    return str(int(points)) if float(points).is_integer() else f"{points:g}"


def _distribution(values: Iterable[float]) -> dict[str, int]:
    counts = Counter(round(v, 6) for v in values)
    return {_score_key(v): counts[v] for v in sorted(counts)}


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


def _descriptions(message: str | None, ids: tuple[str, ...]) -> dict[str, str]:
    """The "Likely mistake: ..." line of each mistake id in a check's message (they come in the same order)."""
    lines = [line.split(":", 1)[1].strip() for line in (message or "").splitlines()
             if line.startswith("Likely mistake:")]
    return dict(zip(ids, lines)) if len(lines) == len(ids) else {}


def _pick(texts: list[str]) -> str | None:
    """The most common text, ties broken by the text itself (deterministic)."""
    if not texts:
        return None
    counts = Counter(texts)
    return min(counts, key=lambda t: (-counts[t], t))


def _shortest(texts: list[str]) -> str | None:
    """The shortest text (the easiest to show a class), ties broken by the text itself."""
    return min(texts, key=lambda t: (len(t.splitlines()), len(t), t)) if texts else None


def _exception_name(message: str | None) -> str:
    found = re.search(r"raised (\w+)", message or "")
    return found.group(1) if found else "an exception"


def _summarise_exercise(exercise: str, unit: str, rows: list[tuple[Submission, Entry]]) -> ExerciseSummary:
    n = len(rows)
    statuses = Counter(e.status for _, e in rows)
    passed = statuses.get("passed", 0)
    by_id: dict[str, list[tuple[Submission, Entry]]] = {}
    for sub, e in rows:
        for m in dict.fromkeys(e.mistakes):  # a submission counts once per mistake
            by_id.setdefault(m, []).append((sub, e))
    mistakes = []
    for m, found in by_id.items():
        descriptions = [d for _, e in found if (d := _descriptions(e.message, e.mistakes).get(m))]
        examples = [anonymise(e.message, sub.names) for sub, e in found if e.message]
        function = EXERCISES[exercise].function if exercise in EXERCISES else exercise
        codes = [c for sub, e in found if (c := anonymise_code(e.code, function, sub.names))]
        mistakes.append(MistakeCount(m, len(found), len(found) / n, _pick(descriptions), _pick(examples),
                                     lesson_links(exercise, m), _shortest(codes)))
    mistakes.sort(key=lambda c: (-c.count, c.id))
    max_points = max((e.max_points for _, e in rows), default=0.0)
    return ExerciseSummary(
        exercise=exercise, unit=unit, submissions=n, passed=passed, pass_rate=passed / n if n else 0.0,
        max_points=max_points, mean_points=sum(e.points for _, e in rows) / n if n else 0.0,
        scores=_distribution(e.points for _, e in rows), statuses=dict(statuses.most_common()),
        mistakes=mistakes, unnamed_wrong=sum(1 for _, e in rows if e.status == "wrong" and not e.mistakes),
        errors=dict(Counter(_exception_name(e.message) for _, e in rows if e.status == "error").most_common()))


def _unit_order(unit: str) -> tuple:
    order = list(dict.fromkeys(e.unit for e in EXERCISES.values()))
    return (order.index(unit) if unit in order else len(order), unit)


def _exercise_order(exercise: str) -> tuple:
    order = list(EXERCISES)
    return (order.index(exercise) if exercise in order else len(order), exercise)


#: a mistake enters "what to revisit" when at least this share of its exercise's submissions made it ...
REVISIT_SHARE = 0.10
#: ... and at least this many submissions did
REVISIT_MIN_COUNT = 2
#: an exercise enters it when fewer than this share of its submissions passed
REVISIT_PASS_RATE = 0.5
REVISIT_MAX_ITEMS = 8


def summarise(source: str, subs: list[Submission]) -> ClassReport:
    """Count everything the report shows."""
    rows: dict[tuple[str, str], list[tuple[Submission, Entry]]] = {}
    for sub in subs:
        for e in sub.entries:
            rows.setdefault((e.unit, e.exercise), []).append((sub, e))
    exercises = {key: _summarise_exercise(key[1], key[0], r) for key, r in rows.items()}
    unit_names = sorted({s.unit for s in subs if s.unit} | {u for u, _ in rows}, key=_unit_order)
    units = []
    for unit in unit_names:
        own = [s for s in subs if s.unit == unit]
        totals = [s.points for s in own]
        units.append(UnitSummary(
            unit=unit, submissions=len(own),
            complete=sum(1 for s in own if s.entries and all(e.status == "passed" for e in s.entries)),
            max_points=max((s.max_points for s in own), default=0.0),
            mean_points=sum(totals) / len(own) if own else 0.0, scores=_distribution(totals),
            statuses=dict(Counter(s.status for s in own).most_common()),
            exercises=[exercises[k] for k in sorted((k for k in exercises if k[0] == unit),
                                                    key=lambda k: _exercise_order(k[1]))]))
    other = Counter(e.status for s in subs for e in s.entries if e.status not in ANSWER_STATUSES)
    report = ClassReport(source=source, submissions=len(subs),
                         statuses=dict(Counter(s.status for s in subs).most_common()),
                         other_statuses=dict(other.most_common()), units=units, revisit=[])
    report.revisit = _revisit(report)
    return report


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _revisit(report: ClassReport) -> list[Revisit]:
    """The points to take up in the next lab, drawn from the counts: the mistakes made by at least
    :data:`REVISIT_SHARE` (and :data:`REVISIT_MIN_COUNT`) of an exercise's submissions, most widespread
    first, then the exercises that fewer than :data:`REVISIT_PASS_RATE` of the submissions passed."""
    items = []
    for unit in report.units:
        for ex in unit.exercises:
            for m in ex.mistakes:
                if m.count >= REVISIT_MIN_COUNT and m.share >= REVISIT_SHARE:
                    what = m.description or m.id.replace("_", " ")
                    items.append(Revisit(
                        f"{ex.exercise}: {_pct(m.share)} of the submissions ({m.count} of {ex.submissions}) — {what}",
                        m.count, m.share, ex.exercise, m.id, m.lessons))
            answered = ex.submissions - sum(ex.statuses.get(s, 0) for s in ("not_implemented", "missing"))
            if ex.submissions >= REVISIT_MIN_COUNT and ex.pass_rate < REVISIT_PASS_RATE:
                parts = [f"{n} {status_words(s)}" for s, n in ex.statuses.items() if s != "passed"]
                text = (f"{ex.exercise}: only {_pct(ex.pass_rate)} passed ({ex.passed} of {ex.submissions}; "
                        f"{', '.join(parts)})")
                if answered < ex.submissions / 2:
                    text += " — most did not get to it: leave time for it in the lab"
                items.append(Revisit(text, ex.submissions - ex.passed, 1 - ex.pass_rate, ex.exercise, None,
                                     lesson_links(ex.exercise)))
    # the named misconceptions first (what a lab can address head-on), then exercises few passed
    items.sort(key=lambda r: (r.mistake is None, -r.share, -r.count, r.text))
    return items[:REVISIT_MAX_ITEMS]


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


# -------------------------------------------------------------- the command
def write_report(report: ClassReport, out: str | Path, *, lessons: Path | None = None,
                 lessons_url: str | None = None) -> dict[str, Path]:
    """Write ``class_report.html``, ``class_report.md``, ``class_report.json`` and ``figures/`` into ``out``."""
    from ._report_pages import write_pages

    return write_pages(report, Path(out), lessons=lessons, lessons_url=lessons_url)


def _default_lessons() -> Path | None:
    here = Path(__file__).resolve().parent.parent.parent / "lessons"  # a checkout: lessons/ next to course_utils/
    return here if here.is_dir() else None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_utils.grading.report",
                                description="A class report (HTML and Markdown) from graded submissions: the "
                                            "batch grader's reports folder or an nbgrader course folder.")
    p.add_argument("source", metavar="REPORTS_DIR_OR_NBGRADER_COURSE",
                   help="the grader's --out folder (<name>.json reports, grades.csv), or an nbgrader course "
                        "folder holding autograded/<student>/<assignment>/*.ipynb (and gradebook.db)")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write class_report.html/.md/.json")
    p.add_argument("--lessons", metavar="PATH", type=Path, default=None,
                   help="the course's lessons/ folder, linked from the report (default: the checkout's)")
    p.add_argument("--lessons-url", metavar="BASE", default=None,
                   help="link lessons under this base instead (e.g. where the course's site serves lessons/)")
    p.add_argument("--submissions", metavar="DIR", default=None,
                   help="grader reports: the folder of the submitted notebooks, to show one learner's code (comments, "
                        "docstrings and names removed) for each mistake; an nbgrader course has them already")
    p.add_argument("--no-gradebook", action="store_true",
                   help="nbgrader: take the points from the notebooks' check cells, not from gradebook.db")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        source, subs = read_source(args.source, gradebook=not args.no_gradebook, submissions=args.submissions)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not subs:
        print(f"error: no submission found in {args.source}", file=sys.stderr)
        return 1
    report = summarise(source, subs)
    grades = Path(args.source) / "grades.csv"
    if source == "grader" and grades.is_file():
        problems = compare_with_csv(subs, grades)
        report.csv_disagreements = len(problems)
        for line in problems:
            print(f"grades.csv disagrees: {line}", file=sys.stderr)
    lessons = args.lessons if args.lessons is not None else _default_lessons()
    written = write_report(report, args.out, lessons=lessons, lessons_url=args.lessons_url)
    print(f"{report.submissions} submissions ({source}); wrote {', '.join(str(p) for p in written.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
