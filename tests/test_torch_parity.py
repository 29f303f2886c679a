"""course_utils' recurrent modules where torch.nn users lean on them, with torch.nn as the oracle.

The ideas of PyTorch's own RNN tests, in our own code: batches of different lengths as a
PackedSequence (sorted and unsorted, ties, length-1 sequences, one to three layers, both
directions, initial state given or not), LSTM projections (padded and packed), the attributes
torch's utilities read (``_flat_weights``, ``flatten_parameters``, weight norm), ``repr``, sizes
of zero, and every bad input: the same exception class as torch.

Equivalence in float64 (rtol 1e-7, atol 1e-9) for outputs, final states and the gradients of
the input, the initial states and every parameter; float32 as in tests/test_modules.py.
"""

import copy
import io
import warnings
from contextlib import nullcontext

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from course_utils import modules as M

TOL = {torch.float64: dict(rtol=1e-7, atol=1e-9), torch.float32: dict(rtol=1e-4, atol=2e-5)}
TOL_CUDA_FLOAT32 = dict(rtol=2e-3, atol=2e-4)  # against cuDNN's fused kernels, see tests/test_modules.py
H_IN, H, P = 3, 5, 2  # input size, hidden size, proj_size
KINDS = {
    "rnn_tanh": (M.RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (M.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (M.LSTM, nn.LSTM, {}),
    "lstm_proj": (M.LSTM, nn.LSTM, {"proj_size": P}),
    "gru": (M.GRU, nn.GRU, {}),
}


def _pair(kind, device, dtype, **kwargs):
    ours_cls, torch_cls, extra = KINDS[kind]
    torch.manual_seed(1234)
    ours = ours_cls(H_IN, H, **kwargs, **extra).to(device=device, dtype=dtype)
    torch.manual_seed(1234)
    ref = torch_cls(H_IN, H, **kwargs, **extra).to(device=device, dtype=dtype)
    return ours, ref


def _tol(dtype, device):
    return TOL_CUDA_FLOAT32 if dtype == torch.float32 and torch.device(device).type == "cuda" else TOL[dtype]


def _initial_states(kind, layers, directions, batch, dtype, device, gen, unbatched=False):
    lead = (layers * directions,) if unbatched else (layers * directions, batch)
    h = torch.randn(*lead, P if kind == "lstm_proj" else H, generator=gen, dtype=dtype).to(device)
    if kind.startswith("lstm"):
        return [h, torch.randn(*lead, H, generator=gen, dtype=dtype).to(device)]
    return [h]


def _as_hx(states):
    return None if not states else tuple(states) if len(states) == 2 else states[0]


def _tensors(out):
    """Every tensor of a module's result: output (a PackedSequence's data) and the final states."""
    if isinstance(out, PackedSequence):
        return [out.data]
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for part in out for t in _tensors(part)]


def _run_both(ours, ref, make_input, states, tol):
    """Run both modules on fresh copies of the input and states; compare values and every gradient."""
    leaves, results = [], []
    for module in (ours, ref):
        x, inp = make_input()
        hx = [s.clone().requires_grad_(True) for s in states]
        out = module(inp, _as_hx(hx))
        leaves.append([x, *hx])
        results.append(out)
    outs_o, outs_r = _tensors(results[0]), _tensors(results[1])
    assert [o.shape for o in outs_o] == [r.shape for r in outs_r]
    for o, r in zip(outs_o, outs_r):
        torch.testing.assert_close(o, r, **tol)
    gen = torch.Generator().manual_seed(7)
    weights = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o) for o in outs_o]
    for outs in (outs_o, outs_r):
        sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    for a, b in zip(*leaves):
        torch.testing.assert_close(a.grad, b.grad, **tol)
    named_r = dict(ref.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(named_r)
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, named_r[name].grad, **tol, msg=lambda m: f"{name}: {m}")
    return results


