"""scripts/kernel_floor.py: the operation counts its lower bound rests on, read from the compiled step."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fastbp import kernels
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def kernel_floor():
    # Run as a script, kernel_floor.py finds its sibling package benchkit/ because Python puts
    # scripts/ first on sys.path; loaded from here, the test does that for the time of the load.
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPTS))
        spec = importlib.util.spec_from_file_location("kernel_floor", SCRIPTS / "kernel_floor.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_counted_step_is_the_kernels_step(kernel_floor, dtype):
    # What is counted must be what the kernel computes: same weights after one step, same E_total.
    t = np.dtype(dtype).type
    w, lr = np.array(COURSE_WEIGHTS, dtype=dtype), t(0.5)
    out = np.empty(9, dtype)
    kernel_floor._one_run_step(w, lr, *(t(v) for v in COURSE_INPUTS + COURSE_TARGETS), out)
    trained = kernels.train(w.reshape(8, 1), np.array([lr]), COURSE_INPUTS, COURSE_TARGETS, 1, record_every=1)
    np.testing.assert_array_equal(out[:8], trained.weights[:, 0])
    assert out[8] == trained.loss[0, 0]  # E_total at step 0


def test_counts_per_run_step(kernel_floor):
    # Outside the sigmoids the SPEC's step has 40 multiplies/fmas (pre-activations 8, loss 4,
    # backward 20, update 8) and 9 adds/subtracts (loss 3, backward 6). Each float64 sigmoid adds
    # 12 multiplies/fmas (range reduction 3, Padé approximant 8, 1 + e 1), 2 subtracts and 2
    # divisions (the Padé quotient, then 1 / (1 + e)); float32's exp is a polynomial: 1 division.
    assert kernel_floor.count_operations(np.float64) == {"mul/fma": 88, "div": 8, "add/sub": 17}
    assert kernel_floor.count_operations(np.float32)["div"] == 4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_networks_count_is_the_compiled_exercise_step_on_its_network(kernel_floor, dtype):
    # Any network's count is assembled from its shape; on 2-2-2, one pattern, no biases, it must
    # be what the compiled step of one run holds, kind by kind.
    counted = kernel_floor.network_operations((2, 2, 2), "sigmoid", "sigmoid", 1, "batch", False, dtype)
    assert counted == kernel_floor.count_operations(dtype)


def test_a_networks_count_grows_as_its_equations_say(kernel_floor):
    # 10-5-10 sigmoid, 10 patterns, trained biases, batch: per pattern 100 sums' terms, 15
    # sigmoids (12 multiplies/fmas, 2 divisions, 2 subtracts each in float64), E (20 multiplies,
    # 19 adds/subtracts), deltas (10 a − t, 15 × 2 multiplies + 1 subtract), 50 back-sent terms,
    # 100 gradients; 115 + 1 sums per pattern; then 115 updates a step.
    ops = kernel_floor.network_operations((10, 5, 10), "sigmoid", "sigmoid", 10, "batch", True, np.float64)
    per_pattern_mul = 100 + 15 * 12 + 20 + 15 * 2 + 50 + 100
    assert ops["mul/fma"] == 10 * per_pattern_mul + 115
    assert ops["div"] == 10 * 15 * 2
    assert ops["add/sub"] == 10 * (15 * 2 + 19 + 10 + 15 + 116)
    online = kernel_floor.network_operations(
        (10, 5, 10), "sigmoid", "sigmoid", 10, "online", True, np.float64
    )
    assert online["div"] == 2 * ops["div"]  # a second forward pass per pattern
    linear = kernel_floor.network_operations((10, 5, 10), "sigmoid", "linear", 10, "batch", True, np.float64)
    assert ops["div"] - linear["div"] == 10 * 10 * 2  # no sigmoid on the outputs
