"""Reading a notebook for calls of the reference (course_utils.checks.static), the same in a notebook and the grader."""

from __future__ import annotations

import threading

import pytest
import torch

from course_utils import checks
from course_utils.checks.registry import CELL_REFERENCES
from course_utils.checks.static import Finding, reference_use

IMPORTS = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\nfrom course_utils import functional as ref\n"
OWN = ("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
       "    return torch.tanh(F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh))\n")


def found(*cells, function="rnn_cell", forbidden=CELL_REFERENCES):
    return [f.what for f in reference_use(list(cells), function, forbidden)]


def test_an_own_implementation_is_clean():
    assert found(IMPORTS, OWN) == []


@pytest.mark.parametrize("body, what", [
    ("return ref.rnn_cell(x, h, weight_ih, weight_hh)", "course_utils.functional.rnn_cell"),
    ("import course_utils.functional as f\n    return f.rnn_cell(x, h, weight_ih, weight_hh)",
     "course_utils.functional.rnn_cell"),
    ("return nn.RNNCell(3, 4)(x, h)", "torch.nn.RNNCell"),
    ("return torch.rnn_tanh_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)", "torch.rnn_tanh_cell"),
    ("return torch._VF.rnn_tanh_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)", "torch._VF.rnn_tanh_cell"),
    ("return torch.ops.aten.rnn_tanh_cell(x, h, weight_ih, weight_hh)", "torch.ops.aten.rnn_tanh_cell"),
    ("return getattr(torch, 'rnn_tanh_cell')(x, h, weight_ih, weight_hh)", "torch.rnn_tanh_cell"),
    ("return getattr(torch, 'rnn_' + 'tanh_cell')(x, h, weight_ih, weight_hh)", "getattr()"),
    ("return eval('ref.rnn_cell')(x, h, weight_ih, weight_hh)", "eval()"),
    ("return __import__('course_utils').functional.rnn_cell(x, h, weight_ih, weight_hh)", "__import__()"),
    ("import sys\n    return sys.modules['course_utils.functional'].rnn_cell(x, h, weight_ih, weight_hh)", "sys"),
    ("return open('/tmp/answer.txt').read()", "open()"),
    ("return globals()['ref'].rnn_cell(x, h, weight_ih, weight_hh)", "globals()"),
    ("return torch.tanh.__globals__['x']", "__globals__"),
])
def test_the_reference_and_dynamic_access_are_found(body, what):
    cell = ("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
            f"    {body}\n")
    assert what in found(IMPORTS, cell)


def test_a_helper_of_the_notebook_is_followed_and_an_alias_is_found():
    helper = "def step(*args):\n    return ref.rnn_cell(*args)\n"
    cell = "def rnn_cell(*args, **kwargs):\n    return step(*args)\n"
    assert found(IMPORTS, helper, cell) == ["course_utils.functional.rnn_cell"]
    assert found(IMPORTS, "rnn_cell = ref.rnn_cell") == ["course_utils.functional.rnn_cell"]
    assert found(IMPORTS, "cell = nn.RNNCell\n" + OWN.replace("return", "cell\n    return")) == ["torch.nn.RNNCell"]
    # a default argument is part of the definition
    assert found(IMPORTS, "def rnn_cell(x, h, w1, w2, b1=None, b2=None, n='tanh', f=ref.rnn_cell):\n"
                          "    return f(x, h, w1, w2, b1, b2)\n") == ["course_utils.functional.rnn_cell"]


def test_a_name_the_notebook_defines_itself_shadows_an_import():
    lstm = ("from course_utils.functional import lstm_cell\n\n"
            "def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n    return state\n\n"
            "def lstm_forward(x, state):\n    for x_t in x:\n        state = lstm_cell(x_t, state, 1, 2)\n"
            "    return state\n")
    assert found(IMPORTS, lstm, function="lstm_forward") == []


def test_demo_cells_that_use_the_reference_do_not_count():
    assert found(IMPORTS, OWN, "h = ref.rnn_cell(x, h, w_ih, w_hh)  # a later demo cell") == []


def test_magics_and_unparsable_cells_are_tolerated():
    assert found("%matplotlib inline\n!pip list", IMPORTS, "def broken(:\n", OWN) == []


