"""Benchmark peers for fastbp: the same problem computed by other means.

Every peer computes the SPEC's 2-2-2 sigmoid network trained by plain gradient descent
on one sample, for R independent runs (each with its own 8 initial weights and its own
learning rate), N steps, the same inputs and targets for every run.  Each returns a
`PeerResult`: final weights (8, R), final loss (R,) = E_total at step N (after the last
update, one extra forward pass) and the compute seconds measured inside the peer
(start-up, compilation and warm-up excluded).

Peers (one module each, all exposing ``run(problem, threads=None, **options)``):

- ``numpy_batch``  NumPy vectorised over runs, float64 or float32
- ``python_loop``  plain Python with math.exp, one run at a time
- ``c_peer``       the C loop (c_loop.c, gcc -O3 -march=native -ffast-math -fopenmp)
- ``jax_peer``     jit + vmap + lax.scan
- ``torch_peer``   batched tensors, manual backward (and an autograd variant)

A peer that cannot run here (missing package, no compiler) raises `PeerUnavailable`
with the reason.  `validate` is the one validator: it compares final losses with a
float64 reference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

DEFAULT_INPUTS = (0.05, 0.1)
DEFAULT_TARGETS = (0.5, 0.5)


class PeerUnavailable(RuntimeError):
    """The peer cannot run on this machine; str(exc) is the reason."""


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

    def subset(self, idx=None, *, runs: int | None = None, steps: int | None = None) -> Problem:
        """A sub-problem: runs `idx` (or `runs` evenly spaced ones), `steps` steps."""
        if idx is None and runs is not None and runs < self.runs:
            idx = np.unique(np.linspace(0, self.runs - 1, runs).round().astype(np.int64))
        if idx is None:
            w, lr = self.w_init, self.lr
        else:
            w, lr = self.w_init[:, idx], self.lr[idx]
        return Problem(w.copy(), lr.copy(), self.inputs, self.targets, self.steps if steps is None else steps)


@dataclass
class PeerResult:
    weights: np.ndarray  # (8, R)
    final_loss: np.ndarray  # (R,)
    seconds: float  # compute time measured inside the peer
    runs: int
    steps: int
    notes: list = field(default_factory=list)

    @property
    def run_steps(self) -> int:
        return self.runs * self.steps

    @property
    def run_steps_per_s(self) -> float:
        return self.run_steps / self.seconds if self.seconds > 0 else float("inf")


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
    """The issue's W1 shape: n_lr learning rates logspace(lr_log10) x n_init uniform inits.

    Run r = lr_index * n_init + init_index: every learning rate sees the same n_init
    initial weight vectors.  Weights are drawn in float64 and rounded to `dtype`.
    """
    rng = np.random.default_rng(seed)
    inits = rng.uniform(low, high, size=(8, n_init))
    lrs = np.logspace(lr_log10[0], lr_log10[1], n_lr)
    w = np.tile(inits, (1, n_lr))
    lr = np.repeat(lrs, n_init)
    return Problem(w.astype(dtype), lr.astype(dtype), inputs, targets, steps)


# --------------------------------------------------------------------------- validator

#: relative tolerance on final losses, by the peer's dtype
TOLERANCE = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}

#: losses below this are compared relative to the floor instead of to themselves.
#: E = 1/2 (t - a)^2, so an error u in the output a moves E by about sqrt(2E) u: once a
#: run has converged (the default targets 0.5, 0.5 are reachable; many W1 losses end at
#: 1e-20 .. 0) its loss is the square of a rounding-level difference and its relative
#: error says nothing.  Measured on W1 (131,072 runs x 5,000 steps): a float64 peer's
#: u stays ~2e-16 (so relative error ~1e-10 at E = 1e-12); a float32 peer's u grows
#: to ~4e-7 (7 ulps of 0.5) against the float64 reference, relative error 5e-5 at
#: E = 1e-5 and 2e-5 at E = 1e-4.
LOSS_FLOOR = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-4}


def reference(problem: Problem, prefer_fastbp: bool = True):
    """Float64 final losses for `problem` (rounded inputs kept as they are).

    Uses fastbp.kernels.train when it imports and runs, else the NumPy float64 peer.
    Returns (final_loss (R,), name of the reference).
    """
    p64 = problem.astype(np.float64)
    if prefer_fastbp:
        try:
            from fastbp.kernels import train  # noqa: WPS433

            res = train(p64.w_init, p64.lr, p64.inputs, p64.targets, p64.steps, record_every=0)
            return np.asarray(res.final_loss, dtype=np.float64), "fastbp.kernels.train float64"
        except Exception:  # noqa: BLE001 - fall back to numpy on anything
            pass
    from . import numpy_batch

    return numpy_batch.run(p64).final_loss, "numpy float64"


@dataclass
class Validation:
    max_rel_err: float
    max_abs_err: float
    tolerance: float
    compared: int
    total: int
    reference: str
    ok: bool

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAIL"
        return (
            f"max rel err {self.max_rel_err:.2e} (tol {self.tolerance:.0e}; "
            f"{self.compared}/{self.total} runs above the loss floor), "
            f"max abs err {self.max_abs_err:.2e} vs {self.reference}: {verdict}"
        )


def compare(final_loss, ref_loss, dtype, ref_name: str) -> Validation:
    """Max relative error of `final_loss` against `ref_loss`: max |E - E_ref| / max(E_ref, floor).

    That is rtol/atol agreement with rtol = TOLERANCE[dtype] and atol = rtol *
    LOSS_FLOOR[dtype] (see LOSS_FLOOR for why converged losses need the floor).
    Non-finite values in either array fail.
    """
    dtype = np.dtype(dtype)
    got = np.asarray(final_loss, dtype=np.float64)
    ref = np.asarray(ref_loss, dtype=np.float64)
    if got.shape != ref.shape:
        raise ValueError(f"shape mismatch {got.shape} vs {ref.shape}")
    tol, floor = TOLERANCE[dtype], LOSS_FLOOR[dtype]
    finite = bool(np.all(np.isfinite(got)) and np.all(np.isfinite(ref)))
    abs_err = np.abs(got - ref)
    rel = abs_err / np.maximum(ref, floor)
    max_rel = float(np.max(rel)) if rel.size else 0.0
    max_abs = float(np.max(abs_err)) if abs_err.size else 0.0
    if not finite:
        max_rel = float("nan")
    ok = finite and max_rel <= tol
    return Validation(max_rel, max_abs, tol, int(np.sum(ref >= floor)), got.size, ref_name, ok)


def validate(result: PeerResult, problem: Problem, ref=None) -> Validation:
    """Compare a peer's final losses on `problem` with the float64 reference."""
    if ref is None:
        ref = reference(problem)
    ref_loss, ref_name = ref
    return compare(result.final_loss, ref_loss, problem.dtype, ref_name)


def replace(obj, **kw):
    return dataclasses.replace(obj, **kw)
