"""The ``reach`` figure: per learning rate, how many random starts reach the tolerance, and how
many steps they take (``fastbp plot --figures reach``; docs/figures.md "Reach").

- ``reach_table(lr, first_step, rates=None)``: the numbers, a pure function (arrays in, a
  ``ReachTable`` out): per rate the runs, those that reached, and the quantiles of their first
  step below the tolerance.
- ``reach_figure(reach)``: draws a ``Reach`` (a table and the texts that name it): the share
  that reached (its count k / n and a Wilson 95 % interval), the stuck starts (never below the
  tolerance), and the first step's distribution (median, interquartile band, 10–90 % whiskers).
- ``read_reach(dataset)``: the ``Reach`` of a dataset's ``lr``, ``init_block`` and
  ``first_step_below_tol`` columns and its spec, read in record batches.
- ``figures(...)``: what ``fastbp plot`` calls (``fastbp.plots.plot_dataset``).

Random starts are the runs of every ``[[init]]`` block whose kind is not ``course``, ``fixed``
or ``grid`` (those place their runs by hand), pooled per rate. ``matplotlib.pyplot`` is never
imported.
"""

import math
import sys
from dataclasses import dataclass

import numpy as np

from fastbp.errors import SpecError
from fastbp.inits import label, log_spaced
from fastbp.reading import batches, dataset_spec, open_for_reading

NEEDED = ("lr", "init_block", "first_step_below_tol")
NOT_RANDOM = ("course", "fixed", "grid")  # init kinds whose runs are placed, not drawn
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
DPI = 110  # as fastbp.plots.DPI
_BLUE, _DARK, _STUCK = "#0072B2", "#004B75", "#D55E00"  # Okabe–Ito, as the other figures
_POINTS = dict(color=_BLUE, marker="o", markersize=5)
_DATA_NAMES = {"xor": "XOR", "complement_encoder": "complement encoder"}  # else the data set's name


