"""The training kernel for biases and per-layer learning rates (docs/model.md "Biases", "Learning
rate per layer"). Arrays in, arrays out; ``kernels.train`` calls it only when runs have biases or
two rates, so the bias-free single-rate sweep never compiles it and keeps its own kernel,
untouched.

The training kernel is ``kernels._train_kernel``'s, generalised: the same blocks of ``BLOCK``
runs as structure of arrays, the same three passes a step (hidden layer, output layer, then
loss, backward and update), unsigned row offsets, padding, slices and carried state; the
comments there say why. Its variants differ in what a step does, fixed at compile time:

- ``rates``: two learning rates, no biases (the hidden and output passes are the bias-free ones);
- ``fixed``: biases that never change, read from the caller's array once per slice;
- ``per_unit`` and ``shared``: trained biases, four independent ones or one per layer.

Each variant is a separate ``cache=True`` dispatcher, made on first use (``train_kernel``) and
compiled per dtype: a command compiles only the variant it calls. Their flags are closure
constants, part of Numba's cache key, so the variants never share a cache entry.
"""

import numpy as np
from numba import njit, prange

from fastbp import _numba_cache  # noqa: F401  (cache key includes model.py and fastmath.py)
from fastbp import kernels_diagnostics as diagnosed
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

#: Runs per block, as ``kernels.BLOCK`` (shards are sized in whole blocks of it). State: 20 rows
#: × BLOCK, 10 KB in float64, still inside L1.
BLOCK = 64

# Rows of a block's state: rows 0..14 as in kernels.py (w1..w8, lr, E_total, running minimum,
# activations), with row 8 the hidden layer's rate; then the output layer's rate and the biases.
_LR_HIDDEN = 8
_LOSS = 9
_MIN = 10
_A_H1, _A_H2, _A_O1, _A_O2 = 11, 12, 13, 14
_LR_OUTPUT = 15
_B_H1, _B_H2, _B_O1, _B_O2 = 16, 17, 18, 19
_STATE_ROWS = 20
# Carried between slices: w1..w8, the running minimum, and trained biases (rows 9..12 here).
CARRIED_ROWS = 13

_ROW = tuple(np.uint64(row * BLOCK) for row in range(_STATE_ROWS))

#: The variants: (with_biases, train_biases, shared_biases) by name.
VARIANTS = {
    "rates": (False, False, False),
    "fixed": (True, False, False),
    "per_unit": (True, True, False),
    "shared": (True, True, True),
}


def variant(biases, train_biases, shared_biases):
    """The name of the variant that computes these options."""
    if not biases:
        return "rates"
    if not train_biases:
        return "fixed"
    return "shared" if shared_biases else "per_unit"


# The biases enter the sums as they are, not as model.bias_addend(b) (which the step table
# uses): a sum's sign of zero, the one thing the addend changes, reaches nothing here but σ, and
# σ(+0) = σ(−0) = ½, so every output has the same bits either way (tests/test_biases.py checks
# them against the table's). Making the addend every step measured ~10 % slower for trained runs.


