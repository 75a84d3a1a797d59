"""The reach figure (issue 22, "Show it"): fastbp.plots_reach.

``reach_table`` is checked on small tables worked out by hand; the figure is drawn from a real
tiny sweep (2-2-2, 3 rates × 40 uniform starts, 300 steps, tolerance 1e-3, made with
``fastbp sweep``) and its texts are compared with counts read back from the Parquet files with
plain pyarrow, independently of fastbp.
"""

import math
import warnings
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest
from PIL import Image

import fastbp
from fastbp import cli, plots
from fastbp import plots_reach as pr
from fastbp.errors import SpecError

TINY = """\
name = "reach test"
steps = 300
lr = [1.0, 2.0, 8.0]
tolerance = 1e-3
seed = 5

[network]
targets = [0.01, 0.99]

[[init]]
kind = "course"

[[init]]
kind = "uniform"
low = -3.0
high = 3.0
count = 40
"""
RATES = (1.0, 2.0, 8.0)


def texts(fig, gid):
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == gid]


# ---------------------------------------------------------------------------------------------
# reach_table


def test_reach_table_counts_and_quantiles_worked_by_hand():
    nan = float("nan")
    lr = [0.1] * 5 + [1.0] * 4 + [10.0] * 3
    first = [40, 10, nan, 30, 20] + [7, nan, nan, 5] + [nan, nan, nan]
    t = pr.reach_table(lr, first, rates=[10.0, 0.1, 1.0, 100.0])  # any order; 100: no runs
    assert list(t.lrs) == [0.1, 1.0, 10.0, 100.0]
    assert list(t.n) == [5, 4, 3, 0] and list(t.reached) == [4, 2, 0, 0]
    assert list(t.stuck) == [1, 2, 3, 0]
    np.testing.assert_array_equal(t.share, [0.8, 0.5, 0.0, nan])
    # numpy's linear quantiles: 10, 20, 30, 40 → 13, 17.5, 25, 32.5, 37; 5, 7 → 5.2, 5.5, 6, 6.5, 6.8
    np.testing.assert_allclose(t.q10, [13, 5.2, nan, nan])
    np.testing.assert_allclose(t.q25, [17.5, 5.5, nan, nan])
    np.testing.assert_allclose(t.median, [25, 6, nan, nan])
    np.testing.assert_allclose(t.q75, [32.5, 6.5, nan, nan])
    np.testing.assert_allclose(t.q90, [37, 6.8, nan, nan])


def test_reach_table_takes_nulls_as_none_or_masked_and_rates_from_the_runs():
    by_none = pr.reach_table([2.0, 2.0, 2.0, 0.5], [None, 3, 0, None])
    masked = np.ma.masked_array([9, 3, 0, 9], mask=[True, False, False, True])
    by_mask = pr.reach_table([2.0, 2.0, 2.0, 0.5], masked)
    for t in (by_none, by_mask):
        assert list(t.lrs) == [0.5, 2.0] and list(t.n) == [1, 3] and list(t.reached) == [0, 2]
        assert t.median[1] == 1.5 and t.q10[1] == pytest.approx(0.3) and math.isnan(t.median[0])
    empty = pr.reach_table([], [], rates=[1.0, 2.0])
    assert list(empty.n) == [0, 0] and np.isnan(empty.share).all()


def test_reach_table_refuses_mismatched_runs():
    with pytest.raises(SpecError, match="first_step"):
        pr.reach_table([0.1, 0.2], [1])
    with pytest.raises(SpecError, match="lr"):
        pr.reach_table([0.1, 0.3], [1, 2], rates=[0.1, 0.2])
    with pytest.raises(SpecError, match="lr"):
        pr.reach_table([5.0], [1], rates=[0.1, 0.2])


