"""The batch: find the submissions, grade them (in parallel processes), write the reports as each one finishes."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import multiprocessing
import os
import sys
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from ._course import Course, load_course
from ._grade import GRADER_VERSION, Options, grade_file
from ._notebook import EXERCISES

CSV_NAME = "grades.csv"
CSV_COLUMNS = ["submission", *EXERCISES, "total", "max", "status", "reason"]


class UsageError(Exception):
    """Bad arguments: nothing was graded (exit code 2)."""


# -------------------------------------------------------------- submissions
def find_submissions(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, folders as their ``*.ipynb`` (not recursive); sorted by file name, names must be unique."""
    found: dict[str, Path] = {}
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            files = sorted(p for p in path.glob("*.ipynb") if p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise UsageError(f"no such file or folder: {arg}")
        for f in files:
            other = found.setdefault(f.name, f)
            if other.resolve() != f.resolve():
                raise UsageError(f"two submissions are named {f.name}: {other} and {f} (the reports are named by "
                                 f"file name; grade the folders separately)")
    names = Counter(report_name(p) for p in found.values())
    clash = [n for n, k in names.items() if k > 1]
    if clash:
        raise UsageError(f"two submissions would share the report {clash[0]}")
    return [found[name] for name in sorted(found)]


def report_name(path: Path) -> str:
    return f"{path.stem}.json"


# -------------------------------------------------------------------- files
def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide the reports from the rest of the class's staff
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _number(value) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else f"{value:g}")


