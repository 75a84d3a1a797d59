"""Regimes, the loss's maximum and rises, and the map value (docs/model.md "Regimes", "The
trainability map").

The labels are pinned three ways: on curves built by hand for each regime (the page's
definitions, in reference.py, and fastbp.regimes on what the kernel would track); against
reference.py on the whole recorded curve of many real runs (every step recorded, so the label
must agree with it); and on real runs of the network chosen to sit clearly inside each regime.
"""

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import reference as ref

import fastbp
from fastbp import kernels, regimes
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS

TOL = 1e-4


def tracked_from(curve):
    """What kernels_diagnostics keeps for a run, written plainly from its whole curve."""
    E = np.asarray(curve, dtype=np.float64)
    N = len(E) - 1
    k0, k1 = max(0, N - 20), max(0, N - 19)
    cap = 1e6 * E[0]
    capped = np.where(E < cap, E, cap)  # NaN is not < cap: it counts as the cap
    change = np.diff(E)
    below = np.minimum.accumulate(np.where(np.isnan(E), np.inf, E)) < TOL
    window = change[k0:]
    return {
        "E0": E[0],
        "max_loss": np.nanmax(E),
        "max_loss_step": int(np.nanargmax(E)),
        "loss_increases": int((change > 0).sum()),
        "rises_before_hit": int(((change > 0) & ~below[1:]).sum()),
        "window_rises": int((window > 1e-6 * E[k0:-1]).sum()),
        "window_falls": int((-window > 1e-6 * E[k0:-1]).sum()),
        "window_start": E[k0],
        "sum_capped": capped.sum(),
        "sum_inverse": (1 / capped).sum(),
        "tail": capped[k1:].sum(),
        "final_loss": E[-1],
    }


def classify(curves, steps, diverged=None):
    """fastbp.regimes' labels for whole curves, from what the kernel tracks."""
    tracked = [tracked_from(c) for c in curves]
    by_name = {key: np.array([t[key] for t in tracked]) for key in tracked[0]}
    first_hit = np.array([next((k for k, x in enumerate(c) if x < TOL), -1) for c in curves])
    # A run's weights stay non-finite once they are, and E is non-finite only then (docs/model.md).
    diverged = np.array([not math.isfinite(c[-1]) for c in curves]) if diverged is None else diverged
    return [regimes.REGIMES[c] for c in regimes.classify(by_name, first_hit, diverged, steps, TOL)]


def geometric(start, ratio, n):
    return [start * ratio**k for k in range(n)]


# Curves of 101 values (steps = 100), one per regime.
CONSTRUCTED = {
    "monotone": geometric(0.1, 0.9, 101),
    "bumpy": [0.1, 0.05, 0.08] + geometric(0.04, 0.9, 98),  # rises to 0.08 < 0.1, then falls
    "catapult": [0.1, 0.2, 0.3] + geometric(0.25, 0.85, 98),  # rises above its start
    "slow": geometric(0.1, 0.999, 101),  # falls 0.1 % a step: far above 1e-4 at the end
    "oscillating": geometric(0.1, 0.99, 80) + [0.05, 0.06] * 10 + [0.05],
    "stuck": geometric(0.1, 0.9, 30) + [0.0042] * 71,  # a plateau above the tolerance
    "diverged": geometric(0.1, 0.9, 50) + [math.nan] * 51,
}


@pytest.mark.parametrize("name", CONSTRUCTED)
def test_a_constructed_curve_has_its_regime(name):
    curve = CONSTRUCTED[name]
    assert ref.regime(curve, TOL) == name
    assert classify([curve], 100) == [name]


def test_borders_between_the_regimes_on_constructed_curves():
    # A rise after the tolerance is reached does not make a run bumpy (rounding at the floor).
    after = geometric(0.1, 0.8, 60) + [2e-6, 3e-6] + geometric(2e-6, 0.5, 39)
    assert ref.regime(after, TOL) == classify([after], 100)[0] == "monotone"
    # Below the tolerance at the start, then thrown up and held there: not converged.
    thrown = [5e-5, 0.2] + [0.2499] * 99
    assert ref.regime(thrown, TOL) == classify([thrown], 100)[0] == "stuck"
    # A plateau that falls by 0.5e-6 of E per step is stuck; by 2e-6 it is slow.
    for per_step, name in ((0.5e-6, "stuck"), (2e-6, "slow")):
        curve = [0.01] * 80 + [0.01 * (1 - per_step) ** k for k in range(1, 22)]
        assert ref.regime(curve, TOL) == classify([curve], 100)[0] == name
    # Rises and falls smaller than 1e-6 of E near the end are not an oscillation.
    tiny = [0.01 * (1 + 1e-7 * (k % 2)) for k in range(101)]
    assert ref.regime(tiny, TOL) == classify([tiny], 100)[0] == "stuck"
    # A steady climb with no fall is not an oscillation (nor falling): stuck.
    climb = [0.01 * (1 + 1e-4 * k) for k in range(101)]
    assert ref.regime(climb, TOL) == classify([climb], 100)[0] == "stuck"


def random_runs(n, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 3.0, (8, n))
    w[:, :8] = np.array(COURSE_WEIGHTS)[:, None]
    lr = np.exp(rng.uniform(math.log(0.01), math.log(3e4), n))
    return w, lr, np.exp(rng.uniform(math.log(0.3), math.log(3e3), n))


@pytest.mark.parametrize("case", ["one rate", "per layer", "float32", "trained biases"])
@pytest.mark.parametrize("targets", [(0.5, 0.5), (0.01, 0.99)])
def test_kernel_labels_agree_with_the_whole_recorded_curve(case, targets):
    w, lr, lr_output = random_runs(600, seed=len(case) + 2 * int(targets[0] == 0.5))
    steps, options = 150, {}
    if case == "per layer":
        options = dict(lr_output=lr_output)
    if case == "trained biases":
        biases = np.random.default_rng(9).normal(0.0, 1.0, (4, w.shape[1]))
        options = dict(biases=biases, train_biases=True)
    if case == "float32":
        w, lr = w.astype(np.float32), lr.astype(np.float32)
    r = kernels.train(
        w, lr, COURSE_INPUTS, targets, steps, 1, TOL, diagnostics=True, _slice_steps=37, **options
    )
    d = r.diagnostics
    diverged = ~(np.isfinite(r.weights).all(axis=0) & np.isfinite(r.final_loss))
    if r.biases is not None:
        diverged |= ~np.isfinite(r.biases).all(axis=0)
    tol = w.dtype.type(TOL)  # as the kernel compares
    labels = regimes.classify(d, r.first_step_below_tol, diverged, steps, tol)
    values = regimes.trainability(d, steps)
    rtol = 1e-10 if w.dtype == np.float64 else 1e-4  # float32 sums against float64 ones
    for i, curve in enumerate(r.loss.astype(np.float64)):
        assert d["E0"][i] == curve[0]
        assert d["max_loss"][i] == np.nanmax(curve)
        assert d["max_loss_step"][i] == np.nanargmax(curve)
        assert d["loss_increases"][i] == (np.diff(curve) > 0).sum()
        assert regimes.REGIMES[labels[i]] == ref.regime(curve, float(tol), diverged[i]), i
        assert math.isclose(values[i], ref.trainability(curve), rel_tol=rtol), i
    assert len(set(labels)) >= 3  # the draw spans several regimes


def test_diagnostics_do_not_depend_on_slices_and_leave_the_training_bits_alone():
    w, lr, _ = random_runs(200, seed=5)
    plain = kernels.train(w, lr, COURSE_INPUTS, COURSE_TARGETS, 300, 7)
    whole = kernels.train(w, lr, COURSE_INPUTS, COURSE_TARGETS, 300, 7, diagnostics=True)
    sliced = kernels.train(w, lr, COURSE_INPUTS, COURSE_TARGETS, 300, 7, diagnostics=True, _slice_steps=13)
    for a, b, c in zip(plain, whole, sliced):
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(a, c, equal_nan=True)
    for name in whole.diagnostics:
        assert np.array_equal(whole.diagnostics[name], sliced.diagnostics[name], equal_nan=True), name


# Runs of the course network (inputs 0.05, 0.1) clearly inside each regime: (spec keys, regime).
COURSE = dict(kind="course")
REAL_RUNS = {
    "monotone": ({"lr": [0.5], "steps": 500}, COURSE),
    "bumpy": ({"lr": [119.1], "steps": 500},
              dict(kind="fixed", weights=[[-0.104, 2.941, -4.27, 1.18, -0.567, -4.609, 1.315, -4.647]])),
    "catapult": ({"lr": [100.0], "steps": 500}, COURSE),
    "slow": ({"lr": [0.01], "steps": 200}, COURSE),
    "oscillating": ({"lr_hidden": [2.5], "lr_output": [327.0], "steps": 300}, COURSE),
    "stuck": ({"lr": [3000.0], "steps": 1000}, COURSE),
    # lr·dE/dw1 overflows at the first step: w1 = +inf (E stays finite: every σ' there is 0)
    "diverged": ({"lr": [1e4], "steps": 10, "network": {"targets": [0.01, 0.99]}},
                 dict(kind="fixed", weights=[[0.0, 0.0, 0.0, 0.0, 1.5e308, 1.5e308, 1.5e308, -1.5e308]])),
}  # fmt: skip


@pytest.mark.parametrize("name", REAL_RUNS)
def test_a_real_run_sits_in_its_regime(name, tmp_path):
    keys, init = REAL_RUNS[name]
    spec = {"record_every": 1, "diagnostics": True, "columns": ["regime", "loss", "overflow"],
            "network": {"targets": list(COURSE_TARGETS)}, "init": [init], **keys}  # fmt: skip
    fastbp.sweep(spec, out=str(tmp_path / "d"), progress=False)
    row = pq.read_table(tmp_path / "d").to_pylist()[0]
    assert row["regime"] == name
    assert ref.regime(row["loss"], TOL, row["overflow"]) == name
