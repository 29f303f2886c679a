"""Wall time of the batch grader on a class of correct submissions, with and without the demo cells.

Copies the solution notebooks (``solutions/*.ipynb``, taken in turn) into a temporary folder
as ``--copies`` submissions (28 by default: four of each of the seven units), grades them with
``python -m course_utils.grading --jobs 2`` (the real command, default limits, in bubblewrap)
and prints the wall time, the time per submission, and the statuses and scores, which must all
be ``ok`` with full marks. With ``--compare`` it grades the same class again with
``--run-all-cells`` (every cell of every notebook runs, the course's demo and training cells too)
and prints the ratio.

    python bench/grading_batch.py [--copies 28] [--jobs 2] [--compare] [--notebook 01_rnn.ipynb ...]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=28)
    parser.add_argument("--compare", action="store_true", help="also grade with --run-all-cells and compare")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--notebook", action="append", help="a notebook in solutions/ (default: all of them)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    names = args.notebook or sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    if not names:
        print("no notebooks in solutions/", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    submissions, out = work / "submissions", work / "out"
    submissions.mkdir()
    for k in range(args.copies):
        source = ROOT / "solutions" / names[k % len(names)]
        shutil.copyfile(source, submissions / f"{source.stem}__copy{k:02d}.ipynb")
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    ok = True
    walls = {}
    for label, extra in (("skipping demo cells", []), ("every cell", ["--run-all-cells"]))[:2 if args.compare else 1]:
        out = work / f"out-{len(walls)}"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "course_utils.grading", str(submissions), "--out", str(out),
                               "--jobs", str(args.jobs), "--no-progress", *extra], check=False, env=env,
                              capture_output=True, text=True)
        walls[label] = wall = time.perf_counter() - start
        ok &= _summary(label, args, names, out, proc, wall)
    if len(walls) == 2:
        a, b = walls.values()
        print(f"every cell / skipping demo cells: {b / a:.2f}x")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def _summary(label, args, names, out, proc, wall) -> bool:
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    statuses = Counter(r["status"] for r in rows)
    full = sum(1 for r in rows if r["status"] == "ok" and r["total"] == r["max"])
    print(f"grading bench ({label}): {args.copies} copies of {', '.join(names)}, --jobs {args.jobs}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"wall time {wall:.1f} s, {wall / args.copies:.2f} s per submission, exit code {proc.returncode}")
    print(f"statuses: {dict(sorted(statuses.items()))}; full marks: {full}/{len(rows)}")
    for r in rows:
        if r["status"] != "ok" or r["total"] != r["max"]:
            print(f"  {r['submission']}: {r['status']} {r['total']}/{r['max']} {r['reason']}")
    return proc.returncode == 0 and full == len(rows)


if __name__ == "__main__":
    sys.exit(main())
