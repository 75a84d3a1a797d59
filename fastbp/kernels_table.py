"""The step table's kernels (docs/model.md "The step table"): one run, one row per step.

``step_table_rows`` streams the table in chunks, carrying the weights (and biases) from one
chunk to the next; ``step_table_array`` is the whole table. Both are the package's API as
``kernels.step_table_rows`` and ``kernels.step_table_array``. One kernel for every variant (the
options are run-time flags: a table is one run, so they cost nothing worth a compile each;
``cache=True``, compiled on first use, per dtype). It calls the same model.py functions as the
training kernel, so a table's rows are the bits of a trained run's steps.

Any other network (``network_table_rows``): a kernel per training ``Variant`` that takes the
training kernel's own step (``kernels_step``) on one block whose lanes all hold the run, and
reads each row from lane 0: the equations are written once, for training.
"""

import functools

import numpy as np
from numba import njit

from fastbp import _numba_cache  # noqa: F401  (cache key includes model.py, fastmath.py, kernels_step.py)
from fastbp.compile_time import BLOCK, Variant, state_rows, step_constants
from fastbp.conventions import table_columns
from fastbp.fastmath import like
from fastbp.kernels_step import step_batch, step_online
from fastbp.model import (
    backward_with_deltas,
    bias_addend,
    bias_gradients,
    forward_biased,
    hidden_layer,
    loss,
    output_layer,
    update_biases,
    update_per_layer,
)


def step_table_rows(
    lr,
    steps,
    inputs,
    targets,
    weights,
    dtype=np.float64,
    chunk_rows=65536,
    *,
    lr_output=None,
    biases=None,
    train_biases=False,
    shared_biases=False,
):
    """The step table (docs/model.md) as consecutive (≤ chunk_rows, columns) arrays: row k = weights before update k.

    A generator, so a long table never has to be held whole: each chunk is a new array, and
    the weights (and biases) after a chunk's last update carry into the next, so the rows are
    the same bits whatever ``chunk_rows`` is. ``weights`` is copied, never written.
    The columns are ``conventions.table_columns(biases is not None, train_biases)``: the 31,
    then with ``biases`` (b_h1, b_h2, b_o1, b_o2) their values, with ``train_biases`` their
    gradients; ``lr_output`` (then ``lr`` is the hidden layer's rate) and ``shared_biases`` as
    in ``train``.
    """
    dtype = np.dtype(dtype)
    w = np.array(weights, dtype=dtype)  # a copy: the kernel writes the carried weights into it
    i1, i2 = (dtype.type(v) for v in inputs)
    t1, t2 = (dtype.type(v) for v in targets)
    lr = dtype.type(lr)
    Variant.of(biases=biases is not None, train_biases=train_biases)  # refuses trained biases without biases
    b = np.array(() if biases is None else biases, dtype=dtype)  # a copy, carried like w
    lr_output = lr if lr_output is None else dtype.type(lr_output)
    n_columns = len(table_columns(biases is not None, train_biases))
    for first in range(0, steps, chunk_rows):
        out = np.empty((min(chunk_rows, steps - first), n_columns), dtype=dtype)
        _step_table_kernel(i1, i2, t1, t2, w, b, lr, lr_output, train_biases, shared_biases, out)
        yield out


def step_table_array(lr, steps, inputs, targets, weights, dtype=np.float64, **options):
    """(steps, columns) array of the step table (docs/model.md): row k = weights before update k.

    ``options``: ``step_table_rows``'s keywords (lr_output, biases, train_biases, shared_biases).
    """
    dtype = np.dtype(dtype)
    chunks = list(step_table_rows(lr, steps, inputs, targets, weights, dtype, max(1, steps), **options))
    n_columns = len(table_columns(options.get("biases") is not None, options.get("train_biases", False)))
    return chunks[0] if chunks else np.empty((0, n_columns), dtype=dtype)


