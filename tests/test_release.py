"""Tests of course_utils.release: solutions/ -> notebooks/ (student versions)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from course_utils import release
from course_utils.release import ReleaseError, release_notebook, release_source, release_text

ROOT = Path(__file__).resolve().parent.parent


def solution_meta(grade_id="f"):
    return {"nbgrader": {"grade": False, "solution": True, "locked": False, "grade_id": grade_id,
                         "schema_version": 3}}


def grade_meta(grade_id="check_f", points=1):
    return {"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": grade_id,
                         "points": points, "schema_version": 3}}


def code(source, meta=None, cell_id=None, **kw):
    cell = new_code_cell(source, metadata=meta or {}, **kw)
    if cell_id:
        cell.id = cell_id
    return cell


def notebook(*cells, **metadata):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                **metadata})
    nb.cells.extend(cells)
    return nb


SOLVED = '''def rnn_cell(x, h):
    """One step."""
    ### BEGIN SOLUTION
    h = x + h
    return h
    ### END SOLUTION

print("defined")'''


# ------------------------------------------------------------------ one cell
def test_code_region_becomes_a_stub_at_the_markers_indentation():
    assert release_source(SOLVED) == '''def rnn_cell(x, h):
    """One step."""
    # YOUR CODE HERE
    raise NotImplementedError()

print("defined")'''


def test_several_regions_and_top_level_markers():
    source = ("### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n"
              "if b:\n\t### BEGIN SOLUTION\n\tc = 3\n\t### END SOLUTION")
    assert release_source(source) == ("# YOUR CODE HERE\nraise NotImplementedError()\nb = 2\nif b:\n"
                                      "\t# YOUR CODE HERE\n\traise NotImplementedError()")


def test_markdown_region_becomes_your_answer_here():
    source = "Why does the LSTM help?\n\n### BEGIN SOLUTION\nThe cell state adds.\n### END SOLUTION\n"
    assert release_source(source, cell_type="markdown") == "Why does the LSTM help?\n\nYOUR ANSWER HERE\n"


def test_solution_cell_without_markers_is_replaced_whole_as_nbgrader_does():
    assert release_source("x = 1\ny = 2", cell_type="code") == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert release_source("An answer.", cell_type="markdown") == "YOUR ANSWER HERE"


def test_hidden_tests_are_removed_from_grade_cells():
    source = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\nprint('ok')"
    assert release_source(source, solution=False, grade=True) == "check(f)\nprint('ok')"


def test_a_plain_cell_is_unchanged():
    assert release_source("import torch\n", solution=False) == "import torch\n"


@pytest.mark.parametrize("source, kwargs, expected", [
    ("### BEGIN SOLUTION\nx = 1", {}, "line 1: '### BEGIN SOLUTION' is never closed; expected '### END SOLUTION'"),
    ("x = 1\n### END SOLUTION", {}, "line 2: '### END SOLUTION' without a matching '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", {},
     "line 2: '### BEGIN SOLUTION' inside the region opened by '### BEGIN SOLUTION' on line 1"),
    ("### BEGIN SOLUTION\nx\n### END HIDDEN TESTS", {"grade": True},
     "line 3: '### END HIDDEN TESTS' without a matching '### BEGIN HIDDEN TESTS'"),
    ("## BEGIN SOLUTION\nx = 1\n## END SOLUTION", {},
     "line 1: expected a marker line '### BEGIN SOLUTION' alone on its line, got '## BEGIN SOLUTION'"),
    ("x = 1  ### BEGIN SOLUTION", {}, "expected a marker line '### BEGIN SOLUTION' alone on its line"),
    ("### BEGIN SOLUTION\nx\n### END SOLUTION", {"solution": False},
     "line 1: '### BEGIN SOLUTION' in a cell that is not a solution cell"),
    ("### BEGIN HIDDEN TESTS\nx\n### END HIDDEN TESTS", {"solution": False},
     "line 1: '### BEGIN HIDDEN TESTS' in a cell that is not a grade cell"),
])
def test_marker_errors_say_where_and_what(source, kwargs, expected):
    with pytest.raises(ReleaseError) as err:
        release_source(source, where="01_rnn.ipynb: cell 3", **kwargs)
    assert str(err.value).startswith("01_rnn.ipynb: cell 3, ")
    assert expected in str(err.value)


# ------------------------------------------------------------- one notebook
def solved_notebook():
    out = new_output("stream", name="stdout", text="defined\n")
    return notebook(
        new_markdown_cell("# 01 RNN"),
        code("import torch", cell_id="imports", execution_count=1,
             outputs=[new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]),
        code(SOLVED, solution_meta("rnn_cell"), cell_id="solution", execution_count=2, outputs=[out]),
        code("checks.check_rnn_cell(rnn_cell)", {**grade_meta("check_rnn_cell"), "execution": {"t": "2024"},
                                                "tags": ["keep"]}, cell_id="check", execution_count=3),
        new_markdown_cell("Explain.\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", metadata=solution_meta("why")),
        new_raw_cell("raw text"),
        widgets={"application/vnd.jupyter.widget-state+json": {"state": {"abc": {}}}},
    )


def test_release_notebook_clears_outputs_and_keeps_ids_and_metadata():
    nb = solved_notebook()
    before = nbformat.writes(nb)
    student = release_notebook(nb, "01_rnn.ipynb")
    assert nbformat.writes(nb) == before  # the solution notebook is not changed
    assert [c.id for c in student.cells] == [c.id for c in nb.cells]
    assert "widgets" not in student.metadata and student.metadata.kernelspec.name == "python3"
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        assert "execution" not in cell.metadata
    assert student.cells[2].source.splitlines()[2:4] == ["    # YOUR CODE HERE", "    raise NotImplementedError()"]
    assert student.cells[2].metadata == {**nb.cells[2].metadata, "deletable": False}  # + the lock flag
    assert student.cells[3].metadata.tags == ["keep"] and student.cells[3].metadata.nbgrader.points == 1
    assert student.cells[4].source == "Explain.\nYOUR ANSWER HERE"
    assert student.cells[5].source == "raw text"
    nbformat.validate(student)


def test_check_cells_are_locked_and_solution_cells_cannot_be_deleted():
    nb = solved_notebook()
    nb.cells[3].metadata.nbgrader.locked = False  # a check cell whose source forgot the flag
    nb.cells.append(code("SEED = 0", {"nbgrader": {"grade": False, "solution": False, "locked": True,
                                                   "grade_id": "seed", "schema_version": 3}}))
    student = release_notebook(nb, "01_rnn.ipynb")
    imports, solution, check, answer, raw, readonly = student.cells[1:]
    assert check.metadata.editable is False and check.metadata.deletable is False
    assert check.metadata.nbgrader.locked is True
    for cell in (solution, answer):  # the learner writes here: editable, but not deletable
        assert cell.metadata.deletable is False and "editable" not in cell.metadata
        assert cell.metadata.nbgrader.locked is False
    assert readonly.metadata.editable is False and readonly.metadata.deletable is False
    for cell in (student.cells[0], imports, raw):  # cells without nbgrader metadata stay as they were
        assert "editable" not in cell.metadata and "deletable" not in cell.metadata
    assert "editable" not in nb.cells[3].metadata and nb.cells[3].metadata.nbgrader.locked is False  # source kept
    nbformat.validate(student)


def test_lock_flags_are_the_ones_nbgrader_generate_assignment_writes():
    """nbgrader's own LockCells preprocessor (run by `nbgrader generate_assignment`) gives the same flags."""
    from nbgrader.preprocessors import LockCells

    nb = solved_notebook()
    nb.cells.append(code("SEED = 0", {"nbgrader": {"grade": False, "solution": False, "locked": True,
                                                   "grade_id": "seed", "schema_version": 3}}))
    ours = release_notebook(nb, "01_rnn.ipynb")
    theirs, _ = LockCells().preprocess(copy.deepcopy(nb), {})
    flags = [[{k: c.metadata.get(k) for k in ("editable", "deletable")} for c in n.cells] for n in (ours, theirs)]
    assert flags[0] == flags[1]
    assert any(f == {"editable": False, "deletable": False} for f in flags[0])


