"""Issue 16, the spec and the dataset: per-layer rates, biases in the network, the grid kind.

The numbers themselves (biases and per-layer rates in the kernels and the step table) are tested
in test_biases.py against the reference; here the keys, their refusals, the run numbering and
the columns that make a grid recoverable as an image.
"""

import numpy as np
import pyarrow.dataset as ds
import pytest

import fastbp
from fastbp.conventions import COURSE_WEIGHTS
from fastbp.errors import SpecError
from fastbp.layout import grid_coordinates, initial_biases, initial_weights, output_rates, run_layout
from fastbp.spec import parse_spec

BASE = {"steps": 5, "init": [{"kind": "course"}]}


def spec(**changes):
    return parse_spec({**BASE, "lr": [0.5], **changes})


def per_layer(**changes):
    data = {**BASE, "lr_hidden": [0.1, 0.2, 0.4], "lr_output": [1.0, 3.0], **changes}
    return parse_spec(data)


def test_per_layer_rates_are_crossed_hidden_outer():
    s = parse_spec(
        {
            **BASE,
            "lr_hidden": [0.1, 0.2, 0.4],
            "lr_output": [1.0, 3.0],
            "init": [{"kind": "course"}, {"kind": "uniform", "count": 2}],
        }
    )
    assert s.n_rates == 6 and s.n_runs == 18
    runs, hidden, blocks, indices = run_layout(s, 0, s.n_runs)
    output = output_rates(s, runs)
    pairs = list(zip(hidden[::3].tolist(), output[::3].tolist()))  # one per rate pair
    assert pairs == [(0.1, 1.0), (0.1, 3.0), (0.2, 1.0), (0.2, 3.0), (0.4, 1.0), (0.4, 3.0)]
    assert blocks.tolist()[:3] == [0, 1, 1] and indices.tolist()[:3] == [0, 0, 1]


def test_single_rate_output_rate_is_lr():
    s = spec(lr=[0.5, 2.0])
    runs, lrs, _, _ = run_layout(s, 0, s.n_runs)
    assert np.array_equal(output_rates(s, runs), lrs)


@pytest.mark.parametrize(
    "data, field, fragment",
    [
        ({"lr": 0.5, "lr_hidden": [0.1]}, "lr_hidden", "not both forms"),
        ({"lr_hidden": [0.1]}, "lr_output", "come in pairs"),
        ({"lr_output": [0.1]}, "lr_hidden", "come in pairs"),
        ({}, "lr", "required key 'lr'"),
        ({"lr_hidden": [0.1, 0.1], "lr_output": [1.0]}, "lr_hidden[1]", "not already in the grid"),
        ({"lr_hidden": {"logspace": [-2, 1], "num": 0}, "lr_output": [1.0]}, "lr_hidden.num", ">= 1"),
        ({"lr_hidden": [0.1], "lr_output": [-1.0]}, "lr_output[0]", "> 0"),
    ],
)
def test_rate_refusals(data, field, fragment):
    with pytest.raises(SpecError) as excinfo:
        parse_spec({**BASE, **data})
    assert excinfo.value.field == field and fragment in str(excinfo.value)


@pytest.mark.parametrize(
    "network, expected, shared",
    [
        ({"biases": [0.35, 0.6]}, (0.35, 0.35, 0.6, 0.6), True),
        ({"biases": [0.1, 0.2, 0.3, 0.4]}, (0.1, 0.2, 0.3, 0.4), False),
    ],
)
def test_biases_shared_or_per_unit(network, expected, shared):
    s = spec(network=network)
    assert s.biases == expected and s.shared_biases is shared and s.train_biases is False
    assert s.as_dict()["network"]["biases"] == network["biases"]  # the canonical form, as written
    assert parse_spec(s.as_dict()).as_dict() == s.as_dict()  # and it parses back to itself


def test_a_bias_free_spec_keeps_its_canonical_form():
    assert "biases" not in spec().as_dict()["network"]


