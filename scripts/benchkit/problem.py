"""The benchmarked problem: R independent runs of the SPEC's 2-2-2 network x N steps, and the sizes
of the workloads built from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Not the course's targets: (0.5, 0.5) is reachable, so many runs converge and the validator's
# loss floor (validate.LOSS_FLOOR) is exercised.
DEFAULT_INPUTS = (0.05, 0.1)
DEFAULT_TARGETS = (0.5, 0.5)


@dataclass
class Problem:
    """R runs x N steps.  w_init is (8, R) C-contiguous (rows w1..w8), lr is (R,)."""

    w_init: np.ndarray
    lr: np.ndarray
    inputs: tuple = DEFAULT_INPUTS
    targets: tuple = DEFAULT_TARGETS
    steps: int = 5000

    def __post_init__(self):
        self.w_init = np.ascontiguousarray(self.w_init)
        self.lr = np.ascontiguousarray(self.lr, dtype=self.w_init.dtype)
        if self.w_init.ndim != 2 or self.w_init.shape[0] != 8:
            raise ValueError("w_init must be (8, R)")
        if self.lr.shape != (self.w_init.shape[1],):
            raise ValueError("lr must be (R,)")
        # inputs/targets are rounded to the problem's dtype, then kept as Python floats
        dt = self.w_init.dtype.type
        self.inputs = tuple(float(dt(x)) for x in self.inputs)
        self.targets = tuple(float(dt(x)) for x in self.targets)

    @property
    def runs(self) -> int:
        return self.w_init.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.w_init.dtype

    @property
    def run_steps(self) -> int:
        return self.runs * self.steps

    def astype(self, dtype) -> Problem:
        """Same problem with weights, lr, inputs and targets rounded to `dtype`."""
        dtype = np.dtype(dtype)
        return Problem(
            self.w_init.astype(dtype), self.lr.astype(dtype), self.inputs, self.targets, self.steps
        )

    def subset(self, *, runs: int | None = None, steps: int | None = None) -> Problem:
        """A sub-problem: `runs` evenly spaced runs (all when None), `steps` steps."""
        w, lr = self.w_init, self.lr
        if runs is not None and runs < self.runs:
            idx = np.unique(np.linspace(0, self.runs - 1, runs).round().astype(np.int64))
            w, lr = w[:, idx], lr[idx]
        return Problem(w.copy(), lr.copy(), self.inputs, self.targets, self.steps if steps is None else steps)


def make_problem(
    n_lr: int = 64,
    lr_log10=(-2.0, 1.0),
    n_init: int = 2048,
    low: float = -1.0,
    high: float = 1.0,
    steps: int = 5000,
    seed: int = 0,
    dtype=np.float64,
    inputs=DEFAULT_INPUTS,
    targets=DEFAULT_TARGETS,
) -> Problem:
    """The W1 shape: n_lr learning rates logspace(lr_log10) x n_init uniform inits.

    Run r = lr_index * n_init + init_index: every learning rate sees the same n_init
    initial weight vectors.  Weights are drawn in float64 and rounded to `dtype`.
    """
    rng = np.random.default_rng(seed)
    inits = rng.uniform(low, high, size=(8, n_init))
    lrs = np.logspace(lr_log10[0], lr_log10[1], n_lr)
    w = np.tile(inits, (1, n_lr))
    lr = np.repeat(lrs, n_init)
    return Problem(w.astype(dtype), lr.astype(dtype), inputs, targets, steps)


@dataclass
class Sizes:
    w1_lrs: int = 64
    w1_inits: int = 2048
    w1_steps: int = 5000
    w2_lrs: int = 64
    w2_inits: int = 128
    w2_steps: int = 2000
    w3_steps: int = 1000
    w3_sizes: tuple = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
    w3_max_runs: int = 1_000_000
    validate_runs: int = 1024  # evenly spaced runs of the workload, full steps
    python_runs: int = 64  # python peer: this many runs (timed and validated)
    # slow peers (NumPy, JAX, PyTorch): timed on all runs, steps chosen from a short
    # calibration run so that one timed call takes about --budget seconds (never more
    # than the workload's steps, never fewer than calib_steps), then extrapolated
    calib_steps: int = 10


def quick_sizes() -> Sizes:
    return Sizes(
        w1_lrs=8,
        w1_inits=128,
        w1_steps=500,
        w2_lrs=8,
        w2_inits=64,
        w2_steps=200,
        w3_steps=200,
        w3_sizes=(1_000, 10_000),
        w3_max_runs=10_000,
        validate_runs=256,
        python_runs=16,
        calib_steps=5,
    )
