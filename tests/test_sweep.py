"""Issue 3, the sweep engine (``fastbp.sweep``): the dataset's rows against the plain reference
loop (tests/reference.py), bit-for-bit reproducibility, overflow, resume and refusals.

Tolerances (float64), with E_k the reference loss curve:

* Every curve: |E_pkg,k - E_ref,k| <= 1e-12 * (|E_ref,k| + max_j |E_ref,j|), i.e. 1e-12
  relative, or 1e-12 of the curve's own scale where the loss has fallen far below it. Why the
  floor: the package's vectorised ``exp`` (fastbp/fastmath.py) differs from libm's ``exp`` by
  1 ulp in ~14 % of calls, and once a run nearly reaches its targets E = ½(t - a)² is a
  cancellation: a 1-ulp change of a ≈ 0.5 moves E by ~1e-16 * sqrt(2E), i.e. by more than
  1e-12 *relative* as soon as E < 1e-8. Measured: every curve of lr 0.01..10, 1,000 steps,
  course and uniform [-2, 2] weights stays within 1.5e-14 of this bound's scale (a 70x margin);
  an off-by-one recorded step, a wrong gradient or float32 arithmetic is off by > 1e-9.
  (model.py's fused multiply-adds round once where the reference rounds twice: the same size.)
* The model's pointwise promise (docs/model.md "Accuracy") (1e-12 relative at every step, no floor) is tested where it
  holds: the course runs of the report lrs (88 steps) and targets 0.01/0.99 (200 steps)
  measure <= 8e-14. Where losses fall below ~1e-8 it cannot hold for any exp that is not
  bit-identical to the reference's; that test is kept, marked xfail (strict).
* float32 (RTOL_F32 = 5e-5 on the same floored measure): a float32 run is compared to the
  float64 reference started from its own float32 initial weights and float32 lr, so the
  difference is float32 rounding alone. Measured over lr 0.01..10, both target editions,
  course/uniform/normal inits: <= 6e-6 at 200 steps and at 2,000 steps (about 50 eps32). The
  bound leaves an 8x margin and is still 1e7 times looser than float64.
"""

import math
import os
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import reference as ref
from datasets import assert_same_data, read, snapshot
from reference import COURSE_INPUTS, COURSE_WEIGHTS, REPORT_LRS

import fastbp  # noqa: E402
from fastbp.errors import DatasetError, SpecError  # noqa: E402
from fastbp.layout import initial_weights, run_layout  # noqa: E402
from fastbp.spec import load_spec  # noqa: E402

RTOL_F64 = ref.RTOL_FLOAT64
RTOL_F32 = ref.RTOL_FLOAT32_CURVES
WEIGHT_NAMES = [f"w{k}" for k in range(1, 9)]
INIT_NAMES = [f"w{k}_init" for k in range(1, 9)]
OTHER_TARGETS = (0.01, 0.99)


def sweep(spec, out, **kw):
    kw.setdefault("progress", False)
    return fastbp.sweep(spec, out=str(out), **kw)


def rows(table):
    """One dict per run: scalars as Python values, ``loss`` as a float64 numpy array."""
    data = table.to_pydict()
    out = []
    for k in range(table.num_rows):
        row = {name: data[name][k] for name in table.column_names}
        row["loss"] = np.array(row["loss"], dtype=np.float64)
        out.append(row)
    return out


def mixed_spec(steps=200, targets=(0.5, 0.5), dtype="float64", record_every=1, **extra):
    return {
        "steps": steps,
        "lr": [0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0],
        "dtype": dtype,
        "seed": 2024,
        "record_every": record_every,
        "tolerance": 1e-3,
        "network": {"inputs": list(COURSE_INPUTS), "targets": list(targets)},
        "init": [
            {"kind": "course"},
            {"kind": "uniform", "low": -2.0, "high": 2.0, "count": 12},
            {"kind": "normal", "mean": 0.0, "std": 1.0, "count": 6},
            {"kind": "xavier", "count": 4},
            {"kind": "fixed", "weights": [[0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8], [0.0] * 8]},
        ],
        **extra,
    }


