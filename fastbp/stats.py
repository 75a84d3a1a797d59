"""Statistics of a sweep dataset: everything the figures show, as arrays, in bounded memory.

Statistics without loading every run: the data is read in record batches with only the columns
needed, one chunk of learning rates at a time (a range filter on ``lr``, which Parquet
statistics turn into skipped files, since runs are laid out lr by lr). Per (lr, [[init]]
block) and per plotted step the values are kept as they come while the group holds at most
``exact_values`` values (2**21 by default: 2,000 runs of 1,001 points): the quantiles are then
numpy's (``np.median``; ``np.quantile``, method "linear", for 10 % and 90 %). A larger group is
switched to a histogram over ``bins_per_decade`` (default 40) log-spaced bins between ``floor``
and the largest possible E_total (½Σ max(t, 1 − t)², from the targets), with separate bins for
exact zeros, for (0, floor) and for non-finite values. A quantile is then computed as numpy's,
linearly between the two order statistics either side, each estimated by geometric
interpolation inside the bin that holds it: the result lies between those two order statistics
widened by one bin (a factor 10**(1/40) ≈ 1.059). An order statistic among (0, floor) is
estimated as ``floor``, among the zeros as 0.0, among the non-finite as inf. At most
``max_points`` (1,001) recorded steps are plotted: all of them when there are no more, else
evenly spaced ones including the first and the last.
Memory stays bounded (about ``memory_values`` float64 values of state per chunk of learning
rates, plus a few record batches) whatever the number of runs.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from fastbp.errors import SpecError
from fastbp.reading import batches, loss_matrix, open_for_reading

QUANTILES = (0.1, 0.5, 0.9)
#: Per group: keep raw values (exact quantiles) up to this many; then a histogram.
EXACT_VALUES = 2**21
BINS_PER_DECADE = 40
#: Most steps plotted per curve (evenly spaced recorded steps, first and last included).
MAX_POINTS = 1001
#: Rough budget of float64 values of statistics state per chunk of learning rates.
MEMORY_VALUES = 2**24
#: The columns the statistics read.
NEEDED = ("lr", "init_block", "final_loss", "min_loss", "first_step_below_tol", "overflow", "loss")


# ---------------------------------------------------------------------------------------------
# The summary: everything the figures show, as arrays.


@dataclass
class Family:
    """One ``[[init]]`` block of the sweep."""

    block: int
    kind: str
    label: str


@dataclass
class Band:
    """Median and 10–90 % band of ``n`` runs (arrays over steps, or over learning rates)."""

    n: np.ndarray | int
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    exact: np.ndarray | bool


@dataclass
class FinalStats:
    """Per ``[[init]]`` block, arrays over ``Summary.lrs`` (NaN / 0 where the block has no runs)."""

    final: Band  # final_loss quantiles
    reached: np.ndarray  # runs with first_step_below_tol not null
    final_below: np.ndarray  # runs with final_loss < tolerance (reported, not plotted)
    overflow: np.ndarray  # runs flagged overflow


@dataclass
class Summary:
    path: str
    metadata: dict
    tolerance: float
    steps: np.ndarray  # the recorded steps plotted
    floor: float  # log axes draw values below this (zeros included) at this
    lrs: np.ndarray
    families: list
    n_runs: int
    n_runs_spec: int = 0  # the spec's runs: more than n_runs in a partial view
    course: dict = field(default_factory=dict)  # lr -> E_total of the course run at `steps`
    curves: dict = field(default_factory=dict)  # lr -> {block: Band over steps}
    final: dict = field(default_factory=dict)  # block -> FinalStats

    def family(self, block):
        return next(f for f in self.families if f.block == block)


# ---------------------------------------------------------------------------------------------
# Quantiles of rows fed in batches: exact while small, then a log-binned histogram.


def _bin_kernel():
    """Compiled on first use (cached in __pycache__): one pass over the values, no temporaries."""
    global _BIN
    if _BIN is None:
        from numba import njit

        from fastbp import _numba_cache  # noqa: F401

        @njit(cache=True, nogil=True)
        def bin_values(values, columns, lo, per_decade, floor, n_bins, counts):
            for r in range(values.shape[0]):
                for c in range(columns.shape[0]):
                    v = float(values[r, columns[c]])
                    if not math.isfinite(v):
                        code = n_bins + 2
                    elif v <= 0.0:
                        code = 0
                    elif v < floor:
                        code = 1
                    else:
                        b = int(math.floor((math.log10(v) - lo) * per_decade))
                        code = min(max(b, 0), n_bins - 1) + 2
                    counts[c, code] += 1

        _BIN = bin_values
    return _BIN


_BIN = None


class _Quantiles:
    def __init__(self, columns, floor, upper, exact_values, bins_per_decade):
        """Statistics of ``values[:, columns]`` for the (k, P) arrays passed to ``add``."""
        self.columns = np.ascontiguousarray(columns, dtype=np.int64)
        self.n_cols, self.floor, self.exact_values = len(self.columns), floor, exact_values
        self.lo = math.log10(floor)
        self.per_decade = bins_per_decade
        self.n_bins = max(1, math.ceil((math.log10(upper) - self.lo) * bins_per_decade))
        self.n = 0
        self.rows = []
        self.counts = None  # (n_cols, n_bins + 3): [zeros, (0, floor), bins…, non-finite]

    def add(self, values):
        self.n += len(values)
        if self.counts is None:
            self.rows.append(np.array(values[:, self.columns], dtype=np.float64))
            if self.n * self.n_cols > self.exact_values:
                self.counts = np.zeros((self.n_cols, self.n_bins + 3), dtype=np.int64)
                everything = np.arange(self.n_cols, dtype=np.int64)
                for rows in self.rows:
                    self._bin(rows, everything)
                self.rows = []
        else:
            self._bin(values, self.columns)

    def _bin(self, values, columns):
        _bin_kernel()(values, columns, self.lo, float(self.per_decade), self.floor, self.n_bins, self.counts)

    @property
    def exact(self):
        return self.counts is None

    def band(self):
        if self.exact:
            data = np.concatenate(self.rows) if self.rows else np.empty((0, self.n_cols))
            data = np.where(np.isnan(data), np.inf, data)  # non-finite ranks above every finite value
            with np.errstate(invalid="ignore"):
                median = np.median(data, axis=0)
                low, high = np.quantile(data, [QUANTILES[0], QUANTILES[2]], axis=0)
            fix = lambda a: np.where(np.isnan(a), np.inf, a)  # inf − inf in the interpolation
            return Band(self.n, fix(median), fix(low), fix(high), True)
        low, median, high = (self._from_histogram(q) for q in QUANTILES)
        return Band(self.n, median, low, high, False)

    def _from_histogram(self, q):
        # numpy's "linear" quantile interpolates between the order statistics j and j + 1
        # (0-based, j = floor(q (n − 1))); each is estimated inside the bin that holds it.
        position = q * (self.n - 1)
        j = math.floor(position)
        g = position - j
        below = self._order_statistic(j)
        if g == 0 or j + 1 >= self.n:
            return below
        above = self._order_statistic(j + 1)
        with np.errstate(invalid="ignore"):
            value = below + (above - below) * g
        return np.where(np.isinf(above), np.inf, value)

    def _order_statistic(self, rank):
        counts = self.counts
        cum = np.cumsum(counts, axis=1)
        target = rank + 0.5  # the middle of that value's slot, in count space
        index = np.minimum((cum <= target).sum(axis=1), counts.shape[1] - 1)
        rows = np.arange(self.n_cols)
        inside = counts[rows, index]
        before = cum[rows, index] - inside
        frac = np.clip((target - before) / np.maximum(inside, 1), 0.0, 1.0)
        value = 10.0 ** (self.lo + (index - 2 + frac) / self.per_decade)
        value = np.where(index == 1, self.floor, value)
        value = np.where(index == 0, 0.0, value)
        return np.where(index == counts.shape[1] - 1, np.inf, value)


def _groups(lr, block):
    """Rows of a batch grouped by (lr, block): yields (lr, block, slice) per run of equal keys.

    Runs are stored lr by lr and block by block, so a batch holds a few long runs of equal keys;
    a key may come back in several (the caller accumulates per key).
    """
    change = np.flatnonzero((lr[1:] != lr[:-1]) | (block[1:] != block[:-1])) + 1
    bounds = np.concatenate(([0], change, [len(lr)]))
    for start, stop in zip(bounds[:-1], bounds[1:]):
        yield float(lr[start]), int(block[start]), slice(int(start), int(stop))


def _labels(metadata, blocks):
    from fastbp.inits import label

    spec_blocks = (metadata.get("spec") or {}).get("init") or []
    families = []
    for block in blocks:
        params = spec_blocks[block] if block < len(spec_blocks) else {"kind": "unknown"}
        families.append(Family(block, params.get("kind", "unknown"), label(params, block)))
    seen = [f.label for f in families]
    for f in families:
        if seen.count(f.label) > 1:
            f.label += f" (block {f.block})"
    return families


def _upper_bound(metadata):
    """The largest E_total the targets allow (activations lie in [0, 1]), with a little room."""
    try:
        targets = [float(t) for t in metadata["spec"]["network"]["targets"]]
        bound = 0.5 * sum(max(t * t, (1 - t) ** 2) for t in targets)
    except (KeyError, TypeError, ValueError):
        bound = 1.0
    return bound * 1.01 if bound > 0 else 1.0


def summarise(
    dataset,
    *,
    filesystem=None,
    exact_values=EXACT_VALUES,
    bins_per_decade=BINS_PER_DECADE,
    max_points=MAX_POINTS,
    memory_values=MEMORY_VALUES,
    partial=False,
):
    """Everything the figures show, from the dataset's Parquet files (see the module docstring).

    Raises ``SpecError`` (field ``dataset``) when ``dataset`` is not a fastbp dataset, or is
    incomplete or damaged and ``partial`` is false; with ``partial`` the sound shards are
    summarised and ``Summary.n_runs_spec`` says how many runs the spec has.
    """
    import pyarrow.dataset as ds

    data, path, metadata, report = open_for_reading(dataset, NEEDED, filesystem, partial=partial)
    recorded = np.asarray(metadata["recorded_steps"], dtype=np.int64)
    n_points = len(recorded)
    tolerance = float(metadata["tolerance"])
    if n_points > max_points:
        index = np.unique(np.round(np.linspace(0, n_points - 1, max_points)).astype(np.int64))
    else:
        index = np.arange(n_points)

    # Pass 1 (cheap columns): groups, their sizes, the smallest positive loss.
    sizes, min_positive = {}, math.inf
    for batch in batches(data, ["lr", "init_block", "min_loss", "final_loss"], 1):
        if batch.num_rows == 0:
            continue
        lr = batch.column("lr").to_numpy()
        block = batch.column("init_block").to_numpy()
        for value in (batch.column("min_loss").to_numpy(), batch.column("final_loss").to_numpy()):
            positive = value[(value > 0) & np.isfinite(value)]
            if positive.size:
                min_positive = min(min_positive, float(positive.min()))
        for key_lr, key_block, rows in _groups(lr, block):
            sizes[key_lr, key_block] = sizes.get((key_lr, key_block), 0) + rows.stop - rows.start
    if not sizes:
        raise SpecError(
            "dataset", path, "a fastbp dataset holding at least one run (its Parquet files are empty)"
        )
    upper = _upper_bound(metadata)
    if math.isfinite(min_positive):
        floor = 10.0 ** max(-307, math.ceil(math.log10(min_positive)) - 1)
    else:
        floor = 10.0 ** (math.floor(math.log10(upper)) - 6)
    floor = min(floor, upper / 10)

    lrs = np.array(sorted({k[0] for k in sizes}))
    blocks = sorted({k[1] for k in sizes})
    families = _labels(metadata, blocks)
    kinds = {f.block: f.kind for f in families}
    n_runs = sum(sizes.values())
    summary = Summary(path, metadata, tolerance, recorded[index], floor, lrs, families, n_runs, report.n_runs)

    # Pass 2, one chunk of learning rates at a time: curves and final-loss statistics.
    n_bins = math.ceil((math.log10(upper) - math.log10(floor)) * bins_per_decade) + 3

    def cost(key):
        n = sizes[key]
        if kinds[key[1]] == "course":
            return len(index)
        return min(n * len(index), max(exact_values, len(index) * n_bins)) + min(n, max(exact_values, n_bins))

    chunks, current, budget = [], [], 0
    for lr in lrs:
        need = sum(cost(k) for k in sizes if k[0] == lr)
        if current and budget + need > memory_values:
            chunks.append(current)
            current, budget = [], 0
        current.append(lr)
        budget += need
    chunks.append(current)

    stats = {}  # (lr, block) -> [final _Quantiles, reached, final_below, overflow]
    for chunk in chunks:
        curves = {}
        filter_ = None
        if len(chunks) > 1:  # runs are laid out lr by lr: a range prunes other chunks' files
            filter_ = (ds.field("lr") >= chunk[0]) & (ds.field("lr") <= chunk[-1])
        columns = ["lr", "init_block", "final_loss", "first_step_below_tol", "overflow", "loss"]
        for batch in batches(data, columns, n_points, filter_):
            if batch.num_rows == 0:
                continue
            lr = batch.column("lr").to_numpy()
            block = batch.column("init_block").to_numpy()
            final = batch.column("final_loss").to_numpy()
            reached = batch.column("first_step_below_tol").is_valid().to_numpy(zero_copy_only=False)
            overflow = batch.column("overflow").to_numpy(zero_copy_only=False)
            loss = loss_matrix(batch.column("loss"), batch.num_rows, n_points)
            for key_lr, key_block, rows in _groups(lr, block):
                key = (key_lr, key_block)
                if key not in stats:
                    stats[key] = [_Quantiles([0], floor, upper, exact_values, bins_per_decade), 0, 0, 0]
                entry = stats[key]
                entry[0].add(final[rows, None])
                entry[1] += int(reached[rows].sum())
                entry[2] += int((final[rows] < tolerance).sum())
                entry[3] += int(overflow[rows].sum())
                if kinds[key_block] == "course":
                    if key_lr not in summary.course:
                        summary.course[key_lr] = loss[rows.start, index].astype(np.float64)
                    continue
                if key not in curves:
                    curves[key] = _Quantiles(index, floor, upper, exact_values, bins_per_decade)
                curves[key].add(loss[rows])
        for (key_lr, key_block), acc in curves.items():
            summary.curves.setdefault(key_lr, {})[key_block] = acc.band()
        del curves
        for entry in stats.values():  # this chunk's final losses: keep their quantiles only
            if isinstance(entry[0], _Quantiles):
                entry[0] = entry[0].band()

    for family in families:
        n = np.zeros(len(lrs), dtype=np.int64)
        median, low, high = (np.full(len(lrs), np.nan) for _ in range(3))
        exact = np.ones(len(lrs), dtype=bool)
        reached, below, overflow = (np.zeros(len(lrs), dtype=np.int64) for _ in range(3))
        for k, lr in enumerate(lrs):
            entry = stats.get((float(lr), family.block))
            if entry is None:
                continue
            band = entry[0]
            n[k], median[k], low[k], high[k], exact[k] = (
                band.n,
                band.median[0],
                band.low[0],
                band.high[0],
                band.exact,
            )
            reached[k], below[k], overflow[k] = entry[1:]
        summary.final[family.block] = FinalStats(Band(n, median, low, high, exact), reached, below, overflow)
    return summary
