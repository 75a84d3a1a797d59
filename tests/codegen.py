"""Compiled code, read for properties rather than text (a helper module, not a test module).

LLVM renames blocks (``vector.body``), reorders instructions, changes vector widths and unrolls
differently from one version to the next with no change in behaviour; what fastmath guarantees
does not change: arithmetic on <N x float> vectors, no table lookups (which a vector loop turns
into gathers) and no libm exp (LLVM vectorises a loop of ``llvm.exp`` calls too, into one libm call
per lane, so a vector loop alone does not show it). test_fastmath.py, test_kernels.py,
test_biases.py and test_kernels_sharpness.py read compiled code with these patterns.

Numba keeps no IR for code loaded from its disk cache, so ``compiled`` needs a dispatcher made
with ``cache=False`` (it says so rather than reading an empty module).
"""

import re
import warnings

import numba
import numpy as np


def ir_element_type(dtype):
    return {np.float64: ("double", 64), np.float32: ("float", 32)}[dtype]


def vector_lanes(ir, dtype):
    """The lane counts N of ``dtype`` arithmetic (fmul, fadd, fsub, fdiv, llvm.fma) on <N x T> vectors."""
    name, bits = ir_element_type(dtype)
    pattern = rf"\b(?:fmul|fadd|fsub|fdiv)(?: \w+)* <(\d+) x {name}>|@llvm\.fma\.v(\d+)f{bits}\b"
    return [int(a or b) for a, b in re.findall(pattern, ir)]


def divisions(ir, dtype):
    """(vector lane counts, number of scalar) of the ``dtype`` divisions in ``ir``."""
    name, _ = ir_element_type(dtype)
    vector = [int(n) for n in re.findall(rf"\bfdiv(?: \w+)* <(\d+) x {name}>", ir)]
    return vector, len(re.findall(rf"\bfdiv(?: \w+)* {name} ", ir))


def gathers(ir, asm):
    """Gather instructions: LLVM's masked/VP gather intrinsics, x86's vgather*/vpgather*."""
    return re.findall(r"@llvm\.[\w.]*gather[\w.]*", ir) + re.findall(r"\bv\w*gather\w*", asm)


def libm_exp_calls(ir):
    """Calls to an exp outside fastmath: LLVM's exp intrinsics (a libm call per lane), libm, SVML."""
    return re.findall(r"@\"?(?:llvm\.exp2?\.[\w.]+|exp2?f?|__svml_exp\w*)\b", ir)


def compiled(function, *args):
    """The optimised LLVM IR and the assembly of ``function`` compiled for ``args`` (calls it once)."""
    function(*args)
    signature = tuple(numba.typeof(a) for a in args)
    with warnings.catch_warnings():
        # Numba warns, then returns a stub, for code it loaded from its cache: an error here.
        warnings.filterwarnings("error", message="Inspection disabled for cached code")
        return function.inspect_llvm(signature), function.inspect_asm(signature)


def assert_vector_loop(function, dtype, *args):
    """``function``'s loop is SIMD code in ``dtype``, with no gathers and no libm exp."""
    ir, asm = compiled(function, *args)
    assert_vector_code(function.__name__, ir, asm, dtype)
    return ir


def assert_vector_code(name, ir, asm, dtype):
    """Compiled code ``ir`` / ``asm`` holds SIMD arithmetic in ``dtype``, no gathers and no libm exp."""
    assert max(vector_lanes(ir, dtype), default=1) >= 2, f"{name}: no vector arithmetic"
    assert not gathers(ir, asm), f"{name}: gathers {gathers(ir, asm)[:3]}"
    assert not libm_exp_calls(ir), f"{name}: calls {libm_exp_calls(ir)[:3]}"
