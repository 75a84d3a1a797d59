"""fastmath's exp and sigmoid against correctly rounded values (Python's decimal at 40 digits).

docs/model.md "Accuracy" sets the budget: an exp within about 1 ulp keeps every loss
curve inside 1e-12 relative (float64's Padé exp: 1.5 ulp allowed, 1.3 measured). The sigmoid
1 / (1 + exp(−x)) adds two roundings (the add and the division) to exp's error, which passes
through whole where σ(x) ≈ exp(x): 2.5 ulp allowed.
Outside the normal range exp flushes tiny results to 0 (documented in fastmath).
"""

import decimal
import math
from fractions import Fraction

import numpy as np
import pytest
from codegen import assert_vector_loop, divisions
from numba import njit

from fastbp.fastmath import exp, pade_exp_coefficients, sigmoid

# test_biases, test_kernels and test_kernels_sharpness still import these from here; delete this
# line once they import tests/codegen.py.

EXP_MAX_ULP = {np.float64: 1.5, np.float32: 1.0}
SIGMOID_MAX_ULP = 2.5

decimal.getcontext().prec = 40


def exact_exp(x):
    return decimal.Decimal(float(x)).exp()


def exact_sigmoid(x):
    return 1 / (1 + (-decimal.Decimal(float(x))).exp())


def ulp_error(got, exact, dtype):
    """|got − exact| in units of the last place of ``exact`` rounded to ``dtype``."""
    spacing = float(np.spacing(dtype(abs(float(exact)))))
    return float(abs(decimal.Decimal(float(got)) - exact)) / spacing


# cache=True: compiled once, then loaded (conftest.py keys the cache on fastmath.py too). The
# codegen tests below compile their own uncached copies: Numba keeps no IR for cached code.
@njit(error_model="numpy", cache=True)
def _apply_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = exp(x[i])


@njit(error_model="numpy", cache=True)
def _apply_sigmoid(x, out):
    for i in range(x.shape[0]):
        out[i] = sigmoid(x[i])


