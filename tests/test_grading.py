"""The batch grader (``python -m course_utils.grading``) on a corpus of good and bad submissions.

The corpus is generated once per session (``corpus`` fixture) from the course's notebooks:
each exercise notebook is the real ``solutions/NN_*.ipynb`` (or ``notebooks/`` for the student
version) cut down to its set-up cells and its exercise (the demos and training runs are left
out to keep the batch fast); a unit whose notebook does not exist yet is built with nbformat
with the same nbgrader cells. Mutations replace the solution cell, add pathological cells or
damage the file. The whole corpus is graded once, by the real command with ``--jobs 2`` and
short time limits (``graded`` fixture), and the tests assert on its reports.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.grading import CSV_COLUMNS, EXERCISES, main

if shutil.which("bwrap") is None and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
    pytest.skip("bubblewrap is not installed (Debian/Ubuntu: sudo apt-get install bubblewrap): the grader runs every "
                "submission inside it; in CI (CI=true) these tests fail instead", allow_module_level=True)
from course_utils.grading._notebook import InvalidSubmission, plan, read_notebook

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS, STUDENT = ROOT / "solutions", ROOT / "notebooks"
UNITS = {"rnn_cell": "01_rnn.ipynb", "clip_grad_norm": "02_gradients_through_time.ipynb",
         "lstm_cell": "03_lstm.ipynb", "gru_cell": "04_gru.ipynb", "build_model": "05_comparison.ipynb"}
CHECKS = {"rnn_cell": "check_rnn_cell", "clip_grad_norm": "check_clip_grad_norm", "lstm_cell": "check_lstm_cell",
          "gru_cell": "check_gru_cell", "build_model": "check_adding_model"}
SIGNATURES = {
    "rnn_cell": 'def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):',
    "clip_grad_norm": "def clip_grad_norm(grads, max_norm):",
    "lstm_cell": "def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):",
    "gru_cell": "def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):",
    "build_model": "def build_model():",
}
LIMITS = ["--timeout-cell", "8", "--timeout-notebook", "120", "--timeout-check", "40", "--memory-mb", "2048"]


# ------------------------------------------------------------ the learner's code
def _function(exercise: str, body: str) -> str:
    lines = [SIGNATURES[exercise], "    ### BEGIN SOLUTION"]
    lines += ["    " + line if line else "" for line in body.strip("\n").split("\n")]
    return "\n".join(lines + ["    ### END SOLUTION"]) + "\n"


RNN_BODY = """
pre = x @ weight_ih.T + h @ weight_hh.T  # (N, H)
if bias_ih is not None:
    pre = pre + bias_ih
if bias_hh is not None{hh}:
    pre = pre + bias_hh
return torch.relu(pre) if nonlinearity == "relu" else torch.tanh(pre)
"""
CLIP_BODY = """
total = torch.sqrt(sum((g ** 2).sum() for g in grads))
{scale}
return [g * s for g, s in zip(grads, scales)], total
"""
CLIP_JOINT = "scales = [torch.clamp(max_norm / (total + 1e-6), max=1.0)] * len(grads)"
CLIP_PER_TENSOR = "scales = [torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0) for g in grads]"
LSTM_BODY = """
h, c = state
gates = x @ weight_ih.T + h @ weight_hh.T  # (N, 4H)
if bias_ih is not None:
    gates = gates + bias_ih
if bias_hh is not None:
    gates = gates + bias_hh
{order} = gates.chunk(4, dim=-1)
c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
return torch.sigmoid(o) * torch.tanh(c_new), c_new
"""
GRU_BODY = """
gi, gh = x @ weight_ih.T, h @ weight_hh.T  # (N, 3H) each
if bias_ih is not None:
    gi = gi + bias_ih
if bias_hh is not None:
    gh = gh + bias_hh
i_r, i_z, i_n = gi.chunk(3, dim=-1)
h_r, h_z, h_n = gh.chunk(3, dim=-1)
r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
n = torch.tanh(i_n + r * h_n)
return {blend}
"""
MODEL_BODY = """
class AddingLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(2, 24, batch_first=True)
        self.head = nn.Linear(24, 1)

    def forward(self, x):
        out, _ = self.rnn(x)  # (N, T, H)
        return self.head(out[:, -1]).squeeze(-1)  # (N,)

