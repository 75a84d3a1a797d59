"""Compiled code, read for properties rather than text (a helper module, not a test module).

LLVM renames blocks (``vector.body``), reorders instructions, changes vector widths and unrolls
differently from one version to the next with no change in behaviour; what fastmath guarantees
does not change: arithmetic on <N x float> vectors, no table lookups (which a vector loop turns
into gathers) and no libm exp (LLVM vectorises a loop of ``llvm.exp`` calls too, into one libm call
per lane, so a vector loop alone does not show it). test_fastmath.py, test_kernels.py,
test_biases.py and test_kernels_sharpness.py read compiled code with these patterns.

Numba keeps no IR for code loaded from its disk cache, so ``compiled`` needs a dispatcher made
with ``cache=False`` (it says so rather than reading an empty module). The training kernels' code
is kept beside Numba's cache instead (``kernel_code``): compiling one takes 10-30 s.
"""

import hashlib
import os
import re
import warnings

import numba
import numpy as np

from fastbp import _numba_cache, kernels, kernels_train
from fastbp.compile_time import Variant


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


# The training kernels whose compiled code tests/test_kernels.py reads (compile_kernels.py keeps
# it): the exercise's, and each other kind of step once (two rates, in float32: it holds the
# exercise's step and stands for its float32 code; biases in the sums with the trained biases'
# update; the diagnostics noted inside).
KERNELS_READ = {
    "exercise": (Variant(), np.float64),
    "rates": (Variant(two_rates=True), np.float32),
    "shared": (Variant(biases="shared"), np.float64),
    "diagnostics": (Variant(diagnostics=True), np.float64),
}
CODE_KEPT_DIR = os.path.join(os.path.dirname(kernels_train.__file__), "__pycache__", "kernel-code")


def _kept_path(variant, dtype):
    """Where the code of ``variant``'s kernel in ``dtype`` is kept: named by everything it is
    compiled from (the sources, as the cache key has them; the variant; the dtype; Numba, LLVM and
    the CPU), so a file is read only for the code the cache serves."""
    from numba.core.codegen import JITCPUCodegen

    key = "|".join(
        (
            _numba_cache._source_stamp(kernels_train.__file__),
            repr(variant),
            np.dtype(dtype).name,
            numba.__version__,
            str(JITCPUCodegen("fastbp-key")._get_host_cpu_name()),
            str(JITCPUCodegen("fastbp-key")._get_host_cpu_features()),
        )
    )
    return os.path.join(CODE_KEPT_DIR, hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def _run_one_block(variant, dtype):
    one = np.ones(1, dtype)
    options = {"diagnostics": variant.diagnostics, "lr_output": one if variant.two_rates else None}
    if variant.with_biases:
        options.update(biases=np.zeros((4, 1), dtype), train_biases=variant.train_biases)
        options["shared_biases"] = variant.shared_biases
    kernels.train(np.full((8, 1), 0.1, dtype), one, (0.05, 0.1), (0.5, 0.5), 1, **options)


def _code_of(kernel, dtype):
    """(IR, asm) of the ``dtype`` specialisation of ``kernel``, or None when it came from the cache."""
    (signature,) = [s for s in kernel.signatures if s[0].dtype == numba.from_dtype(np.dtype(dtype))]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Inspection disabled for cached code")
        try:
            return kernel.inspect_llvm(signature), kernel.inspect_asm(signature)
        except Warning:
            return None


def kernel_code(variant, dtype):
    """The optimised LLVM IR and the assembly of the 2-2-2 training kernel of ``variant`` in
    ``dtype``: the kept copy (``keep_kernel_code``), or compiled here outside the disk cache."""
    import json

    path = _kept_path(variant, dtype)
    if os.path.exists(path):
        with open(path) as handle:
            kept = json.load(handle)
        return kept["ir"], kept["asm"]
    return keep_kernel_code(variant, dtype)


def keep_kernel_code(variant, dtype):
    """Compile (or take from this process) the kernel of ``variant`` in ``dtype``, keep its code
    for ``kernel_code``, and return it. The kernel just compiled by a sweep in this process (the
    cached one) is read if it can be; one loaded from the disk cache has no code to read, and a
    copy outside the cache is compiled."""
    import json

    _run_one_block(variant, dtype)
    code = _code_of(kernels_train.train_kernel(variant), dtype)
    if code is None:
        uncached = kernels_train.train_kernel(variant, cache=False)
        cached, kernels_train.train_kernel = kernels_train.train_kernel, lambda v: uncached
        try:
            _run_one_block(variant, dtype)
        finally:
            kernels_train.train_kernel = cached
        code = _code_of(uncached, dtype)
    path = _kept_path(variant, dtype)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(CODE_KEPT_DIR, exist_ok=True)
        with open(temporary, "w") as handle:
            json.dump({"variant": repr(variant), "ir": code[0], "asm": code[1]}, handle)
        os.replace(temporary, path)
    except OSError:  # a read-only package directory: the code is compiled again next time
        pass
    return code
