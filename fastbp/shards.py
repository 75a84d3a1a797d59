"""A shard: a contiguous range of runs, one Parquet file, the unit of work, retry and resume.

``compute_shard`` turns (spec, shard number) into the shard's table: all a backend needs.
"""

from dataclasses import dataclass

from fastbp.layout import grid_coordinates, initial_biases, initial_weights, output_rates, run_layout

#: A shard holds at most this many runs, and at most _SHARD_BYTES of loss curves.
MAX_SHARD_RUNS = 65536
_SHARD_BYTES = 64 * 2**20


@dataclass
class SweepSummary:
    """What a sweep did: runs in the grid, shards in the dataset, shards computed by this call."""

    out: str
    n_runs: int
    n_shards: int
    shards_computed: int
    seconds: float
    run_steps_per_second: float
    runs_computed: int = 0

    @classmethod
    def of_shards(cls, spec, dataset, shards, seconds):
        """What computing ``shards`` of ``dataset`` in ``seconds`` did."""
        runs = sum(dataset.shard_runs(s)[1] - dataset.shard_runs(s)[0] for s in shards)
        rate = runs * spec.steps / seconds if seconds > 0 else float("nan")
        return cls(dataset.path, spec.n_runs, dataset.n_shards, len(shards), seconds, rate, runs)


def default_shard_size(spec):
    """Runs per shard: bounded memory (loss and stability curves ≤ 64 MiB) and whole blocks of the kernel."""
    from fastbp.compile_time import BLOCK

    per_run = spec.n_recorded * spec.itemsize + (8 * len(spec.stability_steps) if spec.stability_every else 0)
    size = min(MAX_SHARD_RUNS, max(BLOCK, _SHARD_BYTES // per_run))
    return max(BLOCK, size // BLOCK * BLOCK)


def compute_shard(spec, shard, shard_size, versions=None, on_slice=None):
    """The ``pyarrow.Table`` of shard ``shard``: runs [shard * shard_size, …) trained in-process.

    ``on_slice(runs, steps_done)`` is called between the kernel's slices of steps (about four
    times a second): for live progress, and the moments a signal can stop the computation."""
    from fastbp import contract, kernels

    first = shard * shard_size
    layout = run_layout(spec, first, min(first + shard_size, spec.n_runs))
    runs, lrs, blocks, indices = layout
    w_init = initial_weights(spec, blocks, indices).astype(spec.dtype)
    lr_output = output_rates(spec, runs)
    b_init = initial_biases(spec, blocks, indices)
    if b_init is not None:
        b_init = b_init.astype(spec.dtype)
    result = kernels.train(
        w_init,
        lrs.astype(spec.dtype),
        inputs=spec.inputs,
        targets=spec.targets,
        steps=spec.steps,
        record_every=spec.record_every,
        tolerance=spec.tolerance,
        on_slice=None if on_slice is None else (lambda steps_done: on_slice(len(lrs), steps_done)),
        **train_options(spec, lr_output, b_init),
    )
    grid_x, grid_y = grid_coordinates(spec, blocks, indices)
    extra = {"lr_output": lr_output, "grid_x": grid_x, "grid_y": grid_y, "b_init": b_init}
    extra.update(_diagnostics_columns(spec, result))
    metadata = contract.file_metadata(spec, versions or contract.versions())
    return contract.shard_table(spec, layout, w_init, result, metadata, extra)


def train_options(spec, lr_output, biases):
    """``kernels.train``'s keywords for ``spec``, with the runs' output-layer rates and initial
    biases (None without), and the steps where its columns need the sharpness."""
    options = spec.options.train_keywords(lr_output.astype(spec.dtype), biases)
    points = _stability_points(spec)
    if points:
        options["stability_steps"] = points
    return options


_SHARPNESS_COLUMNS = ("sharpness_init", "sharpness_final", "stability_init", "stability_final")


def _stability_points(spec):
    """The steps at which ``spec``'s kept columns need the sharpness (Hessians only there)."""
    from fastbp.contract import spec_columns

    kept = {c.name for c in spec_columns(spec)}
    points = set()
    if spec.diagnostics and kept & set(_SHARPNESS_COLUMNS):
        points |= {0, spec.steps}
    if "stability" in kept:
        points |= {int(s) for s in spec.stability_steps}
    return sorted(points)


def _diagnostics_columns(spec, result):
    """The diagnostics columns' arrays (``contract.shard_table``'s ``extra``) from ``result``."""
    import numpy as np

    from fastbp import regimes

    extra = {}
    if result.stability is not None:
        points, sharpness, stability = result.stability
        if spec.stability_every:
            extra["stability"] = stability[:, np.searchsorted(points, spec.stability_steps)]
        at = {"init": 0, "final": len(points) - 1}
        for when, column in at.items():
            extra.setdefault("diagnostics", {}).update(
                {f"sharpness_{when}": sharpness[:, column], f"stability_{when}": stability[:, column]}
            )
    if spec.diagnostics:
        tracked = result.diagnostics
        diverged = ~(np.isfinite(result.weights).all(axis=0) & np.isfinite(result.final_loss))
        if result.biases is not None:
            diverged |= ~np.isfinite(result.biases).all(axis=0)
        found = extra.setdefault("diagnostics", {})
        tol = np.dtype(spec.dtype).type(spec.tolerance)  # as the kernel compared it
        found.update(
            max_loss=tracked["max_loss"],
            max_loss_step=tracked["max_loss_step"].astype(np.int64),
            loss_increases=tracked["loss_increases"].astype(np.int64),
            trainability=regimes.trainability(tracked, spec.steps),
            regime=regimes.classify(tracked, result.first_step_below_tol, diverged, spec.steps, tol),
        )
    return extra
