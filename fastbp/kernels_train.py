"""The training kernel: one body for every variant of the model, specialised when it is compiled.

``train_kernel(variant)`` returns the compiled kernel of a ``compile_time.Variant`` (its network:
layers, activations, one pattern, batch or online steps; one rate or one per layer; no, fixed,
per-unit or shared biases; the diagnostics' trackers or not); the step it takes is
``kernels_step``'s. The variant's network, flags and state rows are closure constants: Numba prunes the branches a variant does
not take, and they are part of its cache key, so variants never share a cache entry. Each is
``cache=True``, compiled on first use per dtype; a command compiles only what it calls.

Runs are trained in blocks of ``BLOCK`` runs held as structure of arrays, one ``prange``
iteration per block. The inner loops over the runs of a block (three per pattern and step) are what LLVM
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
from fastbp.compile_time import BLOCK, carried_rows, state_rows, step_constants
from fastbp.kernels_step import block_final_loss, step_batch, step_one_pattern, step_online


@functools.cache
def train_kernel(variant, cache=True):
    """The compiled training kernel of ``variant`` (made on first use, compiled per dtype).
    ``cache=False`` makes one outside Numba's disk cache, whose compiled code can be read
    (``inspect_llvm``; tests/test_kernels.py reads it).

    Arguments: w_init (n_weights, R); lr_hidden, lr_output (R,) (with one rate, pass the same
    array twice); biases (n_units, R) initial values (may be (n_units, 0) without biases); data:
    the patterns, flat (each one's inputs, then its targets); the slice s0, s1 of steps;
    record_every and the recording position at s0 (``column0``, ``until_record0``: the same for
    every run, so the caller computes it); tol; the carried state (``carried``:
    ``carried_rows(variant)`` rows of BLOCK lanes a block; ``carried_counts`` (blocks × BLOCK)
    int32); the outputs, filled by the slice that ends at ``steps``: weights (n_weights, R),
    biases (n_units, R) (trained ones only), final, min (R,), first step below tol (R,) int64,
    loss (R, n_recorded); and the diagnostics' carried and final buffers (may be empty without).
    """
    rows, n_rows = state_rows(variant)
    R, net, flags = step_constants(variant)
    n_carried = carried_rows(variant)
    n_weights, n_units = variant.n_weights, variant.n_units
    biased, trained = variant.with_biases, variant.train_biases
    # The step's structure, as two booleans: Numba prunes the branches they rule out before it
    # inlines a step, so the kernel holds only the one it runs. (Not the step function itself in
    # the closure: a dispatcher pickles with a per-process id, and the closure's pickle is part of
    # the cache key, so the kernel would never load from the cache in another process.)
    one_pattern, online = variant.steps == "one_pattern", variant.steps == "online"
    two_rates, diagnostics = variant.two_rates, variant.diagnostics
    v_rows, c_rows = trackers.VALUE_ROWS, trackers.COUNT_ROWS
    lr_hidden_row, lr_output_row, min_row, loss_row = rows.lr_hidden, rows.lr_output, rows.min, rows.loss
    bias_row = rows.biases

    @njit(parallel=True, error_model="numpy", cache=cache, nogil=True)
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
                    for b in range(n_units):
                        state[(bias_row + b) * BLOCK + j] = biases[b, src]
                if s0 == 0:
                    for row in range(n_weights):
                        state[row * BLOCK + j] = w_init[row, src]
                    state[min_row * BLOCK + j] = inf
                    steps_not_below[j] = 0
                else:
                    for row in range(n_weights):
                        state[row * BLOCK + j] = carried[kept_at + row * BLOCK + j]
                    state[min_row * BLOCK + j] = carried[kept_at + n_weights * BLOCK + j]
                    steps_not_below[j] = carried_counts[start + j]
                    if trained:
                        for b in range(n_units):
                            state[(bias_row + b) * BLOCK + j] = carried[
                                kept_at + (n_weights + 1 + b) * BLOCK + j
                            ]
            column = column0
            until_record = until_record0  # a countdown, not s % record_every: no division per step
            for step in range(s1 - s0):
                if diagnostics:
                    k = s0 + step
                    if trackers.is_special(k, s0, steps):
                        if k > s0:  # E_{k-1} (a slice's first step has it carried)
                            diag[:BLOCK] = state[loss_row * BLOCK : (loss_row + 1) * BLOCK]
                        if one_pattern:
                            step_one_pattern(
                                state, steps_not_below, data, tol, R, net, flags, False, diag, counts, k
                            )
                        elif online:
                            step_online(
                                state, steps_not_below, data, tol, R, net, flags, False, diag, counts, k
                            )
                        else:
                            step_batch(
                                state, steps_not_below, data, tol, R, net, flags, False, diag, counts, k
                            )
                        trackers.block_note_special(diag, counts, state, R.loss, R.min, k, steps, tol)
                    else:  # noted inside the step's last pass
                        if one_pattern:
                            step_one_pattern(
                                state, steps_not_below, data, tol, R, net, flags, True, diag, counts, k
                            )
                        elif online:
                            step_online(
                                state, steps_not_below, data, tol, R, net, flags, True, diag, counts, k
                            )
                        else:
                            step_batch(
                                state, steps_not_below, data, tol, R, net, flags, True, diag, counts, k
                            )
                else:
                    if one_pattern:
                        step_one_pattern(
                            state, steps_not_below, data, tol, R, net, flags, False, diag, counts, 0
                        )
                    elif online:
                        step_online(state, steps_not_below, data, tol, R, net, flags, False, diag, counts, 0)
                    else:
                        step_batch(state, steps_not_below, data, tol, R, net, flags, False, diag, counts, 0)
                if record_every > 0:
                    if until_record == 0:
                        for j in range(n):
                            out_loss[start + j, column] = state[loss_row * BLOCK + j]
                        column += 1
                        until_record = record_every
                    until_record -= 1
            if s1 < steps:
                for j in range(BLOCK):
                    for row in range(n_weights):
                        carried[kept_at + row * BLOCK + j] = state[row * BLOCK + j]
                    carried[kept_at + n_weights * BLOCK + j] = state[min_row * BLOCK + j]
                    carried_counts[start + j] = steps_not_below[j]
                    if trained:
                        for b in range(n_units):
                            carried[kept_at + (n_weights + 1 + b) * BLOCK + j] = state[
                                (bias_row + b) * BLOCK + j
                            ]
                if diagnostics:  # E_{s1-1} goes in the PREV row for the next slice's first step
                    diag[:BLOCK] = state[loss_row * BLOCK : (loss_row + 1) * BLOCK]
                    carried_diag[block * v_rows * BLOCK : (block + 1) * v_rows * BLOCK] = diag
                    carried_diag_counts[block * c_rows * BLOCK : (block + 1) * c_rows * BLOCK] = counts
            else:
                # (the last step is in the final window: its special note left E_{steps-1} in PREV)
                block_final_loss(state, steps_not_below, data, tol, R, net, biased)
                if diagnostics:
                    trackers.block_note_special(diag, counts, state, R.loss, R.min, steps, steps, tol)
                    for j in range(n):
                        for row in range(v_rows - 1):  # E_{k-1} is not a result
                            out_diag[row, start + j] = diag[(row + 1) * BLOCK + j]
                        for row in range(c_rows):
                            out_diag_counts[row, start + j] = counts[row * BLOCK + j]
                for j in range(n):
                    out_loss[start + j, column] = state[loss_row * BLOCK + j]
                    for row in range(n_weights):
                        out_weights[row, start + j] = state[row * BLOCK + j]
                    if trained:
                        for b in range(n_units):
                            out_biases[b, start + j] = state[(bias_row + b) * BLOCK + j]
                    out_final[start + j] = state[loss_row * BLOCK + j]
                    running_min = state[min_row * BLOCK + j]
                    out_min[start + j] = running_min if running_min != inf else np.nan
                    out_first_hit[start + j] = steps_not_below[j] if running_min < tol else -1

    return kernel
