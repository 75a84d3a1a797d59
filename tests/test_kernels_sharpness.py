"""kernels_sharpness.stability_numbers against the numpy reference (fastbp.sharpness), by hand,
and for bit-reproducibility across threads, block positions and padding."""

import re

import numba
import numpy as np
import pytest
from codegen import compiled, divisions

from fastbp import kernels_sharpness as ks
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS
from fastbp.errors import SpecError
from fastbp.kernels_sharpness import stability_numbers
from fastbp.sharpness import LAYERS, hessian, sharpness, stability

LAYOUTS = {  # name: (biases?, train_biases, shared_biases), n = 8, 8, 10, 12
    "no biases": (False, False, False),
    "fixed": (True, False, False),
    "trained shared": (True, True, True),
    "trained per unit": (True, True, False),
}


def random_runs(rng, R, with_biases, shared):
    """Weights N(0, 2²), one run in five with ±8 entries (saturated units); rates log-uniform."""
    weights = rng.normal(0.0, 2.0, (8, R))
    big = rng.random((8, R)) < 0.2
    weights[big] = rng.choice([-8.0, 8.0], big.sum())
    biases = rng.normal(0.0, 1.5, (4, R)) if with_biases else None
    if shared:
        biases[1], biases[3] = biases[0], biases[2]
    lr_hidden, lr_output = np.exp(rng.uniform(-3, 3, (2, R)))
    return weights, biases, lr_hidden, lr_output


def symmetric_step_matrix(H, lr_hidden, lr_output):
    """P^½ H P^½ (numpy), P = each parameter's rate."""
    rates = np.where(np.array(LAYERS[H.shape[1]]) == 0, lr_hidden[:, None], lr_output[:, None])
    root = np.sqrt(rates)
    return root[:, :, None] * H * root[:, None, :]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("per_layer", [False, True])
def test_agrees_with_numpy_to_1e_12_of_the_largest_eigenvalue(layout, per_layer):
    with_biases, train, shared = LAYOUTS[layout]
    rng = np.random.default_rng(17)
    for _ in range(3):  # inputs and targets are shared by all runs: a few pairs of each
        inputs, targets = rng.uniform(-2, 2, 2), rng.uniform(0, 1, 2)
        weights, biases, lr_hidden, lr_output = random_runs(rng, 150, with_biases, shared)
        sharp, stab = stability_numbers(
            weights, lr_hidden, lr_output, inputs, targets, biases, train, shared, per_layer
        )
        H = hessian(inputs, targets, weights, biases, train_biases=train, shared_biases=shared)
        scale = np.abs(np.linalg.eigvalsh(H)).max(axis=1)
        assert np.all(np.abs(sharp - sharpness(H)) <= 1e-12 * scale)
        if per_layer:
            scale = np.abs(np.linalg.eigvalsh(symmetric_step_matrix(H, lr_hidden, lr_output))).max(axis=1)
            assert np.all(np.abs(stab - stability(H, lr_hidden, lr_output)) <= 1e-12 * scale)
            assert not np.allclose(stab, lr_hidden * sharp, rtol=1e-3)  # the rates do matter
        else:
            np.testing.assert_array_equal(stab, lr_hidden * sharp)


def test_course_weights():
    """SPEC "Stability": λ_max ≈ 0.02675 at the course point; 0.0267530592 to ten decimals."""
    w = np.array(COURSE_WEIGHTS)[:, None]
    sharp, stab = stability_numbers(w, np.array([0.5]), np.array([0.5]), COURSE_INPUTS, COURSE_TARGETS)
    assert round(sharp[0], 10) == 0.0267530592
    assert stab[0] == 0.5 * sharp[0]
    assert abs(sharp[0] - sharpness(hessian(COURSE_INPUTS, COURSE_TARGETS, w))[0]) <= 1e-15


@pytest.mark.parametrize(
    ("layout", "lam"), [("no biases", 1 / 32), ("trained per unit", 3 / 32), ("trained shared", 5 / 32)]
)
def test_the_hand_case(layout, lam):
    """Weights and biases 0, targets ½: only the output block curves (tests/test_sharpness.py
    derives 1/32, 3/32, 5/32), so per layer the number is lr_output · λ_max."""
    with_biases, train, shared = LAYOUTS[layout]
    R = 3
    biases = np.zeros((4, R)) if with_biases else None
    lr_hidden, lr_output = np.full(R, 50.0), np.full(R, 3.0)
    for inputs in ((0.05, 0.1), (0.7, -0.2), (-3.0, 2.0)):
        sharp, stab = stability_numbers(
            np.zeros((8, R)), lr_hidden, lr_output, inputs, (0.5, 0.5), biases, train, shared, True
        )
        np.testing.assert_allclose(sharp, lam, rtol=1e-14)
        np.testing.assert_allclose(stab, 3.0 * lam, rtol=1e-14)


@pytest.mark.parametrize("layout", ["fixed", "trained shared", "trained per unit"])
def test_per_layer_with_equal_rates_is_lr_times_sharpness(layout):
    with_biases, train, shared = LAYOUTS[layout]
    rng = np.random.default_rng(5)
    weights, biases, lr, _ = random_runs(rng, 100, with_biases, shared)
    sharp, stab = stability_numbers(weights, lr, lr, (0.3, -0.6), (0.2, 0.9), biases, train, shared, True)
    np.testing.assert_allclose(stab, lr * sharp, rtol=1e-13)


