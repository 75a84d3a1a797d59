"""What a run's loss does along the way, tracked inside the training kernel (docs/model.md
"Regimes"): the numbers its regime and its trainability are read from, kept for every step
without recording the curve.

The training kernel (``kernels_train``) calls these once a step when a sweep has ``diagnostics = true``,
on a block's own buffers (``diag``: VALUE_ROWS rows of BLOCK lanes in the run's dtype;
``counts``: COUNT_ROWS rows of int32). Most steps take ``note`` inside the step's last pass,
where E_k, E_{k-1} and the running minimum are already in registers (a separate pass would load
them again); the first step, the first of each slice and the final window (``is_special``)
take ``block_note_special`` after the step, which does the same and the rest, with E_{k-1} kept
in the PREV row. E_k is the step's E_total, at the weights after k updates (the final pass
gives E_steps).

NaN never wins a comparison, so a NaN loss neither rises, nor is a maximum, nor passes below
the cap: it counts as the cap, as the published map value asks (v = 1e6 when not finite).
"""

import numpy as np
from numba import njit

from fastbp.compile_time import BLOCK, FINAL_WINDOW, MAP_CAP, SIGNIFICANT

#: Value rows: E_{k-1}; E_0; the cap 1e6·E_0; the highest E so far; Σ min(E_k, cap);
#: Σ 1 / min(E_k, cap); Σ min(E_k, cap) over the final window; E at the step before it.
PREV, E0, CAP, MAX, SUM_CAPPED, SUM_INVERSE, TAIL, WINDOW_START = range(8)
VALUE_ROWS = 8
#: int32 rows: the step of the highest E; steps at which E rose; the same before E first fell
#: below the tolerance; in the final window, rises and falls by more than SIGNIFICANT of E.
MAX_STEP, RISES, RISES_BEFORE_HIT, WINDOW_RISES, WINDOW_FALLS = range(5)
COUNT_ROWS = 5
#: What a run's result holds (``train``'s ``result.diagnostics``): the value rows after PREV,
#: then the int32 rows, by these names.
VALUE_NAMES = ("E0", "cap", "max_loss", "sum_capped", "sum_inverse", "tail", "window_start")
COUNT_NAMES = ("max_loss_step", "loss_increases", "rises_before_hit", "window_rises", "window_falls")

_V = tuple(np.uint64(row * BLOCK) for row in range(VALUE_ROWS))
_C = tuple(np.uint64(row * BLOCK) for row in range(COUNT_ROWS))


@njit(inline="always")
def note(diag, counts, j, E, previous, running_min, step, tol):
    """Lane j at step k (``step``, int32) of the middle of a run: rises, the maximum and the two
    sums. ``previous`` is E_{k-1}; ``running_min`` the lowest E of steps 0 … k."""
    rise = np.int32(E > previous)
    counts[_C[RISES] + j] += rise
    counts[_C[RISES_BEFORE_HIT] + j] += rise & np.int32(not running_min < tol)
    highest = diag[_V[MAX] + j]
    higher = E > highest
    diag[_V[MAX] + j] = E if higher else highest
    counts[_C[MAX_STEP] + j] = step if higher else counts[_C[MAX_STEP] + j]
    cap = diag[_V[CAP] + j]
    capped = E if E < cap else cap
    diag[_V[SUM_CAPPED] + j] += capped
    diag[_V[SUM_INVERSE] + j] += diag.dtype.type(1) / capped  # × E_0 at the end (fastbp.regimes)


@njit(inline="always")
def block_note(diag, counts, state, row_loss, row_min, k, tol):
    """``note`` for every lane, with E_{k-1} from the PREV row (which it then moves on)."""
    step = np.int32(k)
    for lane in range(BLOCK):
        j = np.uint64(lane)
        E = state[row_loss + j]
        note(diag, counts, j, E, diag[_V[PREV] + j], state[row_min + j], step, tol)
        diag[_V[PREV] + j] = E


@njit(inline="always")
def is_special(k, s0, steps):
    """Whether step k takes ``block_note_special`` (and the PREV row) rather than the training
    pass's own ``note``: the first step, the first of a slice, and the final window's."""
    return k == 0 or k == s0 or k >= steps - FINAL_WINDOW


@njit(inline="always")
def block_note_special(diag, counts, state, row_loss, row_min, k, steps, tol):
    """Step k = 0, the first of a slice, the step before the final window, or one of the window's
    (any k). Each branch is on k, the same for every lane, and outside the loops over lanes, so
    that each loop is vector code like ``block_note``'s (unsigned offsets: no index checks)."""
    k0, k1 = max(0, steps - FINAL_WINDOW), max(0, steps - FINAL_WINDOW + 1)
    one, significant = diag.dtype.type(1), diag.dtype.type(SIGNIFICANT)
    if k == 0:
        for lane in range(BLOCK):
            j = np.uint64(lane)
            E = state[row_loss + j]
            cap = E * diag.dtype.type(MAP_CAP)
            capped = E if E < cap else cap
            diag[_V[E0] + j] = E
            diag[_V[CAP] + j] = cap
            diag[_V[MAX] + j] = E
            diag[_V[SUM_CAPPED] + j] = capped
            diag[_V[SUM_INVERSE] + j] = one / capped
            diag[_V[TAIL] + j] = diag.dtype.type(0)
            diag[_V[PREV] + j] = E
        counts[:] = 0
    else:
        if k >= k1:  # the window's changes, against E_{k-1} before block_note moves it on
            for lane in range(BLOCK):
                j = np.uint64(lane)
                E, previous = state[row_loss + j], diag[_V[PREV] + j]
                counts[_C[WINDOW_RISES] + j] += np.int32(E - previous > significant * previous)
                counts[_C[WINDOW_FALLS] + j] += np.int32(previous - E > significant * previous)
        block_note(diag, counts, state, row_loss, row_min, k, tol)
    if k >= k1:
        for lane in range(BLOCK):
            j = np.uint64(lane)
            E, cap = state[row_loss + j], diag[_V[CAP] + j]
            diag[_V[TAIL] + j] += E if E < cap else cap
    if k == k0:
        for lane in range(BLOCK):
            j = np.uint64(lane)
            diag[_V[WINDOW_START] + j] = state[row_loss + j]
