"""Time course_utils' RNN, LSTM and GRU against torch.nn on the same device, as ratios.

Both implementations run the same sizes with the same weights, interleaved (ours, torch,
ours, torch, ...) so that a noisy, shared machine slows both alike; the figure reported
is median(ours) / median(torch) for the forward pass and for forward + backward.

    python bench/bench_rnn.py                 # CPU (and CUDA too if a GPU is present)
    python bench/bench_rnn.py --device cuda --repeats 30
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from course_utils import modules as M

SIZES = {  # name: (T, N, H_in, H)
    "large": (100, 64, 64, 256),
    "course": (50, 32, 2, 32),
}
CELLS = {"LSTM": (M.LSTM, nn.LSTM), "GRU": (M.GRU, nn.GRU), "RNN": (M.RNN, nn.RNN)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench_one(cell: str, size: str, device: torch.device, repeats: int, warmup: int = 3) -> dict[str, float]:
    T, N, H_in, H = SIZES[size]
    ours_cls, torch_cls = CELLS[cell]
    torch.manual_seed(0)
    ours = ours_cls(H_in, H).to(device)
    ref = torch_cls(H_in, H).to(device)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(T, N, H_in, device=device)

    def forward(model):
        with torch.no_grad():
            model(x)

    def forward_backward(model):
        out, _ = model(x)
        out.sum().backward()
        model.zero_grad(set_to_none=True)

    result = {}
    for label, fn in (("fwd", forward), ("fwd+bwd", forward_backward)):
        for _ in range(warmup):
            fn(ours), fn(ref)
        times = {"ours": [], "torch": []}
        for _ in range(repeats):  # interleaved
            times["ours"].append(_time(lambda: fn(ours), device))
            times["torch"].append(_time(lambda: fn(ref), device))
        med_o, med_t = statistics.median(times["ours"]), statistics.median(times["torch"])
        result[label] = med_o / med_t
        result[label + " torch ms"] = med_t * 1e3
        result[label + " ours ms"] = med_o * 1e3
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", help="cpu, cuda, mps (repeatable); default: cpu and cuda if present")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per implementation (median is reported)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    args = parser.parse_args(argv)
    if args.repeats < 10:
        parser.error(f"expected --repeats >= 10 (medians of at least 10), got {args.repeats}")
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, repeats {args.repeats}")
    print(f"{'device':7} {'size':7} {'cell':5} {'fwd ratio':>9} {'f+b ratio':>9} {'torch fwd ms':>12} {'torch f+b ms':>12}")
    for dev in devices:
        device = torch.device(dev)
        if device.type == "cuda":
            print(f"# {torch.cuda.get_device_name(device)}")
        for size in args.sizes:
            for cell in args.cells:
                r = bench_one(cell, size, device, args.repeats)
                print(f"{dev:7} {size:7} {cell:5} {r['fwd']:9.2f} {r['fwd+bwd']:9.2f} "
                      f"{r['fwd torch ms']:12.2f} {r['fwd+bwd torch ms']:12.2f}", flush=True)


if __name__ == "__main__":
    main()
