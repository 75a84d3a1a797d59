"""Figures of training dynamics (issue 17): regimes by learning rate, the edge of stability, the
trainability map. Pure functions: numpy arrays in, a headless ``matplotlib.figure.Figure`` out (no
file I/O: ``fastbp plot`` reads the dataset, calls these and saves the figures at ``DPI``).

- ``regimes_figure(lrs, counts)``: per learning rate, the share of runs in each of ``REGIMES``.
- ``edge_of_stability_figure(curves)``: E_total and the stability number lr·λ_max against step.
- ``trainability_map_figure(values, x, y, ...)``: one pixel per run, rank-equalised colours.
- ``rank_equalise(values)``: that map's colour positions in [0, 1].

Colours of the map (``MAP_CMAP``, ColorBrewer's RdBu reversed): position 0 is dark blue, 0.5
near-white, 1 dark red. Trainable runs lie in [0, 0.5): the fastest (smallest Σ v_k, i.e. the
value nearest 0) at 0, slower runs paler. Untrainable runs lie in (0.5, 1]: the fastest to fail
(smallest Σ 1/v_k: the loss blew up at once) at 1, slower (a plateau near the start) paler. So
dark means fast on both sides and the boundary, where runs are slowest either way, is pale.

This module imports no other part of fastbp but ``errors``: ``plots`` will call it, so it cannot
import ``plots``; ``DPI`` and the palette repeat ``plots``'s (house style). ``matplotlib.pyplot``
is never imported.
"""

import math
import textwrap

import numpy as np

from fastbp.conventions import REGIMES  # the column order of regimes_figure's counts
from fastbp.errors import SpecError, integer

DPI = 110  # as fastbp.plots.DPI
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#999999")
_E_SYMBOL = "$E_\\mathrm{total}$"

#: Okabe–Ito colours (colour-blind safe): reached the tolerance in greens/blues, did not in the rest.
REGIME_COLORS = dict(
    zip(REGIMES, ("#009E73", "#56B4E9", "#0072B2", "#F0E442", "#CC79A7", "#999999", "#D55E00"))
)
REGIME_MEANINGS = {
    "monotone": "fell to the tolerance without ever rising",
    "bumpy": "rose, but not above its start, then reached the tolerance",
    "catapult": "rose above its starting loss, then reached the tolerance",
    "slow": "still falling, above the tolerance at the end",
    "oscillating": "above the tolerance, still rising and falling at the end",
    "stuck": "a plateau above the tolerance (e.g. saturated outputs)",
    "diverged": "the loss became non-finite (overflow)",
}
STABILITY_LIMIT = 2.0  # gradient descent can settle only where lr·λ_max < 2
MAP_CMAP = "RdBu_r"
MAP_NO_RUN = "#808080"  # grey: no run at that grid cell (NaN)
MAX_MAP_SIDE = 4096
_BAR_TICKS = {0: "trains, fastest", 0.25: "trains (median)", 0.5: "boundary: slowest\neither way"}
_BAR_TICKS |= {0.75: "fails (median)", 1: "fails fastest"}


def _new_figure(size, layout="constrained"):
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout=layout)


def _style(*axes):
    for ax in axes:
        ax.grid(True, which="major", color="0.88", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)


def _axis_values(field, values, *, positive=False):
    """A 1-D, strictly ascending, finite float64 array (> 0 if ``positive``), or SpecError."""
    allowed = "a 1-D array of strictly ascending finite numbers" + (" > 0" if positive else "")
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecError(field, values, allowed) from None
    if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all() or (np.diff(a) <= 0).any():
        raise SpecError(field, values, allowed)
    if positive and a[0] <= 0:
        raise SpecError(field, values, allowed)
    return a


def _edges(values, log):
    """Cell edges around each value: midpoints (geometric when ``log``), the ends extended."""
    v = np.log(values) if log else values
    if len(v) == 1:
        half = math.log(1.5) if log else 0.5
        edges = np.array([v[0] - half, v[0] + half])
    else:
        mid = (v[1:] + v[:-1]) / 2
        edges = np.concatenate(([2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]))
    return np.exp(edges) if log else edges