@njit(error_model="numpy", cache=True)
def _step_table_kernel(
    i1, i2, t1, t2, weights, biases, lr_hidden, lr_output, train_biases, shared_biases, out
):
    """Rows of the step table from ``weights`` on (columns 0…30; with biases 31…34: b_h1 … b_o2, the
    values used at that row; with trained biases 35…38: dE_db_h1 … dE_db_o2, each unit's own δ);
    ``biases`` is empty for none, and ``lr_output`` equals ``lr_hidden`` for one rate (the same
    operations as ``model.update``). Leaves the weights and biases after the last row's update
    in ``weights`` and ``biases``."""
    w1, w2, w3, w4 = weights[0], weights[1], weights[2], weights[3]
    w5, w6, w7, w8 = weights[4], weights[5], weights[6], weights[7]
    with_biases = biases.shape[0] == 4
    b_h1 = b_h2 = b_o1 = b_o2 = like(w1, 0.0)
    if with_biases:
        b_h1, b_h2, b_o1, b_o2 = biases[0], biases[1], biases[2], biases[3]
    for k in range(out.shape[0]):
        if with_biases:
            c_h1, c_h2, c_o1, c_o2 = (
                bias_addend(b_h1),
                bias_addend(b_h2),
                bias_addend(b_o1),
                bias_addend(b_o2),
            )
            h1, a_h1, h2, a_h2, o1, a_o1, o2, a_o2 = forward_biased(
                i1, i2, w1, w2, w3, w4, w5, w6, w7, w8, c_h1, c_h2, c_o1, c_o2
            )
        else:
            h1, a_h1, h2, a_h2 = hidden_layer(i1, i2, w1, w2, w3, w4)
            o1, a_o1, o2, a_o2 = output_layer(w5, w6, w7, w8, a_h1, a_h2)
        E1, E2, E_total = loss(t1, t2, a_o1, a_o2)
        g = backward_with_deltas(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2)
        row = (t1, t2, i1, i2, w1, w2, w3, w4, h1, a_h1, h2, a_h2, w5, w6, w7, w8, o1, a_o1, o2, a_o2)
        for c in range(20):
            out[k, c] = row[c]
        out[k, 20], out[k, 21], out[k, 22] = E1, E2, E_total
        for c in range(8):
            out[k, 23 + c] = g[c]
        if with_biases:
            out[k, 31], out[k, 32], out[k, 33], out[k, 34] = b_h1, b_h2, b_o1, b_o2
        if train_biases:
            out[k, 35], out[k, 36], out[k, 37], out[k, 38] = g[8], g[9], g[10], g[11]
            gb_h1, gb_h2, gb_o1, gb_o2 = bias_gradients(g[8], g[9], g[10], g[11], shared_biases)
            b_h1, b_h2, b_o1, b_o2 = update_biases(
                b_h1, b_h2, b_o1, b_o2, gb_h1, gb_h2, gb_o1, gb_o2, lr_hidden, lr_output
            )
        g1, g2, g3, g4, g5, g6, g7, g8 = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
        w1, w2, w3, w4, w5, w6, w7, w8 = update_per_layer(
            w1, w2, w3, w4, w5, w6, w7, w8, g1, g2, g3, g4, g5, g6, g7, g8, lr_hidden, lr_output
        )
    weights[0], weights[1], weights[2], weights[3] = w1, w2, w3, w4
    weights[4], weights[5], weights[6], weights[7] = w5, w6, w7, w8
    if with_biases:
        biases[0], biases[1], biases[2], biases[3] = b_h1, b_h2, b_o1, b_o2


# ---------------------------------------------------------------------------------------------
# Any other network (docs/table.md "Any small network"): the training kernel's own step


def network_table_rows(lr, steps, network, weights, dtype=np.float64, chunk_rows=65536, **options):
    """A network's step table (docs/table.md "Any small network") as consecutive (≤ chunk_rows,
    columns) arrays: row k holds the parameters before update k (the weights in the documented
    order, then the biases when it has them), E_total there, and with batch updates the gradient
    of every trained parameter (summed over the patterns).

    ``network``: a ``network.Network``; ``weights``: its weights in the documented order;
    ``options``: ``lr_output``, ``biases`` (the H + O biases per unit, or None), ``train_biases``,
    ``shared_biases``, as in ``kernels.train``. A generator; the parameters after a chunk carry
    into the next, so the rows are the same bits whatever ``chunk_rows`` is.
    """
    dtype = np.dtype(dtype)
    biases, train = options.get("biases"), options.get("train_biases", False)
    variant = _table_variant(network, biases is not None, train, options.get("shared_biases", False))
    w = np.array(weights, dtype=dtype)  # copies, carried from one chunk to the next
    b = np.array(() if biases is None else biases, dtype=dtype)
    patterns = [tuple(x) + tuple(t) for x, t in zip(network.inputs, network.targets, strict=True)]
    data = np.array(patterns, dtype=dtype).ravel()
    lr_output = options.get("lr_output")
    rates = dtype.type(lr), dtype.type(lr if lr_output is None else lr_output)
    kernel = network_table_kernel(variant)
    for first in range(0, steps, chunk_rows):
        out = np.empty((min(chunk_rows, steps - first), n_table_columns(variant)), dtype=dtype)
        kernel(w, b, *rates, data, out)
        yield out


