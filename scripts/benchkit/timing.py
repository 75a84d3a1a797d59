"""fastbp's kernel timed in-process, warm, and the helpers that time a peer."""

from __future__ import annotations

import time

from benchkit.problem import Problem


def train_kernel(problem: Problem, record_every: int = 0):
    """fastbp.kernels.train on `problem`, every argument by name (the call survives a parameter
    turning keyword-only)."""
    from fastbp.kernels import train

    return train(
        w_init=problem.w_init,
        lr=problem.lr,
        inputs=problem.inputs,
        targets=problem.targets,
        steps=problem.steps,
        record_every=record_every,
    )


def set_numba_threads(n: int) -> int:
    import numba

    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def time_kernel(problem: Problem, threads: int, repeat: int, record_every: int = 0):
    """Warm fastbp.kernels.train (compile on a tiny problem), then best of `repeat`.

    Returns (result of the last call, best seconds, threads used)."""
    n = set_numba_threads(threads)
    train_kernel(problem.subset(runs=min(problem.runs, 64), steps=min(problem.steps, 3)), record_every)
    best, res = float("inf"), None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        res = train_kernel(problem, record_every)
        best = min(best, time.perf_counter() - t0)
    return res, best, n


def best_of(fn, repeat: int):
    """The fastest of `repeat` calls of `fn()`, each returning a PeerResult."""
    best = None
    for _ in range(max(1, repeat)):
        res = fn()
        if best is None or res.seconds < best.seconds:
            best = res
    return best


def budget_timing(fn, prob: Problem, budget: float, calib_steps: int) -> Problem:
    """All runs of `prob`, with as many steps as fit in about `budget` seconds of `fn`."""
    calib = prob.subset(steps=min(prob.steps, calib_steps))
    res = fn(calib)
    steps = int(budget * res.run_steps_per_s / prob.runs)
    return prob.subset(steps=max(calib.steps, min(prob.steps, steps)))
