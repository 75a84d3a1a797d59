"""Figures of training dynamics (issue 17): fastbp.plots_dynamics, arrays in, Figure out.

The expected values are worked out by hand or by a slow independent reference (ranks counted
pairwise); what is drawn is read back from the figure's artists and from the PNG it renders.
"""

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from fastbp import plots_dynamics as pd
from fastbp.errors import SpecError

GREY = (128, 128, 128, 255)  # pd.MAP_NO_RUN


def png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=pd.DPI)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA"))


def axes(fig, gid):
    (ax,) = [a for a in fig.axes if a.get_gid() == gid]
    return ax


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


# ---------------------------------------------------------------------------------------------
# rank_equalise


def reference_positions(values):
    """Slow and plain: per value, its average rank by magnitude among the values of its side."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    out = np.full(flat.size, np.nan)
    for side in (True, False):
        members = [k for k in range(flat.size) if not np.isnan(flat[k]) and bool(np.signbit(flat[k])) == side]
        n = len(members)
        for k in members:
            m = [abs(flat[j]) for j in members]
            below, equal = sum(v < abs(flat[k]) for v in m), sum(v == abs(flat[k]) for v in m)
            rank = below + (equal - 1) / 2
            out[k] = 0.5 * rank / n if side else 1 - 0.5 * rank / n
    return out.reshape(np.shape(values))


def test_rank_equalise_signs_by_hand():
    got = pd.rank_equalise([-3.0, -1.0, -2.0, 0.5, 2.0, 10.0, np.nan])
    # trainable: |−1| < |−2| < |−3| → ranks 0, 1, 2 of 3 → 0, 1/6, 1/3 (fastest darkest, at 0)
    # untrainable: 0.5 < 2 < 10 → ranks 0, 1, 2 of 3 → 1, 5/6, 2/3 (fastest to fail at 1)
    np.testing.assert_allclose(got[:6], [1 / 3, 0, 1 / 6, 1, 5 / 6, 2 / 3], rtol=0, atol=1e-15)
    assert np.isnan(got[6]) and got.dtype == np.float64


def test_rank_equalise_ties_share_the_average_rank():
    got = pd.rank_equalise([-1.0, -1.0, -2.0, 5.0, 5.0, 7.0])
    # trainable ranks 0.5, 0.5, 2 of 3; untrainable 5, 5 → 0.5, 0.5 and 7 → 2, of 3
    np.testing.assert_allclose(got, [1 / 12, 1 / 12, 1 / 3, 1 - 1 / 12, 1 - 1 / 12, 2 / 3], atol=1e-15)


def test_rank_equalise_signed_zeros():
    got = pd.rank_equalise([-0.0, 0.0, -1.0, 1.0])
    np.testing.assert_allclose(got, [0.0, 1.0, 0.25, 0.75], atol=0)  # −0.0 trains, +0.0 does not
    got = pd.rank_equalise([0.0, -0.0, -0.0])  # −0.0 ties with −0.0 only, never with +0.0
    np.testing.assert_allclose(got, [1.0, 0.125, 0.125], atol=0)


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_rank_equalise_all_on_one_side(sign):
    values = sign * np.array([4.0, 1.0, 3.0, 2.0])
    got = pd.rank_equalise(values)
    expected = np.array([0.375, 0.0, 0.25, 0.125])  # magnitude ranks 3, 0, 2, 1 of 4
    np.testing.assert_allclose(got, expected if sign < 0 else 1 - expected, atol=0)
    assert (got < 0.5).all() if sign < 0 else (got > 0.5).all()


def test_rank_equalise_all_nan_and_empty():
    assert np.isnan(pd.rank_equalise(np.full((2, 3), np.nan))).all()
    assert pd.rank_equalise(np.empty((0, 4))).shape == (0, 4)


def test_rank_equalise_matches_the_reference_and_is_monotone_per_side():
    rng = np.random.default_rng(7)
    values = np.round(rng.normal(0, 3, size=(12, 25)), 1)  # rounding makes ties
    values[rng.random(values.shape) < 0.05] = np.nan
    values[0, :3] = [-0.0, 0.0, -0.0]
    got = pd.rank_equalise(values)
    np.testing.assert_allclose(got, reference_positions(values), rtol=0, atol=1e-12)
    assert np.array_equal(np.isnan(got), np.isnan(values))
    for side in (np.signbit(values) & ~np.isnan(values), ~np.signbit(values) & ~np.isnan(values)):
        v, p = values[side], got[side]
        order = np.argsort(v)
        # within a side the position moves away from 0.5 as |value| shrinks: non-increasing in
        # value, strictly where the values differ, equal where they tie
        dv, dp = np.diff(v[order]), np.diff(p[order])
        assert (dp[dv > 0] < 0).all() and (dp[dv == 0] == 0).all()
    assert (got[np.signbit(values) & ~np.isnan(values)] < 0.5).all()
    assert (got[~np.signbit(values) & ~np.isnan(values)] > 0.5).all()


def test_rank_equalise_is_deterministic_and_follows_a_permutation():
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(size=2000), 2)
    perm = rng.permutation(values.size)
    got = pd.rank_equalise(values)
    assert np.array_equal(got, pd.rank_equalise(values.copy()))
    assert np.array_equal(pd.rank_equalise(values[perm]), got[perm])


# ---------------------------------------------------------------------------------------------
# Trainability map


def map_figure(values, x, y, x_log=True, y_log=False, **kw):
    return pd.trainability_map_figure(
        values, x, y, x_label="lr_hidden", y_label="lr_output", x_log=x_log, y_log=y_log, steps=2000,
        n_runs=values.size, **kw,
    )  # fmt: skip


def test_map_is_one_pixel_per_run_with_the_right_colours():
    rng = np.random.default_rng(11)
    nx, ny = 41, 17
    x, y = np.logspace(-1, 3, nx), np.linspace(0.0, 8.0, ny)
    values = rng.normal(0, 50, size=(ny, nx))
    values[3, 5] = np.nan
    values[2, 30] = -1e-9  # the fastest trainable run: darkest blue
    values[15, 1] = 1e-9  # the fastest to fail: darkest red
    fig = map_figure(values, x, y)
    ax = axes(fig, "map")
    (image,) = ax.images
    assert image.get_array().shape == (ny, nx)
    img = png(fig)
    box = ax.get_window_extent()
    assert (round(box.width), round(box.height)) == (nx, ny)
    left, top = round(box.x0), img.shape[0] - round(box.y1)
    drawn = img[top : top + ny, left : left + nx][::-1]  # row 0 = y[0], at the bottom
    cmap = colormaps[pd.MAP_CMAP]
    expected = cmap(np.nan_to_num(pd.rank_equalise(values)), bytes=True)
    expected[np.isnan(values)] = GREY
    assert np.array_equal(drawn, expected)
    assert tuple(drawn[3, 5]) == GREY
    assert tuple(drawn[2, 30]) == cmap(0.0, bytes=True) and tuple(drawn[15, 1]) == cmap(1.0, bytes=True)
    dark_blue, dark_red = cmap(0.0), cmap(1.0)
    assert dark_blue[2] > dark_blue[0] and dark_red[0] > dark_red[2]  # blue trains, red does not
    # the frame stands outside the image: the pixels just around it are not map colours
    assert not np.array_equal(img[top - 2, left : left + nx], drawn[-1])


def test_map_log_ticks_sit_on_their_pixels():
    nx, ny = 401, 201
    x, y = np.logspace(-1, 3, nx), np.linspace(0.0, 5.0, ny)  # a decade every 100 pixels
    fig = map_figure(np.full((ny, nx), -1.0), x, y)
    ax = axes(fig, "map")
    np.testing.assert_allclose(ax.get_xticks(), [0, 100, 200, 300, 400], atol=1e-9)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "1", "10", "100", "$10^{3}$"]
    np.testing.assert_allclose(ax.get_yticks(), [0, 40, 80, 120, 160, 200], atol=1e-9)  # 0, 1 … 5 (linear)
    png(fig)  # draw, so that the transforms are final
    box = ax.get_window_extent()
    # the tick at lr 10 on the centre of the image's 201st pixel column
    assert ax.transData.transform((200, 0))[0] == pytest.approx(box.x0 + 200.5, abs=1e-6)
    minor = ax.xaxis.get_minorticklocs()
    np.testing.assert_allclose(minor[:2], 100 * (np.log10([0.2, 0.3]) + 1), atol=1e-9)  # 2, 3 × 0.1


def test_map_ticks_thinned_on_a_small_map():
    fig = map_figure(np.full((11, 41), -1.0), np.logspace(-1, 3, 41), np.linspace(0.0, 5.0, 11))
    ax = axes(fig, "map")
    # decades 10 pixels apart: labels would overlap, so only the first of them is kept
    np.testing.assert_allclose(ax.get_xticks(), [0], atol=1e-9)
    assert len(ax.get_yticks()) < 6


def test_map_text_says_window_steps_runs_and_equalisation():
    x, y = np.logspace(-1, 3, 9), np.logspace(0, 2, 5)
    values = np.linspace(-5, 5, 45).reshape(5, 9)
    fig = map_figure(values, x, y, y_log=True, title_note="course weights")
    text = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    for words in ("0.1 … 1000", "1 … 100", "2,000 steps", "45 runs", "rank-equalised", "course weights"):
        assert words in text, words
    assert "dark = converges fast" in text and "dark = fails fast" in text
    bar = axes(fig, "colour bar")
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert labels[0] == "trains, fastest" and labels[-1] == "fails fastest"


def test_map_fonts_grow_with_the_image():
    small = map_figure(np.full((50, 50), 1.0), np.arange(1.0, 51), np.arange(1.0, 51), x_log=False)
    large = map_figure(np.full((2400, 2400), 1.0), np.arange(1.0, 2401), np.arange(1.0, 2401), x_log=False)
    assert large.texts[0].get_fontsize() == pytest.approx(3 * small.texts[0].get_fontsize())
    assert (round(axes(large, "map").get_position().width * large.get_figwidth() * pd.DPI)) == 2400


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(values=np.zeros((3, 4))), "values"),
        (dict(x=np.array([1.0, 3.0, 2.0, 4.0])), "x"),
        (dict(x=np.array([0.0, 1.0, 2.0, 3.0])), "x"),  # log axis needs positive values
        (dict(y=np.array([1.0, np.nan])), "y"),
        (dict(x=np.arange(1.0, 4098.0)), "x"),  # more than 4096 pixels a side
    ],
)
def test_map_refusals_name_the_field(change, field):
    args = dict(values=np.zeros((2, 4)), x=np.array([1.0, 2.0, 3.0, 4.0]), y=np.array([1.0, 2.0]))
    args |= change
    with pytest.raises(SpecError) as refused:
        map_figure(args["values"], args["x"], args["y"])
    assert refused.value.field == field


@pytest.mark.parametrize("steps, n_runs, field", [(-1, 4, "steps"), (10, 2.5, "n_runs")])
def test_map_refuses_bad_counts(steps, n_runs, field):
    with pytest.raises(SpecError) as refused:
        pd.trainability_map_figure(
            np.zeros((1, 2)), [1.0, 2.0], [1.0], x_label="a", y_label="b", x_log=False, y_log=False,
            steps=steps, n_runs=n_runs,
        )  # fmt: skip
    assert refused.value.field == field


def test_map_vector_formats():
    fig = map_figure(np.linspace(-1, 1, 12).reshape(3, 4), np.arange(1.0, 5), np.arange(1.0, 4))
    for fmt, magic in (("svg", b"<?xml"), ("pdf", b"%PDF-")):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=pd.DPI)
        assert buf.getvalue().startswith(magic)


# ---------------------------------------------------------------------------------------------
# Regimes


def drawn_shares(fig, lrs, samples=2000):
    """Per lr and regime, the share of the height [0, 1] that the regime's polygon covers at lr."""
    (ax,) = fig.axes
    ys = (np.arange(samples) + 0.5) / samples
    shares = {}
    for collection in ax.collections:
        (path,) = collection.get_paths()
        name = collection.get_gid().removeprefix("regime:")
        shares[name] = np.array([path.contains_points(np.c_[np.full(samples, lr), ys]).mean() for lr in lrs])
    return shares


