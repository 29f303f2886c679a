"""course_utils' RNN/LSTM/GRU against torch.nn: values, final states and every gradient.

Tolerances: float64 rtol 1e-7, atol 1e-9 (the two implementations differ only in the
order of floating-point operations); float32 rtol 1e-4, atol 2e-5 (50 steps of accumulated
rounding in backward). On CUDA, float32 against cuDNN's fused kernels (TF32 off, see
tests/conftest.py): rtol 2e-3, atol 2e-4; cuDNN adds up the weight gradients over steps and batch
in its own order, and on an H100 the largest difference seen was 8.6e-5 (float64 stays at 1e-7).
"""

import inspect
import itertools
import re
import warnings

import pytest
import torch
from torch import nn

import course_utils
from course_utils import modules as M

TOL = {torch.float64: {"rtol": 1e-7, "atol": 1e-9}, torch.float32: {"rtol": 1e-4, "atol": 2e-5}}
TOL_CUDA_FLOAT32 = {"rtol": 2e-3, "atol": 2e-4}
LAYERS = {"rnn_tanh": (M.RNN, nn.RNN, {"nonlinearity": "tanh"}), "rnn_relu": (M.RNN, nn.RNN, {"nonlinearity": "relu"}),
          "lstm": (M.LSTM, nn.LSTM, {}), "gru": (M.GRU, nn.GRU, {})}
CELLS = {"rnn_tanh": (M.RNNCell, nn.RNNCell, {"nonlinearity": "tanh"}),
         "rnn_relu": (M.RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
         "lstm": (M.LSTMCell, nn.LSTMCell, {}), "gru": (M.GRUCell, nn.GRUCell, {})}


def _pair(table, kind, device, dtype, *args, **kwargs):
    ours_cls, torch_cls, extra = table[kind]
    torch.manual_seed(1234)
    ours = ours_cls(*args, **kwargs, **extra).to(device=device, dtype=dtype)
    torch.manual_seed(1234)
    ref = torch_cls(*args, **kwargs, **extra).to(device=device, dtype=dtype)
    return ours, ref


def _flatten(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for part in out for t in _flatten(part)]


def _compare(ours, ref, inputs, dtype):
    """Run both modules on clones of ``inputs``; compare outputs and gradients of inputs and parameters."""
    tol = TOL_CUDA_FLOAT32 if dtype == torch.float32 and inputs[0].device.type == "cuda" else TOL[dtype]
    ins_o = [t.clone().requires_grad_(True) if t is not None else None for t in inputs]
    ins_r = [t.clone().requires_grad_(True) if t is not None else None for t in inputs]

    def call(module, ins):
        x, *state = ins
        if not state or state[0] is None:
            return module(x)
        return module(x, tuple(state) if len(state) == 2 else state[0])

    out_o, out_r = _flatten(call(ours, ins_o)), _flatten(call(ref, ins_r))
    assert [o.shape for o in out_o] == [r.shape for r in out_r]
    gen = torch.Generator().manual_seed(7)
    weights = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o) for o in out_o]
    for o, r in zip(out_o, out_r):
        torch.testing.assert_close(o, r, **tol)
    sum((o * w).sum() for o, w in zip(out_o, weights)).backward()
    sum((r * w).sum() for r, w in zip(out_r, weights)).backward()
    for a, b in zip(ins_o, ins_r):
        if a is not None:
            torch.testing.assert_close(a.grad, b.grad, **tol)
    named_r = dict(ref.named_parameters())
    names_o = [n for n, _ in ours.named_parameters()]
    assert sorted(names_o) == sorted(named_r)
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, named_r[name].grad, **tol, msg=lambda m, name=name: f"{name}: {m}")


# ----------------------------------------------------------------------- cells
CELL_GRID = [  # (batch, input_size, hidden, bias, dtype, unbatched, give_state)
    (1, 3, 5, True, torch.float64, False, True),
    (4, 6, 8, True, torch.float32, False, False),
    (4, 6, 8, False, torch.float64, False, True),
    (1, 2, 3, False, torch.float32, False, True),
    (None, 6, 4, True, torch.float64, True, True),
    (None, 6, 4, True, torch.float32, True, False),
]


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("N,H_in,H,bias,dtype,unbatched,give_state", CELL_GRID)
def test_cell_matches_torch(kind, N, H_in, H, bias, dtype, unbatched, give_state, device):
    ours, ref = _pair(CELLS, kind, device, dtype, H_in, H, bias=bias)
    gen = torch.Generator().manual_seed(3)
    lead = () if unbatched else (N,)
    x = torch.randn(*lead, H_in, generator=gen, dtype=dtype).to(device)
    states = []
    if give_state:
        states = [torch.randn(*lead, H, generator=gen, dtype=dtype).to(device)]
        if kind == "lstm":
            states.append(torch.randn(*lead, H, generator=gen, dtype=dtype).to(device))
    _compare(ours, ref, [x, *states], dtype)


