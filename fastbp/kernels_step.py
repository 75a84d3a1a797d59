"""One step of a block of runs, for every variant of the model: the passes the training kernel
(``kernels_train``) inlines, on a block's state (``compile_time.state_rows``).

A pattern's forward pass is two passes over the block's runs (the hidden layer, then the output
layer), its backward pass a third. Each pass reads and writes lane j only, and its loops over
units have compile-time trip counts (the network is a tuple of constants). The equations are
``model.py``'s, one unit or parameter at a time (``_hidden_unit`` … ``_bias_steps``).

Two loop orders. On one pattern (the exercise) a pass is one loop over the block's runs with
every unit inside: LLVM unrolls the units and vectorises that loop, and the state is read once
per pass. With several patterns (batch or online) each unit and parameter gets its own loop over
the runs: inside one loop over the runs a bigger network's unit loops are not unrolled (a
10-5-10 network's are not), and the loop over the runs then stays scalar. Each run meets the
same operations in the same order either way, so the bits do not depend on the order.

Two kinds of inlining. The passes (``step_*`` and the loops they call) are ``inline="always"``:
Numba copies them into the kernel before typing, so they see the network's constants and the
variant's flags, and the untaken branches are pruned. The per-unit and per-parameter equations
are plain ``@njit`` functions, typed once and inlined by LLVM (they are small; the compiled code
is the same). Numba-inlining those too copied their IR into every call site and made compiling
2-3 times slower (the exercise's kernel 23 → 9 CPU s, with diagnostics 69 → 30).
"""

import numpy as np
from numba import njit
from numba.np.unsafe.ndarray import to_fixed_tuple

from fastbp import kernels_diagnostics as trackers
from fastbp.compile_time import BLOCK
from fastbp.fastmath import fma
from fastbp.model import activate, half_square, unit_delta

# The biases enter the sums as they are, not as model.bias_addend(b) (which the step table
# uses): a sum's sign of zero, the one thing the addend changes, reaches nothing here but σ, and
# σ(+0) = σ(−0) = ½, so every output has the same bits either way (tests/test_biases.py checks
# them against the table's). Making the addend every step measured ~10 % slower for trained runs.

# A network is passed to the passes below as the tuple (n_in, n_hidden, n_out, hidden activation,
# output activation), and a variant's flags as (biased, trained, shared, online): compile-time
# constants, so the loops over units have constant trip counts.


@njit
def _row(first, k):
    """The offset of row ``first`` + k (unsigned, as every offset: see train_kernel)."""
    return first + np.uint64(k) * np.uint64(BLOCK)


@njit
def _pattern(data, p, n_in, n_out):
    """Pattern p's inputs and targets as two tuples: values, not memory, so that LLVM need not
    prove that the state's stores leave them alone (it cannot, and then does not vectorise)."""
    first = p * (n_in + n_out)
    x = to_fixed_tuple(data[first : first + n_in], n_in)
    t = to_fixed_tuple(data[first + n_in : first + n_in + n_out], n_out)
    return x, t


@njit
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


@njit
def _hidden_unit(state, R, net, biased, x, h, j):
    """Hidden unit h's activation at lane j, into its row."""
    n_in, hidden_kind = net[0], net[3]
    w = _row(R.weights, h * n_in)
    net_h = _unit_sum(state, x, j, w, n_in, R.a_h, _row(R.biases, h), biased, True)
    state[_row(R.a_h, h) + j] = activate(net_h, hidden_kind)


@njit
def _output_unit(state, R, net, biased, x, k, j):
    """Output unit k's activation at lane j, into its row (the hidden layer's are made)."""
    n_in, n_hidden, output_kind = net[0], net[1], net[4]
    w = _row(R.weights, n_hidden * n_in + k * n_hidden)
    net_o = _unit_sum(state, x, j, w, n_hidden, R.a_h, _row(R.biases, n_hidden + k), biased, False)
    state[_row(R.a_o, k) + j] = activate(net_o, output_kind)


@njit(inline="always")
def _forward_in_one_loop(state, R, net, biased, x):
    """The forward pass of the current pattern for every run of a block: the hidden units'
    activations, then the output units', into their rows; each layer one loop over the runs with
    its units inside (the exercise's order: "Two loop orders" in the module's docstring)."""
    n_hidden, n_out = net[1], net[2]
    for lane in range(BLOCK):
        for h in range(n_hidden):
            _hidden_unit(state, R, net, biased, x, h, np.uint64(lane))
    for lane in range(BLOCK):
        for k in range(n_out):
            _output_unit(state, R, net, biased, x, k, np.uint64(lane))


