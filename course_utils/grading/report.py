"""What did my class get wrong? A class report from graded submissions.

Usage::

    python -m course_utils.grading.report REPORTS_DIR --out DIR        # the course's batch grader
    python -m course_utils.grading.report NBGRADER_COURSE --out DIR    # an nbgrader course folder
        [--submissions DIR] [--lessons PATH] [--lessons-url BASE] [--no-gradebook]

``REPORTS_DIR`` is the ``--out`` folder of ``python -m course_utils.grading``: one JSON report
per submission (and ``grades.csv``, which the report is compared with). ``NBGRADER_COURSE`` is
a folder with ``autograded/<student>/<assignment>/*.ipynb``: the check cells' outputs carry
each diagnosis (:data:`course_utils.checks.MIME_TYPE`); when nbgrader is installed and the
course has a ``gradebook.db``, the points come from the gradebook (manual grades included),
read from a temporary copy so the instructor's database is never written.

The command writes ``DIR/class_report.html`` (one self-contained page: no script, no style
sheet or image from elsewhere, the histograms embedded as PNG), ``DIR/class_report.md`` (the
same report in Markdown, its figures in ``DIR/figures/``) and ``DIR/class_report.json`` (the
numbers). What it shows, per unit and per exercise: the number of submissions, the pass rate,
the score distribution, the named mistakes ranked by how many submissions made them (counted
by the checks' stable mistake ids, never by message text) with the check's message and one
anonymised example, the statuses that are not about the answer (timeouts, crashes, invalid
notebooks, the reference called), and a "what to revisit" list drawn from the counts, each
point linked to the lesson sections (English and Korean) that teach it (:data:`MISTAKE_SECTIONS`).

No learner's name, student id or file name appears anywhere in the outputs: the page holds
counts, the checks' own messages (scrubbed of every name and path the inputs hold) and
exception type names, never the grader's free-text reasons. Names of disagreeing rows of
``grades.csv`` are printed on the terminal only.

Exit code: 0 when the report was written, 1 when there was nothing to read, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._report_counts import (
    ANSWER_STATUSES,
    ClassReport,
    ExerciseSummary,
    MistakeCount,
    Revisit,
    UnitSummary,
    summarise,
)
from ._report_inputs import (
    Entry,
    Submission,
    anonymise,
    anonymise_code,
    compare_with_csv,
    read_grader_reports,
    read_nbgrader_course,
    read_source,
)
from ._report_lessons import (
    EXERCISE_SECTIONS,
    MISTAKE_SECTIONS,
    SECTIONS,
    heading_slug,
    lesson_headings,
    lesson_links,
    missing_lesson_sections,
)

__all__ = ["ANSWER_STATUSES", "EXERCISE_SECTIONS", "MISTAKE_SECTIONS", "SECTIONS", "ClassReport", "Entry",
           "ExerciseSummary", "MistakeCount", "Revisit", "Submission", "UnitSummary", "anonymise", "anonymise_code",
           "compare_with_csv", "heading_slug", "lesson_headings", "lesson_links", "main", "missing_lesson_sections",
           "parser", "read_grader_reports", "read_nbgrader_course", "read_source", "summarise", "write_report"]


# -------------------------------------------------------------- the command
def write_report(report: ClassReport, out: str | Path, *, lessons: Path | None = None,
                 lessons_url: str | None = None) -> dict[str, Path]:
    """Write ``class_report.html``, ``class_report.md``, ``class_report.json`` and ``figures/`` into ``out``."""
    from ._report_pages import write_pages

    return write_pages(report, Path(out), lessons=lessons, lessons_url=lessons_url)


def _default_lessons() -> Path | None:
    here = Path(__file__).resolve().parent.parent.parent / "lessons"  # a checkout: lessons/ next to course_utils/
    return here if here.is_dir() else None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m course_utils.grading.report",
                                description="A class report (HTML and Markdown) from graded submissions: the "
                                            "batch grader's reports folder or an nbgrader course folder.")
    p.add_argument("source", metavar="REPORTS_DIR_OR_NBGRADER_COURSE",
                   help="the grader's --out folder (<name>.json reports, grades.csv), or an nbgrader course "
                        "folder holding autograded/<student>/<assignment>/*.ipynb (and gradebook.db)")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write class_report.html/.md/.json")
    p.add_argument("--lessons", metavar="PATH", type=Path, default=None,
                   help="the course's lessons/ folder, linked from the report (default: the checkout's)")
    p.add_argument("--lessons-url", metavar="BASE", default=None,
                   help="link lessons under this base instead (e.g. where the course's site serves lessons/)")
    p.add_argument("--submissions", metavar="DIR", default=None,
                   help="grader reports: the folder of the submitted notebooks, to show one learner's code (comments, "
                        "docstrings and names removed) for each mistake; an nbgrader course has them already")
    p.add_argument("--no-gradebook", action="store_true",
                   help="nbgrader: take the points from the notebooks' check cells, not from gradebook.db")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        source, subs = read_source(args.source, gradebook=not args.no_gradebook, submissions=args.submissions)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not subs:
        print(f"error: no submission found in {args.source}", file=sys.stderr)
        return 1
    report = summarise(source, subs)
    grades = Path(args.source) / "grades.csv"
    if source == "grader" and grades.is_file():
        problems = compare_with_csv(subs, grades)
        report.csv_disagreements = len(problems)
        for line in problems:
            print(f"grades.csv disagrees: {line}", file=sys.stderr)
    lessons = args.lessons if args.lessons is not None else _default_lessons()
    written = write_report(report, args.out, lessons=lessons, lessons_url=args.lessons_url)
    print(f"{report.submissions} submissions ({source}); wrote {', '.join(str(p) for p in written.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