# ---------------------------------------------------------------------- layers
LAYER_GRID = [  # (L, N, layers, batch_first, bidirectional, bias, dtype, unbatched, give_state)
    (1, 1, 1, False, False, True, torch.float64, False, False),
    (50, 1, 1, False, False, True, torch.float64, False, True),
    (50, 4, 2, True, True, True, torch.float32, False, True),
    (50, 3, 3, False, False, False, torch.float64, False, False),
    (1, 4, 3, True, True, False, torch.float32, False, True),
    (7, None, 2, False, True, True, torch.float64, True, True),
    (7, None, 1, True, False, True, torch.float32, True, False),
    (50, 2, 1, False, True, True, torch.float32, False, False),
] + [  # every combination of layers x batch_first x bidirectional on a short sequence
    (5, 3, layers, bf, bi, True, torch.float64, False, True)
    for layers, bf, bi in itertools.product((1, 2, 3), (False, True), (False, True))
]


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("L,N,layers,batch_first,bidirectional,bias,dtype,unbatched,give_state", LAYER_GRID)
def test_layer_matches_torch(kind, L, N, layers, batch_first, bidirectional, bias, dtype, unbatched, give_state,
                             device):
    H_in, H = 4, 6
    ours, ref = _pair(LAYERS, kind, device, dtype, H_in, H, num_layers=layers, bias=bias, batch_first=batch_first,
                      bidirectional=bidirectional)
    gen = torch.Generator().manual_seed(5)
    if unbatched:
        shape = (L, H_in)
    else:
        shape = (N, L, H_in) if batch_first else (L, N, H_in)
    x = torch.randn(*shape, generator=gen, dtype=dtype).to(device)
    D = 2 if bidirectional else 1
    state_shape = (D * layers, H) if unbatched else (D * layers, N, H)
    states = []
    if give_state:
        states = [torch.randn(*state_shape, generator=gen, dtype=dtype).to(device)]
        if kind == "lstm":
            states.append(torch.randn(*state_shape, generator=gen, dtype=dtype).to(device))
    _compare(ours, ref, [x, *states], dtype)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_same_seed_gives_torchs_initial_weights(kind):
    ours, ref = _pair(LAYERS, kind, "cpu", torch.float32, 3, 5, num_layers=2, bidirectional=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for name, value in ours.state_dict().items():
        assert torch.equal(value, ref.state_dict()[name]), name
    bound = 1 / 5 ** 0.5
    assert all(p.abs().max() <= bound for p in ours.parameters())


@pytest.mark.parametrize("kind", list(LAYERS))
def test_load_state_dict_both_ways(kind):
    ours_cls, torch_cls, extra = LAYERS[kind]
    ours = ours_cls(3, 5, num_layers=2, bidirectional=True, **extra)
    ref = torch_cls(3, 5, num_layers=2, bidirectional=True, **extra)
    x = torch.randn(4, 2, 3)
    ref.load_state_dict(ours.state_dict())  # ours -> torch
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    other = torch_cls(3, 5, num_layers=2, bidirectional=True, **extra)
    ours.load_state_dict(other.state_dict())  # torch -> ours
    torch.testing.assert_close(ours(x)[0], other(x)[0])


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_load_state_dict_both_ways(kind):
    ours_cls, torch_cls, extra = CELLS[kind]
    ours, ref = ours_cls(3, 5, **extra), torch_cls(3, 5, **extra)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3)
    torch.testing.assert_close(_flatten(ours(x)), _flatten(ref(x)))
    ours.load_state_dict(torch_cls(3, 5, **extra).state_dict())


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    lstm = M.LSTM(3, 8, num_layers=2, dropout=0.5)
    ref = nn.LSTM(3, 8, num_layers=2, dropout=0.5)
    ref.load_state_dict(lstm.state_dict())
    x = torch.randn(6, 2, 3)
    lstm.eval(), ref.eval()
    torch.testing.assert_close(lstm(x)[0], ref(x)[0])  # eval: dropout off, same as torch
    lstm.train()
    torch.manual_seed(1)
    a = lstm(x)[0]
    torch.manual_seed(2)
    b = lstm(x)[0]
    assert not torch.allclose(a, b)  # training: a random mask between the layers
    with pytest.warns(UserWarning, match="num_layers=1"):
        M.GRU(3, 4, dropout=0.2)


