"""Bad input gets an error naming the module, what was expected and what came; nothing is broadcast.

The exception classes are torch.nn's for the same input (tests/test_torch_parity.py checks them against torch).
"""

import re

import pytest
import torch

from course_utils import modules as M


def test_cell_wrong_input_features():
    with pytest.raises(RuntimeError, match=r"LSTMCell: expected input of shape \(N, 10\) = \(4, 10\), got \(4, 12\)"):
        M.LSTMCell(10, 20)(torch.randn(4, 12))


def test_cell_wrong_rank():
    with pytest.raises(ValueError, match=r"GRUCell: expected input to be 1-D or 2-D, got 3-D of shape \(2, 3, 4\)"):
        M.GRUCell(4, 5)(torch.randn(2, 3, 4))


def test_cell_wrong_state_shape_is_not_broadcast():
    cell = M.RNNCell(3, 5)
    with pytest.raises(RuntimeError, match=r"RNNCell: expected hx of shape \(N, 5\) with N=4 = \(4, 5\), got \(1, 5\)"):
        cell(torch.randn(4, 3), torch.zeros(1, 5))


def test_lstm_cell_state_must_be_a_pair():
    with pytest.raises(TypeError, match=r"LSTMCell: expected hx to be a tuple \(h, c\) of two Tensors, got Tensor"):
        M.LSTMCell(3, 5)(torch.randn(2, 3), torch.zeros(2, 5))


def test_cell_state_rank_must_match_input():
    with pytest.raises(RuntimeError, match=r"LSTMCell: expected cx to be 2-D like the input, got 1-D"):
        M.LSTMCell(3, 5)(torch.randn(2, 3), (torch.zeros(2, 5), torch.zeros(5)))


def test_cell_dtype_mismatch():
    with pytest.raises(RuntimeError, match=r"RNNCell: expected input of dtype torch.float32 \(the parameters' dtype\), "
                                        r"got torch.float64"):
        M.RNNCell(3, 5)(torch.randn(2, 3, dtype=torch.float64))


def test_cell_device_mismatch():
    x = torch.empty(2, 3, device="meta")  # any device other than the parameters'
    with pytest.raises(RuntimeError, match=r"GRUCell: expected input on device cpu \(where the parameters are\), "
                                           r"got meta"):
        M.GRUCell(3, 5)(x)


def test_cell_input_not_a_tensor():
    with pytest.raises(TypeError, match="RNNCell: expected input to be a Tensor, got list"):
        M.RNNCell(3, 5)([[0.0, 1.0, 2.0]])


def test_layer_wrong_input_features_names_the_layout():
    with pytest.raises(RuntimeError, match=r"LSTM: expected input of shape \(N, L, 10\), got \(4, 7, 12\)"):
        M.LSTM(10, 20, batch_first=True)(torch.randn(4, 7, 12))
    with pytest.raises(RuntimeError, match=r"GRU: expected input of shape \(L, N, 10\), got \(7, 4, 12\)"):
        M.GRU(10, 20)(torch.randn(7, 4, 12))
    with pytest.raises(RuntimeError, match=r"RNN: expected input of shape \(L, 10\), got \(7, 12\)"):
        M.RNN(10, 20)(torch.randn(7, 12))


def test_layer_wrong_rank():
    with pytest.raises(ValueError, match=r"LSTM: expected input to be 2-D or 3-D, got 4-D"):
        M.LSTM(3, 4)(torch.randn(1, 2, 3, 3))


def test_layer_wrong_state_shape():
    gru = M.GRU(3, 4, num_layers=2, bidirectional=True)
    with pytest.raises(RuntimeError, match=r"GRU: expected h_0 of shape \(D\*num_layers, N, H\) with N=5 = "
                                           r"\(4, 5, 4\), got \(2, 5, 4\)"):
        gru(torch.randn(6, 5, 3), torch.zeros(2, 5, 4))


def test_layer_state_batch_is_not_broadcast():
    with pytest.raises(RuntimeError, match=r"RNN: expected h_0 of shape .* = \(1, 5, 4\), got \(1, 1, 4\)"):
        M.RNN(3, 4)(torch.randn(6, 5, 3), torch.zeros(1, 1, 4))