def _samples(dtype, low, high, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(low, high, n), rng.uniform(-1, 1, n // 4)]).astype(dtype)


@pytest.mark.parametrize("dtype, low, high", [(np.float64, -707.0, 709.0), (np.float32, -86.0, 88.0)])
def test_exp_within_its_ulp_budget_of_correctly_rounded(dtype, low, high):
    x = _samples(dtype, low, high)
    got = np.empty_like(x)
    _apply_exp(x, got)
    errors = [ulp_error(g, exact_exp(v), dtype) for v, g in zip(x, got)]
    assert max(errors) <= EXP_MAX_ULP[dtype]
    assert max(errors) > 0.5  # the comparison is live: the result is not correctly rounded everywhere
    assert np.mean(np.array(errors) > 1.0) < 0.01  # and beyond 1 ulp only rarely


@pytest.mark.parametrize(
    "dtype, top, overflow, lo", [(np.float64, 709.78, 709.79, -707.0), (np.float32, 88.72, 88.73, -86.5)]
)
def test_exp_at_the_edges_of_its_range(dtype, top, overflow, lo):
    """Just below overflow (k at its largest: 2**(k−1) = 2**1023, float32 2**127) and just above
    the flush-to-zero bound lo: still within budget; just beyond them, inf and 0."""
    x = np.concatenate([np.linspace(top - 0.35, top, 200), np.linspace(lo, lo + 0.5, 50)]).astype(dtype)
    got = np.empty_like(x)
    _apply_exp(x, got)
    assert max(ulp_error(g, exact_exp(v), dtype) for v, g in zip(x, got)) <= EXP_MAX_ULP[dtype]
    beyond = np.array([overflow, np.nextafter(dtype(lo), dtype(-np.inf))], dtype=dtype)
    got = np.empty_like(beyond)
    _apply_exp(beyond, got)
    assert got[0] == np.inf and got[1] == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_special_values(dtype):
    big = 710.0 if dtype is np.float64 else 89.0
    x = np.array([0.0, np.inf, -np.inf, np.nan, big, 1e30, -1e30], dtype=dtype)
    got = np.empty_like(x)
    _apply_exp(x, got)
    assert got[0] == 1.0
    assert got[1] == np.inf and got[4] == np.inf and got[5] == np.inf  # overflow is inf, not a crash
    assert got[2] == 0.0 and got[6] == 0.0
    assert np.isnan(got[3])


@pytest.mark.parametrize(
    "dtype, low, high",
    [
        (np.float64, -700.0, 700.0),
        (np.float64, -40.0, 40.0),
        (np.float32, -80.0, 80.0),
        (np.float32, -20.0, 20.0),
    ],
)
def test_sigmoid_within_its_ulp_budget_of_correctly_rounded(dtype, low, high):
    x = _samples(dtype, low, high, seed=1)
    got = np.empty_like(x)
    _apply_sigmoid(x, got)
    errors = [ulp_error(g, exact_sigmoid(v), dtype) for v, g in zip(x, got)]
    assert max(errors) <= SIGMOID_MAX_ULP
    assert max(errors) > 0.5  # the comparison is live: the result is not correctly rounded everywhere


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_saturates_like_the_ieee_formula(dtype):
    x = np.array([0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 40.0, -40.0, -750.0, 750.0], dtype=dtype)
    got = np.empty_like(x)
    _apply_sigmoid(x, got)
    with np.errstate(over="ignore"):
        ieee = dtype(1) / (dtype(1) + np.exp(-x))
    assert got[0] == 0.5
    assert got[1] == 1.0 and got[4] == 1.0 and got[9] == 1.0  # 1 / (1 + 0)
    assert got[2] == 0.0 and got[5] == 0.0 and got[8] == 0.0  # 1 / (1 + inf)
    assert np.isnan(got[3])
    assert got[6] == ieee[6] == 1.0  # 1 + e^-40 rounds to 1
    assert ulp_error(got[7], exact_sigmoid(x[7]), dtype) <= SIGMOID_MAX_ULP


def test_pade_approximant_is_accurate_on_the_reduced_range():
    """float64's (Q + rP) / (Q − rP) against e**r at 40 digits, for |r| up to ln2/2."""
    q, p = pade_exp_coefficients(6)
    bound = 1e-18  # below 0.01 ulp
    assert q[0] == 1 and p[0] == Fraction(1, 2)  # N(r) = 1 + r/2 + ...: matches e**r to first order

    def horner(coefficients, s):
        total = decimal.Decimal(0)
        for c in reversed(coefficients):
            total = total * s + decimal.Decimal(c.numerator) / c.denominator
        return total

    worst = decimal.Decimal(0)
    for r in np.linspace(-math.log(2) / 2, math.log(2) / 2, 41):
        r = decimal.Decimal(float(r))
        Q, rP = horner(q, r * r), r * horner(p, r * r)
        worst = max(worst, abs((Q + rP) / (Q - rP) / r.exp() - 1))
    assert worst < bound
    assert worst > bound / 1e4  # an approximation, not the identity


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("function", [_apply_exp, _apply_sigmoid], ids=["exp", "sigmoid"])
def test_exp_and_sigmoid_loops_vectorise(function, dtype):
    """Plain arithmetic is the point of fastmath: a loop over it must become SIMD code."""
    x = np.linspace(-5, 5, 64).astype(dtype)
    uncached = njit(error_model="numpy")(function.py_func)  # the same loop, with its IR kept
    ir = assert_vector_loop(uncached, dtype, x, np.empty_like(x))
    # Its divisions (float64's Padé quotient, the sigmoid's 1 / (1 + e)) are among the vector
    # operations; float32's exp is a polynomial, with no division at all.
    vector, _scalar = divisions(ir, dtype)  # the loop's scalar remainder keeps scalar ones
    has_division = function is _apply_sigmoid or dtype is np.float64
    assert (max(vector, default=1) >= 2) == has_division


@njit(error_model="numpy")
def _apply_libm_sigmoid(x, out):
    for i in range(x.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-x[i]))


def test_vector_loop_check_rejects_libm_exp():
    """The check has teeth: the sigmoid on math.exp is rejected, though LLVM vectorises its loop."""
    x = np.linspace(-5, 5, 64)
    with pytest.raises(AssertionError, match="calls"):
        assert_vector_loop(_apply_libm_sigmoid, np.float64, x, np.empty_like(x))


def test_python_fallbacks_are_exp_and_the_sigmoid():
    """Outside compiled code exp and sigmoid are plain Python: the same functions, within the
    same budgets of correctly rounded values, and σ at the model's step 0 (h1 = 0.0275)."""
    x = _samples(np.float64, -700.0, 700.0, n=400, seed=2)
    assert max(ulp_error(exp(v), exact_exp(v), np.float64) for v in x) <= EXP_MAX_ULP[np.float64]
    assert max(ulp_error(sigmoid(v), exact_sigmoid(v), np.float64) for v in x) <= SIGMOID_MAX_ULP
    assert sigmoid(0.15 * 0.05 + 0.2 * 0.1) == pytest.approx(0.5068745667645342, rel=1e-12, abs=0)


def test_cached_wrappers_are_keyed_on_fastmath():
    """The wrappers above are cache=True: an edit to fastmath.py must give them a new cache key
    (conftest.py adds tests/ to fastbp._numba_cache's directories), or they would test old code."""
    from fastbp import _numba_cache

    for wrapper in (_apply_exp, _apply_sigmoid):
        locator = wrapper._cache._impl.locator  # Numba's, chosen when the wrapper was decorated
        assert locator.get_source_stamp() == _numba_cache._source_stamp(__file__)
