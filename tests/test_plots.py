"""Figures from the Parquet alone (issue 5): `fastbp plot` / scripts/plot_loss_curves.py / fastbp.plots.

A small real dataset (4 lrs incl. 0.1 and 2.0 × (course + 30 uniform), 100 steps, 8 shards) is
written once per module with fastbp.sweep; the expected values are read back from the Parquet
files with plain pyarrow and numpy, independently of fastbp.plots.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import fastbp
from fastbp import plots, stats
from fastbp.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "plot_loss_curves.py"
LRS = (0.1, 0.5, 2.0, 20.0)  # lr 20 reaches E_total = 0.0 exactly within 100 steps
N_UNIFORM = 30
STEPS = 100
SPEC = {
    "steps": STEPS,
    "lr": list(LRS),
    "seed": 3,
    "record_every": 1,
    "tolerance": 1e-4,
    "shard_size": 16,
    "init": [{"kind": "course"}, {"kind": "uniform", "low": -1.0, "high": 1.0, "count": N_UNIFORM}],
}
STEMS = [f"loss_lr_{lr:g}" for lr in LRS] + ["loss_course", "overview", "reach"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "sweep"
    fastbp.sweep(SPEC, out=out, progress=False)
    assert len(list(out.glob("part-*.parquet"))) > 1  # several shards
    return out


@pytest.fixture(scope="module")
def table(dataset):
    return ds.dataset(dataset, format="parquet").to_table()


@pytest.fixture(scope="module")
def summary(dataset):
    return stats.summarise(dataset)


def curves(table, lr, kind):
    """(runs, steps) E_total of the runs of `kind` at `lr`, straight from the Parquet files."""
    lr_col = table.column("lr").to_numpy()
    init = np.array(table.column("init").to_pylist())
    rows = np.flatnonzero((lr_col == lr) & (init == kind))
    loss = table.column("loss").take(pa.array(rows)).to_pylist()
    return np.array(loss, dtype=np.float64)


def line(fig, gid):
    found = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(found) == 1, f"no single line {gid!r} in the figure"
    return found[0]


def uniform_block(summary):
    return next(f.block for f in summary.families if f.kind == "uniform")


# ---------------------------------------------------------------------------------------------
# Files


def test_script_writes_one_png_per_lr_headless(dataset, tmp_path):
    out = tmp_path / "figs"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "qtagg"  # a GUI backend that cannot start here: the module must not need one
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(dataset), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split()
    assert printed == [str(out / f"{stem}.png") for stem in STEMS]
    from PIL import Image

    for stem in STEMS:
        path = out / f"{stem}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            assert 600 <= width <= 1400 and 400 <= height <= 700  # report size at ~110 dpi
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.png" for s in STEMS)  # no temporaries


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """2 lrs, float32, record_every 7: few figures for the format tests."""
    out = tmp_path_factory.mktemp("plots") / "small"
    fastbp.sweep(
        dict(SPEC, steps=30, record_every=7, dtype="float32", lr=[0.1, 2.0]), out=out, progress=False
    )
    return out


SMALL_STEMS = ["loss_lr_0.1", "loss_lr_2", "loss_course", "overview", "reach"]


def test_cli_plot_svg_and_pdf(small, tmp_path):
    from fastbp.cli import main

    assert main(["plot", str(small), "--out", str(tmp_path / "svg"), "--format", "svg"]) == 0
    for stem in SMALL_STEMS:
        root = ET.parse(tmp_path / "svg" / f"{stem}.svg").getroot()
        assert root.tag.endswith("svg")
    written = plots.plot_dataset(small, tmp_path / "pdf", fmt="PDF")
    assert written == [str(tmp_path / "pdf" / f"{stem}.pdf") for stem in SMALL_STEMS]
    for path in written:
        data = Path(path).read_bytes()
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


def test_no_pyplot_and_deterministic_png(small, tmp_path):
    code = (
        "import sys; from fastbp.plots import plot_dataset; "
        "[plot_dataset(sys.argv[1], d) for d in sys.argv[2:]]; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(small), str(tmp_path / "a"), str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for stem in SMALL_STEMS:  # same bytes twice: regenerating committed figures gives no spurious diffs
        assert (tmp_path / "a" / f"{stem}.png").read_bytes() == (tmp_path / "b" / f"{stem}.png").read_bytes()


def test_record_every_and_float32(small):
    summary = stats.summarise(small)
    assert list(summary.steps) == [0, 7, 14, 21, 28, 30]
    table = ds.dataset(small, format="parquet").to_table()
    assert table.schema.field("final_loss").type == pa.float32()
    for lr in (0.1, 2.0):
        np.testing.assert_array_equal(summary.course[lr], curves(table, lr, "course")[0])
        runs = curves(table, lr, "uniform")
        np.testing.assert_array_equal(
            summary.curves[lr][uniform_block(summary)].median, np.median(runs, axis=0)
        )
    fig = plots.lr_figure(summary, 2.0)
    np.testing.assert_array_equal(line(fig, "course").get_xdata(), [0, 7, 14, 21, 28, 30])


# ---------------------------------------------------------------------------------------------
# The plotted data against the Parquet files


def test_summary_metadata(summary, table):
    assert summary.n_runs == table.num_rows == len(LRS) * (1 + N_UNIFORM)
    assert list(summary.lrs) == list(LRS)
    assert list(summary.steps) == list(range(STEPS + 1))
    assert summary.tolerance == SPEC["tolerance"]
    assert [f.kind for f in summary.families] == ["course", "uniform"]
    positive = table.column("min_loss").to_numpy()
    assert 0 < summary.floor < positive[positive > 0].min()


@pytest.mark.parametrize("lr", LRS)
def test_course_line_is_the_course_run(summary, table, lr):
    expected = curves(table, lr, "course")
    assert expected.shape == (1, STEPS + 1)
    np.testing.assert_array_equal(summary.course[lr], expected[0])
    fig = plots.lr_figure(summary, lr)
    x, y = line(fig, "course").get_data()
    np.testing.assert_array_equal(x, np.arange(STEPS + 1))
    np.testing.assert_array_equal(y, np.maximum(expected[0], summary.floor))  # zeros drawn at the floor
    if lr == 0.1:
        np.testing.assert_array_equal(y, expected[0])  # nothing clipped here


@pytest.mark.parametrize("lr", LRS)
def test_median_and_band_are_numpys(summary, table, lr):
    block = uniform_block(summary)
    runs = curves(table, lr, "uniform")
    assert runs.shape == (N_UNIFORM, STEPS + 1)
    band = summary.curves[lr][block]
    assert band.exact and band.n == N_UNIFORM
    np.testing.assert_array_equal(band.median, np.median(runs, axis=0))
    np.testing.assert_array_equal(band.low, np.quantile(runs, 0.1, axis=0))
    np.testing.assert_array_equal(band.high, np.quantile(runs, 0.9, axis=0))
    fig = plots.lr_figure(summary, lr)
    _, y = line(fig, f"median:{block}").get_data()
    np.testing.assert_array_equal(y, np.maximum(np.median(runs, axis=0), summary.floor))


def test_lr_2_falls_faster_than_lr_0_1(summary):
    last = {}
    for lr in (0.1, 2.0):
        _, y = line(plots.lr_figure(summary, lr), "course").get_data()
        last[lr] = y[-1]
        assert y[-1] < y[0]
    assert last[2.0] < last[0.1] / 100
    fig = plots.course_figure(summary)
    y01, y2 = line(fig, "course:0.1").get_ydata(), line(fig, "course:2").get_ydata()
    assert y2[0] == y01[0]  # same weights at step 0
    assert (y2[1:] < y01[1:]).all()  # lower at every later step


def test_zeros_on_the_log_axis(summary, table):
    assert (curves(table, 20.0, "course")[0] == 0).any()  # the data does reach 0.0 exactly
    fig = plots.lr_figure(summary, 20.0)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    _, y = line(fig, "course").get_data()
    assert np.isfinite(y).all() and y.min() == summary.floor
    assert ax.get_ylim()[0] < summary.floor  # the floor line is inside the axes
    legend = fig.legends[0]
    assert any("= 0" in t.get_text() for t in legend.get_texts())


def test_overview(summary, table):
    lr_col = table.column("lr").to_numpy()
    init = np.array(table.column("init").to_pylist())
    final = table.column("final_loss").to_numpy()
    reached = table.column("first_step_below_tol").is_valid().to_numpy(zero_copy_only=False)
    fig = plots.overview_figure(summary)
    ax_loss, ax_hit = fig.axes[:2]
    assert ax_loss.get_xlabel() == ax_hit.get_xlabel() == "learning rate"
    for family in summary.families:
        mask = [(lr_col == lr) & (init == family.kind) for lr in LRS]
        x, y = line(fig, f"reached:{family.block}").get_data()
        np.testing.assert_array_equal(x, LRS)
        np.testing.assert_array_equal(y, [reached[m].mean() for m in mask])
        stats = summary.final[family.block]
        np.testing.assert_array_equal(stats.final.median, [np.median(final[m]) for m in mask])
        np.testing.assert_array_equal(stats.final_below, [(final[m] < SPEC["tolerance"]).sum() for m in mask])
        _, y = line(fig, f"final:{family.block}").get_data()
        np.testing.assert_array_equal(y, np.maximum(stats.final.median, summary.floor))
    assert 0 < summary.final[uniform_block(summary)].reached[0] < N_UNIFORM  # lr 0.1: some, not all


def test_labels_for_a_report(summary):
    fig = plots.lr_figure(summary, 0.5)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step"
    assert "½Σ(t − a)²" in ax.get_ylabel()
    assert "learning rate 0.5" in ax.get_title()
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert (
        texts[0] == "the exercise's initial weights"
    )  # not "course weights (SPEC)": a name the reader never met
    assert any("median" in t and "10–90 %" in t for t in texts)
    overview = [t.get_text() for t in plots.overview_figure(summary).legends[0].get_texts()]
    assert overview[0] == "the exercise's initial weights (one run per lr)"
    assert not any("SPEC" in t or "course weights" in t for t in texts + overview)


# ---------------------------------------------------------------------------------------------
# Bounded memory: the histogram path, lr chunks, step thinning


def test_histogram_quantiles_within_one_bin(dataset, summary, table):
    binned = stats.summarise(dataset, exact_values=0)
    ratio = 10 ** (1 / stats.BINS_PER_DECADE)
    block = uniform_block(summary)
    for lr in LRS:
        runs = np.sort(curves(table, lr, "uniform"), axis=0)
        band = binned.curves[lr][block]
        assert not band.exact and band.n == N_UNIFORM
        np.testing.assert_array_equal(binned.course[lr], summary.course[lr])  # one run: kept as is
        clipped = np.where((runs > 0) & (runs < binned.floor), binned.floor, runs)
        for q, approx in zip(stats.QUANTILES, (band.low, band.median, band.high)):
            j = int(np.floor(q * (N_UNIFORM - 1)))
            below, above = clipped[j], clipped[min(j + 1, N_UNIFORM - 1)]
            assert (approx >= below / ratio).all() and (approx <= above * ratio).all(), (lr, q)
    # the summary of final losses went through the same histogram
    exact, approx = summary.final[block].final, binned.final[block].final
    assert not approx.exact.any()
    both = exact.median > 0
    np.testing.assert_allclose(approx.median[both], exact.median[both], rtol=0.25)


def test_quantiles_zeros_and_non_finite():
    rows = np.array([[0.0, 1e-3, np.nan], [0.0, 2e-3, 1e-2], [0.0, 3e-3, np.inf], [1e-40, 4e-3, 2e-2]])
    for exact_values in (10**6, 0):
        acc = stats._Quantiles([0, 1, 2], 1e-30, 0.5, exact_values, stats.BINS_PER_DECADE)
        for k in range(len(rows)):
            acc.add(rows[k : k + 1])
        band = acc.band()
        assert band.exact == (exact_values > 0)
        assert band.median[0] == 0.0 and band.low[0] == 0.0  # three zeros of four
        assert band.high[2] == np.inf  # NaN and inf rank above every finite value
        assert band.median[1] == pytest.approx(2.5e-3, rel=0.06)
    # a quantile among the values in (0, floor) is the floor
    acc = stats._Quantiles([0], 1e-30, 0.5, 0, 40)
    acc.add(np.array([[1e-40], [1e-35], [1e-33]]))
    assert acc.band().median[0] == 1e-30


def test_lr_chunks_and_thinned_steps_agree(dataset, summary, table):
    chunked = stats.summarise(dataset, memory_values=1)  # one lr per scan, filtered on lr
    for lr in LRS:
        np.testing.assert_array_equal(chunked.course[lr], summary.course[lr])
        for block, band in summary.curves[lr].items():
            np.testing.assert_array_equal(chunked.curves[lr][block].median, band.median)
    thin = stats.summarise(dataset, max_points=11)
    assert list(thin.steps) == list(range(0, STEPS + 1, 10))  # first and last included
    np.testing.assert_array_equal(thin.course[2.0], curves(table, 2.0, "course")[0, ::10])
    fig = plots.lr_figure(thin, 2.0)
    assert len(line(fig, "course").get_xdata()) == 11


# ---------------------------------------------------------------------------------------------
# Refusals: SpecError naming the field, nothing written; exit code 2 from the command line


def refused(excinfo, field):
    assert excinfo.value.field == field
    return str(excinfo.value)


def test_refuses_bad_format(dataset, tmp_path):
    with pytest.raises(SpecError) as excinfo:
        plots.plot_dataset(dataset, tmp_path / "figs", fmt="jpg")
    assert "png, svg, pdf" in refused(excinfo, "format")
    assert not (tmp_path / "figs").exists()


def test_refuses_missing_dataset(tmp_path):
    with pytest.raises(SpecError) as excinfo:
        plots.plot_dataset(tmp_path / "nothing-here", tmp_path / "figs")
    assert "does not exist" in refused(excinfo, "dataset")
    assert not (tmp_path / "figs").exists()


def test_refuses_non_fastbp_directories(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(pa.table({"lr": [0.1], "loss": [[0.5, 0.4]]}), foreign / "part-000000.parquet")
    for path in (empty, foreign, tmp_path / "foreign" / "part-000000.parquet"):
        with pytest.raises(SpecError) as excinfo:
            plots.plot_dataset(path, tmp_path / "figs")
        refused(excinfo, "dataset")
    assert not (tmp_path / "figs").exists()


def test_refuses_out_file(dataset, tmp_path):
    target = tmp_path / "a-file.png"
    target.write_bytes(b"x")
    with pytest.raises(SpecError) as excinfo:
        plots.plot_dataset(dataset, target)
    refused(excinfo, "out")
    assert target.read_bytes() == b"x"


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "gif"],
        ["--dataset-missing"],
    ],
)
def test_cli_exit_code_2_one_line(dataset, tmp_path, capsys, argv):
    from fastbp.cli import main

    source = str(tmp_path / "missing") if argv == ["--dataset-missing"] else str(dataset)
    extra = [] if argv == ["--dataset-missing"] else argv
    assert main(["plot", source, "--out", str(tmp_path / "figs"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fastbp: error: ")
    assert not (tmp_path / "figs").exists()


@pytest.mark.parametrize("out", [None, 123, ""])
def test_refuses_an_out_that_is_not_a_path(dataset, out):
    with pytest.raises(SpecError) as excinfo:
        plots.plot_dataset(dataset, out)
    refused(excinfo, "out")


# ---------------------------------------------------------------------------------------------
# Edges a new user met (issue 21): many rates, 8 log-spaced rates, no recorded curves, names


def drawn(fig):
    """The figure laid out and drawn headless; its renderer, for the extents of what it shows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def small_sweep(tmp_path_factory, name, **changes):
    out = tmp_path_factory.mktemp("plots") / name
    spec = dict(SPEC, steps=20, record_every=1, shard_size=64)
    spec["init"] = [{"kind": "course"}, {"kind": "uniform", "low": -1.0, "high": 1.0, "count": 4}]
    fastbp.sweep(dict(spec, **changes), out=out, progress=False)
    return stats.summarise(out)


