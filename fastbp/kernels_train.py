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
from numba.np.unsafe.ndarray import to_fixed_tuple

from fastbp import _numba_cache  # noqa: F401  (the cache key covers the files a kernel inlines)
from fastbp import kernels_diagnostics as trackers
from fastbp.compile_time import ACTIVATIONS, BLOCK, StateRows, carried_rows, state_rows
from fastbp.fastmath import fma
from fastbp.model import activate, half_square, unit_delta

# The biases enter the sums as they are, not as model.bias_addend(b) (which the step table
# uses): a sum's sign of zero, the one thing the addend changes, reaches nothing here but σ, and
# σ(+0) = σ(−0) = ½, so every output has the same bits either way (tests/test_biases.py checks
# them against the table's). Making the addend every step measured ~10 % slower for trained runs.

# A network is passed to the passes below as the tuple (n_in, n_hidden, n_out, hidden activation,
# output activation), and a variant's bias flags as (biased, trained, shared): compile-time
# constants, so the loops over units have constant trip counts. LLVM unrolls the small ones
# completely, and the loop over a block's runs, innermost then, is what it vectorises.


@njit(inline="always")
def _row(first, k):
    """The offset of row ``first`` + k (unsigned, as every offset: see train_kernel)."""
    return first + np.uint64(k) * np.uint64(BLOCK)


@njit(inline="always")
def _pattern(data, p, n_in, n_out):
    """Pattern p's inputs and targets as two tuples: values, not memory, so that LLVM need not
    prove that the state's stores leave them alone (it cannot, and then does not vectorise)."""
    first = p * (n_in + n_out)
    x = to_fixed_tuple(data[first : first + n_in], n_in)
    t = to_fixed_tuple(data[first + n_in : first + n_in + n_out], n_out)
    return x, t


@njit(inline="always")
def _unit_sum(state, x, j, first_weight, n_senders, sender_row, bias, biased, from_pattern):
    """A unit's sum Σ_s w_s · (sender s) (+ its bias) for lane j, the last term first and each
    earlier one fused in: fma(w_1, x_1, fma(w_2, x_2, b)), or fma(w_1, x_1, w_2 · x_2) without a
    bias, the 2-2-2 functions' very operations. Senders are the pattern's inputs ``x``
    (``from_pattern``) or the rows from ``sender_row`` (the hidden activations)."""
    last = n_senders - 1
    if biased:
        total = state[_row(bias, 0) + j]
        n_fused = n_senders
    else:
        sender = x[last] if from_pattern else state[_row(sender_row, last) + j]
        total = state[_row(first_weight, last) + j] * sender
        n_fused = last
    for m in range(n_fused):
        s = n_fused - 1 - m
        sender = x[s] if from_pattern else state[_row(sender_row, s) + j]
        total = fma(state[_row(first_weight, s) + j], sender, total)
    return total


@njit(inline="always")
def _forward(state, R, net, biased, x):
    """The forward pass of the current pattern for every run of a block: the hidden layer's
    activations, then the output layer's, into their rows (two passes over the block)."""
    n_in, n_hidden, n_out, hidden_kind, output_kind = net
    for lane in range(BLOCK):
        j = np.uint64(lane)
        for h in range(n_hidden):
            w = _row(R.weights, h * n_in)
            net_h = _unit_sum(state, x, j, w, n_in, R.a_h, _row(R.biases, h), biased, True)
            state[_row(R.a_h, h) + j] = activate(net_h, hidden_kind)
    for lane in range(BLOCK):
        j = np.uint64(lane)
        for k in range(n_out):
            w = _row(R.weights, n_hidden * n_in + k * n_hidden)
            net_o = _unit_sum(state, x, j, w, n_hidden, R.a_h, _row(R.biases, n_hidden + k), biased, False)
            state[_row(R.a_o, k) + j] = activate(net_o, output_kind)


@njit(inline="always")
def _pattern_loss(state, R, j, t, n_out):
    """E of the current pattern (targets ``t``) at lane j: Σ_k ½(t_k − a_k)², in output order."""
    E = half_square(t[0], state[R.a_o + j])
    for k in range(1, n_out):
        E = E + half_square(t[k], state[_row(R.a_o, k) + j])
    return E


