"""The result a check returns, and how a learner's exception is reported (with the learner's own line)."""

from __future__ import annotations

import math
import re
import sys
import sysconfig
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckResult", "STATUSES", "MIME_TYPE", "not_implemented", "raised", "type_name", "fmt",
           "uses_reference"]

STATUSES = ("passed", "not_implemented", "wrong", "error", "uses_reference")
#: the MIME type under which a displayed result carries its fields (read by the class report)
MIME_TYPE = "application/vnd.rnn-course.check+json"

_ICONS = {"passed": "✅", "not_implemented": "✏️", "wrong": "❌", "error": "⚠️", "uses_reference": "🚫"}
_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # course_utils/
_LIBRARY_DIRS = tuple(
    {str(Path(p).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")
     if (p := sysconfig.get_paths().get(key))} | {str(Path(torch.__file__).resolve().parent)}
)
_NOTEBOOK_CELL = re.compile(r"(ipykernel_\d+|<ipython-input-)")


def fmt(value: float, decimals: int = 4) -> str:
    """A number as the messages print it: 4 decimals by default (deterministic text for nbval)."""
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _fmt_points(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else f"{p:g}"


# ------------------------------------------------------------------ the result
@dataclass(frozen=True)
class CheckResult:
    """The outcome of one exercise check.

    Attributes:
        exercise: the exercise's ``grade_id``, e.g. ``"rnn_cell"``.
        status: ``"passed"``, ``"not_implemented"``, ``"wrong"`` or ``"error"``.
        passed: ``status == "passed"``.
        points: points earned, ``max_points`` if passed, else 0.
        max_points: points the exercise is worth.
        message: what was checked, or what is wrong and where.
    """

    exercise: str
    status: str
    points: float
    max_points: float
    message: str
    mistakes: tuple[str, ...] = ()
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"CheckResult: expected status in {STATUSES}, got {self.status!r}")
        if not (0 <= self.points <= self.max_points):
            raise ValueError(f"CheckResult: expected 0 <= points <= max_points ({self.max_points}), got {self.points}")
        object.__setattr__(self, "mistakes", tuple(self.mistakes))
        object.__setattr__(self, "passed", self.status == "passed")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for the grader's reports); ``mistakes`` as a list of stable ids."""
        d = asdict(self)
        d["mistakes"] = list(self.mistakes)
        return d

    def __str__(self) -> str:
        return (f"{_ICONS[self.status]} {self.message}\n"
                f"({_fmt_points(self.points)}/{_fmt_points(self.max_points)} points)")

    __repr__ = __str__  # text/plain in a notebook: deterministic, no addresses

    def _repr_markdown_(self) -> str:
        lines = self.message.split("\n")
        body = "  \n".join(_md_escape(line) for line in lines)
        score = f"{_fmt_points(self.points)}/{_fmt_points(self.max_points)} points"
        return f"{_ICONS[self.status]} {body}\n\n*{score}*\n"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """text/plain, text/markdown and the fields as JSON (:data:`MIME_TYPE`), which class reports read."""
        return {"text/plain": str(self), "text/markdown": self._repr_markdown_(), MIME_TYPE: self.to_dict()}

    def announce(self, stream=None) -> "CheckResult":
        """Write one line to stderr when the check did not pass; return self.

        nbgrader gives 0 points to a test cell with stderr output, and full points otherwise; the
        learner still sees the diagnosis (the displayed result) and Run All goes on.
        """
        if not self.passed:
            stream = stream or sys.stderr
            stream.write(f"{self.exercise}: {self.status.replace('_', ' ')} — "
                         f"{_fmt_points(self.points)}/{_fmt_points(self.max_points)} points\n")
            stream.flush()
        return self


def _md_escape(line: str) -> str:
    """Escape Markdown outside `code spans`; keep the line's indentation visible."""
    parts = line.split("`")
    if len(parts) % 2 == 0:  # unbalanced backticks: the whole line is text, each backtick escaped once
        parts = [line]
    out = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append(f"`{part}`")
        else:
            out.append(re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", part))
    text = "".join(out)
    stripped = text.lstrip(" ")
    return "&nbsp;" * (len(text) - len(stripped)) + stripped


def not_implemented(exercise: str, max_points: float) -> CheckResult:
    return CheckResult(exercise, "not_implemented", 0, max_points,
                       f"{exercise}: not implemented yet — write your code in the cell above and run it again.")


# ------------------------------------------------------- the learner's own line
def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r + "/") or path.startswith(r + "\\") for r in roots)


def _learner_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The last traceback frame that is the learner's code: not course_utils, not torch, not Python."""
    frames = traceback.extract_tb(exc.__traceback__)
    own_package = str(_PACKAGE_DIR)
    outside = []
    for frame in frames:
        path = frame.filename
        resolved = str(Path(path).resolve()) if not path.startswith("<") else path
        if not _inside(resolved, (own_package,)):
            outside.append((frame, resolved))
    own = [f for f, resolved in outside if not _inside(resolved, _LIBRARY_DIRS)]
    if own:
        return own[-1]
    return outside[-1][0] if outside else None


def _where(frame: traceback.FrameSummary) -> str:
    if _NOTEBOOK_CELL.search(frame.filename):
        place = "your cell"
    else:
        place = Path(frame.filename).name
    text = f"line {frame.lineno} of {place}, in `{frame.name}`"
    if frame.line:
        text += f": `{frame.line.strip()}`"
    return text


def raised(exercise: str, exc: Exception, max_points: float, *, during: str = "", hint: str | None = None,
           who: str = "your function") -> CheckResult:
    """A result for an exception from the learner's code, pointing at the learner's own line."""
    detail = str(exc).strip().split("\n")[0]
    head = f"{exercise}: {who} raised {type(exc).__name__}" + (f": {detail}" if detail else "")
    lines = [head]
    remote = getattr(exc, "remote_where", None)  # raised in the grader's sandbox: its line came with it
    frame = None if remote is not None else _learner_frame(exc)
    if remote:
        lines.append(f"at {remote}")
    elif frame is not None:
        lines.append(f"at {_where(frame)}")
    if during:
        lines.append(f"(called with {during})")
    if hint:
        lines.append(f"Hint: {hint}")
    return CheckResult(exercise, "error", 0, max_points, "\n".join(lines))


def type_name(value: Any) -> str:
    """A short description of a value's type for messages: ``None``, ``Tensor``, ``tuple (Tensor, Tensor)``."""
    if value is None:
        return "None"
    remote = vars(value).get("_remote_type") if hasattr(value, "__dict__") and not isinstance(value, type) else None
    if isinstance(remote, str):  # a value the grader's sandbox could only describe
        return remote
    if isinstance(value, (tuple, list)):
        inner = ", ".join(type_name(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{type(value).__name__} ({inner})"
    return type(value).__name__



def uses_reference(exercise: str, max_points: float, function: str, what: str) -> CheckResult:
    """0 points: the learner's function reaches the reference (``what`` says how and where)."""
    return CheckResult(exercise, "uses_reference", 0, max_points,
                       f"{exercise}: `{function}` uses {what} instead of computing the result itself. The "
                       f"exercise asks you to write it from tensor operations; the reference is there to compare "
                       f"with after the check.", ("uses_reference",))
