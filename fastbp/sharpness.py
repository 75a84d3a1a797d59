"""Sharpness and stability (docs/model.md "Sharpness and stability"): the exact Hessian of E_total.

Plain numpy in float64, vectorised over runs R (runs on the first axis of every result). The
second derivatives are closed-form, in the model's names; each block of H is written beside the
first derivative it differentiates in docs/model.md. Finite differences are only the tests' check.

Parameter order (n of them): w1 … w8, then, when biases are trained, b_h1, b_h2, b_o1, b_o2
(per unit, n = 12) or b_h, b_o (shared per layer, n = 10); otherwise n = 8.

Writing x̃ = (i1, i2, 1) for what a hidden unit sees and ã = (a_h1, a_h2, 1) for what an output
unit sees (the 1 is a bias's input), every trained parameter is one entry of a layer's matrix:
hidden W[j, m] with rows (w1, w2, b_h1) and (w3, w4, b_h2), m indexing x̃; output V[k, l] with
rows (w5, w6, b_o1) and (w7, w8, b_o2), l indexing ã. A shared bias moves both units of its
layer, so its rows and columns are the sums of its units' (H_shared = Jᵀ H_per_unit J, J the 0/1
map of the parameters).
"""

import numpy as np

from fastbp.errors import SpecError

# Position in the per-unit parameter order of hidden W[j, m] and output V[k, l], in the order
# w1 w2 w3 w4 b_h1 b_h2 and w5 w6 w7 w8 b_o1 b_o2 (biases last: they are only there when trained).
_HIDDEN = ((0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1), (8, 0, 2), (9, 1, 2))  # (position, j, m)
_OUTPUT = ((4, 0, 0), (5, 0, 1), (6, 1, 0), (7, 1, 1), (10, 0, 2), (11, 1, 2))  # (position, k, l)

#: Layer of each parameter (0 hidden, 1 output) for n = 8, 10 (shared biases), 12 (per unit).
LAYERS = {
    8: (0, 0, 0, 0, 1, 1, 1, 1),
    10: (0, 0, 0, 0, 1, 1, 1, 1, 0, 1),
    12: (0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1),
}


def _per_run(field, value, rows, n_runs):
    """``value`` as a (rows, R) float64 array: a length-``rows`` sequence is the same for every run."""
    array = np.asarray(value, dtype=np.float64)
    if array.shape == (rows,):
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != rows or array.shape[1] not in (1, n_runs):
        raise SpecError(field, f"an array of shape {array.shape}", f"shape ({rows},) or ({rows}, {n_runs})")
    return np.broadcast_to(array, (rows, n_runs))


