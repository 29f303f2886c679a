"""The nbgrader workflow of the instructor guide, run for real: every unit, a small class of submissions.

This drives the real nbgrader command line (``python -m nbgrader``, the running interpreter) in a
temporary course folder, exactly as ``lessons/instructor_guide.md`` tells an instructor to:

1. ``source/<unit>/<unit>.ipynb`` is ``solutions/<unit>.ipynb``, one assignment per unit, and
   ``nbgrader_config.py`` is :data:`NBGRADER_CONFIG`;
2. ``nbgrader generate_assignment "*" --force`` writes ``release/`` (and creates the assignments in
   ``gradebook.db``);
3. the submissions go to ``submitted/<student>/<unit>/<unit>.ipynb``;
4. ``nbgrader autograde "*" --force`` executes them (students are created on the way);
5. ``nbgrader export`` writes ``grades.csv``; per-cell scores are read from ``gradebook.db``.

The units are every ``solutions/*.ipynb`` (units added later are covered without touching this
file); their exercises are the notebook's solution cells, which must be registered in
``course_utils.checks.EXERCISES``. Each unit gets a class of seven students:

- ``correct``: the student notebook with every solution filled in, the full notebook;
- ``untouched``: the student notebook as released (what ``notebooks/`` holds), nothing solved;
- ``mistake1``, ``mistake2``: the solution with one named mistake (:data:`MISTAKES`, text
  substitutions inside a solution region); every unit must have two, or the test fails;
- ``raises``: the untouched notebook whose code stubs raise ``ValueError`` instead of
  ``NotImplementedError`` (a learner's function that raises: the check reports an error);
- ``edited``: the untouched notebook whose check cells were replaced by ``print("ok")``;
- ``deleted``: the correct solution with its check cells deleted.

Expected: ``correct`` gets every check's points, ``untouched`` and ``raises`` 0, each mistake 0 on
its exercise's check, with the check naming the mistake (read from the check's JSON output in ``autograded/``);
``edited`` gets what ``untouched`` gets, because nbgrader puts the locked check cell's source back
(checksum from the gradebook) and runs it; ``deleted`` gets full points, because the course's
config sets ``OverwriteCells.add_missing_cells = True``: nbgrader puts the deleted check cell
back (with a comment saying so) and runs it, so a deletion neither hides a wrong answer nor loses
a right one. nbgrader's default (``add_missing_cells = False``) is asserted too, on the first
unit: the missing cell's grade has no autograde score, is flagged for manual grading and counts 0
until an instructor grades it in formgrader.

To keep the run short (it is part of CI), every submission other than ``correct`` is trimmed to the
cells grading needs: the setup and import cells (every top-level statement an import or
``course_utils.setup(...)``), the solution cells, the check cells and the cells named in
:data:`KEEP_CELLS`. ``deleted`` (correct solution, trimmed, full points expected) shows that the
trimmed notebooks have what the checks need. The whole module runs nbgrader four times, in one
fixture: 36 notebook runs for units 01-05, about 170 s of CPU time in all (`/usr/bin/time`); 7.5 min of
wall time on the shared 2-core machine at a load average near 10; estimated 2-3 min on 2 idle cores
(not measured: no idle machine was available).
"""

from __future__ import annotations

import ast
import copy
import csv
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from course_utils.checks import EXERCISES, MIME_TYPE
from course_utils.release import BEGIN_SOLUTION, END_SOLUTION, release_notebook

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))

#: the course's nbgrader_config.py, as the instructor guide gives it (the test writes exactly this file)
NBGRADER_CONFIG = '''\
c = get_config()
c.CourseDirectory.course_id = "rnn-course"
# seconds per cell; a check that trains a model (05 build_model) takes about 5 s on one core
c.Execute.timeout = 300
# a deleted check cell is put back from the gradebook and run, instead of being left for manual grading
c.OverwriteCells.add_missing_cells = True
'''
NBGRADER_TIMEOUT_S = 1200  # for each nbgrader command; the whole class normally takes a few minutes


