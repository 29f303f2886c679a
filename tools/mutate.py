"""Mutation testing for course_utils: how many small bugs would the tests let through?

Each mutant is one small change to one file of a *copy* of the package (the working tree is never
touched): an arithmetic or comparison operator swapped, a number changed, ``True``/``False``
flipped, ``sigmoid`` for ``tanh`` (and back), ``min``/``max``, ``and``/``or``, a statement
removed, the first two arguments of a call swapped. The tests that cover the file run against
the mutant (``pytest -x``, stopping at the first failure); a mutant is *killed* when they fail
(or time out) and *survives* when they pass. The score is killed / mutants.

    python tools/mutate.py                       # every file in TARGETS, 60 sampled mutants each
    python tools/mutate.py course_utils/checks/rnn.py --sample 20 --seed 1
    python tools/mutate.py --list                # the files and the tests that cover them

It is a measurement, not a CI gate: a full run takes hours on two cores. Results are written to
``--out`` (JSON with every mutant, and a Markdown table with the survivors) and summarised on stdout.
"""

from __future__ import annotations

import argparse
import ast
import copy
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
#: file -> the tests that cover it (run against each of its mutants)
TARGETS = {
    "course_utils/functional.py": ["tests/test_gradients_independent.py", "tests/test_modules.py", "tests/test_checks_rnn.py", "tests/test_checks_lstm_gru.py",
                                   "tests/test_torch_parity.py", "tests/test_checks.py"],
    "course_utils/modules.py": ["tests/test_modules.py", "tests/test_bad_input.py", "tests/test_torch_parity.py"],
    "course_utils/packing.py": ["tests/test_packing.py", "tests/test_torch_parity.py"],
    "course_utils/gradients.py": ["tests/test_gradients_independent.py", "tests/test_data_training.py", "tests/test_checks.py"],
    "course_utils/data.py": ["tests/test_data_training.py"],
    "course_utils/training.py": ["tests/test_data_training.py"],
    "course_utils/release.py": ["tests/test_release.py"],
    "course_utils/checks/harness.py": ["tests/test_checks.py", "tests/test_checks_contract.py"],
    "course_utils/checks/result.py": ["tests/test_checks.py", "tests/test_checks_contract.py"],
    "course_utils/checks/rnn.py": ["tests/test_checks.py", "tests/test_checks_contract.py", "tests/test_checks_rnn.py"],
    "course_utils/checks/lstm.py": ["tests/test_checks.py", "tests/test_checks_contract.py",
                                    "tests/test_checks_lstm_gru.py"],
    "course_utils/checks/gru.py": ["tests/test_checks.py", "tests/test_checks_contract.py",
                                   "tests/test_checks_lstm_gru.py"],
    "course_utils/checks/clipping.py": ["tests/test_checks.py", "tests/test_checks_contract.py"],
    "course_utils/checks/adding.py": ["tests/test_checks.py"],
    "course_utils/checks/static.py": ["tests/test_checks.py", "tests/test_static.py"],
    "course_utils/checks/rnn_forward.py": ["tests/test_checks_rnn.py", "tests/test_checks_contract.py"],
    "course_utils/checks/bptt.py": ["tests/test_checks_rnn.py", "tests/test_checks_contract.py"],
    "course_utils/checks/loops.py": ["tests/test_checks_lstm_gru.py", "tests/test_checks_contract.py"],
    "course_utils/checks/lstm_backward.py": ["tests/test_checks_lstm_gru.py", "tests/test_checks_contract.py"],
    "course_utils/checks/lm.py": ["tests/test_lm.py", "tests/test_checks_contract.py"],
    "course_utils/checks/practice.py": ["tests/test_practice.py", "tests/test_checks_contract.py"],
    "course_utils/lm.py": ["tests/test_lm.py"],
    "course_utils/practice.py": ["tests/test_practice.py"],
}
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
    outcome: str = ""  # killed, survived, timeout, invalid
    seconds: float = 0.0


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
                                                                           for a in node.args[:2]):
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
    for name in ("course_utils", "tests", "solutions", "notebooks", "lessons", "docs"):
        src = ROOT / name
        if src.exists():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    for name in ("pyproject.toml", "conftest.py", "README.md", "environment.yml"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)


def run(files: list[str], sample: int, seed: int, timeout: float, out: Path) -> list[Mutant]:
    rng = random.Random(seed)
    results: list[Mutant] = []
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MPLBACKEND", None)
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        work = Path(tmp)
        _copy_repo(work)
        env["PYTHONPATH"] = str(work)
        for rel in files:
            original = (ROOT / rel).read_text(encoding="utf-8")
            tree = ast.parse(original)
            sites = _sites(tree)
            chosen = rng.sample(sites, min(sample, len(sites)))
            tests = [t for t in TARGETS.get(rel, []) if (ROOT / t).exists()]
            if rel.startswith("course_utils/checks/") and not rel.endswith("adding.py"):
                tests += ["-k", "not adding_model"]  # the model check trains models: minutes, and it has its own file
            for site in chosen:
                m = Mutant(rel, site[3], site[2])
                try:
                    source = ast.unparse(_apply(tree, site))
                    compile(source, rel, "exec")
                except (SyntaxError, ValueError, IndexError):
                    m.outcome = "invalid"
                    results.append(m)
                    continue
                (work / rel).write_text(source, encoding="utf-8")
                start = time.monotonic()
                try:
                    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                           "-o", "addopts=", *tests], cwd=work, env=env, capture_output=True,
                                          timeout=timeout)
                    m.outcome = "survived" if proc.returncode == 0 else "killed"
                except subprocess.TimeoutExpired:
                    m.outcome = "timeout"
                m.seconds = round(time.monotonic() - start, 1)
                results.append(m)
                print(f"{m.outcome:9s} {rel}:{m.line} {m.what} ({m.seconds} s)", flush=True)
            (work / rel).write_text(original, encoding="utf-8")
            _write(results, out)
    return results


def _write(results: list[Mutant], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "mutants.json").write_text(json.dumps([asdict(m) for m in results], indent=1))
    lines = ["| file | mutants | killed | score |", "| --- | ---: | ---: | ---: |"]
    by_file: dict[str, list[Mutant]] = {}
    for m in results:
        if m.outcome != "invalid":
            by_file.setdefault(m.file, []).append(m)
    for f, ms in by_file.items():
        killed = sum(m.outcome in ("killed", "timeout") for m in ms)
        lines.append(f"| `{f}` | {len(ms)} | {killed} | {100 * killed / len(ms):.0f} % |")
    lines += ["", "Survivors:", ""] + [f"- `{m.file}:{m.line}` {m.what}" for m in results if m.outcome == "survived"]
    (out / "mutation.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="*", help="files to mutate (default: every file in TARGETS)")
    p.add_argument("--sample", type=int, default=60, help="mutants per file (sampled)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=600, help="seconds per mutant's test run")
    p.add_argument("--out", type=Path, default=Path("mutation-results"))
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    if args.list:
        for f, tests in TARGETS.items():
            print(f, "<-", " ".join(t for t in tests if (ROOT / t).exists()))
        return 0
    files = args.files or list(TARGETS)
    results = run(files, args.sample, args.seed, args.timeout, args.out)
    print((args.out / "mutation.md").read_text())
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
