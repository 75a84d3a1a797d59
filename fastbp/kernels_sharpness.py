"""Sharpness and stability of many runs at once, compiled (docs/model.md "Sharpness and stability").

``stability_numbers`` gives, per run, λ_max of the exact Hessian H of E_total in the trained
parameters and the stability number (lr_hidden · λ_max, or with per-layer rates the top
eigenvalue of P^½ H P^½). ``fastbp.sharpness`` is the numpy reference; this computes the same
numbers about 100x cheaper, exactly (no iteration whose accuracy depends on the run), in three
steps:

1. Reduce. E depends on the hidden parameters only through the two sums h_j = Σ_m W[j, m] x̃_m,
   linear in them: H = Mᵀ K M with K the Hessian of E in (h1, h2, output parameters) and
   M = blockdiag(X, I) the linear map (X the 2 × n_hidden map to h). The nonzero eigenvalues of
   Mᵀ K M are those of Lᵀ K L for any L with L Lᵀ = M Mᵀ = blockdiag(X Xᵀ, I), and X Xᵀ is a
   2 × 2 matrix of the inputs alone: |x̃|² I (no or per-unit biases), [[c, 1], [1, c]] with
   c = |i|² + 1 (shared b_h). So an r × r matrix S = Lᵀ K L, r = n − 2, 3 or 4 (6, 7, 8 for
   n = 8, 10, 12), has H's eigenvalues besides zeros, and H has a null space (n > r): λ_max(H) =
   max(λ_max(S), 0). With rates, M P^½ gives L scaled by √lr_hidden and √lr_output.
2. Tridiagonalise S by Householder reflections (r − 2 of them, one sqrt and one division each),
   after scaling it by 1/max|S_ij| so that nothing over- or underflows below.
3. λ_max of the tridiagonal T by bisection: x > λ_max exactly when xI − T is positive definite,
   i.e. (Sylvester) when every leading minor q_k = (x − α_k) q_{k−1} − β_{k−1}² q_{k−2} is > 0.
   That test has no division and no branch, is backward stable (the computed signs are exact
   for a T perturbed by a few ulps), and a fixed ``N_BISECT`` halvings of the Gershgorin
   interval reach ~1e-14 of max|eigenvalue| whatever the spectrum (clusters and double
   eigenvalues included, where Jacobi, Newton or power iteration slow down).

Why not Jacobi across runs: it needs ~5 sweeps of r(r − 1)/2 rotations with two sqrt and two
divisions each (~150 long-latency operations a run for r = 6, against r − 1 here).

Layout as the training kernel's (``kernels_train``): blocks of ``BLOCK`` runs as structure of
arrays (each matrix entry a row of lanes), one ``prange`` iteration per block, a short block
padded by repeating its last run, unsigned row offsets, IEEE operations only (no fastmath); the
P^½ H P^½ matrices of per-layer rates in a second region. One compiled kernel for every n and
both; each lane does the same operations, so a run's bits depend on its own inputs only (not on
R, its position or the thread count).
"""

import functools
import math

import numpy as np
from numba import njit, prange

from fastbp import _numba_cache  # noqa: F401  (cache key includes model.py and fastmath.py)
from fastbp.compile_time import BLOCK
from fastbp.errors import SpecError
from fastbp.model import forward_biased, hidden_error, output_delta, sigmoid_prime, sigmoid_second

#: Halvings of the bracket [max(0, max α), Gershgorin bound]: its width is at most ~3r after the
#: scaling, max|eigenvalue| at least 1, so 50 leave under 1e-14 of it.
N_BISECT = 50
#: Scaled matrices whose largest entry is below this are first multiplied by 1/_TINY (exact).
_TINY = 2.0**-900

# Per-unit output parameters w5 w6 w7 w8 b_o1 b_o2 as entries V[k, l] of the output layer
# (l = 2 is the bias, whose input is 1).
_OUT_K, _OUT_L = (0, 0, 1, 1, 0, 1), (0, 1, 0, 1, 2, 2)

