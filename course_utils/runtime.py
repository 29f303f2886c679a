"""Seeding and device choice: explicit calls, nothing happens at import time."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything", "default_device", "setup"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed_everything: expected an int seed, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def default_device() -> torch.device:
    """The best device here: ``cuda`` if a GPU is visible, then Apple's ``mps``, then ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def setup(seed: int = 0, device: str | torch.device | None = None, precision: int = 4,
          verbose: bool = True, threads: int | None = 1, tf32: bool = False) -> torch.device:
    """The first cell of every notebook: seed everything, pick the device, set print precision.

    Args:
        seed: seed for python, numpy and torch.
        device: a device to use; ``None`` picks :func:`default_device`.
        precision: digits that torch and numpy print after the decimal point.
        verbose: print one line saying what was chosen.
        threads: CPU threads torch may use for one operation (``torch.set_num_threads``), applied
            only when the chosen device is the CPU. The course's tensors are small, so splitting one
            matmul over cores gains little and, when several kernels share a laptop (an nbval run,
            the batch grader with ``--jobs``), threads fight for cores and every step gets many
            times slower. ``None`` leaves torch's default alone.
        tf32: let CUDA's matmuls and cuDNN use TF32, a faster format with a 10-bit mantissa. Off
            by default: the course compares implementations to 1e-6, and cuDNN's recurrent layers
            use TF32 unless told not to, which moves float32 results by about 1e-4.

    Returns:
        the chosen ``torch.device``.
    """
    seed_everything(seed)
    chosen = torch.device(device) if device is not None else default_device()
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"setup: expected threads to be a positive int or None, got {threads!r}")
        if chosen.type == "cpu":
            torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_printoptions(precision=precision, sci_mode=False)
    np.set_printoptions(precision=precision, suppress=True)
    if verbose:
        print(f"seed {seed}, device {chosen.type}")
    return chosen
