"""What the grader trusts, recorded once per batch: the course package's files and each exercise's points."""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ._notebook import EXERCISES, SKIP_TAGS, normalized


@dataclass(frozen=True)
class Course:
    """What the grader trusts, recorded once per batch: the package's files (SHA-256) and each exercise's points.

    ``checked_by`` lists the files that ``course_utils.checks`` is made of (itself and what it imports):
    the digest covers those and the points, so an edit of a widget does not invalidate ``--resume``.
    """

    package_dir: str
    hashes: dict
    points: dict
    checked_by: tuple = ()
    check_sources: dict = field(default_factory=dict)  # check_<id> -> normalized source in solutions/
    skip_sources: frozenset = frozenset()  # normalized sources of the cells tagged demo/training
    repo_dir: str = ""

    @property
    def digest(self) -> str:
        relevant = {name: self.hashes[name] for name in self.checked_by if name in self.hashes}
        blob = json.dumps({"hashes": relevant, "points": self.points, "skip": sorted(self.skip_sources)},
                          sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_course() -> Course:
    """Hash ``course_utils/**/*.py``; read each exercise's points from ``solutions/`` next to the package (else 1)."""
    package = Path(__file__).resolve().parent.parent
    hashes = {p.relative_to(package).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(package.rglob("*.py")) if "__pycache__" not in p.parts}
    points = {name: 1.0 for name in EXERCISES}
    check_sources, skip = {}, set()
    for nb_path in sorted((package.parent / "solutions").glob("*.ipynb")):
        try:
            cells = json.loads(nb_path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            meta = cell.get("metadata", {}).get("nbgrader", {})
            source = "".join(cell.get("source", [])) if isinstance(cell.get("source"), list) else str(
                cell.get("source", ""))
            name = str(meta.get("grade_id", "")).removeprefix("check_")
            if meta.get("grade") and name in points and isinstance(meta.get("points"), (int, float)):
                points[name] = float(meta["points"])
                check_sources[f"check_{name}"] = normalized(source)
            tags = cell.get("metadata", {}).get("tags", [])
            if not meta.get("solution") and isinstance(tags, list) and set(tags) & set(SKIP_TAGS):
                skip.add(normalized(source))
    return Course(str(package), hashes, points, tuple(sorted(_imported_files(package, "checks/__init__.py"))),
                  check_sources, frozenset(skip), str(package.parent))


def _imported_files(package: Path, start: str) -> set[str]:
    """``start`` and every course_utils file it imports, transitively (read from the source, nothing is run)."""
    seen, todo = set(), [start, "__init__.py"]
    while todo:
        rel = todo.pop()
        if rel in seen or not (package / rel).is_file():
            continue
        seen.add(rel)
        parts = rel.removesuffix(".py").split("/")
        here = parts[:-1]  # the package this file is in (for __init__.py: the package itself)
        for node in ast.walk(ast.parse((package / rel).read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = (node.module or "").split(".") if node.module else []
                if node.level:
                    base = here[:len(here) - node.level + 1] + base
                elif base[:1] == ["course_utils"]:
                    base = base[1:]
                else:
                    continue
                targets = [base] + [base + [alias.name] for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "course_utils"]
            for t in targets:
                todo += ["/".join(t) + ".py", "/".join(t + ["__init__.py"])] if t else []
                todo += ["/".join(t[:k]) + "/__init__.py" for k in range(1, len(t))]
    return seen
