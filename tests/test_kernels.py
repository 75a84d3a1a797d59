"""The training kernel: the same equations as the step table, bit for bit, in any lane.

The step table and the sweep kernel call the same model.py and fastmath.py, so a run's loss
curve in a sweep equals the table's E_total column exactly (not just to a tolerance).
"""

import re

import numpy as np
import pytest
from codegen import KERNELS_READ, assert_vector_code, divisions, ir_element_type, kernel_code

from fastbp import compile_time, conventions, kernels
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS

E_TOTAL = conventions.TABLE_COLUMNS.index("E_total")


def _random_runs(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-2, 2, (8, n)).astype(dtype)
    lr = np.exp(rng.uniform(np.log(0.05), np.log(5.0), n)).astype(dtype)
    return w, lr


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_curves_equal_the_step_table_bit_for_bit(dtype):
    w, lr = _random_runs(70, dtype)  # 70: one full block and one padded block
    steps = 60
    result = kernels.train(w, lr, COURSE_INPUTS, COURSE_TARGETS, steps, record_every=1)
    for run in (0, 33, 63, 64, 69):
        table = kernels.step_table_array(lr[run], steps + 1, COURSE_INPUTS, COURSE_TARGETS, w[:, run], dtype)
        np.testing.assert_array_equal(result.loss[run], table[:, E_TOTAL])
        assert result.loss.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_run_does_not_depend_on_its_lane_or_batch(dtype):
    w, lr = _random_runs(150, dtype, seed=1)
    together = kernels.train(w, lr, COURSE_INPUTS, (0.01, 0.99), 200, record_every=7)
    for run in (0, 31, 32, 63, 64, 100, 149):
        alone = kernels.train(
            w[:, run : run + 1], lr[run : run + 1], COURSE_INPUTS, (0.01, 0.99), 200, record_every=7
        )
        np.testing.assert_array_equal(alone.loss[0], together.loss[run])
        np.testing.assert_array_equal(alone.weights[:, 0], together.weights[:, run])
        assert alone.min_loss[0] == together.min_loss[run]


def test_recorded_steps_follow_the_spec():
    np.testing.assert_array_equal(compile_time.recorded_steps(10, 1), np.arange(11))
    np.testing.assert_array_equal(compile_time.recorded_steps(10, 3), [0, 3, 6, 9, 10])
    np.testing.assert_array_equal(compile_time.recorded_steps(10, 5), [0, 5, 10])
    np.testing.assert_array_equal(compile_time.recorded_steps(10, 0), [10])
    np.testing.assert_array_equal(compile_time.recorded_steps(10, 50), [0, 10])


def test_summaries_agree_with_the_full_curve():
    w, lr = _random_runs(90, np.float64, seed=2)
    tolerance = 1e-3
    full = kernels.train(w, lr, COURSE_INPUTS, COURSE_TARGETS, 300, record_every=1, tolerance=tolerance)
    sparse = kernels.train(w, lr, COURSE_INPUTS, COURSE_TARGETS, 300, record_every=0, tolerance=tolerance)
    np.testing.assert_array_equal(full.min_loss, full.loss.min(axis=1))
    np.testing.assert_array_equal(full.final_loss, full.loss[:, -1])
    below = full.loss < tolerance
    expected_first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
    np.testing.assert_array_equal(full.first_step_below_tol, expected_first)
    assert 0 < (expected_first >= 0).sum() < 90  # the tolerance splits the runs: the check is live
    # Summaries are kept at every step even when the curve is not recorded.
    np.testing.assert_array_equal(sparse.min_loss, full.min_loss)
    np.testing.assert_array_equal(sparse.first_step_below_tol, full.first_step_below_tol)
    np.testing.assert_array_equal(sparse.loss[:, 0], full.final_loss)
    np.testing.assert_array_equal(sparse.weights, full.weights)


def test_course_run_matches_the_spec_reference_row_2():
    result = kernels.train(
        np.array(COURSE_WEIGHTS)[:, None], np.array([2.0]), COURSE_INPUTS, COURSE_TARGETS, 2, record_every=1
    )
    assert result.loss[0, 2] == pytest.approx(0.0111684978953598, rel=1e-12)  # SPEC table, row 2
    assert result.weights[0, 0] == pytest.approx(0.148802099402227, rel=1e-12)


