"""scripts/benchkit/kernel_child.py, the timing script `bench.py --against` runs inside either tree.

It has to call whatever `fastbp.kernels.train` the other tree has and say whether both trees
computed the same bits; these tests hold it to both, without timing anything.
"""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastbp import kernels

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "scripts" / "benchkit" / "kernel_child.py"


@pytest.fixture(scope="module")
def child():
    # kernel_child imports nothing of the bench, so it loads from its path with sys.path as it is
    spec = importlib.util.spec_from_file_location("kernel_child", CHILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ARGS = (np.zeros((8, 2)), np.ones(2), (0.05, 0.1), (0.5, 0.5), 7)


def test_parameters_turned_keyword_only_are_passed_by_name(child, monkeypatch):
    seen = {}

    def train(w_init, lr, *, inputs, targets, steps, record_every=0, tolerance=1e-4, per_layer=None):
        seen.update(
            w_init=w_init, lr=lr, inputs=inputs, targets=targets, steps=steps, record_every=record_every
        )
        seen["defaults_kept"] = (tolerance, per_layer) == (1e-4, None)
        return "result"

    monkeypatch.setattr(child, "train", train)
    assert child.call(*ARGS) == "result"
    assert seen["inputs"] == (0.05, 0.1) and seen["targets"] == (0.5, 0.5) and seen["steps"] == 7
    assert seen["w_init"] is ARGS[0] and seen["lr"] is ARGS[1]
    assert seen["record_every"] == 0 and seen["defaults_kept"]


def test_a_train_without_record_every_is_not_given_one(child, monkeypatch):
    monkeypatch.setattr(child, "train", lambda w_init, lr, inputs, targets, steps: (inputs, steps))
    assert child.call(*ARGS) == ((0.05, 0.1), 7)


def test_other_parameter_names_get_the_arguments_by_position(child, monkeypatch):
    monkeypatch.setattr(child, "train", lambda w, rates, x, t, n, record_every=0: (x, t, n, record_every))
    assert child.call(*ARGS) == ((0.05, 0.1), (0.5, 0.5), 7, 0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_child_trains_the_parents_problem_in_the_tree_on_pythonpath(tmp_path, dtype):
    rng = np.random.default_rng(5)
    w_init = rng.uniform(-1, 1, (8, 70)).astype(dtype)  # 70 runs: one full block, one padded
    lr = np.logspace(-1, 1, 70).astype(dtype)
    np.save(tmp_path / "w.npy", w_init)
    np.save(tmp_path / "lr.npy", lr)
    paths = dict(w_init=str(tmp_path / "w.npy"), lr=str(tmp_path / "lr.npy"))
    job = dict(paths, inputs=[0.05, 0.1], targets=[0.5, 0.5], steps=40, threads=1, repeat=2)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-P", str(CHILD), json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert Path(out["package"]) == ROOT and out["threads"] == 1 and len(out["seconds"]) == 2
    here = kernels.train(w_init=w_init, lr=lr, inputs=(0.05, 0.1), targets=(0.5, 0.5), steps=40).final_loss
    assert out["final_loss_sha256"] == hashlib.sha256(np.ascontiguousarray(here).tobytes()).hexdigest()