@pytest.mark.parametrize(
    "network, field, fragment",
    [
        ({"biases": [0.1, 0.2, 0.3]}, "network.biases", "[b_h, b_o]"),
        ({"biases": "0.35"}, "network.biases", "[b_h1, b_h2, b_o1, b_o2]"),
        ({"biases": [0.1, float("nan")]}, "network.biases[1]", "finite"),
        ({"biases": [0.1, 0.2], "train_biases": "yes"}, "network.train_biases", "true or false"),
        ({"train_biases": True}, "network.train_biases", "unless network.biases"),
        ({"bias": [0.1, 0.2]}, "network.bias", "one of"),
    ],
)
def test_bias_refusals(network, field, fragment):
    with pytest.raises(SpecError) as excinfo:
        spec(network=network)
    assert excinfo.value.field == field and fragment in str(excinfo.value)


GRID = {
    "kind": "grid",
    "x": {"weight": "w5", "linspace": [-4.0, 4.0], "num": 5},
    "y": {"weight": "w6", "linspace": [-2.0, 2.0], "num": 3},
}


def test_a_grid_is_a_plane_through_weight_space_x_fastest():
    s = spec(init=[GRID])
    assert s.n_inits == 15
    _, _, blocks, indices = run_layout(s, 0, s.n_runs)
    w = initial_weights(s, blocks, indices)
    x, y = grid_coordinates(s, blocks, indices)
    assert np.array_equal(x, np.tile(np.linspace(-4.0, 4.0, 5), 3))
    assert np.array_equal(y, np.repeat(np.linspace(-2.0, 2.0, 3), 5))
    assert np.array_equal(w[4], x) and np.array_equal(w[5], y)  # w5 across, w6 up
    others = [0, 1, 2, 3, 6, 7]
    assert np.array_equal(w[others], np.array(COURSE_WEIGHTS)[others, None].repeat(15, axis=1))


def test_a_layer_offset_and_a_base():
    base = [0.1, -0.2, 0.3, 0.1, 0.5, -0.4, 0.2, 0.6]
    grid = {
        "kind": "grid",
        "base": base,
        "x": {"offset": "hidden", "logspace": [-2, 0], "num": 3},
        "y": {"weight": "w8", "linspace": [0.0, 1.0], "num": 2},
    }
    s = spec(init=[grid])
    _, _, blocks, indices = run_layout(s, 0, s.n_runs)
    w = initial_weights(s, blocks, indices)
    offsets = np.tile(np.logspace(-2, 0, 3), 2)
    for k in range(4):
        assert np.array_equal(w[k], base[k] + offsets)
    assert np.array_equal(w[4:7], np.array(base)[4:7, None].repeat(6, axis=1))


def test_a_bias_axis_sets_that_bias():
    grid = {**GRID, "y": {"bias": "b_o", "linspace": [-1.0, 1.0], "num": 3}}
    s = spec(init=[grid], network={"biases": [0.35, 0.6]})
    _, _, blocks, indices = run_layout(s, 0, s.n_runs)
    b = initial_biases(s, blocks, indices)
    assert np.array_equal(b[0], np.full(15, 0.35)) and np.array_equal(b[1], np.full(15, 0.35))
    y = np.repeat(np.linspace(-1.0, 1.0, 3), 5)
    assert np.array_equal(b[2], y) and np.array_equal(b[3], y)  # a shared bias sets both units


@pytest.mark.parametrize(
    "change, network, field, fragment",
    [
        ({"x": {"weight": "w9", "linspace": [0, 1], "num": 2}}, None, "init[0].x.weight", "one of"),
        ({"x": {"weight": "w5", "num": 2}}, None, "init[0].x", "linspace/logspace"),
        (
            {"x": {"weight": "w5", "bias": "b_h1", "linspace": [0, 1], "num": 2}},
            None,
            "init[0].x",
            "exactly one",
        ),
        ({"y": {"weight": "w5", "linspace": [0, 1], "num": 2}}, None, "init[0].y", "another weight"),
        ({"x": {"weight": "w5", "linspace": [0, 1], "num": 0}}, None, "init[0].x.num", ">= 1"),
        ({"x": {"bias": "b_h1", "linspace": [0, 1], "num": 2}}, None, "init[0].x.bias", "network.biases"),
        (
            {"x": {"bias": "b_h1", "linspace": [0, 1], "num": 2}},
            {"biases": [0.1, 0.2]},
            "init[0].x.bias",
            "'b_h' or 'b_o'",
        ),
        ({"count": 7}, None, "init[0].count", "x.num × y.num"),
        ({"base": [1, 2, 3]}, None, "init[0].base", "exactly 8"),
        ({"x": "w5"}, None, "init[0].x", "a table"),
    ],
)
def test_grid_refusals(change, network, field, fragment):
    with pytest.raises(SpecError) as excinfo:
        spec(init=[{**GRID, **change}], **({"network": network} if network else {}))
    assert excinfo.value.field == field and fragment in str(excinfo.value)


