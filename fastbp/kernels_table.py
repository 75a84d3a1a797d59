"""The step table's kernels (docs/model.md "The step table"): one run, one row per step.

``step_table_rows`` streams the table in chunks, carrying the weights (and biases) from one
chunk to the next; ``step_table_array`` is the whole table. Both are the package's API as
``kernels.step_table_rows`` and ``kernels.step_table_array``. One kernel for every variant (the
options are run-time flags: a table is one run, so they cost nothing worth a compile each;
``cache=True``, compiled on first use, per dtype). It calls the same model.py functions as the
training kernel, so a table's rows are the bits of a trained run's steps.
"""

import numpy as np
from numba import njit

from fastbp import _numba_cache  # noqa: F401  (cache key includes model.py and fastmath.py)
from fastbp.compile_time import Variant
from fastbp.conventions import table_columns
from fastbp.fastmath import like
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
