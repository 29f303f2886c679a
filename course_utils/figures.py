"""The lessons' figures: cell diagrams and key plots, drawn by code and written as SVG.

Run ``python -m course_utils.figures`` to write every figure into ``lessons/figures/``
(``--out DIR`` elsewhere, ``--check`` to only compare). The files are deterministic: a
fixed ``svg.hashsalt``, no date in the metadata, fixed seeds, and plotted values rounded
so that the last bits of a float on another CPU do not change a coordinate. Both lesson
languages embed the same files, so every label is a symbol, a formula or a name
(``x_t``, ``W_hh``, ``σ``, ``LSTM``) that needs no translation; the captions live in the
lessons.

The look is the widgets' (:mod:`course_utils.plotting`): the same gate face colour, the
same red for positive / growing and blue for negative / shrinking, black outlines.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from . import gradients
from .plotting import GATE_FACE, NEGATIVE_COLOR, NEUTRAL_COLOR, POSITIVE_COLOR, new_figure

__all__ = ["FIGURES", "render", "write_all", "main"]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "lessons" / "figures"
SVG_RC = {"svg.hashsalt": "rnn-course", "svg.fonttype": "path", "font.family": "DejaVu Sans",
          "mathtext.fontset": "dejavusans", "axes.unicode_minus": True}
STATE_COLOR = "#2f2f2f"     # the lines that carry h and c
WEIGHT_COLOR = "#7a4fa3"    # labels of the shared weights
ROUND_LOG10 = 2             # plotted log10 values keep this many decimals


# ----------------------------------------------------------------------------- drawing helpers
class Board:
    """An axes used as a drawing board, with data units as drawing units (equal aspect)."""

    def __init__(self, fig: Figure, width: float, height: float, rect=(0.0, 0.0, 1.0, 1.0)):
        self.ax = fig.add_axes(rect)
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_aspect("equal")
        self.ax.set_axis_off()

    def box(self, x: float, y: float, text: str, w: float = 0.9, h: float = 0.6, face: str = GATE_FACE,
            size: float = 11, lw: float = 1.2) -> tuple[float, float, float, float]:
        """A rounded box centred at (x, y); returns (left, right, bottom, top)."""
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                         facecolor=face, edgecolor="black", lw=lw, zorder=3))
        self.ax.text(x, y, text, ha="center", va="center", fontsize=size, zorder=4)
        return x - w / 2, x + w / 2, y - h / 2, y + h / 2

    def node(self, x: float, y: float, symbol: str, r: float = 0.22, size: float = 12) -> float:
        """A pointwise operation as a circle with its symbol; returns the radius."""
        self.ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor="black", lw=1.2, zorder=3))
        self.ax.text(x, y, symbol, ha="center", va="center_baseline", fontsize=size, zorder=4)
        return r

    def line(self, points, color: str = STATE_COLOR, lw: float = 1.6, arrow: bool = True, zorder: float = 1):
        """A polyline through ``points``, with an arrow head at the end when ``arrow``."""
        xs, ys = zip(*points)
        if len(points) > 2:
            self.ax.plot(xs[:-1], ys[:-1], color=color, lw=lw, solid_capstyle="butt", zorder=zorder)
        start = points[-2]
        self.ax.add_patch(FancyArrowPatch(start, points[-1], arrowstyle="-|>" if arrow else "-", mutation_scale=11,
                                          shrinkA=0, shrinkB=0, color=color, lw=lw, zorder=zorder))

    def label(self, x: float, y: float, text: str, size: float = 11, color: str = "black", ha: str = "center",
              va: str = "center"):
        self.ax.text(x, y, text, ha=ha, va=va, fontsize=size, color=color, zorder=5)


# ----------------------------------------------------------------------------- 01: the unrolled RNN
def rnn_unrolled() -> Figure:
    """The RNN folded (one cell with a loop) and unrolled over four steps, the same weights at every step."""
    fig = new_figure(9.0, 2.9)
    b = Board(fig, 18.0, 5.8)
    # folded: one cell, its state fed back
    cx, cy = 1.9, 2.9
    b.box(cx, cy, r"$\tanh$", w=1.3, h=0.9, size=12)
    b.line([(cx, 0.7), (cx, cy - 0.45)])
    b.label(cx, 0.4, r"$x_t$")
    b.line([(cx, cy + 0.45), (cx, 5.0)])
    b.label(cx, 5.35, r"$h_t$")
    b.line([(cx, 4.3), (cx + 1.05, 4.3), (cx + 1.05, 1.9), (cx + 0.25, 1.9), (cx + 0.25, cy - 0.45)], arrow=True)
    b.label(cx + 1.25, 3.1, r"$W_{hh}$", size=10, color=WEIGHT_COLOR, ha="left")
    b.label(cx - 0.12, 1.45, r"$W_{ih}$", size=10, color=WEIGHT_COLOR, ha="right")
    b.label(4.6, cy, "=", size=20)
    # unrolled: h_0 -> cell -> cell -> cell -> ... -> cell
    xs = [7.0, 9.9, 12.8, 16.6]
    names = ["1", "2", "3", "T"]
    b.label(5.4, cy, r"$h_0$")
    previous = 5.8
    for k, (x, name) in enumerate(zip(xs, names)):
        if k == 3:
            b.label(14.7, cy, r"$\cdots$", size=16)
            b.line([(13.45, cy), (14.2, cy)], arrow=False)
            previous = 15.2
        b.line([(previous, cy), (x - 0.65, cy)])
        b.box(x, cy, r"$\tanh$", w=1.3, h=0.9, size=12)
        b.line([(x, 0.7), (x, cy - 0.45)])
        b.label(x, 0.4, rf"$x_{{{name}}}$")
        b.line([(x, cy + 0.45), (x, 5.0)])
        b.label(x, 5.35, rf"$h_{{{name}}}$")
        b.label(x + 0.1, 1.45, r"$W_{ih}$", size=10, color=WEIGHT_COLOR, ha="left")
        if k < 3:
            b.label((x + xs[k + 1]) / 2 if k < 2 else x + 1.0, cy + 0.3, r"$W_{hh}$", size=10, color=WEIGHT_COLOR,
                    va="bottom")
        previous = x + 0.65
    return fig


# ----------------------------------------------------------------------------- 02: gradient against distance
GRADIENT_SCALES = ((0.5, NEGATIVE_COLOR), (1.0, NEUTRAL_COLOR), (2.0, POSITIVE_COLOR))
GRADIENT_SEEDS = 20
GRADIENT_T, GRADIENT_H, GRADIENT_H_IN = 50, 32, 4


def gradient_ratios(scale: float, seeds: int = GRADIENT_SEEDS, seq_len: int = GRADIENT_T) -> np.ndarray:
    """‖∂L/∂h_t‖ / ‖∂L/∂h_{T-1}‖ of a random tanh RNN: (seeds, T), column k = distance k from the loss."""
    rows = []
    for seed in range(seeds):
        norms = gradients.gradient_norms("rnn", seq_len, GRADIENT_H, GRADIENT_H_IN, weight_scale=scale, wrt="state",
                                         seed=seed, dtype=torch.float64)  # (T,), index t
        rows.append((norms / norms[-1]).numpy()[::-1])  # index = distance from the loss
    return np.array(rows)


def _rounded_log10(values: np.ndarray) -> np.ndarray:
    return np.round(np.log10(values), ROUND_LOG10)


def _band(ax, distance: np.ndarray, logs: np.ndarray, color: str, label: str) -> None:
    """The median over seeds as a line and their range as a band; ``logs`` is (seeds, T) of log10 values."""
    median = np.array([statistics.median(col) for col in logs.T])
    ax.fill_between(distance, 10 ** logs.min(axis=0), 10 ** logs.max(axis=0), color=color, alpha=0.18, lw=0)
    ax.plot(distance, 10 ** median, color=color, lw=2.0, label=label)


def _log_distance_axes(ax, T: int, low: int, high: int, ylabel: str) -> None:
    """Log-scale ratio against the distance from the loss, 10^low .. 10^high, a dashed line at 1."""
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlim(0, T - 1)
    ax.set_ylim(10.0 ** low, 10.0 ** high)
    ax.set_yticks([10.0 ** k for k in range(low, high + 1, 4)])
    ax.set_xlabel(r"$T - 1 - t$", fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.legend(loc="lower left", fontsize=10, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def gradient_distance() -> Figure:
    """Median and range over 20 seeds of the gradient reaching each earlier step, for three recurrent scales."""
    torch.set_num_threads(1)  # one thread: the same sums in the same order everywhere
    fig = new_figure(7.2, 3.6)
    ax = fig.add_axes((0.13, 0.15, 0.84, 0.8))
    distance = np.arange(GRADIENT_T)
    for scale, color in GRADIENT_SCALES:
        logs = _rounded_log10(gradient_ratios(scale))  # (seeds, T)
        _band(ax, distance, logs, color, rf"$\rho(W_{{hh}}) \approx {scale:g}$")
    _log_distance_axes(ax, GRADIENT_T, -20, 7,
                       r"$\|\partial L / \partial h_t\| \;/\; \|\partial L / \partial h_{T-1}\|$")
    return fig


# ----------------------------------------------------------------------------- 03: the LSTM cell
def lstm_cell() -> Figure:
    """The LSTM cell: c along the top (× forget, + input · candidate), four gates from [h_{t-1}, x_t], h out."""
    fig = new_figure(7.6, 4.2)
    b = Board(fig, 13.0, 7.2)
    top, bus, gate_y = 5.6, 1.4, 3.1
    # the cell state: c_{t-1} -> × f -> + -> c_t
    fx, px = 3.6, 6.6
    b.label(0.35, top, r"$c_{t-1}$", ha="left")
    b.line([(1.05, top), (fx - 0.22, top)], lw=2.4)
    b.node(fx, top, r"$\times$")
    b.line([(fx + 0.22, top), (px - 0.22, top)], lw=2.4)
    b.node(px, top, "+")
    b.line([(px + 0.22, top), (12.0, top)], lw=2.4)
    b.label(12.1, top, r"$c_t$", ha="left")
    # h_{t-1} and x_t join into one bus that feeds the four gates
    b.label(0.35, bus, r"$h_{t-1}$", ha="left")
    b.label(1.9, 0.25, r"$x_t$")
    b.line([(1.15, bus), (9.0, bus)], arrow=False)
    b.line([(1.9, 0.5), (1.9, bus)], arrow=False)
    gates = [(fx, r"$\sigma$", r"$f_t$"), (5.3, r"$\sigma$", r"$i_t$"), (6.6, r"$\tanh$", r"$g_t$"),
             (9.0, r"$\sigma$", r"$o_t$")]
    for x, symbol, name in gates:
        b.line([(x, bus), (x, gate_y - 0.3)])
        b.box(x, gate_y, symbol, w=0.95 if symbol != r"$\tanh$" else 1.1, h=0.6)
        b.label(x + 0.6, gate_y - 0.55, name, size=11, ha="left")
    # f_t -> × on the cell line
    b.line([(fx, gate_y + 0.3), (fx, top - 0.22)], color=NEGATIVE_COLOR)
    # i_t × g_t -> +
    mx, my = 6.0, 4.35
    b.node(mx, my, r"$\times$")
    b.line([(5.3, gate_y + 0.3), (5.3, my), (mx - 0.22, my)], color=NEGATIVE_COLOR)
    b.line([(6.6, gate_y + 0.3), (6.6, my - 0.5), (mx + 0.1, my - 0.5), (mx, my - 0.22)], color=POSITIVE_COLOR)
    b.line([(mx, my + 0.22), (mx, top - 0.5), (px - 0.16, top - 0.16)], color=POSITIVE_COLOR)
    # c_t -> tanh -> × o_t -> h_t
    tx, ty = 10.4, 4.35
    b.line([(tx, top), (tx, ty + 0.3)], lw=1.6)
    b.node(tx, ty, r"$\tanh$", r=0.34, size=9)
    ox, oy = 10.4, gate_y
    b.line([(tx, ty - 0.34), (ox, oy + 0.22)])
    b.node(ox, oy, r"$\times$")
    b.line([(9.0 + 0.475, gate_y), (ox - 0.22, oy)], color=NEGATIVE_COLOR)
    b.line([(ox + 0.22, oy), (12.0, oy)], lw=2.0)
    b.label(12.1, oy, r"$h_t$", ha="left")
    b.label(6.5, 6.75, r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t \qquad h_t = o_t \odot \tanh(c_t)$", size=11)
    return fig


# ----------------------------------------------------------------------------- 03: the forget-gate bias
FORGET_BIASES = ((0.0, NEGATIVE_COLOR), (1.0, NEUTRAL_COLOR), (3.0, POSITIVE_COLOR))
FORGET_T = 100


def forget_bias() -> Figure:
    """Gradient reaching each earlier input of an untrained LSTM, forget biases 0, 1, 3: median and range, 20 seeds."""
    torch.set_num_threads(1)
    fig = new_figure(7.2, 3.6)
    ax = fig.add_axes((0.13, 0.15, 0.84, 0.8))
    distance = np.arange(FORGET_T)
    for bias, color in FORGET_BIASES:
        rows = []
        for seed in range(GRADIENT_SEEDS):
            norms = gradients.gradient_norms("lstm", FORGET_T, GRADIENT_H, GRADIENT_H_IN, forget_bias=bias,
                                             wrt="input", seed=seed, dtype=torch.float64)  # (T,)
            rows.append((norms / norms[-1]).numpy()[::-1])  # index = distance from the loss
        logs = _rounded_log10(np.array(rows))  # (seeds, T)
        _band(ax, distance, logs, color, rf"$\Delta b_f = {bias:g}$")
    _log_distance_axes(ax, FORGET_T, -24, 2, r"$\|\partial L / \partial x_t\| \;/\; \|\partial L / \partial x_{T-1}\|$")
    return fig


# ----------------------------------------------------------------------------- 04: the GRU cell
def gru_cell() -> Figure:
    """The GRU cell in PyTorch's convention: h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}, reset after the hidden matmul."""
    fig = new_figure(7.6, 4.4)
    b = Board(fig, 13.0, 7.5)
    top, bus, gate_y = 5.9, 1.3, 2.9
    zx, sx = 7.4, 10.2  # × z on the state line, + that forms h_t
    b.label(0.35, top, r"$h_{t-1}$", ha="left")
    b.line([(1.15, top), (zx - 0.22, top)], lw=2.4)
    b.node(zx, top, r"$\times$")
    b.line([(zx + 0.22, top), (sx - 0.22, top)], lw=2.4)
    b.node(sx, top, "+")
    b.line([(sx + 0.22, top), (12.0, top)], lw=2.4)
    b.label(12.1, top, r"$h_t$", ha="left")
    # the bus [h_{t-1}, x_t] for the two gates; h_{t-1} comes down from the state line
    b.line([(1.5, top), (1.5, bus)], arrow=False)
    b.label(2.2, 0.2, r"$x_t$")
    b.line([(2.2, 0.45), (2.2, bus)], arrow=False)
    b.line([(1.5, bus), (4.6, bus)], arrow=False)
    rx, zgx = 3.1, 4.6
    for x, name in ((rx, r"$r_t$"), (zgx, r"$z_t$")):
        b.line([(x, bus), (x, gate_y - 0.3)])
        b.box(x, gate_y, r"$\sigma$", w=0.9, h=0.6)
        b.label(x + 0.55, gate_y - 0.55, name, ha="left")
    # z_t -> × on the state line; 1 - z_t -> × with n_t
    b.line([(zgx, gate_y + 0.3), (zgx, 4.9), (zx, 4.9), (zx, top - 0.22)], color=NEGATIVE_COLOR)
    one_minus_x, one_minus_y = 8.8, 4.9
    b.line([(zx, 4.9), (one_minus_x - 0.34, 4.9)], color=NEGATIVE_COLOR)
    b.node(one_minus_x, one_minus_y, r"$1-$", r=0.34, size=9)
    # the candidate n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    hx, hy = 6.2, 4.3  # W_hn h_{t-1} + b_hn, from the state line
    b.line([(hx, top), (hx, hy + 0.3)])
    b.box(hx, hy, r"$W_{hn} h_{t-1} + b_{hn}$", w=2.3, h=0.6, face="white", size=9)
    mx, my = 6.2, 3.2  # × r
    b.line([(hx, hy - 0.3), (hx, my + 0.22)])
    b.node(mx, my, r"$\times$")
    b.line([(rx, gate_y + 0.3), (rx, 3.9), (5.3, 3.9), (5.3, my), (mx - 0.22, my)], color=NEGATIVE_COLOR)
    ax_, ay = 7.6, 2.2  # + W_in x_t + b_in
    b.line([(mx, my - 0.22), (mx, ay), (ax_ - 0.22, ay)])
    b.node(ax_, ay, "+")
    b.box(7.6, 0.9, r"$W_{in} x_t + b_{in}$", w=2.0, h=0.55, face="white", size=9)
    b.line([(2.2, bus), (2.2, 0.9), (6.6, 0.9)], arrow=False)
    b.line([(7.6, 0.9 + 0.28), (ax_, ay - 0.22)])
    nx, ny = 8.8, 2.2  # tanh -> n_t
    b.line([(ax_ + 0.22, ay), (nx - 0.34, ny)])
    b.node(nx, ny, r"$\tanh$", r=0.34, size=9)
    b.label(nx + 0.45, ny - 0.45, r"$n_t$", ha="left")
    cx, cy = 8.8, 3.6  # (1 - z) × n
    b.line([(nx, ny + 0.34), (cx, cy - 0.22)], color=POSITIVE_COLOR)
    b.node(cx, cy, r"$\times$")
    b.line([(one_minus_x, one_minus_y - 0.34), (cx, cy + 0.22)], color=NEGATIVE_COLOR)
    b.line([(cx + 0.22, cy), (sx, cy), (sx, top - 0.22)], color=POSITIVE_COLOR)
    b.label(6.5, 7.05, r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$", size=11)
    return fig


# ----------------------------------------------------------------------------- 05: what each cell costs
COST_H_IN, COST_H = 64, 256


def comparison() -> Figure:
    """Parameters per layer of the three cells (counted on torch.nn, checked against the formula), G and states."""
    cells = (("RNN", 1, torch.nn.RNN), ("LSTM", 4, torch.nn.LSTM), ("GRU", 3, torch.nn.GRU))
    colors = (POSITIVE_COLOR, NEGATIVE_COLOR, "#3c9d5d")
    counts = []
    for name, blocks, layer in cells:
        counted = sum(p.numel() for p in layer(COST_H_IN, COST_H).parameters())
        formula = blocks * (COST_H * COST_H_IN + COST_H * COST_H + 2 * COST_H)  # P = G (H·H_in + H·H + 2H)
        if counted != formula:
            raise AssertionError(f"comparison: {name} has {counted} parameters, the formula gives {formula}")
        counts.append(counted)
    fig = new_figure(7.2, 3.0)
    ax = fig.add_axes((0.12, 0.2, 0.5, 0.68))
    positions = np.arange(len(cells))
    ax.bar(positions, [c / 1000 for c in counts], color=colors, width=0.6)
    for k, c in enumerate(counts):
        ax.text(k, c / 1000 + 6, f"{c:,}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(positions, [name for name, _, _ in cells])
    ax.set_ylabel(r"$P \;/\; 10^3$", fontsize=11)
    ax.set_ylim(0, 390)
    ax.set_title(rf"$P = G\,(H H_{{in}} + H^2 + 2H)$, $H_{{in}} = {COST_H_IN}$, $H = {COST_H}$", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    table = fig.add_axes((0.68, 0.2, 0.3, 0.68))
    table.set_axis_off()
    rows = [("", r"$G$", ""), ("RNN", "1", r"$h_t$"), ("LSTM", "4", r"$h_t, c_t$"), ("GRU", "3", r"$h_t$")]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.text(0.05 + 0.33 * c, 0.9 - 0.22 * r, text, fontsize=10, ha="left", va="center",
                       color=colors[r - 1] if (c == 0 and r > 0) else "black", transform=table.transAxes)
    return fig


# ----------------------------------------------------------------------------- 06: temperature
TEMPERATURE_LOGITS = (2.6, 1.9, 1.4, 0.9, 0.5, 0.1, -0.3, -0.8)  # next-character scores z_v, illustrative
TEMPERATURE_CHARS = ("e", "a", "t", "o", "s", "h", "q", "z")
TEMPERATURES = (0.5, 1.0, 1.5)


def temperature() -> Figure:
    """p_τ(v) = softmax(z / τ) of one score vector at three temperatures, with the entropy of each."""
    z = torch.tensor(TEMPERATURE_LOGITS, dtype=torch.float64)
    fig = new_figure(7.2, 2.6)
    for k, tau in enumerate(TEMPERATURES):
        p = torch.softmax(z / tau, dim=0)  # p_τ(v) = exp(z_v / τ) / Σ_u exp(z_u / τ)
        entropy = float(-(p * p.log()).sum())  # H = -Σ_v p_τ(v) log p_τ(v)
        ax = fig.add_axes((0.1 + 0.31 * k, 0.18, 0.25, 0.62))
        ax.bar(range(len(z)), np.round(p.numpy(), 4), color=NEGATIVE_COLOR if tau < 1 else (
            NEUTRAL_COLOR if tau == 1 else POSITIVE_COLOR), width=0.7)
        ax.set_xticks(range(len(z)), TEMPERATURE_CHARS)
        ax.set_ylim(0, 0.85)
        if k:
            ax.set_yticklabels([])
        else:
            ax.set_ylabel(r"$p_\tau(v)$", fontsize=11)
        ax.set_title(rf"$\tau = {tau:g}$,  $H = {entropy:.2f}$", fontsize=10)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig


# ----------------------------------------------------------------------------- 07: padding and packing
PADDED_LENGTHS = (5, 3, 2)


def padding() -> Figure:
    """A padded batch (time down, sequences across): real steps, padding, each sequence's last valid step,
    what ``output[-1]`` reads, and the batch sizes a packed sequence runs with."""
    T, N = max(PADDED_LENGTHS), len(PADDED_LENGTHS)
    fig = new_figure(7.2, 3.4)
    board = Board(fig, 11.0, 5.2)
    x0, y0, dx, dy = 1.6, 4.4, 1.1, 0.8
    for n, length in enumerate(PADDED_LENGTHS):
        board.label(x0 + n * dx, y0 + 0.6, f"$n = {n}$", size=10)
        for t in range(T):
            real = t < length
            last = t == length - 1
            face = (POSITIVE_COLOR if last else GATE_FACE) if real else "#e4e4e4"
            board.box(x0 + n * dx, y0 - t * dy, f"$h_{{{t}}}$" if real else "pad", w=0.9, h=0.6, face=face,
                      size=10 if real else 9, lw=2.2 if last else 1.0)
    for t in range(T):
        board.label(x0 - 1.0, y0 - t * dy, f"$t = {t}$", size=10)
        sizes = sum(1 for length in PADDED_LENGTHS if length > t)
        board.label(x0 + N * dx + 0.4, y0 - t * dy, f"{sizes}", size=10, color=WEIGHT_COLOR)
    board.label(x0 + N * dx + 0.4, y0 + 0.6, "batch_sizes", size=9, color=WEIGHT_COLOR)
    y_last = y0 - (T - 1) * dy
    board.line([(x0 - 0.55, y_last - 0.5), (x0 + (N - 1) * dx + 0.55, y_last - 0.5)], color=NEGATIVE_COLOR,
               arrow=False, lw=2.0)
    board.label(x0 + (N - 1) * dx / 2, y_last - 0.85, "output[-1]", size=10, color=NEGATIVE_COLOR)
    kx = 7.6
    board.box(kx, 4.0, "", w=0.5, h=0.35, face=POSITIVE_COLOR, lw=2.2)
    board.label(kx + 0.45, 4.0, "$h_{l_n - 1}$", size=10, ha="left")
    board.box(kx, 3.3, "", w=0.5, h=0.35, face="#e4e4e4", lw=1.0)
    board.label(kx + 0.45, 3.3, "pad", size=10, ha="left")
    board.label(kx - 0.25, 2.5, r"$l = (5, 3, 2)$", size=10, ha="left")
    return fig


FIGURES: dict[str, Callable[[], Figure]] = {
    "01_rnn_unrolled": rnn_unrolled,
    "02_gradient_distance": gradient_distance,
    "03_lstm_cell": lstm_cell,
    "03_forget_bias": forget_bias,
    "04_gru_cell": gru_cell,
    "05_comparison": comparison,
    "06_temperature": temperature,
    "07_padding": padding,
}


# ----------------------------------------------------------------------------- writing
def render(name: str) -> bytes:
    """The SVG bytes of one figure, deterministic for the same inputs."""
    if name not in FIGURES:
        raise ValueError(f"render: expected one of {', '.join(FIGURES)}, got {name!r}")
    threads = torch.get_num_threads()
    try:
        with matplotlib.rc_context(SVG_RC):
            fig = FIGURES[name]()
            out = io.BytesIO()
            fig.savefig(out, format="svg", metadata={"Date": None}, facecolor="white")
    finally:
        torch.set_num_threads(threads)  # the plots measure with one thread; leave the caller's setting
    return out.getvalue()


def write_all(out: Path = DEFAULT_OUT, names=None) -> list[Path]:
    """Write the figures (all, or ``names``) as ``out/<name>.svg``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or FIGURES:
        path = out / f"{name}.svg"
        path.write_bytes(render(name))
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write the SVG files into")
    parser.add_argument("--check", action="store_true",
                        help="only compare with the files in --out; exit 1 if any differ")
    parser.add_argument("names", nargs="*", help=f"figures to write (default: all of {', '.join(FIGURES)})")
    args = parser.parse_args(argv)
    names = args.names or list(FIGURES)
    if args.check:
        stale = [n for n in names if not (args.out / f"{n}.svg").is_file()
                 or (args.out / f"{n}.svg").read_bytes() != render(n)]
        for n in stale:
            print(f"out of date: {args.out / (n + '.svg')}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.out, names):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
