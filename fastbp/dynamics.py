"""What the figures of training dynamics need, read from a dataset alone (docs/model.md
"Regimes", "The trainability map"): regime shares per learning rate, stability curves of chosen
runs, and the trainability map over two axes of the grid. Arrays in record batches, like
``fastbp.stats``; ``fastbp.plots_dynamics`` draws them.
"""

import numpy as np

from fastbp.reading import batches, open_for_reading


def columns(dataset, filesystem=None):
    """The names of the columns ``dataset`` stores (from its spec: no shard is read), or () when
    its spec cannot be read (the reader that follows refuses it with the full message)."""
    from fastbp.contract import spec_columns
    from fastbp.errors import SpecError
    from fastbp.reading import dataset_spec
    from fastbp.spec import parse_spec

    try:
        return tuple(c.name for c in spec_columns(parse_spec(dataset_spec(dataset, filesystem))))
    except SpecError:
        return ()


def _spec(metadata):
    from fastbp.spec import parse_spec

    return parse_spec(metadata["spec"])


def _runs_note(report, n_runs):
    return "" if report.complete else f"PARTIAL: {n_runs:,} of {report.n_runs:,} runs"


class RegimeShares:
    """Per learning rate: runs in each regime (``counts`` (L, 7)), and where the course weights
    cross lr·λ_max = 2 (``threshold_lr``, None without a course block)."""

    def __init__(self, lrs, counts, threshold_lr, note):
        self.lrs, self.counts, self.threshold_lr, self.note = lrs, counts, threshold_lr, note


def regime_shares(dataset, filesystem=None, partial=False):
    from fastbp.conventions import REGIMES

    data, _path, metadata, report = open_for_reading(dataset, ("lr", "regime"), filesystem, partial)
    spec = _spec(metadata)
    lrs = np.sort(np.array(spec.lrs))
    counts = np.zeros((len(lrs), len(REGIMES)), dtype=np.int64)
    for batch in batches(data, ["lr", "regime"], 1):
        at = np.searchsorted(lrs, batch.column("lr").to_numpy())
        codes = _codes(batch.column("regime"), REGIMES)
        np.add.at(counts, (at, codes), 1)
    n = int(counts.sum())
    note = f"{spec.steps:,} steps"
    partial_note = _runs_note(report, n)
    return RegimeShares(
        lrs, counts, course_threshold(spec), f"{note}; {partial_note}" if partial_note else note
    )


def _codes(column, names):
    """Regime codes of a string column (dictionary-encoded in the file, plain after a scan)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    order = np.array([names.index(name) for name in column.dictionary.to_pylist()], dtype=np.int64)
    return order[column.indices.to_numpy(zero_copy_only=False)]


def course_threshold(spec):
    """The rate at which lr·λ_max of the course initialisation is 2 (2 / λ_max there), or None
    when the spec has no course block or λ_max ≤ 0."""
    from fastbp import sharpness
    from fastbp.conventions import COURSE_WEIGHTS

    if not any(block.kind == "course" for block in spec.inits):
        return None
    weights = np.array(COURSE_WEIGHTS)[:, None]
    H = sharpness.hessian(
        spec.inputs, spec.targets, weights, spec.biases, spec.train_biases, spec.shared_biases
    )
    top = float(sharpness.sharpness(H)[0])
    return 2.0 / top if top > 0 else None


def stability_curves(dataset, filesystem=None, partial=False, most=8):
    """Runs of the course block (or of the first block), first initialisation, with their loss
    and stability curves: every rate when there are at most ``most``, else one run per regime
    present (the middle rate of each), in rate order."""
    import pyarrow.compute as pc

    needed = ("lr", "init_block", "init_index", "loss", "stability", "regime")
    data, _path, metadata, _report = open_for_reading(dataset, needed, filesystem, partial)
    spec = _spec(metadata)
    block = next((k for k, b in enumerate(spec.inits) if b.kind == "course"), 0)
    chosen = (pc.field("init_block") == block) & (pc.field("init_index") == 0)
    rows = data.to_table(columns=list(needed), filter=chosen).sort_by("lr").to_pylist()
    if len(rows) > most:
        by_regime = {}
        for row in rows:
            by_regime.setdefault(row["regime"], []).append(row)
        rows = sorted((runs[len(runs) // 2] for runs in by_regime.values()), key=lambda r: r["lr"])[:most]
    loss_steps = np.asarray(metadata["recorded_steps"])
    stability_steps = np.asarray(metadata["stability_steps"])
    return [
        {
            "label": f"lr = {row['lr']:g} ({row['regime']})",
            "lr": row["lr"],
            "loss_steps": loss_steps,
            "loss": np.asarray(row["loss"], dtype=np.float64),
            "stability_steps": stability_steps,
            "stability": np.asarray(row["stability"], dtype=np.float64),
        }
        for row in rows
    ]


class TrainabilityMap:
    """The map value of each run on a (len(y), len(x)) grid; NaN where no run is."""

    def __init__(self, values, x, y, x_label, y_label, steps, n_runs, note):
        self.values, self.x, self.y = values, x, y
        self.x_label, self.y_label, self.steps, self.n_runs, self.note = x_label, y_label, steps, n_runs, note


def map_axes(spec):
    """(x, y, fixed) of the map: two grid axes as (column, label, ascending values), and the
    filter that leaves one run per pixel as [(column, value, words)]; None when the grid has no
    two axes. A ``grid`` block's own two axes come first (then at the first rate), else the rates
    per layer (the first initialisation), else the rate and a grid's one varying axis."""
    from fastbp.inits import axis_values

    rates = []
    if spec.per_layer:
        rates = [
            ("lr_hidden", "lr_hidden (w1…w4)", spec.lrs),
            ("lr_output", "lr_output (w5…w8)", spec.lr_output),
        ]
    elif len(spec.lrs) > 1:
        rates = [("lr", "learning rate", spec.lrs)]
    number, grid = next(((k, b) for k, b in enumerate(spec.inits) if b.kind == "grid"), (None, None))
    grid_axes = []
    for axis, column in (("x", "grid_x"), ("y", "grid_y")) if grid is not None else ():
        params = grid.params[axis]
        target = next(params[key] for key in ("weight", "bias", "offset") if key in params)
        name = f"offset of {target}" if "offset" in params else target
        grid_axes.append((column, f"{name} (grid {axis})", axis_values(params)))
    grid_axes = [axis for axis in grid_axes if len(axis[2]) > 1]
    rates = [axis for axis in rates if len(axis[2]) > 1]
    in_grid = [
        ("init_block", number, f"the grid block's runs (init {number})" if len(spec.inits) > 1 else "")
    ]
    if len(grid_axes) == 2:
        axes = grid_axes
        fixed = in_grid + [(c, float(min(v)), f"at {c} = {min(v):g}") for c, _label, v in rates]
    elif len(rates) == 2 or (len(rates) == 1 and grid_axes):
        axes = (rates + grid_axes)[:2]
        first_init = [("init_block", 0, "the first initialisation's runs"), ("init_index", 0, "")]
        fixed = in_grid if grid_axes else first_init if spec.n_inits > 1 else []
    else:
        return None
    (x_col, x_label, x), (y_col, y_label, y) = (
        (c, label, np.sort(np.asarray(v, np.float64))) for c, label, v in axes
    )
    return (x_col, x_label, x), (y_col, y_label, y), fixed


