"""Compiled kernels: arrays in, arrays out. No I/O, no validation (callers validate).

Runs are trained in blocks of ``BLOCK`` runs held as structure of arrays, one ``prange``
iteration per block. The inner loops over the runs of a block (three per step) are what LLVM
vectorises (check ``inspect_llvm`` for ``vector.body``); they have a compile-time constant trip
count, and a short block is padded by repeating its last run, so every run goes through the
same code whatever its position, and nothing is shared between blocks: results never depend on
the thread count, the batch a run sits in or its lane. No ``fastmath`` flags: IEEE operations
and explicit, exactly rounded ``fma`` only (no reassociation, no implicit contraction), so a
run's bits are the same on every x86-64 CPU.

Slices: ``train`` advances all runs a slice of steps per compiled call and carries their state
between calls, so that Python regains control every fraction of a second (a Ctrl-C is honoured
and progress is reported inside a long shard); results do not depend on the slicing.

Biases and per-layer rates: ``train`` hands those runs to the variant of
``kernels_general._make_train_kernel`` they need; the bias-free single-rate runs keep the kernel
below. The step table's kernels are in ``kernels_table`` (``step_table_rows`` here is theirs).

Compile policy: every kernel is ``cache=True``: compiled on first use per dtype (float64,
float32), then loaded from ``__pycache__`` (or Numba's user cache directory when the package
directory is read-only); the cache key covers the kernel's file, model.py and fastmath.py.
Nothing compiles at import, and a command compiles only what it calls.
"""

import time
from collections import namedtuple

import numba
import numpy as np
from numba import njit, prange

from fastbp import _numba_cache  # noqa: F401  (cache key includes model.py and fastmath.py)
from fastbp.conventions import DEFAULT_TOLERANCE, recorded_steps
from fastbp.model import backward, hidden_layer, loss, output_layer, total_loss, update

_CHUNK_BLOCKS = 4  # blocks per dynamic work item of the parallel loop

#: Runs per block: a multiple of every SIMD width (AVX-512 float32 has 16 lanes), small
#: enough that a block's state (15 rows × BLOCK, 7.5 KB in float64) stays in L1.
BLOCK = 64

# Rows of a block's state buffer (one flat buffer with constant row offsets, so LLVM can prove
# the rows do not overlap and vectorise without runtime alias checks between them; the one check
# left, state against the steps_not_below counters in the last pass, costs about 1 %).
# rows 0..7: w1..w8
_LR = 8
_LOSS = 9  # E_total at the current step
_MIN = 10  # min E_total so far
_A_H1, _A_H2, _A_O1, _A_O2 = 11, 12, 13, 14  # activations, passed from one pass of a step to the next
_STATE_ROWS = 15
# What a block carries from one slice to the next: w1..w8 and the running minimum (9 rows), and
# its steps_not_below counters. Not lr (read again), E_total (rewritten before it is read) nor
# the activations (recomputed every step).
_CARRIED_ROWS = 9

_FIRST_SLICE_RUN_STEPS = 2**22  # ~10 ms: the first slice measures the rate for the next ones


class TrainResult(
    namedtuple("TrainResult", "weights final_loss min_loss first_step_below_tol loss recorded_steps")
):
    """``train``'s result: the six arrays, and three attributes that are not ``_fields`` (code that
    unpacks or walks the six arrays works on every result; ``_replace``/``_make`` drop them):

    - ``biases``: (4, R) final b_h1, b_h2, b_o1, b_o2 (the initial ones when fixed), or None;
    - ``diagnostics``: with ``diagnostics=True``, a dict of (R,) arrays named as
      ``kernels_diagnostics.VALUE_NAMES`` and ``COUNT_NAMES`` (and final_loss); else None;
    - ``stability``: with ``stability_steps``, (steps (P,), sharpness (R, P), stability (R, P)),
      float64; else None.
    """

    biases = diagnostics = stability = None

    def __new__(cls, *fields, biases=None, diagnostics=None, stability=None):
        result = super().__new__(cls, *fields)
        result.biases, result.diagnostics, result.stability = biases, diagnostics, stability
        return result


# Row offsets as unsigned integers: Numba adds a negative-index check to signed indices, which
# hides the unit stride from LLVM and turns every load into a gather.
_ROW = tuple(np.uint64(row * BLOCK) for row in range(_STATE_ROWS))


