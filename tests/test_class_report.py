"""Tests of the class report (python -m course_utils.grading.report) on a synthetic class.

The class is built from right and mistaken functions run through the real checks: their
results are wrapped into the batch grader's JSON reports (with a grades.csv written from the
same reports) and into nbgrader-autograded notebooks (check cells whose output carries the
result under checks.MIME_TYPE). The batch grader itself is not run.
"""

from __future__ import annotations

import csv
import inspect
import json
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils import checks
from course_utils import functional as Fn
from course_utils.gradients import clip_grad_norm as reference_clip
from course_utils.grading import report as class_report

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
POINTS = {"rnn_cell": 1, "clip_grad_norm": 1, "lstm_cell": 2, "gru_cell": 1}
CHECKS = {"rnn_cell": checks.check_rnn_cell, "clip_grad_norm": checks.check_clip_grad_norm,
          "lstm_cell": checks.check_lstm_cell, "gru_cell": checks.check_gru_cell}


# ------------------------------------------------- what the learners wrote
def lin(x, w, b=None):
    return x @ w.T + (b if b is not None else 0)


#: what a learner writes for lstm_cell, with the learner's name in a comment, a docstring and an identifier
LSTM_SOURCE = '''# {learner}: my answer
def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One LSTM step, by {full}."""
    h, c = state
    {first}_gates = x @ weight_ih.T + h @ weight_hh.T  # (N, 4H)
    if bias_ih is not None:
        {first}_gates = {first}_gates + bias_ih{bias_hh}
    {order} = {first}_gates.chunk(4, dim=-1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * {out}, c
'''
LSTM_KINDS = {"right": {}, "gate_order": {"order": "f, i, g, o"}, "c_for_tanh_c": {"out": "c"},
              "missing_bias_hh": {"bias_hh": ""}}


def lstm_source(kind: str, learner: str = "some_one") -> str:
    first, last = learner.split("_")
    fields = {"order": "i, f, g, o", "out": "c.tanh()", "bias_hh": " + bias_hh", **LSTM_KINDS[kind]}
    return LSTM_SOURCE.format(learner=learner, full=f"{first.title()} {last.title()}", first=first, **fields)


def lstm(kind: str):
    namespace = {}
    exec(lstm_source(kind), namespace)  # noqa: S102  (the test's own template, the code a learner would write)
    return namespace["lstm_cell"]


def gru(swap_z=False, reset_before=False):
    def cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        x_r, x_z, x_n = lin(x, weight_ih, bias_ih).chunk(3, dim=-1)
        h_r, h_z, h_n = lin(h, weight_hh, bias_hh).chunk(3, dim=-1)
        r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
        if reset_before:
            w_hn = weight_hh.chunk(3, dim=0)[2]
            b_hn = bias_hh.chunk(3)[2] if bias_hh is not None else None
            n = (x_n + lin(r * h, w_hn, b_hn)).tanh()
        else:
            n = (x_n + r * h_n).tanh()
        return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h
    return cell


