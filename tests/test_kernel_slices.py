"""The kernel in slices of steps: the same bits wherever the slices fall, and a streamed step table.

``kernels.train`` returns to Python between slices (so a signal handler runs and a progress bar
moves) and carries every run's state from one slice to the next; ``kernels.step_table_rows``
yields the step table in chunks, carrying the weights. Neither may change a single bit.
"""

import numpy as np
import pytest
import reference as ref

from fastbp import conventions, kernels
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS

TARGETS = (0.01, 0.99)  # the other edition's targets: losses fall far, curves keep changing


def _runs(n, dtype, seed):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-3, 3, (8, n)).astype(dtype)
    lr = np.exp(rng.uniform(np.log(0.01), np.log(10.0), n)).astype(dtype)
    lr[::5] = 1e6  # sigmoids saturate at once: huge weights, vanishing gradients
    w[:, 1::9] = np.inf  # non-finite weights and NaN losses are carried across slices too
    w[3, 2::9] = np.nan
    return w, lr


def _assert_same_bits(a, b):
    for field in kernels.TrainResult._fields:
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        assert x.tobytes() == y.tobytes(), field  # bytes: NaN payloads and signed zeros included


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "steps, record_every",
    [(1, 0), (1, 1), (1, 7), (200, 0), (200, 1), (203, 7), (196, 7), (5, 7)],
)
def test_any_slicing_gives_the_bits_of_one_slice(dtype, steps, record_every):
    w, lr = _runs(70, dtype, seed=steps + record_every)  # 70 runs: a full block and a padded one
    args = (w, lr, COURSE_INPUTS, TARGETS, steps, record_every, 1e-3)
    whole = kernels.train(*args, _slice_steps=steps)
    if steps > 1:
        # The runs exercise what a slice boundary must carry: tolerance crossings, runs without
        # a finite loss, weights thrown far by lr = 1e6.
        assert (whole.first_step_below_tol > 0).any() and np.isnan(whole.min_loss).any()
        assert np.abs(whole.weights[:, ::5][np.isfinite(whole.weights[:, ::5])]).max() > 1e3
    for slice_steps in (1, 2, 7, 64, None):  # None: the adaptive slices
        _assert_same_bits(kernels.train(*args, _slice_steps=slice_steps), whole)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_run_in_slices_equals_it_among_others(dtype):
    w, lr = _runs(130, dtype, seed=3)
    together = kernels.train(w, lr, COURSE_INPUTS, TARGETS, 100, 3, _slice_steps=100)
    for run in (0, 63, 64, 129):
        alone = kernels.train(
            w[:, run : run + 1], lr[run : run + 1], COURSE_INPUTS, TARGETS, 100, 3, _slice_steps=9
        )
        for field in ("final_loss", "min_loss", "first_step_below_tol", "loss"):
            assert getattr(alone, field)[0].tobytes() == getattr(together, field)[run].tobytes(), field
        assert alone.weights[:, 0].tobytes() == together.weights[:, run].tobytes()


def test_sliced_curves_equal_the_reference_loop_to_1e12_of_their_scale():
    rng = np.random.default_rng(11)
    w = rng.uniform(-2, 2, (8, 6))
    lr = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 10.0])
    steps, record_every = 150, 4
    result = kernels.train(w, lr, COURSE_INPUTS, TARGETS, steps, record_every, _slice_steps=11)
    np.testing.assert_array_equal(result.recorded_steps, ref.recorded_steps(steps, record_every))
    for run in range(6):
        expected = np.array(ref.loss_curve(lr[run], steps, COURSE_INPUTS, TARGETS, w[:, run], record_every))
        scale = np.abs(expected).max()
        assert (np.abs(result.loss[run] - expected) <= ref.RTOL_FLOAT64 * (np.abs(expected) + scale)).all(), (
            run
        )


