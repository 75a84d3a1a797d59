"""Biases and a learning rate per layer (docs/model.md "Biases", "Learning rate per layer").

Against the independent float64 loop of reference.py (the SPEC's walk-through values, whole
curves at the floored measure of docs/model.md "Accuracy", every table cell, central
differences for the bias gradients), and against the bias-free single-rate kernels bit for bit:
zero biases are the bias-free network and equal rates are the single-rate rule, exactly.
"""

import csv
import io
import math

import numpy as np
import pytest
import reference as ref

import fastbp
import fastbp.cli as cli
from fastbp import conventions, kernels
from fastbp.conventions import COURSE_INPUTS, COURSE_WEIGHTS
from fastbp.errors import SpecError

TARGETS = ref.OTHER_EDITION_TARGETS  # losses fall far: curves keep changing
COLUMN = {name: k for k, name in enumerate(conventions.table_columns(True, True))}

# The ways to train with biases or two rates, as kernels.train's options (lr_output is set per run).
VARIANTS = {
    "fixed-shared": dict(biases="shared"),
    "fixed-per-unit": dict(biases="per_unit"),
    "trained-shared": dict(biases="shared", train_biases=True, shared_biases=True),
    "trained-per-unit": dict(biases="per_unit", train_biases=True),
    "rates": dict(lr_output=True),
    "rates-trained-per-unit": dict(lr_output=True, biases="per_unit", train_biases=True),
}


# float32 on the variant whose step has every option's code (two rates, trained biases): the
# one float32 kernel of this file stands for the others (each compile costs seconds, each dtype's
# code is the same model.py functions).
FLOAT32_VARIANTS = ["rates-trained-per-unit"]
VARIANTS_AND_DTYPES = [(v, np.float64) for v in VARIANTS] + [(v, np.float32) for v in FLOAT32_VARIANTS]


def random_runs(n, dtype=np.float64, seed=0):
    """w (8, n), lr_hidden (n,), lr_output (n,), per-unit biases (4, n), shared ones (4, n)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-2, 2, (8, n)).astype(dtype)
    lr_hidden = np.exp(rng.uniform(math.log(0.01), math.log(10.0), n)).astype(dtype)
    lr_output = np.exp(rng.uniform(math.log(0.01), math.log(10.0), n)).astype(dtype)
    per_unit = rng.uniform(-1, 1, (4, n)).astype(dtype)
    shared = per_unit[[0, 0, 2, 2]].copy()
    return w, lr_hidden, lr_output, per_unit, shared


def kernel_options(variant, lr_output, per_unit, shared):
    """kernels.train's keywords for ``variant`` (arrays over runs)."""
    spec = VARIANTS[variant]
    options = {k: v for k, v in spec.items() if k not in ("biases", "lr_output")}
    if "lr_output" in spec:
        options["lr_output"] = lr_output
    if "biases" in spec:
        options["biases"] = shared if spec["biases"] == "shared" else per_unit
    return options


def one_run(options, run):
    """The same keywords for run ``run`` alone (step table, reference)."""
    return {k: (v[..., run] if isinstance(v, np.ndarray) else v) for k, v in options.items()}


def reference_options(options):
    return {
        k: (tuple(map(float, v)) if k == "biases" else float(v) if k == "lr_output" else v)
        for k, v in options.items()
    }