def csv_text(reports: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in sorted(reports, key=lambda r: r["submission"]):
        ex = r.get("exercises", {})
        writer.writerow([r["submission"], *(_number(ex[n]["points"]) if n in ex else "" for n in EXERCISES),
                         _number(r["points"]), _number(r["max_points"]), r["status"],
                         " ".join(str(r["reason"]).split())[:200]])
    return out.getvalue()


def write_report(out_dir: Path, path: Path, report: dict) -> None:
    _write_atomic(out_dir / report_name(path), json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _reusable(out_dir: Path, path: Path, options: Options, course: Course) -> dict | None:
    """The earlier report of this very file, graded with the same grader, options and course (for --resume)."""
    try:
        report = json.loads((out_dir / report_name(path)).read_text(encoding="utf-8"))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None
    same = (report.get("sha256") == digest and report.get("submission") == path.name
            and report.get("grader") == {"version": GRADER_VERSION, "options": options.as_dict(),
                                         "course": course.digest})
    return report if same and report.get("status") != "grader_error" else None


# -------------------------------------------------------------------- batch
def _job(path: str, options: Options, course: Course) -> dict:
    return grade_file(path, options, course)


def grade_batch(paths: list[str | os.PathLike], out_dir: str | os.PathLike, options: Options | None = None, *,
                jobs: int = 1, resume: bool = False, progress: bool = True) -> list[dict]:
    """Grade every submission into ``out_dir`` (reports and ``grades.csv``); return the reports, sorted by name.

    Raises :class:`UsageError` for bad arguments and ``OSError`` when ``out_dir`` is not writable.
    """
    options = options or Options()
    submissions = find_submissions(paths)
    if not submissions:
        raise UsageError("no notebooks to grade (a folder means its *.ipynb files)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / ".write-test", "")  # fails early, before any grading, when out_dir is not writable
    (out / ".write-test").unlink()
    course = load_course()
    reports: dict[str, dict] = {}
    todo = []
    for path in submissions:
        earlier = _reusable(out, path, options, course) if resume else None
        if earlier is not None:
            reports[path.name] = earlier
        else:
            todo.append(path)
    bar = tqdm(total=len(submissions), initial=len(reports), unit="notebook", desc="grading", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)

    def record(path: Path, report: dict) -> None:
        write_report(out, path, report)
        reports[path.name] = report
        _write_atomic(out / CSV_NAME, csv_text(list(reports.values())))
        bar.set_postfix_str(f"{path.name}: {report['status']}", refresh=False)
        bar.update(1)

    _write_atomic(out / CSV_NAME, csv_text(list(reports.values())))
    try:
        if jobs <= 1:
            for path in todo:
                record(path, grade_file(path, options, course))
        else:
            _in_pool(todo, options, course, jobs, record)
    finally:
        bar.close()
    return [reports[name] for name in sorted(reports)]


def _in_pool(todo: list[Path], options: Options, course: Course, jobs: int, record) -> None:
    """Grade in ``jobs`` worker processes; a worker that dies costs a retry, then a grader_error row."""
    tries: Counter = Counter()
    pending = list(todo)
    context = multiprocessing.get_context("spawn")
    while pending:
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context) as pool:
            futures = {pool.submit(_job, str(path), options, course): path for path in pending}
            pending = []
            for future in as_completed(futures):
                path = futures[future]
                try:
                    report = future.result()
                except BrokenProcessPool:
                    tries[path] += 1
                    if tries[path] < 2:
                        pending.append(path)
                        continue
                    report = _failed(path, options, course, "the grading process died twice")
                except Exception as exc:  # noqa: BLE001  (a bug in a worker: this row says so, the batch goes on)
                    report = _failed(path, options, course, f"{type(exc).__name__}: {exc}")
                record(path, report)
        pending.sort()


def _failed(path: Path, options: Options, course: Course, reason: str) -> dict:
    return {"submission": path.name, "sha256": None, "status": "grader_error", "reason": reason, "points": 0,
            "max_points": 0, "exercises": {}, "cells": [], "notes": [],
            "grader": {"version": GRADER_VERSION, "options": options.as_dict(), "course": course.digest}}


# ---------------------------------------------------------------------- CLI
def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_utils.grading",
                                description="Grade submitted notebooks of the RNN → LSTM → GRU course.")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION_OR_FOLDER",
                   help="notebooks, or folders whose *.ipynb are graded")
    p.add_argument("--out", required=True, metavar="DIR", help="where grades.csv and one <name>.json per "
                                                              "submission are written")
    d = Options()
    p.add_argument("--timeout-cell", type=_positive(float), default=d.timeout_cell, metavar="S",
                   help=f"seconds per cell (default {d.timeout_cell:g})")
    p.add_argument("--timeout-notebook", type=_positive(float), default=d.timeout_notebook, metavar="S",
                   help=f"seconds for all the cells of a notebook together (default {d.timeout_notebook:g})")
    p.add_argument("--timeout-check", type=_positive(float), default=d.timeout_check, metavar="S",
                   help=f"seconds per exercise check (default {d.timeout_check:g}; build_model's check trains "
                        f"a model)")
    p.add_argument("--memory-mb", type=_positive(int), default=d.memory_mb, metavar="M",
                   help=f"memory limit of each kernel, RLIMIT_DATA (default {d.memory_mb})")
    p.add_argument("--threads", type=_positive(int), default=d.threads, metavar="T",
                   help="torch/BLAS threads per kernel (default 1: the same results whatever --jobs is)")
    p.add_argument("--jobs", type=_positive(int), default=1, metavar="N", help="submissions graded at once")
    p.add_argument("--resume", action="store_true",
                   help="keep the reports in DIR of submissions graded before with the same file, options and "
                        "course; grade the others")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(timeout_cell=args.timeout_cell, timeout_notebook=args.timeout_notebook,
                      timeout_check=args.timeout_check, memory_mb=args.memory_mb, threads=args.threads)
    try:
        reports = grade_batch(args.submissions, args.out, options, jobs=args.jobs, resume=args.resume,
                              progress=not args.no_progress)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the reports: {exc}", file=sys.stderr)
        return 1
    counts = Counter(r["status"] for r in reports)
    summary = ", ".join(f"{k} {counts[k]}" for k in sorted(counts))
    print(f"graded {len(reports)} submission(s): {summary} -> {Path(args.out) / CSV_NAME}", file=sys.stderr)
    return 1 if counts.get("grader_error") else 0