def test_on_slice_sees_the_steps_done_after_every_slice():
    w, lr = _runs(10, np.float64, seed=4)
    seen = []
    kernels.train(w, lr, COURSE_INPUTS, TARGETS, 30, on_slice=seen.append, _slice_steps=7)
    assert seen == [7, 14, 21, 28, 30]
    seen.clear()
    # Adaptive: the first slice is about 2**22 run-steps; later ones follow the measured rate.
    w, lr = _runs(2**16, np.float64, seed=5)
    kernels.train(w, lr, COURSE_INPUTS, TARGETS, 150, on_slice=seen.append)
    assert seen[0] == 2**22 // 2**16 and seen[-1] == 150
    assert all(a < b for a, b in zip(seen, seen[1:]))
    # One run alone computes a whole block of 64 lanes: its first slice is 64 times shorter.
    seen.clear()
    kernels.train(w[:, :1], lr[:1], COURSE_INPUTS, TARGETS, 2**16 + 10, on_slice=seen.append)
    assert seen[0] == 2**22 // 64 and seen[-1] == 2**16 + 10


def test_an_exception_from_on_slice_propagates_and_the_next_call_is_whole():
    w, lr = _runs(70, np.float64, seed=6)
    args = (w, lr, COURSE_INPUTS, TARGETS, 40, 1)
    expected = kernels.train(*args, _slice_steps=40)

    def interrupt(steps_done):
        if steps_done == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kernels.train(*args, on_slice=interrupt, _slice_steps=5)
    # Nothing of the interrupted call (its carried state, its outputs) leaks into the next one.
    _assert_same_bits(kernels.train(*args, _slice_steps=5), expected)


def test_slice_length_follows_the_measured_rate():
    # 100 steps took 0.1 s: 0.25 s is 250 steps.
    assert kernels._next_slice_steps(100, 0.1, 0.25) == 250
    # Slower than the target: shorter, but never below one step.
    assert kernels._next_slice_steps(100, 2.0, 0.25) == 12
    assert kernels._next_slice_steps(1, 10.0, 0.25) == 1
    # A very fast (or unmeasurably short) slice grows at most 64x at once.
    assert kernels._next_slice_steps(10, 1e-6, 0.25) == 640
    assert kernels._next_slice_steps(10, 0.0, 0.25) == 640


def test_recording_position_at_a_slice_start():
    # record_every 3 records steps 0, 3, 6, …: at step 7, columns 0..2 are written, 2 steps to go.
    assert kernels._recording_position(7, 3) == (3, 2)
    assert kernels._recording_position(6, 3) == (2, 0)
    assert kernels._recording_position(0, 3) == (0, 0)
    assert kernels._recording_position(5, 1) == (5, 0)
    assert kernels._recording_position(9, 0) == (0, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_step_table_rows_are_the_bits_of_step_table_array_in_any_chunks(dtype):
    steps = 150
    weights = list(COURSE_WEIGHTS)
    whole = kernels.step_table_array(2.0, steps, COURSE_INPUTS, COURSE_TARGETS, weights, dtype)
    assert whole.shape == (steps, 31) and whole.dtype == dtype
    for chunk_rows in (1, 7, 65536):
        chunks = list(
            kernels.step_table_rows(2.0, steps, COURSE_INPUTS, COURSE_TARGETS, weights, dtype, chunk_rows)
        )
        assert [len(c) for c in chunks] == [min(chunk_rows, steps - k) for k in range(0, steps, chunk_rows)]
        assert np.concatenate(chunks).tobytes() == whole.tobytes()
    assert weights == list(COURSE_WEIGHTS)  # the caller's weights are not written


def test_step_table_rows_across_chunks_follow_the_reference():
    rows = np.concatenate(
        list(kernels.step_table_rows(0.5, 40, COURSE_INPUTS, TARGETS, COURSE_WEIGHTS, chunk_rows=6))
    )
    expected = ref.step_table(0.5, 40, COURSE_INPUTS, TARGETS, COURSE_WEIGHTS)
    for name in ("w1", "w8", "E_total", "dE_dw5"):
        column = conventions.TABLE_COLUMNS.index(name)
        exp = np.array([row[name] for row in expected])
        assert (
            np.abs(rows[:, column] - exp) <= ref.RTOL_FLOAT64 * (np.abs(exp) + np.abs(exp).max())
        ).all(), name


def test_an_empty_step_table():
    assert list(kernels.step_table_rows(1.0, 0, COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS)) == []
    assert kernels.step_table_array(1.0, 0, COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS).shape == (0, 31)
