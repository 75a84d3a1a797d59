"""Compile (or load) every kernel the test suite uses, in two processes at once, before pytest runs.

Numba compiles on one core; a cold suite spent most of its time compiling some 30 kernel
specialisations one after another inside the tests. ``make test`` runs this first, so the two
cores compile side by side and the tests then load every kernel from the on-disk cache. With a
warm cache it only loads them (a few seconds). Then it checks that each one loads: Numba's cache
index is rewritten whole by each process, so two that save at the same moment can lose an entry,
which is compiled again here rather than inside a test. The kernels whose machine code
tests/test_kernels.py reads have that code kept too (tests/codegen.py ``kernel_code``): Numba
keeps none for a kernel it loads from its cache.

    .venv/bin/python tests/compile_kernels.py
"""

import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# (two_rates, biases, diagnostics) of the training kernels the tests call, and their dtypes; a
# kernel missing here still works, it is only compiled inside the test that needs it.
TRAINING = {
    (False, "none", False): ("float64", "float32"),
    (True, "none", False): ("float64",),
    (False, "fixed", False): ("float64", "float32"),
    (True, "fixed", False): ("float64",),
    (False, "per_unit", False): ("float64",),
    (True, "per_unit", False): ("float64", "float32"),
    (False, "shared", False): ("float64",),
    (True, "shared", False): ("float64",),
    (False, "none", True): ("float64", "float32"),
    (True, "none", True): ("float64",),
    (False, "per_unit", True): ("float64",),
    (False, "shared", True): ("float64",),
}
DTYPES = ("float64", "float32")
# The networks of tests/test_networks.py (float64 unless a dtype follows): (layers, activation,
# output_activation, update, patterns, biases kind, two rates[, dtype]).
NETWORKS = [
    ((3, 4, 2), "tanh", "linear", "batch", 3, "per_unit", True),
    ((3, 4, 2), "tanh", "linear", "batch", 1, "per_unit", True),
    ((2, 3, 1), "sigmoid", "sigmoid", "online", 4, "shared", False),
    ((4, 4, 4), "tanh", "sigmoid", "batch", 4, "fixed", False),
    # and of tests/test_table_network.py
    ((2, 2, 1), "sigmoid", "sigmoid", "batch", 4, "per_unit", False),
    ((3, 4, 2), "tanh", "linear", "batch", 3, "fixed", True),
    ((2, 3, 1), "sigmoid", "sigmoid", "online", 4, "per_unit", False),
    ((2, 2, 1), "sigmoid", "sigmoid", "batch", 4, "per_unit", False, "float32"),
    ((2, 2, 2), "tanh", "tanh", "batch", 1, "none", False),
]
# The network step tables of tests/test_table_network.py (float64): (layers, activation,
# output_activation, update, biases kind).
NETWORK_TABLES = [
    ((2, 2, 1), "sigmoid", "sigmoid", "batch", "per_unit"),
    ((3, 4, 2), "tanh", "linear", "batch", "fixed"),
    ((2, 3, 1), "sigmoid", "sigmoid", "online", "per_unit"),
    ((2, 2, 2), "tanh", "tanh", "batch", "none"),
    ((2, 2, 1), "sigmoid", "sigmoid", "batch", "per_unit", "float32"),
    ((3, 1, 2), "tanh", "linear", "online", "none"),
]


def _training(job):
    """Train one run for one step with the variant and dtype of ``job``: compiles or loads it."""
    import numpy as np

    from fastbp import kernels

    (two_rates, biases, diagnostics), dtype = job
    one = np.ones(1, dtype=dtype)
    options = {"diagnostics": diagnostics}
    if two_rates:
        options["lr_output"] = one
    if biases != "none":
        options.update(biases=np.zeros((4, 1), dtype), train_biases=biases != "fixed")
        options["shared_biases"] = biases == "shared"
    kernels.train(np.full((8, 1), 0.1, dtype), one, (0.05, 0.1), (0.5, 0.5), 1, **options)


def _kernel_code(name):
    """A kernel tests/test_kernels.py reads the code of: compiled (or loaded) as a sweep would, and
    its code kept (tests/codegen.py; compiled again outside the cache only when the cached one was
    loaded and its code is not kept yet)."""
    import os

    import codegen

    variant, dtype = codegen.KERNELS_READ[name]
    if not os.path.exists(codegen._kept_path(variant, dtype)):
        codegen.keep_kernel_code(variant, dtype)


