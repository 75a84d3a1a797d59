"""Write the golden datasets that ``tests/test_golden.py`` holds every later version of fastbp to.

fastbp writes two schema versions: a plain sweep's (``SCHEMA_VERSION`` of fastbp's Parquet
contract) and, when its spec has ``diagnostics``, ``stability_every`` or ``columns``,
``DYNAMICS_VERSION``. Run this only when one of them changes, never to refresh an existing version:

    .venv/bin/python scripts/make_golden.py              # the plain version
    .venv/bin/python scripts/make_golden.py --schema 3   # the diagnostics version

It writes ``tests/golden/v<N>/`` and ``tests/golden/v<N>-float32/`` for the schema version N,
each holding ``spec.toml`` (the spec below, as written) and ``dataset/`` (``fastbp.sweep`` of
that file, committed as written: the Parquet shards and ``_manifest.json``). The spec sits beside
the dataset, not in it, because pyarrow and pandas read every file of a dataset directory whose
name does not begin with ``_`` or ``.``.

It refuses to write a directory that already exists: the datasets of older schema versions are
what today's readers must keep reading, so they are never rewritten; the current version's are
what a fresh sweep must reproduce bit for bit, so rewriting them would hide exactly the change the
test is there to catch. (To redo a version that has not been released yet, ``git rm`` its
directories first.) After writing a new version, add its directories and its column list to
``tests/test_golden.py``.

The kernels are run as every command after the first one runs them: loaded from Numba's on-disk
cache, filled first by a throwaway sweep in a child process. (Measured on this build: the float32
kernel compiled in the same process gives the overflowed curves' NaNs the opposite sign bit; see
``assert_same_bits`` in the test.)

The specs are chosen to exercise the contract in a few kilobytes: an lr so large that a run
overflows (inf/NaN weights and losses, ``overflow`` true), runs that reach the tolerance and runs
that never do (null ``first_step_below_tol``), ``record_every`` that does not divide ``steps`` (the
last recorded step is ``steps`` itself), a ``-0.0`` initial weight, two shards of which the second
is short, and the init kinds: course, uniform and fixed (the same bits on every machine),
normal and Xavier-normal (the C library's log/cos: the same bits wherever the C library is). The
diagnostics version's add runs in every regime, a ``stability`` list whose steps do not divide
``steps`` either, NaN sharpness where the Hessian overflows, and (float32) a choice of columns.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import fastbp
from fastbp.contract import DYNAMICS_VERSION, SCHEMA_VERSION

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(os.path.dirname(HERE), "tests", "golden")

# The targets are the course's second edition (0.01, 0.99), so that saturated outputs keep a
# loss: with t = 0.5 an lr of 1e308 only drives every run to E_total = 0 and nothing overflows.
# The last fixed row has output weights near the float64 maximum: at lr 1e308 its first update
# overflows and the next forward pass turns inf · 0 into NaN; at 0.7 and 2.5 it stays finite.
FLOAT64_SPEC = """\
# The golden float64 dataset of fastbp's schema version {version} (scripts/make_golden.py).
name = "golden v{version} float64"
steps = 50
lr = [0.7, 2.5, 1e308]       # not powers of two, so that lr · ∂E/∂w rounds
dtype = "float64"
seed = 13
record_every = 7             # recorded steps 0, 7, …, 49 and 50
tolerance = 1e-2             # reached by some runs, never by others
shard_size = 16              # 24 runs: shards of 16 and 8

[network]
inputs = [0.05, 0.1]
targets = [0.01, 0.99]

[[init]]
kind = "course"

[[init]]
kind = "uniform"
low = -2.0
high = 2.0
count = 3

[[init]]
kind = "normal"
mean = 0.25
std = 1.5
count = 2

[[init]]
kind = "fixed"
weights = [
    [0.0, -0.0, 0.3, -0.3, 0.4, 0.45, 0.5, 0.55],
    [0.0, 0.0, 0.0, 0.0, 1.75e308, 1.75e308, 1.75e308, -1.75e308],
]
"""

# The same overflow in float32: output weights near the float32 maximum and an lr of 3e38 (at
# 1e38 the weights overflow but the losses stay finite).
FLOAT32_SPEC = """\
# The golden float32 dataset of fastbp's schema version {version} (scripts/make_golden.py).
name = "golden v{version} float32"
steps = 30
lr = [1.3, 3e38]
dtype = "float32"
seed = 7
record_every = 4             # recorded steps 0, 4, …, 28 and 30
tolerance = 2e-2             # no shard_size: 12 runs in one shard

[network]
targets = [0.01, 0.99]

[[init]]
kind = "course"

[[init]]
kind = "uniform"
count = 2

[[init]]
kind = "xavier"
distribution = "normal"
count = 2