def test_regimes_shares_as_drawn():
    lrs = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
    counts = np.zeros((5, 7), dtype=np.int64)
    counts[:, 0] = [10, 8, 5, 0, 0]  # monotone
    counts[:, 2] = [0, 2, 3, 4, 0]  # catapult
    counts[:, 6] = [0, 0, 2, 6, 10]  # diverged; no bumpy, slow, oscillating or stuck anywhere
    fig = pd.regimes_figure(lrs, counts, threshold_lr=74.76, title_note="course + 9 inits")
    shares = drawn_shares(fig, lrs)
    assert list(shares) == ["monotone", "catapult", "diverged"]  # only the regimes present, in order
    total = sum(shares.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-3)
    np.testing.assert_allclose(shares["catapult"], [0, 0.2, 0.3, 0.4, 0], atol=1e-3)
    np.testing.assert_allclose(shares["diverged"], [0, 0, 0.2, 0.6, 1.0], atol=1e-3)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "threshold"]
    np.testing.assert_array_equal(line.get_xdata(), [74.76, 74.76])
    labels = legend_texts(fig)
    assert labels[:3] == [f"{n}: {pd.REGIME_MEANINGS[n]}" for n in ("monotone", "catapult", "diverged")]
    assert "74.76" in labels[3] and "stability limit" in labels[3]
    assert "10 runs per lr" in ax.get_title() and "course + 9 inits" in ax.get_title()