def test_the_last_definition_is_judged_unless_the_defining_cell_is_named():
    cheat = "def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n    return ref.rnn_cell(x, h)\n"
    cells = [IMPORTS, cheat, OWN]
    assert reference_use(cells, "rnn_cell", CELL_REFERENCES) == []
    assert reference_use(cells, "rnn_cell", CELL_REFERENCES, defining_cell=1) == [
        Finding("course_utils.functional.rnn_cell", "the reference", 1, 2)]
    assert reference_use(cells, "rnn_cell", CELL_REFERENCES, defining_cell=0) == []  # no definition there: the last
    assert reference_use([IMPORTS, OWN, cheat], "rnn_cell", CELL_REFERENCES) == [
        Finding("course_utils.functional.rnn_cell", "the reference", 2, 2)]


def test_an_earlier_definition_captured_by_the_last_one_is_followed():
    cheat = "def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n    return ref.rnn_cell(x, h)\n"
    wrapper = "def rnn_cell(x, h, w1, w2, b1=None, b2=None, f=rnn_cell):\n    return f(x, h, w1, w2, b1, b2)\n"
    assert reference_use([IMPORTS, cheat, wrapper], "rnn_cell", CELL_REFERENCES) == [
        Finding("course_utils.functional.rnn_cell", "the reference", 1, 2)]


def test_a_finding_names_what_why_and_where():
    assert reference_use([IMPORTS, OWN + "\ndef helper():\n    return open('x')\n",
                          "def rnn_cell(x, *args):\n    y = helper()\n    return torch.rnn_tanh_cell(x, *args)\n"],
                         "rnn_cell", CELL_REFERENCES) == [
        Finding("open()", "reads a file", 1, 5), Finding("torch.rnn_tanh_cell", "the reference", 2, 3)]
    assert Finding("open()", "reads a file", 1, 5).text() == "`open()` (reads a file), line 5 of cell 2"


def test_a_forbidden_name_in_a_string_and_a_risky_module_of_the_notebook_are_found():
    cell = "def rnn_cell(x, *args):\n    f = 'course_utils.functional.rnn_cell'\n    return sys.modules[f]\n"
    assert reference_use([IMPORTS + "import sys\n", cell], "rnn_cell", CELL_REFERENCES) == [
        Finding("course_utils.functional.rnn_cell", "the reference, named in a string", 1, 2),
        Finding("sys", "reaches the interpreter (sys.modules, frames)", 1, 3)]


def test_an_import_of_the_reference_and_its_use_are_each_found_where_they_are():
    cell = ("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n"
            "    import course_utils.functional as f\n    return f.rnn_cell(x, h, weight_ih, weight_hh)\n")
    assert reference_use([IMPORTS, cell], "rnn_cell", CELL_REFERENCES) == [
        Finding("course_utils.functional", "the reference", 1, 2),
        Finding("course_utils.functional.rnn_cell", "the reference", 1, 3)]


def test_local_variables_named_like_risky_modules_are_clean():
    body = "code, io, gc = x, h, 2\n    return torch.tanh(code @ weight_ih.T + io @ weight_hh.T) * gc"
    cell = ("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
            f"    {body}\n")
    assert found(IMPORTS, cell) == []


def test_a_cell_that_starts_with_a_magic_is_still_read():
    cell = ("%%time\ndef rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):\n"
            "    %time y = 1\n    return ref.rnn_cell(x, h, weight_ih, weight_hh)\n")
    assert reference_use([IMPORTS, cell], "rnn_cell", CELL_REFERENCES) == [
        Finding("course_utils.functional.rnn_cell", "the reference", 1, 4)]


def test_helpers_that_call_each_other_are_read_once():
    helpers = ("def even(n):\n    return n == 0 or odd(n - 1)\n\n"
               "def odd(n):\n    return n != 0 and even(n - 1) and ref.rnn_cell\n")
    cell = "def rnn_cell(x, *args):\n    return x if even(4) else odd(3)\n"
    done = []  # read in a thread: a reading that follows the helpers round and round must fail, not hang
    reading = threading.Thread(target=lambda: done.append(reference_use([IMPORTS, helpers, cell], "rnn_cell",
                                                                        CELL_REFERENCES)), daemon=True)
    reading.start()
    reading.join(timeout=10)
    assert done == [[Finding("course_utils.functional.rnn_cell", "the reference", 1, 5)]]


def test_findings_are_values():
    finding = Finding("open()", "reads a file", 1, 5)
    assert {finding, Finding("open()", "reads a file", 1, 5)} == {finding}
    with pytest.raises(AttributeError):
        finding.line = 6


