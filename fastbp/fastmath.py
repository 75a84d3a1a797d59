"""``exp`` and the sigmoid in plain arithmetic, for float32 and float64.

Why not ``math.exp``: Numba's PyPI build has no working SVML here, so ``math.exp`` stays a
scalar libm call and the per-run loop of a kernel cannot be vectorised. These functions use
only adds, multiplies, compares/selects and one integer bit trick, so LLVM turns a loop of
them into SIMD code, and every lane computes exactly the same IEEE operations: a run's bits do
not depend on the lane, the vector width or the thread it runs in.

Accuracy (measured by ``tests/test_fastmath.py`` against correctly rounded values): within
1 ulp (float64 and float32), which the SPEC's reference-figure section says keeps every loss
curve inside 1e-12 relative. Outside the normal range: arguments above ln(max float) give
``inf``; arguments whose result would be below about the smallest normal number (x < -708 in
float64, x < -86.5 in float32) give ``0.0`` (no subnormals); NaN gives NaN. ``sigmoid`` at
either limit gives exactly what the IEEE formula 1 / (1 + exp(−x)) gives.

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
# exp(r) = 1 + r + r**2 * q(r), q a near-minimax (Chebyshev) fit of (exp(r) - 1 - r) / r**2 on
# |r| <= ln2/2, evaluated with fused multiply-adds: scripts/derive_exp_polynomial.py derives the
# coefficients and prints the fit error (float64: 1.3e-17 absolute, ~0.1 ulp; float32: 7.8e-9).

_F64 = dict(
    magic=6755399441055744.0,  # 1.5 * 2**52
    log2e=1.4426950408889634,
    ln2_hi=6.93147180369123816490e-01,  # fdlibm's split of ln 2
    ln2_lo=1.90821492927058770002e-10,
    lo=-708.0,  # below: result < 3.3e-308, returned as 0 (keeps 2**(k-1) a normal number)
    hi=710.0,  # clamp: exp(710) overflows to inf by itself, and k stays <= 1024
    q=(0.5000000000000001, 0.16666666666666669, 0.041666666666624164, 0.008333333333330065,
       0.001388888891719689, 0.00019841269863040675, 2.480152132210459e-05, 2.7557268480106926e-06,
       2.762007600563138e-07, 2.5100375929185925e-08),  # fmt: skip
)
_F32 = dict(
    magic=np.float32(12582912.0),  # 1.5 * 2**23
    log2e=np.float32(1.4426950408889634),
    ln2_hi=np.float32(0.693359375),  # 355/512: k*LN2_HI exact in float32 for |k| <= 128
    ln2_lo=np.float32(-2.12194440e-4),
    lo=np.float32(-86.5),
    hi=np.float32(89.0),  # exp(89) overflows to inf by itself, and k stays <= 128
    q=tuple(np.float32(c) for c in (0.5, 0.1666657702523905, 0.04166655466160214,
                                    0.008363173134292821, 0.0013926176194609642)),  # fmt: skip
)


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding (``llvm.fma``): exact by definition, so the same bits on every
    CPU; a single instruction where the CPU has FMA (x86-64 since 2013), a libm call elsewhere."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        function = builder.module.declare_intrinsic("llvm.fma", [args[0].type] * 3)
        return builder.call(function, args)

    return a(a, b, c), codegen


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


@intrinsic
def _clamp(typingctx, x, lo, hi):
    """min(max(x, lo), hi) as two selects; NaN passes through (its comparisons are false)."""
    if not (isinstance(x, types.Float) and x == lo == hi):
        return None

    def codegen(context, builder, signature, args):
        value, low, high = args
        value = builder.select(builder.fcmp_ordered("<", value, low), low, value)
        return builder.select(builder.fcmp_ordered(">", value, high), high, value)

    return x(x, lo, hi), codegen


@intrinsic
def _zero_below(typingctx, y, x, lo):
    """0 where x < lo, else y (a select: no branch, no Numba-level phi)."""
    if not (isinstance(y, types.Float) and y == x == lo):
        return None

    def codegen(context, builder, signature, args):
        value, argument, low = args
        below = builder.fcmp_ordered("<", argument, low)
        return builder.select(below, ir.Constant(value.type, 0.0), value)

    return y(y, x, lo), codegen


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
    one, two = type(lo)(1.0), type(lo)(2.0)
    from numba import njit

    # Estrin's scheme: pairs in parallel, then powers of r²: a shorter dependency chain than
    # Horner's for the same number of operations (plus r⁴, r⁸).
    if len(c["q"]) == 10:
        q0, q1, q2, q3, q4, q5, q6, q7, q8, q9 = c["q"]

        @njit(inline="always")
        def q(r, r2):
            r4 = r2 * r2
            p01 = fma(q1, r, q0)
            p23 = fma(q3, r, q2)
            p45 = fma(q5, r, q4)
            p67 = fma(q7, r, q6)
            p89 = fma(q9, r, q8)
            p03 = fma(p23, r2, p01)
            p47 = fma(p67, r2, p45)
            p07 = fma(p47, r4, p03)
            return fma(p89, r4 * r4, p07)
    else:
        q0, q1, q2, q3, q4 = c["q"]

        @njit(inline="always")
        def q(r, r2):
            p01 = fma(q1, r, q0)
            p23 = fma(q3, r, q2)
            p03 = fma(p23, r2, p01)
            return fma(q4, r2 * r2, p03)

    def exp_core(x):
        """exp(x) for x >= lo; below lo it gives exp(lo) instead of a smaller number."""
        # Selects, not branches, so the loop around this stays vectorisable. Above ln(max float)
        # the scaling below overflows to inf by itself.
        xc = _clamp(x, lo, hi)
        t = fma(xc, log2e, magic)  # round(x / ln 2) + magic
        k = t - magic
        r = fma(-k, ln2_hi, xc)
        r = fma(-k, ln2_lo, r)
        r2 = r * r
        expm1_r = fma(r2, q(r, r2), r)
        return fma(expm1_r, two, two) * _pow2_from_magic(t)  # 2 (1 + expm1 r) 2**(k-1)

    exp_core = njit(inline="always")(exp_core)

    def exp_impl(x):
        return _zero_below(exp_core(x), x, lo)

    def sigmoid_impl(x):
        # exp_core suffices: where it differs from exp (−x < lo), 1 + exp(−x) rounds to 1 either way.
        # A true division: measured faster than Newton steps from a bit-trick estimate on Zen 4,
        # where the divider is a separate unit and the FMA pipes are the bottleneck.
        return one / (one + exp_core(-x))

    return exp_impl, sigmoid_impl


_IMPLS = {64: _make_exp(_F64), 32: _make_exp(_F32)}


@overload(exp, inline="always")
def _exp_overload(x):
    if isinstance(x, types.Float):
        return _IMPLS[x.bitwidth][0]


@overload(sigmoid, inline="always")
def _sigmoid_overload(x):
    if isinstance(x, types.Float):
        return _IMPLS[x.bitwidth][1]


@overload(like, inline="always")
def _like_overload(x, value):
    if isinstance(x, types.Float):
        if x.bitwidth == 32:
            return lambda x, value: np.float32(value)
        return lambda x, value: np.float64(value)