@dataclass(frozen=True)
class Mistake:
    """A mistaken solution: ``substitutions`` (old, new) applied inside the solution region of
    ``grade_id``'s solution cell; ``mistake_id`` is the id the check must name (None where the check
    names mistakes only in its message)."""

    grade_id: str
    substitutions: tuple[tuple[str, str], ...]
    mistake_id: str | None


#: two mistakes per unit; a unit without an entry fails test_every_unit_has_two_mistakes
MISTAKES: dict[str, tuple[Mistake, Mistake]] = {
    "01_rnn": (
        Mistake("rnn_cell", (("return torch.tanh(pre)", "return torch.sigmoid(pre)"),), "sigmoid_for_tanh"),
        Mistake("rnn_cell", (("pre = pre + bias_hh", "pre = pre"),), "missing_bias_hh"),
    ),
    "02_gradients_through_time": (
        Mistake("clip_grad_norm", (("torch.clamp(max_norm / (total_norm + eps), max=1.0)",
                                    "max_norm / (total_norm + eps)"),), "scales_up_small_gradients"),
        Mistake("clip_grad_norm", (("return clipped, total_norm", "return list(grads), total_norm"),),
                "not_clipped"),
    ),
    "03_lstm": (
        Mistake("lstm_cell", (("torch.tanh(g)", "torch.sigmoid(g)"),), "sigmoid_for_tanh_candidate"),
        Mistake("lstm_cell", (("h_t = o * torch.tanh(c_t)", "h_t = o * c_t"),), "c_for_tanh_c"),
    ),
    "04_gru": (
        Mistake("gru_cell", (("n = torch.tanh(", "n = torch.sigmoid("),), "sigmoid_for_tanh_candidate"),
        Mistake("gru_cell", (("return (1 - z) * n + z * h", "return z * n + (1 - z) * h"),), "z_swapped"),
    ),
    "05_comparison": (
        Mistake("build_model", (("self.head(output[:, -1])", "self.head(output)"),), "every_step_output"),
        Mistake("build_model", ((".squeeze(-1)", ".squeeze()"),), "squeeze_all"),  # drops N when N = 1
    ),
    "06_char_lm": (
        Mistake("perplexity", (("return torch.exp(-log_p_true.mean())", "return -log_p_true.mean()"),), "no_exp"),
        Mistake("sample", (("torch.softmax(logits[0, -1] / temperature, dim=-1)",
                            "torch.softmax(logits[0, -1], dim=-1) / temperature"),), "temperature_after_softmax"),
    ),
    "07_layers_in_practice": (
        Mistake("last_valid_output", (("return output[steps, rows]", "return output[-1]"),), "padded_last_step"),
        Mistake("final_states", (("return torch.cat(list(last_layer), dim=-1)",
                                  "return torch.cat(list(last_layer.flip(0)), dim=-1)"),), "directions_swapped"),
    ),
}
#: cells (by id) a unit's trimmed submissions keep besides setup, solution and check cells: add one here when a
#: solution needs a name defined in another cell (the trimmed `deleted` submission then fails to reach full points)
KEEP_CELLS: dict[str, tuple[str, ...]] = {}
STUDENTS = ("correct", "untouched", "mistake1", "mistake2", "raises", "edited", "deleted")
RAISES = 'raise ValueError("a bug in the learner\'s code")'
EDITED_SOURCE = 'print("ok")'
DEFAULT_STUDENT = "deleted_default"  # a deleted check cell graded with nbgrader's default config


# ------------------------------------------------------------------ notebooks
def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _is_solution(cell) -> bool:
    return bool(_meta(cell).get("solution"))


def _is_check(cell) -> bool:
    return bool(_meta(cell).get("grade")) and not _is_solution(cell)


def _read(unit: str):
    return nbformat.read(ROOT / "solutions" / f"{unit}.ipynb", as_version=4)


