"""Time from a slider change to the updated figure, for every widget explorer.

Each round moves one slider of every explorer once (interleaved, so that a noisy shared
machine slows them alike) and records what the explorer's own ``refresh`` measured:

- compute = the explorer's state from course_utils.functional / gradients;
- update = compute + artist updates + a full ``fig.canvas.draw()`` (Agg): the figure is ready;
- png    = encoding the drawn canvas as PNG for the ``ipywidgets.Image`` the notebook shows;
- total  = wall time of the ``slider.value = ...`` assignment (traitlets, readout and all).

Medians over the changes, with the 90th percentile and the minimum of "update" (the minimum
is what an idle machine would show; the median is what a shared one does).

    python bench/widget_latency.py                  # 40 changes per explorer
    python bench/widget_latency.py --repeats 100
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import matplotlib
import torch

from course_utils.widgets import (
    GateInspector,
    GradientFlowExplorer,
    GRUGateExplorer,
    LSTMGateExplorer,
    RNNUnrollExplorer,
)

TARGET_MS = {"single-step": 30.0, "multi-step": 100.0}


def make_cases():
    """(name, kind, explorer, slider, two values to alternate between) for each measured interaction."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(8, 64)
    inspector = GateInspector(lstm, torch.randn(100, 8, 8))  # T=100, batch of 8, 32 of 64 units shown
    flow_rnn = GradientFlowExplorer(cell="rnn", seq_len=50)
    flow_lstm = GradientFlowExplorer(cell="lstm", seq_len=150, forget_bias=1.0)
    lstm_default = LSTMGateExplorer()  # 30 steps
    lstm_explorer = LSTMGateExplorer(steps=50)
    gru_explorer = GRUGateExplorer()
    unroll = RNNUnrollExplorer(steps=60)  # the longest unroll the slider allows
    return [
        ("RNNUnrollExplorer T=60", "recurrent_scale", "multi-step", unroll, unroll.recurrent_scale, (0.9, 1.4)),
        ("RNNUnrollExplorer T=60", "pattern", "multi-step", unroll, unroll.pattern, ("pulse", "noise")),
        ("LSTMGateExplorer (30 steps)", "forget", "multi-step", lstm_default, lstm_default.forget, (0.5, 0.9)),
        ("LSTMGateExplorer (50 steps)", "forget", "multi-step", lstm_explorer, lstm_explorer.forget, (0.5, 0.9)),
        ("LSTMGateExplorer (50 steps)", "c_prev", "multi-step", lstm_explorer, lstm_explorer.c_prev, (-1.0, 1.5)),
        ("GRUGateExplorer", "update", "single-step", gru_explorer, gru_explorer.update, (0.2, 0.8)),
        ("GRUGateExplorer", "convention", "single-step", gru_explorer, gru_explorer.convention, ("torch", "chung")),
        ("GradientFlowExplorer RNN T=50", "weight_scale", "multi-step", flow_rnn, flow_rnn.weight_scale, (0.8, 1.4)),
        ("GradientFlowExplorer LSTM T=150", "weight_scale", "multi-step", flow_lstm, flow_lstm.weight_scale,
         (0.8, 1.4)),
        ("GateInspector LSTM T=100", "step", "multi-step", inspector, inspector.step, (10, 60)),
        ("GateInspector LSTM T=100", "index", "multi-step", inspector, inspector.index, (1, 5)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="slider changes per explorer (>= 30)")
    args = parser.parse_args()
    if args.repeats < 30:
        parser.error(f"expected --repeats >= 30, got {args.repeats}")
    cases = make_cases()
    records = {k: {"compute": [], "update": [], "png": [], "total": []} for k in range(len(cases))}
    for step in range(args.repeats + 2):  # 2 warm-up rounds are dropped
        for k, (_, _, _, explorer, slider, values) in enumerate(cases):
            start = time.perf_counter()
            slider.value = values[step % 2]
            total = time.perf_counter() - start
            if step >= 2:
                t = explorer.timings
                records[k]["compute"].append(t["compute"])
                records[k]["update"].append(t["compute"] + t["artists_draw"])
                records[k]["png"].append(t["png"])
                records[k]["total"].append(total)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# widget latency: {args.repeats} changes per row, medians in ms; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}, "
          f"matplotlib {matplotlib.__version__}, torch {torch.__version__} (Agg canvas, no pyplot)")
    print()
    print("| explorer | slider | compute | update (compute+artists+draw) | p90 | min | PNG encode | total "
          "| target (update) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for k, (name, slider_name, kind, *_rest) in enumerate(cases):
        r = records[k]
        update = sorted(r["update"])
        p90 = update[int(0.9 * (len(update) - 1))]
        median = statistics.median(update)
        verdict = "ok" if median * 1e3 < TARGET_MS[kind] else "OVER"
        print(f"| {name} | {slider_name} | {statistics.median(r['compute']) * 1e3:.1f} | {median * 1e3:.1f} "
              f"| {p90 * 1e3:.1f} | {update[0] * 1e3:.1f} | {statistics.median(r['png']) * 1e3:.1f} "
              f"| {statistics.median(r['total']) * 1e3:.1f} "
              f"| < {TARGET_MS[kind]:.0f} ms {kind}: {verdict} |")


if __name__ == "__main__":
    main()