@njit(inline="always")
def _block_update(state, steps_not_below, i1, i2, t1, t2, tol):
    """One gradient step (docs/model.md "Update and steps") for every run of a block, plus its summaries.

    Three passes over the block, not one: a step is one long dependency chain per run (exp,
    divide, exp, divide, backward), and a short loop body of independent runs lets the CPU keep
    many runs' chains in flight at once. Measured 1.35-1.5x faster than one fused pass, with the
    same operations per run and so the same bits. Each pass reads and writes lane j only, and
    only the last one writes weights.
    """
    row_w1, row_w2, row_w3, row_w4 = _ROW[0], _ROW[1], _ROW[2], _ROW[3]
    row_w5, row_w6, row_w7, row_w8 = _ROW[4], _ROW[5], _ROW[6], _ROW[7]
    row_a_h1, row_a_h2, row_a_o1, row_a_o2 = _ROW[_A_H1], _ROW[_A_H2], _ROW[_A_O1], _ROW[_A_O2]
    row_lr = _ROW[_LR]
    for lane in range(BLOCK):
        j = np.uint64(lane)
        _h1, a_h1, _h2, a_h2 = hidden_layer(
            i1, i2, state[row_w1 + j], state[row_w2 + j], state[row_w3 + j], state[row_w4 + j]
        )
        state[row_a_h1 + j] = a_h1
        state[row_a_h2 + j] = a_h2
    for lane in range(BLOCK):
        j = np.uint64(lane)
        _o1, a_o1, _o2, a_o2 = output_layer(
            state[row_w5 + j],
            state[row_w6 + j],
            state[row_w7 + j],
            state[row_w8 + j],
            state[row_a_h1 + j],
            state[row_a_h2 + j],
        )
        state[row_a_o1 + j] = a_o1
        state[row_a_o2 + j] = a_o2
    for lane in range(BLOCK):
        j = np.uint64(lane)
        a_h1, a_h2 = state[row_a_h1 + j], state[row_a_h2 + j]
        a_o1, a_o2 = state[row_a_o1 + j], state[row_a_o2 + j]
        w1, w2, w3, w4 = state[row_w1 + j], state[row_w2 + j], state[row_w3 + j], state[row_w4 + j]
        w5, w6, w7, w8 = state[row_w5 + j], state[row_w6 + j], state[row_w7 + j], state[row_w8 + j]
        _E1, _E2, E_total = loss(t1, t2, a_o1, a_o2)
        g1, g2, g3, g4, g5, g6, g7, g8 = backward(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2)
        w1, w2, w3, w4, w5, w6, w7, w8 = update(
            w1, w2, w3, w4, w5, w6, w7, w8, g1, g2, g3, g4, g5, g6, g7, g8, state[row_lr + j]
        )
        state[row_w1 + j] = w1
        state[row_w2 + j] = w2
        state[row_w3 + j] = w3
        state[row_w4 + j] = w4
        state[row_w5 + j] = w5
        state[row_w6 + j] = w6
        state[row_w7 + j] = w7
        state[row_w8 + j] = w8
        _note_loss(state, steps_not_below, j, E_total, tol)


@njit(inline="always")
def _block_final_loss(state, steps_not_below, i1, i2, t1, t2, tol):
    """E_total at the final weights (the last point of every loss curve)."""
    row_w1, row_w2, row_w3, row_w4 = _ROW[0], _ROW[1], _ROW[2], _ROW[3]
    row_w5, row_w6, row_w7, row_w8 = _ROW[4], _ROW[5], _ROW[6], _ROW[7]
    for lane in range(BLOCK):
        j = np.uint64(lane)
        E_total = total_loss(
            i1,
            i2,
            t1,
            t2,
            state[row_w1 + j],
            state[row_w2 + j],
            state[row_w3 + j],
            state[row_w4 + j],
            state[row_w5 + j],
            state[row_w6 + j],
            state[row_w7 + j],
            state[row_w8 + j],
        )
        _note_loss(state, steps_not_below, j, E_total, tol)


