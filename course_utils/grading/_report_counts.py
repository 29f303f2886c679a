"""Counting for the class report: per unit and per exercise, the mistakes by stable id, what to revisit."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ..checks import EXERCISES
from ._report_inputs import Entry, Submission, anonymise, anonymise_code
from ._report_lessons import lesson_links

__all__ = ["ANSWER_STATUSES", "REVISIT_MIN_COUNT", "REVISIT_PASS_RATE", "REVISIT_SHARE", "ClassReport",
           "ExerciseSummary", "MistakeCount", "Revisit", "UnitSummary", "status_words", "summarise"]

# ----------------------------------------------------------------- statuses
#: exercise statuses that say something about the learner's answer; every other one (timeout, crashed,
#: memory, uses_reference, tampered, grader_error, not_run, ...) is counted apart, as not about the exercise
ANSWER_STATUSES = ("passed", "wrong", "error", "not_implemented", "missing")
_STATUS_WORDS = {
    "passed": "passed", "wrong": "wrong", "error": "raised an error", "not_implemented": "not implemented",
    "missing": "function missing", "uses_reference": "calls the reference", "tampered": "tampered",
    "timeout": "timed out", "crashed": "crashed the kernel", "memory": "ran out of memory",
    "grader_error": "grader error", "not_run": "check cell not run", "invalid": "not a valid notebook",
    "no_exercises": "no exercise found", "ok": "graded",
}


def status_words(status: str) -> str:
    return _STATUS_WORDS.get(status, status.replace("_", " "))


# ---------------------------------------------------------------- counting
@dataclass
class MistakeCount:
    id: str
    count: int  # submissions whose answer was diagnosed with this mistake
    share: float  # of the exercise's submissions
    description: str | None  # the check's message for it
    example: str | None  # one learner's full diagnosis, anonymised
    lessons: list[dict[str, str]]
    code_example: str | None = None  # one learner's function with this mistake, anonymised (when notebooks are read)


@dataclass
class ExerciseSummary:
    exercise: str
    unit: str
    submissions: int
    passed: int
    pass_rate: float
    max_points: float
    mean_points: float
    scores: dict[str, int]  # points -> submissions, as text ("0", "1", "0.5")
    statuses: dict[str, int]
    mistakes: list[MistakeCount]
    unnamed_wrong: int  # wrong answers the check did not recognise
    errors: dict[str, int]  # exception type -> submissions (status "error")


@dataclass
class UnitSummary:
    unit: str
    submissions: int
    complete: int  # submissions that passed every exercise they hold
    max_points: float
    mean_points: float
    scores: dict[str, int]
    statuses: dict[str, int]  # submission statuses
    exercises: list[ExerciseSummary]


@dataclass
class Revisit:
    text: str
    count: int
    share: float
    exercise: str | None
    mistake: str | None
    lessons: list[dict[str, str]]


@dataclass
class ClassReport:
    source: str
    submissions: int
    statuses: dict[str, int]  # submission statuses
    other_statuses: dict[str, int]  # exercise statuses not about the answer
    units: list[UnitSummary]
    revisit: list[Revisit]
    csv_disagreements: int | None = None  # rows of grades.csv that disagree (None: no grades.csv)

    def to_dict(self) -> dict:
        return asdict(self)


def _score_key(points: float) -> str:
    return str(int(points)) if float(points).is_integer() else f"{points:g}"


def _distribution(values: Iterable[float]) -> dict[str, int]:
    counts = Counter(round(v, 6) for v in values)
    return {_score_key(v): counts[v] for v in sorted(counts)}


def _descriptions(message: str | None, ids: tuple[str, ...]) -> dict[str, str]:
    """The "Likely mistake: ..." line of each mistake id in a check's message (they come in the same order)."""
    lines = [line.split(":", 1)[1].strip() for line in (message or "").splitlines()
             if line.startswith("Likely mistake:")]
    return dict(zip(ids, lines)) if len(lines) == len(ids) else {}


def _pick(texts: list[str]) -> str | None:
    """The most common text, ties broken by the text itself (deterministic)."""
    if not texts:
        return None
    counts = Counter(texts)
    return min(counts, key=lambda t: (-counts[t], t))


def _shortest(texts: list[str]) -> str | None:
    """The shortest text (the easiest to show a class), ties broken by the text itself."""
    return min(texts, key=lambda t: (len(t.splitlines()), len(t), t)) if texts else None


def _exception_name(message: str | None) -> str:
    found = re.search(r"raised (\w+)", message or "")
    return found.group(1) if found else "an exception"