def reference_run(lr, steps, inputs, targets, weights):
    """(E_total at steps 0..N, final weights) by the plain float64 loop."""
    i1, i2 = (float(v) for v in inputs)
    t1, t2 = (float(v) for v in targets)
    w = tuple(float(v) for v in weights)
    curve = []
    for k in range(steps + 1):
        row = ref.step_row(i1, i2, t1, t2, w)
        curve.append(row["E_total"])
        if k < steps:
            w = ref.update(row, lr)
    return np.array(curve), np.array(w)


def curve_error(got, expected):
    """max_k |got_k - exp_k| / (|exp_k| + max_j |exp_j|): the floored relative error."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = np.abs(expected).max()
    if scale == 0:  # a run sitting on its targets (E = 0 throughout): exact
        return 0.0 if np.array_equal(got, expected) else math.inf
    return float((np.abs(got - expected) / (np.abs(expected) + scale)).max())


@pytest.fixture(scope="module")
def mixed64(tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed64") / "ds"
    summary = sweep(mixed_spec(), out)
    return out, summary


# ---------------------------------------------------------------------------------------------
# The dataset's layout


def test_schema_columns_and_types(mixed64):
    out, _ = mixed64
    schema = ds.dataset(str(out), format="parquet").schema
    expected = (  # schema version 2: lr_hidden, lr_output and the grid coordinates for every sweep
        ["run", "lr", "lr_hidden", "lr_output", "init", "init_block", "init_index", "grid_x", "grid_y"]
        + INIT_NAMES
        + WEIGHT_NAMES
        + ["final_loss", "min_loss", "first_step_below_tol", "overflow", "loss"]
    )
    assert schema.names == expected
    table = ds.dataset(str(out), format="parquet").to_table()
    assert table["lr_hidden"].equals(table["lr"]) and table["lr_output"].equals(table["lr"])  # one rate
    assert table["grid_x"].null_count == table.num_rows  # no grid block
    assert schema.field("run").type == pa.int64()
    assert schema.field("lr").type == pa.float64()
    assert schema.field("init").type == pa.string()
    assert schema.field("init_index").type == pa.int64()
    assert pa.types.is_integer(schema.field("init_block").type)
    assert pa.types.is_integer(schema.field("first_step_below_tol").type)
    assert schema.field("overflow").type == pa.bool_()
    for name in INIT_NAMES + WEIGHT_NAMES + ["final_loss", "min_loss"]:
        assert schema.field(name).type == pa.float64(), name
    assert schema.field("loss").type.value_type == pa.float64()


def test_float32_dataset_types(tmp_path):
    sweep(mixed_spec(steps=20, dtype="float32"), tmp_path / "d")
    schema = ds.dataset(str(tmp_path / "d"), format="parquet").schema
    for name in INIT_NAMES + WEIGHT_NAMES + ["final_loss", "min_loss"]:
        assert schema.field(name).type == pa.float32(), name
    assert schema.field("loss").type.value_type == pa.float32()
    assert schema.field("lr").type == pa.float64()  # the lr as specified
    assert read_metadata(tmp_path / "d")["dtype"] == "float32"


def read_metadata(out):
    import json

    files = sorted(p for p in os.listdir(out) if p.endswith(".parquet"))
    blocks = [pq.read_schema(os.path.join(out, f)).metadata[b"fastbp"] for f in files]
    assert len(set(blocks)) == 1, "every shard carries the same metadata"
    return json.loads(blocks[0])


def test_metadata(mixed64):
    import numba

    out, _ = mixed64
    meta = read_metadata(out)
    spec = load_spec(mixed_spec())
    assert meta["recorded_steps"] == list(range(201))
    assert meta["spec"] == spec.as_dict()
    assert load_spec(meta["spec"]) == spec  # the metadata alone re-creates the sweep
    assert meta["dtype"] == "float64"
    assert meta["versions"]["fastbp"] == fastbp.__version__
    assert meta["versions"]["numba"] == numba.__version__
    assert meta["versions"]["numpy"] == np.__version__
    # the same block is visible through a dataset reader's schema
    assert ds.dataset(str(out), format="parquet").schema.metadata[b"fastbp"]


def test_runs_grid_and_initial_weights(mixed64):
    out, summary = mixed64
    spec = load_spec(mixed_spec())
    table = read(out)
    assert summary.n_runs == table.num_rows == spec.n_runs == 7 * 25
    d = table.to_pydict()
    assert d["run"] == list(range(spec.n_runs))
    runs, lrs, blocks, indices = run_layout(spec, 0, spec.n_runs)
    assert d["lr"] == lrs.tolist()
    assert d["init_block"] == blocks.tolist()
    assert d["init_index"] == indices.tolist()
    kinds = [b.kind for b in spec.inits]
    assert d["init"] == [kinds[b] for b in blocks]
    w_init = np.array([d[n] for n in INIT_NAMES])
    assert np.array_equal(w_init, initial_weights(spec, blocks, indices))
    # the same initial weights at every lr (lr is the outer loop)
    per_lr = w_init.reshape(8, 7, 25)
    assert (per_lr == per_lr[:, :1, :]).all()
    course = [k for k in range(spec.n_runs) if d["init"][k] == "course"]
    assert len(course) == 7
    assert all(w_init[:, k].tolist() == list(COURSE_WEIGHTS) for k in course)


def test_shards_are_contiguous_sorted_runs(tmp_path):
    spec = mixed_spec(steps=5, shard_size=40)  # 175 runs: 40, 40, 40, 40, 15
    summary = sweep(spec, tmp_path / "d")
    assert summary.n_shards == 5
    names = sorted(n for n in os.listdir(tmp_path / "d") if not n.startswith(("_", ".")))
    assert names == [f"part-{k:06d}.parquet" for k in range(5)]
    for k, name in enumerate(names):
        runs = pq.read_table(tmp_path / "d" / name, columns=["run"]).column("run").to_pylist()
        assert runs == list(range(40 * k, min(40 * k + 40, 175)))


# ---------------------------------------------------------------------------------------------
# Against the reference


@pytest.mark.parametrize("targets", [(0.5, 0.5), OTHER_TARGETS], ids=["course-targets", "other-edition"])
def test_float64_runs_equal_the_reference_loop(targets, mixed64, tmp_path):
    if targets == (0.5, 0.5):
        out = mixed64[0]
    else:
        out = tmp_path / "d"
        sweep(mixed_spec(targets=targets), out)
    worst = 0.0
    for row in rows(read(out)):
        w0 = [row[n] for n in INIT_NAMES]
        curve, w_final = reference_run(row["lr"], 200, COURSE_INPUTS, targets, w0)
        assert len(row["loss"]) == 201
        error = curve_error(row["loss"], curve)
        worst = max(worst, error)
        assert error <= RTOL_F64, (row["run"], error)
        w = np.array([row[n] for n in WEIGHT_NAMES])
        assert (np.abs(w - w_final) <= RTOL_F64 * (np.abs(w_final) + 1)).all(), row["run"]
        assert row["final_loss"] == row["loss"][-1]
        assert abs(row["min_loss"] - curve.min()) <= RTOL_F64 * (curve.min() + curve.max())
        assert row["min_loss"] == row["loss"].min()  # every step is recorded here
        assert row["overflow"] is False
        below = np.flatnonzero(curve < 1e-3)
        near = np.abs(curve / 1e-3 - 1) < 1e-9  # a curve that grazes the tolerance: skip
        if not near.any():
            assert row["first_step_below_tol"] == (int(below[0]) if below.size else None), row["run"]
    print(f"worst floored relative error: {worst:.2e}")


@pytest.mark.parametrize(
    "targets, inits, steps",
    [
        ((0.5, 0.5), [{"kind": "course"}], 88),
        (OTHER_TARGETS, [{"kind": "course"}], 88),
        (
            OTHER_TARGETS,
            [{"kind": "course"}, {"kind": "uniform", "low": -2.0, "high": 2.0, "count": 20}],
            200,
        ),
    ],
    ids=["course-report", "course-other-edition", "other-edition-random"],
)
def test_float64_curves_are_pointwise_1e12_relative(targets, inits, steps, tmp_path):
    """The pointwise promise (docs/model.md "Accuracy"), no floor, where the losses stay well above the cancellation regime."""
    lrs = sorted(set(REPORT_LRS) | ({0.01, 5.0, 10.0} if targets == OTHER_TARGETS else set()))
    spec = {"steps": steps, "lr": lrs, "network": {"targets": list(targets)}, "init": inits}
    sweep(spec, tmp_path / "d")
    for row in rows(read(tmp_path / "d")):
        expected = ref.loss_curve(row["lr"], steps, COURSE_INPUTS, targets, [row[n] for n in INIT_NAMES])
        for got, exp in zip(row["loss"], expected, strict=True):
            assert ref.rel_close(got, exp, ref.RTOL_FLOAT64), (row["run"], got, exp)


@pytest.mark.xfail(
    strict=True,
    reason="pointwise 1e-12 relative is unreachable once E < ~1e-8: fastmath.exp differs from "
    "libm's exp by 1 ulp in ~14% of calls (and model.py's fma rounds once where the reference rounds "
    "twice), and E = 0.5 (t - a)^2 turns that ulp into a relative "
    "error of ~1e-16/sqrt(2E) (course weights, lrs 0.5/1/2, 1000 steps: 4/12/14 points off, the "
    "first at E = 2.6e-9/5.0e-9/1.3e-9). Passing would need an exp bit-identical to libm's.",
)
def test_float64_curves_pointwise_down_to_tiny_losses(tmp_path):
    sweep({"steps": 1000, "lr": [0.5, 1.0, 2.0], "init": [{"kind": "course"}]}, tmp_path / "d")
    for row in rows(read(tmp_path / "d")):
        expected = ref.loss_curve(row["lr"], 1000, weights=COURSE_WEIGHTS)
        for got, exp in zip(row["loss"], expected, strict=True):
            assert ref.rel_close(got, exp, ref.RTOL_FLOAT64), (row["run"], got, exp)


def test_spec_reference_figures_through_a_sweep(tmp_path):
    """docs/model.md "Reference figures": lr 2.0, rows 0..2 (E_total at steps 0, 1, 2; weights after 2)."""
    sweep({"steps": 2, "lr": 2.0, "init": [{"kind": "course"}]}, tmp_path / "d")
    (row,) = rows(read(tmp_path / "d"))
    figures = [0.0141813779378917, 0.0125952857792617, 0.0111684978953598]
    for got, exp in zip(row["loss"], figures, strict=True):
        assert ref.rel_close(got, exp, 1e-12)
    assert ref.rel_close(row["w1"], 0.148802099402227, 1e-12)
    assert ref.rel_close(row["w5"], 0.349871650002734, 1e-12)
    assert ref.rel_close(row["w8"], 0.489432168896106, 1e-12)


@pytest.mark.parametrize("targets", [(0.5, 0.5), OTHER_TARGETS], ids=["course-targets", "other-edition"])
def test_float32_runs_equal_the_reference_loop_to_rtol_f32(targets, tmp_path):
    sweep(mixed_spec(dtype="float32", targets=targets), tmp_path / "d")
    worst = 0.0
    for row in rows(read(tmp_path / "d")):
        w0 = [row[n] for n in INIT_NAMES]  # float32 values, exactly as trained
        lr32 = float(np.float32(row["lr"]))
        curve, w_final = reference_run(lr32, 200, COURSE_INPUTS, targets, w0)
        error = curve_error(row["loss"], curve)
        worst = max(worst, error)
        assert error <= RTOL_F32, (row["run"], error)
        w = np.array([row[n] for n in WEIGHT_NAMES], dtype=np.float64)
        assert (np.abs(w - w_final) <= RTOL_F32 * (np.abs(w_final) + 1)).all(), row["run"]
        assert row["final_loss"] == row["loss"][-1]
    # float32 really is float32: not float64 results stored in float32 columns
    assert worst > 1e-9
    print(f"worst floored relative error (float32): {worst:.2e}")


@pytest.mark.parametrize(
    "steps, record_every", [(50, 7), (50, 10), (50, 0), (50, 50), (5, 8), (1, 1), (3, 0)]
)
def test_record_every(steps, record_every, tmp_path):
    spec = {
        "steps": steps,
        "lr": [0.5, 3.0],
        "record_every": record_every,
        "init": [{"kind": "course"}, {"kind": "uniform", "count": 3}],
    }
    sweep(spec, tmp_path / "d")
    expected_steps = ref.recorded_steps(steps, record_every)
    assert read_metadata(tmp_path / "d")["recorded_steps"] == expected_steps
    for row in rows(read(tmp_path / "d")):
        expected = ref.loss_curve(
            row["lr"], steps, weights=[row[n] for n in INIT_NAMES], record_every=record_every
        )
        assert len(row["loss"]) == len(expected_steps)
        assert curve_error(row["loss"], expected) <= RTOL_F64
        assert row["final_loss"] == row["loss"][-1]
        # min_loss is over every step, recorded or not
        full, _ = reference_run(row["lr"], steps, COURSE_INPUTS, (0.5, 0.5), [row[n] for n in INIT_NAMES])
        assert abs(row["min_loss"] - full.min()) <= RTOL_F64 * (full.min() + full.max())


# ---------------------------------------------------------------------------------------------
# Bit-for-bit reproducibility


def repro_spec(dtype, shard_size=None):
    spec = {
        "steps": 60,
        "lr": [0.3, 2.0, 9.0],
        "dtype": dtype,
        "seed": 8,
        "record_every": 3,
        "init": [
            {"kind": "course"},
            {"kind": "uniform", "low": -3.0, "high": 3.0, "count": 40},
            {"kind": "normal", "count": 9},
        ],
    }  # (150 runs: 2 full blocks of 64 and a short one)
    if shard_size is not None:
        spec["shard_size"] = shard_size
    return spec


@pytest.fixture(scope="module", params=["float64", "float32"])
def baseline(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"base-{request.param}") / "ds"
    sweep(repro_spec(request.param), out, threads=1)
    return request.param, read(out)


def test_thread_count_does_not_change_a_bit(baseline, tmp_path):
    import numba

    dtype, base = baseline
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    sweep(repro_spec(dtype), tmp_path / "d", threads=threads)
    assert_same_data(read(tmp_path / "d"), base)


@pytest.mark.parametrize("shard_size", [1, 7, 64, 1000])
def test_shard_size_does_not_change_a_bit(baseline, shard_size, tmp_path):
    dtype, base = baseline
    summary = sweep(repro_spec(dtype, shard_size), tmp_path / "d", threads=1)
    assert summary.n_shards == math.ceil(150 / shard_size)
    assert_same_data(read(tmp_path / "d"), base)


def test_a_run_alone_equals_the_same_run_among_others(baseline, tmp_path):
    """A run trained by itself (its block padded from 1 to 64) gives the bits it gets in lane
    j of a full block."""
    dtype, base = baseline
    picked = [0, 1, 37, 63, 64, 100, 127, 128, 149]  # first/last lanes of each block, the short one
    table = rows(base)
    for k in picked:
        row = table[k]
        alone = {
            "steps": 60,
            "lr": [row["lr"]],
            "dtype": dtype,
            "record_every": 3,
            "init": [{"kind": "fixed", "weights": [[float(row[n]) for n in INIT_NAMES]]}],
        }
        out = tmp_path / f"alone-{k}"
        sweep(alone, out)
        (single,) = rows(read(out))
        for name in (
            WEIGHT_NAMES + INIT_NAMES + ["final_loss", "min_loss", "first_step_below_tol", "overflow"]
        ):
            assert single[name] == row[name] or (single[name] != single[name] and row[name] != row[name]), (
                k,
                name,
            )
        assert np.array_equal(single["loss"], row["loss"]), k


def test_same_spec_twice_is_the_same_dataset(baseline, tmp_path):
    dtype, base = baseline
    sweep(repro_spec(dtype), tmp_path / "d")
    assert_same_data(read(tmp_path / "d"), base)


# ---------------------------------------------------------------------------------------------
# Overflow


def test_huge_learning_rates_are_recorded_not_a_crash(tmp_path):
    spec = {
        "steps": 20,
        "lr": [1e300, 1e308, 1.0],
        "record_every": 1,
        "network": {"targets": [0.01, 0.01]},
        "init": [
            {
                "kind": "fixed",
                "weights": [
                    [1e3] * 8,  # saturated sigmoids: zero gradients
                    [0, 0, 0, 0, 1e3, -1e3, 1e3, -1e3],
                ],
            },  # lr * dE/dw1 overflows
            {"kind": "course"},
        ],
    }
    sweep(spec, tmp_path / "d")
    table = rows(read(tmp_path / "d"))
    assert len(table) == 9
    for row in table:
        w = np.array([row[n] for n in WEIGHT_NAMES])
        finite = np.isfinite(w).all() and math.isfinite(row["final_loss"])
        assert row["overflow"] is (not finite), row["run"]
        assert len(row["loss"]) == 21
    by_key = {(r["lr"], r["init_block"], r["init_index"]): r for r in table}
    blown = by_key[(1e308, 0, 1)]
    assert blown["overflow"] is True
    assert not np.isfinite([blown[n] for n in WEIGHT_NAMES]).all()
    assert by_key[(1.0, 0, 1)]["overflow"] is False
    assert by_key[(1.0, 1, 0)]["overflow"] is False
    # the brief's example, lr 1e300 with weights 1e3: every sigmoid saturates, nothing overflows
    assert by_key[(1e300, 0, 0)]["overflow"] is False


NAN_SPEC = {
    # o1 = w5 a_h1 + w6 a_h2 = 0 at step 0; the update overflows w5 (and w1, w2) to +inf, so that at
    # step 1 a_o1 = 1, δ_o1 = 0 and ∂E/∂a_h1 = 0 · inf = NaN: NaN weights and losses from step 2 on.
    "steps": 4,
    "lr": [1e308, 0.5],
    "network": {"targets": [0.99, 0.5]},
    "init": [{"kind": "fixed", "weights": [[0, 0, 0, 0, 1.79e308, -1.79e308, 0, 0]]}, {"kind": "course"}],
}


def test_nan_losses_are_recorded_not_a_crash(tmp_path):
    sweep(NAN_SPEC, tmp_path / "d")
    nan_run, *others = rows(read(tmp_path / "d"))
    assert nan_run["overflow"] is True
    assert math.isnan(nan_run["final_loss"]) and np.isnan(nan_run["loss"][2:]).all()
    assert np.isfinite(nan_run["loss"][:2]).all()
    assert nan_run["min_loss"] == nan_run["loss"][:2].min()  # NaN never counts as the minimum
    assert all(row["overflow"] is False for row in others)


def test_float32_overflow_is_recorded(tmp_path):
    spec = {
        "steps": 10,
        "lr": [1e38, 1.0],
        "dtype": "float32",
        "network": {"targets": [0.01, 0.01]},
        "init": [{"kind": "fixed", "weights": [[0, 0, 0, 0, 1e3, -1e3, 1e3, -1e3]]}],
    }
    sweep(spec, tmp_path / "d")
    first, second = rows(read(tmp_path / "d"))
    assert first["overflow"] is True and not np.isfinite([first[n] for n in WEIGHT_NAMES]).all()
    assert second["overflow"] is False


# ---------------------------------------------------------------------------------------------
# API forms, resume, refusals


def test_spec_as_toml_path_dict_or_sweepspec(tmp_path):
    text = (
        "steps = 30\nlr = [0.5, 1.5]\nseed = 3\nrecord_every = 5\n"
        '[[init]]\nkind = "course"\n[[init]]\nkind = "xavier"\ncount = 5\n'
    )
    path = tmp_path / "spec.toml"
    path.write_text(text)
    import tomllib

    sweep(path, tmp_path / "a")
    sweep(str(path), tmp_path / "b")
    sweep(tomllib.loads(text), tmp_path / "c")
    summary = sweep(load_spec(path), tmp_path / "e")
    for name in "bce":
        assert_same_data(read(tmp_path / name), read(tmp_path / "a"))
    assert (summary.n_runs, summary.n_shards, summary.shards_computed) == (12, 1, 1)


def test_rerun_of_a_finished_dataset_computes_nothing(tmp_path):
    spec = mixed_spec(steps=10, shard_size=50)
    sweep(spec, tmp_path / "d")
    before = snapshot(tmp_path / "d")
    summary = sweep(spec, tmp_path / "d")
    assert summary.shards_computed == 0
    assert snapshot(tmp_path / "d") == before


def test_resume_recomputes_only_missing_shards(tmp_path):
    spec = mixed_spec(steps=10, shard_size=30)  # 175 runs, 6 shards
    clean = tmp_path / "clean"
    sweep(spec, clean)
    out = tmp_path / "d"
    sweep(spec, out)
    os.remove(out / "part-000002.parquet")
    os.remove(out / "part-000005.parquet")
    # leftovers of a killed writer: a shard and a manifest that never got renamed
    (out / f".part-000002.parquet.tmp-{uuid.uuid4().hex}").write_bytes(b"PAR1 half a shard")
    (out / f"._manifest.json.tmp-{uuid.uuid4().hex}").write_bytes(b"{")
    kept = {k: v[:2] for k, v in snapshot(out).items() if k.startswith("part-")}
    summary = sweep(spec, out)
    assert summary.shards_computed == 2
    after = snapshot(out)
    assert {k: after[k][:2] for k in kept} == kept  # same inode, same mtime: not rewritten
    assert sorted(after) == ["_manifest.json"] + [f"part-{k:06d}.parquet" for k in range(6)]
    assert_same_data(read(out), read(clean))


def test_a_killed_manifest_write_does_not_block_the_directory(tmp_path):
    """Killed between creating the directory and renaming the manifest: only a temporary is
    left, and the same command must start the sweep rather than call the directory foreign."""
    out = tmp_path / "d"
    out.mkdir()
    (out / f"._manifest.json.tmp-{uuid.uuid4().hex}").write_bytes(b'{"format": ')
    sweep(mixed_spec(steps=5), out)
    assert sorted(os.listdir(out)) == [".fastbp-lock", "_manifest.json", "part-000000.parquet"]


def test_shard_writes_are_atomic(tmp_path, monkeypatch):
    """A shard whose write fails half-way leaves no file under its final name and no temporary;
    the same sweep run again completes and equals a clean run."""
    from fastbp import storage

    spec = mixed_spec(steps=10, shard_size=40)  # 5 shards
    real_write = pq.write_table
    calls = []

    def failing_write(table, where, **kw):
        calls.append(table.column("run")[0].as_py())
        if table.column("run")[0].as_py() == 80:  # shard 2
            where.write(b"PAR1 partial bytes")
            raise OSError("disk full (simulated)")
        return real_write(table, where, **kw)

    monkeypatch.setattr(storage.pq, "write_table", failing_write)
    out = tmp_path / "d"
    with pytest.raises(OSError, match="simulated"):
        sweep(spec, out)
    names = os.listdir(out)
    assert "part-000002.parquet" not in names
    assert not [n for n in names if ".tmp-" in n]
    for name in names:
        if name.startswith("part-"):
            pq.read_table(out / name)  # every shard present is complete
    monkeypatch.setattr(storage.pq, "write_table", real_write)
    sweep(spec, out)
    clean = tmp_path / "clean"
    sweep(spec, clean)
    assert_same_data(read(out), read(clean))


def test_another_spec_in_the_same_directory_is_refused_and_untouched(tmp_path):
    out = tmp_path / "d"
    sweep(mixed_spec(steps=10, shard_size=50), out)
    before = snapshot(out)
    for other in (
        mixed_spec(steps=11, shard_size=50),
        mixed_spec(steps=10, shard_size=51),
        mixed_spec(steps=10, shard_size=50, seed=1),
        mixed_spec(steps=10, shard_size=50, name="x"),
    ):
        with pytest.raises(DatasetError, match="different spec") as info:
            sweep(other, out)
        assert "overwrite" in str(info.value)
        assert snapshot(out) == before


def test_overwrite_replaces_another_specs_dataset(tmp_path):
    out = tmp_path / "d"
    sweep(mixed_spec(steps=10, shard_size=30), out)  # 6 shards
    (out / "notes.txt").write_text("mine")  # not fastbp's: must survive
    new = {"steps": 5, "lr": [1.0], "shard_size": 2, "init": [{"kind": "uniform", "count": 3}]}  # 2 shards
    sweep(new, out, overwrite=True)
    assert sorted(os.listdir(out)) == [
        ".fastbp-lock",
        "_manifest.json",
        "notes.txt",
        "part-000000.parquet",
        "part-000001.parquet",
    ]
    clean = tmp_path / "clean"
    sweep(new, clean)
    assert_same_data(read_parquet_only(out), read(clean))
    # overwrite with the same spec is a resume, not a recomputation
    before = snapshot(out)
    assert sweep(new, out, overwrite=True).shards_computed == 0
    assert snapshot(out) == before


def read_parquet_only(out):
    files = [os.path.join(out, n) for n in sorted(os.listdir(out)) if n.endswith(".parquet")]
    return ds.dataset(files, format="parquet").to_table().sort_by("run")


def test_output_that_is_a_file_or_a_foreign_directory_is_refused(tmp_path):
    spec = mixed_spec(steps=5)
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(DatasetError, match="is a file"):
        sweep(spec, target)
    with pytest.raises(DatasetError, match="is a file"):
        sweep(spec, target, overwrite=True)
    assert target.read_text() == "not a directory"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("a,b\n")
    with pytest.raises(DatasetError, match="no _manifest.json"):
        sweep(spec, foreign, overwrite=True)
    assert os.listdir(foreign) == ["data.csv"]


@pytest.mark.parametrize(
    "kw, fragment",
    [
        ({"threads": 0}, "threads"),
        ({"threads": 10_000}, "threads"),
        ({"threads": 1.5}, "threads"),
        ({"backend": "mpi"}, "backend"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(kw, fragment, tmp_path):
    with pytest.raises(SpecError, match=f"^{fragment}:"):
        sweep(mixed_spec(steps=5), tmp_path / "d", **kw)
    assert not (tmp_path / "d").exists()


def test_bad_spec_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(SpecError, match=r"^lr\[1\]:"):
        sweep({"steps": 5, "lr": [1.0, -1.0], "init": [{"kind": "course"}]}, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_progress_bar_goes_to_stderr_and_counts_runs(tmp_path, capsys):
    fastbp.sweep(mixed_spec(steps=5, shard_size=100), out=str(tmp_path / "d"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "175/175 runs" in captured.err
    fastbp.sweep(mixed_spec(steps=5, shard_size=100), out=str(tmp_path / "d"), progress=False)
    assert capsys.readouterr().err == ""