def _count_text(totals):
    lo, hi = (int(totals.min()), int(totals.max())) if totals.size else (0, 0)
    return f"{lo:,} run{'s' * (hi != 1)} per lr" if lo == hi else f"{lo:,}–{hi:,} runs per lr"


# ---------------------------------------------------------------------------------------------
# Regimes


def regimes_figure(lrs, counts, *, threshold_lr=None, title_note=""):
    """For each learning rate, the share of runs in each regime (stacked); ``counts`` (L, 7)."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import NullLocator, PercentFormatter

    lrs = _axis_values("lrs", lrs)
    counts = np.asarray(counts)
    if counts.shape != (len(lrs), len(REGIMES)) or counts.dtype.kind not in "iu" or (counts < 0).any():
        got = f"shape {counts.shape}, dtype {counts.dtype}"
        raise SpecError("counts", got, f"non-negative integers, shape ({len(lrs)}, {len(REGIMES)})")
    if threshold_lr is not None:
        threshold_lr = float(threshold_lr)
        if not math.isfinite(threshold_lr):
            raise SpecError("threshold_lr", threshold_lr, "a finite number or None")
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals[:, None] > 0, counts / np.maximum(totals, 1)[:, None], 0.0)
    log = bool(lrs[0] > 0 and (len(lrs) == 1 or lrs[-1] / lrs[0] >= 10))
    edges = _edges(lrs, log)
    # Each lr a flat tile from its lower to its upper edge: exact shares, any L, one polygon a regime.
    xs = np.repeat(edges, 2)[1:-1]
    top = np.cumsum(shares, axis=1)

    fig = _new_figure((9.0, 5.4))
    ax = fig.add_subplot()
    handles, labels = [], []
    for r, name in enumerate(REGIMES):
        if not counts[:, r].any():
            continue
        lower = np.repeat(top[:, r] - shares[:, r], 2)
        upper = np.repeat(top[:, r], 2)
        # antialiased off: no hairline seams between the stacked bands
        ax.fill_between(
            xs, lower, upper, color=REGIME_COLORS[name], lw=0, antialiased=False, gid=f"regime:{name}"
        )
        handles.append(Patch(color=REGIME_COLORS[name]))
        labels.append(f"{name}: {REGIME_MEANINGS[name]}")
    if log:
        ax.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1])
    if len(lrs) <= 12:
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
        ax.xaxis.set_minor_locator(NullLocator())
    if threshold_lr is not None:
        line = ax.axvline(threshold_lr, color="black", linestyle="--", linewidth=1.6, gid="threshold")
        where = "" if edges[0] <= threshold_lr <= edges[-1] else " (outside the rates shown)"
        handles.append(line)
        labels.append(
            f"lr = {threshold_lr:.4g}: stability limit at the course weights' start "
            f"(lr·λ_max = 2; above it gradient descent cannot settle there){where}"
        )
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("share of runs")
    ax.set_xlabel("learning rate" + (" (log scale)" if log else ""))
    ax.spines[["top", "right"]].set_visible(False)
    parts = [title_note] if title_note else []
    parts.append(_count_text(totals[totals > 0]))
    empty = int((totals == 0).sum())
    if empty:
        parts.append(f"no runs at {empty:,} of the {len(lrs):,} lrs (blank)")
    ax.set_title("How runs train, by learning rate\n" + "; ".join(parts), fontsize=11)
    fig.legend(handles, labels, loc="outside lower center", ncols=1, frameon=False, fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------------
# Edge of stability

_CURVE_KEYS = ("label", "lr", "loss_steps", "loss", "stability_steps", "stability")


def _curve(k, curve):
    if not isinstance(curve, dict) or set(_CURVE_KEYS) - set(curve):
        missing = sorted(set(_CURVE_KEYS) - set(curve)) if isinstance(curve, dict) else "not a dict"
        raise SpecError(f"curves[{k}]", missing, "a dict with keys " + ", ".join(_CURVE_KEYS))
    out = {"label": str(curve["label"]), "lr": float(curve["lr"])}
    for steps, values in (("loss_steps", "loss"), ("stability_steps", "stability")):
        s = np.asarray(curve[steps]).ravel()
        v = np.asarray(curve[values], dtype=np.float64).ravel()
        if s.dtype.kind not in "iu" or s.size != v.size:
            raise SpecError(
                f"curves[{k}].{steps}", f"{s.dtype}, {s.size} values", f"integers, one per {values} value"
            )
        out[steps], out[values] = s, v
    return out


def _loss_floor(curves):
    """A power of ten a decade below the smallest positive finite loss (1e-16 if there is none)."""
    positive = np.concatenate([c["loss"][np.isfinite(c["loss"]) & (c["loss"] > 0)] for c in curves])
    if positive.size == 0:
        return 1e-16
    return 10.0 ** (math.floor(math.log10(positive.min())) - 1)


def edge_of_stability_figure(curves, *, title_note=""):
    """E_total (log, top) and lr·λ_max (below, with the limit 2) against step, one colour per run."""
    from matplotlib.lines import Line2D

    if isinstance(curves, dict) or not hasattr(curves, "__len__") or not 1 <= len(curves) <= 8:
        raise SpecError("curves", type(curves).__name__, "a list of 1 … 8 dicts")
    curves = [_curve(k, c) for k, c in enumerate(curves)]
    floor = _loss_floor(curves)
    fig = _new_figure((8.0, 7.0))
    ax_loss, ax_stab = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    clipped = gaps = False
    stab_values = []
    for k, c in enumerate(curves):
        color = _PALETTE[k % len(_PALETTE)]
        loss = c["loss"]
        finite = np.isfinite(loss)
        with np.errstate(invalid="ignore"):
            clipped |= bool((finite & (loss < floor)).any())
            shown = np.where(finite, np.maximum(loss, floor), np.nan)
        gaps |= not finite.all()
        ax_loss.plot(c["loss_steps"], shown, color=color, linewidth=1.6, gid=f"loss:{k}", label=c["label"])
        stab = np.where(np.isfinite(c["stability"]), c["stability"], np.nan)
        gaps |= bool(np.isnan(stab).any())
        ax_stab.plot(c["stability_steps"], stab, color=color, linewidth=1.6, gid=f"stability:{k}")
        stab_values.append(stab[np.isfinite(stab)])
    ax_loss.set_yscale("log")
    if not any(np.isfinite(c["loss"]).any() for c in curves):
        ax_loss.set_ylim(floor, 1.0)  # nothing to draw: a log axis without data would warn
    limit = ax_stab.axhline(STABILITY_LIMIT, color="black", linestyle="--", linewidth=1.2, gid="limit")
    stab_values = np.concatenate(stab_values + [np.array([STABILITY_LIMIT])])
    if stab_values.min() > 0 and stab_values.max() / stab_values.min() > 100:
        ax_stab.set_yscale("log")  # a run far past the limit would flatten every other curve
    handles, labels = ax_loss.get_legend_handles_labels()
    handles.append(limit)
    labels.append("stability limit: lr·λ_max = 2")
    if clipped:
        power = round(math.log10(floor))
        handles.append(Line2D([], [], color="none"))
        labels.append(f"{_E_SYMBOL} = 0 (or < $10^{{{power}}}$): drawn at $10^{{{power}}}$")
    if gaps:
        handles.append(Line2D([], [], color="none"))
        labels.append("gaps: value not finite (the run overflowed)")
    _style(ax_loss, ax_stab)
    ax_loss.set_ylabel(_E_SYMBOL + " (log scale)")
    ax_stab.set_ylabel("stability lr·λ_max\n(λ_max: top Hessian eigenvalue)", fontsize=9)
    ax_stab.set_xlabel("step")
    note = f"\n{title_note}" if title_note else ""
    ax_loss.set_title(f"Loss and the edge of stability{note}", fontsize=11)
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------------
# Trainability map


def rank_equalise(values):
    """Colour positions in [0, 1] of trainability values, same shape; NaN stays NaN.

    Trainable (value < 0, or −0.0: ``np.signbit``) go by rank into [0, 0.5): the fastest (the
    smallest |value| = Σ v_k) at 0, the slowest nearest 0.5. Untrainable (value ≥ +0.0) go into
    (0.5, 1]: the fastest to fail (the smallest Σ 1/v_k) at 1, the slowest nearest 0.5. Ties share
    their average rank, so equal values get equal positions. A side of n runs uses positions
    0.5 · r / n for ranks r = 0 … n − 1 (mirrored for the untrainable side).
    """
    values = np.asarray(values, dtype=np.float64)
    flat = values.ravel()
    # One sort for both sides (the memory of a 4096² map): ascending value puts the trainable
    # runs first, slowest first, then the untrainable, fastest first, then NaN.
    order = np.argsort(flat, kind="stable")
    valid = flat.size - int(np.isnan(flat).sum())
    if valid == 0:
        return np.full(values.shape, np.nan)
    s = flat[order[:valid]]
    low, high = np.searchsorted(s, 0.0, "left"), np.searchsorted(s, 0.0, "right")
    zeros = order[low:high]  # −0.0 == +0.0 for the sort: −0.0 (trainable) must come first
    negative = np.signbit(flat[zeros])
    order[low:high] = np.concatenate((zeros[negative], zeros[~negative]))
    n_trainable = low + int(negative.sum())
    first = np.empty(valid, dtype=bool)  # the first of each run of equal values, in sorted order
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    if 0 < n_trainable < valid:
        first[n_trainable] = True  # −0.0 and +0.0 are on different sides, never tied
    del s
    # The mean sorted index of each run of ties, (its first + its last) / 2, in two map-sized
    # arrays (a 4096² map within 1 GB): each tie's first index carried forward, its last back.
    rank = np.where(first, np.arange(valid, dtype=np.float64), 0.0)
    np.maximum.accumulate(rank, out=rank)
    last = np.where(np.append(first[1:], True), np.arange(valid, dtype=np.float64), np.inf)
    del first
    np.minimum.accumulate(last[::-1], out=last[::-1])
    rank += last
    rank *= 0.5
    del last
    t, u = rank[:n_trainable], rank[n_trainable:]
    if t.size:  # sorted index k → magnitude rank T − 1 − k → 0.5 · rank / T
        np.subtract(n_trainable - 1, t, out=t)
        t *= 0.5 / t.size
    if u.size:  # sorted index k → rank k − T → 1 − 0.5 · rank / U
        u -= n_trainable
        u *= -0.5 / u.size
        u += 1.0
    out = np.full(values.shape, np.nan)
    out.reshape(-1)[order[:valid]] = rank
    return out


def _nice_ticks(lo, hi, log):
    """Tick values in [lo, hi]: decades (or 1-2-5 × decades) on a log axis, round numbers otherwise."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    if lo == hi:
        return np.array([lo])
    for subs in ((1.0,), (1.0, 2.0, 5.0)) if log else ():
        t = LogLocator(base=10, subs=subs).tick_values(lo, hi)
        ticks = t[(t >= lo * (1 - 1e-9)) & (t <= hi * (1 + 1e-9))]
        if len(ticks) >= 3:
            return ticks
    t = MaxNLocator(nbins=6).tick_values(lo, hi)
    return t[(t >= lo - 1e-9 * abs(hi - lo)) & (t <= hi + 1e-9 * abs(hi - lo))]


