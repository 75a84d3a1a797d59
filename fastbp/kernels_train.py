"""The training kernel: one body for every variant of the model, specialised when it is compiled.

``train_kernel(variant)`` returns the compiled kernel of a ``compile_time.Variant`` (one rate or
one per layer; no, fixed, per-unit or shared biases; the diagnostics' trackers or not). The
variant's flags and state rows are closure constants: Numba prunes the branches a variant does
not take, and they are part of its cache key, so variants never share a cache entry. Each is
``cache=True``, compiled on first use per dtype; a command compiles only what it calls.

Runs are trained in blocks of ``BLOCK`` runs held as structure of arrays, one ``prange``
iteration per block. The inner loops over the runs of a block (three per step) are what LLVM
vectorises (``inspect_llvm`` shows ``vector.body``): they have a compile-time trip count, and a
short block is padded by repeating its last run, so every run goes through the same code
whatever its position, and nothing is shared between blocks: results never depend on the thread
count, the batch a run sits in or its lane. No ``fastmath`` flags: IEEE operations and explicit,
exactly rounded ``fma`` only (no reassociation, no implicit contraction), so a run's bits are the
same on every x86-64 CPU.

A call advances every run over steps [s0, s1) and carries its state between calls
(``kernels.train`` slices the steps so that Python regains control every fraction of a second).
"""

import functools

import numpy as np
from numba import njit, prange

from fastbp import _numba_cache  # noqa: F401  (the cache key covers the files a kernel inlines)
from fastbp import kernels_diagnostics as trackers
from fastbp.compile_time import BLOCK, StateRows, carried_rows, state_rows
from fastbp.model import (
    backward_with_deltas,
    bias_gradients,
    hidden_layer,
    hidden_layer_biased,
    loss,
    output_layer,
    output_layer_biased,
    total_loss,
    total_loss_biased,
    update_biases,
    update_per_layer,
)

# The biases enter the sums as they are, not as model.bias_addend(b) (which the step table
# uses): a sum's sign of zero, the one thing the addend changes, reaches nothing here but σ, and
# σ(+0) = σ(−0) = ½, so every output has the same bits either way (tests/test_biases.py checks
# them against the table's). Making the addend every step measured ~10 % slower for trained runs.