@njit(inline="always")
def _note_loss(state, steps_not_below, j, E_total, tol):
    """Keep the running minimum of E_total, and count the steps at which it is not below tol.

    The running minimum only falls, so that count is the first step whose E_total < tol (when
    the run gets there at all): two cheap operations a step instead of tracking a step number.
    NaN losses never become the minimum (it starts at +inf and is NaN'd at the end if it stays
    there: E_total is bounded, so +inf means no finite loss ever).
    """
    loss_at, min_at = _ROW[_LOSS] + j, _ROW[_MIN] + j
    state[loss_at] = E_total
    previous_min = state[min_at]
    running_min = E_total if E_total < previous_min else previous_min
    state[min_at] = running_min
    steps_not_below[j] += np.int32(not running_min < tol)


@njit(parallel=True, error_model="numpy", cache=True, nogil=True)
def _train_kernel(
    w_init,
    lr,
    i1,
    i2,
    t1,
    t2,
    s0,
    s1,
    steps,
    record_every,
    column0,
    until_record0,
    tol,
    carried,
    carried_counts,
    out_weights,
    out_final,
    out_min,
    out_first_hit,
    out_loss,
):
    """Steps [s0, s1) of every run; starts from w_init when s0 == 0, ends the runs when s1 == steps.

    Between calls a block keeps w1..w8 and its running minimum in ``carried`` (``_CARRIED_ROWS``
    rows of BLOCK lanes, padding lanes included) and its steps_not_below counters in
    ``carried_counts``; the working buffer stays local (one allocation the vectoriser can see
    whole: working in place in ``carried`` measured ~5 % slower). The recording position at s0
    (``column0``, ``until_record0``) is the same for every run, so the caller computes it.
    """
    n_runs = lr.shape[0]
    n_blocks = (n_runs + BLOCK - 1) // BLOCK
    inf = lr.dtype.type(np.inf)
    for block in prange(n_blocks):
        start = block * BLOCK
        n = min(BLOCK, n_runs - start)
        state = np.empty(_STATE_ROWS * BLOCK, dtype=lr.dtype)
        steps_not_below = np.empty(BLOCK, dtype=np.int32)  # int32: as many lanes as float32
        kept_at = block * (_CARRIED_ROWS * BLOCK)
        for j in range(BLOCK):
            src = start + min(j, n - 1)  # pad a short block with copies of its last run
            state[_LR * BLOCK + j] = lr[src]
            if s0 == 0:
                for row in range(8):
                    state[row * BLOCK + j] = w_init[row, src]
                state[_MIN * BLOCK + j] = inf
                steps_not_below[j] = 0
            else:
                for row in range(8):
                    state[row * BLOCK + j] = carried[kept_at + row * BLOCK + j]
                state[_MIN * BLOCK + j] = carried[kept_at + 8 * BLOCK + j]
                steps_not_below[j] = carried_counts[start + j]
        column = column0
        until_record = until_record0  # a countdown, not s % record_every: no division per step
        for _step in range(s1 - s0):
            _block_update(state, steps_not_below, i1, i2, t1, t2, tol)
            if record_every > 0:
                if until_record == 0:
                    for j in range(n):
                        out_loss[start + j, column] = state[_LOSS * BLOCK + j]
                    column += 1
                    until_record = record_every
                until_record -= 1
        if s1 < steps:
            for j in range(BLOCK):
                for row in range(8):
                    carried[kept_at + row * BLOCK + j] = state[row * BLOCK + j]
                carried[kept_at + 8 * BLOCK + j] = state[_MIN * BLOCK + j]
                carried_counts[start + j] = steps_not_below[j]
        else:
            _block_final_loss(state, steps_not_below, i1, i2, t1, t2, tol)
            for j in range(n):
                out_loss[start + j, column] = state[_LOSS * BLOCK + j]
                for row in range(8):
                    out_weights[row, start + j] = state[row * BLOCK + j]
                out_final[start + j] = state[_LOSS * BLOCK + j]
                running_min = state[_MIN * BLOCK + j]
                out_min[start + j] = running_min if running_min != inf else np.nan
                out_first_hit[start + j] = steps_not_below[j] if running_min < tol else -1


