"""Generate the student notebooks (``notebooks/``) from the solution notebooks (``solutions/``).

``solutions/`` is the single source. For every ``solutions/NAME.ipynb`` this writes
``notebooks/NAME.ipynb`` where

- in every cell whose nbgrader metadata says ``solution: true``, each region from a
  ``### BEGIN SOLUTION`` line to its ``### END SOLUTION`` line becomes, at the marker's
  indentation, ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` (code cells) or
  ``YOUR ANSWER HERE`` (Markdown cells); a solution cell without markers is replaced whole,
  as nbgrader does;
- every ``### BEGIN HIDDEN TESTS`` .. ``### END HIDDEN TESTS`` region of a grade cell is removed;
- every code cell loses its outputs and execution count; cells lose their ``execution``
  timing metadata; the notebook loses its stored widget state (``metadata.widgets``);
- cells get the lock flags nbgrader's ``generate_assignment`` writes (its ``LockCells``), which
  JupyterLab enforces: a check cell (``grade: true, solution: false``) becomes ``editable: false,
  deletable: false`` and ``nbgrader.locked: true``; a solution cell ``deletable: false``; a
  read-only cell (``locked: true``, neither grade nor solution) not editable and not deletable;
- cell ids and all other metadata are kept, so the output is the same bytes on every run.

Usage::

    python -m course_utils.release            # write notebooks/ from solutions/
    python -m course_utils.release --check    # exit 1 and name the stale notebooks if any
    python -m course_utils.release --bundle DIR   # the student bundle (course_utils.bundle)

A marker outside a solution cell (or a hidden-tests marker outside a grade cell), a marker
line with anything else on it, nested or unbalanced markers are errors naming the notebook
and the cell.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import nbformat.v4.nbjson

__all__ = ["ReleaseError", "release_notebook", "release_source", "render", "release_text", "release_dir",
           "check_dir", "plan", "Plan", "find_root", "main", "CODE_STUB", "TEXT_STUB"]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
_MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
_MARKER_WORDS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)
DEFAULT_SOURCE = "solutions"
DEFAULT_DEST = "notebooks"


class ReleaseError(ValueError):
    """A solution notebook that cannot be turned into a student notebook; the message says where."""


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _where(notebook: str, index: int, cell) -> str:
    meta = _nbgrader(cell)
    name = f", grade_id {meta['grade_id']!r}" if meta.get("grade_id") else ""
    cell_id = f", id {cell['id']!r}" if cell.get("id") else ""
    return f"{notebook}: cell {index}{cell_id}{name}"


def _marker(line: str, where: str, lineno: int) -> str | None:
    """The marker on this line, None if there is none; a garbled marker is an error."""
    stripped = line.strip()
    if stripped in _MARKERS:
        return stripped
    for marker, words in zip(_MARKERS, _MARKER_WORDS):
        if words in line:
            raise ReleaseError(f"{where}, line {lineno}: expected a marker line {marker!r} alone on its line, "
                               f"got {stripped!r}")
    return None


def release_source(source: str, *, cell_type: str = "code", solution: bool = True, grade: bool = False,
                   where: str = "<cell>") -> str:
    """The student version of one cell's source.

    Args:
        source: the cell's source text.
        cell_type: "code" (stub ``# YOUR CODE HERE`` / ``raise NotImplementedError()``) or
            "markdown" (stub ``YOUR ANSWER HERE``).
        solution, grade: the cell's nbgrader flags; solution markers need ``solution``,
            hidden-test markers need ``grade``.
        where: names the notebook and cell in error messages.
    """
    stub = CODE_STUB if cell_type == "code" else TEXT_STUB
    lines = source.split("\n")
    out: list[str] = []
    region: tuple[str, int] | None = None  # (begin marker, line number)
    found_solution = False
    for lineno, line in enumerate(lines, start=1):
        marker = _marker(line, where, lineno)
        if marker is None:
            if region is None:
                out.append(line)
            continue
        if marker in (BEGIN_SOLUTION, END_SOLUTION) and not solution:
            raise ReleaseError(f"{where}, line {lineno}: {marker!r} in a cell that is not a solution cell "
                               f"(expected nbgrader metadata solution: true)")
        if marker in (BEGIN_HIDDEN, END_HIDDEN) and not grade:
            raise ReleaseError(f"{where}, line {lineno}: {marker!r} in a cell that is not a grade cell "
                               f"(expected nbgrader metadata grade: true)")
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if region is not None:
                raise ReleaseError(f"{where}, line {lineno}: {marker!r} inside the region opened by "
                                   f"{region[0]!r} on line {region[1]}; expected its END marker first")
            region = (marker, lineno)
            if marker == BEGIN_SOLUTION:
                found_solution = True
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(indent + s for s in stub)
        else:
            begin = BEGIN_SOLUTION if marker == END_SOLUTION else BEGIN_HIDDEN
            if region is None or region[0] != begin:
                opened = f" (the open region is {region[0]!r} from line {region[1]})" if region else ""
                raise ReleaseError(f"{where}, line {lineno}: {marker!r} without a matching {begin!r} before it"
                                   f"{opened}")
            region = None
    if region is not None:
        end = END_SOLUTION if region[0] == BEGIN_SOLUTION else END_HIDDEN
        raise ReleaseError(f"{where}, line {region[1]}: {region[0]!r} is never closed; expected {end!r}")
    if solution and not found_solution:
        return "\n".join(stub)  # nbgrader: a solution cell without markers is all solution
    return "\n".join(out)


def lock_cell(cell) -> None:
    """Write nbgrader's lock flags into one cell's metadata, as ``nbgrader generate_assignment`` does.

    A check cell (grade, not solution) is not editable, not deletable and nbgrader-locked; a solution
    cell (a manually graded answer included) is not deletable, and stays editable; a read-only cell
    (nbgrader-locked, neither grade nor solution) is neither editable nor deletable. Other cells are
    left as they are.
    """
    meta = _nbgrader(cell)
    solution, grade, locked = bool(meta.get("solution")), bool(meta.get("grade")), bool(meta.get("locked"))
    if solution:
        cell.metadata["deletable"] = False
    elif grade or locked:
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
        if grade:
            cell.metadata["nbgrader"]["locked"] = True


def _stable_id(notebook: str, index: int) -> str:
    return hashlib.sha1(f"{notebook}:{index}".encode()).hexdigest()[:8]


def release_notebook(nb, name: str = "<notebook>"):
    """The student version of a solution notebook (a new ``NotebookNode``; ``nb`` is not changed)."""
    if nb.get("nbformat") != 4:
        raise ReleaseError(f"{name}: expected an nbformat 4 notebook, got nbformat {nb.get('nbformat')!r}")
    student = copy.deepcopy(nb)
    student.metadata.pop("widgets", None)
    has_ids = student.get("nbformat_minor", 0) >= 5
    for index, cell in enumerate(student.cells):
        meta = _nbgrader(cell)
        where = _where(name, index, cell)
        if cell.cell_type in ("code", "markdown"):
            cell.source = release_source(cell.source, cell_type=cell.cell_type, solution=bool(meta.get("solution")),
                                         grade=bool(meta.get("grade")), where=where)
        else:  # raw cells are copied, but a marker there is as wrong as anywhere else
            release_source(cell.source, cell_type="raw", solution=False, grade=False, where=where)
        cell.metadata.pop("execution", None)
        lock_cell(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if has_ids and not cell.get("id"):
            cell.id = _stable_id(name, index)  # nbformat would otherwise invent a random one on writing
    return student


def render(nb) -> str:
    """The notebook as text: ``nbformat.writes`` plus a trailing newline (what ``nbformat.write`` stores)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _read(text: str, name: str):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{name}: expected a notebook (JSON), got invalid JSON: {exc}") from exc
    if not isinstance(data, dict) or "cells" not in data:
        raise ReleaseError(f"{name}: expected a notebook with a 'cells' list, got {type(data).__name__}")
    if data.get("nbformat") != 4:
        raise ReleaseError(f"{name}: expected an nbformat 4 notebook, got nbformat {data.get('nbformat')!r}")
    # not nbformat.reads: it would give cells without an id random ones, and the output would change every run
    return nbformat.v4.nbjson.JSONReader().to_notebook(data)


def release_text(text: str, name: str = "<notebook>") -> str:
    """A solution notebook's JSON text -> the student notebook's JSON text."""
    return render(release_notebook(_read(text, name), name))


# -------------------------------------------------------------- directories
@dataclass
class Plan:
    """What the student folder should hold, and how it differs from what it holds."""

    expected: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes
    stale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def _notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb")) if folder.is_dir() else []


def plan(source: Path, dest: Path) -> Plan:
    """Release every notebook of ``source`` in memory and compare with ``dest``."""
    result = Plan()
    for path in _notebooks(source):
        result.expected[path.name] = release_text(path.read_text(encoding="utf-8"), str(path)).encode("utf-8")
    for name, data in result.expected.items():
        target = dest / name
        if not target.exists():
            result.missing.append(name)
        elif target.read_bytes() != data:
            result.stale.append(name)
    result.extra = [p.name for p in _notebooks(dest) if p.name not in result.expected]
    return result


def _check_folders(source: Path, dest: Path) -> None:
    if source.resolve() == dest.resolve():
        raise ReleaseError(f"expected different source and destination folders, got {source} for both")


def release_dir(source: Path, dest: Path) -> Plan:
    """Write ``dest/NAME.ipynb`` for every ``source/NAME.ipynb``; remove notebooks in ``dest`` with no source."""
    _check_folders(source, dest)
    result = plan(source, dest)
    if result.expected:
        dest.mkdir(parents=True, exist_ok=True)
    for name in result.stale + result.missing:
        (dest / name).write_bytes(result.expected[name])
    for name in result.extra:
        (dest / name).unlink()
    return result


def check_dir(source: Path, dest: Path) -> list[str]:
    """Problems that make ``dest`` out of date with ``source`` (empty when it is up to date)."""
    _check_folders(source, dest)
    result = plan(source, dest)
    return ([f"{dest / n}: out of date with {source / n}" for n in result.stale]
            + [f"{dest / n}: missing (generated from {source / n})" for n in result.missing]
            + [f"{dest / n}: has no source notebook in {source}" for n in result.extra])


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder at or above ``start`` (default: cwd) holding pyproject.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.release",
                                     description="Generate the student notebooks from the solution notebooks.")
    parser.add_argument("--source", type=Path, help=f"solution notebooks (default: ROOT/{DEFAULT_SOURCE})")
    parser.add_argument("--dest", type=Path, help=f"student notebooks (default: ROOT/{DEFAULT_DEST})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the student notebooks are out of date")
    parser.add_argument("--bundle", type=Path, metavar="DIR",
                        help="write the student bundle (no solutions) to DIR, DIR.tar.gz and DIR.zip instead; "
                             "see python -m course_utils.bundle --help")
    args = parser.parse_args(argv)
    if args.bundle is not None:
        from . import bundle
        return bundle.main([str(args.bundle)])
    root = find_root()
    source = args.source if args.source is not None else root / DEFAULT_SOURCE
    dest = args.dest if args.dest is not None else root / DEFAULT_DEST
    try:
        if args.check:
            problems = check_dir(source, dest)
            for line in problems:
                print(line, file=sys.stderr)
            if problems:
                print(f"{len(problems)} student notebook(s) out of date: run `python -m course_utils.release`",
                      file=sys.stderr)
                return 1
            print(f"{dest}: up to date with {source} ({len(_notebooks(source))} notebooks)")
            return 0
        result = release_dir(source, dest)
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in result.stale + result.missing:
        print(f"wrote {dest / name}")
    for name in result.extra:
        print(f"removed {dest / name} (no source notebook)")
    print(f"{dest}: {len(result.expected)} notebooks from {source}, {len(result.stale) + len(result.missing)} "
          f"written, {len(result.extra)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