@pytest.mark.parametrize("layout", ["no biases", "trained shared", "trained per unit"])
def test_same_bits_for_any_thread_count_position_and_padding(layout):
    with_biases, train, shared = LAYOUTS[layout]
    rng = np.random.default_rng(11)
    weights, biases, lr_hidden, lr_output = random_runs(rng, 1000, with_biases, shared)
    args = ((0.4, -0.9), (0.1, 0.8), None, train, shared, True)

    def numbers(columns):
        b = None if biases is None else biases[:, columns]
        return stability_numbers(
            weights[:, columns], lr_hidden[columns], lr_output[columns], *args[:2], b, *args[3:]
        )

    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        alone = numbers(np.arange(1000))
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        for R in (1, 63, 64, 65, 1000):
            for got, want in zip(numbers(np.arange(R)), alone):
                np.testing.assert_array_equal(got, want[:R])
        # run 700 at the start of an array, at position 130 of a reversed one, alone
        for columns, at in (
            (np.arange(700, 1000), 0),
            (np.arange(1000)[::-1][:500], 299),
            (np.array([700]), 0),
        ):
            for got, want in zip(numbers(columns), alone):
                assert got[at].tobytes() == want[700].tobytes()
    finally:
        numba.set_num_threads(threads)


def test_float32_weights_are_read_exactly():
    rng = np.random.default_rng(2)
    weights, biases, lr_hidden, lr_output = random_runs(rng, 70, True, False)
    w32, lr32 = weights.astype(np.float32), lr_hidden.astype(np.float32)
    got = stability_numbers(w32, lr32, lr_output, (0.5, 0.5), (0.1, 0.3), biases)
    want = stability_numbers(
        w32.astype(np.float64), lr32.astype(np.float64), lr_output, (0.5, 0.5), (0.1, 0.3), biases
    )
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_weight_or_bias_gives_nan_and_leaves_the_others(bad):
    rng = np.random.default_rng(9)
    weights, biases, lr_hidden, lr_output = random_runs(rng, 6, True, False)
    clean = stability_numbers(
        weights, lr_hidden, lr_output, (0.5, 0.5), (0.1, 0.3), biases, True, False, True
    )
    weights[4, 1] = bad
    biases[3, 4] = bad
    got = stability_numbers(weights, lr_hidden, lr_output, (0.5, 0.5), (0.1, 0.3), biases, True, False, True)
    for numbers, reference in zip(got, clean):
        assert np.isnan(numbers[[1, 4]]).all()
        np.testing.assert_array_equal(numbers[[0, 2, 3, 5]], reference[[0, 2, 3, 5]])


def test_saturated_and_tiny_curvature_stay_accurate():
    """Huge weights: σ' exactly 0 everywhere (H = 0, λ_max = 0), or σ'(h) ≈ e**−460 ≈ 1e-200 and
    e**−700 ≈ 1e-304 (H's entries that small: the scaling keeps them from underflowing in the
    minors), against numpy on the same matrices."""
    outputs = [1.0, -2.0, 0.5, 1.5]
    weights = np.array(
        [[800.0] * 2 + [-800.0] * 2 + [800.0] * 4, [-230.0] * 4 + outputs, [-350.0] * 4 + outputs]
    ).T
    sharp, _ = stability_numbers(weights, np.ones(3), np.ones(3), (1.0, 1.0), (0.3, 0.6))
    H = hessian((1.0, 1.0), (0.3, 0.6), weights)
    assert sharp[0] == 0.0 and np.all(H[0] == 0.0)
    scale = np.abs(np.linalg.eigvalsh(H)).max(axis=1)
    assert 1e-202 < scale[1] < 1e-198 and 1e-307 < scale[2] < 1e-302
    assert np.all(np.abs(sharp - sharpness(H)) <= 1e-12 * scale)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weights": np.zeros((7, 3))}, "weights"),
        ({"lr_hidden": np.array([1.0, 0.0, 1.0])}, "lr_hidden"),
        ({"lr_output": np.ones(4)}, "lr_output"),
        ({"biases": np.zeros((4, 2))}, "biases"),
        (
            {
                "biases": np.array([[0.0] * 3, [1.0] * 3, [0.0] * 3, [0.0] * 3]),
                "train_biases": True,
                "shared_biases": True,
            },
            "biases",
        ),
        ({"train_biases": True}, "train_biases"),
    ],
)
def test_bad_input_names_the_field(change, field):
    call = {
        "weights": np.zeros((8, 3)),
        "lr_hidden": np.ones(3),
        "lr_output": np.ones(3),
        "inputs": (0, 0),
        "targets": (0, 0),
    }
    with pytest.raises(SpecError, match=field):
        stability_numbers(**{**call, **change})


def test_the_matrix_steps_are_vector_code():
    """The kernel's steps on the block's matrices (K, S, scaling, Householder, bisection) run
    across its lanes: their divisions and square roots are vector ones. Checked on the largest S
    (r = 8: its 36 entries in one loop LLVM did not unroll, which left the scaling scalar); the
    smaller ones are the same code with fewer entries. (A loop whose rows LLVM cannot prove apart
    keeps a scalar copy behind a runtime overlap check, which the distinct rows always pass: so
    not "no scalar".)"""
    r, n = 8, 12
    steps = ks._matrix_steps(r)  # a dispatcher of its own: compiled here, not loaded from the cache
    buf = np.random.default_rng(0).normal(size=(ks._FIRST_ROWS + 2 * ks._REGION_ROWS[r]) * ks.BLOCK)
    ir, _asm = compiled(steps, buf, 2, ks._reduction_terms(n, 0.05, 0.1))
    vector, scalar = divisions(ir, np.float64)
    # At least one vector division per Householder reflection (r − 2 of them). AVX-512 builds show
    # twice that (LLVM interleaves the loops); an AVX2 build keeps fewer copies, hence no more.
    assert len(vector) >= r - 2 and min(vector) >= 4 and scalar <= len(vector), (vector, scalar)
    assert re.findall(r"@llvm\.sqrt\.v(\d+)f64", ir) and "@llvm.sqrt.f64(" not in ir
