"""fastbp.sharpness against central differences of an analytic gradient written here, plainly.

The gradient below is docs/model.md's backward pass with biases ("Biases"), one run at a time in
``math``; without biases it is checked against tests/reference.py's ``step_row``. Central
differences of it give each column of H to ~1e-10 relative (truncation ~FD_H², rounding
~eps·|g|/FD_H), far inside the issue's 1e-6.
"""

import math

import numpy as np
import pytest
from reference import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS, GRADIENT_NAMES, sigma, step_row

from fastbp.errors import SpecError
from fastbp.sharpness import hessian, sharpness, stability

FD_H = 1e-5
RTOL = 1e-6  # the figure
LAYOUTS = {  # name: (biases?, train_biases, shared_biases)
    "no biases": (False, False, False),
    "fixed per unit": (True, False, False),
    "fixed shared": (True, False, True),
    "trained per unit": (True, True, False),
    "trained shared": (True, True, True),
}


def gradient(i, t, theta, b, train, shared):
    """∂E_total/∂θ for θ = w1 … w8 (+ b_h1 b_h2 b_o1 b_o2, or b_h b_o); b: the fixed biases."""
    w1, w2, w3, w4, w5, w6, w7, w8 = theta[:8]
    if train:
        b = (theta[8], theta[8], theta[9], theta[9]) if shared else tuple(theta[8:12])
    a_h1 = sigma(w1 * i[0] + w2 * i[1] + b[0])
    a_h2 = sigma(w3 * i[0] + w4 * i[1] + b[1])
    a_o1 = sigma(w5 * a_h1 + w6 * a_h2 + b[2])
    a_o2 = sigma(w7 * a_h1 + w8 * a_h2 + b[3])
    d_o1 = (a_o1 - t[0]) * a_o1 * (1 - a_o1)
    d_o2 = (a_o2 - t[1]) * a_o2 * (1 - a_o2)
    d_h1 = (d_o1 * w5 + d_o2 * w7) * a_h1 * (1 - a_h1)
    d_h2 = (d_o1 * w6 + d_o2 * w8) * a_h2 * (1 - a_h2)
    g = [
        d_h1 * i[0],
        d_h1 * i[1],
        d_h2 * i[0],
        d_h2 * i[1],
        d_o1 * a_h1,
        d_o1 * a_h2,
        d_o2 * a_h1,
        d_o2 * a_h2,
    ]
    if train:
        g += [d_h1 + d_h2, d_o1 + d_o2] if shared else [d_h1, d_h2, d_o1, d_o2]
    return np.array(g)


def fd_hessian(i, t, theta, b, train, shared):
    """Column p = (g(θ + h e_p) − g(θ − h e_p)) / 2h."""
    columns = []
    for p in range(len(theta)):
        up, down = np.array(theta, dtype=float), np.array(theta, dtype=float)
        up[p] += FD_H
        down[p] -= FD_H
        columns.append(
            (gradient(i, t, up, b, train, shared) - gradient(i, t, down, b, train, shared)) / (2 * FD_H)
        )
    return np.array(columns).T


def random_point(rng, R, with_biases, shared):
    inputs = rng.uniform(-1, 1, (2, R))
    targets = rng.uniform(0.05, 0.95, (2, R))
    weights = rng.uniform(-2, 2, (8, R))
    biases = rng.uniform(-1, 1, (4, R)) if with_biases else None
    if with_biases and shared:
        biases[1], biases[3] = biases[0], biases[2]
    return inputs, targets, weights, biases


