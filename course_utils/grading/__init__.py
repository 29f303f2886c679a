"""Batch auto-grader for submitted notebooks, which survives bad submissions.

Usage::

    python -m course_utils.grading SUBMISSION_OR_FOLDER ... --out DIR
        [--timeout-cell S] [--timeout-notebook S] [--timeout-check S] [--memory-mb M]
        [--threads T] [--jobs N] [--resume] [--no-progress]

A folder means every ``*.ipynb`` in it (not recursive), sorted by name. Each submission is
graded against the exercises it holds, recognised by the nbgrader ``grade_id`` of its cells
(``rnn_cell``, ``clip_grad_norm``, ``lstm_cell``, ``gru_cell``, ``build_model``, or their
``check_<name>`` cells; without any nbgrader metadata, by a ``def <name>(`` in a cell).
Points per exercise come from the check cells of ``solutions/`` (else 1), never from the
submission. The grader writes, atomically (temporary file + ``os.replace``):

- ``DIR/<name>.json`` per submission: per exercise the points, the check's message (the
  diagnosis the learner sees in the notebook) and for failures the reason; the cells that
  raised, timed out, crashed the kernel or were not run; notes (huge outputs, nbformat 3);
- ``DIR/grades.csv``: one row per submission (file name), one column per exercise (points,
  empty when the notebook does not hold it), ``total``, ``max``, ``status`` and a short
  ``reason``; rewritten after each submission, sorted by name.

Statuses (``status`` column), most important first:

=============== ==============================================================================
``grader_error`` the grader itself failed on this submission (see the reason); exit code 1
``invalid``      not a notebook: not UTF-8, not JSON, no cells, a schema nbformat cannot read
``tampered``     the notebook replaced something the checks rely on (``course_utils.checks``,
                 ``course_utils.functional``, torch, builtins, ...) or changed its own file:
                 0 points for the whole notebook
``memory``       a cell (or a check) ran out of memory (``--memory-mb``)
``crashed``      the kernel died (``os._exit``, a segfault, ``exit()``)
``timeout``      a cell or check ran past its limit, or the notebook past ``--timeout-notebook``
``no_exercises`` a notebook without any of the course's exercises (an empty notebook)
``ok``           every cell ran or raised normally; the scores say the rest
=============== ==============================================================================

Per exercise: ``passed``, ``wrong``, ``not_implemented``, ``error`` (from the check),
``missing`` (the function is not defined), ``uses_reference`` (it *is*, or calls, the course's
reference or torch's own cell: 0 points), ``tampered``, ``timeout``, ``crashed``, ``memory``.
A cell that raises does not stop the notebook; a cell that kills or hangs the kernel or runs
out of memory is left out and the notebook runs again in a new kernel (at most 3), so the
definitions after it still count; the status still says what happened.

Exit code: 0 when every submission got a row (whatever the scores), 1 when a submission
could not be graded (``grader_error``) or ``DIR`` is not writable, 2 for bad arguments.
``--jobs N`` grades N submissions at once in worker processes; reports hold no timings, so
they are identical to a serial run (torch runs with ``--threads`` threads, 1 by default, in
every kernel for the same reason). ``--resume`` keeps the report of a submission whose file
(SHA-256), options and course are unchanged and grades the rest: rerun a stopped batch
with it. Without ``--resume`` everything is graded again.

How a submission runs: its bytes are copied into a temporary sandbox folder (the file is
never opened for writing, and is compared afterwards); its code cells, except the check
cells (nbgrader ``grade: true``, or cells that only call ``check_*``), run one by one in a
fresh ``ipykernel`` of this interpreter, whose working folder, ``HOME`` and ``TMPDIR`` are
in the sandbox, with ``RLIMIT_DATA`` = ``--memory-mb`` and a time limit per cell (interrupt,
then kill). Then, in the same kernel, the grader runs each check from a fresh copy of
``course_utils.checks`` loaded from the files it hashed when the batch started, after
comparing torch, numpy, builtins and ``course_utils`` with a snapshot taken before the first
cell; while the learner's function runs, a profiler tripwire records calls of the reference
implementations. The result comes back as one JSON line with a per-request nonce.

What it protects against: check cells edited or deleted; ``course_utils.checks``,
``course_utils.functional`` or torch functions monkeypatched; the reference passed off as
the learner's own; hangs, sleeps, ``sys.exit``, ``os._exit``, memory hogs, floods of output;
writes outside the sandbox folder and starting processes (a Python audit hook refuses them:
the submissions folder, the package and the reports stay unchanged).

What it does **not** protect against: a determined attacker. The checks run in the
learner's process, so code that digs into the grader's objects (``gc``, frames,
``sys.modules``), calls C directly (``ctypes``), leaves threads running, or reads other
files (other submissions, ``solutions/``) is not stopped, and there is no network
isolation. For untrusted submissions run the grader in a container (or a VM) without
network, with the submissions mounted read-only and the output folder the only writable
mount.
"""

from ._batch import CSV_COLUMNS, UsageError, find_submissions, grade_batch, main
from ._course import Course, load_course
from ._grade import Options, grade_file
from ._notebook import EXERCISES

__all__ = ["CSV_COLUMNS", "EXERCISES", "Course", "Options", "UsageError", "find_submissions", "grade_batch",
           "grade_file", "load_course", "main"]