return AddingLSTM()
"""
CODE = {
    "rnn_cell": _function("rnn_cell", RNN_BODY.format(hh="")),
    "rnn_no_bias_hh": _function("rnn_cell", RNN_BODY.format(hh=" and False")),
    "clip_grad_norm": _function("clip_grad_norm", CLIP_BODY.format(scale=CLIP_JOINT)),
    "clip_per_tensor": _function("clip_grad_norm", CLIP_BODY.format(scale=CLIP_PER_TENSOR)),
    "lstm_cell": _function("lstm_cell", LSTM_BODY.format(order="i, f, g, o")),
    "lstm_gate_order": _function("lstm_cell", LSTM_BODY.format(order="i, f, o, g")),
    "gru_cell": _function("gru_cell", GRU_BODY.format(blend="(1 - z) * n + z * h")),
    "gru_z_swapped": _function("gru_cell", GRU_BODY.format(blend="z * n + (1 - z) * h")),
    "build_model": _function("build_model", MODEL_BODY),
}
STUDENT_CODE = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"


# ------------------------------------------------------------- notebooks
def _nbgrader(grade_id: str, *, check: bool, points: int = 1) -> dict:
    meta = {"grade": check, "solution": not check, "locked": check, "grade_id": grade_id, "schema_version": 3}
    if check:
        meta["points"] = points
    return {"nbgrader": meta}


def _synthetic(exercise: str) -> nbformat.NotebookNode:
    """A small notebook with the course's first cells and the exercise's nbgrader cells."""
    v4 = nbformat.v4
    check = CHECKS[exercise]
    cells = [
        v4.new_markdown_cell(f"# {exercise}\n\nWhat you will be able to do: write `{exercise}`."),
        v4.new_code_cell("import course_utils\ndevice = course_utils.setup(seed=0)"),
        v4.new_code_cell("import torch\nfrom torch import nn\n\nfrom course_utils import checks\n"
                         "from course_utils import functional as ref"),
        v4.new_markdown_cell(f"## Exercise: `{exercise}`"),
        v4.new_code_cell(CODE[exercise], metadata=_nbgrader(exercise, check=False)),
        v4.new_code_cell(f"checks.{check}({exercise})", metadata=_nbgrader(f"check_{exercise}", check=True)),
    ]
    return v4.new_notebook(cells=cells)


def _cut(nb: nbformat.NotebookNode, exercise: str) -> nbformat.NotebookNode:
    """The real notebook's first two code cells (set-up, imports) and its exercise cells; outputs dropped."""
    keep, code_cells = [], 0
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if cell.cell_type == "code" and code_cells < 2:
            code_cells += 1
            keep.append(cell)
        elif grade_id in (exercise, f"check_{exercise}") or (cell.cell_type == "markdown" and code_cells < 2):
            keep.append(cell)
    for cell in keep:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.cells = keep
    return nb


def exercise_notebook(exercise: str, *, student: bool = False, code: str | None = None) -> nbformat.NotebookNode:
    """The exercise's notebook: the solution, the student version, or the solution cell replaced by ``code``."""
    real = (STUDENT if student and (STUDENT / UNITS[exercise]).exists() else SOLUTIONS) / UNITS[exercise]
    nb = _cut(nbformat.read(real, as_version=4), exercise) if real.exists() else _synthetic(exercise)
    solution = solution_cell(nb, exercise)
    if code is not None:
        solution.source = code
    if student:
        solution.source = re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION\n?", STUDENT_CODE,
                                 solution.source, flags=re.DOTALL)
    return nb


def solution_cell(nb, exercise: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise)


def with_cells(nb, *sources: str, before: str | None = None):
    """Add code cells at the end, or right before the cell with nbgrader grade_id ``before``."""
    at = len(nb.cells) if before is None else nb.cells.index(solution_cell(nb, before))
    nb.cells[at:at] = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def _save(folder: Path, name: str, content) -> None:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        nbformat.write(content, path)


