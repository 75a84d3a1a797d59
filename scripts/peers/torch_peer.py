"""PyTorch peer: batched tensors of shape (R,), CPU.

``run``          manual backward (the SPEC's gradient formulas), no autograd,
                 in-place updates under torch.no_grad(); float32 (or float64).
``run_autograd`` the same forward, gradients from loss.sum().backward() each step.

Threads: torch.set_num_threads(threads) for the duration of the call.  A short warm-up
(a few steps) runs before the timed call.
"""

from __future__ import annotations

import time

import numpy as np
from benchkit.problem import Problem

from . import PeerResult, PeerUnavailable


def _import():
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        raise PeerUnavailable(f"torch not importable: {exc.__class__.__name__}: {exc}") from exc
    return torch


def _forward(torch, w, i1, i2):
    w1, w2, w3, w4, w5, w6, w7, w8 = w
    a_h1 = torch.sigmoid(w1 * i1 + w2 * i2)
    a_h2 = torch.sigmoid(w3 * i1 + w4 * i2)
    a_o1 = torch.sigmoid(w5 * a_h1 + w6 * a_h2)
    a_o2 = torch.sigmoid(w7 * a_h1 + w8 * a_h2)
    return a_h1, a_h2, a_o1, a_o2


def _loss(torch, w, i1, i2, t1, t2):
    _, _, a_o1, a_o2 = _forward(torch, w, i1, i2)
    return 0.5 * (t1 - a_o1) ** 2 + 0.5 * (t2 - a_o2) ** 2


def _train_manual(torch, W, lr, steps, i1, i2, t1, t2):
    """W: (8, R) tensor updated in place."""
    w = list(W.unbind(0))
    w1, w2, w3, w4, w5, w6, w7, w8 = w
    for _ in range(steps):
        a_h1, a_h2, a_o1, a_o2 = _forward(torch, w, i1, i2)
        d_o1 = (a_o1 - t1) * a_o1 * (1.0 - a_o1)
        d_o2 = (a_o2 - t2) * a_o2 * (1.0 - a_o2)
        d_h1 = (d_o1 * w5 + d_o2 * w7) * a_h1 * (1.0 - a_h1)
        d_h2 = (d_o1 * w6 + d_o2 * w8) * a_h2 * (1.0 - a_h2)
        # every gradient from the old weights, then update in place
        g5, g6, g7, g8 = d_o1 * a_h1, d_o1 * a_h2, d_o2 * a_h1, d_o2 * a_h2
        g1, g2, g3, g4 = d_h1 * i1, d_h1 * i2, d_h2 * i1, d_h2 * i2
        w1.sub_(lr * g1)
        w2.sub_(lr * g2)
        w3.sub_(lr * g3)
        w4.sub_(lr * g4)
        w5.sub_(lr * g5)
        w6.sub_(lr * g6)
        w7.sub_(lr * g7)
        w8.sub_(lr * g8)


def _train_autograd(torch, W, lr, steps, i1, i2, t1, t2):
    W.requires_grad_(True)
    for _ in range(steps):
        if W.grad is not None:
            W.grad = None
        loss = _loss(torch, W.unbind(0), i1, i2, t1, t2).sum()
        loss.backward()
        with torch.no_grad():
            W.sub_(lr * W.grad)
    W.requires_grad_(False)


def _run(problem: Problem, threads, autograd: bool) -> PeerResult:
    torch = _import()
    dt = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[problem.dtype]
    i1, i2 = problem.inputs
    t1, t2 = problem.targets
    # Python float scalars keep the tensor dtype; for float32 problems the inputs are
    # already rounded to float32 values
    train = _train_autograd if autograd else _train_manual
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        lr = torch.from_numpy(problem.lr.copy()).to(dt)
        # warm-up: a few steps on a copy
        warm = torch.from_numpy(problem.w_init.copy()).to(dt)
        if autograd:
            train(torch, warm, lr, 3, i1, i2, t1, t2)
        else:
            with torch.no_grad():
                train(torch, warm, lr, 3, i1, i2, t1, t2)
        W = torch.from_numpy(problem.w_init.copy()).to(dt)
        t0 = time.perf_counter()
        if autograd:
            train(torch, W, lr, problem.steps, i1, i2, t1, t2)
            with torch.no_grad():
                loss = _loss(torch, W.unbind(0), i1, i2, t1, t2)
        else:
            with torch.no_grad():
                train(torch, W, lr, problem.steps, i1, i2, t1, t2)
                loss = _loss(torch, W.unbind(0), i1, i2, t1, t2)
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(old_threads)
    return PeerResult(W.detach().numpy().copy(), loss.numpy().copy(), seconds, problem.runs, problem.steps)


def run(problem: Problem, threads=None) -> PeerResult:
    """Manual backward, no autograd."""
    return _run(problem, threads, autograd=False)


def run_autograd(problem: Problem, threads=None) -> PeerResult:
    """Gradients by autograd (loss summed over runs, so each run's gradient is its own)."""
    return _run(problem, threads, autograd=True)
