"""Batch auto-grader for submitted notebooks: each one runs in an operating-system sandbox, and is judged outside it.

Usage::

    python -m course_utils.grading SUBMISSION_OR_FOLDER ... --out DIR
        [--timeout-cell S] [--timeout-notebook S] [--timeout-check S] [--memory-mb M]
        [--threads T] [--jobs N] [--resume] [--no-progress] [--max-size-mb M] [--unit NAME]
        [--no-sandbox]

Every entry given gets a row: a folder means each of its entries (not recursive); notebooks
(``.ipynb``, any case) are graded, anything else (other suffixes, symbolic links, folders,
pipes, files over ``--max-size-mb``, names in any encoding) gets status ``invalid`` and a
reason. A submission is graded against the exercises it holds (nbgrader ``grade_id``s of the
course's registry, :data:`course_utils.checks.EXERCISES`). Points come from the check cells of
``solutions/``, only for a passed check, never from the submission or its kernel. The grader
writes, atomically: ``DIR/<name>.json`` per submission (per exercise: status, points, the
check's message, the stable ids of the named mistakes, the reason; cell outcomes; notes),
``DIR/feedback/<name>.md`` (ready to hand back), and ``DIR/grades.csv`` (one row per entry:
points per exercise, total, max, status, reason, unit, isolation, a short diagnosis).

How a submission is graded:

1. Nothing runs yet: the notebook is read, its exercises found, its check cells compared with
   the course's (edited or deleted ones get a note; the grader runs its own checks anyway), and
   each exercise's function is read for calls of the reference
   (:func:`course_utils.checks.static.reference_use`: the course's reference, torch's own
   recurrent cells, and ``exec``/``eval``/``getattr`` by a computed name/file and interpreter
   access): a hit is status ``uses_reference``, 0 points.
2. Its code cells run in a fresh kernel inside bubblewrap (:mod:`._sandbox`): read-only system
   and Python environment, only the installed course package visible (read-only), a private
   writable home, no network, its own process namespace, killed with the grader, a fresh
   environment, ``RLIMIT_AS`` (every mapping counts) and a process limit; as root it runs as
   ``nobody``. Check cells and the course's cells tagged ``demo`` or ``training`` (matched by
   their exact source, so a learner's own cell always runs) are left out. A cell that hangs,
   kills the kernel or runs out of memory is left out and the notebook runs again (at most 3
   kernels), so a function defined after it still counts.
3. The checks run in the grader's process, on inputs drawn from a seed chosen fresh for every
   submission of every run (recorded in the report); the learner's function is a proxy that
   calls into the kernel and gets plain values back (:mod:`._remote`, :mod:`._codec`: no
   pickles, no tensor subclasses). The comparison with the reference, the diagnosis and the
   points are computed here; messages from the kernel are cut short. The kernel's profiler
   reports calls of the reference while the function runs (a second, in-kernel tripwire).

Statuses (``status`` column), most important first: ``grader_error`` (exit code 1), ``invalid``,
``memory``, ``crashed``, ``timeout``, ``no_exercises``, ``ok``. Per exercise: ``passed``,
``wrong``, ``not_implemented``, ``error``, ``uses_reference``, ``missing``, ``timeout``,
``crashed``, ``memory``, ``grader_error``.

Exit code: 0 when every entry got a row, 1 when a submission could not be graded or ``DIR`` is
not writable, 2 for bad arguments (or no bubblewrap without ``--no-sandbox``). ``--jobs N``
grades N submissions at once. ``--resume`` keeps the report of a file whose bytes, options and
course are unchanged.

Without bubblewrap the grader refuses (the message says how to install it); ``--no-sandbox``
runs the kernels as plain processes with a fresh environment and every report and CSV row says
``isolation: none``. Use it only for notebooks you trust.

What the sandbox does **not** protect against, stated plainly:

- Everything inside the learner's own kernel is the learner's: code there can compute the
  right answer any way it likes. Using the reference is caught by reading the source (a name,
  an alias, a computed name, introspection) and by the in-kernel profiler; code obfuscated
  past both (for example, the reference's algorithm retyped from memory is simply a correct
  answer) is not distinguishable from the learner's own work.
- ``build_model`` is trained and evaluated in the kernel, and its structure is reported from
  there: the check requires a recurrent layer that the trained model needs (ablation), but a
  learner who rewrites the grader's kernel-side code can misreport it.
- Denial of service within the limits: a notebook can use its whole time, memory and process
  budget, and disk space in its private folder up to ``RLIMIT_FSIZE`` per file.
- Kernel and bubblewrap vulnerabilities (an OS sandbox is only as strong as the kernel it runs
  on); run the grader in a VM for hostile classes.
"""

from ._batch import CSV_COLUMNS, UsageError, feedback_text, find_submissions, grade_batch, main
from ._course import Course, load_course
from ._grade import Options, grade_file
from ._notebook import EXERCISES

__all__ = ["CSV_COLUMNS", "EXERCISES", "Course", "Options", "UsageError", "feedback_text", "find_submissions",
           "grade_batch", "grade_file", "load_course", "main"]
