"""Reading a submission: is it a notebook, which exercises does it hold, which cells run.

Nothing here executes code. A submission that is not a notebook (not UTF-8, not JSON, JSON
without cells, a schema nbformat cannot read) is *invalid*; an nbformat 3 notebook is
converted to version 4 and graded.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass, field

import nbformat

from ..checks.registry import EXERCISES as _REGISTRY

#: grade_id of each exercise -> the function the learner writes (the course's registry, in its order)
EXERCISES: dict[str, str] = {grade_id: e.function for grade_id, e in _REGISTRY.items()}
#: cell tags an author puts on demonstrations and training runs: the grader leaves those cells out
SKIP_TAGS = ("demo", "training")
_CHECK_CALL = re.compile(r"\bcheck_\w+\s*\(")


class InvalidSubmission(Exception):
    """The file cannot be graded as a notebook; the message says why (shown in the CSV)."""


@dataclass(frozen=True)
class Cell:
    """A code cell of the submission. ``number`` counts every cell from 1, as the notebook shows them."""

    number: int
    source: str
    grade_id: str | None
    runs: bool  # False for check cells (the grader runs its own checks) and the course's demo cells
    why_not: str = ""


def normalized(source: str) -> str:
    """A cell's source as compared with the course's: trailing spaces and blank lines at the ends dropped."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def clean_text(text: str) -> tuple[str, bool]:
    """``text`` with lone surrogates (not valid Unicode, cannot be sent to a kernel) replaced; and whether any were."""
    fixed = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return fixed, fixed != text


@dataclass
class Plan:
    cells: list[Cell]
    exercises: list[str]  # recognised grade_ids, in the course's order
    defining_cell: dict[str, int]  # exercise -> number of the cell that should define its function
    notes: list[str] = field(default_factory=list)


def read_notebook(data: bytes) -> tuple[nbformat.NotebookNode, list[str]]:
    """Parse the bytes of a submission into an nbformat 4 notebook, or raise :class:`InvalidSubmission`."""
    notes = []
    if data.startswith(b"\x89PNG") or b"\x00" in data[:4096]:
        raise InvalidSubmission("not a notebook: a binary file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidSubmission("not a notebook: not UTF-8 text") from None
    if not text.strip():
        raise InvalidSubmission("not a notebook: the file is empty")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSubmission(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(raw, dict) or not ("cells" in raw or "worksheets" in raw):
        raise InvalidSubmission("not a notebook: JSON without cells")
    version = raw.get("nbformat")
    if not isinstance(version, int) or version < 3:
        raise InvalidSubmission(f"not a notebook nbformat can read (nbformat {version!r})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001  (nbformat raises many kinds; all mean "cannot read this")
        raise InvalidSubmission(f"not a notebook nbformat can read: {type(exc).__name__}: {str(exc)[:200]}") from None
    if version == 3:
        notes.append("converted from nbformat 3 to 4")
    if not isinstance(nb.get("cells"), list):
        raise InvalidSubmission("not a notebook: no list of cells")
    return nb, notes


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _is_check_source(source: str) -> bool:
    """True when every statement of the cell is a call of a ``check_*`` function (a check cell without metadata)."""
    if not _CHECK_CALL.search(source):
        return False
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    if not tree.body:
        return False
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not isinstance(call, ast.Call):
            return False
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if not name.startswith("check_"):
            return False
    return True


def _scope(nodes: list[ast.AST]) -> tuple[set[str], set[str]]:
    """(names bound, names read but not bound) in one scope; functions and classes inside are scopes of their own,
    whose free names count as reads here."""
    binds, reads, inner = set(), set(), []

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                binds.add(node.name)
                for d in node.decorator_list:
                    visit(d)
            for d in node.args.defaults + node.args.kw_defaults:
                if d is not None:
                    visit(d)
            params = {a.arg for a in node.args.args + node.args.posonlyargs + node.args.kwonlyargs}
            params |= {a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None}
            body = node.body if isinstance(node.body, list) else [node.body]
            inner.append((params, body))
            return
        if isinstance(node, ast.ClassDef):
            binds.add(node.name)
            for b in node.bases + node.decorator_list:
                visit(b)
            inner.append((set(), node.body))
            return
        if isinstance(node, ast.Name):
            (binds if isinstance(node.ctx, (ast.Store, ast.Del)) else reads).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            binds.update((a.asname or a.name).split(".")[0] for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for n in nodes:
        visit(n)
    free = set(reads)
    for params, body in inner:
        b, r = _scope(body)
        free |= r - b - params
    return binds, free - binds if False else free


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds at its top level, names it reads from outside: its top level's reads and the free names
    of its functions); a cell that does not parse binds and reads nothing."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set(), set()
    return _scope(tree.body)


def _keep_what_is_needed(cells: list[Cell]) -> list[Cell]:
    """Run a demo/training cell after all when a cell that runs reads a name it binds (to a fixed point)."""
    skipped = [c for c in cells if not c.runs and c.why_not.startswith("a demonstration")]
    if not skipped:
        return cells
    names = {c.number: _names(c.source) for c in cells}
    running = {c.number for c in cells if c.runs}
    changed = True
    while changed:
        changed = False
        needed = set().union(*(names[n][1] for n in running)) if running else set()
        for c in skipped:
            if c.number not in running and names[c.number][0] & needed:
                running.add(c.number)
                changed = True
    return [Cell(c.number, c.source, c.grade_id, True, "") if c.number in running and not c.runs else c
            for c in cells]


def plan(nb: nbformat.NotebookNode, skip_sources: frozenset = frozenset()) -> Plan:
    """The code cells to run, the exercises recognised by their nbgrader grade_id, and where each is defined.

    ``skip_sources``: normalized sources of the course's cells tagged demo/training; a cell of the
    submission with exactly that source is left out (a learner's own or edited cell always runs).
    """
    cells, found, defining, notes = [], set(), {}, []
    for number, cell in enumerate(nb.cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        meta = meta if isinstance(meta, dict) else {}
        grade_id = meta.get("grade_id") if isinstance(meta.get("grade_id"), str) else None
        source, fixed = clean_text(_source(cell))
        if fixed:
            notes.append(f"cell {number} holds characters that are not valid Unicode; they were replaced by U+FFFD")
        is_check = bool(meta.get("grade")) and not meta.get("solution")
        if grade_id:
            name = grade_id.removeprefix("check_")
            if name in EXERCISES:
                found.add(name)
                if not is_check and grade_id == name:
                    defining.setdefault(name, number)
        why = ""
        if is_check or _is_check_source(source):
            why = "a check cell: the grader runs its own check"
        elif not meta.get("solution") and skip_sources and normalized(source) in skip_sources:
            why = "a demonstration or training cell of the course (tagged), not needed for grading"
        cells.append(Cell(number, source, grade_id, not why and bool(source.strip()), why))
    cells = _keep_what_is_needed(cells)
    if not found:  # no nbgrader metadata left: recognise the exercises by the functions the cells define
        for c in cells:
            for name, function in EXERCISES.items():
                if re.search(rf"^\s*def\s+{function}\s*\(", c.source, re.MULTILINE):
                    found.add(name)
                    defining.setdefault(name, c.number)
        if found:
            notes.append("no nbgrader metadata: exercises recognised by the functions the notebook defines")
    return Plan(cells, [e for e in EXERCISES if e in found], defining, notes)