# Rows of the first region of a block (BLOCK lanes): the block's runs, what each output
# parameter multiplies (a_h1, a_h2, 1), σ'(h_j), γ_ok, δ_ok, √(lr_hidden·lr_output), whether
# the run's weights and biases are finite; then K packed (lower triangle, 8 × 8 at most).
_IN = 0  # w1 … w8, b_h1 b_h2 b_o1 b_o2, lr_hidden, lr_output
_V = 4  # V[k, j] = w5, w6, w7, w8: row _V + 2k + j
_LR_H, _LR_O = 12, 13
_A = 14  # ã: rows 14, 15, 16
_S = 17  # σ'(h1), σ'(h2)
_G = 19  # γ_o1, γ_o2
_D = 21  # δ_o1, δ_o2
_LR_HO, _OK, _K = 23, 24, 25
_FIRST_ROWS = _K + 36
#: n trained parameters: (per-unit output parameters in K, r = the size of S).
_SIZES = {8: (4, 6), 10: (6, 7), 12: (6, 8)}
#: Rows of a matrix region by r: S (packed, r(r + 1)/2 rows), then W (5 + 2r rows).
_REGION_ROWS = tuple(r * (r + 1) // 2 + 5 + 2 * r for r in range(9))
# Row offsets as unsigned integers (kernels_train: a signed index gets a negative-index check that
# hides the unit stride from LLVM).
_ROW = tuple(np.uint64(row * BLOCK) for row in range(_FIRST_ROWS))


@njit
def _packed(i, j):
    """Row of entry (i, j) of a symmetric matrix stored as its lower triangle."""
    i, j = max(i, j), min(i, j)
    return i * (i + 1) // 2 + j


@functools.lru_cache(maxsize=64)  # a sweep's calls share their inputs
def _reduction_terms(n, i1, i2):
    """S = Tᵀ K T as (S entry, K entry, coefficient) lists: T maps S's coordinates to K's
    (h1, h2, per-unit output parameters); its hidden block is L of the module doc, the rest the
    identity, or for shared b_o the sum of b_o1's and b_o2's coordinates."""
    n_out, r = _SIZES[n]
    T = np.zeros((2 + n_out, r))
    if n == 10:  # X Xᵀ = [[c, 1], [1, c]] = Q diag(c + 1, c − 1) Qᵀ, Q = [[1, 1], [1, −1]]/√2
        c = i1 * i1 + i2 * i2 + 1.0
        plus, minus = math.sqrt((c + 1.0) / 2.0), math.sqrt((c - 1.0) / 2.0)
        T[:2, :2] = [[plus, minus], [plus, -minus]]
        T[2:6, 2:6] = np.eye(4)
        T[6:8, 6] = 1.0
    else:
        T[:2, :2] = math.sqrt(i1 * i1 + i2 * i2 + (1.0 if n == 12 else 0.0)) * np.eye(2)
        T[2:, 2:] = np.eye(n_out)
    coefficient = np.einsum("ia,jb->abij", T, T) * np.tril(np.ones((r, r)))[:, :, None, None]
    a, b, i, j = np.nonzero(coefficient)  # in the order of a, b, i, j: a fixed order of the sums
    entry = a * (a + 1) // 2 + b
    k = np.maximum(i, j) * (np.maximum(i, j) + 1) // 2 + np.minimum(i, j)
    terms = entry.astype(np.int64), k.astype(np.int64), coefficient[a, b, i, j]
    for array in terms:
        array.flags.writeable = False  # shared by every call with these inputs
    return terms


@njit(inline="always")
def _load(buf, pairs):
    """Forward pass and the per-run numbers K is made of, into the first region's rows."""
    i1, i2, t1, t2 = pairs
    for lane in range(BLOCK):
        x = np.uint64(lane)
        w1, w2, w3, w4 = buf[_ROW[0] + x], buf[_ROW[1] + x], buf[_ROW[2] + x], buf[_ROW[3] + x]
        w5, w6, w7, w8 = buf[_ROW[4] + x], buf[_ROW[5] + x], buf[_ROW[6] + x], buf[_ROW[7] + x]
        b_h1, b_h2, b_o1, b_o2 = buf[_ROW[8] + x], buf[_ROW[9] + x], buf[_ROW[10] + x], buf[_ROW[11] + x]
        _h1, a_h1, _h2, a_h2, _o1, a_o1, _o2, a_o2 = forward_biased(
            i1, i2, w1, w2, w3, w4, w5, w6, w7, w8, b_h1, b_h2, b_o1, b_o2
        )
        # δ_o = (a_o − t)σ'(o) and ∂E/∂a_h as backprop computes them; γ_o = σ'(o)² + (a_o − t)σ''(o).
        s_h1, s_h2 = sigmoid_prime(a_h1), sigmoid_prime(a_h2)
        s_o1, s_o2 = sigmoid_prime(a_o1), sigmoid_prime(a_o2)
        delta_o1, delta_o2 = output_delta(a_o1, t1), output_delta(a_o2, t2)
        gamma_o1 = s_o1 * s_o1 + (a_o1 - t1) * sigmoid_second(a_o1)
        gamma_o2 = s_o2 * s_o2 + (a_o2 - t2) * sigmoid_second(a_o2)
        dE_da_h1, dE_da_h2 = hidden_error(delta_o1, delta_o2, w5, w6, w7, w8)
        # K's hidden block A[j, j'] = ∂²E/∂h_j∂h_j' (docs/model.md).
        A11 = s_h1 * s_h1 * (gamma_o1 * w5 * w5 + gamma_o2 * w7 * w7) + dE_da_h1 * sigmoid_second(a_h1)
        A22 = s_h2 * s_h2 * (gamma_o1 * w6 * w6 + gamma_o2 * w8 * w8) + dE_da_h2 * sigmoid_second(a_h2)
        buf[_ROW[_K] + x], buf[_ROW[_K + 1] + x], buf[_ROW[_K + 2] + x] = (
            A11,
            s_h1 * s_h2 * (gamma_o1 * w5 * w6 + gamma_o2 * w7 * w8),
            A22,
        )
        buf[_ROW[_A] + x], buf[_ROW[_A + 1] + x], buf[_ROW[_A + 2] + x] = a_h1, a_h2, 1.0
        buf[_ROW[_S] + x], buf[_ROW[_S + 1] + x] = s_h1, s_h2
        buf[_ROW[_G] + x], buf[_ROW[_G + 1] + x] = gamma_o1, gamma_o2
        buf[_ROW[_D] + x], buf[_ROW[_D + 1] + x] = delta_o1, delta_o2
        buf[_ROW[_LR_HO] + x] = math.sqrt(buf[_ROW[_LR_H] + x] * buf[_ROW[_LR_O] + x])
        # w − w is 0 for a finite w, NaN for ±inf and NaN: the sum is 0 when all twelve are finite.
        zero = (w1 - w1) + (w2 - w2) + (w3 - w3) + (w4 - w4) + (w5 - w5) + (w6 - w6) + (w7 - w7) + (w8 - w8)
        zero += (b_h1 - b_h1) + (b_h2 - b_h2) + (b_o1 - b_o1) + (b_o2 - b_o2)
        buf[_ROW[_OK] + x] = 1.0 if zero == 0.0 else 0.0


@njit(inline="always")
def _assemble_K(buf, n_out):
    """K's output rows (docs/model.md, with h_j for W[j, m]): for output parameter V[k, l],
    ∂²E/∂V[k,l]∂h_j = (γ_ok V[k, j] ã_l + δ_ok [l = j]) σ'(h_j) and
    ∂²E/∂V[k,l]∂V[k',l'] = [k = k'] γ_ok ã_l ã_l'."""
    row = np.uint64(BLOCK)
    for p in range(n_out):
        k, l = _OUT_K[p], _OUT_L[p]
        g, d, a = np.uint64(_G + k) * row, np.uint64(_D + k) * row, np.uint64(_A + l) * row
        for j in range(2):
            out = np.uint64(_K + _packed(2 + p, j)) * row
            v, s = np.uint64(_V + 2 * k + j) * row, np.uint64(_S + j) * row
            same = 1.0 if l == j else 0.0
            for lane in range(BLOCK):
                x = np.uint64(lane)
                buf[out + x] = (buf[g + x] * buf[v + x] * buf[a + x] + same * buf[d + x]) * buf[s + x]
        for q in range(p + 1):
            out = np.uint64(_K + _packed(2 + p, 2 + q)) * row
            a2 = np.uint64(_A + _OUT_L[q]) * row
            same_unit = 1.0 if _OUT_K[q] == k else 0.0
            for lane in range(BLOCK):
                x = np.uint64(lane)
                buf[out + x] = same_unit * (buf[g + x] * buf[a + x] * buf[a2 + x])


@njit(inline="always")
def _reduce(buf, S0, S1, r, per_layer, terms):
    """S = Tᵀ K T into the S region at S0; with per-layer rates P^½ S P^½ (hidden coordinates 0, 1
    scaled by √lr_hidden, the rest by √lr_output) into the one at S1."""
    row, (t_entry, t_k, t_coef) = np.uint64(BLOCK), terms
    for e in range(r * (r + 1) // 2):
        out = S0 + np.uint64(e) * row
        for lane in range(BLOCK):
            buf[out + np.uint64(lane)] = 0.0
    for t in range(t_entry.shape[0]):
        out, src, coef = S0 + np.uint64(t_entry[t]) * row, np.uint64(_K + t_k[t]) * row, t_coef[t]
        for lane in range(BLOCK):
            x = np.uint64(lane)
            buf[out + x] += coef * buf[src + x]
    if per_layer:
        for a in range(r):
            for b in range(a + 1):
                rate = (_LR_H if a < 2 else _LR_HO) if b < 2 else _LR_O
                e, factor = np.uint64(_packed(a, b)) * row, np.uint64(rate) * row
                for lane in range(BLOCK):
                    x = np.uint64(lane)
                    buf[S1 + e + x] = buf[factor + x] * buf[S0 + e + x]


@njit(inline="always")
def _scale(buf, S0, W0, r):
    """Divide each matrix by its largest |entry| m (first by 2**-900 when m is tiny, exactly), so
    that the bisection's minors neither over- nor underflow; keep what undoes it in W0 rows 0, 1,
    and 0.0 in row 2 where an entry is not finite. Entries in two halves: LLVM unrolls each (not
    r = 8's 36 in one loop, which left the lanes' loop around it scalar)."""
    L, n_entries, half = np.uint64(BLOCK), r * (r + 1) // 2, r * (r + 1) // 4
    for lane in range(BLOCK):
        x = np.uint64(lane)
        m, finite = 0.0, 1.0
        for e in range(half):
            v = abs(buf[S0 + np.uint64(e) * L + x])
            m = v if v > m else m
            finite = finite if v - v == 0.0 else 0.0
        for e in range(half, n_entries):
            v = abs(buf[S0 + np.uint64(e) * L + x])
            m = v if v > m else m
            finite = finite if v - v == 0.0 else 0.0
        f = 1.0 / _TINY if m < _TINY else 1.0
        mf = m * f
        inv = 1.0 / mf if mf > 0.0 else 1.0
        buf[W0 + x], buf[W0 + L + x], buf[W0 + L + L + x] = mf, 1.0 / f, finite
        for e in range(half):
            at = S0 + np.uint64(e) * L + x
            buf[at] = (buf[at] * f) * inv
        for e in range(half, n_entries):
            at = S0 + np.uint64(e) * L + x
            buf[at] = (buf[at] * f) * inv


@njit(inline="always")
def _tridiagonalise(buf, S0, W0, r):
    """Householder: S ← Qᵀ S Q tridiagonal in place (diagonal α, subdiagonal β), one reflection
    I − τ v vᵀ per column k < r − 2; β_k into W0 row 3 + k; v kept in column k itself."""
    L = np.uint64(BLOCK)
    acc, tau, p = W0 + np.uint64(3 + r) * L, W0 + np.uint64(4 + r) * L, W0 + np.uint64(5 + r) * L
    for k in range(r - 2):
        for lane in range(BLOCK):
            buf[acc + np.uint64(lane)] = 0.0
        for i in range(k + 1, r):
            e = S0 + np.uint64(_packed(i, k)) * L
            for lane in range(BLOCK):
                x = np.uint64(lane)
                buf[acc + x] += buf[e + x] * buf[e + x]
        first, beta = S0 + np.uint64(_packed(k + 1, k)) * L, W0 + np.uint64(3 + k) * L
        for lane in range(BLOCK):
            x = np.uint64(lane)
            sigma2, x0 = buf[acc + x], buf[first + x]
            norm = math.sqrt(sigma2)
            alpha = -norm if x0 >= 0.0 else norm  # the sign that avoids cancellation in x0 − α
            vtv = 2.0 * (sigma2 + norm * abs(x0))
            buf[beta + x] = alpha
            buf[first + x] = x0 - alpha
            buf[tau + x] = 2.0 / vtv if vtv > 0.0 else 0.0  # a zero column: no reflection
        # p = τ A v, then w = p − (τ/2)(vᵀp) v, A ← A − v wᵀ − w vᵀ on the trailing block.
        for i in range(k + 1, r):
            pi = p + np.uint64(i) * L
            for lane in range(BLOCK):
                buf[pi + np.uint64(lane)] = 0.0
            for j in range(k + 1, r):
                a, v = S0 + np.uint64(_packed(i, j)) * L, S0 + np.uint64(_packed(j, k)) * L
                for lane in range(BLOCK):
                    x = np.uint64(lane)
                    buf[pi + x] += buf[a + x] * buf[v + x]
        for lane in range(BLOCK):
            buf[acc + np.uint64(lane)] = 0.0
        for i in range(k + 1, r):
            pi, v = p + np.uint64(i) * L, S0 + np.uint64(_packed(i, k)) * L
            for lane in range(BLOCK):
                x = np.uint64(lane)
                buf[pi + x] *= buf[tau + x]
                buf[acc + x] += buf[v + x] * buf[pi + x]
        for i in range(k + 1, r):
            pi, v = p + np.uint64(i) * L, S0 + np.uint64(_packed(i, k)) * L
            for lane in range(BLOCK):
                x = np.uint64(lane)
                buf[pi + x] -= (0.5 * buf[tau + x] * buf[acc + x]) * buf[v + x]
        for i in range(k + 1, r):
            for j in range(k + 1, i + 1):
                a = S0 + np.uint64(_packed(i, j)) * L
                vi, vj = S0 + np.uint64(_packed(i, k)) * L, S0 + np.uint64(_packed(j, k)) * L
                wi, wj = p + np.uint64(i) * L, p + np.uint64(j) * L
                for lane in range(BLOCK):
                    x = np.uint64(lane)
                    buf[a + x] -= buf[vi + x] * buf[wj + x] + buf[wi + x] * buf[vj + x]
    last = W0 + np.uint64(3 + r - 2) * L
    for lane in range(BLOCK):
        x = np.uint64(lane)
        buf[last + x] = buf[S0 + np.uint64(_packed(r - 1, r - 2)) * L + x]


@njit(inline="always")
def _top_eigenvalue(buf, S0, W0, r):
    """Bisection for λ_max of the tridiagonal (α on S's diagonal, β in W0 rows 3 …): the bracket
    [max(0, max α), Gershgorin bound] in W0 rows 3 + r, 4 + r (lo, hi) is halved ``N_BISECT``
    times; lo starts at 0 or above since H's null space puts 0 among its eigenvalues."""
    L = np.uint64(BLOCK)
    lo, hi = W0 + np.uint64(3 + r) * L, W0 + np.uint64(4 + r) * L  # reuses acc and tau
    alpha0, beta0 = S0, W0 + np.uint64(3) * L
    for lane in range(BLOCK):
        x = np.uint64(lane)
        top, bound = 0.0, -np.inf
        for i in range(r):
            a = buf[S0 + np.uint64(_packed(i, i)) * L + x]
            radius = abs(buf[beta0 + np.uint64(i) * L + x]) if i < r - 1 else 0.0
            radius += abs(buf[beta0 + np.uint64(i - 1) * L + x]) if i > 0 else 0.0
            top = a if a > top else top
            bound = a + radius if a + radius > bound else bound
        buf[lo + x], buf[hi + x] = top, bound if bound > top else top
    # b2 = β² in the p rows (free now), α stays on S's diagonal.
    b2 = W0 + np.uint64(5 + r) * L
    for i in range(r - 1):
        for lane in range(BLOCK):
            x = np.uint64(lane)
            beta = buf[beta0 + np.uint64(i) * L + x]
            buf[b2 + np.uint64(i) * L + x] = beta * beta
    for _ in range(N_BISECT):
        for lane in range(BLOCK):
            x = np.uint64(lane)
            mid = 0.5 * (buf[lo + x] + buf[hi + x])
            q_prev, q = 1.0, mid - buf[alpha0 + x]
            smallest = q
            for i in range(1, r):
                a = buf[S0 + np.uint64(_packed(i, i)) * L + x]
                q_prev, q = q, (mid - a) * q - buf[b2 + np.uint64(i - 1) * L + x] * q_prev
                smallest = q if q < smallest else smallest
            definite = smallest > 0.0  # mid·I − T positive definite: λ_max < mid
            buf[hi + x] = mid if definite else buf[hi + x]
            buf[lo + x] = buf[lo + x] if definite else mid


def _matrix_steps(r):
    """K's output rows, S (P^½ S P^½ in a second region), then scale, tridiagonalise and bisect:
    compiled for one r, whose sizes and offsets are then constants (loops over entries unrolled,
    lanes' loops between rows a known distance apart: vector code with no overlap check)."""
    S0, W = np.uint64(_FIRST_ROWS * BLOCK), np.uint64(r * (r + 1) // 2 * BLOCK)
    span, n_out = np.uint64(_REGION_ROWS[r] * BLOCK), 4 if r == 6 else 6

    @njit(nogil=True, error_model="numpy")
    def steps(buf, regions, terms):
        _assemble_K(buf, n_out)
        _reduce(buf, S0, S0 + span, r, regions == 2, terms)
        for region in range(regions):
            base = S0 + np.uint64(region) * span
            _scale(buf, base, base + W, r)
            _tridiagonalise(buf, base, base + W, r)
            _top_eigenvalue(buf, base, base + W, r)

    return steps


_STEPS_6, _STEPS_7, _STEPS_8 = _matrix_steps(6), _matrix_steps(7), _matrix_steps(8)


@njit(nogil=True, error_model="numpy")
def _block(weights, biases, rates, pairs, r, regions, terms, start, n_runs, out):
    """λ_max (region 0) and the P^½ S P^½ number (region 1) of runs start … into ``out``, NaN where
    a weight, bias or matrix entry is not finite (a function: Numba's parallel passes are slow)."""
    buf = np.empty(_FIRST_ROWS * BLOCK + regions * _REGION_ROWS[r] * BLOCK)
    for m in range(14):  # rows _IN … _LR_O; a short block padded with copies of its last run
        source, at = weights[m] if m < 8 else biases[m - 8] if m < 12 else rates[m - 12], m * BLOCK
        if n_runs == BLOCK:  # a contiguous copy (vector loads: padding's per-lane index is a gather)
            buf[at : at + BLOCK] = source[start : start + BLOCK]
        else:
            for lane in range(BLOCK):
                buf[at + lane] = source[start + min(lane, n_runs - 1)]
    _load(buf, pairs)
    if r == 6:
        _STEPS_6(buf, regions, terms)
    elif r == 7:
        _STEPS_7(buf, regions, terms)
    else:
        _STEPS_8(buf, regions, terms)
    L, W0 = np.uint64(BLOCK), np.uint64((_FIRST_ROWS + r * (r + 1) // 2) * BLOCK)
    for region in range(regions):
        W = W0 + np.uint64(region * _REGION_ROWS[r] * BLOCK)
        lo, hi = W + np.uint64(3 + r) * L, W + np.uint64(4 + r) * L
        for j in range(n_runs):
            x = np.uint64(j)
            lam = 0.5 * (buf[lo + x] + buf[hi + x]) * buf[W + x] * buf[W + L + x]
            ok = buf[W + L + L + x] * buf[_OK * BLOCK + j]
            out[region][start + j] = lam if ok == 1.0 else np.nan


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _kernel(weights, biases, rates, pairs, r, regions, terms, out):
    """Every block of runs, in parallel. One compiled kernel for every n (S of size r) and for
    both ``per_layer`` (regions 2 or 1): run-time values, so a sweep's first call compiles once."""
    R = weights.shape[1]
    for block in prange((R + BLOCK - 1) // BLOCK):
        start = block * BLOCK
        _block(weights, biases, rates, pairs, r, regions, terms, start, min(BLOCK, R - start), out)


def _rates(field, value, n_runs):
    """(R,) rates of any float dtype, as float64 (exactly)."""
    rates = np.asarray(value)
    if rates.shape != (n_runs,) or rates.dtype.kind != "f":
        raise SpecError(
            field, f"an array of shape {rates.shape}, dtype {rates.dtype}", f"floats, shape ({n_runs},)"
        )
    bad = ~(np.isfinite(rates) & (rates > 0))
    if bad.any():
        raise SpecError(field, float(rates[bad][0]), "finite numbers > 0")
    return np.ascontiguousarray(rates, dtype=np.float64)


def stability_numbers(
    weights,
    lr_hidden,
    lr_output,
    inputs,
    targets,
    biases=None,
    train_biases=False,
    shared_biases=False,
    per_layer=False,
):
    """-> (sharpness (R,) float64, stability (R,) float64): λ_max of the exact Hessian of E_total
    in the trained parameters, and lr_hidden · λ_max or (``per_layer``) the top eigenvalue of
    P^½ H P^½. Arguments as ``fastbp.sharpness.hessian`` (weights (8, R), biases (4, R) or None,
    inputs and targets pairs shared by all runs); NaN for a run with a non-finite weight or bias."""
    weights = np.asarray(weights)
    if weights.ndim != 2 or weights.shape[0] != 8 or weights.dtype.kind != "f":
        raise SpecError("weights", f"an array of shape {weights.shape}", "a float array of shape (8, R)")
    R = weights.shape[1]
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    lr_hidden, lr_output = _rates("lr_hidden", lr_hidden, R), _rates("lr_output", lr_output, R)
    if biases is None:
        if train_biases:
            raise SpecError("train_biases", train_biases, "False when biases is None")
        biases = np.zeros((4, R))
    biases = np.ascontiguousarray(biases, dtype=np.float64)
    if biases.shape != (4, R):
        raise SpecError("biases", f"an array of shape {biases.shape}", f"shape (4, {R}): b_h1 b_h2 b_o1 b_o2")
    pairs_equal = np.array_equal(biases[0], biases[1]) and np.array_equal(biases[2], biases[3])
    if train_biases and shared_biases and not pairs_equal:
        raise SpecError("biases", "rows that differ", "b_h1 = b_h2 and b_o1 = b_o2 when shared")
    i1, i2 = (float(v) for v in inputs)
    t1, t2 = (float(v) for v in targets)
    n = (10 if shared_biases else 12) if train_biases else 8
    sharp, stab, rates, pairs = np.empty(R), np.empty(R), (lr_hidden, lr_output), (i1, i2, t1, t2)
    regions, terms = 2 if per_layer else 1, _reduction_terms(n, i1, i2)
    _kernel(weights, biases, rates, pairs, _SIZES[n][1], regions, terms, (sharp, stab))
    if not per_layer:
        stab = lr_hidden * sharp
    return sharp, stab
