"""The grid of a sweep: which (rates, init block, index) a run number is, and its starting point.

Run numbering (stable, part of the dataset contract): rates are the outer loop, initialisations
the inner one, ``run = rate_index * n_inits + init_number``, where init_number counts the runs
of the ``[[init]]`` blocks in spec order; with per-layer rates
``rate_index = hidden_index * len(lr_output) + output_index``; a ``grid`` block's index is
``iy * x.num + ix``. A run's initial weights and biases depend only on (seed, block, index)
(for a given network: ``fastbp.inits``).
"""

import numpy as np

from fastbp.inits import KINDS


def run_layout(spec, first_run, stop_run):
    """For runs [first_run, stop_run): run numbers, lr values (the hidden layer's with per-layer
    rates), init block numbers, indices in the block.

    Run numbering: ``run = rate_index * n_inits + init_number``; with per-layer rates
    ``rate_index = hidden_index * len(lr_output) + output_index`` (hidden outer); a grid block's
    index is ``iy * x.num + ix`` (x fastest).
    """
    runs = np.arange(first_run, stop_run, dtype=np.int64)
    n_inits = spec.n_inits
    rate_index, init_number = np.divmod(runs, n_inits)
    block_starts = np.cumsum([0] + [b.count for b in spec.inits], dtype=np.int64)
    block = np.searchsorted(block_starts, init_number, side="right") - 1
    index = init_number - block_starts[block]
    hidden_index = rate_index // len(spec.lr_output) if spec.per_layer else rate_index
    lrs = np.asarray(spec.lrs, dtype=np.float64)[hidden_index]
    return runs, lrs, block.astype(np.int32), index


def output_rates(spec, runs):
    """The output layer's rate of each run (``lr`` itself for a single-rate sweep)."""
    rate_index = np.asarray(runs, dtype=np.int64) // spec.n_inits
    if not spec.per_layer:
        return np.asarray(spec.lrs, dtype=np.float64)[rate_index]
    return np.asarray(spec.lr_output, dtype=np.float64)[rate_index % len(spec.lr_output)]


def initial_biases(spec, block_numbers, indices):
    """(H + O, R) float64 initial b_h1 … b_hH, b_o1 … b_oO: drawn by the runs' ``[[init]]``
    blocks (``biases = "trained"``), or the network's given ones with a grid's bias axis
    applied; None without biases."""
    network = spec.network
    if spec.drawn_biases:
        rows = np.arange(network.n_weights, network.n_weights + network.n_biases)
        return _initial_values(spec, block_numbers, indices, rows)
    if spec.biases is None:
        return None
    biases = np.repeat(np.array(spec.biases, dtype=np.float64)[:, None], len(indices), axis=1)
    for number, block in enumerate(spec.inits):
        kind = KINDS[block.kind]
        mask = block_numbers == number
        if kind.biases is not None and mask.any():
            biases[:, mask] = kind.biases(block.params, indices[mask], biases[:, mask], network)
    return biases


def grid_coordinates(spec, block_numbers, indices):
    """(x, y) float64 arrays: each run's coordinates on its block's plane, NaN outside grid blocks."""
    x = np.full(len(indices), np.nan)
    y = np.full(len(indices), np.nan)
    for number, block in enumerate(spec.inits):
        kind = KINDS[block.kind]
        mask = block_numbers == number
        if kind.coordinates is not None and mask.any():
            x[mask], y[mask] = kind.coordinates(block.params, indices[mask])
    return x, y


def has_grid(spec):
    return any(KINDS[block.kind].coordinates is not None for block in spec.inits)


def initial_weights(spec, block_numbers, indices):
    """(n_weights, R) float64 initial weights, in the network's order (w1 … w8 for the exercise),
    for runs given by their block numbers and indices."""
    return _initial_values(spec, block_numbers, indices, np.arange(spec.network.n_weights))


def _initial_values(spec, block_numbers, indices, rows):
    """(len(rows), R): the runs' initial values of the drawn parameters ``rows``."""
    values = np.empty((len(rows), len(indices)), dtype=np.float64)
    for number, block in enumerate(spec.inits):
        mask = block_numbers == number
        if mask.any():
            kind = KINDS[block.kind]
            values[:, mask] = kind.values(
                spec.seed, number, block.params, indices[mask], spec.parameters, rows
            )
    return values
