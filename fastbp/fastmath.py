"""``exp`` and the sigmoid in plain arithmetic, for float32 and float64.

Why not ``math.exp``: Numba's PyPI build has no working SVML here, so ``math.exp`` stays a
scalar libm call and the per-run loop of a kernel cannot be vectorised. These functions use
only adds, multiplies, compares/selects and one integer bit trick, so LLVM turns a loop of
them into SIMD code, and every lane computes exactly the same IEEE operations: a run's bits do
not depend on the lane, the vector width or the thread it runs in.

Accuracy (measured by ``tests/test_fastmath.py`` against ``math.exp``): within 1 ulp on the
range that matters (float64), which the SPEC's reference-figure section says keeps every loss
curve inside 1e-12 relative. Outside the normal range: arguments above ln(max float) give
``inf``; arguments whose result would be below about the smallest normal number (x < -708 in
float64, x < -86.5 in float32) give ``0.0`` (no subnormals). In ``sigmoid`` either limit gives
exactly what the IEEE formula gives, since 1 + tiny == 1.

Usage inside ``@njit`` code: ``exp(x)``, ``sigmoid(x)``, ``like(x, 0.5)`` (a constant of x's
float type, so float32 code is not promoted to float64 by a Python literal).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

# exp(x) = 2**k * exp(r), k = round(x / ln 2), r = x - k ln 2 (Cody-Waite split, so k*LN2_HI is
# exact), |r| <= ln2 / 2. Rounding uses the "magic number" trick: adding 1.5 * 2**52 leaves k in
# the low mantissa bits, which also gives 2**k by integer arithmetic (see _pow2_from_magic).

_F64 = dict(
    magic=6755399441055744.0,  # 1.5 * 2**52
    log2e=1.4426950408889634,
    ln2_hi=6.93147180369123816490e-01,  # fdlibm's split of ln 2
    ln2_lo=1.90821492927058770002e-10,
    lo=-708.0,  # below: result < 3.3e-308, returned as 0 (keeps 2**(k-1) a normal number)
    hi=709.782712893384,  # ln(DBL_MAX): above it, inf
    # Taylor coefficients 1/n!, n = 0 … 13: the truncation error r**14/14! < 5e-18 on |r| <= ln2/2.
    coef=tuple(1.0 / math.factorial(n) for n in range(14)),
)
_F32 = dict(
    magic=np.float32(12582912.0),  # 1.5 * 2**23
    log2e=np.float32(1.4426950408889634),
    ln2_hi=np.float32(0.693359375),  # 355/512: k*LN2_HI exact in float32 for |k| <= 128
    ln2_lo=np.float32(-2.12194440e-4),
    lo=np.float32(-86.5),
    hi=np.float32(88.72283),  # ln(FLT_MAX)
    coef=tuple(np.float32(1.0 / math.factorial(n)) for n in range(9)),
)


@intrinsic
def _pow2_from_magic(typingctx, t):
    """2**(k-1) for t == magic + k, k integral, by building the exponent field from t's bits.

    (k - 1 rather than k so that k = 1024, reached just below ln(DBL_MAX), stays finite; the caller
    multiplies by 2.)
    """
    if not isinstance(t, types.Float):
        return None

    def codegen(context, builder, signature, args):
        (value,) = args
        if t.bitwidth == 64:
            int_type, magic, bias, mantissa_bits = ir.IntType(64), _F64["magic"], 1023, 52
            magic_bits = int(np.float64(magic).view(np.int64))
        else:
            int_type, magic, bias, mantissa_bits = ir.IntType(32), _F32["magic"], 127, 23
            magic_bits = int(np.float32(magic).view(np.int32))
        bits = builder.bitcast(value, int_type)
        exponent = builder.add(bits, ir.Constant(int_type, bias - 1 - magic_bits))
        return builder.bitcast(builder.shl(exponent, ir.Constant(int_type, mantissa_bits)), value.type)

    return t(t), codegen


def exp(x):
    """exp(x); plain Python fallback (the compiled version is the overload below)."""
    return math.exp(x)


def sigmoid(x):
    """σ(x) = 1 / (1 + exp(−x)); plain Python fallback."""
    return 1.0 / (1.0 + math.exp(-x))


def like(x, value):
    """``value`` as a constant of x's float type (plain Python: a float)."""
    return float(value)


def _make_exp(c):
    magic, log2e, ln2_hi, ln2_lo, lo, hi = c["magic"], c["log2e"], c["ln2_hi"], c["ln2_lo"], c["lo"], c["hi"]
    zero, two, inf = type(lo)(0.0), type(lo)(2.0), type(lo)(np.inf)
    coef = c["coef"]
    if len(coef) == 14:
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = coef

        def poly(r):
            p = c13 * r + c12
            p = p * r + c11
            p = p * r + c10
            p = p * r + c9
            p = p * r + c8
            p = p * r + c7
            p = p * r + c6
            p = p * r + c5
            p = p * r + c4
            p = p * r + c3
            p = p * r + c2
            p = p * r + c1
            return p * r + c0
    else:
        c0, c1, c2, c3, c4, c5, c6, c7, c8 = coef

        def poly(r):
            p = c8 * r + c7
            p = p * r + c6
            p = p * r + c5
            p = p * r + c4
            p = p * r + c3
            p = p * r + c2
            p = p * r + c1
            return p * r + c0

    from numba import njit

    poly = njit(inline="always")(poly)

    def impl(x):
        # Selects, not branches: the loop around this stays vectorisable.
        xc = x if x > lo else lo  # NaN goes to lo here and is restored at the end
        xc = xc if xc < hi else hi
        t = xc * log2e + magic
        k = t - magic
        r = (xc - k * ln2_hi) - k * ln2_lo
        y = poly(r) * _pow2_from_magic(t) * two
        y = y if x > lo else zero
        y = y if x <= hi else inf
        return y if x == x else x

    return impl


_EXP_IMPL = {64: _make_exp(_F64), 32: _make_exp(_F32)}


@overload(exp, inline="always")
def _exp_overload(x):
    if isinstance(x, types.Float):
        return _EXP_IMPL[x.bitwidth]


@overload(sigmoid, inline="always")
def _sigmoid_overload(x):
    if isinstance(x, types.Float):
        one = np.float32(1.0) if x.bitwidth == 32 else 1.0

        def impl(x):
            return one / (one + exp(-x))

        return impl


@overload(like, inline="always")
def _like_overload(x, value):
    if isinstance(x, types.Float):
        if x.bitwidth == 32:
            return lambda x, value: np.float32(value)
        return lambda x, value: np.float64(value)
