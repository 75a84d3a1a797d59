"""Figures from a sweep dataset, drawn from its summary (``fastbp.stats``): no spec file, no retraining.

    fastbp plot DATASET --out FIGDIR [--format png|svg|pdf]
    plot_dataset(dataset, out, fmt="png") -> [written paths]

Figures (``{lr:g}`` names the learning rate, e.g. ``loss_lr_0.5.png``, ``loss_lr_2.png``):

- ``loss_lr_{lr}``: E_total against step at one learning rate: the course initialisation's curve
  (when the sweep has a ``course`` block) and, for every other ``[[init]]`` block, the median
  and the 10–90 % band over its runs.
- ``loss_course``: the course initialisation's curves at every learning rate on one axes (the
  exercise's own figure); only when the sweep has a ``course`` block. Above ``LEGEND_RATES``
  rates a colour bar names them; above ``MAX_RATE_FIGURES`` no per-rate figure is drawn, this
  one draws that many rates, and the titles and a logged note say so.
- ``overview``: final loss against learning rate (median and 10–90 % band per ``[[init]]``
  block; the course run as a line), and the fraction of runs that reached the tolerance:
  ``first_step_below_tol`` is not null, i.e. E_total < tolerance at some step 0 … steps (every
  step counts, not only the recorded ones; a run may rise above the tolerance again later).

Zeros and the log axis: E_total reaches 0.0 exactly (e.g. targets 0.5 and lr 2.0). Log axes
draw every value below ``floor`` (zeros included) at ``floor``, a power of ten below the
smallest positive ``min_loss`` in the dataset, and the legend says so. Non-finite values (runs
that overflowed) rank above every finite value in the statistics and leave gaps in the lines.

Headless: figures are ``matplotlib.figure.Figure`` objects saved through their own canvas;
``matplotlib.pyplot`` is never imported, so no GUI backend is ever selected and the caller's
pyplot state is untouched.
"""

import logging
import math
import os

import numpy as np

from fastbp.errors import SpecError
from fastbp.plots_rates import evenly_spaced, file_stems, rate_axis, rate_colours, rate_text
from fastbp.stats import summarise

FORMATS = ("png", "svg", "pdf")
DPI = 110

_COURSE_COLOR = "black"
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#999999")
_E_SYMBOL = "$E_\\mathrm{total}$"
_E_LABEL = _E_SYMBOL + " = ½Σ(t − a)²"
_BAND_LABEL = "median (line), 10–90 % of runs (band)"
_BAND_LABEL_BINNED = "≈ median, 10–90 % band (binned quantiles)"
_LABEL_BOX = dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85)
#: The ``course`` init block's runs, named for a reader who has not read the spec.
_COURSE_LABEL = "the exercise's initial weights"
_LOG = logging.getLogger("fastbp.plots")  # notes on what was left out; on stderr unless configured


def _clip(values, floor):
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values), np.maximum(values, floor), np.nan)


def _scale(ax, arrays, floor, axis="y"):
    """Log scale when the positive values span more than two decades; returns True if log."""
    values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.empty(0)
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    if positive.size == 0:
        return False
    lo, hi = positive.min(), positive.max()
    log = hi / lo > 100 or (values <= 0).any() and hi / floor > 100
    setter = ax.set_yscale if axis == "y" else ax.set_xscale
    if log:
        setter("log")
        if axis == "y":
            lo = min(lo, floor) if (values <= floor).any() else lo
            ax.set_ylim(lo / 10**0.4, hi * 10**0.4)
            if hi / lo > 1e8:  # minor ticks add nothing over many decades (and cost drawing time)
                from matplotlib.ticker import NullLocator

                ax.yaxis.set_minor_locator(NullLocator())
    elif axis == "y":
        ax.set_ylim(0, hi * 1.08)
    return log


def _colors(summary):
    others = [f for f in summary.families if f.kind != "course"]
    return {f.block: _PALETTE[k % len(_PALETTE)] for k, f in enumerate(others)}


