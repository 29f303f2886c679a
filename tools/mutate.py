"""Mutation testing for course_utils: how many small bugs would the tests let through?

Each mutant is one small change to one file of a *copy* of the package (the working tree is never
touched): an arithmetic or comparison operator swapped, a number changed, ``True``/``False``
flipped, ``sigmoid`` for ``tanh`` (and back), ``min``/``max``, ``and``/``or``, a statement
removed, the first two arguments of a call swapped. The tests that cover the file run against
the mutant (``pytest -x``, stopping at the first failure); a mutant is *killed* when they fail
(or time out) and *survives* when they pass. The score is killed / mutants.

    python tools/mutate.py                       # every file outside widgets/ and grading/, 60 mutants each
    python tools/mutate.py course_utils/checks/rnn.py --sample 20 --seed 1
    python tools/mutate.py --list                # the files and the test files that run them

Which tests judge a mutant: the unit tests run once under coverage, recording which test ran which
line (``--out``/coverage-map.json, reused by later runs; delete it after changing the tests). A
mutant inside a function body is judged by the tests that ran its line, fastest first, then by the
other tests of their files (a module-scoped fixture's lines are credited to its first user); a mutant on
a line that runs at import time (module level, class bodies, defaults) or that no test runs
in-process (only in a subprocess) is judged by every test file that runs the module. Each judgement is a fork of one process that has
already imported torch and pytest, ``--jobs`` at a time, each in its own copy of the repository.

It is a measurement, not a CI gate. Results are written to ``--out`` (JSON with every mutant, and a
Markdown table with the survivors and their source lines) and summarised on stdout.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the tests a mutant may be judged by: every unit test file, not the ones that need the grader's
#: sandbox, nbgrader, a browser or a hub (they exercise grading/ and widgets/, which are not mutated)
UNIT_TESTS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("test_*.py")
                    if p.name not in ("test_grading.py", "test_nbgrader.py", "test_environment.py"))
_SWAP_BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult,
                ast.MatMult: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv}
_SWAP_CMPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
              ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
_SWAP_NAMES = {"sigmoid": "tanh", "tanh": "sigmoid", "min": "max", "max": "min", "relu": "tanh",
               "float32": "float64", "float64": "float32", "any": "all", "all": "any"}


@dataclass
class Mutant:
    file: str
    line: int
    what: str
    code: str = ""  # the source line mutated
    outcome: str = ""  # killed, survived, timeout, invalid
    selected: str = ""  # why these tests ran: covering, import-time, not covered in-process, no test
    seconds: float = 0.0
    site: str = ""  # "walk index:kind", to run the same mutant again (--retry)
    detail: str = ""  # pytest's last output when the tests could not be run (an error)


#: calls whose first two arguments can be swapped without any change (mse_loss: (a - b)² = (b - a)², and its
#: gradient reaches both)
_SYMMETRIC = {"transpose", "swapaxes", "swapdims", "mse_loss"}


def _sites(tree: ast.AST) -> list[tuple[int, str, str, int]]:
    """(walk index, kind, description, line) for each mutation the tree allows; docstrings are skipped."""
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for k, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.BinOp) and type(node.op) in _SWAP_BINOPS:
            out.append((k, "binop", f"{type(node.op).__name__} -> {_SWAP_BINOPS[type(node.op)].__name__}", line))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in _SWAP_CMPS:
            out.append((k, "cmp", f"{type(node.ops[0]).__name__} -> {_SWAP_CMPS[type(node.ops[0])].__name__}", line))
        elif isinstance(node, ast.BoolOp):
            out.append((k, "boolop", "and <-> or", line))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append((k, "not", "not removed", line))
        elif isinstance(node, ast.Constant) and id(node) not in docstrings:
            if isinstance(node.value, bool):
                out.append((k, "bool", f"{node.value} -> {not node.value}", line))
            elif isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
                out.append((k, "number", f"{node.value!r} -> {_changed(node.value)!r}", line))
        elif isinstance(node, ast.Attribute) and node.attr in _SWAP_NAMES:
            out.append((k, "name", f".{node.attr} -> .{_SWAP_NAMES[node.attr]}", line))
        elif isinstance(node, ast.Name) and node.id in _SWAP_NAMES and isinstance(node.ctx, ast.Load):
            out.append((k, "name", f"{node.id} -> {_SWAP_NAMES[node.id]}", line))
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred)
                                                                           for a in node.args[:2]) \
                and ast.dump(node.args[0]) != ast.dump(node.args[1]) \
                and getattr(node.func, "attr", None) not in _SYMMETRIC:  # f(a, a), x.transpose(0, 1): the same
            out.append((k, "args", "first two arguments swapped", line))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.For, ast.If, ast.While, ast.With)):
            for j, stmt in enumerate(node.body):
                if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)) and \
                        not isinstance(stmt, (ast.Return, ast.Pass)) and len(node.body) > 1:
                    out.append((k, f"drop{j}", f"statement at line {stmt.lineno} removed", stmt.lineno))
    return out


def _changed(value):
    if value == 0:
        return 1
    if value == 1:
        return 0
    return value * 10 if isinstance(value, float) else value + 1


def _apply(tree: ast.AST, site: tuple[int, str, str, int]) -> ast.AST:
    tree = copy.deepcopy(tree)
    k, kind = site[0], site[1]
    node = list(ast.walk(tree))[k]
    if kind == "binop":
        node.op = _SWAP_BINOPS[type(node.op)]()
    elif kind == "cmp":
        node.ops[0] = _SWAP_CMPS[type(node.ops[0])]()
    elif kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "not":
        node.op = ast.UAdd()  # +x: truthiness kept as the value itself
    elif kind == "bool":
        node.value = not node.value
    elif kind == "number":
        node.value = _changed(node.value)
    elif kind == "name":
        if isinstance(node, ast.Attribute):
            node.attr = _SWAP_NAMES[node.attr]
        else:
            node.id = _SWAP_NAMES[node.id]
    elif kind == "args":
        node.args[0], node.args[1] = node.args[1], node.args[0]
    elif kind.startswith("drop"):
        j = int(kind[4:])
        node.body[j] = ast.Pass()
    return ast.fix_missing_locations(tree)


def _copy_repo(dest: Path) -> None:
    """The repository as git sees it (tracked files and untracked ones not ignored): tests read more
    than the package (the hub's files, the lessons, the notebooks)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


# ---------------------------------------------------------------- which tests run which line

_COVERAGE_PLUGIN = """
import json, os, coverage
_cov = coverage.Coverage(data_file=os.environ["MUTATE_COVERAGE"], source_pkgs=["course_utils"])
_cov.start()
_durations = {}
def pytest_runtest_setup(item):
    _cov.switch_context(item.nodeid)
_failed = []
def pytest_runtest_logreport(report):
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
    if report.failed:
        _failed.append(report.nodeid)
def pytest_collectreport(report):
    if report.failed:
        _failed.append(report.nodeid or "(collection)")
def pytest_sessionfinish(session):
    _cov.switch_context("")
    _cov.stop()
    _cov.save()
    with open(os.environ["MUTATE_COVERAGE"] + ".durations.json", "w") as f:
        json.dump(_durations, f)
    with open(os.environ["MUTATE_COVERAGE"] + ".failed.json", "w") as f:
        json.dump(_failed, f)
"""


@dataclass
class CoverageMap:
    lines: dict[str, dict[int, list[str]]]  # file -> line -> the tests that ran it
    durations: dict[str, float]  # test -> seconds (under coverage)

    def test_files(self, rel: str) -> list[str]:
        """The test files with at least one test that runs a line of ``rel``."""
        return sorted({t.split("::")[0] for tests in self.lines.get(rel, {}).values() for t in tests})


def _coverage_map(work: Path, env: dict, out: Path) -> CoverageMap:
    cached = out / "coverage-map.json"
    if cached.exists():
        raw = json.loads(cached.read_text())
        return CoverageMap({f: {int(k): v for k, v in d.items()} for f, d in raw["lines"].items()}, raw["durations"])
    import coverage

    (work / "_mutate_coverage.py").write_text(_COVERAGE_PLUGIN)
    data_file = work / ".mutate-coverage"
    start = time.monotonic()
    print(f"coverage map: running {len(UNIT_TESTS)} test files once ...", flush=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                    "-p", "_mutate_coverage", *UNIT_TESTS], cwd=work, env={**env, "MUTATE_COVERAGE": str(data_file)},
                   stdout=subprocess.DEVNULL, check=False)
    data = coverage.CoverageData(str(data_file))
    data.read()
    lines: dict[str, dict[int, list[str]]] = {}
    for measured in data.measured_files():
        rel = Path(measured).resolve().relative_to(work.resolve()).as_posix()
        by_line = data.contexts_by_lineno(measured)
        lines[rel] = {n: sorted(c for c in ctx if c) for n, ctx in by_line.items()}
    failed = json.loads(Path(str(data_file) + ".failed.json").read_text())
    if failed:  # a test that fails on the unmutated code would "kill" every mutant it judges
        raise SystemExit("the tests fail on the unmutated code; fix them first:\n  " + "\n  ".join(failed))
    durations = json.loads(Path(str(data_file) + ".durations.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"lines": lines, "durations": durations}))
    print(f"coverage map: {len(durations)} tests in {time.monotonic() - start:.0f} s", flush=True)
    return CoverageMap(lines, durations)


def _function_body_lines(tree: ast.AST) -> set[int]:
    """Lines inside a function's body: they run when a test calls the function, so the tests that
    ran them are the ones to run. Other lines (module level, class bodies, defaults, decorators) run
    at import time, often while the tests are collected, before any test: they get every test file
    that runs the module."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            inside.update(range(node.body[0].lineno, (node.end_lineno or node.body[0].lineno) + 1))
    return inside


def _select(rel: str, line: int, runtime_lines: set[int], cmap: CoverageMap) -> tuple[list[str], str]:
    """The tests to run against a mutant of ``rel`` at ``line``, fastest first, and why those."""
    ran = cmap.lines.get(rel, {}).get(line, [])
    if line in runtime_lines and ran:
        # then the rest of their files: a line that a module-scoped fixture runs is credited to the first
        # test that used the fixture only, though every test using it judges the result
        files = {t.split("::")[0] for t in ran}
        rest = [t for t in cmap.durations if t.split("::")[0] in files and t not in set(ran)]
        return sorted(ran, key=lambda t: cmap.durations.get(t, 0.0)) + \
            sorted(rest, key=lambda t: cmap.durations[t]), "covering"
    files = cmap.test_files(rel)
    if line not in runtime_lines:
        return files or list(UNIT_TESTS), "import-time"
    return (files, "not covered in-process") if files else ([], "no test")


# ---------------------------------------------------------------- running mutants

def _preload() -> None:
    """Import the heavy third-party modules once; each mutant's test run is a fork of this process."""
    import importlib

    for name in ("numpy", "torch", "matplotlib", "matplotlib.pyplot", "pytest", "_pytest.python", "nbformat",
                 "IPython", "ipywidgets", "nbval.plugin", "scipy"):
        with contextlib.suppress(ImportError):  # optional: a child imports what it needs
            importlib.import_module(name)
    assert not any(m == "course_utils" or m.startswith("course_utils.") for m in sys.modules)


def _child(slot: Path, tests: list[str]) -> None:
    """Runs in the forked child: pytest against the slot's copy, exit status = pytest's."""
    rc = 3
    try:
        os.setpgid(0, 0)
        os.chdir(slot)
        sys.path.insert(0, str(slot))
        fd = os.open(str(slot) + ".log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # read back on an error
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        import course_utils
        if not Path(course_utils.__file__).resolve().is_relative_to(slot.resolve()):
            os._exit(99)  # the copy is not what is imported: the run would measure nothing
        import pytest
        rc = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]))
    finally:
        os._exit(rc)