@pytest.fixture(scope="module")
def thirty_rates(tmp_path_factory):
    return small_sweep(tmp_path_factory, "thirty", lr=[float(v) for v in np.logspace(-2, 2, 30)])


def test_above_24_rates_the_figures_and_the_log_say_what_was_left_out(thirty_rates, caplog):
    with caplog.at_level("WARNING", logger="fastbp.plots"):
        figures = plots.make_figures(thirty_rates)
    assert sorted(figures) == ["loss_course", "overview"]  # no loss_lr_* figure
    note = " ".join(r.getMessage() for r in caplog.records)
    assert "30 learning rates" in note and "no loss_lr_* figure" in note and "24" in note
    assert "30 rates: no figure per rate" in figures["overview"]._suptitle.get_text()
    course = figures["loss_course"]
    assert "24 of the 30 rates" in course.axes[0].get_title()
    lines = [ln for ln in course.axes[0].get_lines() if str(ln.get_gid()).startswith("course:")]
    assert len(lines) == 24 and lines[0].get_gid() == "course:0.01" and lines[-1].get_gid() == "course:100"


@pytest.mark.parametrize("stem", ["loss_course", "overview"])
def test_legends_and_colour_bars_fit_inside_the_figure(thirty_rates, stem):
    fig = plots.make_figures(thirty_rates)[stem]
    renderer = drawn(fig)
    box = fig.bbox
    for artist in fig.legends + fig.axes:
        extent = artist.get_window_extent(renderer)
        assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, (stem, artist, extent, box)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    if stem == "loss_course":  # 24 lines: a colour bar of the rates, not 24 legend entries
        assert len(fig.axes) == 2 and "learning rate" in fig.axes[1].get_ylabel()
        assert not any(t.startswith("lr = ") for t in legend)