def _recording_position(s0, record_every):
    """(column, until_record) at the start of step s0: recorded steps before s0, steps to the next."""
    if record_every == 0:
        return 0, 0
    return -(-s0 // record_every), -s0 % record_every


def _next_slice_steps(steps_done, seconds, slice_seconds):
    """Steps of the next slice, from the last one's rate; at most 64x longer than the last one."""
    if seconds <= 0:
        return 64 * steps_done
    return max(1, min(64 * steps_done, int(steps_done * slice_seconds / seconds)))


def train(
    w_init,
    lr,
    inputs,
    targets,
    steps,
    record_every=0,
    tolerance=DEFAULT_TOLERANCE,
    *,
    lr_output=None,
    biases=None,
    train_biases=False,
    shared_biases=False,
    diagnostics=False,
    stability_steps=None,
    on_slice=None,
    slice_seconds=0.25,
    _slice_steps=None,
):
    """Train R independent runs for ``steps`` steps each (docs/model.md).

    w_init: (8, R) float32 or float64 initial weights, rows w1..w8; lr: (R,) learning rates.
    inputs (i1, i2) and targets (t1, t2) are shared by all runs. Computes in w_init's dtype.
    Returns a ``TrainResult``: weights (8, R) final; final_loss, min_loss (R,);
    first_step_below_tol (R,) int64 (first step whose E_total < tolerance, −1 if none);
    loss (R, n_recorded) E_total at ``recorded_steps(steps, record_every)``; recorded_steps;
    biases (see below). The caller validates (steps < 2**31); this only converts to contiguous
    arrays of one dtype.

    Biases and two rates (docs/model.md "Biases", "Learning rate per layer"): ``lr_output``
    (R,) gives the output layer's rates, and then ``lr`` holds the hidden layer's. ``biases``
    (4, R) gives the initial b_h1, b_h2, b_o1, b_o2, fixed unless ``train_biases``; with
    ``shared_biases`` a trained layer's bias moves by the sum of its two units' gradients (pass
    equal rows: they stay equal). Without either, this is the bias-free single-rate kernel;
    with them, the variant of ``kernels_general`` they need (compiled on first use).

    Diagnostics (docs/model.md "Regimes"): ``diagnostics=True`` tracks every step's E_total
    (``result.diagnostics``); ``stability_steps`` (ascending ints in 0 … steps) computes the
    sharpness and the stability number at those steps (``result.stability``; with
    ``lr_output`` the per-layer number). Either takes ``kernels_general``'s kernel (equal rates
    are bit for bit the single-rate rule), so the runs' other results do not change.

    The steps run in slices, one compiled call each, so that Python gets control back about
    every ``slice_seconds`` whatever R and ``steps``: a signal handler runs and a progress bar
    moves between slices. Each call advances every run over the same steps [s0, s1) and leaves
    its state (weights, biases, running minimum, steps_not_below count) in arrays for the next; a
    run's operations, and so its bits, do not depend on where the slices fall. The first slice
    is short (about 2**22 run-steps); later ones are sized from the last one's measured rate,
    and end at every step of ``stability_steps``. ``on_slice(steps_done)`` is called after each
    slice; whatever it raises propagates, and no partial result is returned. (``_slice_steps``
    fixes the slice length, for tests.)
    """
    dtype = np.dtype(w_init.dtype)
    w_init = np.ascontiguousarray(w_init)
    lr = np.ascontiguousarray(lr, dtype=dtype)
    n_runs = lr.shape[0]
    kept = recorded_steps(steps, record_every)
    out_weights = np.empty((8, n_runs), dtype=dtype)
    out_final = np.empty(n_runs, dtype=dtype)
    out_min = np.empty(n_runs, dtype=dtype)
    out_first_hit = np.empty(n_runs, dtype=np.int64)
    out_loss = np.empty((n_runs, kept.shape[0]), dtype=dtype)
    outputs = (out_weights, out_final, out_min, out_first_hit, out_loss)
    points = None if stability_steps is None else np.asarray(stability_steps, dtype=np.int64)
    per_layer = lr_output is not None
    general = per_layer or biases is not None or diagnostics or points is not None
    if train_biases and biases is None:
        raise ValueError("train_biases=True needs biases (4, R)")
    if general:
        from fastbp import kernels_diagnostics as diagnosed
        from fastbp import kernels_general  # only what a call needs: a bias-free sweep never loads it

        lr_output = lr if lr_output is None else np.ascontiguousarray(lr_output, dtype=dtype)
        biases = _checked_biases(biases, n_runs, dtype, train_biases, shared_biases)
    i1, i2 = (dtype.type(v) for v in inputs)
    t1, t2 = (dtype.type(v) for v in targets)
    # Padding lanes cost as much as runs: one run alone still computes a whole block.
    padded = max(1, (n_runs + BLOCK - 1) // BLOCK * BLOCK)
    slice_steps = _slice_steps or max(1, _FIRST_SLICE_RUN_STEPS // padded)
    # A single slice never carries its state: the arrays only exist when a run is cut.
    cut = slice_steps < steps or (points is not None and bool(np.any((points > 0) & (points < steps))))
    if general:
        runner = kernels_general.SliceRunner(
            w_init, lr, lr_output, biases, train_biases, shared_biases, (i1, i2, t1, t2), tolerance, cut, outputs,
            diagnostics,
        )  # fmt: skip
        run_slice, final_biases = runner.run, runner.final_biases
    else:
        final_biases = None
        n_carried = (n_runs + BLOCK - 1) // BLOCK if cut else 0
        carried = np.empty(n_carried * _CARRIED_ROWS * BLOCK, dtype=dtype)
        carried_counts = np.empty(n_carried * BLOCK, dtype=np.int32)

        tol = dtype.type(tolerance)

        def run_slice(*slice_position):  # s0, s1, steps, record_every, column0, until_record0
            _train_kernel(w_init, lr, i1, i2, t1, t2, *slice_position, tol, carried, carried_counts, *outputs)

    measured = None
    if points is not None:
        from fastbp.kernels_sharpness import stability_numbers

        def numbers(weights, trained):  # at the inputs and targets the runs train on (in the dtype)
            fixed = dict(train_biases=train_biases, shared_biases=shared_biases, per_layer=per_layer)
            at = biases if trained is None else trained  # fixed biases are the initial ones
            return stability_numbers(weights, lr, lr_output, (i1, i2), (t1, t2), at, **fixed)

        measured = diagnosed.StabilityPoints(points, n_runs, numbers)
        measured.take(0, w_init, biases)

    def result():
        if measured is not None:
            measured.take(steps, out_weights, final_biases)
        found = None if not diagnostics else diagnosed.results(runner, out_final)
        return TrainResult(
            *outputs, kept, biases=final_biases, diagnostics=found,
            stability=None if measured is None else measured.arrays(),
        )  # fmt: skip

    if n_runs == 0:
        return result()
    s0 = 0
    while True:
        s1 = min(steps, s0 + slice_steps)
        if measured is not None:
            s1 = measured.next_stop(s0, s1)
        column0, until_record0 = _recording_position(s0, record_every)
        started = time.perf_counter()
        # Blocks are handed out a few at a time, not in one static slice per thread: on a busy
        # machine a descheduled thread then delays only its last few blocks. (Results do not
        # depend on this: blocks share nothing.)
        with numba.parallel_chunksize(_CHUNK_BLOCKS):
            run_slice(*(np.int64(v) for v in (s0, s1, steps, record_every, column0, until_record0)))
        seconds = time.perf_counter() - started
        if measured is not None and s1 < steps:
            measured.take(s1, *runner.carried_parameters())
        if on_slice is not None:
            on_slice(s1)
        if s1 == steps:
            return result()
        if _slice_steps is None:
            slice_steps = _next_slice_steps(s1 - s0, seconds, slice_seconds)
        s0 = s1


def _checked_biases(biases, n_runs, dtype, train_biases, shared_biases):
    """``biases`` as a contiguous (4, R) array, or None; refuses what ``train`` cannot honour."""
    if biases is None:
        return None
    biases = np.ascontiguousarray(biases, dtype=dtype)
    if biases.shape != (4, n_runs):
        raise ValueError(f"biases must be (4, {n_runs}) (b_h1, b_h2, b_o1, b_o2 per run), not {biases.shape}")
    if (
        train_biases
        and shared_biases
        and not (biases[0].tobytes() == biases[1].tobytes() and biases[2].tobytes() == biases[3].tobytes())
    ):
        raise ValueError("shared biases need equal rows: b_h1 = b_h2 and b_o1 = b_o2")
    return biases


def step_table_rows(*args, **kwargs):
    """``kernels_table.step_table_rows``: imported on first use, so a sweep never loads it."""
    from fastbp.kernels_table import step_table_rows

    return step_table_rows(*args, **kwargs)


def step_table_array(*args, **kwargs):
    """``kernels_table.step_table_array`` (see ``step_table_rows``)."""
    from fastbp.kernels_table import step_table_array

    return step_table_array(*args, **kwargs)