@njit(inline="always")
def _block_update(state, steps_not_below, data, tol, R, flags, noted, diag, counts, k):
    """One gradient step (docs/model.md "Update and steps") for every run of a block, plus its summaries.

    ``data`` is (i1, i2, t1, t2); ``R`` holds the state's row offsets; ``flags`` are the variant's
    (biased, trained, shared) and ``noted`` whether the diagnostics note step ``k`` here: all
    compile-time constants.
    Three passes over the block, not one: a step is one long dependency chain per run (exp,
    divide, exp, divide, backward), and a short loop body of independent runs lets the CPU keep
    many runs' chains in flight at once. Measured 1.35-1.5x faster than one fused pass, with the
    same operations per run and so the same bits. Each pass reads and writes lane j only, and
    only the last one writes weights.
    """
    i1, i2, t1, t2 = data
    biased, trained, shared = flags
    for lane in range(BLOCK):
        j = np.uint64(lane)
        w1, w2, w3, w4 = state[R.w1 + j], state[R.w2 + j], state[R.w3 + j], state[R.w4 + j]
        if biased:
            b_h1, b_h2 = state[R.b_h1 + j], state[R.b_h2 + j]
            _h1, a_h1, _h2, a_h2 = hidden_layer_biased(i1, i2, w1, w2, w3, w4, b_h1, b_h2)
        else:
            _h1, a_h1, _h2, a_h2 = hidden_layer(i1, i2, w1, w2, w3, w4)
        state[R.a_h1 + j] = a_h1
        state[R.a_h2 + j] = a_h2
    for lane in range(BLOCK):
        j = np.uint64(lane)
        w5, w6, w7, w8 = state[R.w5 + j], state[R.w6 + j], state[R.w7 + j], state[R.w8 + j]
        a_h1, a_h2 = state[R.a_h1 + j], state[R.a_h2 + j]
        if biased:
            b_o1, b_o2 = state[R.b_o1 + j], state[R.b_o2 + j]
            _o1, a_o1, _o2, a_o2 = output_layer_biased(w5, w6, w7, w8, a_h1, a_h2, b_o1, b_o2)
        else:
            _o1, a_o1, _o2, a_o2 = output_layer(w5, w6, w7, w8, a_h1, a_h2)
        state[R.a_o1 + j] = a_o1
        state[R.a_o2 + j] = a_o2
    for lane in range(BLOCK):
        j = np.uint64(lane)
        a_h1, a_h2 = state[R.a_h1 + j], state[R.a_h2 + j]
        a_o1, a_o2 = state[R.a_o1 + j], state[R.a_o2 + j]
        w1, w2, w3, w4 = state[R.w1 + j], state[R.w2 + j], state[R.w3 + j], state[R.w4 + j]
        w5, w6, w7, w8 = state[R.w5 + j], state[R.w6 + j], state[R.w7 + j], state[R.w8 + j]
        # With one rate both read the same row: update_per_layer(lr, lr) is model.update's rule.
        lr_hidden, lr_output = state[R.lr_hidden + j], state[R.lr_output + j]
        previous = state[R.loss + j]  # E_{k-1}, until _note_loss below replaces it
        _E1, _E2, E_total = loss(t1, t2, a_o1, a_o2)
        g = backward_with_deltas(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2)
        g1, g2, g3, g4, g5, g6, g7, g8 = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
        w1, w2, w3, w4, w5, w6, w7, w8 = update_per_layer(
            w1, w2, w3, w4, w5, w6, w7, w8, g1, g2, g3, g4, g5, g6, g7, g8, lr_hidden, lr_output
        )
        state[R.w1 + j] = w1
        state[R.w2 + j] = w2
        state[R.w3 + j] = w3
        state[R.w4 + j] = w4
        state[R.w5 + j] = w5
        state[R.w6 + j] = w6
        state[R.w7 + j] = w7
        state[R.w8 + j] = w8
        if trained:
            gb_h1, gb_h2, gb_o1, gb_o2 = bias_gradients(g[8], g[9], g[10], g[11], shared)
            b_h1, b_h2, b_o1, b_o2 = (
                state[R.b_h1 + j],
                state[R.b_h2 + j],
                state[R.b_o1 + j],
                state[R.b_o2 + j],
            )
            b_h1, b_h2, b_o1, b_o2 = update_biases(
                b_h1, b_h2, b_o1, b_o2, gb_h1, gb_h2, gb_o1, gb_o2, lr_hidden, lr_output
            )
            state[R.b_h1 + j] = b_h1
            state[R.b_h2 + j] = b_h2
            state[R.b_o1 + j] = b_o1
            state[R.b_o2 + j] = b_o2
        _note_loss(state, steps_not_below, R, j, E_total, tol)
        if noted:
            trackers.note(diag, counts, j, E_total, previous, state[R.min + j], np.int32(k), tol)


@njit(inline="always")
def _block_final_loss(state, steps_not_below, data, tol, R, biased):
    """E_total at the final weights (and biases): the last point of every loss curve."""
    i1, i2, t1, t2 = data
    for lane in range(BLOCK):
        j = np.uint64(lane)
        w1, w2, w3, w4 = state[R.w1 + j], state[R.w2 + j], state[R.w3 + j], state[R.w4 + j]
        w5, w6, w7, w8 = state[R.w5 + j], state[R.w6 + j], state[R.w7 + j], state[R.w8 + j]
        if biased:
            b_h1, b_h2, b_o1, b_o2 = (
                state[R.b_h1 + j],
                state[R.b_h2 + j],
                state[R.b_o1 + j],
                state[R.b_o2 + j],
            )
            E_total = total_loss_biased(
                i1, i2, t1, t2, w1, w2, w3, w4, w5, w6, w7, w8, b_h1, b_h2, b_o1, b_o2
            )
        else:
            E_total = total_loss(i1, i2, t1, t2, w1, w2, w3, w4, w5, w6, w7, w8)
        _note_loss(state, steps_not_below, R, j, E_total, tol)