def _subtitle(summary):
    spec = summary.metadata.get("spec") or {}
    net = spec.get("network") or {}
    parts = []
    if net:
        inputs, targets = (", ".join(f"{v:g}" for v in net.get(key, [])) for key in ("inputs", "targets"))
        parts.append(f"inputs ({inputs}), targets ({targets})")
    parts.append(f"{summary.metadata.get('steps', int(summary.steps[-1])):,} steps")
    if summary.metadata.get("dtype"):
        parts.append(summary.metadata["dtype"])
    if summary.n_runs_spec > summary.n_runs:  # a partial view says so on every figure
        parts.append(f"PARTIAL: {summary.n_runs:,} of the spec's {summary.n_runs_spec:,} runs")
    return "; ".join(parts)


def _new_figure(size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _style(ax):
    ax.grid(True, which="major", color="0.88", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _power_of_ten(value):
    exponent = round(math.log10(value))
    return f"$10^{{{exponent}}}$" if math.isclose(value, 10.0**exponent) else f"{value:.1e}"


def _floor_handle(ax, summary):
    """A dotted line at the floor, and its legend entry: values below it are drawn on it."""
    line = ax.axhline(summary.floor, color="0.55", linestyle=":", linewidth=1.2, zorder=1, gid="floor")
    power = _power_of_ten(summary.floor)
    return line, f"{_E_SYMBOL} = 0 (or < {power}): drawn at {power}"


def _band_handle():
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return (Patch(color="0.5", alpha=0.3, linewidth=0), Line2D([], [], color="0.35", linewidth=1.8))


def _visible_length(text):
    """Characters a label shows (mathtext markup such as $E_\\mathrm{total}$ counted as shown)."""
    import re

    text = re.sub(r"\\mathrm\{([^}]*)\}", r"\1", text)
    return len(re.sub(r"[$^_{}]", "", text))


def _legend(fig, handles, labels, max_cols=2):
    """Below the axes, in as many columns (up to ``max_cols``) as the figure's width holds."""
    from matplotlib.legend_handler import HandlerTuple

    width = fig.get_figwidth() * 72 / (0.6 * 9) - 4  # 9-point characters across the figure
    size = [_visible_length(t) + 6 for t in labels]  # with a handle and the gap between columns
    ncols = 1
    for n in range(2, min(max_cols, len(labels) // 2 + 1) + 1):  # entries fill column by column
        rows = -(-len(labels) // n)
        if sum(max(size[k : k + rows]) for k in range(0, len(labels), rows)) <= width:
            ncols = n
    tuples = {tuple: HandlerTuple(ndivide=1)}
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=ncols,
        frameon=False,
        fontsize=9,
        handler_map=tuples,
    )


def lr_figure(summary, lr):
    """E_total against step at one learning rate (course curve, median and band per family)."""
    from matplotlib.patches import Patch

    lr = float(lr)
    x = summary.steps
    marker = "o" if len(x) < 3 else None
    fig = _new_figure((7.6, 5.2))
    ax = fig.add_subplot()
    _style(ax)
    colors = _colors(summary)
    handles, labels, plotted, binned = [], [], [], False
    for block, band in sorted(summary.curves.get(lr, {}).items()):
        family, color = summary.family(block), colors[block]
        low, median, high = (_clip(a, summary.floor) for a in (band.low, band.median, band.high))
        ax.fill_between(x, low, high, color=color, alpha=0.22, linewidth=0, gid=f"band:{block}")
        ax.plot(x, median, color=color, linewidth=1.8, marker=marker, gid=f"median:{block}")
        overflow = int(summary.final[block].overflow[list(summary.lrs).index(lr)])
        extra = f", {overflow:,} overflowed" if overflow else ""
        handles.append((Patch(color=color, alpha=0.22, linewidth=0), ax.lines[-1]))
        labels.append(f"{family.label}, n = {band.n:,}{extra}")
        plotted += [low, median, high]
        binned = binned or not band.exact
    if plotted:
        handles.append(_band_handle())
        labels.append(_BAND_LABEL if not binned else _BAND_LABEL_BINNED)
    if lr in summary.course:
        y = _clip(summary.course[lr], summary.floor)
        ax.plot(x, y, color=_COURSE_COLOR, linewidth=2.0, marker=marker, gid="course", zorder=5)
        handles.insert(0, ax.lines[-1])
        labels.insert(0, _COURSE_LABEL)
        plotted.append(y)
    _finish_curve_axes(ax, summary, x, plotted, handles, labels)
    ax.set_title(f"Loss curves at learning rate {rate_text(lr)}\n{_subtitle(summary)}", fontsize=11)
    _legend(fig, handles, labels)
    return fig


def _tolerance_and_floor(ax, summary, plotted, log, handles, labels):
    """The dashed tolerance line and, on a log axis with zeros, the floor line, with legend entries."""
    ax.axhline(summary.tolerance, color="0.3", linestyle="--", linewidth=1.0, zorder=1)
    handles.append(ax.lines[-1])
    labels.append(f"tolerance {summary.tolerance:g}")
    if log and any((a <= summary.floor).any() for a in plotted):
        handle, label = _floor_handle(ax, summary)
        handles.append(handle)
        labels.append(label)


def _finish_curve_axes(ax, summary, x, plotted, handles, labels):
    """Scale, tolerance line, zero floor and labels shared by the loss-against-step figures."""
    log = _scale(ax, plotted + [np.array([summary.tolerance])], summary.floor)
    _tolerance_and_floor(ax, summary, plotted, log, handles, labels)
    ax.set_xlim(*((x[0], x[-1]) if len(x) > 1 else (0, max(1, x[0]) * 1.02)))
    ax.set_xlabel("step")
    ax.set_ylabel(_E_LABEL + (" (log scale)" if log else ""))
    if len(x) == 1:  # one point a run: say so, not an empty-looking axes
        text = (
            f"No loss curves: this dataset keeps E_total at step {int(x[0]):,} only (record_every = 0).\n"
            "The points are the final losses; overview compares them across learning rates.\n"
            "Sweep with record_every ≥ 1 to draw the curves."
        )
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, gid="no-curves")


def course_figure(summary):
    """The course initialisation's E_total against step at every learning rate (or None): a
    legend names up to ``LEGEND_RATES`` rates, a colour bar more; at most ``MAX_RATE_FIGURES``
    lines, evenly spaced, and the title says when some rates are left out."""
    if not summary.course:
        return None
    x = summary.steps
    fig = _new_figure((7.0, 4.9))
    ax = fig.add_subplot()
    _style(ax)
    every = [lr for lr in summary.lrs if float(lr) in summary.course]
    lrs = evenly_spaced(every, MAX_RATE_FIGURES)
    colours, bar = rate_colours(fig, ax, lrs)
    handles, labels, plotted = [], [], []
    for lr, colour in zip(lrs, colours):
        y = _clip(summary.course[float(lr)], summary.floor)
        marker = "o" if len(x) < 3 else None
        ax.plot(x, y, color=colour, linewidth=1.8, marker=marker, gid=f"course:{rate_text(lr)}")
        if not bar:
            handles.append(ax.lines[-1])
            labels.append(f"lr = {rate_text(lr)}")
        plotted.append(y)
    _finish_curve_axes(ax, summary, x, plotted, handles, labels)
    shown = "every learning rate" if len(lrs) == len(every) else f"{len(lrs)} of the {len(every)} rates"
    ax.set_title(f"The exercise's initial weights: loss curves at {shown}\n{_subtitle(summary)}", fontsize=11)
    _legend(fig, handles, labels, max_cols=4)
    return fig


def overview_figure(summary):
    """Final loss against lr (median, 10–90 % band) and the fraction that reached the tolerance."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    lrs = summary.lrs
    fig = _new_figure((11.0, 4.8))
    ax_loss, ax_hit = fig.subplots(1, 2)
    colors = _colors(summary)
    handles, labels, plotted, binned, n_band, stacked = [], [], [], False, 0, {}
    order = sorted(summary.families, key=lambda f: (f.kind != "course", f.block))
    for family in order:
        stats = summary.final[family.block]
        have = stats.final.n > 0
        x = lrs[have]
        final = stats.final
        low, median, high = (_clip(a[have], summary.floor) for a in (final.low, final.median, final.high))
        fraction = stats.reached[have] / stats.final.n[have]
        if family.kind == "course":
            style = dict(color=_COURSE_COLOR, linewidth=2.0, marker="o", markersize=5, zorder=5)
            ax_loss.plot(x, median, gid=f"final:{family.block}", **style)
            ax_hit.plot(x, fraction, gid=f"reached:{family.block}", **style)
            handles.append(ax_loss.lines[-1])
            labels.append(f"{_COURSE_LABEL} (one run per lr)")
            plotted.append(median)
            continue
        color = colors[family.block]
        ax_loss.fill_between(x, low, high, color=color, alpha=0.22, linewidth=0, gid=f"band:{family.block}")
        ax_loss.plot(
            x, median, color=color, linewidth=1.8, marker="s", markersize=4, gid=f"final:{family.block}"
        )
        ax_hit.plot(
            x, fraction, color=color, linewidth=1.8, marker="s", markersize=4, gid=f"reached:{family.block}"
        )
        if len(x) <= 12:  # print the values that a 0–100 % axis cannot tell from 0 or 100 %
            for lr, value in zip(x, fraction):
                if 0 < value < 0.1 or 0.9 < value < 1:
                    near_zero = bool(value < 0.5)
                    # stacked labels at one lr
                    k = stacked[lr, near_zero] = stacked.get((lr, near_zero), -1) + 1
                    ax_hit.annotate(
                        f"{100 * value:.3g}%",
                        (lr, 0.0 if near_zero else 1.0),
                        textcoords="offset points",
                        xytext=(6, 6 + 13 * k if near_zero else -(14 + 13 * k)),
                        ha="left",
                        fontsize=8,
                        color=color,
                        zorder=6,
                        bbox=_LABEL_BOX,
                    )
        runs = stats.final.n[have]
        n_text = f"{int(runs[0]):,}"
        if (runs != runs[0]).any():
            n_text = f"{int(runs.min()):,}–{int(runs.max()):,}"
        handles.append((Patch(color=color, alpha=0.22, linewidth=0), ax_loss.lines[-1]))
        labels.append(f"{family.label}, n = {n_text} per lr")
        plotted += [low, median, high]
        binned = binned or not stats.final.exact[have].all()
        n_band += 1
    for ax in (ax_loss, ax_hit):
        _style(ax)
        rate_axis(ax, lrs)
    log = _scale(ax_loss, plotted + [np.array([summary.tolerance])], summary.floor)
    if n_band:
        handles.append(_band_handle())
        labels.append(_BAND_LABEL if not binned else _BAND_LABEL_BINNED)
    _tolerance_and_floor(ax_loss, summary, plotted, log, handles, labels)
    steps = summary.metadata.get("steps", int(summary.steps[-1]))
    ax_loss.set_ylabel("final " + _E_LABEL + (" (log scale)" if log else ""))
    ax_loss.set_title(f"Final loss after {steps:,} steps", fontsize=11)
    ax_hit.set_ylim(-0.03, 1.03)
    ax_hit.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax_hit.set_ylabel(f"runs with {_E_SYMBOL} < {summary.tolerance:g} at some step")
    ax_hit.set_title(f"Reached the tolerance by step {steps:,}", fontsize=11)
    left_out = ""
    if len(lrs) > MAX_RATE_FIGURES:
        left_out = f"\n{len(lrs)} rates: no figure per rate (at most {MAX_RATE_FIGURES}); every rate is here"
    fig.suptitle(f"Learning-rate overview ({_subtitle(summary)}){left_out}", fontsize=12)
    _legend(fig, handles, labels)
    return fig


#: More learning rates than this: no figure per rate (the overview shows them all), and the
#: course figure draws this many of them, evenly spaced.
MAX_RATE_FIGURES = 24


def make_figures(summary):
    """``{file stem: matplotlib Figure}``: one per lr (up to ``MAX_RATE_FIGURES`` rates),
    ``loss_course`` (if any), ``overview``."""
    figures = {}
    stems = file_stems(summary.lrs)
    for lr in summary.lrs if len(summary.lrs) <= MAX_RATE_FIGURES else ():
        figures[stems[float(lr)]] = lr_figure(summary, lr)
    if len(summary.lrs) > MAX_RATE_FIGURES:
        _LOG.warning(
            f"fastbp plot: {len(summary.lrs)} learning rates: no loss_lr_* figure per rate (at most "
            f"{MAX_RATE_FIGURES}); the overview shows every rate, loss_course {MAX_RATE_FIGURES} of them"
        )
    course = course_figure(summary)
    if course is not None:
        figures["loss_course"] = course
    figures["overview"] = overview_figure(summary)
    return figures


def _per_layer(dataset, filesystem):
    """Whether the dataset's spec has per-layer rates (its manifest or metadata: no shard is
    checked twice, the reader that follows checks them)."""
    from fastbp.reading import dataset_spec

    try:
        return "lr_hidden" in (dataset_spec(dataset, filesystem) or {})
    except SpecError:
        return False  # not readable: summarise refuses it with the full message


def _save(fig, path, fmt):
    import matplotlib

    from fastbp.files import write_atomically

    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]

    def write(stream):
        # errstate: log axes spanning hundreds of decades overflow harmlessly inside matplotlib
        with matplotlib.rc_context({"svg.hashsalt": "fastbp"}), np.errstate(over="ignore"):
            fig.savefig(stream, format=fmt, dpi=DPI, metadata=metadata)

    write_atomically(path, write)


#: The kinds of figure ``plot_dataset`` draws where the dataset holds their columns (docs/figures.md).
FIGURE_KINDS = ("loss", "rates", "regimes", "edge_of_stability", "trainability_map", "reach")


def _kinds(figures):
    if figures is None:
        return FIGURE_KINDS
    names = figures.split(",") if isinstance(figures, str) else list(figures)
    for name in names:
        if name not in FIGURE_KINDS:
            raise SpecError("figures", name, "a comma-separated list of " + ", ".join(FIGURE_KINDS))
    return tuple(names)


def plot_dataset(dataset, out, fmt="png", *, filesystem=None, partial=False, figures=None):
    """Write the figures of ``dataset`` into the directory ``out``; returns the written paths.

    ``figures``: the kinds to draw (``FIGURE_KINDS``, a list or comma-separated text; default:
    every kind the dataset's columns allow).

    ``fmt``: png (default), svg or pdf. Raises ``SpecError`` before writing anything when the
    format is unknown, ``out`` is a file, or ``dataset`` is missing or not a fastbp dataset
    (fields ``format``, ``out`` and ``dataset``), and when the dataset is incomplete or damaged
    unless ``partial`` (then the figures show its sound shards and say how many runs they hold).
    """
    fmt_text = fmt.lower() if isinstance(fmt, str) else fmt
    if fmt_text not in FORMATS:
        raise SpecError("format", fmt, "one of png, svg, pdf")
    if isinstance(out, bytes) or not isinstance(out, (str, os.PathLike)) or not os.fspath(out).strip():
        raise SpecError("out", repr(out), "a directory path for the figures (a non-empty str or os.PathLike)")
    out = os.fspath(out)
    if "://" in out:
        raise SpecError("out", out, "a local directory for the figures")
    if os.path.exists(out) and not os.path.isdir(out):
        raise SpecError("out", out, "a directory for the figures (this path is a file)")
    kinds = _kinds(figures)
    from fastbp import dynamics, plots_rates, plots_reach, stats

    stored = set(dynamics.columns(dataset, filesystem)) or None  # None: unreadable, refused below
    per_layer, drawn = _per_layer(dataset, filesystem), {}
    if per_layer and "rates" in kinds and (stored is None or stored.issuperset(plots_rates.NEEDED)):
        drawn["rates"] = plots_rates.rates_figure(plots_rates.summarise_pairs(dataset, filesystem, partial))
    elif not per_layer and "loss" in kinds and (stored is None or stored.issuperset(stats.NEEDED)):
        drawn = make_figures(summarise(dataset, filesystem=filesystem, partial=partial))
    drawn.update(dynamics.figures(dataset, filesystem, partial, stored or set(), per_layer, kinds))
    drawn.update(plots_reach.figures(dataset, filesystem, partial, stored or set(), kinds, figures is None))
    if not drawn:
        allowed = f"a dataset with columns for the figures asked ({', '.join(kinds)}): see docs/model.md"
        raise SpecError("dataset", dataset, allowed)
    os.makedirs(out, exist_ok=True)
    written = []
    for stem, fig in drawn.items():
        path = os.path.join(out, f"{stem}.{fmt_text}")
        _save(fig, path, fmt_text)
        written.append(path)
    return written