def test_layer_state_types():
    with pytest.raises(TypeError, match=r"LSTM: expected hx to be a tuple \(h_0, c_0\) of two Tensors, got Tensor"):
        M.LSTM(3, 4)(torch.randn(6, 5, 3), torch.zeros(1, 5, 4))
    with pytest.raises(TypeError, match=r"GRU: expected hx to be a Tensor h_0, got a tuple"):
        M.GRU(3, 4)(torch.randn(6, 5, 3), (torch.zeros(1, 5, 4), torch.zeros(1, 5, 4)))


def test_state_pair_of_the_wrong_length():
    with pytest.raises(RuntimeError, match=r"^LSTM: expected hx to be a tuple \(h_0, c_0\) of two Tensors, "
                                           r"got a tuple of 3$"):
        M.LSTM(3, 4)(torch.randn(6, 5, 3), (torch.zeros(1, 5, 4),) * 3)
    with pytest.raises(RuntimeError, match=r"^LSTMCell: expected hx to be a tuple \(h, c\) of two Tensors, "
                                           r"got a list of 1$"):
        M.LSTMCell(3, 5)(torch.randn(2, 3), [torch.zeros(2, 5)])


def test_layer_dtype_and_device_mismatch():
    with pytest.raises(RuntimeError, match=r"LSTM: expected c_0 of dtype torch.float32 .*got torch.float64"):
        M.LSTM(3, 4)(torch.randn(6, 5, 3), (torch.zeros(1, 5, 4), torch.zeros(1, 5, 4, dtype=torch.float64)))
    with pytest.raises(RuntimeError, match=r"RNN: expected input on device cpu .*got meta"):
        M.RNN(3, 4)(torch.empty(6, 5, 3, device="meta"))


def test_layer_empty_sequence():
    with pytest.raises(RuntimeError, match=r"LSTM: expected a sequence of length >= 1, got input of shape \(0, 2, 3\)"):
        M.LSTM(3, 4)(torch.randn(0, 2, 3))


@pytest.mark.parametrize("sizes,rows", [
    ([2, 3, 1], 6),  # grows: not a packed batch
    ([2, 0], 2),  # ends with an empty step
    ([2, 2], 5),  # does not add up to the rows of the data
])
def test_packed_sequence_with_bad_batch_sizes(sizes, rows):
    packed = torch.nn.utils.rnn.PackedSequence(torch.randn(rows, 3), torch.tensor(sizes))
    with pytest.raises(RuntimeError, match=rf"^LSTM: expected batch_sizes >= 1, never growing, adding up to the {rows} "
                                           rf"rows of the data, got {re.escape(str(sizes))}$"):
        M.LSTM(3, 4)(packed)


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"input_size": 0, "hidden_size": 4}, ValueError, "LSTM: expected input_size > 0, got 0"),
    ({"input_size": 3, "hidden_size": 2.5}, TypeError, "LSTM: expected hidden_size to be an int, got float"),
    ({"input_size": 3, "hidden_size": 4, "num_layers": 0}, ValueError, "LSTM: expected num_layers to be an int > 0"),
    ({"input_size": 3, "hidden_size": 4, "dropout": 1.5}, ValueError, r"LSTM: expected dropout to be a number in \[0, 1\]"),
    ({"input_size": 3, "hidden_size": 4, "bias": "yes"}, TypeError, "LSTM: expected bias to be a bool, got str"),
])
def test_constructor_arguments(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        M.LSTM(**kwargs)


def test_bad_nonlinearity():
    with pytest.raises(ValueError, match="RNN: expected nonlinearity 'tanh' or 'relu', got 'sigmoid'"):
        M.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="RNNCell: expected nonlinearity 'tanh' or 'relu', got 'gelu'"):
        M.RNNCell(3, 4, nonlinearity="gelu")


def test_an_lstm_with_proj_size_one_takes_h_0_of_width_one():
    """h_0 is (D·num_layers, N, proj_size) as soon as proj_size > 0, also when it is 1; c_0 keeps H."""
    lstm, x = M.LSTM(3, 4, proj_size=1), torch.randn(5, 2, 3)
    out, (h, c) = lstm(x, (torch.zeros(1, 2, 1), torch.zeros(1, 2, 4)))
    assert (out.shape, h.shape, c.shape) == ((5, 2, 1), (1, 2, 1), (1, 2, 4))
    with pytest.raises(RuntimeError, match=r"expected h_0 of shape \(D\*num_layers, N, proj_size\) with N=2 = "
                                           r"\(1, 2, 1\), got \(1, 2, 4\)"):
        lstm(x, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
