"""A run's regime and trainability from what the kernel tracked (docs/model.md "Regimes", "The
trainability map"). Plain numpy over runs; ``kernels_diagnostics`` is where the numbers come from.

Every definition reads the whole curve E_0 … E_N (N = steps), every step, not the recorded one:
``tests/reference.py`` computes the same labels from a full curve, plainly, as the check.
"""

import numpy as np

from fastbp.compile_time import FINAL_WINDOW, MAP_CAP, STALL
from fastbp.conventions import REGIMES


def final_window(steps):
    """(number of values in the final window, steps it spans): min(20, N + 1) values E_{N−19} …
    E_N, and the N − k0 steps from E_{k0}, k0 = max(0, N − 20), to E_N."""
    k0 = max(0, steps - FINAL_WINDOW)
    return min(FINAL_WINDOW, steps + 1), steps - k0


def classify(tracked, first_step_below_tol, overflow, steps, tol):
    """(R,) uint8 regime codes (indices into REGIMES); ``tol``: the spec's tolerance.

    ``tracked``: ``kernels.train``'s ``result.diagnostics``; ``first_step_below_tol`` (−1 when
    never below the tolerance); ``overflow``: a final weight, bias or the final loss not finite.
    """
    E0, final = _f64(tracked["E0"]), _f64(tracked["final_loss"])
    reached = (np.asarray(first_step_below_tol) >= 0) & (final < tol)  # and still below at the end
    rose_above_start = _f64(tracked["max_loss"]) > E0
    rose_before = np.asarray(tracked["rises_before_hit"]) > 0
    swinging = (np.asarray(tracked["window_rises"]) > 0) & (np.asarray(tracked["window_falls"]) > 0)
    _values, span = final_window(steps)
    falling = _f64(tracked["window_start"]) - final > STALL * span * final
    codes = np.select(
        [
            np.asarray(overflow, dtype=bool),
            reached & rose_above_start,
            reached & rose_before,
            reached,
            swinging,
            falling,
        ],
        [
            REGIMES.index(name)
            for name in ("diverged", "catapult", "bumpy", "monotone", "oscillating", "slow")
        ],
        default=REGIMES.index("stuck"),
    )
    return codes.astype(np.uint8)


def trainability(tracked, steps):
    """(R,) float64: −Σ v_k when trainable (the mean of the final window's v is below 1), else
    +Σ 1/v_k, with v_k = E_k / E_0 capped at 1e6 (a non-finite one counts as 1e6).

    The kernel sums min(E_k, 1e6·E_0) and 1 / min(E_k, 1e6·E_0) in the run's dtype; this divides
    the first by E_0 and multiplies the second by it, once. Two edge cases: E_0 = 0 (the run starts at a minimum, where it stays: v = 0,
    trainable, −0.0) and E_0 not finite (every v counts as 1e6: untrainable, (N + 1)·1e-6).
    """
    E0 = _f64(tracked["E0"])
    n_tail, _span = final_window(steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        sum_v = _f64(tracked["sum_capped"]) / E0
        trainable = _f64(tracked["tail"]) < n_tail * E0
        value = np.where(trainable, -sum_v, _f64(tracked["sum_inverse"]) * E0)
    value = np.where(E0 == 0, -0.0, value)
    return np.where(np.isfinite(E0), value, (steps + 1) / MAP_CAP)


def _f64(values):
    return np.asarray(values, dtype=np.float64)
