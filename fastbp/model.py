"""The model (docs/model.md) for one run, in its own names.

2 inputs → 2 hidden sigmoid units (w1…w4) → 2 output sigmoid units (w5…w8), optionally with a
bias per unit (b_h1, b_h2, b_o1, b_o2), E_total = ½(t1 − a_o1)² + ½(t2 − a_o2)², plain
gradient descent with one learning rate, or one per layer. Every kernel and the step table
call these functions, so the equations exist once in the package. They are Numba functions,
generic over float32/float64 (all constants go through ``like`` so float32 code stays float32),
that end up inlined into their callers: the 2-2-2 ones by Numba, the general ones (``activate``,
``unit_delta``, ``half_square``) by LLVM (kernels_step.py says why). Each forward quantity sits beside the local
derivative it feeds: σ'(x) = σ(x)(1 − σ(x)).
"""

from numba import njit

from fastbp.compile_time import SIGMOID, TANH
from fastbp.fastmath import fma, like, sigmoid


@njit(inline="always")
def hidden_layer(i1, i2, w1, w2, w3, w4):
    """docs/model.md "Forward pass and loss", hidden units: returns h1, a_h1, h2, a_h2."""
    # a*b + c*d as fma(a, b, c*d): one rounding fewer than the spreadsheet, the same on every CPU.
    h1 = fma(w1, i1, w2 * i2)
    h2 = fma(w3, i1, w4 * i2)
    return h1, sigmoid(h1), h2, sigmoid(h2)


@njit(inline="always")
def output_layer(w5, w6, w7, w8, a_h1, a_h2):
    """docs/model.md "Forward pass and loss", output units: returns o1, a_o1, o2, a_o2."""
    o1 = fma(w5, a_h1, w6 * a_h2)
    o2 = fma(w7, a_h1, w8 * a_h2)
    return o1, sigmoid(o1), o2, sigmoid(o2)


@njit(inline="always")
def forward(i1, i2, w1, w2, w3, w4, w5, w6, w7, w8):
    """docs/model.md "Forward pass and loss": returns h1, a_h1, h2, a_h2, o1, a_o1, o2, a_o2."""
    h1, a_h1, h2, a_h2 = hidden_layer(i1, i2, w1, w2, w3, w4)
    return (h1, a_h1, h2, a_h2) + output_layer(w5, w6, w7, w8, a_h1, a_h2)


@njit(inline="always")
def bias_addend(b):
    """A bias as the last term of its unit's sum (docs/model.md "Biases"): b, with +0 made −0.

    The biased sums below are ``fma(w1, i1, fma(w2, i2, b))``: with b = −0 the inner fma is
    w2·i2 to the bit (x + (−0) = x for every x, −0 included), so a zero bias gives the
    bias-free sum, bit for bit. With b = +0 a sum of two −0 products would become +0.
    Computed as −(0 − b), which IEEE arithmetic (no fast-math) may not simplify.
    """
    return -(like(b, 0.0) - b)


@njit(inline="always")
def hidden_layer_biased(i1, i2, w1, w2, w3, w4, b_h1, b_h2):
    """``hidden_layer`` with biases: h1, a_h1, h2, a_h2.

    Pass ``bias_addend(b)`` where a zero sum's sign is shown (the step table's h1, h2); b itself
    where only σ of the sum is used, since σ(+0) = σ(−0).
    """
    # The bias joins the fma chain: as many roundings as the bias-free sum, and its very bits at b = 0.
    h1 = fma(w1, i1, fma(w2, i2, b_h1))
    h2 = fma(w3, i1, fma(w4, i2, b_h2))
    return h1, sigmoid(h1), h2, sigmoid(h2)


@njit(inline="always")
def output_layer_biased(w5, w6, w7, w8, a_h1, a_h2, b_o1, b_o2):
    """``output_layer`` with biases (passed as in ``hidden_layer_biased``): o1, a_o1, o2, a_o2."""
    o1 = fma(w5, a_h1, fma(w6, a_h2, b_o1))
    o2 = fma(w7, a_h1, fma(w8, a_h2, b_o2))
    return o1, sigmoid(o1), o2, sigmoid(o2)