def test_release_text_is_deterministic_with_a_trailing_newline():
    text = nbformat.writes(solved_notebook())
    first, second = release_text(text, "a.ipynb"), release_text(text, "a.ipynb")
    assert first == second and first.endswith("}\n")
    assert json.loads(first)["cells"][2]["outputs"] == []


def test_cells_without_ids_get_stable_ids():
    data = json.loads(nbformat.writes(solved_notebook()))
    for cell in data["cells"]:
        del cell["id"]
    text = json.dumps(data)
    first = json.loads(release_text(text, "a.ipynb"))
    assert first == json.loads(release_text(text, "a.ipynb"))
    assert all(cell["id"] for cell in first["cells"])


def test_marker_outside_a_solution_cell_names_notebook_and_cell():
    nb = notebook(code("x = 1"), code("### BEGIN SOLUTION\ny = 2\n### END SOLUTION", grade_meta("check_y"),
                                      cell_id="bad-cell"))
    with pytest.raises(ReleaseError, match=r"^02_gradients\.ipynb: cell 1, id 'bad-cell', grade_id 'check_y', "
                                           r"line 1: '### BEGIN SOLUTION' in a cell that is not a solution cell"):
        release_notebook(nb, "02_gradients.ipynb")


def test_not_a_notebook_is_a_clear_error():
    with pytest.raises(ReleaseError, match="bad.ipynb: expected a notebook \\(JSON\\), got invalid JSON"):
        release_text("{not json", "bad.ipynb")
    with pytest.raises(ReleaseError, match="old.ipynb: expected an nbformat 4 notebook, got nbformat 3"):
        release_text(json.dumps({"nbformat": 3, "cells": [], "metadata": {}}), "old.ipynb")