def curve_error(got, expected):
    """max_k |got_k − exp_k| / (|exp_k| + max_j |exp_j|): docs/model.md's floored measure."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = np.abs(expected).max()
    if scale == 0:
        return 0.0 if np.array_equal(got, expected) else math.inf
    return float((np.abs(got - expected) / (np.abs(expected) + scale)).max())


def table_bytes(table):
    """A pyarrow table's names and its columns' bytes (equal floats with other bits differ)."""
    return table.column_names, [table.column(c).to_numpy().tobytes() for c in table.column_names]


def assert_same_bits(a, b, what="", nan_bits=True):
    """Every field of two TrainResults holds the same bits (NaN payloads and signed zeros too).

    ``nan_bits=False``: NaNs need only be NaN at the same places. Where a NaN meets a NaN, x86
    passes on one operand's NaN according to the instruction's operand order, which is LLVM's
    choice of fma form for that kernel; IEEE 754 leaves the sign and payload of a NaN result
    unspecified. So two kernels can differ in a NaN's sign bit and in nothing else.
    """
    for field in kernels.TrainResult._fields + ("biases",):
        x, y = getattr(a, field), getattr(b, field)
        if x is None or y is None:
            assert x is None and y is None, f"{what} {field}"
            continue
        assert x.dtype == y.dtype and x.shape == y.shape, f"{what} {field}"
        if not nan_bits and x.dtype.kind == "f":
            assert np.array_equal(np.isnan(x), np.isnan(y)), f"{what} {field}: NaN at other places"
            x, y = np.where(np.isnan(x), np.nan, x), np.where(np.isnan(y), np.nan, y)
        assert x.tobytes() == y.tobytes(), f"{what} {field}"


# --------------------------------------------------------------------------------------------
# The walk-through (docs/model.md "Biases"): step 0 of its scenario


def test_walkthrough_step0_reference_table_and_kernel():
    want = ref.WALKTHROUGH_STEP0
    row = ref.run(
        ref.WALKTHROUGH_LR, 0, COURSE_INPUTS, TARGETS, COURSE_WEIGHTS, biases=ref.WALKTHROUGH_BIASES
    )[0]
    table = fastbp.step_table(ref.WALKTHROUGH_LR, 2, targets=TARGETS, biases=(0.35, 0.60))
    trained = kernels.train(
        np.array(COURSE_WEIGHTS)[:, None],
        np.array([ref.WALKTHROUGH_LR]),
        COURSE_INPUTS,
        TARGETS,
        1,
        record_every=1,
        biases=np.array(ref.WALKTHROUGH_BIASES)[:, None],
    )
    for name, value in want.items():
        assert row[name] == pytest.approx(value, rel=ref.RTOL_FLOAT64, abs=0), name
        assert table.column(name)[0].as_py() == pytest.approx(value, rel=ref.RTOL_FLOAT64, abs=0), name
    assert trained.loss[0, 0] == pytest.approx(want["E_total"], rel=ref.RTOL_FLOAT64, abs=0)
    # fixed biases: both rows show the walk-through's b1, b2, and the trained run keeps them
    for name, value in zip(ref.BIAS_NAMES, ref.WALKTHROUGH_BIASES):
        assert table.column(name).to_pylist() == [value, value]
    np.testing.assert_array_equal(trained.biases[:, 0], ref.WALKTHROUGH_BIASES)


# --------------------------------------------------------------------------------------------
# Against the reference loop


@pytest.mark.parametrize("variant", VARIANTS)
def test_curves_weights_and_biases_follow_the_reference(variant):
    steps, n = 400, 32
    w, lr_h, lr_o, per_unit, shared = random_runs(n, seed=7)
    options = kernel_options(variant, lr_o, per_unit, shared)
    result = kernels.train(w, lr_h, COURSE_INPUTS, TARGETS, steps, record_every=1, **options)
    worst = 0.0
    for run in range(n):
        rows = ref.run(
            lr_h[run], steps, COURSE_INPUTS, TARGETS, w[:, run], **reference_options(one_run(options, run))
        )
        error = curve_error(result.loss[run], [r["E_total"] for r in rows])
        worst = max(worst, error)
        assert error <= ref.RTOL_FLOAT64, (variant, run, error)
        names = ref.WEIGHT_NAMES + (ref.BIAS_NAMES if "biases" in options else ())
        final = list(result.weights[:, run]) + (list(result.biases[:, run]) if "biases" in options else [])
        for name, got in zip(names, final):
            path = [r[name] for r in rows]
            assert abs(got - path[-1]) <= ref.RTOL_FLOAT64 * (abs(path[-1]) + max(map(abs, path))), (
                run,
                name,
            )
    assert worst > 0  # computed, not copied: fastmath's exp is not libm's


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", [1, 2])
def test_every_table_cell_follows_the_reference(variant, seed):
    steps = 60
    w, lr_h, lr_o, per_unit, shared = random_runs(1, seed=seed)
    options = one_run(kernel_options(variant, lr_o, per_unit, shared), 0)
    got = kernels.step_table_array(lr_h[0], steps, COURSE_INPUTS, TARGETS, w[:, 0], **options)
    rows = ref.step_table(lr_h[0], steps, COURSE_INPUTS, TARGETS, w[:, 0], **reference_options(options))
    names = conventions.table_columns("biases" in options, options.get("train_biases", False))
    assert got.shape == (steps, len(names))
    assert set(names) == set(rows[0]) & set(names)
    for c, name in enumerate(names):
        want = np.array([r[name] for r in rows])
        tol = ref.RTOL_FLOAT64 * (np.abs(want) + np.abs(want).max())
        bad = np.nonzero(~(np.abs(got[:, c] - want) <= tol))[0]
        assert not bad.size, f"{variant} {name} rows {bad[:5]}: {got[bad[:3], c]} vs {want[bad[:3]]}"


@pytest.mark.parametrize("variant", FLOAT32_VARIANTS)
def test_float32_curves_follow_the_reference_to_float32_tolerance(variant):
    steps, n = 300, 16
    w, lr_h, lr_o, per_unit, shared = random_runs(n, np.float32, seed=9)
    options = kernel_options(variant, lr_o, per_unit, shared)
    result = kernels.train(w, lr_h, COURSE_INPUTS, TARGETS, steps, record_every=1, **options)
    worst = 0.0
    for run in range(n):  # the reference starts from the same float32 numbers
        rows = ref.run(
            float(lr_h[run]),
            steps,
            COURSE_INPUTS,
            TARGETS,
            w[:, run],
            **reference_options(one_run(options, run)),
        )
        worst = max(worst, curve_error(result.loss[run], [r["E_total"] for r in rows]))
    assert 1e-9 < worst <= ref.RTOL_FLOAT32_CURVES, worst  # float32 arithmetic, within its budget


# --------------------------------------------------------------------------------------------
# Gradients of the biases against central differences of E_total


def package_e_total(inputs, targets, weights):
    def e_total(biases):
        table = kernels.step_table_array(1.0, 1, inputs, targets, weights, biases=tuple(biases))
        return float(table[0, COLUMN["E_total"]])

    return e_total


def random_point(seed):
    rng = np.random.default_rng(seed)
    inputs = tuple(rng.uniform(-1, 1, 2))
    targets = tuple(rng.uniform(0, 1, 2))
    return inputs, targets, tuple(rng.uniform(-2, 2, 8)), tuple(rng.uniform(-1, 1, 4))


FD_POINTS = [random_point(seed) for seed in (41, 42, 43, 44)] + [
    (COURSE_INPUTS, TARGETS, COURSE_WEIGHTS, ref.WALKTHROUGH_BIASES)
]


def assert_close_to_fd(names, grad, fd):
    for name, g, d in zip(names, grad, fd):
        assert abs(g - d) <= ref.FD_RTOL * abs(d) + ref.FD_ATOL, (
            f"{name}: analytic {g!r}, central difference {d!r}"
        )
    assert max(abs(d) for d in fd) > 1e3 * ref.FD_ATOL  # not all negligible: the check compared something


@pytest.mark.parametrize("inputs,targets,weights,biases", FD_POINTS)
def test_bias_gradients_are_central_differences_of_E_total(inputs, targets, weights, biases):
    row = kernels.step_table_array(1.0, 1, inputs, targets, weights, biases=biases, train_biases=True)[0]
    grad = [row[COLUMN[name]] for name in ref.BIAS_GRADIENT_NAMES]
    # of the package's own E_total, and of the reference's
    assert_close_to_fd(
        ref.BIAS_GRADIENT_NAMES,
        grad,
        ref.finite_difference_gradient(package_e_total(inputs, targets, weights), biases),
    )
    fd = ref.finite_difference_gradient(lambda b: ref.e_total_at(inputs, targets, weights, b), biases)
    assert_close_to_fd(ref.BIAS_GRADIENT_NAMES, grad, fd)
    # the weights' gradients with biases on
    fd_w = ref.finite_difference_gradient(lambda w: ref.e_total_at(inputs, targets, w, biases), weights)
    assert_close_to_fd(ref.GRADIENT_NAMES, [row[COLUMN[g]] for g in ref.GRADIENT_NAMES], fd_w)


@pytest.mark.parametrize("inputs,targets,weights,biases", FD_POINTS)
def test_a_shared_bias_moves_by_the_summed_gradient(inputs, targets, weights, biases):
    """One bias per layer (b_h = b_h1 = b_h2, b_o = b_o1 = b_o2) is one parameter: its gradient is
    the central difference of E_total in it, which is the sum of its units' gradients."""
    b_h, b_o = biases[0], biases[2]
    lr_h, lr_o = 0.7, 1.3
    table = kernels.step_table_array(
        lr_h,
        2,
        inputs,
        targets,
        weights,
        lr_output=lr_o,
        biases=(b_h, b_h, b_o, b_o),
        train_biases=True,
        shared_biases=True,
    )
    fd = ref.finite_difference_gradient(
        lambda p: ref.e_total_at(inputs, targets, weights, (p[0], p[0], p[1], p[1])), (b_h, b_o)
    )
    g = {name: table[0, COLUMN[name]] for name in ref.BIAS_GRADIENT_NAMES}
    summed = (g["dE_db_h1"] + g["dE_db_h2"], g["dE_db_o1"] + g["dE_db_o2"])
    assert_close_to_fd(("dE_db_h", "dE_db_o"), summed, fd)
    # and that sum is the step both copies take, at their layer's rate (fused: one rounding)
    for name, start, rate, gradient in (
        ("b_h1", b_h, lr_h, summed[0]),
        ("b_h2", b_h, lr_h, summed[0]),
        ("b_o1", b_o, lr_o, summed[1]),
        ("b_o2", b_o, lr_o, summed[1]),
    ):
        assert table[1, COLUMN[name]] == pytest.approx(start - rate * gradient, rel=1e-15, abs=1e-17), name
    assert g["dE_db_h1"] != g["dE_db_h2"]  # the units' own gradients differ: the sum matters