@njit(inline="always")
def forward_biased(i1, i2, w1, w2, w3, w4, w5, w6, w7, w8, b_h1, b_h2, b_o1, b_o2):
    """``forward`` with biases (passed as in ``hidden_layer_biased``): h1, a_h1, h2, a_h2, o1, a_o1, o2, a_o2."""
    h1, a_h1, h2, a_h2 = hidden_layer_biased(i1, i2, w1, w2, w3, w4, b_h1, b_h2)
    return (h1, a_h1, h2, a_h2) + output_layer_biased(w5, w6, w7, w8, a_h1, a_h2, b_o1, b_o2)


@njit(inline="always")
def loss(t1, t2, a_o1, a_o2):
    """docs/model.md "Forward pass and loss": returns E1, E2, E_total."""
    half = like(a_o1, 0.5)
    E1 = half * ((t1 - a_o1) * (t1 - a_o1))
    E2 = half * ((t2 - a_o2) * (t2 - a_o2))
    return E1, E2, E1 + E2


@njit(inline="always")
def sigmoid_prime(a):
    """σ'(x) = σ(x)(1 − σ(x)) from a = σ(x)."""
    return a * (like(a, 1.0) - a)


@njit(inline="always")
def sigmoid_second(a):
    """σ''(x) = σ'(x)(1 − 2σ(x)) from a = σ(x) (the Hessian's, docs/model.md "Sharpness")."""
    return sigmoid_prime(a) * (like(a, 1.0) - like(a, 2.0) * a)


@njit(inline="always")
def output_delta(a_o, t):
    """δ of an output unit: ∂E/∂o = (a_o − t) · σ'(o), rounded in this order."""
    return (a_o - t) * a_o * (like(a_o, 1.0) - a_o)


@njit(inline="always")
def hidden_error(delta_o1, delta_o2, w5, w6, w7, w8):
    """∂E/∂a_h1, ∂E/∂a_h2: the output deltas sent back through w5 … w8."""
    return fma(delta_o1, w5, delta_o2 * w7), fma(delta_o1, w6, delta_o2 * w8)


# ---------------------------------------------------------------------------------------------
# Any network with one hidden layer (docs/model.md "Networks"), one unit at a time: the training
# kernel sums a unit's inputs as the 2-2-2 functions above do (the last term first, each earlier
# one fused in), so that on the exercise's network its bits are theirs.


@njit
def activate(x, kind):
    """A unit's output from its sum: σ(x), tanh(x) or x (``kind``: compile_time.SIGMOID, TANH, LINEAR)."""
    if kind == SIGMOID:
        return sigmoid(x)
    if kind == TANH:
        # 2σ(2x) − 1: the vectorisable exp of fastmath, within a few ulp of 1 in absolute terms
        # (what the loss and the gradients see; tanh's relative accuracy near 0 is not needed).
        two = like(x, 2.0)
        return fma(two, sigmoid(two * x), like(x, -1.0))
    return x


@njit
def unit_delta(error, a, kind):
    """δ of a unit: ∂E/∂(its output) · its activation's slope, from a = its output.

    σ' = a(1 − a) (rounded (error · a)(1 − a), as ``output_delta``), tanh' = 1 − a², linear 1."""
    one = like(a, 1.0)
    if kind == SIGMOID:
        return error * a * (one - a)
    if kind == TANH:
        return error * fma(-a, a, one)
    return error


@njit
def half_square(t, a):
    """A pattern's output's share of E: ½(t − a)²."""
    return like(a, 0.5) * ((t - a) * (t - a))