def _again(m: Mutant) -> bool:
    """Judged again by --retry: survivors, errors and timeouts (on a busy machine a timeout may be no more
    than that), and import-time kills (they ran the most tests)."""
    return m.outcome in ("survived", "timeout", "error") or m.selected == "import-time"


def run(files: list[str], sample: int, seed: int, jobs: int, out: Path, retry: list[Mutant] | None = None,
        only: set[str] | None = None, given_tests: list[str] | None = None) -> list[Mutant]:
    """Sample and judge mutants of ``files``; with ``retry`` (an earlier run's results), judge its
    survivors again and keep its other outcomes."""
    rng = random.Random(seed)
    results: list[Mutant] = [m for m in retry if not _again(m)] if retry is not None else []
    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    os.environ.pop("MPLBACKEND", None)
    os.environ["MPLBACKEND"] = "Agg"
    if jobs > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        slots = [Path(tmp) / f"slot{i}" for i in range(jobs)]
        for slot in slots:
            _copy_repo(slot)
        cmap = CoverageMap({}, {}) if given_tests else \
            _coverage_map(slots[0], {**os.environ, "PYTHONPATH": str(slots[0])}, out)
        _preload()
        queue = []
        for rel in files:
            original = (ROOT / rel).read_text(encoding="utf-8")
            tree = ast.parse(original)
            runtime_lines = _function_body_lines(tree)
            sites = _sites(tree)
            src_lines = original.splitlines()
            if retry is not None:
                by_id = {f"{k}:{kind}": (k, kind, what, line) for k, kind, what, line in sites}
                chosen = []
                for old in retry:
                    if old.file == rel and _again(old):
                        site = by_id.get(old.site)
                        if site is None or site[3] != old.line or src_lines[site[3] - 1].strip() != old.code:
                            raise SystemExit(f"{rel} changed since the run being retried ({old.site} at line "
                                             f"{old.line}): run it afresh")
                        chosen.append(site)
            elif only:
                chosen = [site for site in sites if f"{site[0]}:{site[1]}" in only]
                for site in chosen:
                    before, after = ast.unparse(tree).splitlines(), ast.unparse(_apply(tree, site)).splitlines()
                    print(f"{rel} {site[0]}:{site[1]} (line {site[3]}):")
                    print("\n".join(difflib.unified_diff(before, after, lineterm="", n=1)), flush=True)
            else:
                chosen = rng.sample(sites, min(sample, len(sites)))
            for site in chosen:
                m = Mutant(rel, site[3], site[2], code=src_lines[site[3] - 1].strip() if site[3] else "",
                           site=f"{site[0]}:{site[1]}")
                try:
                    source = ast.unparse(_apply(tree, site))
                    compile(source, rel, "exec")
                except (SyntaxError, ValueError, IndexError):
                    m.outcome = "invalid"
                    results.append(m)
                    continue
                tests, m.selected = (given_tests, "given") if given_tests else \
                    _select(rel, site[3], runtime_lines, cmap)
                if not tests:
                    m.outcome = "survived"  # no test runs this file at all
                    results.append(m)
                    continue
                budget = 200.0 if m.selected == "given" else \
                    sum(cmap.durations.get(t, 5.0) for t in tests) if m.selected == "covering" else \
                    sum(v for k, v in cmap.durations.items() if k.split("::")[0] in tests)
                queue.append((m, source, original, tests, 120 + 5 * budget))  # generous: a busy machine is slow
        print(f"{len(queue)} mutants to run in {jobs} parallel slot(s)", flush=True)
        running: dict[int, tuple] = {}
        free = list(slots)
        done = 0
        while queue or running:
            while queue and free:
                m, source, original, tests, limit = queue.pop(0)
                slot = free.pop()
                (slot / m.file).write_text(source, encoding="utf-8")
                pid = os.fork()
                if pid == 0:
                    _child(slot, tests)
                running[pid] = (m, original, slot, time.monotonic(), limit, source, tests)
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.05)
                now = time.monotonic()
                for p, (m, original, slot, started, limit, *_) in running.items():
                    if now - started > limit and not m.outcome:
                        m.outcome = "timeout"
                        try:
                            os.killpg(p, 9)
                        except ProcessLookupError:
                            pass
                continue
            m, original, slot, started, limit, source, tests = running.pop(pid)
            (slot / m.file).write_text(original, encoding="utf-8")
            free.append(slot)
            code = os.waitstatus_to_exitcode(status)
            if code == 99:
                raise SystemExit(f"the mutant run imported course_utils from outside {slot}: nothing measured")
            if not m.outcome:
                # pytest: 0 all passed, 1 a test failed, 2 interrupted (an error while collecting), 4/5 usage
                # 4 (a test id not found: a stale coverage map) and 5 (nothing collected) judge nothing
                # unless the mutant itself broke collection (a test module builds its cases on import): killed
                m.outcome = "survived" if code == 0 else "error" if code in (4, 5) else "killed"
                if m.outcome == "error":
                    log = Path(str(slot) + ".log").read_text(errors="replace")
                    files_of = sorted({t.split("::")[0] for t in tests})
                    if "ERROR collecting" in log:
                        m.outcome = "killed"
                    elif "ERROR: not found" in log and files_of != tests:
                        # the mutant changed a parametrisation (a case list): the ids the map names are gone;
                        # judge by their whole files (a test that silently vanishes is not a kill by itself)
                        m.outcome, m.selected = "", m.selected + ", ids changed: their files"
                        queue.insert(0, (m, source, original, files_of, limit * 3))
                        continue
                    else:
                        m.detail = log[-2000:]
            m.seconds = round(time.monotonic() - started, 1)
            results.append(m)
            done += 1
            print(f"[{done}] {m.outcome:9s} {m.file}:{m.line} {m.what} ({m.seconds} s, {m.selected})", flush=True)
            if done % 10 == 0:
                _write(results, out)
        _write(results, out)
    return results