def _summarise_exercise(exercise: str, unit: str, rows: list[tuple[Submission, Entry]]) -> ExerciseSummary:
    n = len(rows)
    statuses = Counter(e.status for _, e in rows)
    passed = statuses.get("passed", 0)
    by_id: dict[str, list[tuple[Submission, Entry]]] = {}
    for sub, e in rows:
        for m in dict.fromkeys(e.mistakes):  # a submission counts once per mistake
            by_id.setdefault(m, []).append((sub, e))
    mistakes = []
    for m, found in by_id.items():
        descriptions = [d for _, e in found if (d := _descriptions(e.message, e.mistakes).get(m))]
        examples = [anonymise(e.message, sub.names) for sub, e in found if e.message]
        function = EXERCISES[exercise].function if exercise in EXERCISES else exercise
        codes = [c for sub, e in found if (c := anonymise_code(e.code, function, sub.names))]
        mistakes.append(MistakeCount(m, len(found), len(found) / n, _pick(descriptions), _pick(examples),
                                     lesson_links(exercise, m), _shortest(codes)))
    mistakes.sort(key=lambda c: (-c.count, c.id))
    max_points = max((e.max_points for _, e in rows), default=0.0)
    return ExerciseSummary(
        exercise=exercise, unit=unit, submissions=n, passed=passed, pass_rate=passed / n if n else 0.0,
        max_points=max_points, mean_points=sum(e.points for _, e in rows) / n if n else 0.0,
        scores=_distribution(e.points for _, e in rows), statuses=dict(statuses.most_common()),
        mistakes=mistakes, unnamed_wrong=sum(1 for _, e in rows if e.status == "wrong" and not e.mistakes),
        errors=dict(Counter(_exception_name(e.message) for _, e in rows if e.status == "error").most_common()))


def _unit_order(unit: str) -> tuple:
    order = list(dict.fromkeys(e.unit for e in EXERCISES.values()))
    return (order.index(unit) if unit in order else len(order), unit)


def _exercise_order(exercise: str) -> tuple:
    order = list(EXERCISES)
    return (order.index(exercise) if exercise in order else len(order), exercise)


#: a mistake enters "what to revisit" when at least this share of its exercise's submissions made it ...
REVISIT_SHARE = 0.10
#: ... and at least this many submissions did
REVISIT_MIN_COUNT = 2
#: an exercise enters it when fewer than this share of its submissions passed
REVISIT_PASS_RATE = 0.5
REVISIT_MAX_ITEMS = 8


def summarise(source: str, subs: list[Submission]) -> ClassReport:
    """Count everything the report shows."""
    rows: dict[tuple[str, str], list[tuple[Submission, Entry]]] = {}
    for sub in subs:
        for e in sub.entries:
            rows.setdefault((e.unit, e.exercise), []).append((sub, e))
    exercises = {key: _summarise_exercise(key[1], key[0], r) for key, r in rows.items()}
    unit_names = sorted({s.unit for s in subs if s.unit} | {u for u, _ in rows}, key=_unit_order)
    units = []
    for unit in unit_names:
        own = [s for s in subs if s.unit == unit]
        totals = [s.points for s in own]
        units.append(UnitSummary(
            unit=unit, submissions=len(own),
            complete=sum(1 for s in own if s.entries and all(e.status == "passed" for e in s.entries)),
            max_points=max((s.max_points for s in own), default=0.0),
            mean_points=sum(totals) / len(own) if own else 0.0, scores=_distribution(totals),
            statuses=dict(Counter(s.status for s in own).most_common()),
            exercises=[exercises[k] for k in sorted((k for k in exercises if k[0] == unit),
                                                    key=lambda k: _exercise_order(k[1]))]))
    other = Counter(e.status for s in subs for e in s.entries if e.status not in ANSWER_STATUSES)
    report = ClassReport(source=source, submissions=len(subs),
                         statuses=dict(Counter(s.status for s in subs).most_common()),
                         other_statuses=dict(other.most_common()), units=units, revisit=[])
    report.revisit = _revisit(report)
    return report


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _revisit(report: ClassReport) -> list[Revisit]:
    """The points to take up in the next lab, drawn from the counts: the mistakes made by at least
    :data:`REVISIT_SHARE` (and :data:`REVISIT_MIN_COUNT`) of an exercise's submissions, most widespread
    first, then the exercises that fewer than :data:`REVISIT_PASS_RATE` of the submissions passed."""
    items = []
    for unit in report.units:
        for ex in unit.exercises:
            for m in ex.mistakes:
                if m.count >= REVISIT_MIN_COUNT and m.share >= REVISIT_SHARE:
                    what = m.description or m.id.replace("_", " ")
                    items.append(Revisit(
                        f"{ex.exercise}: {_pct(m.share)} of the submissions ({m.count} of {ex.submissions}) — {what}",
                        m.count, m.share, ex.exercise, m.id, m.lessons))
            answered = ex.submissions - sum(ex.statuses.get(s, 0) for s in ("not_implemented", "missing"))
            if ex.submissions >= REVISIT_MIN_COUNT and ex.pass_rate < REVISIT_PASS_RATE:
                parts = [f"{n} {status_words(s)}" for s, n in ex.statuses.items() if s != "passed"]
                text = (f"{ex.exercise}: only {_pct(ex.pass_rate)} passed ({ex.passed} of {ex.submissions}; "
                        f"{', '.join(parts)})")
                if answered < ex.submissions / 2:
                    text += " — most did not get to it: leave time for it in the lab"
                items.append(Revisit(text, ex.submissions - ex.passed, 1 - ex.pass_rate, ex.exercise, None,
                                     lesson_links(ex.exercise)))
    # the named misconceptions first (what a lab can address head-on), then exercises few passed
    items.sort(key=lambda r: (r.mistake is None, -r.share, -r.count, r.text))
    return items[:REVISIT_MAX_ITEMS]