@njit(inline="always")
def _note_loss(state, steps_not_below, R, j, E_total, tol):
    """Keep E_total and its running minimum, and count the steps at which the minimum is not below tol.

    The running minimum only falls, so that count is the first step whose E_total < tol (when
    the run gets there at all): two cheap operations a step instead of tracking a step number.
    NaN losses never become the minimum (it starts at +inf and is NaN'd at the end if it stays
    there: E_total is bounded, so +inf means no finite loss ever).
    """
    state[R.loss + j] = E_total
    previous_min = state[R.min + j]
    running_min = E_total if E_total < previous_min else previous_min
    state[R.min + j] = running_min
    steps_not_below[j] += np.int32(not running_min < tol)


@functools.cache
def train_kernel(variant):
    """The compiled training kernel of ``variant`` (made on first use, compiled per dtype).

    Arguments: w_init (8, R); lr_hidden, lr_output (R,) (with one rate, pass the same array
    twice); biases (4, R) initial values (may be (4, 0) without biases); data (i1, i2, t1, t2); the
    slice s0, s1 of steps; record_every and the recording position at s0 (``column0``,
    ``until_record0``: the same for every run, so the caller computes it); tol; the carried
    state (``carried``: ``carried_rows(variant)`` rows of BLOCK lanes a block; ``carried_counts``
    (blocks × BLOCK) int32); the outputs, filled by the slice that ends at ``steps``: weights
    (8, R), biases (4, R) (trained ones only), final, min (R,), first step below tol (R,) int64,
    loss (R, n_recorded); and the diagnostics' carried and final buffers (may be empty without).
    """
    rows, n_rows = state_rows(variant)
    # Unsigned offsets: a signed index gets a negative-index check that hides the unit stride from LLVM.
    R = StateRows(*(np.uint64(row * BLOCK) for row in rows))
    n_carried = carried_rows(variant)
    biased, trained, shared = variant.with_biases, variant.train_biases, variant.shared_biases
    flags = (biased, trained, shared)
    two_rates, diagnostics = variant.two_rates, variant.diagnostics
    v_rows, c_rows = trackers.VALUE_ROWS, trackers.COUNT_ROWS
    lr_hidden_row, lr_output_row, min_row, loss_row = rows.lr_hidden, rows.lr_output, rows.min, rows.loss
    b_h1_row = rows.b_h1

    @njit(parallel=True, error_model="numpy", cache=True, nogil=True)
    def kernel(
        w_init,
        lr_hidden,
        lr_output,
        biases,
        data,
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
        out_biases,
        out_final,
        out_min,
        out_first_hit,
        out_loss,
        carried_diag,
        carried_diag_counts,
        out_diag,
        out_diag_counts,
    ):
        n_runs = lr_hidden.shape[0]
        n_blocks = (n_runs + BLOCK - 1) // BLOCK
        inf = lr_hidden.dtype.type(np.inf)
        for block in prange(n_blocks):
            start = block * BLOCK
            n = min(BLOCK, n_runs - start)
            state = np.empty(n_rows * BLOCK, dtype=lr_hidden.dtype)
            steps_not_below = np.empty(BLOCK, dtype=np.int32)  # int32: as many lanes as float32
            kept_at = block * (n_carried * BLOCK)
            diag = np.empty(v_rows * BLOCK if diagnostics else 0, dtype=lr_hidden.dtype)
            counts = np.empty(c_rows * BLOCK if diagnostics else 0, dtype=np.int32)
            if diagnostics and s0 > 0:
                diag[:] = carried_diag[block * v_rows * BLOCK : (block + 1) * v_rows * BLOCK]
                counts[:] = carried_diag_counts[block * c_rows * BLOCK : (block + 1) * c_rows * BLOCK]
            for j in range(BLOCK):
                src = start + min(j, n - 1)  # pad a short block with copies of its last run
                state[lr_hidden_row * BLOCK + j] = lr_hidden[src]
                if two_rates:
                    state[lr_output_row * BLOCK + j] = lr_output[src]
                if biased and (s0 == 0 or not trained):  # fixed biases are read again every slice
                    for b in range(4):
                        state[(b_h1_row + b) * BLOCK + j] = biases[b, src]
                if s0 == 0:
                    for row in range(8):
                        state[row * BLOCK + j] = w_init[row, src]
                    state[min_row * BLOCK + j] = inf
                    steps_not_below[j] = 0
                else:
                    for row in range(8):
                        state[row * BLOCK + j] = carried[kept_at + row * BLOCK + j]
                    state[min_row * BLOCK + j] = carried[kept_at + 8 * BLOCK + j]
                    steps_not_below[j] = carried_counts[start + j]
                    if trained:
                        for b in range(4):
                            state[(b_h1_row + b) * BLOCK + j] = carried[kept_at + (9 + b) * BLOCK + j]
            column = column0
            until_record = until_record0  # a countdown, not s % record_every: no division per step
            for step in range(s1 - s0):
                if diagnostics:
                    k = s0 + step
                    if trackers.is_special(k, s0, steps):
                        if k > s0:  # E_{k-1} (a slice's first step has it carried)
                            diag[:BLOCK] = state[loss_row * BLOCK : (loss_row + 1) * BLOCK]
                        _block_update(state, steps_not_below, data, tol, R, flags, False, diag, counts, k)
                        trackers.block_note_special(diag, counts, state, R.loss, R.min, k, steps, tol)
                    else:  # noted inside the step's last pass
                        _block_update(state, steps_not_below, data, tol, R, flags, True, diag, counts, k)
                else:
                    _block_update(state, steps_not_below, data, tol, R, flags, False, diag, counts, 0)
                if record_every > 0:
                    if until_record == 0:
                        for j in range(n):
                            out_loss[start + j, column] = state[loss_row * BLOCK + j]
                        column += 1
                        until_record = record_every
                    until_record -= 1
            if s1 < steps:
                for j in range(BLOCK):
                    for row in range(8):
                        carried[kept_at + row * BLOCK + j] = state[row * BLOCK + j]
                    carried[kept_at + 8 * BLOCK + j] = state[min_row * BLOCK + j]
                    carried_counts[start + j] = steps_not_below[j]
                    if trained:
                        for b in range(4):
                            carried[kept_at + (9 + b) * BLOCK + j] = state[(b_h1_row + b) * BLOCK + j]
                if diagnostics:  # E_{s1-1} goes in the PREV row for the next slice's first step
                    diag[:BLOCK] = state[loss_row * BLOCK : (loss_row + 1) * BLOCK]
                    carried_diag[block * v_rows * BLOCK : (block + 1) * v_rows * BLOCK] = diag
                    carried_diag_counts[block * c_rows * BLOCK : (block + 1) * c_rows * BLOCK] = counts
            else:
                # (the last step is in the final window: its special note left E_{steps-1} in PREV)
                _block_final_loss(state, steps_not_below, data, tol, R, biased)
                if diagnostics:
                    trackers.block_note_special(diag, counts, state, R.loss, R.min, steps, steps, tol)
                    for j in range(n):
                        for row in range(v_rows - 1):  # E_{k-1} is not a result
                            out_diag[row, start + j] = diag[(row + 1) * BLOCK + j]
                        for row in range(c_rows):
                            out_diag_counts[row, start + j] = counts[row * BLOCK + j]
                for j in range(n):
                    out_loss[start + j, column] = state[loss_row * BLOCK + j]
                    for row in range(8):
                        out_weights[row, start + j] = state[row * BLOCK + j]
                    if trained:
                        for b in range(4):
                            out_biases[b, start + j] = state[(b_h1_row + b) * BLOCK + j]
                    out_final[start + j] = state[loss_row * BLOCK + j]
                    running_min = state[min_row * BLOCK + j]
                    out_min[start + j] = running_min if running_min != inf else np.nan
                    out_first_hit[start + j] = steps_not_below[j] if running_min < tol else -1

    return kernel