def _table_variant(network, biased, train, shared):
    """The training variant whose step the table takes: two rates (equal ones give the one-rate
    bits: the output rate is read from its own row either way) and several patterns' steps, so
    that a batch step leaves its summed gradient in the state (one pattern's batch step is the
    exercise's step, the same operations)."""
    return Variant.of(
        two_rates=True,
        biases=biased,
        train_biases=train,
        shared_biases=shared,
        layers=network.layers,
        activation=network.activation,
        output_activation=network.output_activation,
        patterns=2,
        update=network.update,
    )


def n_table_columns(variant):
    """The parameters (with the biases when it has them), E_total, and with batch updates the
    gradients of the weights and the trained biases."""
    n_values = variant.n_weights + (variant.n_units if variant.with_biases else 0)
    gradients = variant.n_weights + (variant.n_units if variant.train_biases else 0)
    return n_values + 1 + (gradients if variant.steps == "batch" else 0)


@functools.cache
def network_table_kernel(variant):
    """The compiled table kernel of a several-pattern ``variant`` (``_table_variant``): one block,
    every lane the same run, stepped by ``kernels_step``'s ``step_batch`` or ``step_online``,
    the training kernel's own step. Row k is read from lane 0: the parameters before the step,
    then E at them (the step's loss row) and, batch, the summed gradient rows. The closure holds
    constants only (no dispatcher: ``kernels_train``)."""
    rows, n_rows = state_rows(variant)
    R, net, flags = step_constants(variant)
    biased, trained, online = variant.with_biases, variant.train_biases, variant.steps == "online"
    n_weights, n_units = variant.n_weights, variant.n_units
    n_values = n_weights + (n_units if biased else 0)
    n_gradients = 0 if online else n_weights + (n_units if trained else 0)
    lr_hidden_row, lr_output_row, bias_row = rows.lr_hidden, rows.lr_output, rows.biases
    loss_row, min_row, gradient_row = rows.loss, rows.min, rows.gradient

    @njit(error_model="numpy", cache=True)
    def kernel(weights, biases, lr_hidden, lr_output, data, out):
        state = np.zeros(n_rows * BLOCK, dtype=weights.dtype)
        steps_not_below = np.zeros(BLOCK, dtype=np.int32)
        diag = np.empty(0, dtype=weights.dtype)
        counts = np.empty(0, dtype=np.int32)
        tol = weights.dtype.type(0)
        for j in range(BLOCK):
            state[lr_hidden_row * BLOCK + j] = lr_hidden
            state[lr_output_row * BLOCK + j] = lr_output
            state[min_row * BLOCK + j] = np.inf
            for row in range(n_weights):
                state[row * BLOCK + j] = weights[row]
            if biased:
                for b in range(n_units):
                    state[(bias_row + b) * BLOCK + j] = biases[b]
        for k in range(out.shape[0]):
            for row in range(n_weights):
                out[k, row] = state[row * BLOCK]
            if biased:
                for b in range(n_units):
                    out[k, n_weights + b] = state[(bias_row + b) * BLOCK]
            if online:
                step_online(state, steps_not_below, data, tol, R, net, flags, False, diag, counts, 0)
            else:
                step_batch(state, steps_not_below, data, tol, R, net, flags, False, diag, counts, 0)
            out[k, n_values] = state[loss_row * BLOCK]
            for g in range(n_gradients):
                out[k, n_values + 1 + g] = state[(gradient_row + g) * BLOCK]
        for row in range(n_weights):
            weights[row] = state[row * BLOCK]
        if biased:
            for b in range(n_units):
                biases[b] = state[(bias_row + b) * BLOCK]

    return kernel
