"""Tests of course_utils.bundle: the student bundle never holds solutions."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from course_utils import release
from course_utils.bundle import BundleError, find_forbidden, main, publish_branch, write_bundle

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dest = tmp_path_factory.mktemp("out") / "rnn-course"
    return write_bundle(ROOT, dest)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bundle_holds_no_solutions_folder_and_no_solution_region(built):
    folder = built.folder
    assert not any(p.name == "solutions" for p in folder.rglob("*"))
    for name, data in _tree(folder).items():
        text = data.decode("utf-8")
        for marker in ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS"):
            assert marker not in text, f"{name} holds {marker!r}"
    assert find_forbidden(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "lessons", "notebooks"]


def test_bundle_notebooks_are_the_generated_ones_byte_for_byte(built):
    solutions = sorted((ROOT / "solutions").glob("*.ipynb"))
    assert len(solutions) >= 5
    notebooks = sorted((built.folder / "notebooks").iterdir())
    assert [p.name for p in notebooks] == [p.name for p in solutions]
    for source, written in zip(solutions, notebooks):
        assert written.read_text(encoding="utf-8") == release.release_text(source.read_text(encoding="utf-8"))
        nb = json.loads(written.read_text(encoding="utf-8"))
        assert "raise NotImplementedError()" in "".join("".join(c["source"]) for c in nb["cells"])
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def test_bundle_has_the_lessons_without_the_instructor_guides(built):
    lessons = built.folder / "lessons"
    for lang in ("en", "ko"):
        expected = sorted(p.name for p in (ROOT / "lessons" / lang).glob("*.md") if p.name != "instructor_guide.md")
        assert sorted(p.name for p in (lessons / lang).glob("*.md")) == expected
        assert (lessons / lang / "01_rnn.md").read_bytes() == (ROOT / "lessons" / lang / "01_rnn.md").read_bytes()
    assert (lessons / "README.md").is_file()
    assert not list(lessons.rglob("instructor_guide.md"))
    assert (lessons / "figures").is_dir() == (ROOT / "lessons" / "figures").is_dir()


def test_readme_gives_the_install_line_and_the_first_notebook(built):
    readme = (built.folder / "README.md").read_text(encoding="utf-8")
    assert "python -m pip install ." in readme
    assert "jupyter lab notebooks/01_rnn.ipynb" in readme


def test_archives_hold_the_folder_under_one_top_folder_and_nothing_else(built):
    tar_path, zip_path = built.archives
    assert tar_path.name == "rnn-course.tar.gz" and zip_path.name == "rnn-course.zip"
    expected = {f"rnn-course/{name}": data for name, data in _tree(built.folder).items()}
    with tarfile.open(tar_path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        assert all(m.name == "rnn-course" or m.name.startswith("rnn-course/") for m in tar.getmembers())
    assert members == expected
    with zipfile.ZipFile(zip_path) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == expected


def test_tar_lists_each_folder_once_then_the_files_with_fixed_modes_and_times(tmp_path):
    bundle = write_bundle(_fake_repo(tmp_path), tmp_path / "course")
    dirs = sorted(p.relative_to(bundle.folder).as_posix() for p in bundle.folder.rglob("*") if p.is_dir())
    assert "lessons/en" in dirs
    epoch_1980 = 315532800
    expected = [("course", tarfile.DIRTYPE, 0o755, epoch_1980)]
    expected += [(f"course/{d}", tarfile.DIRTYPE, 0o755, epoch_1980) for d in dirs]
    expected += [(f"course/{f}", tarfile.REGTYPE, 0o644, epoch_1980) for f in bundle.files]
    with tarfile.open(bundle.archives[0]) as tar:
        assert [(m.name, m.type, m.mode, m.mtime) for m in tar.getmembers()] == expected
    with zipfile.ZipFile(bundle.archives[1]) as zf:
        assert [(i.filename, i.date_time, i.external_attr >> 16) for i in zf.infolist()] == \
            [(f"course/{f}", (1980, 1, 1, 0, 0, 0), 0o644) for f in bundle.files]


def test_tar_gz_header_holds_no_file_name_and_no_time(tmp_path):
    header = write_bundle(_fake_repo(tmp_path), tmp_path / "course").archives[0].read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"  # gzip, deflate
    assert header[3] == 0  # flags: no file name stored
    assert header[4:8] == bytes(4)  # mtime 0: no time stored


def test_a_second_bundle_replaces_the_first_with_the_same_bytes(built, tmp_path):
    copy = tmp_path / "rnn-course"
    first = write_bundle(ROOT, copy)
    (copy / "notebooks" / "stale.ipynb").write_text("{}")
    second = write_bundle(ROOT, copy)
    assert _tree(copy) == _tree(built.folder)
    for a, b in zip(first.archives, built.archives):
        assert a.read_bytes() == b.read_bytes()  # deterministic archives
    assert [p.name for p in second.archives] == ["rnn-course.tar.gz", "rnn-course.zip"]


def test_a_folder_with_other_files_or_inside_the_repository_is_refused(tmp_path):
    other = tmp_path / "home"
    other.mkdir()
    (other / "my_work.ipynb").write_text("{}")
    with pytest.raises(BundleError, match=r"empty or a previous bundle, got other entries: my_work.ipynb"):
        write_bundle(ROOT, other)
    assert (other / "my_work.ipynb").read_text() == "{}"
    for inside in (ROOT / "solutions" / "x", ROOT / "notebooks", ROOT):
        with pytest.raises(BundleError, match="expected"):
            write_bundle(ROOT, inside, archives=False)


def _fake_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "01_rnn.ipynb", root / "solutions")
    shutil.copytree(ROOT / "lessons", root / "lessons")
    (root / "pyproject.toml").write_text("")
    return root


def test_a_folder_holding_the_repository_is_refused_even_when_it_looks_like_a_bundle(tmp_path):
    root = _fake_repo(tmp_path / "old" / "notebooks")  # inside a folder holding only bundle entries
    for dest in (root, tmp_path / "old"):
        with pytest.raises(BundleError, match=rf"^expected a new folder for the bundle, got {re.escape(str(dest))}, "
                                              r"which holds the repository$"):
            write_bundle(root, dest, archives=False)
    assert (root / "solutions" / "01_rnn.ipynb").is_file()


def test_a_file_in_place_of_the_folder_is_refused_and_kept(tmp_path):
    dest = tmp_path / "course"
    dest.write_text("mine")
    with pytest.raises(BundleError, match=rf"^expected a folder \(or nothing\) at {re.escape(str(dest))}, got a file$"):
        write_bundle(ROOT, dest)
    assert dest.read_text() == "mine"


def test_the_bundle_folder_is_made_with_its_parents_and_readable_by_all(tmp_path):
    dest = tmp_path / "new" / "deeper" / "course"
    assert write_bundle(_fake_repo(tmp_path), dest, archives=False).folder == dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755  # not the 0o700 of the staging folder


def test_a_leaked_solution_region_stops_the_bundle_and_writes_nothing(tmp_path):
    root = _fake_repo(tmp_path)
    with open(root / "lessons" / "en" / "01_rnn.md", "a", encoding="utf-8") as lesson:
        lesson.write("\n```python\n### BEGIN SOLUTION\nh = torch.tanh(x)\n### END SOLUTION\n```\n")
    dest = tmp_path / "out"
    with pytest.raises(BundleError, match=r"lessons/en/01_rnn.md: holds 'BEGIN SOLUTION'"):
        write_bundle(root, dest)
    assert not dest.exists() and not list(tmp_path.glob("*.tar.gz"))
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]  # no staging folder left behind


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_publish_branch_commits_the_folder_as_a_branch_that_clones_and_fast_forwards(tmp_path):
    root = _fake_repo(tmp_path)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "course")
    status_before = _git(root, "status", "--porcelain")
    folder = write_bundle(root, tmp_path / "bundle", archives=False).folder
    env_args = ("-c", "user.name=t", "-c", "user.email=t@t")
    first = publish_branch(root, folder, "students")
    assert _git(root, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert _git(root, "status", "--porcelain") == status_before  # index and working tree untouched
    assert publish_branch(root, folder, "students") == first  # nothing changed: no new commit
    clone = tmp_path / "clone"
    _git(tmp_path, *env_args, "clone", "-q", "--branch", "students", str(root), str(clone))
    assert _tree(clone) == _tree(folder) | {k: v for k, v in _tree(clone).items() if k.startswith(".git/")}
    assert not (clone / "solutions").exists()
    (folder / "lessons" / "en" / "01_rnn.md").write_text("changed\n")
    second = publish_branch(root, folder, "students")
    assert _git(root, "rev-parse", f"{second}^") == first  # a child: pulls fast-forward
    _git(clone, *env_args, "pull", "-q", "--ff-only")
    assert (clone / "lessons" / "en" / "01_rnn.md").read_text() == "changed\n"
    with pytest.raises(BundleError, match="other than the checked-out one"):
        publish_branch(root, folder, "main")


@pytest.fixture
def git_repo(tmp_path, monkeypatch):
    """A fake course repository with one commit on main; git identity from the environment."""
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(var, "t")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(var, "t@t")
    root = _fake_repo(tmp_path)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "course")
    return root


def test_publish_branch_refuses_a_folder_with_solutions_and_makes_no_branch(git_repo, tmp_path):
    folder = tmp_path / "bundle"
    (folder / "solutions").mkdir(parents=True)
    (folder / "solutions" / "01_rnn.ipynb").write_text("{}")
    (folder / "notes.md").write_text("### BEGIN HIDDEN TESTS\n")
    with pytest.raises(BundleError) as refused:
        publish_branch(git_repo, folder, "students")
    assert str(refused.value) == ("refusing to publish; the folder holds:\n"
                                  "  notes.md: holds 'BEGIN HIDDEN TESTS'\n  solutions/: a solutions folder")
    assert _git(git_repo, "branch", "--list") == "* main"


def test_publish_branch_reports_a_failing_git_command(git_repo, tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "README.md").write_text("hello\n")
    with pytest.raises(BundleError, match=r"^git check-ref-format --branch bad\.\.name failed \(128\): "
                                          r"fatal: .*not a valid branch name"):
        publish_branch(git_repo, folder, "bad..name")
    assert _git(git_repo, "branch", "--list") == "* main"


def test_main_with_branch_commits_the_bundle_and_says_how_to_push(git_repo, tmp_path, capsys):
    dest = tmp_path / "bundle"
    assert main([str(dest), "--root", str(git_repo), "--no-archives", "--branch", "students"]) == 0
    commit = _git(git_repo, "rev-parse", "refs/heads/students")
    files = sorted(_git(git_repo, "ls-tree", "-r", "--name-only", commit).splitlines())
    assert files == sorted(_tree(dest)) and "notebooks/01_rnn.ipynb" in files
    assert capsys.readouterr().out == (f"{dest}: {len(files)} files (1 notebooks), no solutions\n"
                                       f"branch students at {commit[:12]}: publish with `git push origin students`\n")


def test_release_bundle_option_runs_the_bundle(tmp_path):
    dest = tmp_path / "course"
    done = subprocess.run([sys.executable, "-m", "course_utils.release", "--bundle", str(dest)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "no solutions" in done.stdout and (dest / "notebooks" / "01_rnn.ipynb").is_file()
    assert (tmp_path / "course.zip").is_file() and (tmp_path / "course.tar.gz").is_file()
    bad = subprocess.run([sys.executable, "-m", "course_utils.bundle", str(ROOT / "solutions" / "x")], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "expected a bundle folder outside" in bad.stderr


def test_install_line_can_name_the_course_repository(tmp_path, monkeypatch, capsys):
    line = 'python -m pip install "git+https://github.com/OWNER/REPOSITORY"'
    monkeypatch.chdir(ROOT)  # the repository is the one holding the current folder
    assert main([str(tmp_path / "b"), "--no-archives", "--install", line]) == 0, capsys.readouterr().err
    readme = (tmp_path / "b" / "README.md").read_text(encoding="utf-8")
    assert line in readme and "in a clone" not in readme
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob("*.tar.gz"))
