"""scripts/kernel_floor.py: the operation counts its lower bound rests on, read from the compiled step."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "kernel_floor.py"


@pytest.fixture(scope="module")
def kernel_floor():
    spec = importlib.util.spec_from_file_location("kernel_floor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_divisions_are_those_of_the_four_sigmoids(kernel_floor):
    # float64: each sigmoid divides twice (the Padé exp, then 1 / (1 + e)); float32's exp is a polynomial.
    assert kernel_floor.count_operations(np.float64)["div"] == 8
    assert kernel_floor.count_operations(np.float32)["div"] == 4


def test_multiplies_include_the_fused_ones(kernel_floor):
    # Outside the sigmoids the SPEC's step alone has 40: pre-activations 8, loss 4, backward 20,
    # update 8; each sigmoid adds its range reduction and polynomial. Missing the llvm.fma calls
    # would leave 34 plain multiplies in all.
    counts = kernel_floor.count_operations(np.float64)
    assert counts["mul/fma"] > 40
    assert counts["add/sub"] > 0