def test_the_interval_is_wilsons():
    t = pr.reach_table([1.0] * 5 + [2.0] * 10 + [3.0] * 10, [1] * 4 + [None] + [None] * 10 + [1] * 10)
    low, high = t.interval()
    # 4 / 5: (0.3755, 0.9638), the published Wilson score interval; 0 / 10 and 10 / 10: [0, 0.2775]
    np.testing.assert_allclose(low, [0.37553, 0.0, 0.72246], atol=5e-5)
    np.testing.assert_allclose(high, [0.96378, 0.27754, 1.0], atol=5e-5)
    assert (low <= t.share).all() and (t.share <= high).all()


def test_network_text_names_the_layers_and_data():
    assert pr.network_text({}) == "the course's 2-2-2 network (one pattern)"
    course = {"network": {"inputs": [0.05, 0.1], "targets": [0.01, 0.99]}}
    assert pr.network_text(course) == "the course's 2-2-2 network, one pattern (0.05, 0.1) → (0.01, 0.99)"
    xor = {"network": {"layers": [2, 2, 1], "data": "xor", "biases": "trained"}}
    assert pr.network_text(xor) == "XOR on a 2-2-1 network, trained biases"
    listed = {"network": {"layers": [2, 3, 1], "inputs": [[0, 1], [1, 0]], "targets": [[1], [1]]}}
    assert pr.network_text(listed) == "2 listed patterns on a 2-3-1 network"
    online = {"network": {"layers": [8, 3, 8], "data": "encoder", "activation": "tanh", "update": "online"}}
    assert pr.network_text(online) == "encoder on a 8-3-8 network, tanh, online updates"


# ---------------------------------------------------------------------------------------------
# The figure from a real sweep


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("reach")
    (root / "tiny.toml").write_text(TINY)
    assert cli.main(["sweep", str(root / "tiny.toml"), "--out", str(root / "tiny"), "--quiet"]) == 0
    return root / "tiny"


def counts(path):
    """(n, reached) per rate of the uniform block, read with plain pyarrow."""
    table = ds.dataset(path, format="parquet").to_table().to_pydict()
    n, reached = {lr: 0 for lr in RATES}, {lr: 0 for lr in RATES}
    for lr, kind, step in zip(table["lr"], table["init"], table["first_step_below_tol"]):
        if kind == "uniform":
            n[lr] += 1
            reached[lr] += step is not None
    return n, reached


def test_the_figure_of_a_real_sweep_says_k_of_n_per_rate(tiny):
    n, reached = counts(tiny)
    reach = pr.read_reach(tiny)
    assert list(reach.table.lrs) == list(RATES)
    assert list(reach.table.n) == [40, 40, 40] == [n[lr] for lr in RATES]  # the course run left out
    assert list(reach.table.reached) == [reached[lr] for lr in RATES]
    assert 0 < sum(reached.values()) < 120  # the sweep has both kinds of start
    fig = pr.reach_figure(reach)
    assert texts(fig, "count") == [f"{reached[lr]} / 40" for lr in RATES]
    stuck = texts(fig, "stuck")
    assert len(stuck) == 3 and all(s == "0" or f"({40 - reached[lr]})" in s for s, lr in zip(stuck, RATES))
    title = fig._suptitle.get_text()
    assert "2-2-2" in title and "E < 0.001" in title and "40 random starts per rate" in title
    assert "300 steps" in title and "uniform [-3, 3]" in title
    row = [ax.get_title("left") for ax in fig.axes]
    assert "stuck: never below 0.001 in 300 steps (share of random starts, count)" in row


def test_fastbp_plot_draws_reach_by_name_and_by_default(tiny, tmp_path):
    out = tmp_path / "named"
    assert cli.main(["plot", str(tiny), "--out", str(out), "--figures", "reach"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["reach.png"]
    with Image.open(out / "reach.png") as image:
        width, height = image.size
        assert 600 <= width <= 1400 and 400 <= height <= 700  # the report size, as test_plots.py
    written = plots.plot_dataset(tiny, tmp_path / "all")
    assert written[-1].endswith("reach.png") and any(p.endswith("overview.png") for p in written)
    assert "reach" in plots.FIGURE_KINDS


def test_without_random_starts_reach_is_left_out_by_default_and_explained_when_asked(tmp_path):
    spec = tmp_path / "course.toml"
    spec.write_text(TINY.split('[[init]]\nkind = "uniform"')[0])
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "d"), "--quiet"]) == 0
    stored = {"lr", "init_block", "first_step_below_tol"}
    assert pr.figures(tmp_path / "d", None, False, stored, plots.FIGURE_KINDS, default=True) == {}
    assert plots.plot_dataset(tmp_path / "d", tmp_path / "named", figures="reach")[0].endswith("reach.png")
    fig = pr.reach_figure(pr.read_reach(tmp_path / "d"))
    (message,) = texts(fig, "message")
    assert message.startswith("No random starts") and 'kind = "uniform"' in message