def _write(results: list[Mutant], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda m: (m.file, m.line))
    (out / "mutants.json").write_text(json.dumps([asdict(m) for m in results], indent=1))
    lines = ["| file | mutants | killed | score |", "| --- | ---: | ---: | ---: |"]
    by_file: dict[str, list[Mutant]] = {}
    for m in results:
        if m.outcome not in ("invalid", "error"):  # error: the tests could not be selected
            by_file.setdefault(m.file, []).append(m)
    for f, ms in sorted(by_file.items()):
        killed = sum(m.outcome in ("killed", "timeout") for m in ms)
        lines.append(f"| `{f}` | {len(ms)} | {killed} | {100 * killed / len(ms):.0f} % |")
    lines += ["", "Survivors:", ""] + [f"- `{m.file}:{m.line}` {m.what}: `{m.code}` ({m.selected})"
                                       for m in results if m.outcome == "survived"]
    (out / "mutation.md").write_text("\n".join(lines) + "\n")


def _default_files() -> list[str]:
    skip = ("course_utils/widgets/", "course_utils/grading/")
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "course_utils").rglob("*.py")
                  if not p.relative_to(ROOT).as_posix().startswith(skip) and "__pycache__" not in p.parts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="*", help="files to mutate (default: every file of course_utils outside "
                                            "widgets/ and grading/)")
    p.add_argument("--sample", type=int, default=60, help="mutants per file (sampled)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run side by side")
    p.add_argument("--out", type=Path, default=Path("mutation-results"))
    p.add_argument("--retry", action="store_true", help="judge the survivors, timeouts and errors of the run in --out "
                   "again (after new tests; a coverage map older than the tests is rebuilt) and keep its other outcomes")
    p.add_argument("--only", help="comma-separated site ids (the `site` field of mutants.json, e.g. 412:binop): "
                                   "run just these mutants of the given file, showing each one's diff")
    p.add_argument("--tests", nargs="+", help="judge by these tests (paths or node ids) instead of the ones "
                                              "the coverage map selects")
    p.add_argument("--merge", nargs="+", type=Path, metavar="DIR", help="combine the results of earlier runs (their "
                   "--out folders; a file found in several comes from the last) into one table in --out")
    p.add_argument("--list", action="store_true", help="the files, and the test files that run each (from "
                                                       "the coverage map in --out, built if missing)")
    args = p.parse_args()
    files = args.files or _default_files()
    if args.merge:
        merged: dict[str, list[Mutant]] = {}
        for folder in args.merge:
            by_file: dict[str, list[Mutant]] = {}
            for m in json.loads((folder / "mutants.json").read_text()):
                by_file.setdefault(m["file"], []).append(Mutant(**m))
            merged.update(by_file)
        _write([m for ms in merged.values() for m in ms], args.out)
        print((args.out / "mutation.md").read_text())
        return 0
    if args.list:
        with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
            _copy_repo(Path(tmp))
            env = {**os.environ, "PYTHONPATH": tmp, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
            cmap = _coverage_map(Path(tmp), env, args.out)
        for f in files:
            print(f, "<-", " ".join(cmap.test_files(f)) or "(no test runs it)")
        return 0
    retry = None
    if args.retry:
        retry = [Mutant(**m) for m in json.loads((args.out / "mutants.json").read_text())]
        files = sorted({m.file for m in retry if _again(m)} & set(files))
        cmap_file, newest_test = args.out / "coverage-map.json", max(p.stat().st_mtime for p in (ROOT / "tests").rglob("*.py"))
        if cmap_file.exists() and cmap_file.stat().st_mtime < newest_test:
            cmap_file.unlink()  # made before the newest tests: they would never be chosen
        (args.out / "mutants.json").rename(args.out / "mutants-before-retry.json")
    only = set(args.only.split(",")) if args.only else None
    results = run(files, args.sample, args.seed, args.jobs, args.out, retry, only, args.tests)
    print((args.out / "mutation.md").read_text())
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
