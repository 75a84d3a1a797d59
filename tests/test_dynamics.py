"""A sweep's diagnostics, stability curve and choice of columns, end to end (docs/model.md
"Regimes", "The trainability map"): the dataset's sharpness against the numpy Hessian at the
weights the dataset itself holds, the stability curve against shorter sweeps, converged runs
against the 2/lr rule, the map pixel for pixel across threads and shard sizes, the spec keys'
refusals and the figures they enable. (Dask: tests/test_dask.py.)
"""

import json
import os

import numba
import numpy as np
import pyarrow.parquet as pq
import pytest

import fastbp
from fastbp import cli, columns, dynamics, plan, sharpness
from fastbp.conventions import COURSE_INPUTS
from fastbp.errors import SpecError
from fastbp.spec import load_spec

TARGETS = [0.5, 0.5]


def lr_sweep(**changes):
    """The course weights and 40 random starts at rates below and far above 2/λ_max ≈ 74.8."""
    spec = {
        "steps": 400,
        "lr": [3.0, 30.0, 70.0, 100.0, 300.0, 3000.0],
        "record_every": 0,
        "diagnostics": True,
        "network": {"targets": TARGETS},
        "init": [{"kind": "course"}, {"kind": "uniform", "count": 40}],
    }
    spec.update(changes)
    return spec


def read(path, columns=None):
    return (
        pq.read_table(path, columns=None if columns is None else ["run", *columns]).sort_by("run").to_pydict()
    )


def weights(row_table, suffix):
    return np.array([row_table[f"w{k}{suffix}"] for k in range(1, 9)], dtype=np.float64)


@pytest.mark.parametrize(
    "network",
    [
        {"targets": TARGETS},
        {"targets": [0.01, 0.99], "biases": [0.35, 0.6], "train_biases": True},
        {"targets": [0.2, 0.7], "biases": [0.1, -0.2, 0.3, -0.4], "train_biases": True},
    ],
    ids=["no biases", "trained shared biases", "trained per-unit biases"],
)
def test_sharpness_columns_are_the_hessians_at_the_stored_weights(network, tmp_path):
    fastbp.sweep(lr_sweep(network=network, steps=150), out=str(tmp_path / "d"), progress=False)
    t = read(tmp_path / "d")
    biased = "biases" in network
    shared = biased and len(network["biases"]) == 2
    for when, suffix in (("init", "_init"), ("final", "")):
        biases = None
        if biased:
            biases = np.array([t[f"{b}{suffix}"] for b in ("b_h1", "b_h2", "b_o1", "b_o2")])
        H = sharpness.hessian(COURSE_INPUTS, network["targets"], weights(t, suffix), biases, biased, shared)
        expected = sharpness.sharpness(H)
        got = np.array(t[f"sharpness_{when}"])
        finite = np.isfinite(expected)
        assert finite.sum() > 200
        scale = np.abs(np.linalg.eigvalsh(H[finite])).max(axis=1)
        assert np.all(np.abs(got[finite] - expected[finite]) <= 1e-10 * scale)
        # One rate: the stability number is lr · λ_max, exactly that product.
        assert np.array_equal(np.array(t[f"stability_{when}"]), np.array(t["lr"]) * got)


def test_per_layer_stability_is_the_top_eigenvalue_of_p_h(tmp_path):
    spec = lr_sweep(lr=None, lr_hidden=[1.0, 40.0], lr_output=[0.5, 40.0, 300.0], steps=100)
    del spec["lr"]
    fastbp.sweep(spec, out=str(tmp_path / "d"), progress=False)
    t = read(tmp_path / "d")
    H = sharpness.hessian(COURSE_INPUTS, TARGETS, weights(t, "_init"))
    expected = sharpness.stability(H, np.array(t["lr_hidden"]), np.array(t["lr_output"]))
    got = np.array(t["stability_init"])
    assert np.allclose(got, expected, rtol=1e-10, atol=0)
    equal = np.array(t["lr_hidden"]) == np.array(t["lr_output"])
    assert equal.any()
    ratio = got[equal] / (np.array(t["lr_hidden"])[equal] * np.array(t["sharpness_init"])[equal])
    assert np.allclose(ratio, 1.0, rtol=1e-12, atol=0)


def test_the_stability_curve_is_the_stability_at_each_recorded_step(tmp_path):
    fastbp.sweep(lr_sweep(steps=60, stability_every=25), out=str(tmp_path / "all"), progress=False)
    t = read(tmp_path / "all")
    meta = json.loads(pq.read_schema(next((tmp_path / "all").glob("*.parquet"))).metadata[b"fastbp"])
    assert meta["stability_steps"] == [0, 25, 50, 60] and meta["schema_version"] == 3
    curves = np.array(t["stability"])
    assert np.array_equal(curves[:, 0], t["stability_init"])
    assert np.array_equal(curves[:, -1], t["stability_final"])
    for column, steps in ((1, 25), (2, 50)):  # a sweep that stops there ends with the same number
        fastbp.sweep(lr_sweep(steps=steps), out=str(tmp_path / str(steps)), progress=False)
        assert np.array_equal(curves[:, column], read(tmp_path / str(steps))["stability_final"])


