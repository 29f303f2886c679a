"""The student bundle: what learners get for a lab, and nothing they should not get.

``python -m course_utils.bundle DIR`` (or ``python -m course_utils.release --bundle DIR``) writes

- ``DIR/notebooks/``: the student notebooks, generated from ``solutions/`` in memory exactly as
  ``python -m course_utils.release`` generates ``notebooks/`` (byte for byte);
- ``DIR/lessons/``: the course map (``lessons/README.md``) and the lessons, ``en/`` and ``ko/``
  (and ``figures/`` when the repository has it), without the instructor guides;
- ``DIR/README.md``: what is inside, how to open it and the install line;

and the same folder as ``DIR.tar.gz`` and ``DIR.zip`` next to it (one top-level folder named like
``DIR``; fixed timestamps and order, so the archives are the same bytes when nothing changed).
``solutions/`` is never copied, and the bundle is refused if any file in it still holds a solution
or hidden-tests marker (``### BEGIN SOLUTION``, ...).

``--branch NAME`` also commits the folder, as the whole tree of that commit, to the branch ``NAME`` of
the repository (a new branch without a parent, or a new commit on top of it, so that ``git pull`` and
nbgitpuller fast-forward); the working tree, the index and the checked-out branch are not touched.
Push it with ``git push origin NAME``.

An existing ``DIR`` is replaced only when it holds nothing but a previous bundle.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import release

__all__ = ["BUNDLE_ENTRIES", "EXCLUDED_LESSONS", "FORBIDDEN_MARKERS", "LESSON_PARTS", "Bundle", "BundleError",
           "find_forbidden", "main", "publish_branch", "write_bundle"]

FORBIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
LESSON_PARTS = ("README.md", "en", "ko", "figures")  # under lessons/; figures only when present
EXCLUDED_LESSONS = ("instructor_guide.md",)  # any file of this name, in any language folder
BUNDLE_ENTRIES = ("README.md", "notebooks", "lessons")
ARCHIVE_MTIME = 315532800  # 1980-01-01, the earliest time a zip file can store
_SKIP_NAMES = (".ipynb_checkpoints", "__pycache__", ".DS_Store")

README = """\
# Recurrent networks, from RNN to LSTM to GRU: the student notebooks

- `notebooks/`: the five notebooks of the course. Each exercise is a cell with
  `# YOUR CODE HERE` / `raise NotImplementedError()`; the check cell below it says what is wrong.
  Every notebook runs top to bottom before anything is solved.
- `lessons/`: the course map (`lessons/README.md`) and the lessons in English (`lessons/en/`)
  and Korean (`lessons/ko/`). The lessons link to `solutions/`, which your instructor hands out
  after the lab: put it next to `notebooks/` and the links work.

## Open it

On the course's JupyterHub everything is installed: open `notebooks/01_rnn.ipynb` and run the
first cell. It prints `course_utils` and the device it uses.

On your own computer (Python 3.10 or newer), install the course package once, then start JupyterLab
in this folder:

```bash
{install}
jupyter lab notebooks/01_rnn.ipynb
```
"""
INSTALL_FROM_CLONE = "python -m pip install .     # in a clone of the course repository"


class BundleError(ValueError):
    """The bundle cannot be written (or would hold something it must not); the message says why."""


@dataclass
class Bundle:
    """What was written: the folder, its archives and the files in it (relative POSIX paths)."""

    folder: Path
    files: list[str] = field(default_factory=list)
    archives: list[Path] = field(default_factory=list)
    commit: str | None = None


def _lesson_files(lessons: Path) -> list[Path]:
    found: list[Path] = []
    for part in LESSON_PARTS:
        path = lessons / part
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in sorted(path.rglob("*"))
                         if p.is_file() and p.name not in EXCLUDED_LESSONS
                         and not any(s in p.relative_to(lessons).parts for s in _SKIP_NAMES))
    return found


def find_forbidden(folder: Path) -> list[str]:
    """Files under ``folder`` that must not reach students: a ``solutions`` folder, or a file holding
    a solution or hidden-tests marker. Empty when the folder is clean."""
    problems = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_dir() and path.name == "solutions":
            problems.append(f"{rel}/: a solutions folder")
        elif path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            for marker in FORBIDDEN_MARKERS:
                if marker in text:
                    problems.append(f"{rel}: holds {marker!r}")
                    break
    return problems


def _check_dest(root: Path, dest: Path) -> None:
    dest_r, root_r = dest.resolve(), root.resolve()
    for inside in (root_r / "solutions", root_r / "notebooks", root_r / "lessons"):
        if dest_r == inside or inside in dest_r.parents:
            raise BundleError(f"expected a bundle folder outside {inside}, got {dest}")
    if dest_r == root_r or dest_r in root_r.parents:
        raise BundleError(f"expected a new folder for the bundle, got {dest}, which holds the repository")
    if dest.exists():
        if not dest.is_dir():
            raise BundleError(f"expected a folder (or nothing) at {dest}, got a file")
        other = sorted(p.name for p in dest.iterdir() if p.name not in BUNDLE_ENTRIES)
        if other:
            raise BundleError(f"expected {dest} to be empty or a previous bundle, got other entries: "
                              f"{', '.join(other)}; choose a new folder")


def _archives(folder: Path, files: list[str]) -> list[Path]:
    """``folder.tar.gz`` and ``folder.zip`` next to it, top-level folder ``folder.name``."""
    top = folder.name
    tar_path, zip_path = folder.with_name(top + ".tar.gz"), folder.with_name(top + ".zip")
    dirs = sorted({"/".join(Path(f).parts[:i]) for f in files for i in range(1, len(Path(f).parts))})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in [None, *dirs]:
            info = tarfile.TarInfo(top if name is None else f"{top}/{name}")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, ARCHIVE_MTIME
            tar.addfile(info)
        for name in files:
            data = (folder / name).read_bytes()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, ARCHIVE_MTIME
            tar.addfile(info, io.BytesIO(data))
    with open(tar_path, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in files:
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, (folder / name).read_bytes())
    return [tar_path, zip_path]


def write_bundle(root: Path, dest: Path, *, archives: bool = True, install: str | None = None) -> Bundle:
    """Write the student bundle of the repository at ``root`` into ``dest`` (see the module's doc).

    Args:
        root: the repository (holds ``solutions/`` and ``lessons/``).
        dest: the bundle folder; created, or replaced when it holds only a previous bundle.
        archives: also write ``dest.tar.gz`` and ``dest.zip``.
        install: the install line for the README (default: ``python -m pip install .`` in a clone).
    """
    root, dest = Path(root), Path(dest)
    solutions = root / release.DEFAULT_SOURCE
    expected = release.plan(solutions, root / release.DEFAULT_DEST).expected  # name -> generated bytes
    if not expected:
        raise BundleError(f"expected solution notebooks in {solutions}, found none")
    _check_dest(root, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))  # same file system as dest
    try:
        (staging / "notebooks").mkdir()
        for name, data in expected.items():
            (staging / "notebooks" / name).write_bytes(data)
        lessons = root / "lessons"
        for path in _lesson_files(lessons):
            target = staging / "lessons" / path.relative_to(lessons)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (staging / "README.md").write_text(README.replace("{install}", install or INSTALL_FROM_CLONE),
                                           encoding="utf-8")
        problems = find_forbidden(staging)
        if problems:
            raise BundleError("the bundle would give students what they must not get:\n  " + "\n  ".join(problems))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
        dest.chmod(0o755)  # mkdtemp made it 0o700
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    result = Bundle(folder=dest, files=files)
    if archives:
        result.archives = _archives(dest, files)
    return result


def _git(root: Path, *args: str, env: dict | None = None, input: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=root, env=env, input=input, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BundleError(f"git {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def publish_branch(root: Path, folder: Path, branch: str) -> str:
    """Commit ``folder``'s files as the whole tree of a commit on ``branch`` in the git repository at
    ``root``; returns the commit id. The previous tip of ``branch`` (if any) is the parent, so pulls
    fast-forward; when the tree did not change, no commit is made and the tip is returned."""
    problems = find_forbidden(folder)
    if problems:
        raise BundleError("refusing to publish; the folder holds:\n  " + "\n  ".join(problems))
    _git(root, "check-ref-format", "--branch", branch)
    ref = f"refs/heads/{branch}"
    current = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if current == branch:
        raise BundleError(f"expected a branch other than the checked-out one, got {branch!r}")
    parent = subprocess.run(["git", "rev-parse", "--verify", "--quiet", ref + "^{commit}"], cwd=root,
                            capture_output=True, text=True, check=False).stdout.strip() or None
    git_dir = _git(root, "rev-parse", "--absolute-git-dir")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_DIR": git_dir, "GIT_INDEX_FILE": str(Path(tmp) / "index"),
               "GIT_WORK_TREE": str(folder.resolve())}
        _git(folder, "add", "--all", "--force", ".", env=env)
        tree = _git(folder, "write-tree", env=env)
    if parent and _git(root, "rev-parse", parent + "^{tree}") == tree:
        return parent
    source = _git(root, "rev-parse", "--short", "HEAD")
    args = ["commit-tree", tree, "-m", f"student bundle, generated from {source} by python -m course_utils.bundle"]
    if parent:
        args[2:2] = ["-p", parent]
    commit = _git(root, *args)
    _git(root, "update-ref", ref, commit, *([parent] if parent else []))
    return commit


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.bundle",
                                     description="Write the student bundle: notebooks, lessons and a README, "
                                                 "never the solutions; as a folder, .tar.gz and .zip.")
    parser.add_argument("dest", type=Path, help="the bundle folder (new, or a previous bundle)")
    parser.add_argument("--root", type=Path, help="the repository (default: the one holding the current folder)")
    parser.add_argument("--no-archives", action="store_true", help="write only the folder")
    parser.add_argument("--install", help="install line for the README (default: pip install . in a clone)")
    parser.add_argument("--branch", help="also commit the bundle as the tree of this git branch (for nbgitpuller)")
    args = parser.parse_args(argv)
    root = args.root if args.root is not None else release.find_root()
    try:
        result = write_bundle(root, args.dest, archives=not args.no_archives, install=args.install)
        if args.branch:
            result.commit = publish_branch(root, result.folder, args.branch)
    except (BundleError, release.ReleaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    notebooks = sum(f.startswith("notebooks/") for f in result.files)
    print(f"{result.folder}: {len(result.files)} files ({notebooks} notebooks), no solutions")
    for archive in result.archives:
        print(f"wrote {archive}")
    if result.commit:
        print(f"branch {args.branch} at {result.commit[:12]}: publish with `git push origin {args.branch}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
