"""The class report as pages: one self-contained HTML file, a Markdown file with its figures, the numbers as JSON.

Nothing on the page is fetched from elsewhere: the style is inline, there is no script, and the
histograms are PNG images embedded as ``data:`` URIs (in the Markdown version, files under
``figures/``). Links point only to the course's own lesson files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import sys
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._report_counts import (
    REVISIT_MIN_COUNT,
    REVISIT_PASS_RATE,
    REVISIT_SHARE,
    ClassReport,
    ExerciseSummary,
    UnitSummary,
    status_words,
)
from ._report_lessons import missing_lesson_sections

__all__ = ["histogram_png", "write_pages"]

_SOURCES = {"grader": "the course's batch grader (one JSON report per submission)",
            "nbgrader": "an nbgrader course (the check cells' outputs in the autograded notebooks)"}
_LANG = {"en": "English", "ko": "한국어 (Korean)"}
_NOTHING = (f"Nothing stands out: no mistake was made by {100 * REVISIT_SHARE:.0f}% (and {REVISIT_MIN_COUNT}) "
            f"of an exercise's submissions, and every exercise was passed by at least "
            f"{100 * REVISIT_PASS_RATE:.0f}% of them.")
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: .6rem 0; } th, td { border: 1px solid #ccc; padding: .25rem .5rem;
  text-align: left; vertical-align: top; } th { background: #f3f3f3; } td.n { text-align: right; }
pre { background: #f6f6f6; padding: .5rem; white-space: pre-wrap; } .muted { color: #666; }
.row { display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; } li { margin: .3rem 0; }
"""