@njit(inline="always")
def _step_parameter(state, row, j, rate, gradient, summed, gradient_row):
    """One parameter at lane j: it steps (w ← w − rate · g, fused), or, ``summed``, its gradient
    is added to the step's sum."""
    if summed:
        state[gradient_row + j] = state[gradient_row + j] + gradient
    else:
        state[row + j] = fma(-rate, gradient, state[row + j])


@njit(inline="always")
def _step_one_pattern(state, steps_not_below, data, tol, R, net, flags, noted, diag, counts, k):
    """One step (docs/model.md "Update and steps") of every run of a block on one pattern (the
    exercise): the forward pass, then E, the gradient and the update in one backward pass.

    ``data`` holds the patterns (each one's inputs, then its targets); ``R`` the state's row offsets; ``net`` the network and ``flags`` (biased,
    trained, shared) the variant's; ``noted`` whether the diagnostics note step ``k`` here: all
    compile-time constants. A step takes three passes over the block, not one: it is one long
    dependency chain per run (exp, divide, exp, divide, backward), and a short loop body of
    independent runs lets the CPU keep many runs' chains in flight at once. Measured 1.35-1.5x
    faster than one fused pass, with the same operations per run and so the same bits. Each pass
    reads and writes lane j only.
    """
    x, t = _pattern(data, 0, net[0], net[2])
    _forward(state, R, net, flags[0], x)
    _backward_pass(state, steps_not_below, R, net, flags, x, t, False, tol, noted, diag, counts, k)