def trainability_map(dataset, filesystem=None, partial=False):
    """The map of ``dataset`` (``TrainabilityMap``), or None when its grid has no two axes or
    the dataset lacks a column the map or its one-run-per-pixel filter needs."""
    import pyarrow.compute as pc

    from fastbp.contract import spec_columns

    data, _path, metadata, report = open_for_reading(dataset, ("trainability",), filesystem, partial)
    spec = _spec(metadata)
    found = map_axes(spec)
    if found is None:
        return None
    (x_col, x_label, x), (y_col, y_label, y), fixed = found
    names = [x_col, y_col, "trainability"]
    if not {c.name for c in spec_columns(spec)}.issuperset(names + [column for column, _v, _w in fixed]):
        return None
    chosen = None
    for column, value, _words in fixed:
        here = pc.field(column) == value
        chosen = here if chosen is None else chosen & here
    values = np.full((len(y), len(x)), np.nan)
    n = 0
    for batch in batches(data, names, 1, filter_=chosen):
        i = np.searchsorted(x, batch.column(x_col).to_numpy(zero_copy_only=False))
        j = np.searchsorted(y, batch.column(y_col).to_numpy(zero_copy_only=False))
        values[j, i] = batch.column("trainability").to_numpy(zero_copy_only=False)
        n += batch.num_rows
    notes = [words for _c, _v, words in fixed] + [_runs_note(report, n)]
    return TrainabilityMap(values, x, y, x_label, y_label, spec.steps, n, "; ".join(t for t in notes if t))


def figures(dataset, filesystem, partial, stored, per_layer, kinds):
    """The figures of training dynamics the stored columns allow (docs/model.md "Regimes")."""
    from fastbp import plots_dynamics
    from fastbp.inits import log_spaced

    figures = {}
    if "regimes" in kinds and {"lr", "regime"} <= stored and not per_layer:
        shares = regime_shares(dataset, filesystem, partial)
        figures["regimes"] = plots_dynamics.regimes_figure(
            shares.lrs, shares.counts, threshold_lr=shares.threshold_lr, title_note=shares.note
        )
    if (
        "edge_of_stability" in kinds
        and {"lr", "stability", "loss", "regime", "init_block", "init_index"} <= stored
    ):
        curves = stability_curves(dataset, filesystem, partial)
        if curves:
            figures["edge_of_stability"] = plots_dynamics.edge_of_stability_figure(curves)
    if "trainability_map" in kinds and "trainability" in stored:
        found = trainability_map(dataset, filesystem, partial)
        if found is not None:
            axes = dict(x_label=found.x_label, y_label=found.y_label)
            axes.update(x_log=log_spaced(found.x), y_log=log_spaced(found.y))
            figures["trainability_map"] = plots_dynamics.trainability_map_figure(
                found.values,
                found.x,
                found.y,
                steps=found.steps,
                n_runs=found.n_runs,
                title_note=found.note,
                **axes,
            )
    return figures
