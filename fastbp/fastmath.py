"""``exp`` and the sigmoid in plain arithmetic, for float32 and float64.

Why not ``math.exp``: Numba's PyPI build has no working SVML here, so ``math.exp`` stays a
scalar libm call and the per-run loop of a kernel cannot be vectorised. These functions use
only adds, multiplies, fused multiply-adds, divisions, compares/selects and integer bit tricks,
so LLVM turns a loop of them into SIMD code, and every lane computes exactly the same IEEE
operations: a run's bits do not depend on the lane, the vector width, the thread it runs in,
or the CPU (``fma`` is exactly rounded by definition).

Both reduce x to 2**k · e**r with k = round(x / ln 2) and |r| ≤ ln2/2, the Cody-Waite way (ln 2
split in two so k·LN2_HI is exact). Rounding k uses the "magic number" trick: adding 1.5 · 2**52
(float32: 1.5 · 2**23) leaves k in the low mantissa bits, which also give 2**k by integer
arithmetic. Then e**r:

- float64: from its [6/6] Padé approximant, the form Cephes' exp uses:
  e**r ≈ (Q + rP) / (Q − rP) = 1 + 2rP / (Q − rP), with Q = Q(r²) and rP = r·P(r²) the even and
  odd parts of N(r) = Σ c_j r**j, c_j = (2n − j)! n! / ((2n)! j! (n − j)!)
  (``pade_exp_coefficients``); approximation error 2e-19 relative (0.002 ulp). No table: a
  table lookup is a vector gather, which on Zen 4 cost more than all of this arithmetic, and the
  division runs on its own unit. Within 1.5 ulp of the correctly rounded value (1.3 measured).
- float32: a degree-6 polynomial, e**r − 1 = r + r²·q(r), q a near-minimax (Chebyshev) fit that
  ``scripts/derive_exp_polynomial.py`` derives (fit error 0.13 ulp). Within 1 ulp.

``sigmoid`` is the IEEE formula 1 / (1 + exp(−x)) on top: within 2.5 ulp of the correctly
rounded σ(x). Where σ saturates towards 1 (e**−x ≪ 1), exp's last-bit error is far below the
rounding of 1 + e**−x, which therefore gives the same double as with libm's exp except at rare
near-ties (odds about e**−x): that keeps the (1 − a) of the gradients, a cancellation, faithful
to the spreadsheet. That meets the model's accuracy budget (docs/model.md "Accuracy": an exp within about
1 ulp keeps every loss curve inside 1e-12 relative); ``tests/test_fastmath.py`` measures it
against 40-digit decimal.

Outside the normal range: arguments above ln(max float) give ``inf``; arguments whose result
would be below about the smallest normal number (x < −707 in float64, x < −86.5 in float32)
give ``0.0`` (no subnormals); NaN gives NaN. ``sigmoid`` at either limit gives exactly what the
IEEE formula gives.

Usage inside ``@njit`` code: ``exp(x)``, ``sigmoid(x)``, ``fma(a, b, c)``, ``like(x, 0.5)`` (a
constant of x's float type, so float32 code is not promoted to float64 by a Python literal).
"""

import math
from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload


def pade_exp_coefficients(n):
    """Q and P of e**r's [n/n] Padé approximant as exact fractions, constant term first.

    N(r) = Σ c_j r**j with c_j = (2n − j)! n! / ((2n)! j! (n − j)!), and
    e**r ≈ N(r) / N(−r) = (Q(r²) + r·P(r²)) / (Q(r²) − r·P(r²)).
    """
    f = math.factorial
    c = [Fraction(f(2 * n - j) * f(n), f(2 * n) * f(j) * f(n - j)) for j in range(n + 1)]
    return tuple(c[0::2]), tuple(c[1::2])


# lo and hi bound x: below lo, exp's result is less than 5 times the smallest normal number and
# is returned as 0 (which also keeps 2**(k−1) normal); above hi, the result overflows to inf by
# itself (and k stays at most the largest exponent + 1). ln 2 = LN2_HI + LN2_LO with LN2_HI's low
# mantissa bits zero, so k·LN2_HI is exact for every k in range (fdlibm's split for float64,
# 355/512 for float32).
_F64 = {
    "magic": 6755399441055744.0,  # 1.5 * 2**52
    "log2e": 1.4426950408889634,
    "ln2_hi": 6.93147180369123816490e-01,
    "ln2_lo": 1.90821492927058770002e-10,
    "lo": -707.0,
    "hi": 710.0,
    "pade": tuple(tuple(float(c) for c in part) for part in pade_exp_coefficients(6)),  # (Q, P)
}
_F32 = {
    "magic": np.float32(12582912.0),  # 1.5 * 2**23
    "log2e": np.float32(1.4426950408889634),
    "ln2_hi": np.float32(0.693359375),
    "ln2_lo": np.float32(-2.12194440e-4),
    "lo": np.float32(-86.5),
    "hi": np.float32(89.0),
    # q for |r| <= ln2/2: fit error 7.8e-9 absolute (0.13 ulp of float32)
    "q": tuple(
        np.float32(c)
        for c in (0.5, 0.1666657702523905, 0.04166655466160214, 0.008363173134292821, 0.0013926176194609642)
    ),
}


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
    """2**(k−1) for t == magic + k, k integral, by building the exponent field from t's bits.

    (k − 1 rather than k so that k = largest exponent + 1, reached just below ln(max float),
    stays finite; the caller folds the factor 2 into its constants.)
    """
    if not (isinstance(t, types.Float) and t.bitwidth in (32, 64)):
        return None
    width = t.bitwidth
    magic = (_F64 if width == 64 else _F32)["magic"]
    magic_bits = int(np.asarray(magic).view(f"int{width}"))
    bias, mantissa_bits = (1023, 52) if width == 64 else (127, 23)

    def codegen(context, builder, signature, args):
        int_type = ir.IntType(width)
        bits = builder.bitcast(args[0], int_type)  # magic_bits + k
        exponent = builder.add(bits, ir.Constant(int_type, bias - 1 - magic_bits))
        return builder.bitcast(builder.shl(exponent, ir.Constant(int_type, mantissa_bits)), args[0].type)

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