@njit(inline="always")
def _step_batch(state, steps_not_below, data, tol, R, net, flags, noted, diag, counts, k):
    """``_step_one_pattern`` for several patterns: each one's forward and backward passes add its
    E and gradient to the step's; then every parameter takes one step with the sum."""
    n_in, n_out = net[0], net[2]
    n_summed = _n_summed(net, flags)
    for row in range(n_summed):
        for lane in range(BLOCK):
            state[_row(R.gradient, row) + np.uint64(lane)] = 0
    for lane in range(BLOCK):
        state[R.step_loss + np.uint64(lane)] = 0
    for p in range(len(data) // (n_in + n_out)):
        x, t = _pattern(data, p, n_in, n_out)
        _forward(state, R, net, flags[0], x)
        _backward_pass(state, steps_not_below, R, net, flags, x, t, True, tol, noted, diag, counts, k)
    _apply_gradient(state, steps_not_below, R, net, flags, tol, noted, diag, counts, k)


@njit(inline="always")
def _step_online(state, steps_not_below, data, tol, R, net, flags, noted, diag, counts, k):
    """One pass of online updates (one per pattern, in order). E_k is E at the step's starting
    parameters: a forward pass over every pattern comes first."""
    n_in, n_out = net[0], net[2]
    n_patterns = len(data) // (n_in + n_out)
    for lane in range(BLOCK):
        state[R.step_loss + np.uint64(lane)] = 0
    for p in range(n_patterns):
        x, t = _pattern(data, p, n_in, n_out)
        _forward(state, R, net, flags[0], x)
        _add_pattern_loss(state, R, t, n_out)
    _block_note(state, steps_not_below, R, tol, noted, diag, counts, k)
    for p in range(n_patterns):
        x, t = _pattern(data, p, n_in, n_out)
        _forward(state, R, net, flags[0], x)
        _backward_pass(state, steps_not_below, R, net, flags, x, t, False, tol, False, diag, counts, k)


@njit(inline="always")
def _n_summed(net, flags):
    """Gradients a batch step sums over its patterns: every weight's, and the trained biases'."""
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    return n_hidden * n_in + n_out * n_hidden + (n_hidden + n_out if flags[1] else 0)


@njit(inline="always")
def _add_pattern_loss(state, R, t, n_out):
    """E of the current pattern added to the step's (which starts at 0)."""
    for lane in range(BLOCK):
        j = np.uint64(lane)
        state[R.step_loss + j] = state[R.step_loss + j] + _pattern_loss(state, R, j, t, n_out)


@njit(inline="always")
def _block_note(state, steps_not_below, R, tol, noted, diag, counts, k):
    """The step's E (summed in its row) noted for every run: its minimum, and the diagnostics."""
    for lane in range(BLOCK):
        j = np.uint64(lane)
        _note_step(state, steps_not_below, R, j, state[R.step_loss + j], tol, noted, diag, counts, k)


@njit(inline="always")
def _note_step(state, steps_not_below, R, j, E, tol, noted, diag, counts, k):
    previous = state[R.loss + j]  # E_{k-1}, until _note_loss replaces it
    _note_loss(state, steps_not_below, R, j, E, tol)
    if noted:
        trackers.note(diag, counts, j, E, previous, state[R.min + j], np.int32(k), tol)


@njit(inline="always")
def _backward_pass(state, steps_not_below, R, net, flags, x, t, summed, tol, noted, diag, counts, k):
    """The current pattern's backward pass for every run of a block (docs/model.md "Backward
    pass"): its E and deltas, then every weight's (and trained bias's) gradient, applied at once
    or, ``summed``, added to the step's sums (and E to the step's). Applied at once on one
    pattern (batch), E is the step's: it is noted here; online, the step noted it before."""
    biased, trained, shared, online = flags
    n_in, n_hidden, n_out, hidden_kind, output_kind = net
    n_weights = n_hidden * n_in + n_out * n_hidden
    for lane in range(BLOCK):
        j = np.uint64(lane)
        lr_hidden, lr_output = state[R.lr_hidden + j], state[R.lr_output + j]
        E = _pattern_loss(state, R, j, t, n_out)
        for o in range(n_out):
            a = state[_row(R.a_o, o) + j]
            state[_row(R.delta_o, o) + j] = unit_delta(a - t[o], a, output_kind)
        for h in range(n_hidden):  # ∂E/∂a_h: the output deltas sent back through the output weights
            last = n_out - 1
            w_last = _row(R.weights, n_hidden * n_in + last * n_hidden + h)
            error = state[_row(R.delta_o, last) + j] * state[w_last + j]
            for m in range(last):
                o = last - 1 - m
                w = _row(R.weights, n_hidden * n_in + o * n_hidden + h)
                error = fma(state[_row(R.delta_o, o) + j], state[w + j], error)
            state[_row(R.delta_h, h) + j] = unit_delta(error, state[_row(R.a_h, h) + j], hidden_kind)
        for o in range(n_out):
            delta = state[_row(R.delta_o, o) + j]
            for h in range(n_hidden):
                row = n_hidden * n_in + o * n_hidden + h
                g = delta * state[_row(R.a_h, h) + j]
                _step_parameter(state, _row(R.weights, row), j, lr_output, g, summed, _row(R.gradient, row))
        for h in range(n_hidden):
            delta = state[_row(R.delta_h, h) + j]
            for i in range(n_in):
                row = h * n_in + i
                g = delta * x[i]
                _step_parameter(state, _row(R.weights, row), j, lr_hidden, g, summed, _row(R.gradient, row))
        if trained:
            _bias_gradients(state, R, j, n_hidden, n_out, shared, summed, lr_hidden, lr_output, n_weights)
        if summed:
            state[R.step_loss + j] = state[R.step_loss + j] + E
        elif not online:
            _note_step(state, steps_not_below, R, j, E, tol, noted, diag, counts, k)


@njit(inline="always")
def _bias_gradients(state, R, j, n_hidden, n_out, shared, summed, lr_hidden, lr_output, n_weights):
    """A trained bias's gradient is its unit's δ (docs/model.md "Biases"); shared by a layer, the
    sum of its units' δ, the same step for every copy. Summed over the patterns per unit
    (``summed``), and over the layer when applied."""
    if summed or not shared:
        for u in range(n_hidden + n_out):
            delta = (
                state[_row(R.delta_h, u) + j] if u < n_hidden else state[_row(R.delta_o, u - n_hidden) + j]
            )
            rate = lr_hidden if u < n_hidden else lr_output
            _step_parameter(state, _row(R.biases, u), j, rate, delta, summed, _row(R.gradient, n_weights + u))
        return
    g_h = state[R.delta_h + j]
    for h in range(1, n_hidden):
        g_h = g_h + state[_row(R.delta_h, h) + j]
    g_o = state[R.delta_o + j]
    for o in range(1, n_out):
        g_o = g_o + state[_row(R.delta_o, o) + j]
    for u in range(n_hidden + n_out):
        rate, g = (lr_hidden, g_h) if u < n_hidden else (lr_output, g_o)
        _step_parameter(state, _row(R.biases, u), j, rate, g, False, R.biases)


@njit(inline="always")
def _apply_gradient(state, steps_not_below, R, net, flags, tol, noted, diag, counts, k):
    """Batch updates of several patterns: every parameter steps by its summed gradient, and the
    step's E (summed in the loss row) is noted."""
    biased, trained, shared, online = flags
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    n_weights = n_hidden * n_in + n_out * n_hidden
    n_units = n_hidden + n_out
    for lane in range(BLOCK):
        j = np.uint64(lane)
        lr_hidden, lr_output = state[R.lr_hidden + j], state[R.lr_output + j]
        for row in range(n_weights):
            rate = lr_hidden if row < n_hidden * n_in else lr_output
            g = state[_row(R.gradient, row) + j]
            _step_parameter(state, _row(R.weights, row), j, rate, g, False, R.gradient)
        if trained:
            if shared:
                g_h = state[_row(R.gradient, n_weights) + j]
                for h in range(1, n_hidden):
                    g_h = g_h + state[_row(R.gradient, n_weights + h) + j]
                g_o = state[_row(R.gradient, n_weights + n_hidden) + j]
                for o in range(1, n_out):
                    g_o = g_o + state[_row(R.gradient, n_weights + n_hidden + o) + j]
            for u in range(n_units):
                rate = lr_hidden if u < n_hidden else lr_output
                g = state[_row(R.gradient, n_weights + u) + j]
                if shared:
                    g = g_h if u < n_hidden else g_o
                _step_parameter(state, _row(R.biases, u), j, rate, g, False, R.gradient)
        _note_step(state, steps_not_below, R, j, state[R.step_loss + j], tol, noted, diag, counts, k)


@njit(inline="always")
def _block_final_loss(state, steps_not_below, data, tol, R, net, biased):
    """E at the final parameters: the last point of every loss curve."""
    n_in, n_out = net[0], net[2]
    for lane in range(BLOCK):
        state[R.step_loss + np.uint64(lane)] = 0
    for p in range(len(data) // (n_in + n_out)):
        x, t = _pattern(data, p, n_in, n_out)
        _forward(state, R, net, biased, x)
        _add_pattern_loss(state, R, t, n_out)
    for lane in range(BLOCK):
        j = np.uint64(lane)
        _note_loss(state, steps_not_below, R, j, state[R.step_loss + j], tol)


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
    # Unsigned offsets: a signed index gets a negative-index check that hides the unit stride from LLVM.
    R = StateRows(*(np.uint64(row * BLOCK) for row in rows))
    n_carried = carried_rows(variant)
    n_weights, n_units = variant.n_weights, variant.n_units
    n_in, n_hidden, n_out = variant.layers
    net = (
        n_in,
        n_hidden,
        n_out,
        ACTIVATIONS.index(variant.activation),
        ACTIVATIONS.index(variant.output_activation),
    )
    biased, trained = variant.with_biases, variant.train_biases
    flags = (biased, trained, variant.shared_biases, variant.steps == "online")
    # The step's structure is chosen here, so that the kernel inlines only the one it runs.
    take_step = {"one_pattern": _step_one_pattern, "batch": _step_batch, "online": _step_online}[
        variant.steps
    ]
    two_rates, diagnostics = variant.two_rates, variant.diagnostics
    v_rows, c_rows = trackers.VALUE_ROWS, trackers.COUNT_ROWS
    lr_hidden_row, lr_output_row, min_row, loss_row = rows.lr_hidden, rows.lr_output, rows.min, rows.loss
    bias_row = rows.biases

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
                        take_step(state, steps_not_below, data, tol, R, net, flags, False, diag, counts, k)
                        trackers.block_note_special(diag, counts, state, R.loss, R.min, k, steps, tol)
                    else:  # noted inside the step's last pass
                        take_step(state, steps_not_below, data, tol, R, net, flags, True, diag, counts, k)
                else:
                    take_step(state, steps_not_below, data, tol, R, net, flags, False, diag, counts, 0)
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
                _block_final_loss(state, steps_not_below, data, tol, R, net, biased)
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
