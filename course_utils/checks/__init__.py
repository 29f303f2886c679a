"""Exercise checks that say *what* is wrong, not only that something is.

Every check takes the learner's function, compares it with the course's reference on
random inputs from its own seeded ``torch.Generator`` (the global random state is never
touched) and returns a :class:`CheckResult`, which a notebook displays:

- ``passed``: the answer matches the reference on every input;
- ``not_implemented``: the function still raises ``NotImplementedError`` (no traceback);
- ``wrong``: it returned None, a wrong structure, shape or dtype, or wrong values; when the
  values match a deliberately wrong variant of the reference, the message names that
  mistake (gates in the wrong order, tanh where sigmoid belongs, a missing bias, ...),
  otherwise it shows the first place they differ;
- ``error``: it raised; the message shows the exception and the learner's own line.

In a notebook a failed check also writes one line to stderr (``CheckResult.announce``), so that
nbgrader, which gives 0 to a test cell with stderr output, scores it as the course does; pass
``quiet=True`` to skip that (the batch grader does). Every exercise is registered in
:data:`EXERCISES` (grade_id, the learner's function, its notebook, its check, what it must not call).

Tolerances (``rtol`` and ``atol`` of ``torch.allclose``): 1e-5 for float32, 1e-10 for
float64. ``clip_grad_norm`` is compared at 1e-5 / 1e-6, because adding ``eps`` to the norm
(as ``torch.nn.utils.clip_grad_norm_`` does) is allowed but not required.

| exercise (grade_id) | check |
| --- | --- |
| ``rnn_cell`` | :func:`check_rnn_cell` |
| ``rnn_forward`` | :func:`check_rnn_forward` |
| ``rnn_step_backward`` | :func:`check_rnn_step_backward` |
| ``rnn_backward`` | :func:`check_rnn_backward` |
| ``clip_grad_norm`` | :func:`check_clip_grad_norm` |
| ``lstm_cell`` | :func:`check_lstm_cell` |
| ``lstm_forward`` | :func:`check_lstm_forward` |
| ``lstm_cell_backward`` | :func:`check_lstm_cell_backward` |
| ``gru_cell`` | :func:`check_gru_cell` |
| ``gru_cell_chung`` | :func:`check_gru_cell_chung` |
| ``gru_forward`` | :func:`check_gru_forward` |
| ``build_model`` | :func:`check_adding_model` (trains the model: about 5 s on one CPU core) |
| ``make_batches`` | :func:`check_make_batches` |
| ``tbptt_step`` | :func:`check_tbptt_step` (judges the loss, the state and every parameter's ``.grad``) |
| ``perplexity`` | :func:`check_perplexity` |
| ``sample`` | :func:`check_sample` (every character one ``torch.multinomial`` draw from the given generator) |
| ``last_valid_output`` | :func:`check_last_valid_output` |
| ``final_states`` | :func:`check_final_states` |
"""

from .adding import check_adding_model
from .bptt import check_rnn_backward, check_rnn_step_backward
from .clipping import CLIP_TOLERANCES, check_clip_grad_norm
from .gru import check_gru_cell, check_gru_cell_chung
from .harness import TOLERANCES
from .lm import check_make_batches, check_perplexity, check_sample, check_tbptt_step, yours_or_reference
from .loops import check_gru_forward, check_lstm_forward
from .lstm import check_lstm_cell
from .lstm_backward import check_lstm_cell_backward
from .practice import check_final_states, check_last_valid_output
from .registry import EXERCISES, Exercise, exercises_of
from .result import MIME_TYPE, STATUSES, CheckResult
from .rnn import check_rnn_cell
from .rnn_forward import check_rnn_forward

__all__ = ["CheckResult", "STATUSES", "MIME_TYPE", "TOLERANCES", "CLIP_TOLERANCES", "EXERCISES", "Exercise",
           "exercises_of", "check_rnn_cell", "check_rnn_forward", "check_rnn_step_backward", "check_rnn_backward",
           "check_clip_grad_norm", "check_lstm_cell", "check_lstm_forward", "check_lstm_cell_backward",
           "check_gru_cell", "check_gru_cell_chung", "check_gru_forward", "check_adding_model", "check_make_batches",
           "check_tbptt_step", "check_perplexity", "check_sample", "yours_or_reference", "check_last_valid_output",
           "check_final_states"]
