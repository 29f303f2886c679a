"""Interactive explorers for the RNN → LSTM → GRU course (ipywidgets + Matplotlib).

Each explorer is a class that owns its controls, its computed state and its figure; show one
by making it the last expression of a notebook cell (or ``display(explorer)``). Its display carries
the live widget and, next to it, a PNG of its figure, which a static view (a stored notebook opened
without a kernel, nbviewer, GitHub) shows instead.

- :class:`RNNUnrollExplorer`: an RNN unrolled over time, the same weights at every step.
- :class:`LSTMGateExplorer`: LSTM gates by hand, the cell diagram, a pulse's memory.
- :class:`GRUGateExplorer`: update and reset gates, torch's and Chung et al.'s convention.
- :class:`GradientFlowExplorer`: gradient norm against distance for RNN, LSTM and GRU.
- :class:`GateInspector`: a trained LSTM's or GRU's gate activations over a sequence.
"""

from .gradient_flow import GradientFlowExplorer
from .gru import GRUGateExplorer
from .inspector import GateInspector
from .lstm import LSTMGateExplorer
from .unroll import RNNUnrollExplorer, memory_left, unrolled_states

__all__ = ["GRUGateExplorer", "GateInspector", "GradientFlowExplorer", "LSTMGateExplorer", "RNNUnrollExplorer",
           "memory_left", "unrolled_states"]
