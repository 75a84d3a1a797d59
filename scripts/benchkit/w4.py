"""W4 (issue 22): the 10-5-10 encoder, trained biases, batch updates, float64, 64 rates × 1,024
starts × 500 steps, nothing recorded. fastbp's kernel as one more implementation beside the peers
of scripts/peers_w4.py (same problem arrays, same result: final loss and parameters)."""

import numpy as np


def fastbp_w4(problem, steps=None, threads=None):
    """fastbp.kernels.train on ``problem`` (a peers_w4.W4Problem), warm: a ``W4Result``."""
    import numba
    from peers_w4 import W4Result, flat_params, split_params

    from fastbp import kernels

    steps = problem.steps if steps is None else steps
    n_in, n_hidden, n_out = layers = (problem.W_h.shape[2], problem.W_h.shape[1], problem.W_o.shape[1])
    flat = flat_params(problem.W_h, problem.W_o, problem.b_h, problem.b_o)  # (R, parameters)
    n_weights = n_hidden * n_in + n_out * n_hidden
    w_init = np.ascontiguousarray(flat[:, :n_weights].T)
    biases = np.ascontiguousarray(flat[:, n_weights:].T)
    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        result = kernels.train(
            w_init,
            problem.lr,
            problem.inputs,
            problem.targets,
            steps,
            layers=layers,
            biases=biases,
            train_biases=True,
        )
    finally:
        numba.set_num_threads(previous)
    final = np.vstack([result.weights, result.biases]).T
    return W4Result(result.final_loss, *split_params(final, layers))
