"""The course's exercises: which function each one asks for, in which notebook, checked by what.

This table is the one place the grader, nbgrader's workflow, the class report and the docs
read the exercises from (docs/CONTRACTS.md lists the same names). ``forbidden`` names what the
learner's function must not reach, as dotted prefixes: the course's reference implementation
and torch's own recurrent cells. The grader looks for them in the syntax tree of the cell that
defines the function (and of the notebook's functions it calls) and at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Exercise", "EXERCISES", "exercises_of", "CELL_REFERENCES", "LM_REFERENCES", "register"]

#: torch's recurrent implementations a hand-written cell must not hand its step to
_TORCH_RECURRENT = ("torch.nn.RNNCell", "torch.nn.LSTMCell", "torch.nn.GRUCell", "torch.nn.RNN", "torch.nn.LSTM",
                    "torch.nn.GRU", "torch.nn.modules.rnn", "torch.rnn_tanh_cell", "torch.rnn_relu_cell",
                    "torch.lstm_cell", "torch.gru_cell", "torch.rnn_tanh", "torch.rnn_relu", "torch.lstm",
                    "torch.gru", "torch._VF", "torch.ops.aten", "torch._C._VariableFunctions")
#: the course's reference implementations of the cells and layers
_COURSE_RECURRENT = ("course_utils.functional", "course_utils.modules", "course_utils.RNNCell",
                     "course_utils.LSTMCell", "course_utils.GRUCell", "course_utils.RNN", "course_utils.LSTM",
                     "course_utils.GRU", "course_utils.checks", "course_utils.grading")
CELL_REFERENCES = _TORCH_RECURRENT + _COURSE_RECURRENT
#: the course's language-model references (unit 06): a learner's batches, step, perplexity and sampler must not call them
LM_REFERENCES = ("course_utils.lm", "course_utils.training.CharLM.sample", "course_utils.checks", "course_utils.grading")
#: a loop over time must not hand the whole sequence to a layer (a cell step, its own or the course's, is allowed:
#: the exercise is the loop, and a learner who has not finished the cell exercise may loop over the reference cell)
def _loop_references(kind: str) -> tuple[str, ...]:
    return (f"course_utils.functional.{kind}_forward", "course_utils.modules.RNN", "course_utils.modules.LSTM",
            "course_utils.modules.GRU", "course_utils.packing", "torch.nn.RNN", "torch.nn.LSTM", "torch.nn.GRU",
            "torch.nn.modules.rnn.RNNBase", "torch._VF.rnn_tanh", "torch._VF.rnn_relu", "torch._VF.lstm",
            "torch._VF.gru", "torch.rnn_tanh", "torch.rnn_relu", "torch.lstm", "torch.gru", "torch.ops.aten",
            "course_utils.checks", "course_utils.grading")


#: a backward pass written by hand must not ask autograd for the answer (``Tensor.backward`` is not listed:
#: it lives in torch/_tensor.py with ``__rsub__`` and other operators a run-time watch would then flag)
_AUTOGRAD = ("torch.autograd", "torch.func")


@dataclass(frozen=True)
class Exercise:
    """One graded exercise.

    Attributes:
        grade_id: nbgrader's ``grade_id`` of the solution cell (its check cell is ``check_<grade_id>``).
        function: the name the learner defines.
        unit: the notebook's file stem, e.g. ``"01_rnn"``.
        check: the check, ``check(fn, *, max_points, seed, quiet) -> CheckResult``.
        forbidden: dotted prefixes the learner's function must not reach (the reference).
        kind: ``"function"`` (called with plain values through the grader's sandbox) or ``"model"``
            (``build_model``: built, trained and evaluated through the sandbox).
    """

    grade_id: str
    function: str
    unit: str
    check: Callable
    forbidden: tuple[str, ...] = CELL_REFERENCES
    kind: str = "function"
    extra: dict = field(default_factory=dict)


EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    if exercise.grade_id in EXERCISES:
        raise ValueError(f"exercise {exercise.grade_id!r} is registered twice")
    EXERCISES[exercise.grade_id] = exercise
    return exercise


def exercises_of(unit: str) -> list[Exercise]:
    """The exercises of one notebook, in the order they were registered."""
    return [e for e in EXERCISES.values() if e.unit == unit]


def _register_course() -> None:
    from .adding import check_adding_model
    from .bptt import check_rnn_backward, check_rnn_step_backward
    from .clipping import check_clip_grad_norm
    from .gru import check_gru_cell, check_gru_cell_chung
    from .lm import check_make_batches, check_perplexity, check_sample, check_tbptt_step
    from .loops import check_gru_forward, check_lstm_forward
    from .lstm import check_lstm_cell
    from .lstm_backward import check_lstm_cell_backward
    from .practice import check_final_states, check_last_valid_output
    from .rnn import check_rnn_cell
    from .rnn_forward import check_rnn_forward

    register(Exercise("rnn_cell", "rnn_cell", "01_rnn", check_rnn_cell))
    register(Exercise("rnn_forward", "rnn_forward", "01_rnn", check_rnn_forward, forbidden=_loop_references("rnn")))
    register(Exercise("rnn_step_backward", "rnn_step_backward", "02_gradients_through_time",
                      check_rnn_step_backward, forbidden=CELL_REFERENCES + _AUTOGRAD))
    register(Exercise("rnn_backward", "rnn_backward", "02_gradients_through_time", check_rnn_backward,
                      forbidden=CELL_REFERENCES + _AUTOGRAD))
    register(Exercise("clip_grad_norm", "clip_grad_norm", "02_gradients_through_time", check_clip_grad_norm,
                      forbidden=("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm",
                                 "torch.nn.utils.get_total_norm", "torch.nn.utils.clip_grads_with_norm_",
                                 "torch.nn.utils.clip_grad", "course_utils.gradients", "course_utils.training",
                                 "course_utils.checks", "course_utils.grading")))
    register(Exercise("lstm_cell", "lstm_cell", "03_lstm", check_lstm_cell))
    register(Exercise("lstm_forward", "lstm_forward", "03_lstm", check_lstm_forward, forbidden=_loop_references("lstm")))
    register(Exercise("lstm_cell_backward", "lstm_cell_backward", "03_lstm", check_lstm_cell_backward,
                      forbidden=CELL_REFERENCES + ("torch.autograd", "torch.func")))
    register(Exercise("gru_cell", "gru_cell", "04_gru", check_gru_cell))
    register(Exercise("gru_cell_chung", "gru_cell_chung", "04_gru", check_gru_cell_chung))
    register(Exercise("gru_forward", "gru_forward", "04_gru", check_gru_forward, forbidden=_loop_references("gru")))
    register(Exercise("build_model", "build_model", "05_comparison", check_adding_model,
                      forbidden=("course_utils.checks", "course_utils.grading"), kind="model"))
    for name, check in (("make_batches", check_make_batches), ("tbptt_step", check_tbptt_step),
                        ("perplexity", check_perplexity), ("sample", check_sample)):
        register(Exercise(name, name, "06_char_lm", check, forbidden=LM_REFERENCES))
    register(Exercise("last_valid_output", "last_valid_output", "07_layers_in_practice", check_last_valid_output,
                      forbidden=("course_utils.practice.last_valid_output", "course_utils.checks",
                                 "course_utils.grading")))
    register(Exercise("final_states", "final_states", "07_layers_in_practice", check_final_states,
                      forbidden=("course_utils.practice.final_states", "course_utils.checks",
                                 "course_utils.grading")))


_register_course()