# ---------------------------------------------------------------- packed sequences
PACKED_GRID = [  # (lengths, layers, bidirectional, enforce_sorted, bias, give_state, batch_first, dtype)
    ([5], 1, False, True, True, False, False, torch.float64),  # one sequence
    ([5, 3, 3, 1], 1, False, True, True, True, False, torch.float64),  # sorted, with ties
    ([2, 5, 1, 4], 1, True, False, True, True, False, torch.float64),  # unsorted, both directions
    ([4, 4, 2], 2, True, True, False, False, True, torch.float64),  # no bias; batch_first ignored for packed
    ([3, 1, 5, 2, 5], 2, True, False, True, True, False, torch.float64),
    ([1, 1], 3, False, False, True, True, False, torch.float64),  # every sequence of length 1
    ([4, 2, 3], 2, True, False, True, True, False, torch.float32),
]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("lengths,layers,bidirectional,enforce_sorted,bias,give_state,batch_first,dtype", PACKED_GRID)
def test_packed_matches_torch(kind, lengths, layers, bidirectional, enforce_sorted, bias, give_state, batch_first,
                              dtype, device):
    ours, ref = _pair(kind, device, dtype, num_layers=layers, bias=bias, bidirectional=bidirectional,
                      batch_first=batch_first)
    gen = torch.Generator().manual_seed(5)
    padded = torch.randn(max(lengths), len(lengths), H_IN, generator=gen, dtype=dtype).to(device)  # (L, N, H_in)
    states = (_initial_states(kind, layers, 2 if bidirectional else 1, len(lengths), dtype, device, gen)
              if give_state else [])

    def make_input():
        x = padded.clone().requires_grad_(True)
        return x, pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)

    out_o, out_r = _run_both(ours, ref, make_input, states, _tol(dtype, device))
    packed_o, packed_r = out_o[0], out_r[0]
    assert isinstance(packed_o, PackedSequence)
    assert torch.equal(packed_o.batch_sizes, packed_r.batch_sizes)
    for a, b in ((packed_o.sorted_indices, packed_r.sorted_indices),
                 (packed_o.unsorted_indices, packed_r.unsorted_indices)):
        assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.parametrize("kind", ["lstm_proj", "gru", "rnn_relu"])
def test_packed_batch_equals_each_sequence_alone(kind, device):
    """Packing is bookkeeping: each sequence's output and final state are what it gets on its own."""
    ours, _ = _pair(kind, device, torch.float64, num_layers=2, bidirectional=True)
    lengths = [2, 6, 1, 4]
    gen = torch.Generator().manual_seed(11)
    padded = torch.randn(max(lengths), len(lengths), H_IN, generator=gen, dtype=torch.float64).to(device)
    states = _initial_states(kind, 2, 2, len(lengths), torch.float64, device, gen)
    packed_out, finals = ours(pack_padded_sequence(padded, lengths, enforce_sorted=False), _as_hx(states))
    output, got_lengths = pad_packed_sequence(packed_out)  # (L, N, 2·H_out), zeros past each length
    assert got_lengths.tolist() == lengths
    finals = finals if isinstance(finals, tuple) else (finals,)
    for b, length in enumerate(lengths):
        alone_out, alone_finals = ours(padded[:length, b], _as_hx([s[:, b] for s in states]))  # unbatched
        torch.testing.assert_close(output[:length, b], alone_out, **TOL[torch.float64])
        assert not output[length:, b].any()
        alone_finals = alone_finals if isinstance(alone_finals, tuple) else (alone_finals,)
        for f, a in zip(finals, alone_finals):
            torch.testing.assert_close(f[:, b], a, **TOL[torch.float64])


def test_packed_dropout_between_layers():
    torch.manual_seed(0)
    ours = M.GRU(H_IN, H, num_layers=2, dropout=0.5)
    ref = nn.GRU(H_IN, H, num_layers=2, dropout=0.5)
    ref.load_state_dict(ours.state_dict())
    packed = pack_padded_sequence(torch.randn(4, 3, H_IN), [4, 3, 1])
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(packed)[0].data, ref(packed)[0].data)
    ours.train()
    assert not torch.allclose(ours(packed)[0].data, ref(packed)[0].data)  # a random mask between the layers