def test_a_grid_sweep_is_an_image_in_the_dataset(tmp_path):
    fastbp.sweep({**BASE, "lr": [0.5], "init": [GRID]}, tmp_path / "d", progress=False)
    t = ds.dataset(str(tmp_path / "d"), format="parquet").to_table().sort_by("run").to_pydict()
    assert t["grid_x"] == np.tile(np.linspace(-4.0, 4.0, 5), 3).tolist()
    assert t["grid_y"] == np.repeat(np.linspace(-2.0, 2.0, 3), 5).tolist()
    assert t["w5_init"] == t["grid_x"] and t["w6_init"] == t["grid_y"]
    assert t["lr_hidden"] == t["lr"] == t["lr_output"]
    assert set(t["init"]) == {"grid"}


# ---------------------------------------------------------------------------------------------
# End to end: the sweep trains what the spec says, with the model's own bits


def _table(out):
    return ds.dataset(str(out), format="parquet").to_table().sort_by("run")


MIXED = [{"kind": "course"}, {"kind": "uniform", "count": 70}]


def test_equal_per_layer_rates_give_the_single_rate_bits(tmp_path):
    fastbp.sweep({**BASE, "steps": 300, "lr": [0.5, 2.0], "init": MIXED}, tmp_path / "one", progress=False)
    fastbp.sweep(
        {**BASE, "steps": 300, "lr_hidden": [0.5], "lr_output": [0.5], "init": MIXED},
        tmp_path / "h",
        progress=False,
    )
    one, pair = _table(tmp_path / "one"), _table(tmp_path / "h")
    n = pair.num_rows  # the lr 0.5 runs of the single-rate sweep
    for name in ("final_loss", "w1", "w8", "loss", "min_loss", "first_step_below_tol"):
        assert one[name][:n].equals(pair[name]), name


def test_zero_biases_give_the_bias_free_bits(tmp_path):
    spec = {**BASE, "steps": 300, "lr": [0.5, 2.0], "init": MIXED}
    fastbp.sweep(spec, tmp_path / "free", progress=False)
    fastbp.sweep({**spec, "network": {"biases": [0.0, 0.0]}}, tmp_path / "zero", progress=False)
    free, zero = _table(tmp_path / "free"), _table(tmp_path / "zero")
    for name in ("final_loss", "w1", "w8", "loss", "first_step_below_tol"):
        assert free[name].equals(zero[name]), name
    assert zero["b_o2_init"].to_pylist() == [0.0] * zero.num_rows
    assert "b_o2" not in zero.column_names  # fixed biases: no final bias columns


@pytest.mark.parametrize("train, shared", [(False, True), (True, True), (True, False)])
def test_a_sweep_with_biases_follows_the_step_table(tmp_path, train, shared):
    biases = [0.35, 0.6] if shared else [0.35, -0.2, 0.6, 0.1]
    network = {"inputs": [0.05, 0.1], "targets": [0.01, 0.99], "biases": biases, "train_biases": train}
    fastbp.sweep(
        {**BASE, "steps": 40, "lr_hidden": [0.5], "lr_output": [2.0], "network": network},
        tmp_path / "d",
        progress=False,
    )
    row = _table(tmp_path / "d").to_pylist()[0]
    table = fastbp.step_table(
        lr_hidden=0.5, lr_output=2.0, steps=41, targets=(0.01, 0.99), biases=biases, train_biases=train
    ).to_pydict()
    assert row["loss"] == table["E_total"]  # every step, bit for bit: the same model functions
    assert [row[f"w{k}"] for k in range(1, 9)] == [table[f"w{k}"][-1] for k in range(1, 9)]
    for name in ("b_h1", "b_h2", "b_o1", "b_o2"):
        assert row[f"{name}_init"] == table[name][0]
        if train:
            assert row[name] == table[name][-1]
    if train and shared:
        assert row["b_h1"] == row["b_h2"] and row["b_o1"] == row["b_o2"]