def test_dropout_warning_only_where_dropout_cannot_act():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.GRU(3, 4)
        M.RNN(3, 4, dropout=0.0)
        M.LSTM(3, 4, num_layers=2, dropout=0.3)
    message = "RNN: dropout acts between stacked layers only, so dropout=0.5 has no effect with num_layers=1"
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$"):
        M.RNN(3, 4, dropout=0.5)


@pytest.mark.parametrize("cls", [M.RNNCell, M.LSTMCell, M.GRUCell])
def test_bias_warning_points_at_the_callers_line(cls):
    """A nonlinearity passed in bias's place warns, and the warning names the line that made the cell."""
    name = cls.__name__
    message = (f"{name}: bias='relu' is not a bool; read as bias=True as torch.nn does "
               f"(the third argument is bias; nonlinearity is the fourth)")
    line = inspect.currentframe().f_lineno + 2
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$") as caught:
        cell = cls(10, 20, "relu")
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
    assert cell.bias == "relu" and cell.bias_ih is not None


def test_lstm_cell_gates_agree_with_lstm_cell():
    gen = torch.Generator().manual_seed(0)
    x, h, c = (torch.randn(3, n, generator=gen, dtype=torch.float64) for n in (4, 5, 5))
    p = [torch.randn(20, 4, generator=gen, dtype=torch.float64), torch.randn(20, 5, generator=gen, dtype=torch.float64),
         torch.randn(20, generator=gen, dtype=torch.float64), torch.randn(20, generator=gen, dtype=torch.float64)]
    gates = course_utils.lstm_cell_gates(x, (h, c), *p)
    h2, c2 = course_utils.lstm_cell(x, (h, c), *p)
    torch.testing.assert_close(gates.h, h2)
    torch.testing.assert_close(gates.c, c2)
    # the named gates reproduce the equations
    torch.testing.assert_close(gates.c, gates.f * c + gates.i * gates.g)
    torch.testing.assert_close(gates.h, gates.o * torch.tanh(gates.c))
    assert (gates.i > 0).all() and (gates.i < 1).all() and (gates.g.abs() < 1).all()


def test_gru_cell_gates_agree_with_gru_cell():
    gen = torch.Generator().manual_seed(1)
    x, h = torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(3, 5, generator=gen, dtype=torch.float64)
    p = [torch.randn(15, 4, generator=gen, dtype=torch.float64), torch.randn(15, 5, generator=gen, dtype=torch.float64),
         torch.randn(15, generator=gen, dtype=torch.float64), torch.randn(15, generator=gen, dtype=torch.float64)]
    gates = course_utils.gru_cell_gates(x, h, *p)
    torch.testing.assert_close(gates.h, course_utils.gru_cell(x, h, *p))
    torch.testing.assert_close(gates.h, (1 - gates.z) * gates.n + gates.z * h)
    ref = nn.GRUCell(4, 5).double()
    ref.load_state_dict(dict(zip(["weight_ih", "weight_hh", "bias_ih", "bias_hh"], p)))
    torch.testing.assert_close(gates.h, ref(x, h))


def test_functional_cells_without_bias_match_torch():
    gen = torch.Generator().manual_seed(2)
    x, h, c = (torch.randn(2, n, generator=gen, dtype=torch.float64) for n in (3, 4, 4))
    for fn, cls, state in ((course_utils.rnn_cell, nn.RNNCell, h), (course_utils.lstm_cell, nn.LSTMCell, (h, c)),
                           (course_utils.gru_cell, nn.GRUCell, h)):
        ref = cls(3, 4, bias=False).double()
        got = fn(x, state, ref.weight_ih, ref.weight_hh)
        torch.testing.assert_close(_flatten(got), _flatten(ref(x, state)))


def test_default_device_and_seed_everything():
    dev = course_utils.default_device()
    assert dev.type in ("cpu", "cuda", "mps")
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    course_utils.seed_everything(3)
    a = torch.rand(3)
    import random

    import numpy as np
    b, c = np.random.rand(), random.random()
    course_utils.seed_everything(3)
    assert torch.equal(a, torch.rand(3)) and b == np.random.rand() and c == random.random()
    with pytest.raises(TypeError, match="expected an int seed"):
        course_utils.seed_everything("3")


def test_importing_does_nothing(tmp_path):
    """Nothing happens at import time: no seeding, no device choice, no output."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    code = ("import torch; torch.manual_seed(5); a = torch.rand(1); torch.manual_seed(5); "
            "import course_utils, course_utils.modules, course_utils.data, course_utils.training, "
            "course_utils.gradients; assert torch.equal(torch.rand(1), a)")
    # the course_utils under test, installed or not
    root = str(Path(course_utils.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