def test_a_risky_module_imported_inside_the_function_is_found_even_unused():
    cell = OWN.replace("    return", "    import os, math\n    from subprocess import run\n    return")
    assert reference_use([IMPORTS, cell], "rnn_cell", CELL_REFERENCES) == [
        Finding("os", "reaches the operating system", 1, 2), Finding("subprocess.run", "starts processes", 1, 3)]


@pytest.mark.parametrize("body", [
    "import math\n    return torch.tanh(x @ weight_ih.T + h @ weight_hh.T) * math.pi",
    "import torch.nn.functional as G\n    return torch.tanh(G.linear(x, weight_ih) + G.linear(h, weight_hh))",
    "return torch.tanh(getattr(x, 'matmul')(weight_ih.T) + h @ weight_hh.T)",
    "return torch.tanh(x @ weight_ih.T + h @ weight_hh.T) if hasattr(x, 'shape') else None",
])
def test_ordinary_imports_and_constant_attribute_names_are_clean(body):
    cell = ("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
            f"    {body}\n")
    assert found(IMPORTS, cell) == []


def test_the_notebook_check_gives_the_graders_verdict(tmp_path):
    """In a notebook the same reading runs: the reference under the exercise's name is refused there too."""
    import importlib.util
    module = tmp_path / "learner.py"
    module.write_text(IMPORTS + "\ndef rnn_cell(*args, **kwargs):\n    return ref.rnn_cell(*args, **kwargs)\n")
    spec = importlib.util.spec_from_file_location("learner_module", module)
    learner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(learner)
    result = checks.check_rnn_cell(learner.rnn_cell, quiet=True)
    assert (result.status, result.points, result.mistakes) == ("uses_reference", 0, ("uses_reference",))
    assert "course_utils.functional.rnn_cell" in result.message


def test_the_notebook_check_watches_calls_at_run_time(tmp_path):
    """A call the reading cannot see (through an object built elsewhere) is caught by the tripwire."""
    import importlib.util
    module = tmp_path / "sneaky.py"
    module.write_text("def rnn_cell(*args, **kwargs):\n    return HELPER(*args, **kwargs)\n")
    spec = importlib.util.spec_from_file_location("sneaky_module", module)
    learner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(learner)
    from course_utils import functional
    learner.HELPER = functional.rnn_cell
    result = checks.check_rnn_cell(learner.rnn_cell, quiet=True)
    assert result.status == "uses_reference" and "functional.py" in result.message
    assert torch.get_num_threads() >= 1


def where(*cells, function="rnn_cell", forbidden=CELL_REFERENCES):
    return [(f.what, f.cell, f.line) for f in reference_use(list(cells), function, forbidden)]


def test_an_alias_under_the_exercises_name_is_found_where_it_is_made():
    assert where(IMPORTS, "x = 1\n\nrnn_cell = ref.rnn_cell\n") == [("course_utils.functional.rnn_cell", 1, 3)]
    assert where(IMPORTS, "h = 0", "from course_utils.functional import rnn_cell  # done!\n") == [
        ("course_utils.functional.rnn_cell", 2, 1)]
    assert where(IMPORTS, "from course_utils.functional import lstm_cell as rnn_cell\n",
                 forbidden=("course_utils.functional.rnn_cell",)) == []  # an alias of something allowed


@pytest.mark.parametrize("cells, expected", [
    # the package set by hand, then the reference imported relative to it
    (["__package__ = 'course_utils'\nfrom .functional import rnn_cell as f\n",
      ("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
       "    return f(x, h, weight_ih, weight_hh, bias_ih, bias_hh)\n")], [(".functional.rnn_cell", 2, 2)]),
    (["__package__ = 'course_utils'\nfrom . import functional\n",
      ("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
       "    return functional.rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)\n")],
     [(".functional.rnn_cell", 2, 2)]),
    # inside the function: the import itself, and setting the package
    ([("def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity='tanh'):\n"
       "    global __package__\n    __package__ = 'course_utils'\n    from .functional import rnn_cell as f\n"
       "    return f(x, h, weight_ih, weight_hh, bias_ih, bias_hh)\n")],
     [("__package__", 1, 3), (".functional", 1, 4), (".functional.rnn_cell", 1, 5)]),
    # the exercise's name itself imported relatively
    (["__package__ = 'course_utils.functional'\nfrom . import rnn_cell\n"], [(".rnn_cell", 1, 2)]),
])
def test_a_relative_import_is_found_whatever_package_it_resolves_in(cells, expected):
    assert where(IMPORTS, *cells) == expected
