"""The one validator: an implementation's final losses against a float64 reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchkit.problem import DEFAULT_INPUTS, DEFAULT_TARGETS, Problem
from benchkit.report import Row
from benchkit.timing import train_kernel

#: relative tolerance on final losses, by the implementation's dtype
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
            res = train_kernel(p64)
            return np.asarray(res.final_loss, dtype=np.float64), "fastbp.kernels.train float64"
        except Exception:  # noqa: BLE001 - fall back to numpy on anything
            pass
    from peers import numpy_batch

    return numpy_batch.run(p64).final_loss, "numpy float64"


class References:
    """Float64 final losses of validation problems, computed once each."""

    def __init__(self):
        self.cache: dict = {}

    def get(self, key, problem: Problem, prefer_fastbp: bool = True):
        k = (key, prefer_fastbp)
        if k not in self.cache:
            self.cache[k] = reference(problem, prefer_fastbp=prefer_fastbp)
        return self.cache[k]


@dataclass
class Validation:
    max_rel_err: float
    total: int  # runs compared
    reference: str
    ok: bool


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
    finite = bool(np.all(np.isfinite(got)) and np.all(np.isfinite(ref)))
    rel = np.abs(got - ref) / np.maximum(ref, LOSS_FLOOR[dtype])
    max_rel = float(np.max(rel)) if rel.size and finite else (0.0 if finite else float("nan"))
    return Validation(max_rel, got.size, ref_name, finite and max_rel <= TOLERANCE[dtype])


def validate_dataset(out: Path, dtype: str, n_valid: int, steps: int) -> Validation:
    """Check a sweep dataset's final losses on `n_valid` evenly spaced runs against NumPy
    float64 trained from the dataset's own initial weights and learning rates."""
    import pyarrow.parquet as pq

    cols = ["run", "lr", *(f"w{k}_init" for k in range(1, 9)), "final_loss"]
    tab = pq.read_table(str(out), columns=cols)
    order = np.argsort(tab.column("run").to_numpy())
    n = len(order)
    pick = order[np.unique(np.linspace(0, n - 1, min(n, n_valid)).round().astype(np.int64))]
    w = np.stack([tab.column(f"w{k}_init").to_numpy()[pick] for k in range(1, 9)])
    lr = tab.column("lr").to_numpy()[pick]
    got = tab.column("final_loss").to_numpy()[pick]
    dt = np.dtype(dtype)
    prob = Problem(w.astype(dt), lr.astype(dt), DEFAULT_INPUTS, DEFAULT_TARGETS, steps)
    ref, name = reference(prob, prefer_fastbp=False)
    return compare(got, ref, dt, name)


def dataset_check(row: Row, out: Path, dtype: str, n_valid: int, steps: int) -> None:
    """Validate the dataset at `out` and write the verdict into `row`."""
    try:
        v = validate_dataset(out, dtype, n_valid, steps)
        row.max_rel_err = v.max_rel_err
        row.check = f"{'ok' if v.ok else 'FAIL'} vs {v.reference} on {v.total} runs of the dataset"
    except Exception as exc:  # noqa: BLE001
        row.check = f"dataset not checked ({exc.__class__.__name__}: {exc})"