def test_huge_learning_rates_and_non_finite_values_are_results_not_crashes():
    w = np.repeat(np.array(COURSE_WEIGHTS)[:, None] * 1e-6, 3, axis=1)
    lr = np.array([1e308, 1e10, 1.0])
    result = kernels.train(w, lr, (1e6, -1e6), (0.01, 0.99), 20, record_every=1)
    # lr = 1e308 throws the weights to ~1e306 in one step: every sigmoid saturates, the
    # gradients vanish, and the loss sits on the plateau ½(0.01² + 0.01²) = 1e-4.
    assert np.abs(result.weights[:, 0]).max() > 1e300
    assert result.final_loss[0] == pytest.approx(1e-4, rel=1e-9)
    assert result.final_loss[2] > 1e-2  # lr = 1 is still learning
    # Infinite weights (which only a kernel caller can pass) propagate as NaN/inf, not an error.
    w[:, 1] = np.inf
    result = kernels.train(w, lr, (1.0, -1.0), (0.01, 0.99), 5, record_every=1)
    assert not np.isfinite(result.loss[1]).all()
    assert np.isfinite(result.loss[2]).all()
    # A run with no finite loss at all has no minimum (numpy.nanmin's NaN) and never gets below tol.
    w[:, 1] = np.nan
    result = kernels.train(w, lr, (1.0, -1.0), (0.01, 0.99), 5, record_every=1, tolerance=1.0)
    assert np.isnan(result.loss[1]).all() and np.isnan(result.min_loss[1])
    assert result.first_step_below_tol[1] == -1
    assert result.first_step_below_tol[2] == 0 and result.min_loss[2] == result.loss[2].min()


# The divisions of one run's step: two per float64 sigmoid (the Padé quotient, then 1 / (1 + e)),
# one per float32 sigmoid (its exp is a polynomial); four sigmoids (scripts/kernel_floor.py counts
# them in the compiled step).
DIVISIONS_PER_STEP = {np.float64: 8, np.float32: 4}
# The state rows a step writes: a_h1, a_h2 (hidden pass); a_o1, a_o2 (output pass); w1..w8,
# E_total and the running minimum (loss, backward and update).
ROWS_WRITTEN_PER_STEP = 2 + 2 + 8 + 2


def vector_stores(ir, dtype):
    """Lane counts of the ``dtype`` vector stores (plain or masked) in ``ir``."""
    name, bits = ir_element_type(dtype)
    pattern = rf"\bstore <(\d+) x {name}>|@llvm\.masked\.store\.v(\d+)f{bits}\b"
    return [int(a or b) for a, b in re.findall(pattern, ir)]


VECTOR_VARIANTS = KERNELS_READ  # which kernels, and why those: tests/codegen.py


@pytest.mark.parametrize("name", VECTOR_VARIANTS)
def test_block_update_loop_is_vectorised(name):
    """The per-run loops of the training kernel compile to SIMD code over a block's runs: vector
    arithmetic, no gathers, no libm exp (the patterns of test_fastmath.py, not LLVM's block names).
    The kernel itself is read, as a sweep compiles it: a step compiled on its own is optimised in
    another context (its rows could alias its other arguments) and is no evidence for the kernel's.
    (tests/compile_kernels.py keeps this code when it compiles these kernels: ``kernel_code``.)"""
    variant, dtype = VECTOR_VARIANTS[name]
    ir, asm = kernel_code(variant, dtype)
    assert_vector_code(name, ir, asm, dtype)
    # Every pass of the step is vector code: every row it writes is written by vector stores (LLVM
    # may unroll or interleave a pass: at least one vector store per row) ...
    stores = vector_stores(ir, dtype)
    assert len(stores) >= ROWS_WRITTEN_PER_STEP and min(stores) >= 2, stores
    # ... and every division of the four sigmoids is a vector one, in the step and in the final
    # loss's forward pass; without the diagnostics (whose per-block summaries divide once per
    # block) no division is left scalar.
    vector, scalar = divisions(ir, dtype)
    assert len(vector) >= 2 * DIVISIONS_PER_STEP[dtype] and min(vector) >= 2, vector
    if not variant.diagnostics:
        assert scalar == 0, f"{scalar} scalar divisions"
