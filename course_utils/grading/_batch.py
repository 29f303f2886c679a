"""The batch: find the submissions, grade them (in parallel processes), write the reports as each one finishes."""

from __future__ import annotations

import argparse
import csv
import re
import stat
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
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ._course import Course, load_course
from ._grade import GRADER_VERSION, Options, grade_file, new_report
from ._sandbox import INSTALL_HINT, find_bwrap
from ._notebook import EXERCISES

CSV_NAME = "grades.csv"
CSV_COLUMNS = ["submission", *EXERCISES, "total", "max", "status", "reason", "unit", "isolation", "diagnosis"]
FEEDBACK_DIR = "feedback"


class UsageError(Exception):
    """Bad arguments: nothing was graded (exit code 2)."""


# -------------------------------------------------------------- submissions
@dataclass(frozen=True)
class Entry:
    """One entry the instructor passed (a file, or an entry of a folder): graded, or given a row saying why not."""

    path: Path
    name: str  # as reports and the CSV show it (any byte of a file name shown, escaped)
    problem: str = ""  # why it is not graded; empty for a notebook to grade

    @property
    def report(self) -> str:
        return report_name(self.name)


def display_name(path: Path) -> str:
    """A file name as text: bytes that are not UTF-8 are shown as \\xNN escapes."""
    return os.fsencode(path.name).decode("utf-8", "backslashreplace")


def _kind_problem(path: Path) -> str:
    """Why this directory entry cannot be graded, or "" (never opens it: a FIFO would block)."""
    try:
        st = path.lstat()
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        target = "a missing file" if not path.exists() else "another file"
        return f"a symbolic link (to {target}): links are not followed; submit the notebook itself"
    if stat.S_ISDIR(st.st_mode):
        return "a folder: folders inside a submissions folder are not searched"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a pipe, socket or device)"
    if path.suffix.lower() != ".ipynb":
        return f"not a notebook: the name ends in {path.suffix or '(no suffix)'!r}, not '.ipynb'"
    return ""


def find_submissions(paths: list[str | os.PathLike]) -> list[Entry]:
    """Every entry given (files as given; a folder's entries, not recursive), sorted by name; each gets a row."""
    found: dict[str, Entry] = {}
    for arg in paths:
        path = Path(arg)
        if path.is_dir() and not path.is_symlink():
            entries = [Entry(e, display_name(e), _kind_problem(e)) for e in sorted(path.iterdir())]
        elif path.exists() or path.is_symlink():
            entries = [Entry(path, display_name(path), _kind_problem(path))]
        else:
            raise UsageError(f"no such file or folder: {arg}")
        for e in entries:
            other = found.setdefault(e.name, e)
            if other.path.absolute() != e.path.absolute():
                raise UsageError(f"two submissions are named {e.name}: {other.path} and {e.path} (the reports are "
                                 f"named by file name; grade the folders separately)")
    names = Counter(e.report for e in found.values())
    clash = [n for n, k in names.items() if k > 1]
    if clash:  # names that differ only in characters a report name cannot hold: add a digest
        found = {k: (Entry(e.path, e.name, e.problem) if names[e.report] == 1 else e) for k, e in found.items()}
    return [found[name] for name in sorted(found)]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def report_name(name: str) -> str:
    """``name``'s report file: its stem with unsafe characters replaced (and a digest when anything was)."""
    stem = name[:-6] if name.lower().endswith(".ipynb") else name
    safe = _UNSAFE.sub("_", stem)[:120] or "_"
    if safe != stem or safe.startswith("."):
        safe = f"{safe.lstrip('.') or '_'}-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
    return f"{safe}.json"


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
                         " ".join(str(r["reason"]).split())[:200], r.get("unit") or "",
                         r.get("isolation", ""), diagnosis(r)])
    return out.getvalue()


def diagnosis(report: dict) -> str:
    """One short phrase per exercise: passed, or the named mistakes, or the status."""
    parts = []
    for name, ex in report.get("exercises", {}).items():
        what = ", ".join(ex.get("mistakes") or []) or ex["status"].replace("_", " ")
        parts.append(f"{name}: {what}")
    return "; ".join(parts)[:300]


def feedback_text(report: dict) -> str:
    """A learner's feedback, ready to hand back (Markdown): score, then per exercise what the check said."""
    lines = [f"# Feedback: {report['submission']}", "",
             f"**Score: {_number(report['points'])} / {_number(report['max_points'])}**", ""]
    if report["status"] != "ok":
        lines += [f"Status: `{report['status']}` — {report['reason']}", ""]
    for name, ex in report.get("exercises", {}).items():
        lines += [f"## `{name}`: {_number(ex['points'])} / {_number(ex['max_points'])}", ""]
        if ex.get("message"):
            lines += ["```text", ex["message"], "```", ""]
        if ex.get("reason") and ex["status"] != "passed":
            lines += [f"*{ex['reason']}*", ""]
    problems = [c for c in report.get("cells", []) if c["outcome"] not in ("skipped",)]
    if problems:
        lines += ["## Cells that did not run cleanly", ""]
        lines += [f"- cell {c['cell']}: {c['outcome']} — {c['detail']}" for c in problems] + [""]
    if report.get("isolation") == "none":
        lines += ["*Graded without isolation (--no-sandbox).*", ""]
    return "\n".join(lines)


