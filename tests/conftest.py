"""Shared fixtures for the unit tests."""

import pytest
import torch

# The browser test's notebook is opened in JupyterLab, not run by nbval.
collect_ignore_glob = ["browser/*.ipynb"]


def _cuda_available() -> bool:
    return torch.cuda.is_available()


DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the CUDA tests run where one is present")])]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