def _tick_text(v, log):
    if log and v > 0:
        exponent = round(math.log10(v))
        if math.isclose(v, 10.0**exponent) and abs(exponent) >= 3:
            return f"$10^{{{exponent}}}$"
    return f"{v:g}"


def pixel_position(coordinates, values, log):
    """Where ``values`` fall on an axis whose pixel i (centre i) holds ``coordinates[i]``."""
    c = np.log10(coordinates) if log else np.asarray(coordinates, dtype=np.float64)
    v = np.log10(values) if log else np.asarray(values, dtype=np.float64)
    return np.interp(v, c, np.arange(len(c), dtype=np.float64)) if len(c) > 1 else np.zeros_like(v)


def _set_ticks(axis, coordinates, log, fontsize, gap):
    ticks = _nice_ticks(coordinates[0], coordinates[-1], log)
    at = pixel_position(coordinates, ticks, log)
    keep = [0]  # a small map: only ticks at least ``gap`` pixels apart, so labels never overlap
    for k in range(1, len(at)):
        keep += [k] if at[k] - at[keep[-1]] >= gap else []
    axis.set_ticks(at[keep], [_tick_text(v, log) for v in ticks[keep]])
    if log and len(coordinates) > 1:  # unlabelled minor ticks at 2 … 9 × each decade
        from matplotlib.ticker import LogLocator

        minor = LogLocator(base=10, subs=np.arange(2, 10)).tick_values(coordinates[0], coordinates[-1])
        minor = minor[(minor > coordinates[0]) & (minor < coordinates[-1])]
        axis.set_ticks(pixel_position(coordinates, minor, log), minor=True)
    axis.set_tick_params(labelsize=fontsize)