@njit(inline="always")
def backward_with_deltas(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2):
    """docs/model.md "Backward pass": dE_dw1 … dE_dw8, then δ_h1, δ_h2, δ_o1, δ_o2.

    δ of a unit is ∂E_total/∂(its sum). A bias adds 1 × itself to its unit's sum, so a unit's δ
    is also its bias's gradient (docs/model.md "Biases").
    """
    one = like(a_o1, 1.0)
    delta_o1, delta_o2 = output_delta(a_o1, t1), output_delta(a_o2, t2)
    dE_dw5 = delta_o1 * a_h1
    dE_dw6 = delta_o1 * a_h2
    dE_dw7 = delta_o2 * a_h1
    dE_dw8 = delta_o2 * a_h2
    dE_da_h1, dE_da_h2 = hidden_error(delta_o1, delta_o2, w5, w6, w7, w8)
    # σ'(h2) = a_h2 (1 − a_h2) for w3 and w4 — public copies of the workbook use a_h1 there.
    delta_h1 = dE_da_h1 * a_h1 * (one - a_h1)
    delta_h2 = dE_da_h2 * a_h2 * (one - a_h2)
    dE_dw1 = delta_h1 * i1
    dE_dw2 = delta_h1 * i2
    dE_dw3 = delta_h2 * i1
    dE_dw4 = delta_h2 * i2
    return (
        dE_dw1,
        dE_dw2,
        dE_dw3,
        dE_dw4,
        dE_dw5,
        dE_dw6,
        dE_dw7,
        dE_dw8,
        delta_h1,
        delta_h2,
        delta_o1,
        delta_o2,
    )


@njit(inline="always")
def backward(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2):
    """docs/model.md "Backward pass": returns dE_dw1 … dE_dw8, all from the same forward values."""
    g = backward_with_deltas(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2)
    return g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]


@njit(inline="always")
def bias_gradients(delta_h1, delta_h2, delta_o1, delta_o2, shared):
    """docs/model.md "Biases": the gradients applied to b_h1, b_h2, b_o1, b_o2.

    Per unit, each bias's own δ. Shared per layer (b_h1 = b_h2, b_o1 = b_o2), the sum over the
    units that share it, for both: the two copies take the same step and stay equal.
    """
    if shared:
        dE_db_h = delta_h1 + delta_h2
        dE_db_o = delta_o1 + delta_o2
        return dE_db_h, dE_db_h, dE_db_o, dE_db_o
    return delta_h1, delta_h2, delta_o1, delta_o2


@njit(inline="always")
def update_per_layer(w1, w2, w3, w4, w5, w6, w7, w8, g1, g2, g3, g4, g5, g6, g7, g8, lr_hidden, lr_output):
    """docs/model.md "Learning rate per layer": w ← w − rate · ∂E/∂w, lr_hidden for w1…w4, lr_output for w5…w8."""
    return (
        fma(-lr_hidden, g1, w1),
        fma(-lr_hidden, g2, w2),
        fma(-lr_hidden, g3, w3),
        fma(-lr_hidden, g4, w4),
        fma(-lr_output, g5, w5),
        fma(-lr_output, g6, w6),
        fma(-lr_output, g7, w7),
        fma(-lr_output, g8, w8),
    )


@njit(inline="always")
def update(w1, w2, w3, w4, w5, w6, w7, w8, g1, g2, g3, g4, g5, g6, g7, g8, lr):
    """docs/model.md "Update and steps": w ← w − lr · ∂E/∂w for every weight at once (fused: one rounding)."""
    # One rate for both layers: the per-layer rule's very operations, so equal rates agree to the bit.
    return update_per_layer(w1, w2, w3, w4, w5, w6, w7, w8, g1, g2, g3, g4, g5, g6, g7, g8, lr, lr)


@njit(inline="always")
def update_biases(b_h1, b_h2, b_o1, b_o2, g_h1, g_h2, g_o1, g_o2, lr_hidden, lr_output):
    """docs/model.md "Biases": a trained bias steps like a weight of its layer, b ← b − rate · ∂E/∂b."""
    return (
        fma(-lr_hidden, g_h1, b_h1),
        fma(-lr_hidden, g_h2, b_h2),
        fma(-lr_output, g_o1, b_o1),
        fma(-lr_output, g_o2, b_o2),
    )