def _sharpness(job):
    """The one sharpness kernel (every number of trained parameters, with or without per-layer rates)."""
    import numpy as np

    from fastbp.kernels_sharpness import stability_numbers

    stability_numbers(np.full((8, 1), 0.1), np.ones(1), np.ones(1), (0.05, 0.1), (0.5, 0.5))


def _table(dtype):
    from fastbp.kernels import step_table_array

    step_table_array(0.5, 2, (0.05, 0.1), (0.5, 0.5), [0.1] * 8, dtype)


def _network(job):
    import numpy as np

    from fastbp import kernels

    (n_in, n_hidden, n_out), activation, output, update, patterns, biases, two_rates, *dtype = job
    dtype = dtype[0] if dtype else "float64"
    one = np.ones(1, dtype)
    kernels.train(
        np.full((n_hidden * n_in + n_out * n_hidden, 1), 0.1, dtype),
        one,
        np.zeros((patterns, n_in)),
        np.zeros((patterns, n_out)),
        1,
        lr_output=one if two_rates else None,
        biases=None if biases == "none" else np.zeros((n_hidden + n_out, 1), dtype),
        train_biases=biases not in ("fixed", "none"),
        shared_biases=biases == "shared",
        layers=(n_in, n_hidden, n_out),
        activation=activation,
        output_activation=output,
        update=update,
    )


def _network_table(job):
    from fastbp.kernels import network_table_rows
    from fastbp.network import Network

    layers, activation, output, update, biases, *dtype = job
    n_in, n_hidden, n_out = layers
    patterns = dict(inputs=((0.0,) * n_in,) * 2, targets=((0.0,) * n_out,) * 2)
    network = Network(layers, activation, output, update, **patterns)
    options = {"train_biases": biases == "per_unit"}
    if biases != "none":
        options["biases"] = [0.0] * (n_hidden + n_out)
    dtype = dtype[0] if dtype else "float64"
    list(network_table_rows(0.5, 1, network, [0.1] * network.n_weights, dtype, **options))


def _run(task):
    """-> (task, CPU seconds it took): compiling is one thread's work, so CPU time measures it
    even on a busy machine (wall time does not)."""
    started = time.process_time()
    kind, job = task
    kinds = {"training": _training, "network": _network, "sharpness": _sharpness, "table": _table}
    kinds["network_table"] = _network_table
    kinds["kernel_code"] = _kernel_code
    kinds[kind](job)
    return task, time.process_time() - started


def tasks():
    import codegen

    from fastbp.compile_time import Variant

    # The slowest first (sharpness, then diagnostics), so that the two processes end together;
    # the kernels whose code is kept are compiled by their kernel_code task.
    read = {(variant, dtype) for variant, dtype in codegen.KERNELS_READ.values()}
    training = sorted(
        (
            (v, d)
            for v, dtypes in TRAINING.items()
            for d in dtypes
            if (Variant(two_rates=v[0], biases=v[1], diagnostics=v[2]), getattr(np, d)) not in read
        ),
        key=lambda job: not job[0][2],
    )
    return (
        [("sharpness", None)]
        + [("kernel_code", name) for name in ("diagnostics", "exercise", "shared", "rates")]
        + [("training", job) for job in training]
        + [("network", job) for job in NETWORKS]
        + [("table", dtype) for dtype in DTYPES]
        + [("network_table", job) for job in NETWORK_TABLES]
    )


def main():
    started = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        times = dict(pool.map(_run, tasks()))
    again = [task for task in tasks() if _run(task)[1] > 1.0]  # lost from the index: compiled here
    wall = time.perf_counter() - started
    spent = {}
    for (kind, job), seconds in times.items():
        group = "diagnostics" if kind == "training" and job[0][2] else kind
        spent[group] = spent.get(group, 0.0) + seconds
    print(
        f"compile_kernels: {len(times)} kernels ready in {wall:.0f} s "
        f"(slowest {max(times.values()):.0f} CPU s; {len(again)} compiled again; CPU seconds per kind: "
        + ", ".join(f"{group} {seconds:.0f}" for group, seconds in spent.items())
        + ")",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