def test_change_dropout_and_save_load():
    """As torch's test: dropout is read at each call; p=0 and p=1 are deterministic; a saved and
    reloaded layer (then flatten_parameters(), as after unpickling on a GPU) computes the same."""
    torch.manual_seed(0)
    rnn = M.RNN(6, 6, 2, nonlinearity="relu")
    x = torch.rand(3, 2, 6)
    for train in (True, False):
        rnn.train(train)
        for p in (0, 0.5, 1, 0.2, 0):
            rnn.dropout = p
            (out1, h1), (out2, h2) = rnn(x), rnn(x)
            assert torch.equal(out1, out2) == (p in (0, 1) or not train)
            assert torch.equal(h1, h2) == (p in (0, 1) or not train)
    buffer = io.BytesIO()
    torch.save(rnn, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    again.flatten_parameters()
    torch.testing.assert_close(again(x), rnn(x))  # eval mode, dropout 0


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_autocast_is_not_refused(kind):
    """As torch's layers, ours skip the dtype check under autocast (bfloat16 on the CPU)."""
    ours, ref = _pair(kind, "cpu", torch.float32, bidirectional=True)
    x = torch.randn(4, 2, H_IN)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = ours(pack_padded_sequence(x, [4, 2]))[0].data, ref(pack_padded_sequence(x, [4, 2]))[0].data
    torch.testing.assert_close(got.float(), want.float(), rtol=0, atol=2e-2)  # bfloat16 has 8 bits of mantissa


def test_tied_weights_as_torch():
    """One Parameter under two names (torch's weight-tying test): both directions share it, and its
    gradient is the sum of both uses."""
    ours, ref = _pair("lstm", "cpu", torch.float64, bidirectional=True)
    for module in (ours, ref):
        module.bias_ih_l0_reverse = module.bias_ih_l0
        module.weight_hh_l0_reverse = module.weight_hh_l0
    assert ours._flat_weights[ours._flat_weights_names.index("weight_hh_l0_reverse")] is ours.weight_hh_l0
    x = torch.randn(4, 2, H_IN, dtype=torch.float64)
    (out_o, _), (out_r, _) = ours(x), ref(x)
    torch.testing.assert_close(out_o, out_r, **TOL[torch.float64])
    out_o.sum().backward(), out_r.sum().backward()
    torch.testing.assert_close(ours.weight_hh_l0.grad, ref.weight_hh_l0.grad, **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["lstm_proj", "gru"])
def test_packed_second_derivatives(kind):
    """gradcheck and gradgradcheck (fast mode) through a packed, bidirectional, two-layer run, with respect to
    the data and the recurrent weights of both directions (tiny sizes)."""
    torch.manual_seed(0)
    ours_cls, _, extra = KINDS[kind]
    module = ours_cls(2, 3, num_layers=2, bidirectional=True, **{k: min(v, 2) for k, v in extra.items()}).double()
    names = ["weight_hh_l0", "weight_hh_l1_reverse"] + (["weight_hr_l0_reverse"] if extra else [])

    def run(data, *weights):
        packed = PackedSequence(data, torch.tensor([2, 2, 1]))
        out, h_n = torch.func.functional_call(module, dict(zip(names, weights)), (packed,))
        return out.data, *(h_n if isinstance(h_n, tuple) else (h_n,))

    data = pack_padded_sequence(torch.randn(3, 2, 2, dtype=torch.float64), [3, 2]).data.requires_grad_(True)
    weights = [getattr(module, name).detach().clone().requires_grad_(True) for name in names]
    assert torch.autograd.gradcheck(run, (data, *weights), fast_mode=True)
    assert torch.autograd.gradgradcheck(run, (data, *weights), fast_mode=True)


# ---------------------------------------------------------------- projections (padded)
PROJ_GRID = [  # (L, N, layers, batch_first, bidirectional, bias, dtype, unbatched, give_state)
    (1, 1, 1, False, False, True, torch.float64, False, False),
    (6, 3, 1, False, False, True, torch.float64, False, True),
    (6, 3, 2, True, True, True, torch.float64, False, True),
    (6, 2, 3, False, True, False, torch.float64, False, False),
    (5, None, 2, False, True, True, torch.float64, True, True),
    (6, 4, 2, True, True, True, torch.float32, False, True),
]


@pytest.mark.parametrize("L,N,layers,batch_first,bidirectional,bias,dtype,unbatched,give_state", PROJ_GRID)
def test_projection_matches_torch(L, N, layers, batch_first, bidirectional, bias, dtype, unbatched, give_state,
                                  device):
    ours, ref = _pair("lstm_proj", device, dtype, num_layers=layers, bias=bias, batch_first=batch_first,
                      bidirectional=bidirectional)
    gen = torch.Generator().manual_seed(3)
    shape = (L, H_IN) if unbatched else (N, L, H_IN) if batch_first else (L, N, H_IN)
    x0 = torch.randn(*shape, generator=gen, dtype=dtype).to(device)
    D = 2 if bidirectional else 1
    states = _initial_states("lstm_proj", layers, D, N, dtype, device, gen, unbatched) if give_state else []

    def make_input():
        x = x0.clone().requires_grad_(True)
        return x, x

    (output, (h_n, c_n)), _ = _run_both(ours, ref, make_input, states, _tol(dtype, device))
    assert output.shape[-1] == D * P and h_n.shape[-1] == P and c_n.shape[-1] == H


def test_projection_parameters_are_torchs():
    torch.manual_seed(0)
    ours = M.LSTM(4, 6, 2, True, False, 0.0, True, 3)  # torch's positional order: proj_size is the 8th
    torch.manual_seed(0)
    ref = nn.LSTM(4, 6, 2, True, False, 0.0, True, 3)
    assert ours.proj_size == ref.proj_size == 3
    shapes = {name: tuple(p.shape) for name, p in ours.named_parameters()}
    assert shapes == {name: tuple(p.shape) for name, p in ref.named_parameters()}
    assert shapes["weight_hr_l1_reverse"] == (3, 6) and shapes["weight_hh_l0"] == (24, 3)
    assert shapes["weight_ih_l1"] == (24, 2 * 3)  # the next layer reads the projected h of both directions
    for name, value in ours.state_dict().items():  # same seed, same initial values (U(±1/√H), weight_hr too)
        assert torch.equal(value, ref.state_dict()[name]), name
    other = nn.LSTM(4, 6, 2, proj_size=3, bidirectional=True)
    ours.load_state_dict(other.state_dict())
    x = torch.randn(5, 2, 4)
    torch.testing.assert_close(ours(x)[0], other(x)[0])


def test_proj_size_attribute_and_refusal():
    assert M.RNN(3, 4).proj_size == M.GRU(3, 4).proj_size == M.LSTM(3, 4).proj_size == 0
    for ours_cls, torch_cls in ((M.RNN, nn.RNN), (M.GRU, nn.GRU)):
        for value in (0, 2):  # torch refuses the argument itself, 0 included
            with pytest.raises(ValueError):
                torch_cls(3, 4, proj_size=value)
            with pytest.raises(ValueError, match=f"{ours_cls.__name__}: proj_size is an LSTM argument only"):
                ours_cls(3, 4, proj_size=value)


# ---------------------------------------------------------------- attributes torch code reads
@pytest.mark.parametrize("kind", list(KINDS))
def test_flat_weights_as_torch(kind):
    ours, ref = _pair(kind, "cpu", torch.float64, num_layers=2, bidirectional=True, bias=kind != "gru")
    assert ours._flat_weights_names == ref._flat_weights_names
    assert [w is getattr(ours, n) for w, n in zip(ours._flat_weights, ours._flat_weights_names)] == \
        [True] * len(ours._flat_weights_names)
    assert list(dict(ours.named_parameters())) == ours._flat_weights_names
    assert [[p.shape for p in ws] for ws in ours.all_weights] == [[p.shape for p in ws] for ws in ref.all_weights]
    assert ours.flatten_parameters() is None and ref.flatten_parameters() is None
    moved = copy.deepcopy(ours).float()  # after .to(), the flat list follows the new parameters
    assert all(w.dtype == torch.float32 for w in moved._flat_weights)
    moved.flatten_parameters()


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru"])
def test_weight_norm_works_as_on_torch(kind):
    ours, ref = _pair(kind, "cpu", torch.float64)
    name = "weight_hr_l0" if kind == "lstm_proj" else "weight_hh_l0"
    n_params = len(ours._flat_weights_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old API, still what torch's own RNN test uses
        for module in (ours, ref):
            torch.nn.utils.weight_norm(module, name=name)
    x = torch.randn(4, 2, H_IN, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    assert sum(isinstance(w, nn.Parameter) for w in ours._flat_weights) == n_params - 1  # as torch's test
    torch.nn.utils.remove_weight_norm(ours, name=name)
    assert sum(isinstance(w, nn.Parameter) for w in ours._flat_weights) == n_params
    with torch.no_grad():
        for module in (ours, ref):  # the new parametrization API too
            torch.nn.utils.parametrizations.weight_norm(module, name="weight_ih_l0")
    torch.testing.assert_close(ours(x)[0], ref(x)[0])


REPR_CASES = [
    ("RNN", (3, 4), {}), ("RNN", (3, 4), {"nonlinearity": "relu", "num_layers": 2}),
    ("GRU", (3, 4), {"bias": False, "batch_first": True, "dropout": 0.5, "num_layers": 2}),
    ("LSTM", (3, 4), {"bidirectional": True, "proj_size": 2}), ("LSTM", (3, 4, 2, False, True, 0.25, True, 1), {}),
    ("GRU", (3, 4), {"bidirectional": 0}), ("RNN", (3, 4), {"bidirectional": 1}),
    ("RNNCell", (3, 4), {}), ("RNNCell", (3, 4, False, "relu"), {}), ("LSTMCell", (3, 4), {"bias": False}),
    ("GRUCell", (3, 4), {}),
]


@pytest.mark.parametrize("name,args,kwargs", REPR_CASES)
def test_repr_is_torchs(name, args, kwargs):
    assert repr(getattr(M, name)(*args, **kwargs)) == repr(getattr(nn, name)(*args, **kwargs))


# ---------------------------------------------------------------- sizes of zero
def test_sizes_of_zero_as_torch():
    for ours_cls, torch_cls in ((M.RNNCell, nn.RNNCell), (M.LSTMCell, nn.LSTMCell), (M.GRUCell, nn.GRUCell)):
        for args, x in (((3, 0), torch.randn(2, 3)), ((0, 4), torch.randn(2, 0)), ((3, 4), torch.randn(0, 3))):
            ours, ref = ours_cls(*args), torch_cls(*args)
            ref.load_state_dict(ours.state_dict())
            hx = torch.zeros(x.shape[0], args[1])
            hx = (hx, hx) if ours_cls is M.LSTMCell else hx
            got, want = ours(x, hx), ref(x, hx)
            assert [t.shape for t in _tensors(got)] == [t.shape for t in _tensors(want)]
            torch.testing.assert_close(_tensors(got), _tensors(want))
    for ours_cls, torch_cls in ((M.RNN, nn.RNN), (M.LSTM, nn.LSTM), (M.GRU, nn.GRU)):
        ours, ref = ours_cls(3, 4, bidirectional=True), torch_cls(3, 4, bidirectional=True)
        x = torch.randn(5, 0, 3, requires_grad=True)  # a batch of no sequences
        got = _tensors(ours(x))
        assert [t.shape for t in got] == [t.shape for t in _tensors(ref(x))]
        sum(t.sum() for t in got).backward()
        assert x.grad.shape == x.shape
        for sizes in ((3, 0), (0, 4)):  # unlike the cells, the layers refuse sizes of zero (ValueError)
            _same_error(lambda ns, c=ours_cls.__name__, s=sizes: getattr(ns, c)(*s), None)


# ---------------------------------------------------------------- bad input: torch's exception class
def _outcome(ns, build, call):
    try:
        module = build(ns)
        if call is not None:
            call(module)
    except Exception as error:  # noqa: BLE001 - the class is what we compare
        return error
    return None


def _same_error(build, call):
    want = _outcome(nn, build, call)
    got = _outcome(M, build, call)
    assert want is not None, "torch accepts this input: not an error case"
    assert type(got) is type(want), f"torch raises {type(want).__name__}({want}), we raise {type(got).__name__}({got})"
    return got


def _r(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


def _packed(lengths=(4, 2), features=H_IN, dtype=torch.float32):
    return pack_padded_sequence(_r(max(lengths), len(lengths), features, dtype=dtype), list(lengths))


CELL_ERRORS = {  # what torch rejects, for RNNCell and GRUCell (h) and LSTMCell ((h, c))
    "input features": (lambda c, s: c(10, 20), lambda m, s: m(_r(3, 11), s(3, 20))),
    "hidden features": (lambda c, s: c(10, 20), lambda m, s: m(_r(3, 10), s(3, 21))),
    "batch sizes differ": (lambda c, s: c(10, 20), lambda m, s: m(_r(3, 10), s(5, 20))),
    "state 4-D": (lambda c, s: c(10, 20), lambda m, s: m(_r(3, 10), s(3, 1, 1, 20))),
    "input 3-D": (lambda c, s: c(3, 4), lambda m, s: m(_r(2, 3, 3))),
    "input 0-D": (lambda c, s: c(3, 4), lambda m, s: m(torch.tensor(0.5))),
    "1-D state, 2-D input": (lambda c, s: c(3, 5), lambda m, s: m(_r(2, 3), s(5))),
    "2-D state, 1-D input": (lambda c, s: c(3, 5), lambda m, s: m(_r(3), s(1, 5))),
    "input dtype": (lambda c, s: c(3, 5), lambda m, s: m(_r(2, 3, dtype=torch.float64))),
    "state dtype": (lambda c, s: c(3, 5), lambda m, s: m(_r(2, 3), s(2, 5, dtype=torch.float64))),
    "input device": (lambda c, s: c(3, 5), lambda m, s: m(torch.empty(2, 3, device="meta"))),
    "negative input_size": (lambda c, s: c(-1, 4), None),
    "negative hidden_size": (lambda c, s: c(3, -1), None),
    "float input_size": (lambda c, s: c(3.0, 4), None),
    "str hidden_size": (lambda c, s: c(3, "4"), None),
    "bias in place of nonlinearity": (lambda c, s: c(10, 20, "relu"), lambda m, s: m(_r(3, 10), s(3, 21))),
}


def _h(*shape, dtype=torch.float32):
    return _r(*shape, dtype=dtype)


def _hc(*shape, dtype=torch.float32):
    return _r(*shape), _r(*shape, dtype=dtype)  # the dtype goes to c: torch checks both


@pytest.mark.parametrize("cell,case", [
    (cell, case) for cell in ("RNNCell", "GRUCell", "LSTMCell") for case in CELL_ERRORS
    if (cell, case) != ("LSTMCell", "state dtype")  # torch accepts that one: see test_deliberate_differences
])
def test_cell_errors_have_torchs_class(cell, case):
    build, call = CELL_ERRORS[case]
    state = _hc if cell == "LSTMCell" else _h
    with pytest.warns(UserWarning, match="is not a bool") if case == "bias in place of nonlinearity" else nullcontext():
        error = _same_error(lambda ns: build(getattr(ns, cell), state), None if call is None else
                            lambda m: call(m, state))
    assert str(error).startswith(f"{cell}: expected")


LSTM_CELL_ERRORS = {
    "hx a Tensor": lambda m: m(_r(2, 3), _r(2, 5)),
    "hx of three": lambda m: m(_r(2, 3), (_r(2, 5),) * 3),
    "hx of one": lambda m: m(_r(2, 3), (_r(2, 5),)),
    "c of the wrong size": lambda m: m(_r(2, 3), (_r(2, 5), _r(2, 4))),
}


@pytest.mark.parametrize("case", list(LSTM_CELL_ERRORS))
def test_lstm_cell_state_errors_have_torchs_class(case):
    _same_error(lambda ns: ns.LSTMCell(3, 5), LSTM_CELL_ERRORS[case])


LAYER_CONSTRUCTOR_ERRORS = {  # (args, kwargs) that torch refuses when it builds RNN, GRU and LSTM
    "hidden_size 0": ((10, 0, 1), {}), "num_layers 0": ((10, 10, 0), {}),
    "input_size 0": ((0, 5), {}), "input_size -1": ((-1, 5), {}),
    "input_size float": ((3.0, 5), {}), "input_size str": (("10", 5), {}), "hidden_size float": ((3, 5.0), {}),
    "num_layers float": ((3, 5, 1.5), {}), "num_layers str": ((3, 5, "2"), {}),
    "bias 0": ((3, 5), {"bias": 0}), "bias 1": ((3, 5), {"bias": 1}), "bias str": ((3, 5), {"bias": "True"}),
    "batch_first 0": ((3, 5), {"batch_first": 0}), "batch_first str": ((3, 5), {"batch_first": "False"}),
    "dropout 2": ((3, 5), {"dropout": 2}), "dropout bool": ((3, 5), {"dropout": True}),
    "dropout str": ((3, 5), {"dropout": "0.1"}),
}


@pytest.mark.parametrize("case", list(LAYER_CONSTRUCTOR_ERRORS))
@pytest.mark.parametrize("layer", ["RNN", "GRU", "LSTM"])
def test_layer_constructor_errors_have_torchs_class(layer, case):
    args, kwargs = LAYER_CONSTRUCTOR_ERRORS[case]
    error = _same_error(lambda ns: getattr(ns, layer)(*args, **kwargs), None)
    assert str(error).startswith(f"{layer}: expected")


LAYER_FORWARD_ERRORS = {  # (states for RNN/GRU (h) or LSTM (h, c)) -> the call torch refuses
    "input dtype": lambda m, s: m(_r(2, 4, H_IN, dtype=torch.float64)),
    "input 4-D": lambda m, s: m(_r(1, 2, 4, H_IN)),
    "input 1-D": lambda m, s: m(_r(H_IN)),
    "input features": lambda m, s: m(_r(5, 2, H_IN + 1)),
    "unbatched input features": lambda m, s: m(_r(5, H_IN + 1)),
    "zero-length sequence": lambda m, s: m(_r(0, 2, H_IN)),
    "zero-length unbatched": lambda m, s: m(_r(0, H_IN)),
    "input device": lambda m, s: m(torch.empty(5, 2, H_IN, device="meta")),
    "h_0 layers": lambda m, s: m(_r(5, 2, H_IN), s(2, 2, H)),
    "h_0 batch not broadcast": lambda m, s: m(_r(5, 2, H_IN), s(1, 1, H)),
    "h_0 2-D for batched input": lambda m, s: m(_r(5, 2, H_IN), s(1, H)),
    "h_0 3-D for unbatched input": lambda m, s: m(_r(5, H_IN), s(1, 1, H)),
    "h_0 dtype": lambda m, s: m(_r(5, 2, H_IN), s(1, 2, H, dtype=torch.float64)),
    "h_0 device": lambda m, s: m(_r(5, 2, H_IN), s(1, 2, H, device="meta")),
    "packed features": lambda m, s: m(_packed(features=H_IN + 1)),
    "packed dtype": lambda m, s: m(_packed(dtype=torch.float64)),
    "packed h_0 batch": lambda m, s: m(_packed(), s(1, 3, H)),
    "packed h_0 2-D": lambda m, s: m(_packed(), s(1, H)),
    "packed 3-D data": lambda m, s: m(PackedSequence(_r(5, 2, H_IN), torch.tensor([2, 2, 1]))),
}


def _layer_states(layer):
    if layer != "LSTM":
        return lambda *shape, dtype=torch.float32, device="cpu": torch.randn(*shape, dtype=dtype, device=device)
    return lambda *shape, dtype=torch.float32, device="cpu": (torch.randn(*shape, device=device),
                                                             torch.randn(*shape, dtype=dtype, device=device))


@pytest.mark.parametrize("layer,case", [
    (layer, case) for layer in ("RNN", "GRU", "LSTM") for case in LAYER_FORWARD_ERRORS
    # torch.nn.LSTM skips its input checks for packed input; see test_deliberate_differences
    if (layer, case) not in (("LSTM", "packed dtype"), ("LSTM", "packed h_0 2-D"))
])
def test_layer_forward_errors_have_torchs_class(layer, case):
    call, states = LAYER_FORWARD_ERRORS[case], _layer_states(layer)
    error = _same_error(lambda ns: getattr(ns, layer)(H_IN, H), lambda m: call(m, states))
    assert str(error).startswith(f"{layer}: expected")


LSTM_ERRORS = {  # LSTM only: the (h_0, c_0) pair, projections
    "hx of three": ((H_IN, H), {}, lambda m: m(_r(5, 2, H_IN), (_r(1, 2, H),) * 3)),
    "c_0 size": ((H_IN, H), {}, lambda m: m(_r(5, 2, H_IN), (_r(1, 2, H), _r(1, 2, H - 1)))),
    "h_0 dtype": ((H_IN, H), {}, lambda m: m(_r(5, 2, H_IN), (_r(1, 2, H, dtype=torch.float64), _r(1, 2, H)))),
    "packed c_0 batch": ((H_IN, H), {}, lambda m: m(_packed(), (_r(1, 2, H), _r(1, 3, H)))),
    "proj: h_0 of H": ((H_IN, H), {"proj_size": P}, lambda m: m(_r(5, 2, H_IN), (_r(1, 2, H), _r(1, 2, H)))),
    "proj: c_0 of P": ((H_IN, H), {"proj_size": P}, lambda m: m(_r(5, 2, H_IN), (_r(1, 2, P), _r(1, 2, P)))),
    "proj_size -1": ((H_IN, H), {"proj_size": -1}, None),
    "proj_size = hidden_size": ((H_IN, H), {"proj_size": H}, None),
    "proj_size float": ((H_IN, H), {"proj_size": 1.5}, None),
}


@pytest.mark.parametrize("case", list(LSTM_ERRORS))
def test_lstm_errors_have_torchs_class(case):
    args, kwargs, call = LSTM_ERRORS[case]
    error = _same_error(lambda ns: ns.LSTM(*args, **kwargs), call)
    assert str(error).startswith("LSTM: expected")


def test_rnn_nonlinearity_error_has_torchs_class():
    _same_error(lambda ns: ns.RNN(3, 4, nonlinearity="sigmoid"), None)


# Where torch fails only by accident (an AttributeError from calling .dim() on a list), or not at
# all on input that is a mistake, we raise the error a learner can act on. Each line: torch's
# outcome, ours.
DELIBERATE = {
    "input a list": (lambda ns: ns.GRU(3, 4), lambda m: m([[0.0, 1.0, 2.0]]), AttributeError, TypeError),
    "cell input a list": (lambda ns: ns.GRUCell(3, 4), lambda m: m([[0.0, 1.0, 2.0]]), AttributeError, TypeError),
    "GRU hx a tuple": (lambda ns: ns.GRU(3, 4), lambda m: m(_r(5, 2, 3), (_r(1, 2, 4),) * 2), AttributeError,
                       TypeError),
    "LSTM hx a Tensor": (lambda ns: ns.LSTM(3, 4), lambda m: m(_r(5, 2, 3), _r(1, 2, 4)), IndexError, TypeError),
    "LSTM hx of one": (lambda ns: ns.LSTM(3, 4), lambda m: m(_r(5, 2, 3), (_r(1, 2, 4),)), IndexError,
                       RuntimeError),
    # torch.nn.LSTM checks no packed input (torch.nn.RNN and GRU do): its kernel fails on what we check
    "LSTM packed dtype": (lambda ns: ns.LSTM(3, 4), lambda m: m(_packed(dtype=torch.float64)), RuntimeError,
                          ValueError),  # our class: torch's for this input to RNN, GRU and any padded input
    "LSTM packed h_0 2-D": (lambda ns: ns.LSTM(3, 4), lambda m: m(_packed(), (_r(1, 4), _r(1, 4))), IndexError,
                            RuntimeError),
    # torch builds it and fails at the first step; we fail when it is built
    "RNNCell nonlinearity": (lambda ns: ns.RNNCell(3, 4, nonlinearity="sigmoid"), lambda m: m(_r(2, 3)),
                             RuntimeError, ValueError),
    # torch accepts these
    "LSTMCell c of another dtype": (lambda ns: ns.LSTMCell(3, 5), lambda m: m(_r(2, 3), _hc(2, 5, dtype=torch.float64)),
                                    None, RuntimeError),
    "input_size True": (lambda ns: ns.LSTM(True, 4), None, None, TypeError),
}


@pytest.mark.parametrize("case", list(DELIBERATE))
def test_deliberate_differences(case):
    build, call, torch_raises, we_raise = DELIBERATE[case]
    want, got = _outcome(nn, build, call), _outcome(M, build, call)
    assert type(want) is (torch_raises or type(None)), f"torch now gives {want!r}: update this table"
    assert type(got) is we_raise, repr(got)
