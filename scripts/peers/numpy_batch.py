"""NumPy peer: every weight is an array of shape (R,), one vectorised step for all runs.

Plain NumPy expressions with np.exp, in the problem's dtype (float64 or float32); the
temporaries NumPy allocates per operation are part of what is measured.  Single
threaded (NumPy's element-wise ufuncs do not use threads).
"""

from __future__ import annotations

import time

import numpy as np
from benchkit.problem import Problem

from . import PeerResult


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def forward_loss(w, i1, i2, t1, t2):
    """E_total for weights w = (w1..w8), each (R,)."""
    w1, w2, w3, w4, w5, w6, w7, w8 = w
    a_h1 = _sigmoid(w1 * i1 + w2 * i2)
    a_h2 = _sigmoid(w3 * i1 + w4 * i2)
    a_o1 = _sigmoid(w5 * a_h1 + w6 * a_h2)
    a_o2 = _sigmoid(w7 * a_h1 + w8 * a_h2)
    return 0.5 * (t1 - a_o1) ** 2 + 0.5 * (t2 - a_o2) ** 2


def train(w, lr, i1, i2, t1, t2, steps):
    """N gradient-descent steps; returns the final weights as a list of 8 arrays."""
    w1, w2, w3, w4, w5, w6, w7, w8 = w
    for _ in range(steps):
        # forward
        a_h1 = _sigmoid(w1 * i1 + w2 * i2)
        a_h2 = _sigmoid(w3 * i1 + w4 * i2)
        a_o1 = _sigmoid(w5 * a_h1 + w6 * a_h2)
        a_o2 = _sigmoid(w7 * a_h1 + w8 * a_h2)
        # backward: output deltas (a_o - t) a_o (1 - a_o)
        d_o1 = (a_o1 - t1) * a_o1 * (1.0 - a_o1)
        d_o2 = (a_o2 - t2) * a_o2 * (1.0 - a_o2)
        # hidden deltas dE/da_h * a_h (1 - a_h), from the old w5..w8
        d_h1 = (d_o1 * w5 + d_o2 * w7) * a_h1 * (1.0 - a_h1)
        d_h2 = (d_o1 * w6 + d_o2 * w8) * a_h2 * (1.0 - a_h2)
        # update, all from the gradients at the old weights
        w5 = w5 - lr * (d_o1 * a_h1)
        w6 = w6 - lr * (d_o1 * a_h2)
        w7 = w7 - lr * (d_o2 * a_h1)
        w8 = w8 - lr * (d_o2 * a_h2)
        w1 = w1 - lr * (d_h1 * i1)
        w2 = w2 - lr * (d_h1 * i2)
        w3 = w3 - lr * (d_h2 * i1)
        w4 = w4 - lr * (d_h2 * i2)
    return [w1, w2, w3, w4, w5, w6, w7, w8]


def run(problem: Problem, threads=None) -> PeerResult:
    """Train `problem` in its dtype.  `threads` is ignored (NumPy is single threaded)."""
    dt = problem.dtype.type
    i1, i2 = (dt(x) for x in problem.inputs)
    t1, t2 = (dt(x) for x in problem.targets)
    w = [problem.w_init[k].copy() for k in range(8)]
    lr = problem.lr.copy()
    with np.errstate(over="ignore", under="ignore"):
        t0 = time.perf_counter()
        w = train(w, lr, i1, i2, t1, t2, problem.steps)
        loss = forward_loss(w, i1, i2, t1, t2)
        seconds = time.perf_counter() - t0
    return PeerResult(np.stack(w), loss, seconds, problem.runs, problem.steps)