def test_converged_runs_end_below_the_stability_limit(tmp_path):
    # lr from 30 to 3,000: many runs catapult, rising above their start before converging.
    spec = lr_sweep(steps=1000, lr={"logspace": [1.5, 3.5], "num": 25})
    fastbp.sweep(spec, out=str(tmp_path / "d"), progress=False)
    t = read(tmp_path / "d", ["regime", "stability_final", "stability_init"])
    regime = np.array(t["regime"])
    converged = np.isin(regime, ["monotone", "bumpy", "catapult"])
    assert (regime == "catapult").sum() > 200 and converged.sum() > 500
    final = np.array(t["stability_final"])[converged]
    # The 2/lr rule: a run can come to rest only where lr·λ_max ≤ 2 (measured: at most 1.991).
    assert final.max() <= 2.0 + 1e-3
    # ... though many started above it.
    assert (np.array(t["stability_init"])[converged] > 2).sum() > 100


def map_spec(**changes):
    spec = {
        "steps": 300,
        "lr_hidden": {"logspace": [0, 3.5], "num": 24},
        "lr_output": {"logspace": [0, 3.5], "num": 20},
        "record_every": 0,
        "diagnostics": True,
        "columns": ["lr_hidden", "lr_output", "trainability", "regime", "stability_final"],
        "network": {"targets": TARGETS},
        "init": [{"kind": "course"}],
    }
    spec.update(changes)
    return spec


def test_the_map_is_the_same_pixel_for_pixel_with_any_threads_and_shard_size(tmp_path):
    previous = numba.get_num_threads()
    try:
        fastbp.sweep(map_spec(), out=str(tmp_path / "a"), threads=1, progress=False)
        fastbp.sweep(
            map_spec(shard_size=64), out=str(tmp_path / "b"), threads=min(2, previous), progress=False
        )
        fastbp.sweep(map_spec(shard_size=100), out=str(tmp_path / "c"), progress=False)
    finally:
        numba.set_num_threads(previous)
    a = read(tmp_path / "a")
    assert sorted(a) == ["lr_hidden", "lr_output", "regime", "run", "stability_final", "trainability"]
    for other in ("b", "c"):
        b = read(tmp_path / other)
        for name in a:
            assert np.array_equal(np.array(a[name]), np.array(b[name])), name
    trainability = np.array(a["trainability"])
    assert (trainability < 0).any() and (trainability > 0).any()  # the window holds the boundary


def test_columns_keep_only_what_is_named_and_run(tmp_path):
    spec = lr_sweep(columns=["trainability", "lr"])
    fastbp.sweep(spec, out=str(tmp_path / "d"), progress=False)
    assert pq.read_schema(next((tmp_path / "d").glob("*.parquet"))).names == ["run", "lr", "trainability"]
    parsed = load_spec(spec)
    assert plan.bytes_per_run(parsed) == 8 * 3  # run, lr, trainability
    assert plan.bytes_per_run(load_spec(lr_sweep())) > 200


@pytest.mark.parametrize(
    "changes, field, allowed",
    [
        ({"diagnostics": "yes"}, "diagnostics", "true or false"),
        ({"stability_every": 401}, "stability_every", "integer from 1 to steps (400)"),
        ({"stability_every": -1}, "stability_every", ">= 0"),
        ({"columns": "trainability"}, "columns", "a list of column names"),
        ({"columns": ["lr", "sharpnes_init"]}, "columns[1]", "a column of this sweep: run, lr,"),
        ({"diagnostics": False, "columns": ["regime"]}, "columns[0]", "a column of this sweep"),
        ({"columns": ["b_h1"]}, "columns[0]", "a column of this sweep"),
        ({"steps": 10**7, "stability_every": 1}, "stability_every", "at most 2,097,152 points per run"),
        ({"stability_every": 1, "shard_size": 2**23}, "shard_size", "stability points < 2**31"),
    ],
)
def test_bad_keys_are_refused_in_one_line(changes, field, allowed):
    with pytest.raises(SpecError) as caught:
        load_spec(lr_sweep(**changes))
    assert caught.value.field == field
    assert allowed in str(caught.value) and "\n" not in str(caught.value)