def _range_text(label, c, log):
    scale = ", log" if log and len(c) > 1 else ""
    return f"{label} {c[0]:g} … {c[-1]:g} ({len(c):,} values{scale})"


def trainability_map_figure(values, x, y, *, x_label, y_label, x_log, y_log, steps, n_runs, title_note=""):
    """The trainability map: ``values[j, i]`` is the run at (x[i], y[j]), drawn as one pixel.

    The image axes are exactly len(x) × len(y) pixels at ``DPI``; the figure's other parts are
    laid out around it in whole pixels (no automatic layout, which would resize the axes).
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import NoNorm, Normalize

    x = _axis_values("x", x, positive=bool(x_log))
    y = _axis_values("y", y, positive=bool(y_log))
    for field, c in (("x", x), ("y", y)):
        if len(c) > MAX_MAP_SIDE:
            raise SpecError(field, f"{len(c):,} values", f"at most {MAX_MAP_SIDE} (one pixel per run)")
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(y), len(x)):
        raise SpecError("values", f"shape {values.shape}", f"shape (len(y), len(x)) = ({len(y)}, {len(x)})")
    steps, n_runs = integer("steps", steps, minimum=0), integer("n_runs", n_runs, minimum=0)
    nx, ny = len(x), len(y)
    no_run = np.isnan(values)
    n_valid = int(no_run.size - no_run.sum())
    trainable = int((np.signbit(values) & ~no_run).sum())
    # The colour map's own index per run (Colormap.__call__'s quantisation of a position into N
    # colours), drawn as uint8 through NoNorm: a 4096² map then costs matplotlib ~1 byte a pixel
    # per copy instead of 16 for an RGBA float image.
    cmap = colormaps[MAP_CMAP].with_extremes(bad=MAP_NO_RUN)
    index = rank_equalise(values)
    index[no_run] = 0.0
    index *= cmap.N
    np.minimum(index, cmap.N - 1, out=index)
    index = np.ma.masked_array(index.astype(np.uint8), no_run)

    # Layout in whole pixels so that the image axes land on exact pixel boundaries.
    scale = min(6.0, max(1.0, max(nx, ny) / 800))  # fonts grow with the image: legible when shrunk
    fs = 10.0 * scale
    pt = fs * DPI / 72  # one font size, in pixels
    left, gap, bar_w = math.ceil(6.5 * pt), math.ceil(1.2 * pt), math.ceil(1.4 * pt)
    right = math.ceil(17.5 * pt)
    height = max(ny, math.ceil(14 * pt))  # the colour bar keeps a readable height under small maps
    width = max(left + nx + gap + bar_w + right, math.ceil(6.5 * DPI * scale))
    wrap = max(30, int((width - left - pt) / (0.55 * 0.9 * pt)))  # characters a 0.9·fs line holds
    share = f"{100 * trainable / n_valid:.3g} % of the runs drawn train" if n_valid else "no run drawn"
    title = [
        "Trainability map: each pixel one run; "
        + _range_text("across: " + x_label, x, x_log)
        + "; "
        + _range_text("up: " + y_label, y, y_log),
        f"{steps:,} steps, {n_runs:,} runs; {share}; colours rank-equalised",
    ]
    if title_note:
        title.append(title_note)
    title = [line for t in title for line in textwrap.wrap(t, int(wrap * 0.9 / 1.1))]
    explain = [
        "Blue: trains (its loss ends below its start: mean E/E₀ of its last 20 values < 1); "
        "dark = converges fast, light = slowly.",
        "Red: does not train; light = fails slowly (stays near its start), dark = fails fast (its loss jumps above its start and stays). "
        f"Grey: no run.{' Pale: the boundary, slow either way.' if n_valid else ''}",
        "Rank equalisation: each run is coloured by its rank among the runs on its side (not by its "
        "value), so every shade holds the same number of runs and the boundary stands out.",
    ]
    explain = [line for t in explain for line in textwrap.wrap(t, wrap)]
    top = math.ceil((1.4 * 1.15 * len(title) + 1.0) * pt)
    bottom = math.ceil((3.6 + 1.35 * len(explain) + 0.8) * pt)
    fig_w, fig_h = width, top + height + bottom
    fig = _new_figure((fig_w / DPI, fig_h / DPI), layout=None)

    def box(x0, y0, w, h):  # pixels from the bottom left → figure fraction
        return [x0 / fig_w, y0 / fig_h, w / fig_w, h / fig_h]

    ax = fig.add_axes(box(left, bottom, nx, ny), gid="map")
    extent = (-0.5, nx - 0.5, -0.5, ny - 0.5)  # pixel i's centre at i: ticks by pixel_position
    options = dict(origin="lower", interpolation="none", interpolation_stage="data", resample=False)
    ax.imshow(index, cmap=cmap, norm=NoNorm(), extent=extent, aspect="auto", **options)
    ax.set(xlim=extent[:2], ylim=extent[2:])
    frame = 0.08 * fs  # points; the frame stands just outside the image, never over its edge pixels
    for spine in ax.spines.values():
        spine.set_linewidth(frame)
        spine.set_position(("outward", frame / 2 + 72 / DPI))
    _set_ticks(ax.xaxis, x, x_log, 0.95 * fs, gap=4 * pt)
    _set_ticks(ax.yaxis, y, y_log, 0.95 * fs, gap=1.5 * pt)
    ax.tick_params(which="major", length=0.45 * fs, width=0.08 * fs)
    ax.tick_params(which="minor", length=0.25 * fs, width=0.06 * fs)
    ax.set_xlabel(x_label + (" (log scale)" if x_log else ""), fontsize=fs)
    ax.set_ylabel(y_label + (" (log scale)" if y_log else ""), fontsize=fs)
    cax = fig.add_axes(box(left + nx + gap, bottom, bar_w, height), gid="colour bar")
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), cax=cax)
    bar.set_ticks(list(_BAR_TICKS), labels=list(_BAR_TICKS.values()), fontsize=0.9 * fs)
    bar.outline.set_linewidth(0.08 * fs)
    cax.tick_params(length=0.4 * fs, width=0.08 * fs)
    fig.text(left / fig_w, 1 - 0.5 * pt / fig_h, "\n".join(title), va="top", ha="left", fontsize=1.1 * fs)
    fig.text(left / fig_w, 0.5 * pt / fig_h, "\n".join(explain), va="bottom", ha="left", fontsize=0.9 * fs)
    return fig