def _reduce(c):
    """k and r for x in [lo, hi]: x = k·ln 2 + r, |r| ≤ ln2/2; returns (magic + k, r)."""
    magic, log2e, ln2_hi, ln2_lo = c["magic"], c["log2e"], c["ln2_hi"], c["ln2_lo"]

    @njit(inline="always")
    def reduce(x):
        t = fma(x, log2e, magic)  # round(x / ln 2) + magic
        k = t - magic
        r = fma(-k, ln2_hi, x)
        return t, fma(-k, ln2_lo, r)

    return reduce


def _exp_core64(c):
    reduce, lo, hi = _reduce(c), c["lo"], c["hi"]
    (q0, q1, q2, q3), (p0, p1, p2) = c["pade"]

    @njit(inline="always")
    def exp_core(x):
        """(m, s) with exp(x) = m·s, s a power of two, for x >= lo (below: exp(lo))."""
        # Selects, not branches, so the loop around this stays vectorisable.
        t, r = reduce(_clamp(x, lo, hi))
        s = r * r
        Q = fma(fma(fma(q3, s, q2), s, q1), s, q0)
        rP = r * fma(fma(p2, s, p1), s, p0)
        fraction = rP / (Q - rP)  # e**r = 1 + 2 fraction
        return fma(fraction, 4.0, 2.0), _pow2_from_magic(t)  # 2 e**r and 2**(k−1)

    return exp_core


def _exp_core32(c):
    reduce, lo, hi = _reduce(c), c["lo"], c["hi"]
    q0, q1, q2, q3, q4 = c["q"]
    two = np.float32(2.0)

    @njit(inline="always")
    def exp_core(x):
        """(m, s) with exp(x) = m·s, s a power of two, for x >= lo (below: exp(lo))."""
        t, r = reduce(_clamp(x, lo, hi))
        r2 = r * r
        q = fma(q4, r2 * r2, fma(fma(q3, r, q2), r2, fma(q1, r, q0)))  # Estrin: a shorter chain
        expm1_r = fma(r2, q, r)
        return fma(expm1_r, two, two), _pow2_from_magic(t)  # 2 e**r and 2**(k−1)

    return exp_core


def _exp_and_sigmoid(exp_core, lo, one):
    """The compiled ``exp`` and ``sigmoid`` around one ``exp_core`` (plain functions: the overloads
    below compile them inline)."""

    def exp_impl(x):
        mantissa, scale = exp_core(x)
        return _zero_below(mantissa * scale, x, lo)

    def sigmoid_impl(x):
        # exp_core suffices: where it differs from exp (−x < lo), 1 + exp(−x) rounds to 1 either way.
        # The scaling by a power of two is exact, so one fma gives the same bits as 1 + exp(−x),
        # one operation sooner. A true division: Newton steps from a bit-trick estimate measured
        # slower on Zen 4, where the divider is a unit of its own.
        mantissa, scale = exp_core(-x)
        return one / fma(mantissa, scale, one)

    return exp_impl, sigmoid_impl


_IMPLS = {
    64: _exp_and_sigmoid(_exp_core64(_F64), _F64["lo"], 1.0),
    32: _exp_and_sigmoid(_exp_core32(_F32), _F32["lo"], np.float32(1.0)),
}


@overload(exp, inline="always")
def _exp_overload(x):
    if isinstance(x, types.Float) and x.bitwidth in _IMPLS:
        return _IMPLS[x.bitwidth][0]


@overload(sigmoid, inline="always")
def _sigmoid_overload(x):
    if isinstance(x, types.Float) and x.bitwidth in _IMPLS:
        return _IMPLS[x.bitwidth][1]


@overload(like, inline="always")
def _like_overload(x, value):
    if isinstance(x, types.Float):
        if x.bitwidth == 32:
            return lambda x, value: np.float32(value)
        return lambda x, value: np.float64(value)