@njit(inline="always")
def _block_update(
    state,
    steps_not_below,
    i1,
    i2,
    t1,
    t2,
    tol,
    with_biases,
    train_biases,
    shared_biases,
    noted,
    diag,
    counts,
    k,
):
    """One gradient step for every run of a block, as ``kernels._block_update``, with the variant's
    biases and both layers' rates (the flags are compile-time constants). ``noted`` (a constant
    at each call): the diagnostics note step ``k`` too (``kernels_diagnostics.note``)."""
    row_w1, row_w2, row_w3, row_w4 = _ROW[0], _ROW[1], _ROW[2], _ROW[3]
    row_w5, row_w6, row_w7, row_w8 = _ROW[4], _ROW[5], _ROW[6], _ROW[7]
    row_a_h1, row_a_h2, row_a_o1, row_a_o2 = _ROW[_A_H1], _ROW[_A_H2], _ROW[_A_O1], _ROW[_A_O2]
    row_b_h1, row_b_h2, row_b_o1, row_b_o2 = _ROW[_B_H1], _ROW[_B_H2], _ROW[_B_O1], _ROW[_B_O2]
    row_lr_hidden, row_lr_output = _ROW[_LR_HIDDEN], _ROW[_LR_OUTPUT]
    for lane in range(BLOCK):
        j = np.uint64(lane)
        w1, w2, w3, w4 = state[row_w1 + j], state[row_w2 + j], state[row_w3 + j], state[row_w4 + j]
        if with_biases:
            b_h1, b_h2 = state[row_b_h1 + j], state[row_b_h2 + j]
            _h1, a_h1, _h2, a_h2 = hidden_layer_biased(i1, i2, w1, w2, w3, w4, b_h1, b_h2)
        else:
            _h1, a_h1, _h2, a_h2 = hidden_layer(i1, i2, w1, w2, w3, w4)
        state[row_a_h1 + j] = a_h1
        state[row_a_h2 + j] = a_h2
    for lane in range(BLOCK):
        j = np.uint64(lane)
        w5, w6, w7, w8 = state[row_w5 + j], state[row_w6 + j], state[row_w7 + j], state[row_w8 + j]
        a_h1, a_h2 = state[row_a_h1 + j], state[row_a_h2 + j]
        if with_biases:
            b_o1, b_o2 = state[row_b_o1 + j], state[row_b_o2 + j]
            _o1, a_o1, _o2, a_o2 = output_layer_biased(w5, w6, w7, w8, a_h1, a_h2, b_o1, b_o2)
        else:
            _o1, a_o1, _o2, a_o2 = output_layer(w5, w6, w7, w8, a_h1, a_h2)
        state[row_a_o1 + j] = a_o1
        state[row_a_o2 + j] = a_o2
    for lane in range(BLOCK):
        j = np.uint64(lane)
        a_h1, a_h2 = state[row_a_h1 + j], state[row_a_h2 + j]
        a_o1, a_o2 = state[row_a_o1 + j], state[row_a_o2 + j]
        w1, w2, w3, w4 = state[row_w1 + j], state[row_w2 + j], state[row_w3 + j], state[row_w4 + j]
        w5, w6, w7, w8 = state[row_w5 + j], state[row_w6 + j], state[row_w7 + j], state[row_w8 + j]
        lr_hidden, lr_output = state[row_lr_hidden + j], state[row_lr_output + j]
        previous = state[_ROW[_LOSS] + j]  # E_{k-1}, until _note_loss below replaces it
        _E1, _E2, E_total = loss(t1, t2, a_o1, a_o2)
        g = backward_with_deltas(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2)
        w1, w2, w3, w4, w5, w6, w7, w8 = update_per_layer(
            w1,
            w2,
            w3,
            w4,
            w5,
            w6,
            w7,
            w8,
            g[0],
            g[1],
            g[2],
            g[3],
            g[4],
            g[5],
            g[6],
            g[7],
            lr_hidden,
            lr_output,
        )
        state[row_w1 + j] = w1
        state[row_w2 + j] = w2
        state[row_w3 + j] = w3
        state[row_w4 + j] = w4
        state[row_w5 + j] = w5
        state[row_w6 + j] = w6
        state[row_w7 + j] = w7
        state[row_w8 + j] = w8
        if train_biases:
            gb_h1, gb_h2, gb_o1, gb_o2 = bias_gradients(g[8], g[9], g[10], g[11], shared_biases)
            b_h1, b_h2, b_o1, b_o2 = update_biases(
                state[row_b_h1 + j],
                state[row_b_h2 + j],
                state[row_b_o1 + j],
                state[row_b_o2 + j],
                gb_h1,
                gb_h2,
                gb_o1,
                gb_o2,
                lr_hidden,
                lr_output,
            )
            state[row_b_h1 + j] = b_h1
            state[row_b_h2 + j] = b_h2
            state[row_b_o1 + j] = b_o1
            state[row_b_o2 + j] = b_o2
        _note_loss(state, steps_not_below, j, E_total, tol)
        if noted:
            diagnosed.note(diag, counts, j, E_total, previous, state[_ROW[_MIN] + j], np.int32(k), tol)


@njit(inline="always")
def _block_final_loss(state, steps_not_below, i1, i2, t1, t2, tol, with_biases):
    """E_total at the final weights (and biases): the last point of every loss curve."""
    for lane in range(BLOCK):
        j = np.uint64(lane)
        w1, w2, w3, w4 = state[_ROW[0] + j], state[_ROW[1] + j], state[_ROW[2] + j], state[_ROW[3] + j]
        w5, w6, w7, w8 = state[_ROW[4] + j], state[_ROW[5] + j], state[_ROW[6] + j], state[_ROW[7] + j]
        if with_biases:
            b_h1, b_h2 = state[_ROW[_B_H1] + j], state[_ROW[_B_H2] + j]
            b_o1, b_o2 = state[_ROW[_B_O1] + j], state[_ROW[_B_O2] + j]
            E_total = total_loss_biased(
                i1, i2, t1, t2, w1, w2, w3, w4, w5, w6, w7, w8, b_h1, b_h2, b_o1, b_o2
            )
        else:
            E_total = total_loss(i1, i2, t1, t2, w1, w2, w3, w4, w5, w6, w7, w8)
        _note_loss(state, steps_not_below, j, E_total, tol)