# --------------------------------------------------------------------------------------------
# Zero biases are the bias-free network, equal rates the single-rate rule: bit for bit


def hard_runs(n, dtype, seed):
    """Random runs plus the cases that stress a bit-for-bit claim: huge rates (saturation),
    infinite and NaN weights, zero weights (signed zero products)."""
    w, lr, lr_o, _, _ = random_runs(n, dtype, seed)
    w *= 2  # uniform in [-4, 4]
    lr[::7] = 1e6
    w[:, 3::11] = np.inf
    w[5, 4::13] = np.nan
    w[:, 6::17] = 0.0
    w[4:6, 8::19] = -0.0
    return w, lr, lr_o


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("inputs", [COURSE_INPUTS, (-0.5, -0.25), (0.0, -1.0)])
def test_zero_biases_are_the_bias_free_kernel_bit_for_bit(dtype, inputs):
    w, lr, _ = hard_runs(4096, dtype, seed=3)
    bias_free = kernels.train(w, lr, inputs, TARGETS, 100, record_every=1)
    for zero in (0.0, -0.0):
        biases = np.full((4, lr.shape[0]), zero, dtype=dtype)
        fixed = kernels.train(w, lr, inputs, TARGETS, 100, record_every=1, biases=biases)
        assert fixed.biases.tobytes() == biases.tobytes()
        fixed.biases = None
        assert_same_bits(fixed, bias_free, f"biases {zero}", nan_bits=False)  # another kernel
    assert np.isnan(bias_free.loss).any() and (bias_free.first_step_below_tol >= 0).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_biases_are_the_bias_free_table_bit_for_bit(dtype):
    scenarios = [random_point(seed)[:3] for seed in range(50, 80)]
    # zero weights on negative inputs: products of −0, so h1 = −0 and o1 = −0 in the bias-free
    # table; a +0 bias added to them would turn them into +0
    scenarios.append(((-0.5, -0.25), TARGETS, (0.0, 0.0, 0.3, -0.2, -0.0, -0.0, 0.5, 0.4)))
    for inputs, targets, weights in scenarios:
        bias_free = kernels.step_table_array(2.0, 40, inputs, targets, weights, dtype)
        for zero in (0.0, -0.0):
            fixed = kernels.step_table_array(2.0, 40, inputs, targets, weights, dtype, biases=(zero,) * 4)
            assert fixed[:, :31].tobytes() == bias_free.tobytes(), (inputs, weights, zero)
            assert fixed[:, 31:].tobytes() == np.full((40, 4), zero, dtype).tobytes()
            trained = kernels.step_table_array(
                2.0, 1, inputs, targets, weights, dtype, biases=(zero,) * 4, train_biases=True
            )
            assert trained[0, :31].tobytes() == bias_free[0].tobytes()  # row 0: before any bias moves
    assert np.signbit(bias_free[0, COLUMN["h1"]]) and np.signbit(bias_free[0, COLUMN["o1"]])


