"""Figures of a sweep over rate pairs (``lr_hidden`` × ``lr_output``): one image, not a figure per pair.

A per-layer sweep can hold thousands of rate pairs; ``fastbp plot`` then draws ``rates.png``:
for each pair, the median final loss over its runs (left) and the share of its runs that
reached the tolerance (right), with the hidden layer's rate across and the output layer's up,
log axes where the rates are log-spaced. Read from the dataset alone, in record batches.

Also the learning-rate axes and colours of the loss figures (``fastbp.plots``): readable rate
ticks, a legend or a colour bar for the rates, the rates drawn when there are too many.
"""

import numpy as np

from fastbp.inits import log_spaced
from fastbp.reading import batches, open_for_reading

NEEDED = ("lr_hidden", "lr_output", "final_loss", "first_step_below_tol")


class RatePairs:
    """Per (lr_hidden, lr_output) pair: runs, median final loss, runs that reached the tolerance."""

    def __init__(self, path, metadata, hidden, output, n, median, reached, n_runs_spec):
        self.path, self.metadata = path, metadata
        self.hidden, self.output = hidden, output  # the axes' rates, as in the spec
        self.n, self.median, self.reached = n, median, reached  # (len(output), len(hidden)) arrays
        self.n_runs_spec = n_runs_spec