def _checks(nb) -> dict[str, float]:
    """grade_id -> points of every check cell."""
    return {_meta(c)["grade_id"]: float(_meta(c)["points"]) for c in nb.cells if _is_check(c)}


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION))


def _substitute(source: str, subs, where: str) -> str:
    """Apply (old, new) substitutions inside the solution region(s) of a solution cell's source."""
    lines = source.split("\n")
    begin = [i for i, line in enumerate(lines) if line.strip() == BEGIN_SOLUTION]
    end = [i for i, line in enumerate(lines) if line.strip() == END_SOLUTION]
    assert begin and len(begin) == len(end), f"{where}: expected solution regions, found none"
    for old, new in subs:
        hits = [(b, e) for b, e in zip(begin, end) if "\n".join(lines[b + 1:e]).count(old) == 1]
        assert len(hits) == 1, (f"{where}: expected {old!r} once in one solution region; the mistake table in "
                                f"tests/test_nbgrader.py is out of date with the solution")
        b, e = hits[0]
        region = "\n".join(lines[b + 1:e]).replace(old, new)
        lines = lines[:b + 1] + region.split("\n") + lines[e:]
        begin = [i for i, line in enumerate(lines) if line.strip() == BEGIN_SOLUTION]
        end = [i for i, line in enumerate(lines) if line.strip() == END_SOLUTION]
    return "\n".join(lines)


def _is_setup(cell) -> bool:
    """A code cell whose every top-level statement is an import or ``... = course_utils.setup(...)``."""
    if cell.cell_type != "code" or _meta(cell):
        return False
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False

    def setup_call(node) -> bool:
        value = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
        return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and value.func.attr == "setup" and isinstance(value.func.value, ast.Name)
                and value.func.value.id == "course_utils")

    return bool(body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) or setup_call(n) for n in body)


def _trimmed(nb, unit: str):
    keep = KEEP_CELLS.get(unit, ())
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if _is_setup(c) or _is_solution(c) or _is_check(c) or c.get("id") in keep]
    return nb


def _solved(student, solution, mistake: Mistake | None = None, unit: str = ""):
    """The student notebook with every solution region filled in (with ``mistake`` applied)."""
    nb = copy.deepcopy(student)
    for mine, theirs in zip(nb.cells, solution.cells):
        assert mine.get("id") == theirs.get("id")
        if _is_solution(theirs):
            source = theirs.source
            if mistake is not None and _meta(theirs).get("grade_id") == mistake.grade_id:
                source = _substitute(source, mistake.substitutions, f"{unit}: {mistake.grade_id}")
            mine.source = _without_markers(source)
    return nb


def submissions(unit: str) -> dict[str, object]:
    """student id -> the notebook that student hands in for ``unit``."""
    solution = _read(unit)
    student = release_notebook(solution, unit)  # what notebooks/ holds
    mistakes = MISTAKES.get(unit, ())
    out = {"correct": _solved(student, solution), "untouched": _trimmed(student, unit)}
    for k, mistake in enumerate(mistakes, start=1):
        out[f"mistake{k}"] = _trimmed(_solved(student, solution, mistake, unit), unit)
    raises = _trimmed(student, unit)
    for cell in raises.cells:
        if _is_solution(cell):
            assert "raise NotImplementedError()" in cell.source, f"{unit}: expected the code stub in {cell.source!r}"
            cell.source = cell.source.replace("raise NotImplementedError()", RAISES)
    out["raises"] = raises
    edited = _trimmed(student, unit)
    for cell in edited.cells:
        if _is_check(cell):
            cell.source = EDITED_SOURCE
    out["edited"] = edited
    deleted = _trimmed(_solved(student, solution), unit)
    deleted.cells = [c for c in deleted.cells if not _is_check(c)]
    out["deleted"] = deleted
    return out


