"""Plain-Python peer: one run at a time, scalar floats, math.exp.

Always float64 (Python floats).  Meant for a small subset of runs/steps; the bench
extrapolates its run-steps per second.
"""

from __future__ import annotations

import math
import time

import numpy as np
from benchkit.problem import Problem

from . import PeerResult


def _sigmoid(x):
    try:
        return 1.0 / (1.0 + math.exp(-x))
    except OverflowError:  # exp(-x) > DBL_MAX: sigma(x) rounds to 0
        return 0.0


def train_one(w, lr, i1, i2, t1, t2, steps):
    """One run: returns (final weights tuple, final E_total)."""
    w1, w2, w3, w4, w5, w6, w7, w8 = w
    sig = _sigmoid
    for _ in range(steps):
        a_h1 = sig(w1 * i1 + w2 * i2)
        a_h2 = sig(w3 * i1 + w4 * i2)
        a_o1 = sig(w5 * a_h1 + w6 * a_h2)
        a_o2 = sig(w7 * a_h1 + w8 * a_h2)
        d_o1 = (a_o1 - t1) * a_o1 * (1.0 - a_o1)
        d_o2 = (a_o2 - t2) * a_o2 * (1.0 - a_o2)
        d_h1 = (d_o1 * w5 + d_o2 * w7) * a_h1 * (1.0 - a_h1)
        d_h2 = (d_o1 * w6 + d_o2 * w8) * a_h2 * (1.0 - a_h2)
        w5 -= lr * (d_o1 * a_h1)
        w6 -= lr * (d_o1 * a_h2)
        w7 -= lr * (d_o2 * a_h1)
        w8 -= lr * (d_o2 * a_h2)
        w1 -= lr * (d_h1 * i1)
        w2 -= lr * (d_h1 * i2)
        w3 -= lr * (d_h2 * i1)
        w4 -= lr * (d_h2 * i2)
    a_h1 = sig(w1 * i1 + w2 * i2)
    a_h2 = sig(w3 * i1 + w4 * i2)
    a_o1 = sig(w5 * a_h1 + w6 * a_h2)
    a_o2 = sig(w7 * a_h1 + w8 * a_h2)
    loss = 0.5 * (t1 - a_o1) ** 2 + 0.5 * (t2 - a_o2) ** 2
    return (w1, w2, w3, w4, w5, w6, w7, w8), loss


def run(problem: Problem, threads=None) -> PeerResult:
    """Train every run of `problem` in float64 Python floats.  `threads` is ignored."""
    i1, i2 = problem.inputs
    t1, t2 = problem.targets
    w_cols = problem.w_init.astype(np.float64).T.tolist()
    lrs = problem.lr.astype(np.float64).tolist()
    out_w, out_loss = [], []
    t0 = time.perf_counter()
    for w, lr in zip(w_cols, lrs):
        wf, loss = train_one(w, lr, i1, i2, t1, t2, problem.steps)
        out_w.append(wf)
        out_loss.append(loss)
    seconds = time.perf_counter() - t0
    weights = np.array(out_w, dtype=np.float64).T.copy()
    return PeerResult(weights, np.array(out_loss), seconds, problem.runs, problem.steps)
