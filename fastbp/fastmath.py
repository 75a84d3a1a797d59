"""``exp`` and the sigmoid in plain arithmetic, for float32 and float64.

Why not ``math.exp``: Numba's PyPI build has no working SVML here, so ``math.exp`` stays a
scalar libm call and the per-run loop of a kernel cannot be vectorised. These functions use
only adds, multiplies, fused multiply-adds, compares/selects, integer bit tricks and (float64)
one table lookup, so LLVM turns a loop of them into SIMD code, and every lane computes exactly
the same IEEE operations: a run's bits do not depend on the lane, the vector width, the thread
it runs in, or the CPU (``fma`` is exactly rounded by definition).

Both reduce x to 2**k · e**r with k = round(x / step) and r = x − k·step, the Cody-Waite way
(step split in two so k·STEP_HI is exact), and evaluate e**r − 1 = r + r²·q(r), q a near-minimax
(Chebyshev) fit of (e**r − 1 − r) / r²; ``scripts/derive_exp_polynomial.py`` derives the
coefficients and prints each fit's error. Rounding k uses the "magic number" trick: adding
1.5 · 2**52 (float32: 1.5 · 2**23) leaves k in the low mantissa bits, which also give 2**k by
integer arithmetic.

- float64: step = ln2/32 and a 32-entry table of 2**(j/32) (Tang's method, as vector libms do):
  |r| ≤ ln2/64 needs only a degree-6 polynomial. Within 1 ulp of the correctly rounded value.
- float32: step = ln2, |r| ≤ ln2/2, degree 6. Within about 1 ulp.

That meets the SPEC's budget (its reference-figure section: an exp within about 1 ulp keeps
every loss curve inside 1e-12 relative); ``tests/test_fastmath.py`` measures it. Outside the
normal range: arguments above ln(max float) give ``inf``; arguments whose result would be
below about the smallest normal number (x < −707 in float64, x < −86.5 in float32) give
``0.0`` (no subnormals); NaN gives NaN. ``sigmoid`` at either limit gives exactly what the
IEEE formula 1 / (1 + exp(−x)) gives.

Usage inside ``@njit`` code: ``exp(x)``, ``sigmoid(x)``, ``fma(a, b, c)``, ``like(x, 0.5)`` (a
constant of x's float type, so float32 code is not promoted to float64 by a Python literal).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

# float64: k = round(32 x / ln 2), exp(x) = 2**(k >> 5) · 2**((k & 31) / 32) · e**r. The table
# lookup (one gather per vector) replaces five multiply-adds of a table-free degree-11 version,
# measured ~10 % faster on the whole kernel. The table holds 2 · 2**(j/32), correctly rounded
# (from decimal); the 2 pairs with 2**(k−1) below, which keeps k = 1024 finite.
_TABLE_BITS = 5
_F64_TABLE = dict(
    magic=6755399441055744.0,
    scaled_log2e=1.4426950408889634 * 32,  # 32 / ln 2 (a product of exact powers of two: exact)
    ln2_hi=6.93147180369123816490e-01 / 32,  # 32 significant bits: k * LN2_HI exact for |k| < 2**21
    ln2_lo=1.90821492927058770002e-10 / 32,
    lo=-707.0,  # below: result < 1e-307, returned as 0 (keeps 2**(k-1) normal after the shift)
    hi=710.0,
    # q for |r| <= ln2/64 · 1.001: fit error 2.2e-19 absolute (0.002 ulp)
    q=(0.5, 0.16666666666581015, 0.041666666666559604, 0.008333362483384042, 0.001388892532644038),
)


def _exp2_table():
    import decimal

    with decimal.localcontext() as context:
        context.prec = 40
        return np.array([float(2 * decimal.Decimal(2) ** (decimal.Decimal(j) / 32)) for j in range(32)])


_TWO_POW_J32 = _exp2_table()

_F32 = dict(
    magic=np.float32(12582912.0),  # 1.5 * 2**23
    log2e=np.float32(1.4426950408889634),
    ln2_hi=np.float32(0.693359375),  # 355/512: k*LN2_HI exact in float32 for |k| <= 128
    ln2_lo=np.float32(-2.12194440e-4),
    lo=np.float32(-86.5),
    hi=np.float32(89.0),  # exp(89) overflows to inf by itself, and k stays <= 128
    # q for |r| <= ln2/2: fit error 7.8e-9 absolute (0.13 ulp of float32)
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
    """float32: 2**(k-1) for t == magic + k, k integral, by building the exponent field from t's bits.

    (k - 1 rather than k so that k = 128, reached just below ln(FLT_MAX), stays finite; the caller
    multiplies by 2.)
    """
    if not (isinstance(t, types.Float) and t.bitwidth == 32):
        return None

    def codegen(context, builder, signature, args):
        (value,) = args
        int_type, bias, mantissa_bits = ir.IntType(32), 127, 23
        magic_bits = int(np.float32(_F32["magic"]).view(np.int32))
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


@intrinsic
def _table_index(typingctx, t):
    """(k & 31) for t == magic + k: the table entry of the 32-entry exp."""
    if not (isinstance(t, types.Float) and t.bitwidth == 64):
        return None

    def codegen(context, builder, signature, args):
        magic_bits = int(np.float64(_F64_TABLE["magic"]).view(np.int64))
        bits = builder.bitcast(args[0], ir.IntType(64))
        k = builder.sub(bits, ir.Constant(ir.IntType(64), magic_bits))
        return builder.and_(k, ir.Constant(ir.IntType(64), 31))

    return types.int64(t), codegen


@intrinsic
def _pow2_from_magic_high(typingctx, t):
    """2**((k >> 5) - 1) for t == magic + k (k >> 5 rounds toward −inf, as the table needs)."""
    if not (isinstance(t, types.Float) and t.bitwidth == 64):
        return None

    def codegen(context, builder, signature, args):
        int64 = ir.IntType(64)
        magic_bits = int(np.float64(_F64_TABLE["magic"]).view(np.int64))
        k = builder.sub(builder.bitcast(args[0], int64), ir.Constant(int64, magic_bits))
        exponent = builder.add(builder.ashr(k, ir.Constant(int64, _TABLE_BITS)), ir.Constant(int64, 1022))
        return builder.bitcast(builder.shl(exponent, ir.Constant(int64, 52)), args[0].type)

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


def _exp_and_sigmoid(exp_core, lo, one):
    """The public ``exp`` and ``sigmoid`` implementations around one ``exp_core``."""

    def exp_impl(x):
        return _zero_below(exp_core(x), x, lo)

    def sigmoid_impl(x):
        # exp_core suffices: where it differs from exp (−x < lo), 1 + exp(−x) rounds to 1 either way.
        # A true division: measured faster than Newton steps from a bit-trick estimate on Zen 4,
        # where the divider is a separate unit and the FMA pipes are the bottleneck.
        return one / (one + exp_core(-x))

    return exp_impl, sigmoid_impl


def _make_exp32(c):
    magic, log2e, ln2_hi, ln2_lo, lo, hi = (c[key] for key in ("magic", "log2e", "ln2_hi", "ln2_lo", "lo", "hi"))
    q0, q1, q2, q3, q4 = c["q"]
    two = np.float32(2.0)
    from numba import njit

    @njit(inline="always")
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
        q = fma(q4, r2 * r2, fma(fma(q3, r, q2), r2, fma(q1, r, q0)))  # Estrin: a shorter chain
        expm1_r = fma(r2, q, r)
        return fma(expm1_r, two, two) * _pow2_from_magic(t)  # 2 (1 + expm1 r) 2**(k-1)

    return _exp_and_sigmoid(exp_core, lo, np.float32(1.0))


def _make_exp64(c):
    magic, scaled_log2e, ln2_hi, ln2_lo, lo, hi = (c[key] for key in ("magic", "scaled_log2e", "ln2_hi", "ln2_lo", "lo", "hi"))
    q0, q1, q2, q3, q4 = c["q"]
    table = _TWO_POW_J32
    from numba import njit

    @njit(inline="always")
    def exp_core(x):
        """exp(x) for x >= lo; below lo it gives exp(lo) instead of a smaller number."""
        xc = _clamp(x, lo, hi)
        t = fma(xc, scaled_log2e, magic)  # round(32 x / ln 2) + magic
        k = t - magic
        r = fma(-k, ln2_hi, xc)
        r = fma(-k, ln2_lo, r)
        q = fma(fma(fma(fma(q4, r, q3), r, q2), r, q1), r, q0)
        expm1_r = fma(r * r, q, r)
        entry = table[_table_index(t)]  # 2 · 2**(j/32)
        return fma(entry, expm1_r, entry) * _pow2_from_magic_high(t)

    return _exp_and_sigmoid(exp_core, lo, 1.0)


_IMPLS = {64: _make_exp64(_F64_TABLE), 32: _make_exp32(_F32)}


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