def expected_scores(unit: str, student: str) -> dict[str, float]:
    """check grade_id -> the score that student must get (None: not asserted)."""
    points = _checks(_read(unit))
    if student in ("correct", "deleted"):
        return dict(points)
    if student in ("untouched", "raises", "edited"):
        return {g: 0.0 for g in points}
    mistake = MISTAKES[unit][int(student[-1]) - 1]
    # other exercises of the unit may call the mistaken function: only this exercise's check is asserted
    return {f"check_{mistake.grade_id}": 0.0}


# ------------------------------------------------------------------ running nbgrader
def nbgrader_env() -> dict[str, str]:
    """The environment nbgrader and its kernels see: this checkout's course_utils first on the path, and
    the running interpreter's folder first on PATH (the python3 kernelspec starts `python`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    env.pop("JUPYTER_CONFIG_DIR", None)
    return env


def nbgrader(course: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "nbgrader", *args]
    run = subprocess.run(cmd, cwd=course, env=nbgrader_env(), capture_output=True, text=True, check=False,
                         timeout=NBGRADER_TIMEOUT_S)
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"`nbgrader {' '.join(args)}` exited {run.returncode}:\n{log[-6000:]}"
    return log


@dataclass
class Graded:
    course: Path
    seconds: float
    logs: dict[str, str]
    scores: dict[tuple[str, str], dict[str, tuple[float, float | None, bool]]]  # (unit, student) -> cell ->
    #                                                                   (score, auto_score, needs_manual_grade)
    csv_rows: list[dict[str, str]]

    def autograded(self, unit: str, student: str):
        return nbformat.read(self.course / "autograded" / student / unit / f"{unit}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    course = tmp_path_factory.mktemp("nbgrader_course")
    start = time.perf_counter()
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG, encoding="utf-8")
    for unit in UNITS:
        (course / "source" / unit).mkdir(parents=True)
        (course / "source" / unit / f"{unit}.ipynb").write_bytes((ROOT / "solutions" / f"{unit}.ipynb").read_bytes())
    logs = {"generate_assignment": nbgrader(course, "generate_assignment", "*", "--force")}
    submitted = {}
    for unit in UNITS:
        for student, nb in submissions(unit).items():
            submitted[unit, student] = True
            folder = course / "submitted" / student / unit
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{unit}.ipynb")
    logs["autograde"] = nbgrader(course, "autograde", "*", "--force")
    # nbgrader's default for a deleted check cell, on the first unit
    folder = course / "submitted" / DEFAULT_STUDENT / UNITS[0]
    folder.mkdir(parents=True)
    (folder / f"{UNITS[0]}.ipynb").write_bytes((course / "submitted" / "deleted" / UNITS[0] / f"{UNITS[0]}.ipynb")
                                               .read_bytes())
    logs["autograde_default"] = nbgrader(course, "autograde", UNITS[0], "--student", DEFAULT_STUDENT, "--force",
                                         "--OverwriteCells.add_missing_cells=False")
    logs["export"] = nbgrader(course, "export")
    seconds = time.perf_counter() - start

    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rnn-course") as gb:
        for unit, student in [*submitted, (UNITS[0], DEFAULT_STUDENT)]:
            sub = gb.find_submission_notebook(unit, unit, student)
            scores[unit, student] = {g.name: (g.score, g.auto_score, g.needs_manual_grade) for g in sub.grades}
    with open(course / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = "\n".join(f"{unit:28} {student:16} " + ", ".join(f"{k} {v[0]:g}" for k, v in cells.items())
                      for (unit, student), cells in scores.items())
    print(f"\nnbgrader generate_assignment + autograde + export: {seconds:.0f} s\n{table}")
    return Graded(course, seconds, logs, scores, rows)


# ------------------------------------------------------------------ tests that need no nbgrader run
@pytest.mark.parametrize("unit", UNITS)
def test_every_unit_has_two_mistakes(unit):
    assert unit in MISTAKES, (f"{unit}: no mistaken solutions for the nbgrader test; add two entries to MISTAKES "
                              f"in tests/test_nbgrader.py (text substitutions inside a solution region)")
    solution = _read(unit)
    grade_ids = {_meta(c)["grade_id"] for c in solution.cells if _is_solution(c)}
    for mistake in MISTAKES[unit]:
        assert mistake.grade_id in grade_ids, f"{unit}: no solution cell {mistake.grade_id!r} (have {grade_ids})"
        cell = next(c for c in solution.cells if _meta(c).get("grade_id") == mistake.grade_id)
        assert _substitute(cell.source, mistake.substitutions, unit) != cell.source


def test_no_mistake_entry_for_a_unit_that_does_not_exist():
    assert sorted(set(MISTAKES) - set(UNITS)) == []


@pytest.mark.parametrize("unit", UNITS)
def test_units_exercises_are_registered_with_a_check_cell(unit):
    """Each solution cell is an exercise of course_utils.checks.EXERCISES, followed by its check cell."""
    nb = _read(unit)
    solutions = [_meta(c)["grade_id"] for c in nb.cells if _is_solution(c)]
    registered = [e.grade_id for e in EXERCISES.values() if e.unit == unit]
    assert solutions, f"{unit}: no solution cell (nbgrader metadata solution: true)"
    assert sorted(solutions) == sorted(registered), f"{unit}: solution cells {solutions}, registered {registered}"
    assert sorted(_checks(nb)) == sorted(f"check_{g}" for g in solutions)


def test_trimmed_submissions_keep_setup_solution_and_check_cells():
    subs = submissions(UNITS[0])
    kept = subs["untouched"].cells
    assert any(_is_setup(c) and "course_utils.setup(" in c.source for c in kept)
    assert [c for c in kept if _is_solution(c)] and [c for c in kept if _is_check(c)]
    assert not [c for c in subs["deleted"].cells if _is_check(c)]
    assert all(c.source == EDITED_SOURCE for c in subs["edited"].cells if _is_check(c))
    assert len(subs["correct"].cells) == len(_read(UNITS[0]).cells)


# ------------------------------------------------------------------ what nbgrader gives
def _check_output(nb, grade_id: str) -> tuple[dict | None, str, list[str]]:
    """(the check's JSON result or None, the cell's stderr, the error names) of the check cell ``grade_id``."""
    cell = next((c for c in nb.cells if _meta(c).get("grade_id") == grade_id), None)
    assert cell is not None, f"no cell {grade_id!r} in the autograded notebook"
    result = next((o["data"][MIME_TYPE] for o in cell.outputs if MIME_TYPE in o.get("data", {})), None)
    stderr = "".join(o["text"] for o in cell.outputs if o.get("output_type") == "stream" and o["name"] == "stderr")
    errors = [o["ename"] for o in cell.outputs if o.get("output_type") == "error"]
    return result, stderr, errors


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("student", STUDENTS)
def test_score(graded, unit, student):
    if student.startswith("mistake") and unit not in MISTAKES:
        pytest.fail(f"{unit}: no mistaken solutions in MISTAKES (see test_every_unit_has_two_mistakes)")
    points = _checks(_read(unit))
    got = graded.scores[unit, student]
    hint = f" (if the trimmed submission lacks a cell the solution needs, add its id to KEEP_CELLS[{unit!r}])"
    # (a manually graded answer, grade and solution cell at once, would be graded too: only checks are asserted)
    assert set(points) <= set(got), f"{unit}/{student}: graded cells {sorted(got)}, check cells {sorted(points)}"
    for grade_id, want in expected_scores(unit, student).items():
        score, auto_score, manual = got[grade_id]
        assert (score, auto_score, manual) == (want, want, False), (
            f"{unit}/{student}: {grade_id} scored {score} (auto {auto_score}, needs manual grading {manual}), "
            f"expected {want}{hint if want else ''}")
    nb = graded.autograded(unit, student)
    for grade_id in expected_scores(unit, student):
        result, stderr, errors = _check_output(nb, grade_id)
        assert result is not None, f"{unit}/{student}: {grade_id} shows no check result ({errors}, {stderr}){hint}"
        assert errors == [], f"{unit}/{student}: {grade_id} raised {errors}{hint}"
        if student in ("correct", "deleted"):
            assert result["status"] == "passed" and stderr == "", f"{unit}/{student}: {result}, stderr {stderr!r}"
        elif student in ("untouched", "edited"):
            assert result["status"] == "not_implemented" and "not implemented" in stderr
        elif student == "raises":
            assert result["status"] == "error" and f"{grade_id[len('check_'):]}: error" in stderr, result
        else:
            mistake = MISTAKES[unit][int(student[-1]) - 1]
            assert result["status"] == "wrong" and f"{mistake.grade_id}: wrong" in stderr, f"{result}{hint}"
            if mistake.mistake_id is not None:
                assert result["mistakes"] == [mistake.mistake_id], result


@pytest.mark.parametrize("unit", UNITS)
def test_edited_check_cell_is_put_back(graded, unit):
    original = {_meta(c)["grade_id"]: c.source for c in _read(unit).cells if _is_check(c)}
    nb = graded.autograded(unit, "edited")
    assert {_meta(c)["grade_id"]: c.source for c in nb.cells if _is_check(c)} == original
    assert f"Attribute 'checksum' for cell {next(iter(original))} has changed" in graded.logs["autograde"]


@pytest.mark.parametrize("unit", UNITS)
def test_deleted_check_cell_is_put_back_and_run(graded, unit):
    nb = graded.autograded(unit, "deleted")
    for cell in nb.cells:
        if _is_check(cell):
            assert "was missing from the submission. It was added back by nbgrader." in cell.source
    sources = [c.source for c in nb.cells if _is_check(c)]
    assert len(sources) == len(_checks(_read(unit)))
    for source, original in zip(sources, (c.source for c in _read(unit).cells if _is_check(c))):
        assert source.endswith(original)


def test_nbgrader_default_leaves_a_deleted_check_cell_for_manual_grading(graded):
    """Without add_missing_cells, nbgrader does not run a deleted check cell: no autograde score, flagged
    for manual grading, counted as 0 until an instructor grades it."""
    got = graded.scores[UNITS[0], DEFAULT_STUDENT]
    assert got and all(v == (0.0, None, True) for v in got.values()), got
    nb = graded.autograded(UNITS[0], DEFAULT_STUDENT)
    assert not [c for c in nb.cells if _is_check(c)]


def test_grades_csv_totals(graded):
    """`nbgrader export` writes grades.csv: one row per assignment and student, the total of its checks."""
    rows = {(r["assignment"], r["student_id"]): r for r in graded.csv_rows}
    for unit in UNITS:
        points = _checks(_read(unit))
        for student in STUDENTS:
            row = rows[unit, student]
            assert float(row["max_score"]) == sum(points.values())
            assert float(row["score"]) == pytest.approx(sum(v[0] for v in graded.scores[unit, student].values()))
        assert float(rows[unit, "correct"]["score"]) == sum(points.values())
        assert float(rows[unit, "untouched"]["score"]) == 0.0


@pytest.mark.parametrize("unit", UNITS)
def test_nbgrader_release_is_our_student_notebook(graded, unit):
    """generate_assignment's student version has the same cells, sources and lock flags as notebooks/."""
    theirs = nbformat.read(graded.course / "release" / unit / f"{unit}.ipynb", as_version=4)
    ours = nbformat.read(ROOT / "notebooks" / f"{unit}.ipynb", as_version=4)
    assert [c.source for c in theirs.cells] == [c.source for c in ours.cells]
    flags = [[(c.metadata.get("editable"), c.metadata.get("deletable")) for c in nb.cells] for nb in (theirs, ours)]
    assert flags[0] == flags[1]
    assert (False, False) in flags[1] and (None, False) in flags[1]
