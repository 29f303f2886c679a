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
    "rnn.forward": {"en": ("en/01_rnn.md", "Exercise: `rnn_forward`"), "ko": ("ko/01_rnn.md", "연습 `rnn_forward`")},
    "bptt.exercise": {"en": ("en/02_gradients_through_time.md", "Exercises: `rnn_step_backward` and `rnn_backward`"),
                      "ko": ("ko/02_gradients_through_time.md", "연습 `rnn_step_backward`와 `rnn_backward`")},
    "lstm.loops": {"en": ("en/03_lstm.md", "Exercises: `lstm_forward` and `lstm_cell_backward`"),
                   "ko": ("ko/03_lstm.md", "연습 `lstm_forward`와 `lstm_cell_backward`")},
    "gru.more": {"en": ("en/04_gru.md", "Exercises: `gru_cell_chung` and `gru_forward`"),
                 "ko": ("ko/04_gru.md", "연습 `gru_cell_chung`과 `gru_forward`")},
    "lm.batches": {"en": ("en/06_char_lm.md", "2. Batches for a long text"),
                   "ko": ("ko/06_char_lm.md", "2. 긴 글을 배치로 자르기")},
    "lm.tbptt": {"en": ("en/06_char_lm.md", "3. Truncated backpropagation through time"),
                 "ko": ("ko/06_char_lm.md", "3. 절단된 시간에 따른 역전파")},
    "lm.perplexity": {"en": ("en/06_char_lm.md", "4. Perplexity, and a baseline to beat"),
                      "ko": ("ko/06_char_lm.md", "4. 퍼플렉서티와 넘어야 할 기준선")},
    "lm.sampling": {"en": ("en/06_char_lm.md", "5. Sampling and temperature"),
                    "ko": ("ko/06_char_lm.md", "5. 샘플링과 온도")},
    "lm.exercise": {"en": ("en/06_char_lm.md", "Exercises"), "ko": ("ko/06_char_lm.md", "7. 연습 문제")},
    "lm.mistakes": {"en": ("en/06_char_lm.md", "Common mistakes"), "ko": ("ko/06_char_lm.md", "8. 자주 하는 실수")},
    "practice.padding": {"en": ("en/07_layers_in_practice.md",
                                "1. Padding: a rectangle for sequences of different lengths"),
                         "ko": ("ko/07_layers_in_practice.md", "1. 패딩: 길이가 다른 시퀀스를 직사각형에 담기")},
    "practice.bidirectional": {"en": ("en/07_layers_in_practice.md", "5. Stacked and bidirectional layers"),
                               "ko": ("ko/07_layers_in_practice.md", "5. 층 쌓기와 양방향 층")},
    "practice.last": {"en": ("en/07_layers_in_practice.md", "Exercise 1: `last_valid_output`"),
                      "ko": ("ko/07_layers_in_practice.md", "연습 1: `last_valid_output`")},
    "practice.final": {"en": ("en/07_layers_in_practice.md", "Exercise 2: `final_states`"),
                       "ko": ("ko/07_layers_in_practice.md", "연습 2: `final_states`")},
    "practice.mistakes": {"en": ("en/07_layers_in_practice.md", "Common mistakes"),
                          "ko": ("ko/07_layers_in_practice.md", "자주 하는 실수")},
}

#: the named mistakes of one check module: every exercise of that module may name them (they share variants)
_RNN_FORWARD = ("h0_ignored", "hs_includes_h0", "input_not_advanced", "last_state_wrong", "nonlinearity_ignored",
                "returns_last_state_only", "stacked_wrong_dim", "state_not_carried", "states_not_stacked")
_LM_DATA = ("base_2", "chunks_not_continuing", "mean_of_sequence_perplexities", "no_exp", "no_log_softmax",
            "probabilities_not_log", "streams_interleaved", "summed_loss", "targets_not_shifted",
            "targets_shifted_wrong_way")
_LM_MODEL = ("argmax_sampling", "generator_not_used", "grad_not_zeroed", "loss_summed", "state_not_carried",
             "state_not_detached", "targets_are_inputs", "temperature_after_softmax", "temperature_multiplied",
             "zero_grad_after_backward")
_PRACTICE = ("direction_major_layout", "directions_swapped", "first_layer", "first_step", "longest_length_for_all",
             "off_by_one", "padded_last_step", "reshape_without_permute", "wrong_time_dim")
_LM_SECTION = {"base_2": "lm.perplexity", "mean_of_sequence_perplexities": "lm.perplexity", "no_exp": "lm.perplexity",
               "no_log_softmax": "lm.perplexity", "probabilities_not_log": "lm.perplexity",
               "summed_loss": "lm.perplexity", "argmax_sampling": "lm.sampling", "generator_not_used": "lm.sampling",
               "temperature_after_softmax": "lm.sampling", "temperature_multiplied": "lm.sampling"}

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
    ("gru_cell", "torch_form"): ("gru.conventions",),
    ("lstm_cell", "chunk_wrong_dim"): ("lstm.code",),
    **{("clip_grad_norm", m): ("clip.exercise",) for m in ("total_norm_not_0d", "total_norm_not_a_tensor")},
    **{("rnn_forward", m): ("rnn.forward",) for m in _RNN_FORWARD},
    **{(g, m): ("bptt.exercise",) for g in ("rnn_step_backward", "rnn_backward")
       for m in ("bias_grad_not_summed", "transposed_weight_grad")},
    **{("gru_cell_chung", m): ("gru.conventions",) for m in ("chung_form", "state_not_updated", "torch_form")},
    **{(g, m): (_LM_SECTION.get(m, "lm.batches"),) for g in ("make_batches", "perplexity") for m in _LM_DATA},
    **{(g, m): (_LM_SECTION.get(m, "lm.tbptt"),) for g in ("tbptt_step", "sample") for m in _LM_MODEL},
    **{(g, m): ("practice.padding" if g == "last_valid_output" else "practice.bidirectional",)
       for g in ("last_valid_output", "final_states") for m in _PRACTICE},
}

#: exercise -> (the section of its exercise, the section of its common mistakes)
EXERCISE_SECTIONS: dict[str, tuple[str, str]] = {
    "rnn_cell": ("rnn.exercise", "rnn.mistakes"),
    "clip_grad_norm": ("clip.exercise", "clip.mistakes"),
    "lstm_cell": ("lstm.exercise", "lstm.mistakes"),
    "gru_cell": ("gru.exercise", "gru.mistakes"),
    "build_model": ("cmp.exercise", "cmp.mistakes"),
    "rnn_forward": ("rnn.forward", "rnn.mistakes"),
    "rnn_step_backward": ("bptt.exercise", "clip.mistakes"),
    "rnn_backward": ("bptt.exercise", "clip.mistakes"),
    "lstm_forward": ("lstm.loops", "lstm.mistakes"),
    "lstm_cell_backward": ("lstm.loops", "lstm.mistakes"),
    "gru_cell_chung": ("gru.more", "gru.mistakes"),
    "gru_forward": ("gru.more", "gru.mistakes"),
    "make_batches": ("lm.exercise", "lm.mistakes"),
    "tbptt_step": ("lm.exercise", "lm.mistakes"),
    "perplexity": ("lm.exercise", "lm.mistakes"),
    "sample": ("lm.exercise", "lm.mistakes"),
    "last_valid_output": ("practice.last", "practice.mistakes"),
    "final_states": ("practice.final", "practice.mistakes"),
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