@njit(inline="always")
def _note_loss(state, steps_not_below, j, E_total, tol):
    """``kernels._note_loss`` on this module's rows: E_total, running minimum, steps not below tol."""
    loss_at, min_at = _ROW[_LOSS] + j, _ROW[_MIN] + j
    state[loss_at] = E_total
    previous_min = state[min_at]
    running_min = E_total if E_total < previous_min else previous_min
    state[min_at] = running_min
    steps_not_below[j] += np.int32(not running_min < tol)


def _make_train_kernel(with_biases, train_biases, shared_biases, diagnostics):
    """The training kernel of one variant (``kernels._train_kernel``'s arguments, plus
    lr_output, biases, out_biases); ``biases``, ``out_biases`` are unused without biases.
    With ``diagnostics``, ``kernels_diagnostics`` notes every step into a block's ``diag`` and
    ``counts`` buffers, carried in ``carried_diag``/``carried_diag_counts`` between slices and
    written to ``out_diag`` (E_0 … window start) and ``out_diag_counts`` at the end (all unused,
    and may be empty, without)."""
    v_rows, c_rows = diagnosed.VALUE_ROWS, diagnosed.COUNT_ROWS

    @njit(parallel=True, error_model="numpy", cache=True, nogil=True)
    def train_general(
        w_init,
        lr_hidden,
        lr_output,
        biases,
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
            state = np.empty(_STATE_ROWS * BLOCK, dtype=lr_hidden.dtype)
            steps_not_below = np.empty(BLOCK, dtype=np.int32)
            kept_at = block * (CARRIED_ROWS * BLOCK)
            diag = np.empty(v_rows * BLOCK if diagnostics else 0, dtype=lr_hidden.dtype)
            counts = np.empty(c_rows * BLOCK if diagnostics else 0, dtype=np.int32)
            if diagnostics and s0 > 0:
                diag[:] = carried_diag[block * v_rows * BLOCK : (block + 1) * v_rows * BLOCK]
                counts[:] = carried_diag_counts[block * c_rows * BLOCK : (block + 1) * c_rows * BLOCK]
            for j in range(BLOCK):
                src = start + min(j, n - 1)  # pad a short block with copies of its last run
                state[_LR_HIDDEN * BLOCK + j] = lr_hidden[src]
                state[_LR_OUTPUT * BLOCK + j] = lr_output[src]
                if with_biases and not train_biases:
                    for b in range(4):
                        state[(_B_H1 + b) * BLOCK + j] = biases[b, src]
                if s0 == 0:
                    for row in range(8):
                        state[row * BLOCK + j] = w_init[row, src]
                    state[_MIN * BLOCK + j] = inf
                    steps_not_below[j] = 0
                    if train_biases:
                        for b in range(4):
                            state[(_B_H1 + b) * BLOCK + j] = biases[b, src]
                else:
                    for row in range(8):
                        state[row * BLOCK + j] = carried[kept_at + row * BLOCK + j]
                    state[_MIN * BLOCK + j] = carried[kept_at + 8 * BLOCK + j]
                    steps_not_below[j] = carried_counts[start + j]
                    if train_biases:
                        for b in range(4):
                            state[(_B_H1 + b) * BLOCK + j] = carried[kept_at + (9 + b) * BLOCK + j]
            column = column0
            until_record = until_record0
            for _step in range(s1 - s0):
                k = s0 + _step
                noted = diagnostics and not diagnosed.is_special(k, s0, steps)  # noted inside the step
                if diagnostics and not noted and k > s0:  # E_{k-1} (a slice's first step has it carried)
                    diag[:BLOCK] = state[_LOSS * BLOCK : (_LOSS + 1) * BLOCK]
                if noted:
                    _block_update(state, steps_not_below, i1, i2, t1, t2, tol, with_biases, train_biases, shared_biases, True, diag, counts, k)  # fmt: skip
                else:
                    _block_update(state, steps_not_below, i1, i2, t1, t2, tol, with_biases, train_biases, shared_biases, False, diag, counts, k)  # fmt: skip
                if diagnostics and not noted:
                    diagnosed.block_note_special(diag, counts, state, _ROW[_LOSS], _ROW[_MIN], k, steps, tol)
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
                    if train_biases:
                        for b in range(4):
                            carried[kept_at + (9 + b) * BLOCK + j] = state[(_B_H1 + b) * BLOCK + j]
                if diagnostics:  # E_{s1-1} goes in the PREV row for the next slice's first step
                    diag[:BLOCK] = state[_LOSS * BLOCK : (_LOSS + 1) * BLOCK]
                    carried_diag[block * v_rows * BLOCK : (block + 1) * v_rows * BLOCK] = diag
                    carried_diag_counts[block * c_rows * BLOCK : (block + 1) * c_rows * BLOCK] = counts
            else:
                # (the last step is in the final window: its special note left E_{steps-1} in PREV)
                _block_final_loss(state, steps_not_below, i1, i2, t1, t2, tol, with_biases)
                if diagnostics:
                    diagnosed.block_note_special(
                        diag, counts, state, _ROW[_LOSS], _ROW[_MIN], steps, steps, tol
                    )
                    for j in range(n):
                        for row in range(v_rows - 1):  # E_{k-1} is not a result
                            out_diag[row, start + j] = diag[(row + 1) * BLOCK + j]
                        for row in range(c_rows):
                            out_diag_counts[row, start + j] = counts[row * BLOCK + j]
                for j in range(n):
                    out_loss[start + j, column] = state[_LOSS * BLOCK + j]
                    for row in range(8):
                        out_weights[row, start + j] = state[row * BLOCK + j]
                    if train_biases:
                        for b in range(4):
                            out_biases[b, start + j] = state[(_B_H1 + b) * BLOCK + j]
                    out_final[start + j] = state[_LOSS * BLOCK + j]
                    running_min = state[_MIN * BLOCK + j]
                    out_min[start + j] = running_min if running_min != inf else np.nan
                    out_first_hit[start + j] = steps_not_below[j] if running_min < tol else -1

    return train_general


_TRAIN_KERNELS = {}


def train_kernel(name, diagnostics=False):
    """The training kernel of variant ``name`` (a key of ``VARIANTS``), with or without the
    diagnostics, made on first use."""
    if (name, diagnostics) not in _TRAIN_KERNELS:
        _TRAIN_KERNELS[name, diagnostics] = _make_train_kernel(*VARIANTS[name], diagnostics)
    return _TRAIN_KERNELS[name, diagnostics]


class SliceRunner:
    """For ``kernels.train``: runs one slice (``run``), and holds what the slices carry.

    ``data`` is (i1, i2, t1, t2) in the dtype; ``cut``: whether the run is cut in slices (then
    the carried state needs its arrays); ``outputs``: train's (weights, final, min, first hit,
    loss) arrays, which the last slice fills. Trained biases come out of the kernel; fixed ones
    are the initial ones (``final_biases``). With ``diagnostics``, ``diag`` (7, R) and
    ``diag_counts`` (5, R) int32 hold ``kernels_diagnostics``' results after the last slice.
    """

    def __init__(
        self, w_init, lr_hidden, lr_output, biases, train_biases, shared_biases, data, tolerance, cut, outputs,
        diagnostics=False,
    ):  # fmt: skip
        dtype = lr_hidden.dtype
        self.n_runs = n_runs = lr_hidden.shape[0]
        self.kernel = train_kernel(variant(biases is not None, train_biases, shared_biases), diagnostics)
        self.n_carried = n_carried = (n_runs + BLOCK - 1) // BLOCK if cut else 0
        self.train_biases = train_biases
        self.carried = np.empty(n_carried * CARRIED_ROWS * BLOCK, dtype=dtype)
        self.carried_counts = np.empty(n_carried * BLOCK, dtype=np.int32)
        self.out_biases = np.empty((4, n_runs) if train_biases else (4, 0), dtype=dtype)
        self.initial = np.empty((4, 0), dtype=dtype) if biases is None else biases
        self.final_biases = self.out_biases if train_biases else None if biases is None else biases.copy()
        v_rows, c_rows = diagnosed.VALUE_ROWS, diagnosed.COUNT_ROWS
        with_diag = n_carried if diagnostics else 0
        self.carried_diag = np.empty(with_diag * v_rows * BLOCK, dtype=dtype)
        self.carried_diag_counts = np.empty(with_diag * c_rows * BLOCK, dtype=np.int32)
        self.diag = np.empty((v_rows - 1, n_runs if diagnostics else 0), dtype=dtype)
        self.diag_counts = np.empty((c_rows, n_runs if diagnostics else 0), dtype=np.int32)
        self.outputs, self.data, self.tol = outputs, data, dtype.type(tolerance)
        self.w_init, self.lr_hidden, self.lr_output = w_init, lr_hidden, lr_output

    def run(self, s0, s1, steps, record_every, column0, until_record0):
        out_weights, out_final, out_min, out_first_hit, out_loss = self.outputs
        self.kernel(
            self.w_init, self.lr_hidden, self.lr_output, self.initial, *self.data, s0, s1, steps, record_every,
            column0, until_record0, self.tol, self.carried, self.carried_counts, out_weights, self.out_biases,
            out_final, out_min, out_first_hit, out_loss, self.carried_diag, self.carried_diag_counts, self.diag,
            self.diag_counts,
        )  # fmt: skip

    def carried_parameters(self):
        """(weights (8, R), trained biases (4, R) or None) of the state carried after a slice."""
        blocks = self.carried.reshape(self.n_carried, CARRIED_ROWS, BLOCK)
        rows = blocks.transpose(1, 0, 2).reshape(CARRIED_ROWS, -1)[:, : self.n_runs]
        return rows[:8], rows[9:13] if self.train_biases else None