def test_regimes_many_rates_linear_axis_and_blank_rates():
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 4, size=(10_000, 7))
    counts[17] = 0  # no runs at this lr
    lrs = np.linspace(1.0, 5.0, 10_000)  # less than a decade: linear axis
    fig = pd.regimes_figure(lrs, counts)
    (ax,) = fig.axes
    assert ax.get_xscale() == "linear" and "no runs at 1 of the 10,000 lrs" in ax.get_title()
    picked = [0, 17, 4321, 9999]
    shares = drawn_shares(fig, lrs[picked], samples=400)
    total = sum(shares.values())
    np.testing.assert_allclose(total[[0, 2, 3]], 1.0, atol=3e-3)
    assert total[1] == 0
    expected = counts[4321] / counts[4321].sum()
    for r, name in enumerate(pd.REGIMES):
        assert shares[name][2] == pytest.approx(expected[r], abs=3e-3)


def test_regimes_one_rate():
    fig = pd.regimes_figure([2.0], np.array([[1, 0, 0, 0, 0, 0, 3]]))
    shares = drawn_shares(fig, [2.0])
    assert shares["monotone"][0] == pytest.approx(0.25, abs=1e-3)
    assert shares["diverged"][0] == pytest.approx(0.75, abs=1e-3)


def test_regimes_palette():
    assert pd.REGIMES == ("monotone", "bumpy", "catapult", "slow", "oscillating", "stuck", "diverged")
    assert len(set(pd.REGIME_COLORS.values())) == 7 and set(pd.REGIME_MEANINGS) == set(pd.REGIMES)