# ---------------------------------------------------------------- folders and CLI
def write(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb), encoding="utf-8")


def test_check_and_regenerate(tmp_path, capsys):
    src, dst = tmp_path / "solutions", tmp_path / "notebooks"
    write(src / "01_rnn.ipynb", solved_notebook())
    write(src / "02_gradients.ipynb", notebook(code("### BEGIN SOLUTION\nx\n### END SOLUTION", solution_meta())))
    args = ["--source", str(src), "--dest", str(dst)]

    assert release.main(args + ["--check"]) == 1
    err = capsys.readouterr().err
    assert "01_rnn.ipynb: missing" in err and "02_gradients.ipynb: missing" in err

    assert release.main(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert release.main(args + ["--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    first = (dst / "01_rnn.ipynb").read_bytes()
    assert release.main(args) == 0 and (dst / "01_rnn.ipynb").read_bytes() == first  # same bytes

    changed = solved_notebook()
    changed.cells[0].source = "# 01 RNN, revised"
    write(src / "01_rnn.ipynb", changed)
    (dst / "99_old.ipynb").write_text("{}", encoding="utf-8")
    assert release.main(args + ["--check"]) == 1
    err = capsys.readouterr().err
    assert "01_rnn.ipynb: out of date" in err and "99_old.ipynb: has no source notebook" in err
    assert "02_gradients" not in err

    assert release.main(args) == 0
    assert "removed" in capsys.readouterr().out and not (dst / "99_old.ipynb").exists()
    assert release.main(args + ["--check"]) == 0


def test_broken_source_exits_2_with_the_reason(tmp_path, capsys):
    src = tmp_path / "solutions"
    write(src / "bad.ipynb", notebook(code("### BEGIN SOLUTION\nx", solution_meta())))
    assert release.main(["--source", str(src), "--dest", str(tmp_path / "nb")]) == 2
    assert "is never closed" in capsys.readouterr().err
    assert not (tmp_path / "nb").exists()


def test_same_source_and_dest_is_refused(tmp_path):
    assert release.main(["--source", str(tmp_path), "--dest", str(tmp_path)]) == 2


def test_defaults_are_relative_to_the_repository_root(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    write(tmp_path / "solutions" / "01.ipynb", solved_notebook())
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert release.find_root() == tmp_path.resolve()
    assert release.main([]) == 0 and (tmp_path / "notebooks" / "01.ipynb").is_file()
    assert release.main(["--check"]) == 0


def test_module_entry_point(tmp_path):
    """`python -m course_utils.release --check` runs and exits 1 naming the missing notebook."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    write(tmp_path / "solutions" / "01.ipynb", solved_notebook())
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    stale = subprocess.run([sys.executable, "-m", "course_utils.release", "--check"], cwd=tmp_path, env=env, check=False,
                           capture_output=True, text=True, timeout=120)
    assert stale.returncode == 1, stale.stderr
    assert "notebooks/01.ipynb: missing" in stale.stderr.replace(os.sep, "/")


def test_repository_notebooks_are_up_to_date():
    sources = sorted((ROOT / "solutions").glob("*.ipynb"))
    if not sources:
        pytest.skip("solutions/ has no notebooks yet: nothing to release")
    problems = release.check_dir(ROOT / "solutions", ROOT / "notebooks")
    assert problems == [], "run `python -m course_utils.release`:\n" + "\n".join(problems)
    assert len(sorted((ROOT / "notebooks").glob("*.ipynb"))) == len(sources) >= 1


# ------------------------------------------------------------------ details of one cell
def test_markers_may_be_indented_and_followed_by_spaces():
    source = "if x:\n    ### BEGIN SOLUTION  \n    y = 1\n    ### END SOLUTION\t\nz = 2"
    assert release_source(source) == "if x:\n    # YOUR CODE HERE\n    raise NotImplementedError()\nz = 2"


def test_a_cell_that_is_solution_and_grade_loses_both_regions():
    source = ("### BEGIN SOLUTION\ndef f(x):\n    return 2 * x\n### END SOLUTION\n"
              "### BEGIN HIDDEN TESTS\nassert f(2) == 4\n### END HIDDEN TESTS\nassert f(0) == 0\n")
    assert release_source(source, solution=True, grade=True) == ("# YOUR CODE HERE\nraise NotImplementedError()\n"
                                                                  "assert f(0) == 0\n")


def test_a_grade_cell_keeps_the_lines_around_its_hidden_tests():
    source = "a = 1\n  ### BEGIN HIDDEN TESTS\n  secret()\n  ### END HIDDEN TESTS\n\nb = 2\n"
    assert release_source(source, solution=False, grade=True) == "a = 1\n\nb = 2\n"


def test_a_garbled_end_marker_is_an_error():
    with pytest.raises(ReleaseError) as err:
        release_source("check()\n### BEGIN HIDDEN TESTS\nx\n### END HIDDEN TESTS, really", solution=False, grade=True,
                       where="nb: cell 1")
    assert str(err.value) == ("nb: cell 1, line 4: expected a marker line '### END HIDDEN TESTS' alone on its line, "
                              "got '### END HIDDEN TESTS, really'")


@pytest.mark.parametrize("source, kwargs, message", [
    ("### BEGIN HIDDEN TESTS\nassert f(1)", {"solution": False, "grade": True},
     "<cell>, line 1: '### BEGIN HIDDEN TESTS' is never closed; expected '### END HIDDEN TESTS'"),
    ("a\n### BEGIN HIDDEN TESTS\nb\n### END SOLUTION", {"solution": True, "grade": True},
     ("<cell>, line 4: '### END SOLUTION' without a matching '### BEGIN SOLUTION' before it (the open region is "
      "'### BEGIN HIDDEN TESTS' from line 2)")),
    ("### END HIDDEN TESTS", {"solution": False, "grade": True},
     "<cell>, line 1: '### END HIDDEN TESTS' without a matching '### BEGIN HIDDEN TESTS' before it"),
    ("### BEGIN HIDDEN TESTS\n### BEGIN SOLUTION", {"solution": True, "grade": True},
     ("<cell>, line 2: '### BEGIN SOLUTION' inside the region opened by '### BEGIN HIDDEN TESTS' on line 1; "
      "expected its END marker first")),
    ("### END SOLUTION", {"solution": False, "grade": True},
     ("<cell>, line 1: '### END SOLUTION' in a cell that is not a solution cell (expected nbgrader metadata "
      "solution: true)")),
    ("### END HIDDEN TESTS", {"solution": True, "grade": False},
     ("<cell>, line 1: '### END HIDDEN TESTS' in a cell that is not a grade cell (expected nbgrader metadata "
      "grade: true)")),
])
def test_marker_error_messages_in_full(source, kwargs, message):
    with pytest.raises(ReleaseError) as err:
        release_source(source, **kwargs)
    assert str(err.value) == message


# ------------------------------------------------------------------ details of one notebook
def test_errors_name_the_cell_by_index_alone_when_it_has_no_id_or_grade_id():
    nb = notebook(code("x = 1"), new_markdown_cell("### BEGIN SOLUTION"))
    del nb.cells[1]["id"]
    with pytest.raises(ReleaseError) as err:
        release_notebook(nb, "03_lstm.ipynb")
    assert str(err.value).startswith("03_lstm.ipynb: cell 1, line 1: '### BEGIN SOLUTION' in a cell that is not")


@pytest.mark.parametrize("marker, meta, kind", [
    ("SOLUTION", solution_meta(), "solution"),
    ("HIDDEN TESTS", grade_meta("f"), "grade"),
])
def test_a_marker_in_a_raw_cell_is_an_error(marker, meta, kind):
    """Raw cells are copied as they are, so a marker there would leak what it marks: refused, whatever the flags."""
    nb = notebook(new_raw_cell(f"### BEGIN {marker}\nsecret\n### END {marker}", metadata=meta))
    nb.cells[0].id = "raw"
    with pytest.raises(ReleaseError) as err:
        release_notebook(nb, "a.ipynb")
    assert str(err.value).startswith(f"a.ipynb: cell 0, id 'raw', grade_id 'f', line 1: '### BEGIN {marker}' in a "
                                     f"cell that is not a {kind} cell")


def test_nbgrader_metadata_that_is_not_a_mapping_is_ignored():
    cell = code("x = 1", {"nbgrader": "solution"})
    student = release_notebook(notebook(cell), "a.ipynb")
    assert student.cells[0].source == "x = 1"
    assert "editable" not in student.cells[0].metadata and "deletable" not in student.cells[0].metadata


def test_release_notebook_refuses_other_nbformat_versions():
    nb = notebook(code("x = 1"))
    nb.nbformat = 3
    with pytest.raises(ReleaseError) as err:
        release_notebook(nb, "old.ipynb")
    assert str(err.value) == "old.ipynb: expected an nbformat 4 notebook, got nbformat 3"


def test_stable_ids_are_short_hashes_of_notebook_and_index():
    nb = notebook(code("a = 1", cell_id="kept"), code("b = 2"), new_markdown_cell("c"))
    for cell in nb.cells[1:]:
        del cell["id"]
    student = release_notebook(nb, "01_rnn.ipynb")
    ids = [cell.id for cell in student.cells]
    assert ids[0] == "kept"
    assert ids[1:] == [hashlib.sha1(f"01_rnn.ipynb:{k}".encode()).hexdigest()[:8] for k in (1, 2)]
    assert [cell.id for cell in release_notebook(nb, "02_gradients.ipynb").cells][1:] != ids[1:]
    assert all("id" not in cell for cell in nb.cells[1:])  # the solution notebook is not changed


def test_notebooks_older_than_nbformat_4_5_get_no_ids():
    data = json.loads(nbformat.writes(notebook(code("a = 1"))))
    data["nbformat_minor"] = 4
    del data["cells"][0]["id"]
    student = json.loads(release_text(json.dumps(data), "a.ipynb"))
    assert "id" not in student["cells"][0] and student["nbformat_minor"] == 4


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "bad.ipynb: expected a notebook with a 'cells' list, got list"),
    ('{"nbformat": 4, "metadata": {}}', "bad.ipynb: expected a notebook with a 'cells' list, got dict"),
    ('{"cells": [], "metadata": {}}', "bad.ipynb: expected an nbformat 4 notebook, got nbformat None"),
    # cells of another format are refused before they are read (they have no metadata to read)
    ('{"nbformat": 3, "cells": [{"cell_type": "code", "input": "x = 1"}], "metadata": {}}',
     "bad.ipynb: expected an nbformat 4 notebook, got nbformat 3"),
])
def test_json_that_is_not_a_notebook_is_a_clear_error(text, message):
    with pytest.raises(ReleaseError) as err:
        release_text(text, "bad.ipynb")
    assert str(err.value) == message


def test_release_text_names_the_notebook_in_errors():
    text = nbformat.writes(notebook(code("### BEGIN SOLUTION", grade_meta("g"), cell_id="c")))
    with pytest.raises(ReleaseError, match=r"^04_gru\.ipynb: cell 0, id 'c', grade_id 'g', line 1: "):
        release_text(text, "04_gru.ipynb")


def test_render_ends_with_one_newline():
    text = release.render(notebook(code("x = 1")))
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert json.loads(text)["cells"][0]["source"] == ["x = 1"]


# ------------------------------------------------------------------ folders and CLI, exactly
def test_main_reports_each_file_and_a_summary(tmp_path, capsys):
    src, dst = tmp_path / "solutions", tmp_path / "notebooks"
    write(src / "01_rnn.ipynb", solved_notebook())
    write(src / "02_gradients.ipynb", notebook(code("x = 1")))
    write(src / "03_lstm.ipynb", notebook(code("y = 2")))
    release.release_dir(src, dst)
    write(src / "01_rnn.ipynb", notebook(code("z = 3")))  # stale now
    (dst / "02_gradients.ipynb").unlink()  # missing now
    (dst / "99_old.ipynb").write_text("{}", encoding="utf-8")  # extra
    args = ["--source", str(src), "--dest", str(dst)]

    assert release.main(args + ["--check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{dst / '01_rnn.ipynb'}: out of date with {src / '01_rnn.ipynb'}",
        f"{dst / '02_gradients.ipynb'}: missing (generated from {src / '02_gradients.ipynb'})",
        f"{dst / '99_old.ipynb'}: has no source notebook in {src}",
        "3 student notebook(s) out of date: run `python -m course_utils.release`",
    ]
    assert release.main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {dst / '01_rnn.ipynb'}",
        f"wrote {dst / '02_gradients.ipynb'}",
        f"removed {dst / '99_old.ipynb'} (no source notebook)",
        f"{dst}: 3 notebooks from {src}, 2 written, 1 removed",
    ]
    assert release.main(args + ["--check"]) == 0
    assert capsys.readouterr().out == f"{dst}: up to date with {src} (3 notebooks)\n"
    assert release.main(args) == 0
    assert capsys.readouterr().out == f"{dst}: 3 notebooks from {src}, 0 written, 0 removed\n"


def test_release_dir_returns_the_plan_it_carried_out(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "build" / "notebooks"  # parent folders are created too
    write(src / "a.ipynb", notebook(code("x = 1")))
    result = release.release_dir(src, dst)
    assert (result.missing, result.stale, result.extra) == (["a.ipynb"], [], [])
    assert result.expected == {"a.ipynb": (dst / "a.ipynb").read_bytes()}
    assert release.plan(src, dst) == release.Plan(expected=result.expected)


def test_an_empty_source_creates_no_destination(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    result = release.release_dir(tmp_path / "solutions", tmp_path / "notebooks")
    assert result == release.Plan() and not (tmp_path / "notebooks").exists()
    assert release.check_dir(tmp_path / "missing", tmp_path / "notebooks") == []


def test_the_same_folder_twice_is_refused_with_the_reason(tmp_path, capsys):
    src, dst = tmp_path / "a", tmp_path / "b" / ".." / "a"  # two spellings of one folder
    write(src / "x.ipynb", notebook(code("x = 1")))
    for call in (release.release_dir, release.check_dir):
        with pytest.raises(ReleaseError) as err:
            call(src, dst)
        assert str(err.value) == f"expected different source and destination folders, got {src} for both"
    assert release.main(["--source", str(src), "--dest", str(dst), "--check"]) == 2
    assert capsys.readouterr().err == (f"error: expected different source and destination folders, got {src} "
                                       f"for both\n")


def test_find_root_without_a_pyproject_is_the_start_folder(tmp_path):
    assert not any((folder / "pyproject.toml").exists() for folder in (tmp_path, *tmp_path.parents))
    assert release.find_root(tmp_path) == tmp_path.resolve()
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert release.find_root(tmp_path / "a" / "b") == tmp_path.resolve()


def test_bundle_option_hands_over_to_the_bundle(tmp_path, monkeypatch):
    from course_utils import bundle

    calls = []
    monkeypatch.setattr(bundle, "main", lambda argv: calls.append(argv) or 7)
    assert release.main(["--bundle", str(tmp_path / "out")]) == 7
    assert calls == [[str(tmp_path / "out")]]
