"""course_utils: the shared package of the RNN → LSTM → GRU course.

Importing it does nothing but define things: seeding and device choice are the
explicit calls :func:`setup`, :func:`seed_everything` and :func:`default_device`.
"""

from .functional import gru_cell, gru_cell_gates, lstm_cell, lstm_cell_gates, rnn_cell
from .modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .runtime import default_device, seed_everything, setup

__all__ = [
    "rnn_cell", "lstm_cell", "gru_cell", "lstm_cell_gates", "gru_cell_gates",
    "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU",
    "default_device", "seed_everything", "setup",
]

__version__ = "0.1.0"
