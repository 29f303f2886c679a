"""Shared fixtures for the unit tests."""

import pytest
import torch

# The browser test's notebook is opened in JupyterLab, not run by nbval.
collect_ignore_glob = ["browser/*.ipynb"]


def _cuda_available() -> bool:
    return torch.cuda.is_available()


DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the CUDA tests run where one is present")])]


@pytest.fixture(autouse=True)
def _no_tf32():
    """Full float32 on CUDA: cuDNN's recurrent layers use TF32 by default (about 1e-4 off), which
    would compare a precision mode, not the math. No effect on the CPU."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