def rnn_relu(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    return torch.relu(lin(x, weight_ih, bias_ih) + lin(h, weight_hh, bias_hh))


def clip_per_tensor(grads, max_norm):
    norms = [torch.linalg.vector_norm(g) for g in grads]
    return [g * torch.clamp(max_norm / (n + 1e-6), max=1.0) for g, n in zip(grads, norms)], \
        torch.linalg.vector_norm(torch.stack(norms))


def not_implemented(*args, **kwargs):
    raise NotImplementedError


def lstm_transposed(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    return x @ weight_ih, state[1]  # raises: the shapes do not match


def lstm_doubled(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    h, c = Fn.lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh)
    return 2 * h, c  # wrong, and no named mistake explains it


ANSWERS = {
    "lstm_cell": {**{kind: lstm(kind) for kind in LSTM_KINDS}, "todo": not_implemented, "raises": lstm_transposed,
                  "unnamed": lstm_doubled},
    "gru_cell": {"right": Fn.gru_cell, "z_swapped": gru(swap_z=True), "reset_before_matmul": gru(reset_before=True)},
    "rnn_cell": {"right": Fn.rnn_cell, "relu_for_tanh": rnn_relu},
    "clip_grad_norm": {"right": reference_clip, "per_tensor_clipping": clip_per_tensor},
}

#: (exercise, what the learner did, how many learners did it); statuses the grader sets itself are kept as such
CLASS = [
    ("lstm_cell", "right", 3), ("lstm_cell", "gate_order", 4), ("lstm_cell", "c_for_tanh_c", 2),
    ("lstm_cell", "missing_bias_hh", 1), ("lstm_cell", "todo", 1), ("lstm_cell", "raises", 1),
    ("lstm_cell", "unnamed", 1), ("lstm_cell", "uses_reference", 1), ("lstm_cell", "timeout", 1),
    ("gru_cell", "right", 2), ("gru_cell", "z_swapped", 3), ("gru_cell", "reset_before_matmul", 1),
    ("gru_cell", "crashed", 1),
    ("rnn_cell", "right", 2), ("rnn_cell", "relu_for_tanh", 1),
    ("clip_grad_norm", "right", 1), ("clip_grad_norm", "per_tensor_clipping", 2),
]
GRADER_SET = {"uses_reference", "timeout", "crashed"}
FIRST = ["alice", "bruno", "chiara", "dmitri", "eun", "farah", "gustav", "hana", "ivo", "jisoo", "kwame", "lena",
         "minho", "nadia", "oskar", "priya", "quentin", "rosa", "seojun", "tariq", "uma", "viktor", "wren", "xiadani",
         "yusuf", "zofia", "amara", "bastien", "cosima", "dario", "elif", "finnegan", "greta", "hyunwoo"]
LAST = ["moreau", "kowalczyk", "haddad", "lindqvist", "okafor", "tanaka", "vasquez", "brennan"]


def learner_names():
    for k, first in enumerate(FIRST):
        yield f"{first}_{LAST[k % len(LAST)]}"


@pytest.fixture(scope="module")
def results():
    """The real checks' verdict on every kind of answer (computed once)."""
    out = {}
    for exercise, answers in ANSWERS.items():
        for kind, fn in answers.items():
            out[exercise, kind] = CHECKS[exercise](fn, max_points=POINTS[exercise], quiet=True, watch=False)
    return out


def test_the_checks_diagnose_the_synthetic_mistakes(results):
    for (exercise, kind), r in results.items():
        if kind == "right":
            assert r.status == "passed", r.message
        elif kind == "todo":
            assert r.status == "not_implemented"
        elif kind == "raises":
            assert r.status == "error"
        elif kind == "unnamed":
            assert r.status == "wrong" and r.mistakes == ()
        else:
            assert r.status == "wrong" and r.mistakes == (kind,), (kind, r.message)


# ------------------------------------------------------ grader-style reports
def grader_entry(exercise: str, kind: str, results) -> dict:
    max_points = POINTS[exercise]
    if kind in GRADER_SET:
        return {"status": kind, "points": 0, "max_points": max_points, "message": None, "mistakes": [],
                "reason": f"{kind} while `{exercise}` was checked"}
    r = results[exercise, kind]
    return {"status": r.status, "points": r.points, "max_points": max_points, "message": r.message,
            "mistakes": list(r.mistakes), "reason": None if r.passed else r.status}


def build_class(results) -> list[tuple[str, str, str, dict]]:
    """(learner, exercise, kind, grader report) for every submission of the synthetic class."""
    names = learner_names()
    out = []
    for exercise, kind, count in CLASS:
        for _ in range(count):
            learner = next(names)
            entry = grader_entry(exercise, kind, results)
            status = kind if kind in ("timeout", "crashed") else "ok"
            unit = checks.EXERCISES[exercise].unit
            report = {"submission": f"{learner}_{unit}.ipynb", "status": status,
                      "reason": "" if entry["status"] == "passed" else f"{exercise}: {entry['status']}",
                      "points": entry["points"], "max_points": entry["max_points"], "unit": unit,
                      "exercises": {exercise: entry}, "cells": [], "notes": [], "sha256": "0" * 64}
            out.append((learner, exercise, kind, report))
    for learner, status in zip(names, ("invalid", "no_exercises")):  # no exercise: not a notebook, an empty one
        out.append((learner, None, status, {"submission": f"{learner}.ipynb", "status": status,
                                            "reason": f"{status}: {learner}.ipynb", "points": 0, "max_points": 0,
                                            "unit": None, "exercises": {}, "cells": [], "notes": []}))
    return out


CSV_COLUMNS = ["submission", *checks.EXERCISES, "total", "max", "status", "reason"]


def number(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def write_submissions(folder: Path, klass) -> None:
    """The submitted notebooks, under the file names the reports give (the batch grader's input)."""
    folder.mkdir()
    for learner, exercise, kind, report in klass:
        cells = [solution_cell(exercise, kind, learner)] if exercise else []
        (folder / report["submission"]).write_text(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))


def write_grader_folder(folder: Path, klass) -> None:
    folder.mkdir()
    for _, _, _, report in klass:
        (folder / f"{Path(report['submission']).stem}.json").write_text(json.dumps(report, indent=2))
    with open(folder / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for _, _, _, r in sorted(klass, key=lambda k: k[3]["submission"]):
            ex = r["exercises"]
            writer.writerow([r["submission"], *(number(ex[n]["points"]) if n in ex else "" for n in checks.EXERCISES),
                             number(r["points"]), number(r["max_points"]), r["status"], r["reason"]])


@pytest.fixture(scope="module")
def klass(results):
    return build_class(results)


@pytest.fixture(scope="module")
def grader_run(klass, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grader")
    write_grader_folder(tmp / "reports", klass)
    write_submissions(tmp / "submitted", klass)
    assert class_report.main([str(tmp / "reports"), "--out", str(tmp / "out"), "--lessons", str(LESSONS),
                              "--submissions", str(tmp / "submitted")]) == 0
    return tmp


def load(out: Path) -> dict:
    return json.loads((out / "class_report.json").read_text())


def exercise_of(data: dict, exercise: str) -> dict:
    return next(ex for unit in data["units"] for ex in unit["exercises"] if ex["exercise"] == exercise)


def expected_counts(exercise: str) -> Counter:
    return Counter({kind: count for ex, kind, count in CLASS if ex == exercise})


def test_counts_and_ranking_from_grader_reports(grader_run):
    data = load(grader_run / "out")
    assert data["source"] == "grader"
    assert data["submissions"] == sum(c for _, _, c in CLASS) + 2
    lstm_ex = exercise_of(data, "lstm_cell")
    assert lstm_ex["unit"] == "03_lstm" and lstm_ex["submissions"] == 15 and lstm_ex["passed"] == 3
    assert [(m["id"], m["count"]) for m in lstm_ex["mistakes"]] == [("gate_order", 4), ("c_for_tanh_c", 2),
                                                                    ("missing_bias_hh", 1)]
    assert lstm_ex["mistakes"][0]["share"] == pytest.approx(4 / 15)
    assert lstm_ex["statuses"] == {"wrong": 8, "passed": 3, "not_implemented": 1, "error": 1, "uses_reference": 1,
                                   "timeout": 1}
    assert lstm_ex["unnamed_wrong"] == 1 and lstm_ex["errors"] == {"RuntimeError": 1}
    assert lstm_ex["scores"] == {"0": 12, "2": 3} and lstm_ex["max_points"] == 2
    gru_ex = exercise_of(data, "gru_cell")
    assert [(m["id"], m["count"]) for m in gru_ex["mistakes"]] == [("z_swapped", 3), ("reset_before_matmul", 1)]
    assert exercise_of(data, "clip_grad_norm")["mistakes"][0]["id"] == "per_tensor_clipping"
    # the units in the course's order, each with its submissions
    assert [(u["unit"], u["submissions"]) for u in data["units"]] == [
        ("01_rnn", 3), ("02_gradients_through_time", 3), ("03_lstm", 15), ("04_gru", 7)]
    # statuses that are not about the exercises
    assert data["statuses"] == {"ok": 26, "timeout": 1, "crashed": 1, "invalid": 1, "no_exercises": 1}
    assert data["other_statuses"] == {"uses_reference": 1, "timeout": 1, "crashed": 1}
    # the check's message for a mistake, from the learners' diagnoses
    assert lstm_ex["mistakes"][1]["description"].startswith("`c` instead of `tanh(c)` in the output")


def test_revisit_list_follows_the_counts(grader_run):
    data = load(grader_run / "out")
    items = data["revisit"]
    named = [(r["exercise"], r["mistake"]) for r in items if r["mistake"]]
    # a mistake of >= 10% of an exercise's submissions, and of >= 2 of them, ranked by share
    assert named == [("clip_grad_norm", "per_tensor_clipping"), ("gru_cell", "z_swapped"),
                     ("lstm_cell", "gate_order"), ("lstm_cell", "c_for_tanh_c")]
    # exercises that fewer than half passed; rnn_cell (2 of 3) is not one of them
    assert {r["exercise"] for r in items if not r["mistake"]} == {"lstm_cell", "gru_cell", "clip_grad_norm"}
    # the named mistakes come first, each group by share
    assert [r["mistake"] is None for r in items] == [False] * 4 + [True] * 3
    for group in (items[:4], items[4:]):
        shares = [r["share"] for r in group]
        assert shares == sorted(shares, reverse=True)
    gate = next(r for r in items if r["mistake"] == "gate_order")
    assert "27% of the submissions (4 of 15)" in gate["text"]
    langs = {link["lang"] for link in gate["lessons"]}
    assert langs == {"en", "ko"}


def test_numbers_match_grades_csv(grader_run):
    """Submissions, passes and mean points per exercise, and totals per unit, recomputed from grades.csv."""
    data = load(grader_run / "out")
    with open(grader_run / "reports" / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    page = (grader_run / "out" / "class_report.html").read_text()
    for exercise, max_points in POINTS.items():
        points = [float(r[exercise]) for r in rows if r[exercise] != ""]
        ex = exercise_of(data, exercise)
        assert ex["submissions"] == len(points)
        assert ex["passed"] == sum(p == max_points for p in points)
        assert ex["mean_points"] == pytest.approx(sum(points) / len(points))
        assert Counter(ex["scores"]) == Counter({number(p): n for p, n in Counter(points).items()})
        row = (f"<tr><td class='n'>{ex['submissions']}</td><td class='n'>{ex['passed']}</td>"
               f"<td class='n'>{round(100 * ex['passed'] / len(points))}%</td>")
        assert row in page, exercise
    assert data["submissions"] == len(rows)
    assert Counter(r["status"] for r in rows) == Counter(data["statuses"])
    totals = {u["unit"]: u["mean_points"] * u["submissions"] for u in data["units"]}
    for unit, total in totals.items():
        in_csv = sum(float(r["total"]) for r in rows
                     if any(r[g] != "" for g, e in checks.EXERCISES.items() if e.unit == unit))
        assert total == pytest.approx(in_csv), unit
    assert data["csv_disagreements"] == 0
    assert "The numbers agree with grades.csv" in page


def test_a_stale_grades_csv_is_reported(klass, tmp_path, capsys):
    write_grader_folder(tmp_path / "reports", klass)
    grades = tmp_path / "reports" / "grades.csv"
    with open(grades, newline="") as f:
        rows = list(csv.reader(f))
    victim = next(r for r in rows[1:] if r[CSV_COLUMNS.index("lstm_cell")] == "0")
    victim[CSV_COLUMNS.index("lstm_cell")] = "2"  # a row that says passed where the report says wrong
    with open(grades, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    subs = class_report.read_grader_reports(tmp_path / "reports")
    problems = class_report.compare_with_csv(subs, grades)
    assert problems == [f"{victim[0]}: lstm_cell is '2' in grades.csv, 0.0 in the report"]
    assert class_report.main([str(tmp_path / "reports"), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert victim[0] in err  # the instructor sees which row on the terminal ...
    page = (tmp_path / "out" / "class_report.html").read_text()
    assert "disagrees with the reports in 1 place" in page and victim[0] not in page  # ... never on the page


# ------------------------------------------------------------ anonymity, offline
def identities(klass) -> set[str]:
    out = set()
    for learner, _, _, report in klass:
        out |= {learner, report["submission"], Path(report["submission"]).stem, *learner.split("_")}
    return out


def all_outputs(out: Path) -> str:
    """Every text the report wrote, without the embedded images (base64 holds any short string by chance)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.glob("class_report.*")))
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,...", text)


def named(name: str, text: str) -> bool:
    """Whether ``name`` occurs in ``text`` as a word or part of a file name (case-insensitive)."""
    return re.search(rf"(?<![a-z]){re.escape(name.lower())}(?![a-z])", text.lower()) is not None


def test_no_learner_is_named_anywhere(grader_run, klass):
    text = all_outputs(grader_run / "out").lower()
    data = load(grader_run / "out")
    examples = [m["example"] for u in data["units"] for ex in u["exercises"] for m in ex["mistakes"]]
    assert len(examples) == 7 and all(examples)
    for name in identities(klass):
        assert not named(name, text), name
    assert ".ipynb" not in text


def test_examples_are_scrubbed_of_names_and_paths(results, tmp_path):
    """A diagnosis that mentions the learner's name, file or folder is shown without them."""
    r = results["gru_cell", "reset_before_matmul"]
    report = {"submission": "Minji Kim - GRU final.ipynb", "status": "ok", "reason": "", "points": 0,
              "max_points": 1, "unit": "04_gru", "exercises": {"gru_cell": {
                  "status": "wrong", "points": 0, "max_points": 1, "mistakes": list(r.mistakes), "reason": "wrong",
                  "message": r.message + "\n(seen in /home/minji.kim/course/Minji Kim - GRU final.ipynb, "
                                         "cell of MINJI KIM - GRU FINAL)"}}}
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "minji.json").write_text(json.dumps(report))
    assert class_report.main([str(folder), "--out", str(tmp_path / "out")]) == 0
    example = exercise_of(load(tmp_path / "out"), "gru_cell")["mistakes"][0]["example"]
    assert example.startswith(r.message) and "[path]" in example and "[learner]" in example
    text = all_outputs(tmp_path / "out").lower()
    for part in ("minji", "kim", "gru final", "/home"):
        assert not named(part, text), part


@pytest.mark.parametrize("run", ["grader_run", "nbgrader_run"])
def test_code_examples_show_the_mistake_without_the_learner(run, klass, request):
    out = request.getfixturevalue(run) / "out"
    lstm_ex = exercise_of(load(out), "lstm_cell")
    codes = {m["id"]: m["code_example"] for m in lstm_ex["mistakes"]}
    assert "f, i, g, o = learner_gates.chunk(4, dim=-1)" in codes["gate_order"]
    assert "return (o.sigmoid() * c, c)" in codes["c_for_tanh_c"]
    assert "learner_gates = learner_gates + bias_ih\n" in codes["missing_bias_hh"] + "\n"
    for code in codes.values():
        assert code.startswith("def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):")
        assert "#" not in code and '"""' not in code and "One LSTM step" not in code
    page = (out / "class_report.html").read_text()
    assert "f, i, g, o = learner_gates.chunk(4, dim=-1)" in page
    text = all_outputs(out)
    for name in identities(klass):
        assert not named(name, text), name


def test_the_page_opens_offline(grader_run):
    page = (grader_run / "out" / "class_report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page, re.IGNORECASE)
    assert not re.search(r"@import|url\(", page)
    sources = re.findall(r"""\bsrc=["']([^"']*)""", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert len(sources) == 4 + 4  # one histogram per unit and per exercise
    md = (grader_run / "out" / "class_report.md").read_text()
    assert not re.search(r"https?://", md)
    for figure in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (grader_run / "out" / figure).is_file(), figure


def test_lesson_links_resolve_to_headings(grader_run):
    """Every link on the page reaches a lesson file that has a heading with that anchor."""
    page = (grader_run / "out" / "class_report.html").read_text()
    hrefs = set(re.findall(r"""<a href="([^"]+)"[ >]""", page))
    assert any("/en/" in h for h in hrefs) and any("/ko/" in h for h in hrefs)
    for href in hrefs:
        file, anchor = href.split("#")
        target = (grader_run / "out" / file).resolve()
        assert target.is_file(), href
        assert anchor in {class_report.heading_slug(h) for h in headings(target)}, href


# ----------------------------------------------------------- lesson sections
def headings(path: Path) -> list[str]:
    """Markdown headings outside fenced code (written here again, not taken from the module under test)."""
    out, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#+ (.+)$", line)):
            out.append(m.group(1).strip())
    return out


@pytest.mark.parametrize("key", sorted(class_report.SECTIONS))
def test_every_linked_heading_exists(key):
    for lang, (file, heading) in class_report.SECTIONS[key].items():
        assert file.startswith(f"{lang}/")
        found = headings(LESSONS / file)
        assert heading in found, f"{file} has no heading {heading!r}"
        slugs = [class_report.heading_slug(h) for h in found]
        assert slugs.count(class_report.heading_slug(heading)) == 1, f"the anchor of {heading!r} is ambiguous"
    assert class_report.missing_lesson_sections(LESSONS) == []


def test_every_mistake_the_checks_name_has_a_lesson():
    """All stable ids in the checks' source are mapped to a section (a new mistake needs a row)."""
    for grade_id, exercise in checks.EXERCISES.items():
        source = inspect.getsource(inspect.getmodule(inspect.unwrap(exercise.check)))
        for mistake in set(re.findall(r"\bid=\"(\w+)\"", source)):
            assert (grade_id, mistake) in class_report.MISTAKE_SECTIONS, (grade_id, mistake)
        assert grade_id in class_report.EXERCISE_SECTIONS
    for (grade_id, _), keys in class_report.MISTAKE_SECTIONS.items():
        assert grade_id in checks.EXERCISES and all(k in class_report.SECTIONS for k in keys)


def test_heading_slug():
    assert class_report.heading_slug("2. The equations (PyTorch's convention)") == "2-the-equations-pytorchs-convention"
    assert class_report.heading_slug("Exercise: `lstm_cell`") == "exercise-lstm_cell"
    assert class_report.heading_slug("2. 네 게이트와 셀 갱신") == "2-네-게이트와-셀-갱신"


# ------------------------------------------------------------------ nbgrader
def check_cell(exercise: str, result, *, error: str | None = None):
    cell = nbformat.v4.new_code_cell(f"checks.check_{exercise}({exercise})")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": f"check_{exercise}",
                                 "points": POINTS[exercise], "schema_version": 3}
    if error:
        cell.outputs = [nbformat.v4.new_output("error", ename=error, evalue="name 'lstm_cell' is not defined",
                                               traceback=[])]
    elif result is not None:
        cell.outputs = [nbformat.v4.new_output("display_data", data=result._repr_mimebundle_())]
        if not result.passed:
            cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=f"{exercise}: failed\n"))
    return cell


def solution_source(exercise: str, kind: str, learner: str) -> str:
    if exercise == "lstm_cell" and kind in LSTM_KINDS:
        return lstm_source(kind, learner)
    return f"# {learner} wrote this\ndef {exercise}(*args):\n    raise NotImplementedError()"


def solution_cell(exercise: str, kind: str, learner: str):
    cell = nbformat.v4.new_code_cell(solution_source(exercise, kind, learner))
    cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False, "grade_id": exercise,
                                 "schema_version": 3}
    return cell


NBGRADER_AS = {"uses_reference": ("result", "right"), "timeout": ("no output", None), "crashed": ("error", None)}


def write_nbgrader_course(course: Path, klass, results) -> None:
    """The synthetic class as nbgrader's autograded notebooks: what nbgrader can tell is kept (it does not
    detect the reference; a timeout leaves the check cell without output; a crash before the function
    was defined leaves a NameError)."""
    for learner, exercise, kind, report in klass:
        folder = course / "autograded" / learner / (report["unit"] or "03_lstm")
        folder.mkdir(parents=True)
        path = folder / f"{report['unit'] or '03_lstm'}.ipynb"
        if exercise is None:
            path.write_text("{ this is not a notebook" if kind == "invalid" else
                            nbformat.writes(nbformat.v4.new_notebook()))
            continue
        how, as_kind = NBGRADER_AS.get(kind, ("result", kind))
        cell = check_cell(exercise, results[exercise, as_kind] if how == "result" else None,
                          error="NameError" if how == "error" else None)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {learner}"),
                                             solution_cell(exercise, kind, learner), cell])
        nbformat.write(nb, path)


@pytest.fixture(scope="module")
def nbgrader_run(klass, results, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nbgrader")
    write_nbgrader_course(tmp / "course", klass, results)
    assert class_report.main([str(tmp / "course"), "--out", str(tmp / "out"), "--lessons", str(LESSONS)]) == 0
    return tmp


def test_nbgrader_course_gives_the_same_mistakes(nbgrader_run, grader_run, klass):
    nb, gr = load(nbgrader_run / "out"), load(grader_run / "out")
    assert nb["source"] == "nbgrader" and nb["submissions"] == gr["submissions"]
    for exercise in POINTS:
        a, b = exercise_of(nb, exercise), exercise_of(gr, exercise)
        assert [(m["id"], m["count"], m["description"]) for m in a["mistakes"]] == \
               [(m["id"], m["count"], m["description"]) for m in b["mistakes"]]
        assert a["submissions"] == b["submissions"] and a["max_points"] == b["max_points"]
    lstm_ex = exercise_of(nb, "lstm_cell")
    # nbgrader cannot tell the reference apart: that learner passes; the timeout leaves the cell without output
    assert lstm_ex["passed"] == 4 and lstm_ex["statuses"]["not_run"] == 1
    assert lstm_ex["scores"] == {"0": 11, "2": 4}
    assert exercise_of(nb, "gru_cell")["statuses"]["missing"] == 1
    assert nb["statuses"]["invalid"] == 1 and nb["statuses"]["no_exercises"] == 1
    assert nb["other_statuses"] == {"not_run": 1}
    text = all_outputs(nbgrader_run / "out").lower()
    for name in identities(klass):
        assert not named(name, text), name
    assert not re.search(r"https?://", (nbgrader_run / "out" / "class_report.html").read_text())


@pytest.mark.slow  # importing nbgrader takes most of it (its package imports the Jupyter server extensions)
@pytest.mark.filterwarnings("ignore:Object of type .* not in session")  # nbgrader's own add_submission
def test_nbgrader_gradebook_scores_are_used(klass, results, tmp_path):
    """With gradebook.db, the points are nbgrader's (a manual grade included); the database is not written."""
    gradebook = pytest.importorskip("nbgrader.api")
    course = tmp_path / "course"
    right = [k for k in klass if k[1] == "lstm_cell" and k[2] == "right"]
    wrong = [k for k in klass if k[1] == "lstm_cell" and k[2] == "gate_order"]
    small = right[:2] + wrong[:1]
    write_nbgrader_course(course, small, results)
    db = course / "gradebook.db"
    with gradebook.Gradebook(f"sqlite:///{db}") as gb:
        gb.add_assignment("03_lstm")
        gb.add_notebook("03_lstm", "03_lstm")
        gb.add_grade_cell("check_lstm_cell", "03_lstm", "03_lstm", max_score=2, cell_type="code")
        for learner, _, kind, _ in small:
            first, last = learner.split("_")
            gb.add_student(learner, first_name=first.title(), last_name=last.title(), email=f"{first}@uni.example")
            gb.add_submission("03_lstm", learner)
            grade = gb.find_grade("check_lstm_cell", "03_lstm", "03_lstm", learner)
            grade.auto_score = 2 if kind == "right" else 0
        grade.manual_score = 1.5  # the instructor gave partial credit to the last one (gate_order)
        gb.db.commit()
    before = db.read_bytes()
    assert class_report.main([str(course), "--out", str(tmp_path / "out")]) == 0
    assert db.read_bytes() == before
    ex = exercise_of(load(tmp_path / "out"), "lstm_cell")
    assert ex["scores"] == {"1.5": 1, "2": 2} and ex["mean_points"] == pytest.approx(5.5 / 3)
    assert ex["passed"] == 2 and [m["id"] for m in ex["mistakes"]] == ["gate_order"]
    assert class_report.main([str(course), "--out", str(tmp_path / "nb"), "--no-gradebook"]) == 0
    assert exercise_of(load(tmp_path / "nb"), "lstm_cell")["scores"] == {"0": 1, "2": 2}
    text = all_outputs(tmp_path / "out").lower()
    for learner, _, _, _ in small:
        for part in (*learner.split("_"), f"{learner.split('_')[0]}@uni.example"):
            assert not named(part, text), part


# ---------------------------------------------------------------- the command
def test_bad_source_is_refused(tmp_path, capsys):
    assert class_report.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "no such path" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert class_report.main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 1
    assert "found neither" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_class_that_got_everything_right(results, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    for k, exercise in enumerate(["rnn_cell", "lstm_cell", "lstm_cell"]):
        r = results[exercise, "right"]
        report = {"submission": f"s{k}.ipynb", "status": "ok", "reason": "", "points": r.points,
                  "max_points": r.max_points, "unit": checks.EXERCISES[exercise].unit,
                  "exercises": {exercise: {**r.to_dict(), "reason": None}}}
        (folder / f"s{k}.json").write_text(json.dumps(report))
    assert class_report.main([str(folder), "--out", str(tmp_path / "out")]) == 0
    data = load(tmp_path / "out")
    assert data["revisit"] == [] and data["other_statuses"] == {}
    assert [(u["unit"], u["complete"]) for u in data["units"]] == [("01_rnn", 1), ("03_lstm", 2)]
    assert "Nothing stands out" in (tmp_path / "out" / "class_report.html").read_text()


@pytest.mark.parametrize("guide, heading", [
    ("instructor_guide.md", "8. What did my class get wrong?"),
    ("ko/instructor_guide.md", "6. 우리 반은 무엇을 틀렸나? (What did my class get wrong?)"),
])
def test_instructor_guide_shows_the_report(guide, heading):
    """The guide's section shows the command for both grading routes and the files it writes."""
    found = headings(LESSONS / guide)
    assert heading in found
    text = (LESSONS / guide).read_text(encoding="utf-8")
    section = text[text.index(heading):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    commands = re.findall(r"^python -m course_utils\.grading\.report (.+)$", section, re.MULTILINE)
    assert len(commands) == 2 and "nbgrader" in commands[1]
    parser = class_report.parser()
    for command in commands:
        args = parser.parse_args(command.split())  # options the command really has
        assert args.out == "class-report"
    for needed in ("class_report.html", "class_report.md", "grades.csv", "gradebook.db", "--no-gradebook",
                   "--submissions"):
        assert needed in section, needed


def test_reports_without_unit_or_mistake_ids_and_stray_files(results, tmp_path):
    """A report of an older grader (no "unit", no "mistakes") still counts; other JSON files are skipped."""
    folder = tmp_path / "reports"
    folder.mkdir()
    r = results["gru_cell", "z_swapped"]
    old = {"submission": "a.ipynb", "status": "ok", "reason": "gru_cell: wrong", "points": 0, "max_points": 1,
           "exercises": {"gru_cell": {"status": "wrong", "points": 0, "max_points": 1, "message": r.message,
                                      "reason": "wrong", "printed": "hello"}}, "grader": {"version": 1}}
    (folder / "a.json").write_text(json.dumps(old))
    (folder / "class_report.json").write_text(json.dumps({"source": "grader", "units": []}))  # a previous report
    (folder / "broken.json").write_text("{ not json")
    (folder / "list.json").write_text("[1, 2]")
    subs = class_report.read_grader_reports(folder)
    assert [(s.key, s.unit) for s in subs] == [("a.ipynb", "04_gru")]
    report = class_report.summarise("grader", subs)
    ex = report.units[0].exercises[0]
    assert (ex.exercise, ex.submissions, ex.mistakes, ex.unnamed_wrong) == ("gru_cell", 1, [], 1)


def test_lessons_url_links_elsewhere(results, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    r = results["lstm_cell", "gate_order"]
    for k in range(2):
        report = {"submission": f"s{k}.ipynb", "status": "ok", "reason": "", "points": 0, "max_points": 2,
                  "unit": "03_lstm", "exercises": {"lstm_cell": {**r.to_dict(), "reason": "wrong"}}}
        (folder / f"s{k}.json").write_text(json.dumps(report))
    assert class_report.main([str(folder), "--out", str(tmp_path / "out"), "--lessons-url", "/course/lessons/"]) == 0
    page = (tmp_path / "out" / "class_report.html").read_text()
    assert '<a href="/course/lessons/en/03_lstm.md#2-the-equations"' in page
    assert '<a href="/course/lessons/ko/03_lstm.md#코드에서는"' in page


def test_an_exercise_most_did_not_reach(results, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    kinds = ["todo", "todo", "todo", "right"]
    for k, kind in enumerate(kinds):
        r = results["lstm_cell", kind]
        report = {"submission": f"s{k}.ipynb", "status": "ok", "reason": "", "points": r.points,
                  "max_points": r.max_points, "unit": "03_lstm", "exercises": {"lstm_cell": r.to_dict()}}
        (folder / f"s{k}.json").write_text(json.dumps(report))
    report = class_report.summarise("grader", class_report.read_grader_reports(folder))
    [item] = report.revisit
    assert item.mistake is None and item.count == 3 and item.share == pytest.approx(0.75)
    assert item.text == ("lstm_cell: only 25% passed (1 of 4; 3 not implemented) — most did not get to it: "
                         "leave time for it in the lab")