def test_the_gradient_here_is_the_references():
    rng = np.random.default_rng(1)
    for _ in range(5):
        w, i, t = rng.uniform(-2, 2, 8), rng.uniform(-1, 1, 2), rng.uniform(0, 1, 2)
        row = step_row(*i, *t, w)
        ours = gradient(i, t, w, (0.0,) * 4, False, False)
        np.testing.assert_allclose(ours, [row[g] for g in GRADIENT_NAMES], rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hessian_agrees_with_central_differences_of_the_gradient(layout):
    with_biases, train, shared = LAYOUTS[layout]
    rng = np.random.default_rng(17)
    R = 24
    inputs, targets, weights, biases = random_point(rng, R, with_biases, shared)
    H = hessian(inputs, targets, weights, biases, train_biases=train, shared_biases=shared)
    P = 8 + (2 if shared else 4) * train
    assert H.shape == (R, P, P)
    lam = sharpness(H)
    for r in range(R):
        b = tuple(biases[:, r]) if with_biases else (0.0,) * 4
        theta = list(weights[:, r])
        if train:
            theta += [b[0], b[2]] if shared else list(b)
        H_fd = fd_hessian(inputs[:, r], targets[:, r], theta, b, train, shared)
        scale = np.abs(H_fd).max()
        assert np.abs(H[r] - H_fd).max() <= RTOL * scale, (layout, r)
        assert np.abs(H_fd - H_fd.T).max() <= RTOL * scale  # the check itself is a Hessian
        lam_fd = np.linalg.eigvalsh((H_fd + H_fd.T) / 2)[-1]
        assert abs(lam[r] - lam_fd) <= RTOL * abs(lam_fd), (layout, r)


@pytest.mark.parametrize("layout", ["no biases", "trained per unit", "trained shared"])
def test_hessian_is_exactly_symmetric(layout):
    with_biases, train, shared = LAYOUTS[layout]
    inputs, targets, weights, biases = random_point(np.random.default_rng(3), 50, with_biases, shared)
    H = hessian(inputs, targets, weights, biases, train_biases=train, shared_biases=shared)
    np.testing.assert_array_equal(H, H.transpose(0, 2, 1))


def test_course_sharpness():
    """SPEC: λ_max ≈ 0.02675 at the course weights and targets (0.5, 0.5), 2/λ_max ≈ 74.8."""
    H = hessian(COURSE_INPUTS, COURSE_TARGETS, np.array(COURSE_WEIGHTS)[:, None])
    lam = sharpness(H)[0]
    assert round(lam, 6) == 0.026753
    assert round(2 / lam, 1) == 74.8


@pytest.mark.parametrize(
    ("layout", "lam"), [("no biases", 1 / 32), ("trained per unit", 3 / 32), ("trained shared", 5 / 32)]
)
def test_a_case_by_hand(layout, lam):
    """All weights and biases 0, targets 0.5: every a = ½, σ' = ¼, σ''(½) = 0, δ_o = 0, so only the
    output block is left, γ_o = σ'² = 1/16 times Σ_k u_k u_kᵀ, u_k the inputs ã of output k's
    parameters. No biases: u_1 = (½, ½, 0, 0) on w5…w8, |u|² = ½ → 1/32 (any inputs). Per-unit
    biases: u_k gets a 1 for b_ok, |u|² = 3/2 → 3/32. Shared b_o: u_1 = (½, ½, 0, 0, 1),
    u_2 = (0, 0, ½, ½, 1), Gram [[3/2, 1], [1, 3/2]] → top eigenvalue 5/2 → 5/32."""
    with_biases, train, shared = LAYOUTS[layout]
    R = 3
    inputs = np.array([[0.05, 0.7, -3.0], [0.1, -0.2, 2.0]])
    biases = np.zeros((4, R)) if with_biases else None
    H = hessian(inputs, COURSE_TARGETS, np.zeros((8, R)), biases, train_biases=train, shared_biases=shared)
    hidden = [0, 1, 2, 3, 8, 9][: 4 + (1 if shared else 2) * train]
    assert np.all(H[:, hidden, :] == 0)  # no curvature through the hidden layer at this point
    np.testing.assert_allclose(sharpness(H), lam, rtol=1e-15)
    # only output parameters curve: the per-layer number is lr_output · λ_max, whatever lr_hidden is
    np.testing.assert_allclose(stability(H, 50.0, 3.0), 3.0 * lam, rtol=1e-14)


@pytest.mark.parametrize("layout", ["no biases", "trained per unit", "trained shared"])
def test_stability_with_equal_rates_is_lr_times_sharpness(layout):
    with_biases, train, shared = LAYOUTS[layout]
    rng = np.random.default_rng(5)
    inputs, targets, weights, biases = random_point(rng, 40, with_biases, shared)
    H = hessian(inputs, targets, weights, biases, train_biases=train, shared_biases=shared)
    lr = rng.uniform(0.01, 100, 40)
    np.testing.assert_allclose(stability(H, lr, lr), lr * sharpness(H), rtol=1e-12)


@pytest.mark.parametrize("layout", ["no biases", "trained per unit", "trained shared"])
def test_stability_is_the_top_eigenvalue_of_the_step_matrix(layout):
    """Unequal rates: against numpy's general eigenvalues of P·H itself (not symmetrised)."""
    with_biases, train, shared = LAYOUTS[layout]
    rng = np.random.default_rng(6)
    inputs, targets, weights, biases = random_point(rng, 30, with_biases, shared)
    H = hessian(inputs, targets, weights, biases, train_biases=train, shared_biases=shared)
    lr_hidden, lr_output = rng.uniform(0.1, 10, 30), rng.uniform(0.1, 10, 30)
    P = H.shape[1]
    hidden = np.array([p < 4 or p in ((8,) if P == 10 else (8, 9)) for p in range(P)])
    rates = np.where(hidden, lr_hidden[:, None], lr_output[:, None])
    eig = np.linalg.eigvals(rates[:, :, None] * H)  # P·H: row p scaled by parameter p's rate
    assert np.abs(eig.imag).max() <= 1e-12 * np.abs(eig).max()
    expected = eig.real.max(axis=1)
    np.testing.assert_allclose(stability(H, lr_hidden, lr_output), expected, rtol=1e-9)
    assert not np.allclose(expected, lr_hidden * sharpness(H), rtol=1e-3)  # the rates do matter


def test_fixed_biases_enter_the_forward_pass_only():
    inputs, targets, weights, biases = random_point(np.random.default_rng(8), 20, True, False)
    fixed = hessian(inputs, targets, weights, biases)
    trained = hessian(inputs, targets, weights, biases, train_biases=True)
    np.testing.assert_allclose(fixed, trained[:, :8, :8], rtol=1e-14, atol=0)
    assert np.abs(fixed - hessian(inputs, targets, weights)).max() > 1e-3  # the biases do move H
    np.testing.assert_array_equal(
        hessian(inputs, targets, weights, np.zeros((4, 20))), hessian(inputs, targets, weights)
    )


def test_a_non_finite_run_gives_nan_and_leaves_the_others():
    inputs, targets, weights, _ = random_point(np.random.default_rng(9), 4, False, False)
    H = hessian(inputs, targets, weights)
    bad = weights.copy()
    bad[4, 1] = np.nan
    lam = sharpness(hessian(inputs, targets, bad))
    assert np.isnan(lam[1]) and np.isnan(stability(hessian(inputs, targets, bad), 1.0, 1.0)[1])
    np.testing.assert_array_equal(lam[[0, 2, 3]], sharpness(H)[[0, 2, 3]])


def test_saturated_units_have_finite_hessians():
    """Huge weights saturate σ to exactly 0 or 1: σ' = 0 there, H stays finite."""
    weights = np.full((8, 2), 800.0)
    weights[:, 1] = -800.0
    H = hessian(COURSE_INPUTS, COURSE_TARGETS, weights)
    assert np.isfinite(H).all() and np.all(np.isfinite(sharpness(H)))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: hessian(COURSE_INPUTS, COURSE_TARGETS, np.zeros((7, 3))), "weights"),
        (lambda: hessian(COURSE_INPUTS, COURSE_TARGETS, np.zeros((8, 3)), np.zeros((4, 2))), "biases"),
        (lambda: hessian((1, 2, 3), COURSE_TARGETS, np.zeros((8, 3))), "inputs"),
        (lambda: hessian(COURSE_INPUTS, COURSE_TARGETS, np.zeros((8, 3)), train_biases=True), "train_biases"),
        (
            lambda: hessian(
                COURSE_INPUTS, COURSE_TARGETS, np.zeros((8, 1)), [[0.1], [0.2], [0], [0]], True, True
            ),
            "biases",
        ),
        (lambda: stability(np.zeros((2, 9, 9)), 1.0, 1.0), "H"),
        (lambda: stability(np.zeros((2, 8, 8)), [1.0, 0.0], 1.0), "lr_hidden"),
        (lambda: stability(np.zeros((2, 8, 8)), 1.0, math.inf), "lr_output"),
        (lambda: sharpness(np.zeros((8, 8))), "H"),
    ],
)
def test_bad_input_is_refused_naming_the_field(call, field):
    with pytest.raises(SpecError) as refused:
        call()
    assert refused.value.field == field and "allowed" in str(refused.value)