@njit(inline="always")
def _forward_per_unit(state, R, net, biased, x):
    """``_forward_in_one_loop`` as one loop over the runs per unit."""
    n_hidden, n_out = net[1], net[2]
    for h in range(n_hidden):
        for lane in range(BLOCK):
            _hidden_unit(state, R, net, biased, x, h, np.uint64(lane))
    for k in range(n_out):
        for lane in range(BLOCK):
            _output_unit(state, R, net, biased, x, k, np.uint64(lane))


@njit
def _pattern_loss(state, R, j, t, n_out):
    """E of the current pattern (targets ``t``) at lane j: Σ_k ½(t_k − a_k)², in output order."""
    E = half_square(t[0], state[R.a_o + j])
    for k in range(1, n_out):
        E = E + half_square(t[k], state[_row(R.a_o, k) + j])
    return E


@njit
def _step_parameter(state, row, j, rate, gradient, summed, gradient_row):
    """One parameter at lane j: it steps (w ← w − rate · g, fused), or, ``summed``, its gradient
    is added to the step's sum."""
    if summed:
        state[gradient_row + j] = state[gradient_row + j] + gradient
    else:
        state[row + j] = fma(-rate, gradient, state[row + j])


@njit(inline="always")
def step_one_pattern(state, steps_not_below, data, tol, R, net, flags, noted, diag, counts, k):
    """One step (docs/model.md "Update and steps") of every run of a block on one pattern (the
    exercise): the forward pass, then E, the gradient and the update in one backward pass.

    ``data`` holds the patterns (each one's inputs, then its targets); ``R`` the state's row
    offsets; ``net`` the network and ``flags`` the variant's; ``noted`` whether the diagnostics
    note step ``k`` here: all compile-time constants. A step takes three passes over the block,
    not one: it is one long dependency chain per run (exp, divide, exp, divide, backward), and a
    short loop body of independent runs lets the CPU keep many runs' chains in flight at once.
    Measured 1.35-1.5x faster than one fused pass, with the same operations per run and so the
    same bits. Each pass reads and writes lane j only.
    """
    x, t = _pattern(data, 0, net[0], net[2])
    _forward_in_one_loop(state, R, net, flags[0], x)
    _backward_in_one_loop(state, steps_not_below, R, net, flags, x, t, tol, noted, diag, counts, k)