@dataclass(frozen=True)
class ReachTable:
    """Per learning rate (``lrs``, ascending): ``n`` runs, ``reached`` of them got E below the
    tolerance; ``q10``, ``q25``, ``median``, ``q75``, ``q90``: numpy's (linear) quantiles of the
    first step below it over the runs that reached it (NaN where none did)."""

    lrs: np.ndarray
    n: np.ndarray
    reached: np.ndarray
    q10: np.ndarray
    q25: np.ndarray
    median: np.ndarray
    q75: np.ndarray
    q90: np.ndarray

    @property
    def stuck(self):
        """Runs that never got below the tolerance."""
        return self.n - self.reached

    @property
    def share(self):
        """reached / n (NaN where a rate has no runs)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.reached / np.maximum(self.n, 1), np.nan)

    def interval(self, z=Z95):
        """(low, high): the Wilson score interval of ``share`` (95 % by default)."""
        n = np.maximum(self.n, 1).astype(np.float64)
        p = self.reached / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        empty = self.n == 0
        low = np.where(self.reached == 0, 0.0, centre - half)  # exact at 0 / n and n / n
        high = np.where(self.reached == self.n, 1.0, centre + half)
        return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def reach_table(lr, first_step, rates=None):
    """The ``ReachTable`` of runs at rates ``lr`` whose first step below the tolerance is
    ``first_step`` (NaN, None or a masked value where a run never got there: a null in the
    dataset). ``rates``: the table's rates (default: those in ``lr``); every run's rate must be
    one of them, and a rate without runs gets n = 0."""
    lr = np.asarray(lr, dtype=np.float64).ravel()
    step = np.ma.filled(np.ma.asarray(first_step, dtype=np.float64), np.nan).ravel()
    if lr.shape != step.shape:
        raise SpecError("first_step", f"{step.size} values", f"one per run: {lr.size} values, as lr")
    rates = np.unique(lr) if rates is None else np.unique(np.asarray(rates, dtype=np.float64))
    at = np.searchsorted(rates, lr)
    if lr.size and (at.max() >= rates.size or (rates[np.minimum(at, rates.size - 1)] != lr).any()):
        raise SpecError("lr", "a rate not in rates", "rates that include every run's rate")
    n = np.bincount(at, minlength=rates.size).astype(np.int64)
    got = ~np.isnan(step)
    reached = np.bincount(at[got], minlength=rates.size).astype(np.int64)
    quantiles = np.full((len(QUANTILES), rates.size), np.nan)
    order = np.lexsort((step[got], at[got]))
    steps, start = step[got][order], np.concatenate(([0], np.cumsum(reached)))
    for k in np.flatnonzero(reached):
        quantiles[:, k] = np.quantile(steps[start[k] : start[k + 1]], QUANTILES)
    return ReachTable(rates, n, reached, *quantiles)


# ---------------------------------------------------------------------------------------------
# Reading a dataset


@dataclass(frozen=True)
class Reach:
    """What ``reach_figure`` needs of a dataset: its table and the texts that name it."""

    table: ReachTable
    network: str
    tolerance: float
    steps: int
    starts: str
    rate_label: str = "learning rate"
    note: str = ""


def network_text(spec):
    """The network a spec dict (a dataset's metadata ``spec``) trains, in words: its layers and
    data (absent: the course's 2-2-2 on its one pattern), activation, update and biases."""
    net = (spec or {}).get("network") or {}
    layers = "-".join(str(int(n)) for n in net.get("layers", (2, 2, 2)))
    data = net.get("data") or "course"
    inputs = net.get("inputs")
    if "data" not in net and isinstance(inputs, list) and inputs and isinstance(inputs[0], list):
        data = f"{len(inputs)} listed patterns"
    if data == "course" and "inputs" in net and "targets" in net:
        pattern = [", ".join(f"{v:g}" for v in net[key]) for key in ("inputs", "targets")]
        text = f"the course's {layers} network, one pattern ({pattern[0]}) → ({pattern[1]})"
    elif data == "course":
        text = f"the course's {layers} network (one pattern)"
    else:
        text = f"{_DATA_NAMES.get(data, data)} on a {layers} network"
    extras = [net["activation"]] if net.get("activation", "sigmoid") != "sigmoid" else []
    extras += ["online updates"] if net.get("update") == "online" else []
    extras += ["trained biases"] if net.get("biases") == "trained" or net.get("train_biases") else []
    return ", ".join([text, *extras])


def _starts_text(blocks, per_rate):
    lo, hi = per_rate.min(), per_rate.max()
    counts = f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"
    names = "; ".join(f"{label(b.params, k)} × {b.count:,}" for k, b in blocks) if blocks else "none"
    return f"{counts} random starts per rate ({names})"


def read_reach(dataset, filesystem=None, partial=False):
    """The ``Reach`` of a dataset: its random starts' table (``NEEDED`` columns read in batches)."""
    import pyarrow.compute as pc

    from fastbp.spec import parse_spec

    data, _path, metadata, report = open_for_reading(dataset, NEEDED, filesystem, partial)
    spec = parse_spec(metadata["spec"])
    blocks = [(k, b) for k, b in enumerate(spec.inits) if b.kind not in NOT_RANDOM]
    lrs, steps = [np.empty(0)], [np.empty(0)]
    if blocks:
        keep = pc.field("init_block").isin([k for k, _ in blocks])
        for batch in batches(data, list(NEEDED), 1, filter_=keep):
            lrs.append(batch.column("lr").to_numpy())
            steps.append(batch.column("first_step_below_tol").to_numpy(zero_copy_only=False))
    table = reach_table(np.concatenate(lrs), np.concatenate(steps).astype(np.float64), spec.lrs)
    rate_label = "learning rate"
    if spec.per_layer:
        rate_label = f"lr_hidden (lr_output = {', '.join(f'{r:g}' for r in spec.lr_output)})"
    runs = int(table.n.sum())
    total = sum(b.count for _, b in blocks) * spec.n_rates
    note = "" if report.complete else f"PARTIAL: {runs:,} of the spec's {total:,} random starts"
    starts = _starts_text(blocks, table.n[table.n > 0] if runs else np.zeros(1, np.int64))
    return Reach(table, network_text(metadata["spec"]), spec.tolerance, spec.steps, starts, rate_label, note)


def figures(dataset, filesystem, partial, stored, kinds, default):
    """``{"reach": Figure}`` when asked (``kinds``) and the columns are ``stored``. By default
    (``default``: every kind that applies) only for a dataset with random starts and one output
    rate; asked by name, a dataset without them gets a figure that says so."""
    if "reach" not in kinds or not set(NEEDED) <= set(stored):
        return {}
    from fastbp.spec import parse_spec

    spec = parse_spec(dataset_spec(dataset, filesystem))
    randoms = any(b.kind not in NOT_RANDOM for b in spec.inits)
    pooled = spec.per_layer and len(spec.lr_output) > 1
    if default and (pooled or not randoms):
        return {}
    if pooled:
        reach = Reach(None, network_text(spec.as_dict()), spec.tolerance, spec.steps, "")
        text = (
            f"A per-layer sweep: each lr_hidden pairs with {len(spec.lr_output)} lr_output rates, "
            "which this figure would pool.\nThe rates figure (--figures rates) shows the share "
            "that reached the tolerance per rate pair."
        )
        return {"reach": _message_figure(reach, text)}
    return {"reach": reach_figure(read_reach(dataset, filesystem, partial))}


# ---------------------------------------------------------------------------------------------
# The figure


def _title(reach):
    import textwrap

    lines = [
        f"Which random starts reach E < {reach.tolerance:g}, and how soon?",
        reach.network[:1].upper() + reach.network[1:],
        f"{reach.starts}; {reach.steps:,} steps" if reach.starts else f"{reach.steps:,} steps",
        reach.note,
    ]
    return "\n".join(part for line in lines if line for part in textwrap.wrap(line, 100))


def _new_figure(size):
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _message_figure(reach, text):
    fig = _new_figure((8.6, 3.6))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, linespacing=1.6, gid="message")
    fig.suptitle(_title(reach), fontsize=11)
    return fig


def _percent(value):
    return f"{100 * value:.3g} %"


def _one_rate_text(reach):
    t, tol = reach.table, f"{reach.tolerance:g}"
    (k,) = np.flatnonzero(t.n)
    low, high = (float(v[k]) for v in t.interval())
    lines = [
        f"One learning rate ({t.lrs[k]:g}): no comparison across rates to draw.",
        f"{t.reached[k]:,} / {t.n[k]:,} random starts reached E < {tol} "
        f"({_percent(t.reached[k] / t.n[k])}; 95 % interval {_percent(low)} – {_percent(high)}).",
    ]
    if t.reached[k]:
        lines.append(
            f"First step below {tol}: median {t.median[k]:g}, quartiles {t.q25[k]:g} – {t.q75[k]:g}, "
            f"10–90 %: {t.q10[k]:g} – {t.q90[k]:g}."
        )
    lines.append(f"Stuck (never below {tol} in {reach.steps:,} steps): {t.stuck[k]:,} / {t.n[k]:,}.")
    return "\n".join(lines + ["Sweep several rates to see how reaching depends on the rate."])


def _positions(ax, x, log):
    """Where the rates land across the axes, in points (matplotlib's 5 % margins left out)."""
    at = np.log(x) if log else np.asarray(x, dtype=np.float64)
    width = ax.figure.get_figwidth() * 72 * 0.8 * 0.9
    return (at - at[0]) / (at[-1] - at[0]) * width if len(x) > 1 else np.zeros(1)


def _fits(at, texts, fontsize):
    """Whether ``texts`` centred at ``at`` (points, ``_positions``) stand side by side."""
    need = np.array([0.6 * fontsize * max(len(line) for line in t.split("\n")) for t in texts])
    return bool((np.diff(at) > (need[1:] + need[:-1]) / 2 + 2).all())


def _limits(x, log, margin=0.07):
    """The rate axis' limits: ``margin`` of its span on either side (room for the first and last
    labels), kept finite when the rates reach float64's largest (lr = 1e308)."""
    lo, hi = (math.log(x[0]), math.log(x[-1])) if log else (float(x[0]), float(x[-1]))
    pad = margin * (hi - lo) if hi > lo else (0.5 if log else 0.5 * abs(lo) or 1.0)
    big = math.log(sys.float_info.max) if log else sys.float_info.max
    lo, hi = max(lo - pad, -big), min(hi + pad, big)
    return (math.exp(lo), math.exp(hi)) if log else (lo, hi)


def _rate_axis(ax, lrs, log, label):
    """Ticks at the rates whose labels fit side by side (the first, then each one clear of the last
    kept), or matplotlib's decades past 12 rates (below 1e300, where they stay finite)."""
    from matplotlib.ticker import NullLocator

    if log:
        ax.set_xscale("log")
    ax.set_xlim(*_limits(lrs, log))  # before any artist: autoscaling 1e308 would overflow
    ax.set_xlabel(label + (" (log scale)" if log else ""))
    if len(lrs) > 12 and lrs[-1] < 1e300:
        return
    texts, at, keep = [f"{lr:.3g}" for lr in lrs], _positions(ax, lrs, log), [0]
    for k in range(1, len(lrs)):
        keep += [k] if _fits(at[[keep[-1], k]], [texts[keep[-1]], texts[k]], 9.0) else []
    ax.set_xticks(lrs[keep], [texts[k] for k in keep])
    ax.xaxis.set_minor_locator(NullLocator())


def _share_panel(ax, t, x, have, log):
    from matplotlib.ticker import PercentFormatter

    share, (low, high) = t.share[have], (v[have] for v in t.interval())
    yerr = [np.maximum(share - low, 0), np.maximum(high - share, 0)]
    bars = ax.errorbar(x, share, yerr=yerr, capsize=3, elinewidth=1.0, gid="share", **_POINTS, linewidth=1.4)
    texts = [f"{k:,} / {n:,}" for k, n in zip(t.reached[have], t.n[have])]
    # One row of labels if they fit side by side, else two (every other label 11 points further)
    at = _positions(ax, x, log)
    rows = 1 if _fits(at, texts, 8.0) else 2
    if rows == 2 and not all(_fits(at[k::2], texts[k::2], 8.0) for k in (0, 1)):
        rows = 0
    for k, (lr, text, s, lo, hi) in enumerate(zip(x, texts, share, low, high) if rows else ()):
        above, gap = s < 0.7, 4 + 11 * (k % rows)
        ax.annotate(
            text,
            (lr, hi if above else lo),
            textcoords="offset points",
            xytext=(0, gap if above else -gap),
            ha="center",
            va="bottom" if above else "top",
            fontsize=8,
            color=_DARK,
            gid="count",
        )
    ax.set_ylim(-0.04, 1.16)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return bars


def _stuck_row(ax, t, x, have, log, tol, steps):
    """The runs that never got below the tolerance: "p % (k)" per rate, or a line of the share."""
    from matplotlib.ticker import PercentFormatter

    stuck = t.stuck[have]
    share = stuck / t.n[have]
    texts = [f"{_percent(s)}\n({k:,})" if k else "0" for s, k in zip(share, stuck)]
    ax.set_title(
        f"stuck: never below {tol:g} in {steps:,} steps (share of random starts, count)",
        loc="left",
        fontsize=9,
        color=_STUCK,
    )
    if _fits(_positions(ax, x, log), texts, 8.5):
        for lr, text, k in zip(x, texts, stuck):
            ax.text(
                lr,
                0.5,
                text,
                ha="center",
                va="center",
                fontsize=8.5,
                color=_STUCK if k else "0.5",
                fontweight="bold" if k else "normal",
                gid="stuck",
            )
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.grid(False)
        ax.spines[["left", "bottom"]].set_visible(False)
        ax.tick_params(axis="x", which="both", length=0)
    else:
        ax.plot(x, share, color=_STUCK, marker="x", markersize=4, linewidth=1.2, gid="stuck")
        ax.set_ylim(-0.08, 1.08)
        ax.set_yticks([0, 1])
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def _steps_panel(ax, t, have, reach):
    """Median, interquartile band and 10–90 % whiskers of the first step below the tolerance (NaN,
    a gap, at a rate where no run got there); returns the legend's handles and labels."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import LogFormatter

    got = t.reached[have] > 0
    x = t.lrs[have]
    values = np.concatenate([t.q10[have][got], t.q90[have][got]])
    log = bool(values.size and np.maximum(values, 1).max() / np.maximum(values, 1).min() > 10)
    q10, q25, median, q75, q90 = (
        np.maximum(q[have], 1) if log else q[have] for q in (t.q10, t.q25, t.median, t.q75, t.q90)
    )
    ax.fill_between(x, q25, q75, color=_BLUE, alpha=0.22, linewidth=0, gid="quartiles")
    isolated = got & ~np.r_[False, got[:-1]] & ~np.r_[got[1:], False]  # no band to show there
    ax.vlines(x[isolated], q25[isolated], q75[isolated], color=_BLUE, alpha=0.22, linewidth=10)
    yerr = [median - q10, q90 - median]
    whiskers = ax.errorbar(x, median, yerr=yerr, fmt="none", ecolor=_DARK, elinewidth=1.0, capsize=4)
    line = ax.plot(x, median, gid="median", **_POINTS, linewidth=1.8)[0]
    with np.errstate(over="ignore"):  # an axis up to lr 1e308 overflows harmlessly in matplotlib
        budget = ax.axhline(reach.steps, color="0.3", linestyle="--", linewidth=1.0, gid="budget")
    handles = [line, Patch(color=_BLUE, alpha=0.22, linewidth=0), whiskers, budget]
    labels = [
        "median first step below the tolerance",
        "interquartile range (25–75 %)",
        "10–90 % of the runs that reached it",
        f"the last step ({reach.steps:,})",
    ]
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(np.maximum(values, 1).min() / 1.6, 0.6), reach.steps * 1.6)
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.6)))
        if (values < 1).any():
            labels[0] += " (step 0, below at the start: drawn at 1)"
    else:
        ax.set_ylim(0, reach.steps * 1.06)
    if not got.any():
        text = f"No random start got below {reach.tolerance:g} in {reach.steps:,} steps at any rate"
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", gid="none")
    ax.set_ylabel(f"first step with E < {reach.tolerance:g}" + ("\n(log scale)" if log else ""))
    return handles, labels


def reach_figure(reach):
    """The reach figure of a ``Reach``: the share that reached the tolerance (top), the stuck
    starts (a row), the first step's distribution (bottom). With runs at one rate only, or no
    random starts at all, a figure that says so (with the one rate's numbers)."""

    t = reach.table
    have = t.n > 0
    if not have.any():
        text = (
            "No random starts: this dataset has no run of a random [[init]] block (uniform, normal,"
            " xavier)\nat any rate (course, fixed and grid blocks place their runs by hand).\n"
            'Add one to the spec, e.g. [[init]] kind = "uniform", count = 1000, to draw this figure.'
        )
        return _message_figure(reach, text)
    if have.sum() == 1:
        return _message_figure(reach, _one_rate_text(reach))
    x = t.lrs[have]
    log = bool(x[0] > 0 and (x[-1] / x[0] >= 10 or log_spaced(x)))
    fig = _new_figure((10.5, 6.3))  # the report size of the other figures: at most 700 pixels high
    ax_share, ax_stuck, ax_steps = fig.subplots(3, 1, sharex=True, height_ratios=(2.2, 0.62, 2.8))
    for ax in (ax_share, ax_stuck, ax_steps):
        ax.grid(True, which="major", color="0.88", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    _rate_axis(ax_steps, x, log, reach.rate_label)
    bars = _share_panel(ax_share, t, x, have, log)
    ax_share.set_ylabel(f"reached E < {reach.tolerance:g}\n(share of random starts)")
    _stuck_row(ax_stuck, t, x, have, log, reach.tolerance, reach.steps)
    handles, labels = _steps_panel(ax_steps, t, have, reach)
    handles.insert(0, bars)
    labels.insert(0, "share that reached it (top), Wilson 95 % interval; k / n: reached / runs")
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    fig.suptitle(_title(reach), fontsize=11)
    return fig