[[init]]
kind = "fixed"
weights = [[0.0, 0.0, 0.0, 0.0, 3.3e38, 3.3e38, 3.3e38, -3.3e38]]
"""

# Schema version 3: the same network with the targets (0.25, 0.75), where rates of 150 give
# every regime in a few runs (with (0.01, 0.99) every run that reaches the tolerance is monotone).
# The seeds were picked so that the runs span the regimes: float64 all seven, float32 all but
# oscillating. The overflowing rows sit closer to the maximum than above, because with these
# targets the first update leaves 1.75e308 finite and the losses never turn NaN.
DIAGNOSTICS_FLOAT64_SPEC = """\
# The golden float64 dataset of fastbp's schema version {version} (scripts/make_golden.py).
name = "golden v{version} float64"
steps = 50
lr = [2.5, 150.0, 1e308]      # slow and monotone; bumpy, catapult, oscillating; stuck, diverged
dtype = "float64"
seed = 3
record_every = 7             # recorded steps 0, 7, …, 49 and 50
tolerance = 1e-2             # reached by some runs, never by others
shard_size = 16              # 27 runs: shards of 16 and 11
diagnostics = true           # regime, sharpness, stability, max_loss, trainability …
stability_every = 20         # the stability list at steps 0, 20, 40 and 50

[network]
inputs = [0.05, 0.1]
targets = [0.25, 0.75]

[[init]]
kind = "course"

[[init]]
kind = "uniform"
low = -5.0
high = 5.0
count = 4

[[init]]
kind = "normal"
mean = 0.25
std = 1.5
count = 2

[[init]]
kind = "fixed"
weights = [
    [0.0, -0.0, 0.3, -0.3, 0.4, 0.45, 0.5, 0.55],
    [0.0, 0.0, 0.0, 0.0, 1.79e308, 1.79e308, 1.79e308, -1.79e308],
]
"""

# float32 with a choice of columns: no initial weights, no per-layer rates, no grid, and of the
# diagnostics only max_loss, trainability, stability_final and regime.
DIAGNOSTICS_FLOAT32_SPEC = """\
# The golden float32 dataset of fastbp's schema version {version} (scripts/make_golden.py).
name = "golden v{version} float32"
steps = 30
lr = [1.3, 150.0, 3e38]
dtype = "float32"
seed = 5
record_every = 4             # recorded steps 0, 4, …, 28 and 30
tolerance = 2e-2             # no shard_size: 18 runs in one shard
diagnostics = true
columns = [
    "lr", "init", "init_block", "init_index",
    "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8",
    "final_loss", "min_loss", "first_step_below_tol", "overflow", "loss",
    "max_loss", "trainability", "stability_final", "regime",
]

[network]
targets = [0.25, 0.75]

[[init]]
kind = "course"

[[init]]
kind = "uniform"
low = -4.0
high = 4.0
count = 2

[[init]]
kind = "xavier"
distribution = "normal"
count = 2

[[init]]
kind = "fixed"
weights = [[0.0, 0.0, 0.0, 0.0, 3.4e38, 3.4e38, 3.4e38, -3.4e38]]
"""

# schema version -> {directory suffix: spec}: a plain sweep writes SCHEMA_VERSION, a sweep with
# diagnostics, a stability list or a choice of columns DYNAMICS_VERSION.
CASES = {
    SCHEMA_VERSION: {"": FLOAT64_SPEC, "-float32": FLOAT32_SPEC},
    DYNAMICS_VERSION: {"": DIAGNOSTICS_FLOAT64_SPEC, "-float32": DIAGNOSTICS_FLOAT32_SPEC},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--schema",
        type=int,
        choices=sorted(CASES),
        default=SCHEMA_VERSION,
        help=f"the schema version to write (default {SCHEMA_VERSION}, a plain sweep's; "
        f"{DYNAMICS_VERSION}: diagnostics)",
    )
    version = parser.parse_args(argv).schema
    targets = {os.path.join(GOLDEN, f"v{version}{suffix}"): text for suffix, text in CASES[version].items()}
    existing = [path for path in targets if os.path.exists(path)]
    if existing:
        print(
            f"make_golden: error: {', '.join(existing)} exists; golden datasets are never rewritten "
            f"(this writes schema version {version}: run it after the version changes)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as scratch:  # compile (or load) the kernels elsewhere first
        for k, text in enumerate(targets.values()):
            spec_path = os.path.join(scratch, f"{k}.toml")
            with open(spec_path, "w", encoding="utf-8") as handle:
                handle.write(text.format(version=version))
            code = "import fastbp, sys; fastbp.sweep(sys.argv[1], out=sys.argv[2], progress=False)"
            subprocess.run([sys.executable, "-c", code, spec_path, os.path.join(scratch, str(k))], check=True)
    for directory, text in targets.items():
        os.makedirs(directory)
        spec_path = os.path.join(directory, "spec.toml")
        with open(spec_path, "w", encoding="utf-8") as handle:
            handle.write(text.format(version=version))
        dataset = os.path.join(directory, "dataset")
        summary = fastbp.sweep(spec_path, out=dataset, progress=False)
        os.remove(os.path.join(dataset, ".fastbp-lock"))  # the writers' lock: no data
        with open(os.path.join(dataset, "_manifest.json"), encoding="utf-8") as handle:
            written = json.load(handle)["schema_version"]
        if written != version:  # a spec above that no longer selects its version
            shutil.rmtree(directory)
            print(
                f"make_golden: error: {spec_path} wrote schema version {written}, not {version}",
                file=sys.stderr,
            )
            return 2
        size = sum(entry.stat().st_size for entry in os.scandir(dataset))
        print(f"{directory}: {summary.n_runs} runs, {summary.n_shards} shards, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