@njit(inline="always")
def step_batch(state, steps_not_below, data, tol, R, net, flags, noted, diag, counts, k):
    """``step_one_pattern`` for several patterns: each one's forward and backward passes add its
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
        _forward_per_unit(state, R, net, flags[0], x)
        _backward_per_unit(state, steps_not_below, R, net, flags, x, t, True, tol, diag, counts, k)
    _apply_gradient(state, steps_not_below, R, net, flags, tol, noted, diag, counts, k)


@njit(inline="always")
def step_online(state, steps_not_below, data, tol, R, net, flags, noted, diag, counts, k):
    """One pass of online updates (one per pattern, in order). E_k is E at the step's starting
    parameters: a forward pass over every pattern comes first."""
    n_in, n_out = net[0], net[2]
    n_patterns = len(data) // (n_in + n_out)
    for lane in range(BLOCK):
        state[R.step_loss + np.uint64(lane)] = 0
    for p in range(n_patterns):
        x, t = _pattern(data, p, n_in, n_out)
        _forward_per_unit(state, R, net, flags[0], x)
        _add_pattern_loss(state, R, t, n_out)
    _block_note(state, steps_not_below, R, tol, noted, diag, counts, k)
    for p in range(n_patterns):
        x, t = _pattern(data, p, n_in, n_out)
        _forward_per_unit(state, R, net, flags[0], x)
        _backward_per_unit(state, steps_not_below, R, net, flags, x, t, False, tol, diag, counts, k)


@njit
def _n_summed(net, flags):
    """Gradients a batch step sums over its patterns: every weight's, and the trained biases'."""
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    return n_hidden * n_in + n_out * n_hidden + (n_hidden + n_out if flags[1] else 0)


@njit
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


@njit
def _note_step(state, steps_not_below, R, j, E, tol, noted, diag, counts, k):
    previous = state[R.loss + j]  # E_{k-1}, until _note_loss replaces it
    _note_loss(state, steps_not_below, R, j, E, tol)
    if noted:
        trackers.note(diag, counts, j, E, previous, state[R.min + j], np.int32(k), tol)


@njit(inline="always")
def _backward_in_one_loop(state, steps_not_below, R, net, flags, x, t, tol, noted, diag, counts, k):
    """The current pattern's backward pass for every run of a block (docs/model.md "Backward
    pass"), its gradient applied at once: the deltas, every weight's (and trained bias's) step,
    then E, noted as the step's (one pattern; online, the step noted it before). One loop over
    the runs with everything inside (the exercise's order); every delta is made before a weight
    moves."""
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    for lane in range(BLOCK):
        j = np.uint64(lane)
        for o in range(n_out):
            _output_delta(state, R, net, t, o, j)
        for h in range(n_hidden):
            _hidden_delta(state, R, net, h, j)
        for o in range(n_out):
            for h in range(n_hidden):
                _output_weight_step(state, R, net, o, h, False, j)
        for h in range(n_hidden):
            for i in range(n_in):
                _hidden_weight_step(state, R, net, x, h, i, False, j)
        _bias_steps(state, R, net, flags, False, j)
        _pattern_done(state, steps_not_below, R, net, t, False, tol, noted, diag, counts, k, j)


@njit(inline="always")
def _backward_per_unit(state, steps_not_below, R, net, flags, x, t, summed, tol, diag, counts, k):
    """``_backward_in_one_loop`` as one loop over the runs per unit and per parameter, the
    gradient applied at once (online) or, ``summed``, added to the step's sums, and E to the
    step's (batch)."""
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    for o in range(n_out):
        for lane in range(BLOCK):
            _output_delta(state, R, net, t, o, np.uint64(lane))
    for h in range(n_hidden):
        for lane in range(BLOCK):
            _hidden_delta(state, R, net, h, np.uint64(lane))
    for o in range(n_out):
        for h in range(n_hidden):
            for lane in range(BLOCK):
                _output_weight_step(state, R, net, o, h, summed, np.uint64(lane))
    for h in range(n_hidden):
        for i in range(n_in):
            for lane in range(BLOCK):
                _hidden_weight_step(state, R, net, x, h, i, summed, np.uint64(lane))
    for lane in range(BLOCK):
        _bias_steps(state, R, net, flags, summed, np.uint64(lane))
    if summed:
        for lane in range(BLOCK):
            j = np.uint64(lane)
            _pattern_done(state, steps_not_below, R, net, t, True, tol, False, diag, counts, k, j)


@njit
def _output_delta(state, R, net, t, o, j):
    """δ of output unit o at lane j: (a − t) times its activation's slope."""
    a = state[_row(R.a_o, o) + j]
    state[_row(R.delta_o, o) + j] = unit_delta(a - t[o], a, net[4])


@njit
def _hidden_delta(state, R, net, h, j):
    """δ_h from ∂E/∂a_h: the output deltas sent back through the output weights (last first)."""
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    last = n_out - 1
    w_last = _row(R.weights, n_hidden * n_in + last * n_hidden + h)
    error = state[_row(R.delta_o, last) + j] * state[w_last + j]
    for m in range(last):
        o = last - 1 - m
        w = _row(R.weights, n_hidden * n_in + o * n_hidden + h)
        error = fma(state[_row(R.delta_o, o) + j], state[w + j], error)
    state[_row(R.delta_h, h) + j] = unit_delta(error, state[_row(R.a_h, h) + j], net[3])


@njit
def _output_weight_step(state, R, net, o, h, summed, j):
    """The weight from hidden unit h to output unit o at lane j: its gradient δ_o · a_h."""
    n_in, n_hidden = net[0], net[1]
    row = n_hidden * n_in + o * n_hidden + h
    g = state[_row(R.delta_o, o) + j] * state[_row(R.a_h, h) + j]
    _step_parameter(state, _row(R.weights, row), j, state[R.lr_output + j], g, summed, _row(R.gradient, row))


@njit
def _hidden_weight_step(state, R, net, x, h, i, summed, j):
    """The weight from input i to hidden unit h at lane j: its gradient δ_h · x_i."""
    row = h * net[0] + i
    g = state[_row(R.delta_h, h) + j] * x[i]
    _step_parameter(state, _row(R.weights, row), j, state[R.lr_hidden + j], g, summed, _row(R.gradient, row))


@njit(inline="always")
def _pattern_done(state, steps_not_below, R, net, t, summed, tol, noted, diag, counts, k, j):
    """The pattern's E at lane j: added to the step's (``summed``), or noted as the step's."""
    E = _pattern_loss(state, R, j, t, net[2])
    if summed:
        state[R.step_loss + j] = state[R.step_loss + j] + E
    else:
        _note_step(state, steps_not_below, R, j, E, tol, noted, diag, counts, k)


@njit(inline="always")
def _bias_steps(state, R, net, flags, summed, j):
    """A trained bias's gradient is its unit's δ (docs/model.md "Biases"); shared by a layer, the
    sum of its units' δ, the same step for every copy. Summed over the patterns per unit
    (``summed``), and over the layer when applied."""
    biased, trained, shared, online = flags
    if not trained:
        return
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    n_weights = n_hidden * n_in + n_out * n_hidden
    lr_hidden, lr_output = state[R.lr_hidden + j], state[R.lr_output + j]
    if summed or not shared:
        for u in range(n_hidden + n_out):
            delta = (
                state[_row(R.delta_h, u) + j] if u < n_hidden else state[_row(R.delta_o, u - n_hidden) + j]
            )
            rate = lr_hidden if u < n_hidden else lr_output
            _step_parameter(state, _row(R.biases, u), j, rate, delta, summed, _row(R.gradient, n_weights + u))
        return
    g_h = _layer_sum(state, R.delta_h, n_hidden, j)
    g_o = _layer_sum(state, R.delta_o, n_out, j)
    for u in range(n_hidden + n_out):
        rate, g = (lr_hidden, g_h) if u < n_hidden else (lr_output, g_o)
        _step_parameter(state, _row(R.biases, u), j, rate, g, False, R.biases)


@njit
def _layer_sum(state, first, n_units, j):
    """Σ of rows first … first + n_units − 1 at lane j, left to right: a shared bias's gradient
    (its layer's deltas, or their sums over the patterns)."""
    total = state[first + j]
    for u in range(1, n_units):
        total = total + state[_row(first, u) + j]
    return total


@njit(inline="always")
def _apply_gradient(state, steps_not_below, R, net, flags, tol, noted, diag, counts, k):
    """Batch updates of several patterns: every parameter steps by its summed gradient, and the
    step's E (summed in the loss row) is noted. One pass over the block per parameter."""
    biased, trained, shared, online = flags
    n_in, n_hidden, n_out = net[0], net[1], net[2]
    n_weights = n_hidden * n_in + n_out * n_hidden
    for row in range(n_weights):
        rate_row = R.lr_hidden if row < n_hidden * n_in else R.lr_output
        for lane in range(BLOCK):
            j = np.uint64(lane)
            g = state[_row(R.gradient, row) + j]
            _step_parameter(state, _row(R.weights, row), j, state[rate_row + j], g, False, R.gradient)
    if trained:
        for u in range(n_hidden + n_out):
            rate_row = R.lr_hidden if u < n_hidden else R.lr_output
            # Shared: the layer's summed gradients, summed over the layer.
            first, n_units = (n_weights, n_hidden) if u < n_hidden else (n_weights + n_hidden, n_out)
            for lane in range(BLOCK):
                j = np.uint64(lane)
                if shared:
                    g = _layer_sum(state, _row(R.gradient, first), n_units, j)
                else:
                    g = state[_row(R.gradient, n_weights + u) + j]
                _step_parameter(state, _row(R.biases, u), j, state[rate_row + j], g, False, R.gradient)
    for lane in range(BLOCK):
        j = np.uint64(lane)
        _note_step(state, steps_not_below, R, j, state[R.step_loss + j], tol, noted, diag, counts, k)


@njit(inline="always")
def block_final_loss(state, steps_not_below, data, tol, R, net, biased):
    """E at the final parameters: the last point of every loss curve."""
    n_in, n_out = net[0], net[2]
    for lane in range(BLOCK):
        state[R.step_loss + np.uint64(lane)] = 0
    for p in range(len(data) // (n_in + n_out)):
        x, t = _pattern(data, p, n_in, n_out)
        _forward_per_unit(state, R, net, biased, x)
        _add_pattern_loss(state, R, t, n_out)
    for lane in range(BLOCK):
        j = np.uint64(lane)
        _note_loss(state, steps_not_below, R, j, state[R.step_loss + j], tol)


@njit
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