def overlapping(labels, renderer):
    boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
    return [(a, b) for k, a in enumerate(boxes) for b in boxes[k + 1 :] if a.overlaps(b)]


def test_eight_log_spaced_rates_label_every_rate_without_overlap(tmp_path_factory):
    rates = [float(v) for v in np.logspace(-3, 1, 8)]
    fig = plots.overview_figure(small_sweep(tmp_path_factory, "eight", lr=rates))
    renderer = drawn(fig)
    for ax in fig.axes[:2]:
        labels = ax.get_xticklabels()
        assert [t.get_text() for t in labels] == [
            "0.001",
            "0.00373",
            "0.0139",
            "0.0518",
            "0.193",
            "0.72",
            "2.68",
            "10",
        ]
        np.testing.assert_allclose(ax.get_xticks(), rates)
        assert not overlapping(labels, renderer)


def test_a_dataset_without_recorded_curves_says_so(tmp_path_factory, summary):
    final_only = small_sweep(tmp_path_factory, "final", lr=[0.1, 2.0], record_every=0)
    assert list(final_only.steps) == [20]
    for fig in (plots.lr_figure(final_only, 2.0), plots.course_figure(final_only)):
        ax = fig.axes[0]
        notes = [t.get_text() for t in ax.texts if t.get_gid() == "no-curves"]
        assert len(notes) == 1 and "step 20 only" in notes[0] and "record_every" in notes[0]
        assert ax.get_xlim()[0] == 0 and ax.get_xlim()[1] > 20  # the point inside, on a step axis from 0
    assert not [t for t in plots.lr_figure(summary, 0.1).axes[0].texts if t.get_gid() == "no-curves"]