def test_a_spec_without_the_new_keys_keeps_its_form_and_schema_version(tmp_path):
    plain = lr_sweep()
    del plain["diagnostics"]
    assert "diagnostics" not in load_spec(plain).as_dict()
    assert load_spec({**plain, "diagnostics": False}).fingerprint == load_spec(plain).fingerprint
    every = [c.name for c in columns.spec_columns(load_spec(plain))]
    assert load_spec({**plain, "columns": every[::-1]}).fingerprint == load_spec(plain).fingerprint
    fastbp.sweep(plain, out=str(tmp_path / "d"), progress=False)
    meta = json.loads(pq.read_schema(next((tmp_path / "d").glob("*.parquet"))).metadata[b"fastbp"])
    assert meta["schema_version"] == 2 and "regime" not in meta["columns"]


def test_plot_draws_what_the_columns_allow(tmp_path, capsys):
    fastbp.sweep(map_spec(), out=str(tmp_path / "map"), progress=False)
    assert cli.main(["plot", str(tmp_path / "map"), "--out", str(tmp_path / "f")]) == 0
    assert sorted(os.listdir(tmp_path / "f")) == ["trainability_map.png"]
    edge = lr_sweep(steps=40, record_every=1, stability_every=1, init=[{"kind": "course"}])
    fastbp.sweep(edge, out=str(tmp_path / "edge"), progress=False)
    out = tmp_path / "g"
    assert (
        cli.main(
            ["plot", str(tmp_path / "edge"), "--out", str(out), "--figures", "regimes,edge_of_stability"]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == ["edge_of_stability.png", "regimes.png"]
    capsys.readouterr()
    assert cli.main(["plot", str(tmp_path / "map"), "--out", str(out), "--figures", "regimes"]) == 2
    assert cli.main(["plot", str(tmp_path / "map"), "--out", str(out), "--figures", "maps"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--figures" in err[1] and "maps" in err[1] and "trainability_map" in err[1]


def grid_map(tmp_path, lr, x, y, name):
    spec = {"steps": 150, "lr": lr, "record_every": 0, "diagnostics": True,
            "network": {"targets": TARGETS}, "init": [{"kind": "grid", "x": x, "y": y}]}  # fmt: skip
    fastbp.sweep(spec, out=str(tmp_path / name), progress=False)
    return dynamics.trainability_map(str(tmp_path / name)), read(tmp_path / name)


def test_a_map_over_two_weights_of_a_grid_is_one_pixel_per_run(tmp_path):
    x = {"weight": "w5", "linspace": [-6.0, 6.0], "num": 12}
    y = {"weight": "w6", "logspace": [-1.0, 1.0], "num": 10}
    found, t = grid_map(tmp_path, [40.0], x, y, "d")
    assert found.values.shape == (10, 12) and found.n_runs == 120
    assert np.array_equal(found.x, np.linspace(-6, 6, 12)) and np.array_equal(found.y, np.logspace(-1, 1, 10))
    assert "w5" in found.x_label and "w6" in found.y_label
    for gx, gy, value in zip(t["grid_x"], t["grid_y"], t["trainability"]):
        assert found.values[list(found.y).index(gy), list(found.x).index(gx)] == value


def test_a_map_of_the_rate_against_a_layer_offset(tmp_path):
    x = {"offset": "hidden", "linspace": [-2.0, 2.0], "num": 6}
    y = {"weight": "w8", "linspace": [0.55, 0.55], "num": 1}
    found, t = grid_map(tmp_path, {"logspace": [0, 3], "num": 8}, x, y, "d")
    assert found.values.shape == (6, 8) and found.x_label == "learning rate"
    assert "offset of hidden" in found.y_label
    assert np.isfinite(found.values).all()  # every pixel has its run
    assert (
        cli.main(["plot", str(tmp_path / "d"), "--out", str(tmp_path / "f"), "--figures", "trainability_map"])
        == 0
    )
    assert os.listdir(tmp_path / "f") == ["trainability_map.png"]


def test_a_map_of_a_grid_beside_other_blocks_and_rates_has_one_run_per_pixel(tmp_path):
    # The grid's own two axes, at the first rate, and only the grid block's runs (the course
    # run beside it has no grid coordinates).
    x = {"weight": "w5", "linspace": [-3.0, 3.0], "num": 6}
    y = {"weight": "w7", "linspace": [-3.0, 3.0], "num": 5}
    spec = {"steps": 60, "lr": [3.0, 30.0, 300.0], "record_every": 0, "diagnostics": True,
            "init": [{"kind": "course"}, {"kind": "grid", "x": x, "y": y}]}  # fmt: skip
    fastbp.sweep(spec, out=str(tmp_path / "d"), progress=False)
    found = dynamics.trainability_map(str(tmp_path / "d"))
    assert found.values.shape == (5, 6) and found.n_runs == 30 and np.isfinite(found.values).all()
    assert "lr = 3" in found.note and "grid block" in found.note
    t = read(tmp_path / "d")
    at = [k for k in range(len(t["run"])) if t["lr"][k] == 3.0 and t["init"][k] == "grid"]
    expected = sorted(t["trainability"][k] for k in at)
    assert sorted(found.values.ravel()) == expected
