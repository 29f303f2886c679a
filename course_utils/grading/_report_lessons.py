"""Which lesson sections teach what the checks diagnose: the table the class report links from.

Headings are named by their exact text (English and Korean lessons); the anchor is the one GitHub and
MyST (``heading_anchors``) give them. ``tests/test_class_report.py`` checks that every heading exists
and that every mistake id the checks name has a row.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["EXERCISE_SECTIONS", "MISTAKE_SECTIONS", "SECTIONS", "heading_slug", "lesson_headings", "lesson_links",
           "missing_lesson_sections"]

#: section key -> {language: (lesson file under lessons/, heading text as written)}
SECTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "rnn.step": {"en": ("en/01_rnn.md", "2. One step"),
                 "ko": ("ko/01_rnn.md", "1. 은닉 상태: 지금까지 본 것의 요약")},
    "rnn.code": {"en": ("en/01_rnn.md", "2. One step"), "ko": ("ko/01_rnn.md", "수식과 코드 맞추기")},
    "rnn.mistakes": {"en": ("en/01_rnn.md", "Common mistakes"), "ko": ("ko/01_rnn.md", "4. 자주 하는 실수")},
    "rnn.exercise": {"en": ("en/01_rnn.md", "Exercise: `rnn_cell`"), "ko": ("ko/01_rnn.md", "3. 노트북에서 할 일")},
    "clip.clipping": {"en": ("en/02_gradients_through_time.md", "4. Gradient clipping"),
                      "ko": ("ko/02_gradients_through_time.md", "4. 기울기 클리핑: 폭발만 막는 안전장치")},
    "clip.mistakes": {"en": ("en/02_gradients_through_time.md", "Common mistakes"),
                      "ko": ("ko/02_gradients_through_time.md", "6. 자주 하는 실수")},
    "clip.exercise": {"en": ("en/02_gradients_through_time.md", "Exercise: `clip_grad_norm`"),
                      "ko": ("ko/02_gradients_through_time.md", "5. 노트북에서 할 일")},
    "lstm.equations": {"en": ("en/03_lstm.md", "2. The equations"), "ko": ("ko/03_lstm.md", "2. 네 게이트와 셀 갱신")},
    "lstm.code": {"en": ("en/03_lstm.md", "2. The equations"), "ko": ("ko/03_lstm.md", "코드에서는")},
    "lstm.mistakes": {"en": ("en/03_lstm.md", "Common mistakes"), "ko": ("ko/03_lstm.md", "5. 자주 하는 실수")},
    "lstm.exercise": {"en": ("en/03_lstm.md", "Exercise: `lstm_cell`"), "ko": ("ko/03_lstm.md", "4. 노트북에서 할 일")},
    "gru.equations": {"en": ("en/04_gru.md", "2. The equations (PyTorch's convention)"),
                      "ko": ("ko/04_gru.md", "1. PyTorch의 GRU")},
    "gru.code": {"en": ("en/04_gru.md", "2. The equations (PyTorch's convention)"),
                 "ko": ("ko/04_gru.md", "코드에서는")},
    "gru.conventions": {"en": ("en/04_gru.md", "4. Two conventions, and why they differ"),
                        "ko": ("ko/04_gru.md", "2. 두 가지 표기: PyTorch 형태와 교과서 형태")},
    "gru.mistakes": {"en": ("en/04_gru.md", "Common mistakes"), "ko": ("ko/04_gru.md", "5. 자주 하는 실수")},
    "gru.exercise": {"en": ("en/04_gru.md", "Exercise: `gru_cell`"), "ko": ("ko/04_gru.md", "4. 노트북에서 할 일")},
    "cmp.exercise": {"en": ("en/05_comparison.md", "Exercise: `build_model`"),
                     "ko": ("ko/05_comparison.md", "5. 노트북에서 할 일")},
    "cmp.mistakes": {"en": ("en/05_comparison.md", "Common mistakes"),
                     "ko": ("ko/05_comparison.md", "6. 자주 하는 실수")},
}

#: (exercise, stable mistake id) -> the sections that teach the point (the exercise's "common mistakes"
#: section is linked as well, see :func:`lesson_links`)
MISTAKE_SECTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    **{("rnn_cell", m): ("rnn.step",) for m in (
        "relu_for_tanh", "nonlinearity_ignored", "sigmoid_for_tanh", "no_nonlinearity", "missing_bias_ih",
        "missing_bias_hh", "missing_both_biases", "hidden_state_ignored", "state_not_updated", "returns_input")},
    **{("rnn_cell", m): ("rnn.code",) for m in (
        "transposed_weight_ih", "transposed_weight_hh", "transposed_both_weights", "swapped_weights")},
    **{("clip_grad_norm", m): ("clip.clipping",) for m in (
        "per_tensor_clipping", "scales_up_small_gradients", "not_clipped", "squared_norm_scale",
        "summed_norms_scale", "total_norm_squared", "total_norm_summed", "total_norm_max",
        "total_norm_after_clipping")},
    ("lstm_cell", "gate_order"): ("lstm.code",),
    **{("lstm_cell", m): ("lstm.equations",) for m in (
        "tanh_for_sigmoid_gate", "tanh_for_all_gates", "sigmoid_for_tanh_candidate", "missing_bias_ih",
        "missing_bias_hh", "missing_both_biases", "c_for_tanh_c", "sigmoid_in_output", "h_from_old_c",
        "missing_forget_gate", "missing_input_gate", "state_not_updated")},
    ("lstm_cell", "returns_c_h"): ("lstm.exercise",),
    **{("gru_cell", m): ("gru.conventions",) for m in (
        "z_swapped", "reset_before_matmul", "chung_form", "b_hn_outside_reset")},
    **{("gru_cell", m): ("gru.code",) for m in ("gate_order", "reset_unused")},
    **{("gru_cell", m): ("gru.equations",) for m in (
        "tanh_for_sigmoid_gate", "tanh_for_both_gates", "sigmoid_for_tanh_candidate", "missing_bias_ih",
        "missing_bias_hh", "missing_both_biases", "returns_candidate", "state_not_updated")},
}

#: exercise -> (the section of its exercise, the section of its common mistakes)
EXERCISE_SECTIONS: dict[str, tuple[str, str]] = {
    "rnn_cell": ("rnn.exercise", "rnn.mistakes"),
    "clip_grad_norm": ("clip.exercise", "clip.mistakes"),
    "lstm_cell": ("lstm.exercise", "lstm.mistakes"),
    "gru_cell": ("gru.exercise", "gru.mistakes"),
    "build_model": ("cmp.exercise", "cmp.mistakes"),
}


def heading_slug(heading: str) -> str:
    """The anchor GitHub (and MyST with ``heading_anchors``) gives a heading: lower case, punctuation
    dropped, spaces to hyphens; letters of every script are kept."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def lesson_links(exercise: str, mistake: str | None = None) -> list[dict[str, str]]:
    """The lesson sections for a mistake (or, with ``mistake=None``, for the exercise as a whole), without
    repeats: ``[{"lang", "file", "heading", "anchor"}]``, English first."""
    keys: list[str] = []
    if mistake is not None:
        keys += MISTAKE_SECTIONS.get((exercise, mistake), ())
    own = EXERCISE_SECTIONS.get(exercise)
    if own:
        keys += [own[1]] if mistake is not None else list(own)
    links, seen = [], set()
    for lang in ("en", "ko"):
        for key in keys:
            file, heading = SECTIONS[key][lang]
            if (file, heading) not in seen:
                seen.add((file, heading))
                links.append({"lang": lang, "file": file, "heading": heading, "anchor": heading_slug(heading)})
    return links


def lesson_headings(text: str) -> list[str]:
    """The headings of a Markdown lesson, as written (``#`` lines inside fenced code are not headings)."""
    headings, fence = [], None
    for line in text.splitlines():
        stripped = line.strip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * len(marker.group(1))
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None and (m := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            headings.append(m.group(1))
    return headings


def missing_lesson_sections(lessons: str | Path) -> list[str]:
    """The sections of :data:`SECTIONS` that ``lessons`` (the lessons/ folder) lacks, one line each."""
    problems = []
    for key, langs in SECTIONS.items():
        for file, heading in langs.values():
            path = Path(lessons) / file
            if not path.is_file():
                problems.append(f"{key}: no lesson file {file}")
            elif heading not in lesson_headings(path.read_text(encoding="utf-8")):
                problems.append(f"{key}: no heading {heading!r} in {file}")
    return problems