def test_zero_biases_print_the_bias_free_csv(capsys):
    base = ["table", "--lr", "1.5", "--steps", "30", "--targets", "0.01", "0.99"]
    assert cli.main(base) == 0
    bias_free = capsys.readouterr().out.splitlines()
    for zeros in (["0", "0"], ["0", "-0", "0", "0"]):
        assert cli.main(base + ["--biases", *zeros]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [",".join(line.split(",")[:31]) for line in lines] == bias_free
        assert lines[0].split(",")[31:] == list(ref.BIAS_NAMES)


@pytest.mark.parametrize("dtype", [np.float64])  # the same operations in float32 (one kernel fewer)
def test_equal_rates_are_the_single_rate_bits(dtype):
    w, lr, _ = hard_runs(2048, dtype, seed=4)
    _, _, _, per_unit, _ = random_runs(2048, dtype, seed=4)
    single = kernels.train(w, lr, COURSE_INPUTS, TARGETS, 80, record_every=1)
    two_rates = kernels.train(w, lr, COURSE_INPUTS, TARGETS, 80, record_every=1, lr_output=lr.copy())
    assert_same_bits(two_rates, single, nan_bits=False)  # another kernel: see assert_same_bits
    for train_biases in (False, True):
        options = dict(biases=per_unit, train_biases=train_biases)
        one_rate = kernels.train(w, lr, COURSE_INPUTS, TARGETS, 80, record_every=1, **options)
        two_rates = kernels.train(
            w, lr, COURSE_INPUTS, TARGETS, 80, record_every=1, lr_output=lr.copy(), **options
        )
        assert_same_bits(two_rates, one_rate, nan_bits=False)  # another kernel, as above
    for inputs, targets, weights, biases in FD_POINTS:
        one = fastbp.step_table(
            0.8, 30, inputs, targets, weights, str(np.dtype(dtype)), biases=biases, train_biases=True
        )
        two = fastbp.step_table(
            lr_hidden=0.8,
            lr_output=0.8,
            steps=30,
            inputs=inputs,
            targets=targets,
            weights=weights,
            dtype=dtype,
            biases=biases,
            train_biases=True,
        )
        assert table_bytes(one) == table_bytes(two)
        plain = fastbp.step_table(
            lr_hidden=0.8,
            lr_output=0.8,
            steps=30,
            inputs=inputs,
            targets=targets,
            weights=weights,
            dtype=dtype,
        )
        assert table_bytes(plain) == table_bytes(fastbp.step_table(0.8, 30, inputs, targets, weights, dtype))
    # the test has teeth: different rates give different runs
    other = kernels.train(w, lr, COURSE_INPUTS, TARGETS, 80, record_every=1, lr_output=lr * 2)
    assert not np.array_equal(other.weights[4:], single.weights[4:], equal_nan=True)


def test_shared_trained_biases_stay_equal_and_differ_from_per_unit():
    w, lr_h, lr_o, _, shared = random_runs(130, seed=5)
    options = dict(lr_output=lr_o, biases=shared, train_biases=True)
    together = kernels.train(w, lr_h, COURSE_INPUTS, TARGETS, 200, shared_biases=True, **options)
    assert together.biases[0].tobytes() == together.biases[1].tobytes()
    assert together.biases[2].tobytes() == together.biases[3].tobytes()
    apart = kernels.train(w, lr_h, COURSE_INPUTS, TARGETS, 200, **options)  # per unit, from equal values
    assert (apart.biases[0] != apart.biases[1]).all() and (apart.biases[2] != apart.biases[3]).all()
    table = kernels.step_table_array(
        lr_h[0],
        50,
        COURSE_INPUTS,
        TARGETS,
        w[:, 0],
        lr_output=lr_o[0],
        biases=shared[:, 0],
        train_biases=True,
        shared_biases=True,
    )
    np.testing.assert_array_equal(table[:, COLUMN["b_h1"]], table[:, COLUMN["b_h2"]])
    np.testing.assert_array_equal(table[:, COLUMN["b_o1"]], table[:, COLUMN["b_o2"]])
    assert len(set(table[:, COLUMN["b_h1"]])) == 50  # and they do move


# --------------------------------------------------------------------------------------------
# The kernels against each other: the same model functions, the same bits


@pytest.mark.parametrize("variant, dtype", VARIANTS_AND_DTYPES)
def test_kernel_runs_are_the_step_table_rows_bit_for_bit(variant, dtype):
    steps = 50
    w, lr_h, lr_o, per_unit, shared = random_runs(70, dtype, seed=6)  # a full block and a padded one
    options = kernel_options(variant, lr_o, per_unit, shared)
    result = kernels.train(w, lr_h, COURSE_INPUTS, TARGETS, steps, record_every=1, **options)
    for run in (0, 33, 63, 64, 69):
        table = kernels.step_table_array(
            lr_h[run], steps + 1, COURSE_INPUTS, TARGETS, w[:, run], dtype, **one_run(options, run)
        )
        np.testing.assert_array_equal(result.loss[run], table[:, COLUMN["E_total"]])
        final = table[steps]  # row N: the weights (and biases) after N updates
        np.testing.assert_array_equal(result.weights[:, run], [final[COLUMN[n]] for n in ref.WEIGHT_NAMES])
        if "biases" in options:
            np.testing.assert_array_equal(result.biases[:, run], [final[COLUMN[n]] for n in ref.BIAS_NAMES])
        else:
            assert result.biases is None


@pytest.mark.parametrize("variant, dtype", VARIANTS_AND_DTYPES)
def test_any_slicing_gives_the_same_bits(variant, dtype):
    w, lr_h, lr_o = hard_runs(70, dtype, seed=8)
    _, _, _, per_unit, shared = random_runs(70, dtype, seed=8)
    options = kernel_options(variant, lr_o, per_unit, shared)
    args = (w, lr_h, COURSE_INPUTS, TARGETS, 203, 7, 1e-3)
    whole = kernels.train(*args, _slice_steps=203, **options)
    assert (whole.first_step_below_tol > 0).any()  # a tolerance crossing is carried across slices
    for slice_steps in (1, 7, 64, None):
        assert_same_bits(
            kernels.train(*args, _slice_steps=slice_steps, **options), whole, f"slices of {slice_steps}"
        )
    run_options = one_run(options, 0)
    table = kernels.step_table_array(lr_h[0], 100, COURSE_INPUTS, TARGETS, w[:, 0], dtype, **run_options)
    for chunk_rows in (1, 7, 64):
        chunks = kernels.step_table_rows(
            lr_h[0], 100, COURSE_INPUTS, TARGETS, w[:, 0], dtype, chunk_rows, **run_options
        )
        assert np.concatenate(list(chunks)).tobytes() == table.tobytes()


def test_train_result_keeps_its_six_fields_and_says_its_biases():
    w, lr, lr_o, per_unit, shared = random_runs(5, seed=10)
    assert kernels.TrainResult._fields == (
        "weights",
        "final_loss",
        "min_loss",
        "first_step_below_tol",
        "loss",
        "recorded_steps",
    )
    assert kernels.train(w, lr, COURSE_INPUTS, TARGETS, 5).biases is None
    assert kernels.train(w, lr, COURSE_INPUTS, TARGETS, 5, lr_output=lr_o).biases is None
    fixed = kernels.train(w, lr, COURSE_INPUTS, TARGETS, 5, biases=per_unit)
    assert fixed.biases is not per_unit and fixed.biases.tobytes() == per_unit.tobytes()
    trained = kernels.train(w, lr, COURSE_INPUTS, TARGETS, 5, biases=per_unit, train_biases=True)
    assert (trained.biases != per_unit).all()
    assert len(trained) == 6 and trained._replace(loss=None).biases is None
    empty = kernels.train(
        w[:, :0], lr[:0], COURSE_INPUTS, TARGETS, 5, biases=per_unit[:, :0], train_biases=True
    )
    assert empty.biases.shape == (4, 0)
    with pytest.raises(ValueError, match="equal rows"):
        kernels.train(
            w, lr, COURSE_INPUTS, TARGETS, 5, biases=per_unit, train_biases=True, shared_biases=True
        )
    with pytest.raises(ValueError, match="needs biases"):
        kernels.train(w, lr, COURSE_INPUTS, TARGETS, 5, train_biases=True)
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        kernels.train(w, lr, COURSE_INPUTS, TARGETS, 5, biases=per_unit[:2])


# --------------------------------------------------------------------------------------------
# The step table's columns and options


def test_bias_columns_follow_the_31():
    table = fastbp.step_table(0.5, 3, biases=(0.1, 0.2, 0.3, 0.4), train_biases=True)
    assert table.column_names[:31] == list(conventions.TABLE_COLUMNS)
    assert table.column_names[31:] == list(ref.BIAS_NAMES + ref.BIAS_GRADIENT_NAMES)
    assert {str(f.type) for f in table.schema} == {"double"}
    fixed = fastbp.step_table(0.5, 3, biases=(0.1, 0.2))
    assert fixed.column_names[31:] == list(ref.BIAS_NAMES)
    assert fixed.column("b_h2").to_pylist() == [0.1] * 3 and fixed.column("b_o1").to_pylist() == [0.2] * 3
    assert fastbp.step_table(lr_hidden=0.5, lr_output=0.3, steps=3).column_names == list(
        conventions.TABLE_COLUMNS
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_table_with_biases_and_two_rates_is_step_table(fmt, tmp_path, capsys):
    import pyarrow.parquet as pq

    out = tmp_path / f"t.{fmt}"
    argv = ["table", "--lr-hidden", "0.7", "--lr-output", "2", "--steps", "25", "--biases", "0.35", "0.6"]
    assert (
        cli.main(argv + ["--train-biases", "--targets", "0.01", "0.99", "--format", fmt, "--out", str(out)])
        == 0
    )
    want = fastbp.step_table(
        lr_hidden=0.7, lr_output=2.0, steps=25, targets=TARGETS, biases=(0.35, 0.6), train_biases=True
    )
    if fmt == "parquet":
        assert pq.read_table(out).equals(want)
    else:
        rows = list(csv.reader(io.StringIO(out.read_text())))
        assert rows[0] == want.column_names
        for c, name in enumerate(rows[0]):  # repr of a float reads back to the same double
            assert [float(r[c]) for r in rows[1:]] == want.column(name).to_pylist(), name


LIBRARY_REFUSALS = [
    (dict(lr=1.0, lr_hidden=1.0, lr_output=1.0), "lr"),
    (dict(lr_hidden=1.0), "lr_output"),
    (dict(lr_output=1.0), "lr_hidden"),
    (dict(), "lr"),
    (dict(lr_hidden=float("nan"), lr_output=1.0), "lr_hidden"),
    (dict(lr_hidden=1.0, lr_output="fast"), "lr_output"),
    (dict(lr=1.0, biases=(0.1, 0.2, 0.3)), "biases"),
    (dict(lr=1.0, biases=0.1), "biases"),
    (dict(lr=1.0, biases="0.1 0.2"), "biases"),
    (dict(lr=1.0, biases=(0.1, math.inf)), "biases[1]"),
    (dict(lr=1.0, train_biases=True), "train_biases"),
    (dict(lr=1.0, biases=(0.1, 0.2), train_biases="yes"), "train_biases"),
    (dict(lr=1.0, biases=(1e39, 0.2), dtype="float32"), "biases[0]"),
    (dict(lr=1.0, biases=(0.1, 0.2, 0.3, -1e39), dtype="float32"), "biases[3]"),
    (dict(lr_hidden=1.0, lr_output=1e39, dtype="float32"), "lr_output"),
    (dict(lr=1e39, dtype="float32"), "lr"),
    (dict(lr=1.0, weights=(1e39,) + COURSE_WEIGHTS[1:], dtype="float32"), "weights[0]"),
]


@pytest.mark.parametrize(
    "kw,field", LIBRARY_REFUSALS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(LIBRARY_REFUSALS)]
)
def test_step_table_refusals_name_the_field(kw, field):
    with pytest.raises(SpecError) as refused:
        fastbp.step_table(steps=3, **kw)
    assert refused.value.field == field


CLI_BASE = ["table", "--steps", "3"]
CLI_REFUSALS = [
    (["--lr", "1", "--lr-hidden", "1", "--lr-output", "2"], ["--lr", "--lr-hidden", "--lr-output"]),
    (["--lr", "1", "--lr-output", "2"], ["--lr"]),
    (["--lr-hidden", "1"], ["--lr-output", "--lr-hidden"]),
    (["--lr-output", "1"], ["--lr-hidden", "--lr-output"]),
    ([], ["--lr", "--lr-hidden"]),
    (["--lr-hidden", "abc", "--lr-output", "1"], ["--lr-hidden", "abc"]),
    (["--lr-hidden", "1", "--lr-output", "inf"], ["--lr-output", "inf"]),
    (["--lr", "1", "--biases", "0.1"], ["--biases", "0.1", "2", "4"]),
    (["--lr", "1", "--biases", "0.1", "0.2", "0.3"], ["--biases", "0.3", "(3 given)"]),
    (["--lr", "1", "--biases", "0.1", "0.2", "0.3", "0.4", "0.5"], ["--biases", "(5 given)"]),
    (["--lr", "1", "--biases", "0.1", "nan"], ["--biases[1]", "nan"]),
    (["--lr", "1", "--biases", "x", "0.1"], ["--biases[0]", "x"]),
    (["--lr", "1", "--biases"], ["--biases"]),
    (["--lr", "1", "--train-biases"], ["--train-biases", "--biases"]),
    (["--lr", "1", "--biases", "1e39", "0", "--dtype", "float32"], ["--biases[0]", "1e+39", "float32"]),
    (["--lr-hidden", "1e39", "--lr-output", "1", "--dtype", "float32"], ["--lr-hidden", "float32"]),
    (["--lr-hidden", "1", "--lr-output=1e39", "--dtype", "float32"], ["--lr-output", "1e+39", "float32"]),
    # a rate must be > 0, as in a sweep (issue 25): that is said before float32's range
    (["--lr-hidden", "1", "--lr-output=-1e39", "--dtype", "float32"], ["--lr-output", "-1e+39", "> 0"]),
]


@pytest.mark.parametrize(
    "argv,fragments", CLI_REFUSALS, ids=[" ".join(a) or "no-rate" for a, _ in CLI_REFUSALS]
)
def test_cli_refusals_of_the_new_options(argv, fragments, tmp_path, capsys):
    out = tmp_path / "table.csv"
    code = cli.main(CLI_BASE + argv + ["--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    assert "lr_" not in lines[0] and "_biases" not in lines[0]  # options, not the library's names
    assert stdout == "" and not out.exists()