def write_report(out_dir: Path, entry: Entry, report: dict) -> None:
    _write_atomic(out_dir / entry.report, json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    (out_dir / FEEDBACK_DIR).mkdir(exist_ok=True)
    _write_atomic(out_dir / FEEDBACK_DIR / entry.report.replace(".json", ".md"), feedback_text(report))


def _reusable(out_dir: Path, entry: Entry, options: Options, course: Course) -> dict | None:
    """The earlier report of this very file, graded with the same grader, options and course (for --resume)."""
    if entry.problem:
        return None
    try:
        report = json.loads((out_dir / entry.report).read_text(encoding="utf-8"))
        digest = hashlib.sha256(entry.path.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None
    same = (report.get("sha256") == digest and report.get("submission") == entry.name
            and report.get("grader") == {"version": GRADER_VERSION, "options": options.as_dict(),
                                         "course": course.digest})
    return report if same and report.get("status") != "grader_error" else None


# -------------------------------------------------------------------- batch
def _job(entry: Entry, options: Options, course: Course, seed: int | None) -> dict:
    if entry.problem:
        report = new_report(entry.name, options, course)
        report.update(status="invalid", reason=entry.problem)
        return report
    return grade_file(entry.path, options, course, name=entry.name, seed=seed)


def grade_batch(paths: list[str | os.PathLike], out_dir: str | os.PathLike, options: Options | None = None, *,
                jobs: int = 1, resume: bool = False, progress: bool = True, seed: int | None = None) -> list[dict]:
    """Grade every submission into ``out_dir`` (reports and ``grades.csv``); return the reports, sorted by name.

    Raises :class:`UsageError` for bad arguments and ``OSError`` when ``out_dir`` is not writable.
    """
    options = options or Options()
    if options.sandbox and find_bwrap() is None:
        raise UsageError(INSTALL_HINT)
    submissions = find_submissions(paths)
    if not submissions:
        raise UsageError("nothing to grade: the folders given are empty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / ".write-test", "")  # fails early, before any grading, when out_dir is not writable
    (out / ".write-test").unlink()
    course = load_course()
    reports: dict[str, dict] = {}
    todo = []
    for entry in submissions:
        earlier = _reusable(out, entry, options, course) if resume else None
        if earlier is not None:
            reports[entry.name] = earlier
        else:
            todo.append(entry)
    bar = tqdm(total=len(submissions), initial=len(reports), unit="notebook", desc="grading", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)

    def record(entry: Entry, report: dict) -> None:
        write_report(out, entry, report)
        reports[entry.name] = report
        _write_atomic(out / CSV_NAME, csv_text(list(reports.values())))
        bar.set_postfix_str(f"{entry.name}: {report['status']}", refresh=False)
        bar.update(1)

    _write_atomic(out / CSV_NAME, csv_text(list(reports.values())))
    try:
        if jobs <= 1:
            for entry in todo:
                record(entry, _job(entry, options, course, seed))
        else:
            _in_pool(todo, options, course, jobs, record, seed)
    finally:
        bar.close()
    return [reports[name] for name in sorted(reports)]


def _in_pool(todo: list[Entry], options: Options, course: Course, jobs: int, record, seed) -> None:
    """Grade in ``jobs`` worker processes; a worker that dies costs a retry, then a grader_error row."""
    tries: Counter = Counter()
    pending = list(todo)
    context = multiprocessing.get_context("spawn")
    while pending:
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=context) as pool:
            futures = {pool.submit(_job, entry, options, course, seed): entry for entry in pending}
            pending = []
            for future in as_completed(futures):
                entry = futures[future]
                try:
                    report = future.result()
                except BrokenProcessPool:
                    tries[entry.name] += 1
                    if tries[entry.name] < 2:
                        pending.append(entry)
                        continue
                    report = _failed(entry, options, course, "the grading process died twice")
                except Exception as exc:  # noqa: BLE001  (a bug in a worker: this row says so, the batch goes on)
                    report = _failed(entry, options, course, f"{type(exc).__name__}: {exc}")
                record(entry, report)
        pending.sort(key=lambda e: e.name)


def _failed(entry: Entry, options: Options, course: Course, reason: str) -> dict:
    report = new_report(entry.name, options, course)
    report.update(status="grader_error", reason=reason)
    return report


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
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the notebooks WITHOUT bubblewrap (only for notebooks you trust; every report says so)")
    p.add_argument("--max-size-mb", type=_positive(float), default=d.max_size_mb, metavar="M",
                   help=f"larger files are not graded (default {d.max_size_mb:g})")
    p.add_argument("--unit", metavar="NAME", default=None,
                   help="the notebook expected (e.g. 03_lstm): a submission of another unit gets a note")
    p.add_argument("--run-all-cells", action="store_true",
                   help="also run the course's cells tagged demo/training (slower; for comparison)")
    p.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)  # to reproduce one report only
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(timeout_cell=args.timeout_cell, timeout_notebook=args.timeout_notebook,
                      timeout_check=args.timeout_check, memory_mb=args.memory_mb, threads=args.threads,
                      sandbox=not args.no_sandbox, max_size_mb=args.max_size_mb, unit=args.unit,
                      skip_demos=not args.run_all_cells)
    if args.no_sandbox:
        print("warning: --no-sandbox: the notebooks' code runs WITHOUT isolation, with your rights; every report "
              "and the CSV say so", file=sys.stderr)
    try:
        reports = grade_batch(args.submissions, args.out, options, jobs=args.jobs, resume=args.resume,
                              progress=not args.no_progress, seed=args.seed)
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
