"""What a sweep is about to do, said before it starts: runs, run-steps, shards, bytes, time.

Nothing here enumerates runs or shards: every figure is arithmetic on the spec, and the time
comes from this machine's speed measured on a small slice of the same kernel (a few
milliseconds), so the time to the first line does not grow with the grid.
"""

from dataclasses import dataclass

from fastbp.errors import SpecError

#: Run-steps of the calibration run (about 3 ms on one modern core).
CALIBRATION_RUN_STEPS = 2**20
# Bytes a value of each column type takes before compression ("value": the sweep's dtype; strings
# are dictionary-encoded labels, about a byte; a bool is a bit).
_FIXED_BYTES = {"int64": 8, "int32": 4, "float64": 8, "string": 1, "bool": 1 / 8}


@dataclass
class Plan:
    n_runs: int
    steps: int
    n_shards: int
    shards_to_compute: int
    runs_to_compute: int
    bytes_on_disk: int  # an upper bound: before compression
    run_steps_per_second: float

    @property
    def run_steps(self):
        return self.runs_to_compute * self.steps

    @property
    def seconds(self):
        return self.run_steps / self.run_steps_per_second if self.run_steps_per_second > 0 else float("nan")

    def line(self):
        from fastbp.progress import duration

        if not self.runs_to_compute:
            return f"fastbp: plan: {self.n_runs:,} runs × {self.steps:,} steps in {self.n_shards:,} shard(s); nothing to compute"
        return (
            f"fastbp: plan: {self.n_runs:,} runs × {self.steps:,} steps in {self.n_shards:,} shard(s); "
            f"to compute: {self.runs_to_compute:,} runs ({self.run_steps / 1e6:,.1f} M run-steps) in "
            f"{self.shards_to_compute:,} shard(s), up to {_size(self.bytes_on_disk)} on disk, about "
            f"{duration(self.seconds)} at {self.run_steps_per_second / 1e6:,.0f} M run-steps/s (measured here)"
        )


def bytes_per_run(spec):
    """Bytes a run's row takes before compression, from the columns the spec stores."""
    from fastbp.contract import spec_columns

    sizes = dict(_FIXED_BYTES, value=spec.itemsize, curve=spec.n_recorded * spec.itemsize)
    sizes["params"] = spec.options.n_parameters * spec.itemsize
    if spec.stability_every:
        sizes["curve64"] = 8 * len(spec.stability_steps)
    return int(sum(sizes[c.type] for c in spec_columns(spec)))


def check_grid(spec, shard_size):
    """Refuse a grid whose dataset cannot be represented (too many shard files)."""
    from fastbp.spec import MAX_SHARDS

    n_shards = spec.n_shards(shard_size)
    if n_shards > MAX_SHARDS:
        raise SpecError(
            "grid",
            f"{spec.n_runs:,} runs",
            f"at most {MAX_SHARDS * shard_size:,} runs at {shard_size:,} runs per shard "
            f"({MAX_SHARDS:,} shard files: part-NNNNNN.parquet)",
        )
    return n_shards


def make_plan(spec, n_shards, shard_size, shards_done, runs_done, threads=None, on_compile=None):
    runs_to_compute = spec.n_runs - runs_done
    return Plan(
        spec.n_runs,
        spec.steps,
        n_shards,
        n_shards - shards_done,
        runs_to_compute,
        runs_to_compute * bytes_per_run(spec),
        measure_speed(spec, threads, on_compile) if runs_to_compute else 0.0,
    )


def measure_speed(spec, threads=None, on_compile=None):
    """Run-steps per second of this machine's kernel for ``spec``'s variant and dtype, on a small
    grid of its own. The kernel is loaded (or compiled: ``on_compile(name)`` says so) before the
    timed call, so the estimate is the sweep's speed, not the compile's."""
    import time

    import numba
    import numpy as np

    from fastbp.compile_time import BLOCK
    from fastbp.kernels import train
    from fastbp.shards import train_options

    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(threads)
    try:
        # Its own grid, not the spec's: speed per run-step does not depend on the step count, and a
        # tiny sweep would otherwise time the thread pool's start rather than the kernel.
        runs = BLOCK * 4 * numba.get_num_threads()
        network = spec.network
        # A step costs about as much as its weights times its patterns (the exercise's: 8 × 1).
        cost = max(1, network.n_weights * network.n_patterns // 8)
        steps = max(1, CALIBRATION_RUN_STEPS // (runs * cost))
        dtype = np.dtype(spec.dtype)
        w_init = np.full((network.n_weights, runs), 0.1, dtype=dtype)
        lr = np.full(runs, 0.5, dtype=dtype)
        has_biases = spec.options.has_biases
        biases = np.zeros((network.n_biases, runs), dtype=dtype) if has_biases else None
        options = train_options(spec, lr, biases)
        needs_sharpness = options.pop("stability_steps", None) is not None  # loaded once, below
        train(w_init, lr, spec.inputs, spec.targets, 1, on_compile=on_compile, **options)
        if needs_sharpness:
            train(
                w_init,
                lr,
                spec.inputs,
                spec.targets,
                1,
                on_compile=on_compile,
                stability_steps=[0],
                **options,
            )
        started = time.perf_counter()
        train(w_init, lr, spec.inputs, spec.targets, steps, **options)
        seconds = time.perf_counter() - started
    finally:
        numba.set_num_threads(previous)
    # A short run measures the kernel's start-up as well: a lower bound on the speed.
    return runs * steps / seconds if seconds > 0 else float("nan")


def _size(n):
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
