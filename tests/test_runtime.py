"""course_utils.runtime: seeding, the device choice and ``setup``, the first cell of every notebook."""

import random

import numpy as np
import pytest
import torch
from torch._tensor_str import PRINT_OPTS

from course_utils import runtime


@pytest.fixture(autouse=True)
def _restore_global_state():
    """setup() changes process-wide settings: put them back for the tests that run after."""
    rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    threads, torch_print, numpy_print = torch.get_num_threads(), dict(vars(PRINT_OPTS)), np.get_printoptions()
    yield
    torch.set_rng_state(rng[0])
    np.random.set_state(rng[1])
    random.setstate(rng[2])
    torch.set_num_threads(threads)
    torch.set_printoptions(**torch_print)
    np.set_printoptions(**numpy_print)


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine with neither CUDA nor MPS, whatever runs the tests."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def _draws():
    return torch.rand(2).tolist(), np.random.rand(), random.random()


def _draws_after_seeding(seed: int):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    return _draws()


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_seed_everything_seeds_python_numpy_and_torch(seed):
    expected = _draws_after_seeding(seed)
    runtime.seed_everything(seed)
    assert _draws() == expected


@pytest.mark.parametrize("seed, numpy_seed", [(2**32 + 7, 7), (-1, 2**32 - 1)])
def test_seed_everything_folds_any_int_into_numpys_range(seed, numpy_seed):
    """NumPy takes seeds in [0, 2**32) only; any other int is taken modulo 2**32."""
    np.random.seed(numpy_seed)
    expected = np.random.rand(3)
    runtime.seed_everything(seed)
    np.testing.assert_array_equal(np.random.rand(3), expected)


@pytest.mark.parametrize("seed, name", [("3", "str"), (3.0, "float"), (True, "bool"), (None, "NoneType")])
def test_seed_everything_refuses_what_is_not_an_int(seed, name):
    with pytest.raises(TypeError, match=f"^seed_everything: expected an int seed, got {name}$"):
        runtime.seed_everything(seed)


def test_default_device_is_the_cpu_without_a_gpu(no_gpu):
    assert runtime.default_device() == torch.device("cpu")


def test_default_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.default_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.default_device() == torch.device("mps")


def test_default_device_without_an_mps_backend(monkeypatch):
    """A torch build without ``torch.backends.mps`` falls back to the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delattr(torch.backends, "mps")
    assert runtime.default_device() == torch.device("cpu")


def test_setup_defaults(no_gpu, capsys):
    """seed 0, the best device, print precision 4 without scientific notation, one CPU thread, no TF32."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.set_num_threads(2)
    expected = _draws_after_seeding(0)
    assert runtime.setup() == torch.device("cpu")
    assert capsys.readouterr().out == "seed 0, device cpu\n"
    assert _draws() == expected
    assert torch.get_num_threads() == 1
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    assert repr(torch.tensor([1 / 3, 123.0])) == "tensor([  0.3333, 123.0000])"
    assert repr(np.array([1 / 3, 1e-10])) == "array([0.3333, 0.    ])"


def test_setup_applies_every_argument(capsys):
    torch.set_num_threads(1)
    expected = _draws_after_seeding(5)
    device = runtime.setup(seed=5, device="cpu", precision=2, verbose=False, threads=2, tf32=True)
    assert device == torch.device("cpu")
    assert capsys.readouterr().out == ""
    assert _draws() == expected
    assert torch.get_num_threads() == 2
    assert torch.backends.cuda.matmul.allow_tf32 is True and torch.backends.cudnn.allow_tf32 is True
    assert repr(torch.tensor([1 / 3, 1e-6])) == "tensor([0.33, 0.00])"
    assert repr(np.array([1 / 3, 1e-10])) == "array([0.33, 0.  ])"


def test_setup_sets_threads_for_the_cpu_only(capsys):
    """threads applies to the CPU; on another device, or with threads=None, torch's setting stays."""
    torch.set_num_threads(2)
    assert runtime.setup(device="cuda", threads=1) == torch.device("cuda")  # no GPU needed to name one
    assert capsys.readouterr().out == "seed 0, device cuda\n"
    assert torch.get_num_threads() == 2
    runtime.setup(device=torch.device("cpu"), threads=None, verbose=False)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [0, -1, True, 1.5, "2"])
def test_setup_refuses_bad_threads(threads):
    with pytest.raises(ValueError, match=rf"^setup: expected threads to be a positive int or None, got {threads!r}$"):
        runtime.setup(device="cpu", threads=threads, verbose=False)