def build_corpus(folder: Path) -> None:
    """Write every submission of the corpus into ``folder``; ``EXPECTED`` says what each must get."""
    ex = exercise_notebook
    save = lambda name, content: _save(folder, name, content)
    save("01_solution.ipynb", ex("rnn_cell"))
    save("01_missing_bias.ipynb", ex("rnn_cell", code=CODE["rnn_no_bias_hh"]))
    save("02_solution.ipynb", ex("clip_grad_norm"))
    save("02_per_tensor.ipynb", ex("clip_grad_norm", code=CODE["clip_per_tensor"]))
    save("03_solution.ipynb", ex("lstm_cell"))
    save("03_student.ipynb", ex("lstm_cell", student=True))
    save("03_gate_order.ipynb", ex("lstm_cell", code=CODE["lstm_gate_order"]))
    save("04_solution.ipynb", ex("gru_cell"))
    save("04_z_swapped.ipynb", ex("gru_cell", code=CODE["gru_z_swapped"]))
    save("05_solution.ipynb", ex("build_model"))
    # the kernel's bad days: each bad cell comes *before* the solution, whose definition must still count
    rnn = lambda *cells: with_cells(ex("rnn_cell"), *cells, before="rnn_cell")
    save("p_infinite_loop.ipynb", rnn("while True:\n    pass"))
    save("p_sleep.ipynb", rnn("import time\ntime.sleep(3600)"))
    save("p_raises_and_exits.ipynb", rnn("raise ValueError('my own bug')", "import sys\nsys.exit('bye')",
                                         "%reset -f\nimport torch"))  # the grader's own state survives %reset
    save("p_os_exit.ipynb", rnn("import os\nos._exit(1)"))
    save("p_memory_numpy.ipynb", rnn("import numpy as np\nbig = np.ones(50_000_000_000, dtype=np.uint8)"))
    save("p_memory_bytearray.ipynb", rnn("hog = []\nwhile True:\n    hog.append(bytearray(100_000_000))"))
    save("p_big_output.ipynb", rnn("print('x' * 20_000_000)"))
    save("p_check_hangs.ipynb", ex("rnn_cell", code=_function("rnn_cell", "import time\ntime.sleep(3600)")))
    save("p_syntax_error.ipynb", ex("rnn_cell", code=CODE["rnn_cell"].replace("):", ")", 1)))
    # files that are not (good) notebooks
    good = nbformat.writes(ex("rnn_cell")).encode()
    save("x_invalid_json.ipynb", good[: len(good) // 2])
    save("x_nbformat3.ipynb", nbformat.writes(nbformat.convert(ex("rnn_cell"), 3)).encode())
    save("x_png.ipynb", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    save("x_text.ipynb", b"Dear instructor, my notebook is attached. Kind regards\n")
    save("x_empty.ipynb", nbformat.v4.new_notebook())
    # cheating, deliberate or not
    deleted = ex("lstm_cell")
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "check_lstm_cell"]
    save("c_checks_deleted.ipynb", deleted)
    edited = ex("lstm_cell", code=CODE["lstm_gate_order"])
    next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "check_lstm_cell").source = \
        "print('lstm_cell: passed')"
    save("c_checks_edited.ipynb", edited)
    save("c_patch_checks.ipynb", with_cells(ex("rnn_cell", student=True), (
        "import course_utils.checks\n"
        "from course_utils.checks import CheckResult\n"
        "course_utils.checks.check_rnn_cell = lambda fn, **kw: CheckResult('rnn_cell', 'passed', 2, 2, 'passed')\n"
        "checks.check_rnn_cell = course_utils.checks.check_rnn_cell")))
    save("c_patch_functional.ipynb", with_cells(ex("gru_cell", code=CODE["gru_z_swapped"]), (
        "import course_utils.functional\ncourse_utils.functional.gru_cell = gru_cell")))
    save("c_patch_torch.ipynb", with_cells(ex("rnn_cell", code=CODE["rnn_no_bias_hh"]), (
        "import torch\ntorch.allclose = lambda *args, **kwargs: True")))
    save("c_calls_reference.ipynb", ex("lstm_cell", code=_function("lstm_cell", (
        "import course_utils.functional\n"
        "return course_utils.functional.lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh)"))))
    save("c_alias_reference.ipynb", ex("rnn_cell", code="from course_utils import functional\n"
                                                          "rnn_cell = functional.rnn_cell\n"))
    save("c_relative_reference.ipynb", ex("gru_cell", code="__package__ = 'course_utils'\n"
                                                             "from .functional import gru_cell as _cell\n"
                                                             + _function("gru_cell", (
        "return _cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)"))))
    save("c_torch_cell.ipynb", ex("gru_cell", code=_function("gru_cell", (
        "return torch.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)"))))
    # attacks on the grader (each kind the red team found, written anew)
    package = str(folder.parent / "course" / "course_utils")
    rnn = lambda *cells: with_cells(ex("rnn_cell"), *cells, before="rnn_cell")
    save("a_reads_files.ipynb", rnn(
        f"open({str(folder.parent / 'course' / 'solutions' / '01_rnn.ipynb')!r}).read()",
        f"open({str(folder.resolve() / '01_solution.ipynb')!r}).read()",
        "import os\nprint(sorted(os.listdir('/opt/course')))"))
    save("a_writes_package.ipynb", rnn(
        "open('/opt/course/course_utils/checks/rnn.py', 'a').write('# changed')",
        "import os\nos.link('/opt/course/course_utils/checks/rnn.py', 'rnn_link.py')",
        f"open({package + '/checks/rnn.py'!r}, 'a').write('# changed')"))
    save("a_processes.ipynb", rnn(
        "import subprocess\nsubprocess.Popen(['sleep', '987654'], start_new_session=True)",
        "import subprocess\nkids = []\ntry:\n    for _ in range(2000):\n"
        "        kids.append(subprocess.Popen(['sleep', '600']))\nfinally:\n    for kid in kids:\n"
        "        kid.kill()\n        kid.wait()\n    print(len(kids), 'started')",
        "import os, signal\nfor pid in range(1, 4000):  # every process it can see, but itself\n    try:\n"
        "        os.kill(pid, signal.SIGKILL) if pid not in (os.getpid(), os.getppid()) else None\n"
        "    except OSError:\n        pass",
        "import socket\nsocket.create_connection(('127.0.0.1', 8888), timeout=1)"))
    after = lambda *cells: with_cells(ex("rnn_cell"), *cells)  # bad cells after a correct function
    save("p_kill_after.ipynb", after("import os\nos._exit(3)"))
    save("p_loop_after.ipynb", after("while True:\n    pass"))
    save("p_torch_memory.ipynb", after("import torch\nbig = torch.empty(400_000_000_000)"))
    save("p_makes_folders.ipynb", after("import os\nos.makedirs('results/run1', exist_ok=True)\n"
                                        "open('results/run1/log.txt', 'w').write('fine')"))
    text = nbformat.writes(ex("rnn_cell"))
    save("x_too_large.ipynb", (text[:-2] + " " * 21 * 2**20 + text[-2:]).encode())  # valid, 21 MB of blanks
    save("a_shared_memory.ipynb", rnn("import mmap\nm = mmap.mmap(-1, 3_300_000_000)\nm[-1] = 1"))
    save("a_environment.ipynb", with_cells(ex("rnn_cell", code=_function("rnn_cell", (
        "raise ValueError('env: ' + ENVIRONMENT)"))), "import os\nENVIRONMENT = ' '.join(sorted(os.environ))",
        before="rnn_cell"))
    save("a_tensor_subclass.ipynb", ex("rnn_cell", code=(
        "class AlwaysClose(torch.Tensor):\n"
        "    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        return True if func in (torch.allclose, torch.equal) else super().__torch_function__(func, types, "
        "args, kwargs or {})\n\n" + _function("rnn_cell", "return torch.zeros(x.shape[0], h.shape[1], "
                                                          "dtype=x.dtype).as_subclass(AlwaysClose)"))))
    save("a_reference_by_string.ipynb", ex("gru_cell", code=_function("gru_cell", (
        "return getattr(torch, 'gru' + '_cell')(x, h, weight_ih, weight_hh, bias_ih, bias_hh)"))))
    save("a_reference_ops.ipynb", ex("gru_cell", code=_function("gru_cell", (
        "return torch.ops.aten.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)"))))
    save("a_reference_thread.ipynb", ex("lstm_cell", code=(
        "from course_utils import functional as helper\n\n" + _function("lstm_cell", (
            "import threading\nout = []\n"
            "t = threading.Thread(target=lambda: out.append(helper.lstm_cell(x, state, weight_ih, weight_hh, "
            "bias_ih, bias_hh)))\nt.start()\nt.join()\nreturn out[0]")))))
    save("a_frame_reading.ipynb", ex("rnn_cell", code=_function("rnn_cell", (
        "import sys\nframe = sys._getframe(1)\nreturn frame.f_back.f_locals.get('expected')"))))
    save("a_surrogate.ipynb", nbformat.writes(with_cells(ex("rnn_cell"), "text = 'SURROGATE alone'"))
         .replace("SURROGATE", "\\ud800").encode())  # valid JSON; a lone \ud800 is not valid Unicode
    target = str(folder.resolve())
    save("c_escape.ipynb", with_cells(
        ex("rnn_cell"),
        "open('../inside_sandbox.txt', 'w').write('allowed: still inside the sandbox')",
        "open('../../escape.txt', 'w').write('x')",
        f"open({target + '/escaped.txt'!r}, 'w').write('x')",
        f"open({target + '/01_solution.ipynb'!r}, 'w').write('{{}}')",
        f"import os\nos.remove({target + '/03_student.ipynb'!r})",
        f"import shutil\nshutil.rmtree({target!r})",
        f"import subprocess\nsubprocess.run(['touch', {target + '/touched.txt'!r}])",
        f"import os\nos.system('touch {target}/system.txt')",
        f"from pathlib import Path\nPath({target!r}, 'x_png.ipynb').rename(Path({target!r}, 'moved.ipynb'))",
    ))


# ------------------------------------------------------------------- fixtures
def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


SECRET = "INSTRUCTOR_SECRET_TOKEN"


def grade(*args: str, course: Path | None = None) -> subprocess.CompletedProcess:
    """The real command; with ``course``, the copy of the package there (attacks never touch the working tree)."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env[SECRET] = "must-never-reach-a-learner"
    if course is not None:
        env["PYTHONPATH"] = str(course)
    return subprocess.run([sys.executable, "-m", "course_utils.grading", *args], check=False, capture_output=True,
                          text=True, env=env, timeout=900, cwd=course)


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="session")
def course_copy(tmp_path_factory) -> Path:
    """A copy of the package and the solutions: the grader under attack runs from here."""
    import shutil
    root = tmp_path_factory.mktemp("grading")
    course = root / "course"
    shutil.copytree(ROOT / "course_utils", course / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SOLUTIONS, course / "solutions")
    return course


@pytest.fixture(scope="session")
def corpus(course_copy) -> Path:
    folder = course_copy.parent / "submissions"
    folder.mkdir()
    build_corpus(folder)
    return folder


@pytest.fixture(scope="session")
def graded(corpus: Path):
    """The corpus graded once, by the real command, 2 submissions at a time."""
    before, package = _snapshot(corpus), _tree(corpus.parent / "course")
    out = corpus.parent / "out"
    proc = grade(str(corpus), "--out", str(out), "--jobs", "2", "--no-progress", *LIMITS, course=corpus.parent / "course")
    reports = {p.name.removesuffix(".json") + ".ipynb": json.loads(p.read_text()) for p in out.glob("*.json")}
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"proc": proc, "out": out, "reports": reports, "rows": rows, "before": before,
            "after": _snapshot(corpus), "package": package, "package_after": _tree(corpus.parent / "course")}


def report(graded, name: str) -> dict:
    assert name in graded["reports"], f"no report for {name}; stderr: {graded['proc'].stderr[-2000:]}"
    return graded["reports"][name]


# ---------------------------------------------------------------- expectations
#: submission -> (status, {exercise: (exercise status, points: "max" or 0, text expected in message or reason)})
EXPECTED = {
    "01_solution.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    "01_missing_bias.ipynb": ("ok", {"rnn_cell": ("wrong", 0, "missing bias")}),
    "02_solution.ipynb": ("ok", {"clip_grad_norm": ("passed", "max", "passed")}),
    "02_per_tensor.ipynb": ("ok", {"clip_grad_norm": ("wrong", 0, "per-tensor clipping")}),
    "03_solution.ipynb": ("ok", {"lstm_cell": ("passed", "max", "passed")}),
    "03_student.ipynb": ("ok", {"lstm_cell": ("not_implemented", 0, "not implemented")}),
    "03_gate_order.ipynb": ("ok", {"lstm_cell": ("wrong", 0, "gates in the wrong order")}),
    "04_solution.ipynb": ("ok", {"gru_cell": ("passed", "max", "passed")}),
    "04_z_swapped.ipynb": ("ok", {"gru_cell": ("wrong", 0, "`z` and `1 − z` are swapped")}),
    "05_solution.ipynb": ("ok", {"build_model": ("passed", "max", "passed")}),
    "p_infinite_loop.ipynb": ("timeout", {"rnn_cell": ("passed", "max", "passed")}),
    "p_sleep.ipynb": ("timeout", {"rnn_cell": ("passed", "max", "passed")}),
    "p_raises_and_exits.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    "p_os_exit.ipynb": ("crashed", {"rnn_cell": ("passed", "max", "passed")}),
    "p_memory_numpy.ipynb": ("memory", {"rnn_cell": ("passed", "max", "passed")}),
    "p_memory_bytearray.ipynb": ("memory", {"rnn_cell": ("passed", "max", "passed")}),
    "p_big_output.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    "p_check_hangs.ipynb": ("timeout", {"rnn_cell": ("timeout", 0, "did not return within 40 s")}),
    "p_syntax_error.ipynb": ("ok", {"rnn_cell": ("missing", 0, "SyntaxError")}),
    "x_invalid_json.ipynb": ("invalid", {}),
    "x_nbformat3.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    "x_png.ipynb": ("invalid", {}),
    "x_text.ipynb": ("invalid", {}),
    "x_empty.ipynb": ("no_exercises", {}),
    "c_checks_deleted.ipynb": ("ok", {"lstm_cell": ("passed", "max", "passed")}),
    "c_checks_edited.ipynb": ("ok", {"lstm_cell": ("wrong", 0, "gates in the wrong order")}),
    # patching the checks, the reference or torch inside the kernel changes nothing: they run in the grader
    "c_patch_checks.ipynb": ("ok", {"rnn_cell": ("not_implemented", 0, "not implemented")}),
    "c_patch_functional.ipynb": ("ok", {"gru_cell": ("wrong", 0, "`z` and `1 − z` are swapped")}),
    "c_patch_torch.ipynb": ("ok", {"rnn_cell": ("wrong", 0, "missing bias")}),
    "a_reads_files.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    "a_writes_package.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    # SIGKILL to every pid it can see kills only its own kernel (thread ids are pids too): the grader goes on
    "a_processes.ipynb": ("crashed", {"rnn_cell": ("passed", "max", "passed")}),
    "p_kill_after.ipynb": ("crashed", {"rnn_cell": ("passed", "max", "passed")}),
    "p_loop_after.ipynb": ("timeout", {"rnn_cell": ("passed", "max", "passed")}),
    "p_torch_memory.ipynb": ("memory", {"rnn_cell": ("passed", "max", "passed")}),
    "p_makes_folders.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    "x_too_large.ipynb": ("invalid", {}),
    "a_shared_memory.ipynb": ("memory", {"rnn_cell": ("passed", "max", "passed")}),
    "a_environment.ipynb": ("ok", {"rnn_cell": ("error", 0, "ValueError: env:")}),
    "a_tensor_subclass.ipynb": ("ok", {"rnn_cell": ("wrong", 0, "wrong values")}),
    "a_reference_by_string.ipynb": ("ok", {"gru_cell": ("uses_reference", 0, "getattr()")}),
    "a_reference_ops.ipynb": ("ok", {"gru_cell": ("uses_reference", 0, "torch.ops.aten")}),
    "a_reference_thread.ipynb": ("ok", {"lstm_cell": ("uses_reference", 0, "course_utils.functional.lstm_cell")}),
    "a_frame_reading.ipynb": ("ok", {"rnn_cell": ("uses_reference", 0, "sys")}),
    "a_surrogate.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
    "c_calls_reference.ipynb": ("ok", {"lstm_cell": ("uses_reference", 0, "course_utils.functional.lstm_cell")}),
    "c_alias_reference.ipynb": ("ok", {"rnn_cell": ("uses_reference", 0, "course_utils.functional.rnn_cell")}),
    "c_relative_reference.ipynb": ("ok", {"gru_cell": ("uses_reference", 0, ".functional")}),
    "c_torch_cell.ipynb": ("ok", {"gru_cell": ("uses_reference", 0, "torch.gru_cell")}),
    "c_escape.ipynb": ("ok", {"rnn_cell": ("passed", "max", "passed")}),
}


# ---------------------------------------------------------------------- tests
def test_the_corpus_is_complete(corpus):
    assert sorted(p.name for p in corpus.glob("*.ipynb")) == sorted(EXPECTED)


def test_the_batch_completes_with_exit_code_0(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"graded {len(EXPECTED)} submission(s)" in proc.stderr


def test_every_submission_has_a_row_sorted_by_name(graded):
    rows = graded["rows"]
    assert [r["submission"] for r in rows] == sorted(EXPECTED)
    assert list(rows[0]) == CSV_COLUMNS
    assert sorted(graded["reports"]) == sorted(EXPECTED)


def test_submissions_are_unchanged_and_nothing_escaped(graded, corpus):
    assert graded["after"] == graded["before"]  # same names, same bytes: nothing written, moved or deleted
    assert graded["package_after"] == graded["package"]  # the package (and solutions) the grader ran from
    assert not list(corpus.parent.rglob("rnn_link.py")) and not list(corpus.parent.rglob("touched.txt"))
    assert not (corpus.parent / "escape.txt").exists()
    assert not list(corpus.parent.parent.glob("escape.txt"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_status_points_and_diagnosis(graded, name):
    r = report(graded, name)
    status, exercises = EXPECTED[name]
    assert r["status"] == status, (r["status"], r["reason"], r["cells"], r["exercises"])
    assert sorted(r["exercises"]) == sorted(exercises)
    for exercise, (ex_status, points, text) in exercises.items():
        got = r["exercises"][exercise]
        assert got["status"] == ex_status, got
        assert got["points"] == (got["max_points"] if points == "max" else points), got
        assert text in f"{got['message']} {got['reason']}", got
    row = next(row for row in graded["rows"] if row["submission"] == name)
    assert row["status"] == status
    assert float(row["total"]) == r["points"]
    assert float(row["max"]) == r["max_points"]
    for exercise in EXERCISES:
        assert row[exercise] == ("" if exercise not in r["exercises"] else f"{r['exercises'][exercise]['points']:g}")


def test_points_come_from_the_course_not_the_submission(graded):
    r = report(graded, "01_solution.ipynb")
    expected = 1
    real = SOLUTIONS / UNITS["rnn_cell"]
    if real.exists():
        cells = json.loads(real.read_text())["cells"]
        expected = next(c["metadata"]["nbgrader"]["points"] for c in cells
                        if c["metadata"].get("nbgrader", {}).get("grade_id") == "check_rnn_cell")
    assert r["exercises"]["rnn_cell"]["max_points"] == expected


def _cell(r: dict, outcome: str) -> dict:
    found = [c for c in r["cells"] if c["outcome"] == outcome]
    assert found, r["cells"]
    return found[0]


def test_pathological_cells_are_recorded(graded):
    assert "cell time limit (8 s)" in _cell(report(graded, "p_infinite_loop.ipynb"), "timeout")["detail"]
    assert "cell time limit" in _cell(report(graded, "p_sleep.ipynb"), "timeout")["detail"]
    errors = [c["detail"] for c in report(graded, "p_raises_and_exits.ipynb")["cells"] if c["outcome"] == "error"]
    assert errors == ["ValueError: my own bug", "SystemExit: bye"]
    crashed = _cell(report(graded, "p_os_exit.ipynb"), "crashed")["detail"]
    assert "exit code 1" in crashed and "new kernel without this cell" in crashed
    assert "MemoryError" in _cell(report(graded, "p_memory_numpy.ipynb"), "memory")["detail"]
    assert "limit 2048 MB" in _cell(report(graded, "p_memory_bytearray.ipynb"), "memory")["detail"]
    assert "SyntaxError" in _cell(report(graded, "p_syntax_error.ipynb"), "error")["detail"]


def test_check_cells_are_not_run_by_the_grader(graded):
    r = report(graded, "01_solution.ipynb")
    skipped = _cell(r, "skipped")
    assert "check cell" in skipped["detail"]


def test_huge_output_is_counted_not_kept(graded):
    path = graded["out"] / "p_big_output.json"
    assert path.stat().st_size < 20_000
    assert any("20,000,001 characters" in note for note in report(graded, "p_big_output.ipynb")["notes"])


def test_invalid_files_say_why(graded):
    assert "not valid JSON" in report(graded, "x_invalid_json.ipynb")["reason"]
    assert "binary" in report(graded, "x_png.ipynb")["reason"]
    assert "not valid JSON" in report(graded, "x_text.ipynb")["reason"]
    assert "no exercise" in report(graded, "x_empty.ipynb")["reason"]
    assert "converted from nbformat 3 to 4" in report(graded, "x_nbformat3.ipynb")["notes"]


def test_writes_outside_the_sandbox_fail(graded):
    cells = {c["cell"]: c for c in report(graded, "c_escape.ipynb")["cells"]}
    refused = [c for c in cells.values() if c["outcome"] == "error"]
    assert len(refused) == 6, cells  # every write but the one in the sandbox's own home; the 2 `touch`es fail
    # silently (their files are not there: test_submissions_are_unchanged_and_nothing_escaped)
    assert all(("No such file" in c["detail"] or "Permission denied" in c["detail"] or "Read-only" in c["detail"])
               for c in refused), refused


def test_the_sandbox_hides_files_and_makes_the_package_read_only(graded):
    cells = [c for c in report(graded, "a_reads_files.ipynb")["cells"] if c["outcome"] == "error"]
    assert len(cells) == 2 and all("No such file" in c["detail"] for c in cells), cells
    details = [c["detail"] for c in report(graded, "a_writes_package.ipynb")["cells"] if c["outcome"] == "error"]
    assert len(details) == 3, details
    assert ("Read-only file system" in details[0] or "Permission denied" in details[0]) and "No such file" in details[2]
    assert "Invalid cross-device link" in details[1] or "Operation not permitted" in details[1], details


def test_process_limit_and_own_process_namespace(graded):
    r = report(graded, "a_processes.ipynb")
    errors = [c["detail"] for c in r["cells"] if c["outcome"] == "error"]
    assert any("Resource temporarily unavailable" in d for d in errors), r["cells"]  # the process limit
    assert any("Connection refused" in d or "unreachable" in d for d in errors), r["cells"]
    assert "exit code 137" in _cell(r, "crashed")["detail"]  # it killed itself, nothing outside its namespace
    assert r["exercises"]["rnn_cell"]["status"] == "passed"  # and the grader went on


def test_no_process_outlives_the_grader(graded):
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 987654" not in ps


def test_too_large_files_are_not_read(graded):
    assert "over the limit of 20 MB" in report(graded, "x_too_large.ipynb")["reason"]


def test_points_are_capped_by_the_course():
    from course_utils.grading._course import Course
    from course_utils.grading._grade import _exercise_entry
    from course_utils.grading._notebook import Plan
    course = Course("", {}, {"rnn_cell": 2.0})
    entry = _exercise_entry("rnn_cell", {"status": "passed", "points": 1000}, Plan([], ["rnn_cell"], {}), {}, {},
                            course)
    assert (entry["points"], entry["max_points"]) == (2, 2)
    entry = _exercise_entry("rnn_cell", {"status": "wrong", "points": 1000}, Plan([], ["rnn_cell"], {}), {}, {},
                            course)
    assert entry["points"] == 0


def test_shared_memory_counts_against_the_limit(graded):
    assert _cell(report(graded, "a_shared_memory.ipynb"), "memory")


def test_the_instructors_environment_never_reaches_a_report(graded):
    text = "\n".join(p.read_text() for p in graded["out"].rglob("*") if p.is_file())
    assert SECRET not in text and "must-never-reach" not in text
    message = report(graded, "a_environment.ipynb")["exercises"]["rnn_cell"]["message"]
    assert "PATH" in message and len(message) < 1000  # the kernel's own, fresh environment, cut short


def test_feedback_files_and_diagnosis_column(graded):
    md = (graded["out"] / "feedback" / "03_gate_order.md").read_text()
    assert "gates in the wrong order" in md and "0 / 3" in md
    row = next(r for r in graded["rows"] if r["submission"] == "03_gate_order.ipynb")
    assert row["diagnosis"] == "lstm_cell: gate_order" and row["isolation"] == "bubblewrap"
    assert row["unit"] == "03_lstm"


def test_notes_for_edited_and_deleted_check_cells(graded):
    assert any("`check_lstm_cell` was deleted" in n for n in report(graded, "c_checks_deleted.ipynb")["notes"])
    assert any("`check_lstm_cell` was edited" in n for n in report(graded, "c_checks_edited.ipynb")["notes"])
    assert any("not valid Unicode" in n for n in report(graded, "a_surrogate.ipynb")["notes"])


def test_every_run_draws_a_fresh_seed(graded):
    seeds = {report(graded, n).get("seed") for n in ("01_solution.ipynb", "03_solution.ipynb", "04_solution.ipynb")}
    assert None not in seeds and len(seeds) == 3


def test_reports_hold_no_run_dependent_text(graded):
    text = "\n".join(p.read_text() for p in graded["out"].glob("*.json"))
    assert "cu-grade-" not in text and "ipykernel_" not in text and "0x7f" not in text  # sandbox, cell files
    assert "seconds" not in text


# --------------------------------------------------- serial run, resume, CLI
@pytest.fixture(scope="session")
def serial(graded, corpus, tmp_path_factory):
    """Three submissions graded again, one at a time, with the progress bar on."""
    names = ["01_solution.ipynb", "03_gate_order.ipynb", "x_png.ipynb"]
    out = tmp_path_factory.mktemp("serial")
    proc = grade(*(str(corpus / n) for n in names), "--out", str(out), "--jobs", "1", *LIMITS,
                 course=corpus.parent / "course")
    return {"proc": proc, "out": out, "names": names}


def test_serial_run_gives_the_same_grades(graded, serial):
    assert serial["proc"].returncode == 0, serial["proc"].stderr[-2000:]
    for name in serial["names"]:
        json_name = name.removesuffix(".ipynb") + ".json"
        a, b = (json.loads((d / json_name).read_text()) for d in (serial["out"], graded["out"]))
        assert (a["status"], a["points"]) == (b["status"], b["points"])
        assert {k: (e["status"], e["mistakes"]) for k, e in a["exercises"].items()} == \
            {k: (e["status"], e["mistakes"]) for k, e in b["exercises"].items()}


def test_progress_bar_goes_to_stderr(serial):
    assert "grading" in serial["proc"].stderr and "3/3" in serial["proc"].stderr
    assert serial["proc"].stdout == ""


def test_resume_regrades_only_what_is_missing(serial, corpus):
    out, names = serial["out"], serial["names"]
    csv_before = (out / "grades.csv").read_text()
    kept = out / "01_solution.json"
    mtime = kept.stat().st_mtime_ns
    (out / "x_png.json").unlink()  # as if the batch had stopped before this one
    (out / "grades.csv").unlink()
    proc = grade(*(str(corpus / n) for n in names), "--out", str(out), "--resume", "--no-progress", *LIMITS,
                 course=corpus.parent / "course")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert kept.stat().st_mtime_ns == mtime  # reused, not graded again
    assert (out / "x_png.json").exists()
    assert (out / "grades.csv").read_text() == csv_before


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "missing.ipynb"), "--out", str(tmp_path / "out")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--out", str(tmp_path / "out"), "--timeout-cell", "-1"])
    assert exit_info.value.code == 2


def test_unwritable_output_exits_1(tmp_path, capsys):
    nb = tmp_path / "a.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), nb)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main([str(nb), "--out", str(blocker / "out"), "--no-progress"]) == 1
    assert "cannot write" in capsys.readouterr().err


# ------------------------------------------------------- reading, no kernel
@pytest.mark.parametrize("data, why", [
    (b"", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"), (b"\xff\xfe\xfa", "UTF-8"),
    (b"[1, 2]", "without cells"), (b'{"cells": [], "nbformat": 2}', "nbformat 2"), (b"{", "not valid JSON"),
])
def test_read_notebook_rejects(data, why):
    with pytest.raises(InvalidSubmission, match=why):
        read_notebook(data)


def test_plan_skips_check_cells_and_recognises_exercises():
    nb = exercise_notebook("lstm_cell")
    nb.cells.append(nbformat.v4.new_code_cell("checks.check_lstm_cell(lstm_cell)\n"))  # no metadata
    nb.cells.append(nbformat.v4.new_code_cell("result = checks.check_lstm_cell(lstm_cell)\nprint(result)"))
    p = plan(nb)
    assert p.exercises == ["lstm_cell"]
    runs = {c.source.split("\n")[0]: c.runs for c in p.cells}
    assert runs["checks.check_lstm_cell(lstm_cell)"] is False
    assert runs["result = checks.check_lstm_cell(lstm_cell)"] is True


def test_plan_without_metadata_recognises_definitions():
    nb = exercise_notebook("gru_cell")
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    p = plan(nb)
    assert p.exercises == ["gru_cell"]
    assert p.notes and "recognised by the functions" in p.notes[0]


def test_without_bubblewrap_the_grader_refuses_unless_no_sandbox(tmp_path, capsys, monkeypatch):
    from course_utils.grading import _batch
    nb = tmp_path / "a.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), nb)
    monkeypatch.setattr(_batch, "find_bwrap", lambda: None)
    assert main([str(nb), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "apt-get install bubblewrap" in capsys.readouterr().err
    assert main([str(nb), "--out", str(tmp_path / "out"), "--no-progress", "--no-sandbox"]) == 0
    assert "WITHOUT isolation" in capsys.readouterr().err
    row = next(csv.DictReader(open(tmp_path / "out" / "grades.csv", newline="")))
    assert row["isolation"] == "none"
    report = json.loads((tmp_path / "out" / "a.json").read_text())
    assert report["isolation"] == "none"


def test_demo_cells_are_skipped_unless_a_running_cell_needs_them():
    from course_utils.grading._notebook import normalized
    v4 = nbformat.v4
    cells = [v4.new_code_cell("import torch"), v4.new_code_cell("H = 8\nmodel = torch.nn.Linear(H, H)"),
             v4.new_code_cell("history = train(model)"), v4.new_code_cell("plot(history)"),
             v4.new_code_cell("def rnn_cell(x):\n    return x * H",
                              metadata=_nbgrader("rnn_cell", check=False)),
             v4.new_code_cell("history = train(model)  # the learner's own copy of a demo cell, edited")]
    course_demo = frozenset(normalized(c.source) for c in cells[1:4])
    runs = [c.runs for c in plan(v4.new_notebook(cells=cells), course_demo).cells]
    # cell 2 binds H, which the learner's function reads; 3 and 4 are demos nobody needs; 6 is the learner's
    assert runs == [True, True, False, False, True, True]


def test_the_sandbox_never_shows_the_repository_but_may_show_a_venv_inside_it(tmp_path):
    from course_utils.grading._sandbox import shown
    repo = tmp_path / "course"
    assert not shown(repo, [repo])  # the repository itself
    assert not shown(tmp_path, [repo])  # a folder that holds it
    assert shown(repo / ".venv" / "lib" / "python3.11" / "site-packages", [repo])  # a virtual environment inside
    assert shown(Path("/usr/lib/python3/dist-packages"), [repo])