# ------------------------------------------------------------------ figures
def histogram_png(scores: dict[str, int], max_points: float, title: str) -> bytes:
    """A small bar chart of how many submissions got each score, as PNG bytes."""
    fig = Figure(figsize=(3.4, 1.9), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.17, right=0.97, bottom=0.24, top=0.87)  # fixed margins: tight_layout is slow
    ax = fig.add_subplot()
    xs = [float(k) for k in scores]
    width = max(min((max_points or 1) / 12, 0.8), 0.05)
    ax.bar(xs, list(scores.values()), width=width, color="#4a78b5")
    ax.set_xlim(-width, max(max_points, max(xs, default=0)) + width)
    if len(set(xs) | {0.0, float(max_points)}) <= 12:
        ax.set_xticks(sorted(set(xs) | {0.0, float(max_points)}))  # the scores that occur, and the range
    ax.set_xlabel("points", fontsize=8)
    ax.set_ylabel("submissions", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.yaxis.get_major_locator().set_params(integer=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# -------------------------------------------------------------------- links
def _href(link: dict, base: str | None) -> str | None:
    if base is None:
        return None
    return f"{base.rstrip('/')}/{link['file']}#{link['anchor']}"


def _link_text(link: dict) -> str:
    return f"{link['lang'].upper()} {Path(link['file']).stem} § {link['heading']}"


# --------------------------------------------------------------------- HTML
def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _rich(text) -> str:
    """Escaped text with its `code spans` as <code>."""
    parts = _e(text).split("`")
    if len(parts) % 2 == 0:  # unbalanced backticks: leave them as they are
        return _e(text)
    return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _pts(points: float) -> str:
    return str(int(points)) if float(points).is_integer() else f"{points:.2f}".rstrip("0").rstrip(".")


def _html_links(links: list[dict], base: str | None) -> str:
    parts = []
    for link in links:
        href = _href(link, base)
        text = _e(_link_text(link))
        title = _e(f"{_LANG[link['lang']]}: lessons/{link['file']}")
        parts.append(f'<a href="{_e(href)}" title="{title}">{text}</a>' if href else text)
    return "; ".join(parts)


def _html_counts(title: str, counts: dict[str, int], empty: str) -> str:
    if not counts:
        return f"<p><b>{_e(title)}</b>: {_e(empty)}</p>"
    rows = "".join(f"<tr><td>{_e(status_words(s))} <span class='muted'>({_e(s)})</span></td>"
                   f"<td class='n'>{n}</td></tr>" for s, n in counts.items())
    return f"<table><tr><th>{_e(title)}</th><th>submissions</th></tr>{rows}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _html_exercise(ex: ExerciseSummary, png: bytes, base: str | None) -> str:
    out = [f"<h3>Exercise <code>{_e(ex.exercise)}</code></h3>", "<div class='row'><div>",
           "<table><tr><th>submissions</th><th>passed</th><th>pass rate</th><th>mean points</th></tr>",
           (f"<tr><td class='n'>{ex.submissions}</td><td class='n'>{ex.passed}</td><td class='n'>{_pct(ex.pass_rate)}"
            f"</td><td class='n'>{_pts(ex.mean_points)} / {_pts(ex.max_points)}</td></tr></table>"),
           _html_counts("status", ex.statuses, "none"), "</div>",
           _img(png, f"score distribution of {ex.exercise}"), "</div>"]
    if ex.errors:
        out.append("<p>Raised: " + ", ".join(f"<code>{_e(k)}</code> ({n})" for k, n in ex.errors.items()) + "</p>")
    if ex.mistakes:
        out.append("<table><tr><th>#</th><th>mistake (id)</th><th>submissions</th><th>share</th>"
                   "<th>what the check says</th><th>lessons</th></tr>")
        for rank, m in enumerate(ex.mistakes, 1):
            out.append(f"<tr><td class='n'>{rank}</td><td><code>{_e(m.id)}</code></td><td class='n'>{m.count}</td>"
                       f"<td class='n'>{_pct(m.share)}</td><td>{_rich(m.description or '')}</td>"
                       f"<td>{_html_links(m.lessons, base)}</td></tr>")
        out.append("</table>")
        for m in ex.mistakes:
            if m.example or m.code_example:
                out.append(f"<details><summary>Example of <code>{_e(m.id)}</code> (one submission, anonymised)"
                           f"</summary>")
                if m.code_example:
                    out.append(f"<p>The learner's function (comments and docstrings removed):</p>"
                               f"<pre><code>{_e(m.code_example)}</code></pre>")
                if m.example:
                    out.append(f"<p>What the check told the learner:</p><pre>{_e(m.example)}</pre>")
                out.append("</details>")
    else:
        out.append("<p class='muted'>No named mistake.</p>")
    if ex.unnamed_wrong:
        out.append(f"<p>{ex.unnamed_wrong} wrong answer{'s' if ex.unnamed_wrong > 1 else ''} that the check did "
                   f"not recognise as a known mistake.</p>")
    return "\n".join(out)


def _html_unit(unit: UnitSummary, figures: dict[str, bytes], base: str | None) -> str:
    out = [f"<h2 id='unit-{_e(unit.unit)}'>Unit {_e(unit.unit)}</h2>", "<div class='row'><div>",
           "<table><tr><th>submissions</th><th>passed every exercise</th><th>mean points</th></tr>",
           (f"<tr><td class='n'>{unit.submissions}</td><td class='n'>{unit.complete}</td>"
            f"<td class='n'>{_pts(unit.mean_points)} / {_pts(unit.max_points)}</td></tr></table>"),
           _html_counts("submission status", unit.statuses, "none"), "</div>",
           _img(figures[f"unit_{unit.unit}"], f"score distribution of unit {unit.unit}"), "</div>"]
    out += [_html_exercise(ex, figures[f"exercise_{unit.unit}_{ex.exercise}"], base) for ex in unit.exercises]
    return "\n".join(out)


def _csv_line(report: ClassReport) -> str | None:
    if report.csv_disagreements is None:
        return None
    if report.csv_disagreements == 0:
        return "The numbers agree with grades.csv, row by row."
    return (f"grades.csv disagrees with the reports in {report.csv_disagreements} place(s) (listed on the "
            f"terminal): grade the batch again, or rerun it with --resume, before using this page.")


def render_html(report: ClassReport, figures: dict[str, bytes], base: str | None) -> str:
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           "<title>Class report: what did the class get wrong?</title>", f"<style>{_STYLE}</style></head><body>",
           "<h1>Class report: what did the class get wrong?</h1>",
           (f"<p>{report.submissions} submissions, from {_e(_SOURCES.get(report.source, report.source))}. "
            f"Mistakes are counted by the checks' stable ids; a submission counts once per mistake. "
            f"No learner is named on this page.</p>")]
    if (line := _csv_line(report)) is not None:
        out.append(f"<p><b>{_e(line)}</b></p>")
    out.append("<h2 id='revisit'>What to revisit in the next lab</h2>")
    if report.revisit:
        out.append("<ol>" + "".join(f"<li>{_rich(r.text)}<br><span class='muted'>Lessons:</span> "
                                    f"{_html_links(r.lessons, base)}</li>" for r in report.revisit) + "</ol>")
    else:
        out.append(f"<p>{_e(_NOTHING)}</p>")
    out.append("<h2 id='statuses'>Not about the exercises</h2><div class='row'>")
    out.append(_html_counts("submission status", report.statuses, "none"))
    out.append(_html_counts("exercise status (not about the answer)", report.other_statuses,
                            "none: every exercise was judged on its answer"))
    out.append("</div><p class='muted'>Submission statuses: <i>ok</i> means every cell ran or raised normally; "
               "the others (timeouts, crashes, memory, invalid notebooks, tampering) need a look before the "
               "scores mean anything. Exercise statuses here are those that say nothing about the answer "
               "itself, such as calling the course's reference.</p>")
    out += [_html_unit(u, figures, base) for u in report.units]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- Markdown
def _m(text) -> str:
    """Text for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_links(links: list[dict], base: str | None) -> str:
    parts = []
    for link in links:
        href = _href(link, base)
        text = _link_text(link).replace("[", "(").replace("]", ")")
        parts.append(f"[{text}]({href.replace(' ', '%20')})" if href else text)
    return "; ".join(parts)


def _md_counts(title: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return [f"{title}: none", ""]
    return [f"| {title} | submissions |", "| --- | ---: |",
            *(f"| {status_words(s)} ({s}) | {n} |" for s, n in counts.items()), ""]


def render_markdown(report: ClassReport, figure_files: dict[str, str], base: str | None) -> str:
    out = ["# Class report: what did the class get wrong?", "",
           (f"{report.submissions} submissions, from {_SOURCES.get(report.source, report.source)}. Mistakes are "
            f"counted by the checks' stable ids; a submission counts once per mistake. No learner is named here."),
           ""]
    if (line := _csv_line(report)) is not None:
        out += [f"**{line}**", ""]
    out += ["## What to revisit in the next lab", ""]
    if report.revisit:
        for k, r in enumerate(report.revisit, 1):
            out += [f"{k}. {r.text}", f"   Lessons: {_md_links(r.lessons, base)}"]
        out.append("")
    else:
        out += [_NOTHING, ""]
    out += ["## Not about the exercises", ""]
    out += _md_counts("submission status", report.statuses)
    out += _md_counts("exercise status (not about the answer)", report.other_statuses)
    for unit in report.units:
        out += [f"## Unit {unit.unit}", "", "| submissions | passed every exercise | mean points |",
                "| ---: | ---: | ---: |",
                f"| {unit.submissions} | {unit.complete} | {_pts(unit.mean_points)} / {_pts(unit.max_points)} |", "",
                f"![score distribution of unit {unit.unit}]({figure_files[f'unit_{unit.unit}']})", ""]
        out += _md_counts("submission status", unit.statuses)
        for ex in unit.exercises:
            out += [f"### Exercise `{ex.exercise}`", "", "| submissions | passed | pass rate | mean points |",
                    "| ---: | ---: | ---: | ---: |",
                    (f"| {ex.submissions} | {ex.passed} | {_pct(ex.pass_rate)} | "
                     f"{_pts(ex.mean_points)} / {_pts(ex.max_points)} |"), "",
                    f"![score distribution of {ex.exercise}]({figure_files[f'exercise_{unit.unit}_{ex.exercise}']})",
                    ""]
            out += _md_counts("status", ex.statuses)
            if ex.errors:
                out += ["Raised: " + ", ".join(f"`{k}` ({n})" for k, n in ex.errors.items()), ""]
            if ex.mistakes:
                out += ["| # | mistake (id) | submissions | share | what the check says | lessons |",
                        "| ---: | --- | ---: | ---: | --- | --- |"]
                out += [f"| {k} | `{m.id}` | {m.count} | {_pct(m.share)} | {_m(m.description or '')} | "
                        f"{_m(_md_links(m.lessons, base))} |" for k, m in enumerate(ex.mistakes, 1)]
                out.append("")
                for m in ex.mistakes:
                    if m.example or m.code_example:
                        out += [f"Example of `{m.id}` (one submission, anonymised):", ""]
                    if m.code_example:
                        out += ["The learner's function (comments and docstrings removed):", "", "```python",
                                m.code_example, "```", ""]
                    if m.example:
                        out += ["What the check told the learner:", "", "```text", m.example, "```", ""]
            else:
                out += ["No named mistake.", ""]
            if ex.unnamed_wrong:
                out += [f"{ex.unnamed_wrong} wrong answer(s) that the check did not recognise as a known mistake.",
                        ""]
    return "\n".join(out).rstrip("\n") + "\n"


# -------------------------------------------------------------------- files
def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_pages(report: ClassReport, out: Path, *, lessons: Path | None = None,
                lessons_url: str | None = None) -> dict[str, Path]:
    """Write the report's files into ``out``; return their paths by kind (html, markdown, json)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    if lessons is not None:
        for problem in missing_lesson_sections(lessons):
            print(f"warning: a linked lesson section is missing: {problem}", file=sys.stderr)
    base = lessons_url or (Path(os.path.relpath(lessons.resolve(), out.resolve())).as_posix()
                           if lessons is not None else None)
    figures, files = {}, {}
    for unit in report.units:
        key = f"unit_{unit.unit}"
        figures[key] = histogram_png(unit.scores, unit.max_points, f"unit {unit.unit}")
        for ex in unit.exercises:
            figures[f"exercise_{unit.unit}_{ex.exercise}"] = histogram_png(ex.scores, ex.max_points,
                                                                           ex.exercise)
    for key, png in figures.items():
        name = f"figures/{_safe(key)}.png"
        (out / name).write_bytes(png)
        files[key] = name
    paths = {"html": out / "class_report.html", "markdown": out / "class_report.md", "json": out / "class_report.json"}
    paths["html"].write_text(render_html(report, figures, base), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report, files, base), encoding="utf-8")
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths
