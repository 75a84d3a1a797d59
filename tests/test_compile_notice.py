"""A kernel that compiles says so, and the plan's time estimate is measured on the sweep's own variant.

A first ``diagnostics = true`` sweep used to sit at "0/N runs" for half a minute while its kernel
compiled, and the plan's estimate timed the bias-free kernel instead.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from fastbp import kernels, plan
from fastbp.spec import parse_spec


def test_a_compile_calls_on_compile_once_and_a_loaded_kernel_does_not():
    @njit  # a new function: its first call compiles, whatever Numba's cache holds
    def fresh(x):
        return x + 1

    heard = []
    with kernels._compile_noted(heard.append, "the test's kernel"):
        fresh(1)
        fresh(1.5)  # a second signature compiles too, but the notice is said once
    assert heard == ["the test's kernel"]
    with kernels._compile_noted(heard.append, "again"):
        fresh(2)  # already compiled in this process: nothing to say
    assert heard == ["the test's kernel"]


def test_the_plan_measures_the_specs_own_variant(monkeypatch):
    calls = []
    real_train = kernels.train

    def recording_train(*args, **options):
        calls.append(options)
        return real_train(*args, **options)

    monkeypatch.setattr(kernels, "train", recording_train)
    spec = parse_spec(
        {
            "steps": 100,
            "lr_hidden": [0.5],
            "lr_output": [1.0],
            "diagnostics": True,
            "init": [{"kind": "uniform", "count": 3}],
        }
    )
    speed = plan.measure_speed(spec)
    assert speed > 0
    timed = calls[-1]  # the timed call: the sweep's variant, not the bias-free kernel's
    assert timed["diagnostics"] is True and len(timed["lr_output"]) == len(calls[-1]["lr_output"]) > 0
    assert "biases" not in timed and "stability_steps" not in timed  # the spec has no biases
    # The sharpness kernel the sweep's columns need is loaded before the timing too.
    assert any(c.get("stability_steps") == [0] for c in calls[:-1])


@pytest.mark.slow
def test_a_first_sweep_says_it_compiles_and_a_second_does_not(tmp_path):
    """With an empty Numba cache a sweep compiles its kernel and says so before the plan's line;
    the next sweep loads it from the cache and says nothing of compiling."""
    spec = tmp_path / "s.toml"
    spec.write_text('steps = 20\nlr = [0.5]\n[[init]]\nkind = "uniform"\ncount = 3\n')
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))

    def sweep(out):
        command = [sys.executable, "-m", "fastbp", "sweep", str(spec), "--out", str(tmp_path / out)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stderr

    first = sweep("a")
    notice = [line for line in first.splitlines() if "compiling" in line]
    assert notice and "first run only" in notice[0] and "float64 training kernel" in notice[0], first
    assert first.index("compiling") < first.index("plan:")  # said before the wait, not after
    assert "compiling" not in sweep("b")
    assert np.isfinite(float(first.split("at ")[-1].split(" M run-steps/s")[0].replace(",", "")))


_CLOSURE_DIGESTS = """
import hashlib
from numba.core.serialize import dumps
from fastbp.compile_time import Variant
from fastbp.kernels_train import train_kernel
for variant in (Variant(), Variant.of(layers=(2, 3, 1), patterns=4, update="online", biases=True, train_biases=True)):
    closure = train_kernel(variant).py_func.__closure__
    print(hashlib.sha256(dumps(tuple(cell.cell_contents for cell in closure))).hexdigest())
"""


def test_a_training_kernels_cache_key_is_the_same_in_every_process():
    """Numba keys a cached closure by the pickle of its cell contents: anything in them that
    pickles differently per process (a dispatcher carries a random id) means the kernel is
    compiled again by every process and never loaded from the cache."""

    def digests():
        done = subprocess.run([sys.executable, "-c", _CLOSURE_DIGESTS], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    first = digests()
    assert len(first) == 2 and first[0] != first[1]
    assert digests() == first