def summarise_pairs(dataset, filesystem=None, partial=False):
    from fastbp.spec import parse_spec

    data, path, metadata, report = open_for_reading(dataset, NEEDED, filesystem, partial=partial)
    spec = parse_spec(metadata["spec"])
    # The axes ascending, whatever order the spec lists them in (each rate appears once).
    hidden, output = np.sort(np.array(spec.lrs)), np.sort(np.array(spec.lr_output))
    pairs, finals, reached = [], [], []
    for batch in batches(data, list(NEEDED), 1):
        h = np.searchsorted(hidden, batch.column("lr_hidden").to_numpy()) if len(hidden) > 1 else 0
        o = np.searchsorted(output, batch.column("lr_output").to_numpy()) if len(output) > 1 else 0
        pairs.append(np.asarray(o * len(hidden) + h, dtype=np.int64) + np.zeros(batch.num_rows, np.int64))
        finals.append(batch.column("final_loss").to_numpy().astype(np.float64))
        reached.append(batch.column("first_step_below_tol").is_valid().to_numpy(zero_copy_only=False))
    pair = np.concatenate(pairs) if pairs else np.empty(0, np.int64)
    final = np.concatenate(finals) if finals else np.empty(0)
    hit = np.concatenate(reached) if reached else np.empty(0, bool)
    cells = len(hidden) * len(output)
    n = np.bincount(pair, minlength=cells)
    got = np.bincount(pair, weights=hit, minlength=cells)
    final = np.where(np.isnan(final), np.inf, final)  # non-finite ranks above every finite value
    order = np.lexsort((final, pair))
    start = np.concatenate(([0], np.cumsum(n)[:-1]))
    median = np.full(cells, np.nan)
    have = n > 0
    sorted_final = final[order]
    low = sorted_final[(start + (n - 1) // 2)[have]]
    high = sorted_final[(start + n // 2)[have]]
    with np.errstate(invalid="ignore"):
        median[have] = np.where(np.isinf(high), high, (low + high) / 2)
    shape = (len(output), len(hidden))
    return RatePairs(
        path,
        metadata,
        hidden,
        output,
        n.reshape(shape),
        median.reshape(shape),
        got.reshape(shape),
        report.n_runs,
    )


def _edges(values, log):
    if len(values) == 1:
        return (
            np.array([values[0] / 1.5, values[0] * 1.5])
            if log
            else np.array([values[0] - 0.5, values[0] + 0.5])
        )
    v = np.log(values) if log else np.asarray(values, dtype=np.float64)
    mid = (v[1:] + v[:-1]) / 2
    edges = np.concatenate(([v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]))
    return np.exp(edges) if log else edges


def rates_figure(pairs):
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.8), dpi=110, layout="constrained")
    ax_loss, ax_hit = fig.subplots(1, 2)
    xlog, ylog = log_spaced(pairs.hidden), log_spaced(pairs.output)
    x, y = _edges(pairs.hidden, xlog), _edges(pairs.output, ylog)
    finite = pairs.median[np.isfinite(pairs.median) & (pairs.median > 0)]
    norm = LogNorm(finite.min(), finite.max()) if finite.size and finite.max() > finite.min() else None
    shown = np.where(pairs.median > 0, pairs.median, finite.min() if finite.size else 1.0)
    mesh = ax_loss.pcolormesh(
        x, y, np.ma.masked_invalid(np.where(np.isfinite(shown), shown, np.nan)), norm=norm
    )
    fig.colorbar(mesh, ax=ax_loss, label="median final $E_\\mathrm{total}$ (white: overflowed)")
    with np.errstate(invalid="ignore"):
        share = pairs.reached / pairs.n
    mesh = ax_hit.pcolormesh(x, y, np.ma.masked_invalid(share), vmin=0, vmax=1, cmap="cividis")
    fig.colorbar(mesh, ax=ax_hit, label="share of runs that reached the tolerance")
    for ax in (ax_loss, ax_hit):
        ax.set_xscale("log" if xlog or len(pairs.hidden) == 1 else "linear")
        ax.set_yscale("log" if ylog or len(pairs.output) == 1 else "linear")
        ax.set_xlabel("lr_hidden (w1…w4)")
        ax.set_ylabel("lr_output (w5…w8)")
    runs = int(pairs.n.sum())
    partial = (
        f"; PARTIAL: {runs:,} of the spec's {pairs.n_runs_spec:,} runs" if runs < pairs.n_runs_spec else ""
    )
    fig.suptitle(
        f"Rate pairs: {len(pairs.hidden)} × {len(pairs.output)}, {runs:,} runs, "
        f"{pairs.metadata.get('steps', 0):,} steps{partial}",
        fontsize=12,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Learning-rate axes and colours of the loss figures (``fastbp.plots``)

#: More rates than this on one axes: a colour bar says which line is which, not a legend.
LEGEND_RATES = 8


def rate_text(lr):
    return f"{lr:g}"


def file_stems(lrs):
    """Figure name per learning rate: ``loss_lr_{lr:g}``, or ``repr`` if ``:g`` would collide."""
    names = [rate_text(lr) for lr in lrs]
    if len(set(names)) < len(names):
        names = [repr(float(lr)) for lr in lrs]
    return {float(lr): f"loss_lr_{name}" for lr, name in zip(lrs, names)}


def evenly_spaced(lrs, n):
    """At most ``n`` of ``lrs``, evenly spaced by index, the first and the last kept."""
    if len(lrs) <= n:
        return list(lrs)
    return [lrs[k] for k in np.unique(np.round(np.linspace(0, len(lrs) - 1, n)).astype(int))]


def _is_log(lrs):
    return len(lrs) > 1 and lrs[0] > 0 and lrs[-1] / lrs[0] >= 10


def rate_axis(ax, lrs, fontsize=10.0):
    """A learning-rate x axis: log when the rates span a decade or more; a label at every rate
    while the labels fit side by side (turned 45° when they do not), else matplotlib's ticks."""
    from matplotlib.ticker import NullLocator

    log = _is_log(lrs)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    if len(lrs) > 12:
        return
    labels = [f"{lr:.3g}" for lr in lrs]
    # Where each rate lands (points from the left, inside matplotlib's 5 % margins), and the
    # room its label needs (0.6 em a character, half an em apart).
    at = np.log(lrs) if log else np.asarray(lrs, dtype=np.float64)
    width = ax.figure.get_figwidth() * 72 * ax.get_position().width * 0.9
    at = (at - at[0]) / (at[-1] - at[0]) * width if len(lrs) > 1 else np.zeros(1)
    need = np.array([0.6 * fontsize * len(t) for t in labels])
    gaps = np.diff(at)
    turned = bool((gaps < (need[1:] + need[:-1]) / 2 + 0.5 * fontsize).any())
    if turned and (gaps < 1.6 * fontsize).any():
        return  # too crowded even turned: matplotlib's own ticks
    ax.set_xticks(lrs, labels)
    ax.xaxis.set_minor_locator(NullLocator())
    if turned:
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():
            label.set(ha="right", rotation_mode="anchor")


def rate_colours(fig, ax, lrs):
    """A colour per rate: by index along viridis for a legend (up to ``LEGEND_RATES`` rates), else
    by value, with a colour bar of the rates beside ``ax``. Returns (colours, colour bar drawn)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, LogNorm, Normalize

    viridis = colormaps["viridis"]
    if len(lrs) <= LEGEND_RATES:
        return [viridis(0.9 * k / max(1, len(lrs) - 1)) for k in range(len(lrs))], False
    cmap = ListedColormap(viridis(np.linspace(0, 0.9, 256)))  # no pale yellow on white
    norm = (LogNorm if _is_log(lrs) else Normalize)(lrs[0], lrs[-1])
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02)
    bar.set_label("learning rate (line colour)")
    return [cmap(norm(lr)) for lr in lrs], True