def test_a_map_of_two_rates_and_its_figure(tmp_path):
    spec = {
        **BASE,
        "steps": 200,
        "lr_hidden": {"logspace": [-1, 1], "num": 5},
        "lr_output": {"logspace": [-1, 1], "num": 4},
    }
    fastbp.sweep(spec, tmp_path / "d", progress=False)
    t = _table(tmp_path / "d").to_pydict()
    assert len(t["run"]) == 20 and len(set(zip(t["lr_hidden"], t["lr_output"]))) == 20
    assert t["lr"] == t["lr_hidden"]
    from fastbp.plots import plot_dataset

    written = plot_dataset(tmp_path / "d", tmp_path / "figs")
    assert [p.rsplit("/", 1)[-1] for p in written] == ["rates.png"]  # one image, not 20 figures


def test_a_float32_grid_refuses_values_float32_cannot_hold():
    grid = {**GRID, "x": {"weight": "w5", "logspace": [0, 39], "num": 4}}
    with pytest.raises(SpecError) as excinfo:
        spec(init=[grid], dtype="float32")
    assert excinfo.value.field == "init[0].x" and "float32 can hold" in str(excinfo.value)
    with pytest.raises(SpecError) as excinfo:
        spec(network={"biases": [1e39, 0.0]}, dtype="float32")
    assert excinfo.value.field == "network.biases[0]"


@pytest.mark.parametrize(
    "hidden, output",
    [([2.0, 0.5, 1.0], {"logspace": [1, -1], "num": 4}), ([1e308], [0.5, 0.1]), ([1e-20], [0.3])],
)
def test_the_rates_image_takes_rates_in_any_order_and_range(tmp_path, hidden, output):
    from fastbp.plots import plot_dataset
    from fastbp.plots_rates import summarise_pairs

    fastbp.sweep(
        {
            **BASE,
            "steps": 20,
            "lr_hidden": hidden,
            "lr_output": output,
            "init": [{"kind": "uniform", "count": 3}],
        },
        tmp_path / "d",
        progress=False,
    )
    pairs = summarise_pairs(tmp_path / "d")
    assert (pairs.n == 3).all()  # every pair its own cell, none merged
    assert list(pairs.hidden) == sorted(pairs.hidden)
    assert plot_dataset(tmp_path / "d", tmp_path / "figs")[0].endswith("rates.png")


def test_axis_order_does_not_change_a_grid_and_overlapping_bias_axes_are_refused():
    weight = {"weight": "w1", "linspace": [0.0, 1.0], "num": 2}
    offset = {"offset": "hidden", "linspace": [0.5, 1.5], "num": 3}
    a = spec(init=[{"kind": "grid", "x": weight, "y": offset}])
    b = spec(init=[{"kind": "grid", "x": offset, "y": weight}])
    wa = initial_weights(a, np.zeros(6, np.int32), np.arange(6))
    wb = initial_weights(b, np.zeros(6, np.int32), np.arange(6))
    assert sorted(wa[0].tolist()) == sorted(wb[0].tolist())  # w1 = x + offset either way
    assert sorted(wa[0].tolist()) == sorted(w + o for w in (0.0, 1.0) for o in (0.5, 1.0, 1.5))
    overlapping = {
        "kind": "grid",
        "x": {"bias": "b_h", "linspace": [0, 1], "num": 2},
        "y": {"bias": "b_h1", "linspace": [0, 1], "num": 2},
    }
    with pytest.raises(SpecError) as excinfo:
        spec(init=[overlapping], network={"biases": [0.1, 0.2, 0.3, 0.4]})
    assert excinfo.value.field == "init[0].y"


def test_float32_refuses_two_rates_that_round_to_one():
    with pytest.raises(SpecError) as excinfo:
        spec(lr=[0.1, 0.1000000001], dtype="float32")
    assert excinfo.value.field == "lr[1]" and "in float32" in str(excinfo.value)