def _sigmoid(x):
    """σ(x) = 1 / (1 + exp(−x)) (numpy's exp; inf at large −x gives σ = 0, as the kernels do)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def hessian(inputs, targets, weights, biases=None, train_biases=False, shared_biases=False):
    """(R, n, n) float64: the exact Hessian of E_total in the trained parameters of each run.

    inputs, targets: (2,) for every run, or (2, R). weights: (8, R) rows w1 … w8.
    biases: (4, R) or (4,) rows b_h1, b_h2, b_o1, b_o2 (a shared bias as two equal rows), or None for
    the network without biases. Fixed biases (``train_biases=False``) enter the forward pass only.
    ``shared_biases`` (trained ones): one parameter b_h and one b_o, each the sum of its two units.
    The result is exactly symmetric (the upper triangle is mirrored).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != 8:
        raise SpecError("weights", f"an array of shape {weights.shape}", "shape (8, R): rows w1 … w8")
    R = weights.shape[1]
    i1, i2 = _per_run("inputs", inputs, 2, R)
    t = _per_run("targets", targets, 2, R)
    if biases is None:
        if train_biases:
            raise SpecError("train_biases", train_biases, "False when biases is None")
        b = np.zeros((4, R))
    else:
        b = _per_run("biases", biases, 4, R)
        if shared_biases and train_biases and not (np.array_equal(b[0], b[1]) and np.array_equal(b[2], b[3])):
            raise SpecError("biases", "rows that differ", "b_h1 = b_h2 and b_o1 = b_o2 when shared")
    # Runs last in every intermediate (long inner loops); W[j, m] and V[k, j] as in the module doc.
    W, V = weights[:4].reshape(2, 2, R), weights[4:].reshape(2, 2, R)

    # Forward pass (docs/model.md "Forward pass and loss", "Biases"); (2, R) each.
    a_h = _sigmoid(W[:, 0] * i1 + W[:, 1] * i2 + b[:2])
    a_o = _sigmoid(V[:, 0] * a_h[0] + V[:, 1] * a_h[1] + b[2:])
    x = np.stack([i1, i2, np.ones(R)])  # (3, R): x̃ = (i1, i2, 1)
    a = np.concatenate([a_h, np.ones((1, R))])  # (3, R): ã = (a_h1, a_h2, 1)

    # Slopes: σ' = a(1 − a), σ'' = σ'(1 − 2a).
    s_h, s_o = a_h * (1 - a_h), a_o * (1 - a_o)
    ss_h, ss_o = s_h * (1 - 2 * a_h), s_o * (1 - 2 * a_o)
    # Output units: δ_o = ∂E/∂o = (a_o − t)σ'(o); γ_o = ∂δ_o/∂o = σ'(o)² + (a_o − t)σ''(o).
    delta_o = (a_o - t) * s_o
    gamma_o = s_o * s_o + (a_o - t) * ss_o
    # Hidden units: dE_da_h[j] = Σ_k δ_ok V[k, j], and the curvature in (h_j, h_j'):
    # A[j, j'] = σ'(h_j) σ'(h_j') Σ_k γ_ok V[k, j] V[k, j'] + [j = j'] dE_da_h[j] σ''(h_j).
    dE_da_h = delta_o[0] * V[0] + delta_o[1] * V[1]
    A = s_h[:, None] * s_h[None, :] * (gamma_o[:, None, None] * V[:, :, None] * V[:, None, :]).sum(axis=0)
    A[[0, 1], [0, 1]] += dE_da_h * ss_h

    per_layer = 6 if train_biases else 4  # trained parameters in each layer
    pos_h, j, m = (np.array(c) for c in zip(*_HIDDEN[:per_layer]))
    pos_o, k, l = (np.array(c) for c in zip(*_OUTPUT[:per_layer]))
    X, S = x[m], a[l]  # (per_layer, R): the input each hidden / output parameter multiplies
    H = np.empty((2 * per_layer, 2 * per_layer, R))  # positions pos_h, pos_o: the per-unit parameter order
    # ∂²E/∂W[j,m]∂W[j',m'] = x̃_m x̃_m' A[j, j']
    H[pos_h[:, None], pos_h[None, :]] = X[:, None] * X[None, :] * A[j[:, None], j[None, :]]
    # ∂²E/∂V[k,l]∂V[k',l'] = [k = k'] γ_ok ã_l ã_l'
    same_k = (k[:, None] == k[None, :])[:, :, None]
    H[pos_o[:, None], pos_o[None, :]] = same_k * gamma_o[k][:, None] * S[:, None] * S[None, :]
    # ∂²E/∂V[k,l]∂W[j,m] = (γ_ok V[k, j] ã_l + δ_ok [l = j]) σ'(h_j) x̃_m
    l_is_j = (l[:, None] == j[None, :])[:, :, None]
    OH = gamma_o[k][:, None] * V[k[:, None], j[None, :]] * S[:, None] + delta_o[k][:, None] * l_is_j
    OH = OH * (s_h[j] * X)[None, :]
    H[pos_o[:, None], pos_h[None, :]] = OH
    H[pos_h[:, None], pos_o[None, :]] = OH.transpose(1, 0, 2)
    if train_biases and shared_biases:
        H = _share(_share(H).transpose(1, 0, 2))  # Jᵀ H J: rows, then columns
    upper = np.triu_indices(H.shape[0], 1)
    H[upper[1], upper[0]] = H[upper]  # exactly symmetric (rounding differs between the triangles)
    return np.ascontiguousarray(H.transpose(2, 0, 1))


def _share(H):
    """(12, C, R) → (10, C, R): rows b_h1 + b_h2 → b_h and b_o1 + b_o2 → b_o (a shared bias moves both)."""
    return np.concatenate([H[:8], H[8:10].sum(axis=0, keepdims=True), H[10:].sum(axis=0, keepdims=True)])


def _largest_eigenvalue(M):
    """(R,) top eigenvalue of each symmetric (n, n) matrix; NaN where M has a non-finite entry."""
    top = np.full(M.shape[0], np.nan)
    finite = np.isfinite(M).all(axis=(1, 2))
    if finite.any():
        top[finite] = np.linalg.eigvalsh(M[finite])[:, -1]
    return top


def sharpness(H):
    """(R,) λ_max: the largest eigenvalue of each symmetric H (R, n, n); NaN for a non-finite H."""
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 3 or H.shape[1] != H.shape[2]:
        raise SpecError("H", f"an array of shape {H.shape}", "shape (R, n, n)")
    return _largest_eigenvalue(H)


def _rates(field, value, n_runs):
    rates = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_runs,))
    bad = ~(np.isfinite(rates) & (rates > 0))
    if bad.any():
        raise SpecError(field, float(rates[bad][0]), "finite numbers > 0 (one per run, or one for all)")
    return rates


def stability(H, lr_hidden, lr_output):
    """(R,) the largest eigenvalue of P·H, P = diag(each parameter's rate): the number the 2/lr rule
    compares with 2 (docs/model.md "Sharpness and stability").

    H: (R, n, n) from ``hessian`` (n = 8, 10 or 12: ``LAYERS`` says which rate each parameter
    takes). lr_hidden, lr_output: (R,) or scalars. Computed as the top eigenvalue of the
    symmetric P^½ H P^½, which is similar to P·H; with equal rates it is lr · λ_max.
    """
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 3 or H.shape[1] != H.shape[2] or H.shape[1] not in LAYERS:
        raise SpecError("H", f"an array of shape {H.shape}", "shape (R, n, n) with n = 8, 10 or 12")
    R = H.shape[0]
    rates = np.stack([_rates("lr_hidden", lr_hidden, R), _rates("lr_output", lr_output, R)], axis=1)
    root = np.sqrt(rates[:, list(LAYERS[H.shape[1]])])  # (R, n): √ of each parameter's rate
    return _largest_eigenvalue(root[:, :, None] * H * root[:, None, :])