# ---------------------------------------------------------------------------------------------
# Any network, one rate


def reach_of(lr, first, network, steps=2000, tolerance=0.01):
    table = pr.reach_table(lr, first)
    return pr.Reach(table, pr.network_text({"network": network}), tolerance, steps, "1,000 random starts")


def test_an_xor_dataset_is_named_in_the_title_and_drawn_on_a_log_step_axis():
    rng = np.random.default_rng(0)
    lrs = np.repeat([0.1, 0.3, 1.0, 3.0, 10.0], 200)
    first = np.where(rng.random(lrs.size) < 0.8, np.round(300 / lrs * rng.uniform(0.5, 2, lrs.size)), np.nan)
    first[first > 2000] = np.nan
    xor = {"layers": [2, 2, 1], "data": "xor", "biases": "trained"}
    fig = pr.reach_figure(reach_of(lrs, first, xor))
    title = fig._suptitle.get_text()
    assert "XOR on a 2-2-1 network, trained biases" in title and "E < 0.01" in title
    (steps_axes,) = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert "first step with E < 0.01" in steps_axes.get_ylabel()
    assert steps_axes.get_xscale() == "log"
    assert len(texts(fig, "count")) == 5 and len(texts(fig, "stuck")) == 5


def test_one_rate_gets_a_message_with_its_numbers():
    fig = pr.reach_figure(reach_of([0.5] * 4, [10, 20, None, 30], {}))
    (message,) = texts(fig, "message")
    assert message.startswith("One learning rate (0.5)")
    assert "3 / 4 random starts reached E < 0.01 (75 %" in message
    assert "median 20" in message and "Stuck (never below 0.01 in 2,000 steps): 1 / 4" in message
    assert "2-2-2" in fig._suptitle.get_text()


def test_no_start_reaching_at_any_rate_says_so():
    fig = pr.reach_figure(reach_of([0.1, 0.2, 0.1, 0.2], [None] * 4, {}))
    assert texts(fig, "none") == ["No random start got below 0.01 in 2,000 steps at any rate"]
    assert texts(fig, "count") == ["0 / 2", "0 / 2"]


def test_a_per_layer_sweep_over_several_output_rates_is_not_pooled(tmp_path):
    spec = dict(steps=20, lr_hidden=[0.5, 2.0], lr_output=[0.5, 2.0], init=[{"kind": "uniform", "count": 3}])
    fastbp.sweep(spec, tmp_path / "d", progress=False)
    stored = set(pr.NEEDED)
    assert pr.figures(tmp_path / "d", None, False, stored, plots.FIGURE_KINDS, default=True) == {}
    fig = pr.figures(tmp_path / "d", None, False, stored, ("reach",), default=False)["reach"]
    (message,) = texts(fig, "message")
    assert message.startswith("A per-layer sweep") and "--figures rates" in message


def test_rates_up_to_1e308_are_drawn_without_overflow(tmp_path):
    golden = Path(__file__).parent / "golden" / "v1" / "dataset"  # lr 0.7, 2.5 and 1e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = pr.reach_figure(pr.read_reach(golden))
        assert plots.plot_dataset(golden, tmp_path, figures="reach") == [str(tmp_path / "reach.png")]
    assert texts(fig, "count") == ["0 / 5", "4 / 5", "3 / 5"]  # uniform and normal pooled, not fixed
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["0.7", "1e+308"]