@pytest.mark.parametrize(
    "lrs, counts, field",
    [
        ([1.0, 2.0], np.zeros((2, 6), dtype=int), "counts"),
        ([1.0, 2.0], -np.ones((2, 7), dtype=int), "counts"),
        ([1.0, 2.0], np.zeros((2, 7)), "counts"),  # shares of floats: counts must be integers
        ([2.0, 1.0], np.zeros((2, 7), dtype=int), "lrs"),
    ],
)
def test_regimes_refusals(lrs, counts, field):
    with pytest.raises(SpecError) as refused:
        pd.regimes_figure(lrs, counts)
    assert refused.value.field == field


# ---------------------------------------------------------------------------------------------
# Edge of stability


def curve(label, lr, loss, stability):
    steps = np.arange(len(loss))
    return dict(label=label, lr=lr, loss_steps=steps, loss=np.array(loss), stability_steps=steps,
                stability=np.array(stability))  # fmt: skip


def test_edge_of_stability_zeros_and_nan_without_warnings():
    curves = [
        curve("lr = 60 (catapult)", 60.0, [0.5, 0.9, 0.1, 1e-5, 0.0, 0.0], [1.6, 2.5, 3.0, 1.9, 1.8, 1.8]),
        curve("lr = 300 (diverged)", 300.0, [0.5, 2.0, np.inf, np.nan, np.nan, np.nan], [8.0, 20, np.nan, np.nan, np.nan, np.nan]),
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = pd.edge_of_stability_figure(curves, title_note="course weights")
        png(fig)
    ax_loss, ax_stab = fig.axes
    assert ax_loss.get_yscale() == "log" and ax_loss.get_shared_x_axes().joined(ax_loss, ax_stab)
    (first,) = [ln for ln in ax_loss.get_lines() if ln.get_gid() == "loss:0"]
    np.testing.assert_allclose(first.get_ydata(), [0.5, 0.9, 0.1, 1e-5, 1e-6, 1e-6])  # a decade below 1e-5
    (second,) = [ln for ln in ax_loss.get_lines() if ln.get_gid() == "loss:1"]
    assert np.isnan(second.get_ydata()[2:]).all()  # inf and NaN: gaps
    (limit,) = [ln for ln in ax_stab.get_lines() if ln.get_gid() == "limit"]
    np.testing.assert_array_equal(limit.get_ydata(), [2.0, 2.0])
    labels = legend_texts(fig)
    assert "stability limit: lr·λ_max = 2" in labels
    assert any("drawn at $10^{-6}$" in t for t in labels) and any("not finite" in t for t in labels)
    assert labels[:2] == ["lr = 60 (catapult)", "lr = 300 (diverged)"]


def test_edge_of_stability_one_colour_per_run():
    curves = [curve(f"lr = {k}", float(k), [1.0, 0.5, 0.25], [0.1 * k] * 3) for k in range(1, 9)]
    fig = pd.edge_of_stability_figure(curves)
    ax_loss, ax_stab = fig.axes
    colours = []
    for k in range(8):
        (a,) = [ln for ln in ax_loss.get_lines() if ln.get_gid() == f"loss:{k}"]
        (b,) = [ln for ln in ax_stab.get_lines() if ln.get_gid() == f"stability:{k}"]
        assert a.get_color() == b.get_color()
        colours.append(a.get_color())
    assert len(set(colours)) == 8
    assert not any("drawn at" in t for t in legend_texts(fig))  # no zeros: no floor note


@pytest.mark.parametrize(
    "curves, field",
    [
        ([], "curves"),
        ([curve("a", 1.0, [1.0], [0.1])] * 9, "curves"),
        ([{"label": "a", "lr": 1.0}], "curves[0]"),
        ([dict(curve("a", 1.0, [1.0, 0.5], [0.1, 0.1]), loss=np.array([1.0]))], "curves[0].loss_steps"),
    ],
)
def test_edge_of_stability_refusals(curves, field):
    with pytest.raises(SpecError) as refused:
        pd.edge_of_stability_figure(curves)
    assert refused.value.field == field


# ---------------------------------------------------------------------------------------------
# Headless


def test_no_pyplot():
    code = (
        "import sys, numpy as np; from fastbp import plots_dynamics as pd; "
        "pd.regimes_figure([1.0, 10.0], np.ones((2, 7), dtype=int), threshold_lr=5.0); "
        "s = np.arange(3); pd.edge_of_stability_figure([dict(label='a', lr=1.0, loss_steps=s, "
        "loss=np.ones(3), stability_steps=s, stability=np.ones(3))]); "
        "pd.trainability_map_figure(-np.ones((2, 3)), [1.0, 2, 3], [1.0, 2], x_label='a', y_label='b', "
        "x_log=False, y_log=False, steps=1, n_runs=6); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
