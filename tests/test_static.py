"""Reading a notebook for calls of the reference (course_utils.checks.static), the same in a notebook and the grader."""

from __future__ import annotations

import pytest
import torch

from course_utils import checks
from course_utils.checks.registry import CELL_REFERENCES
from course_utils.checks.static import reference_use

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
