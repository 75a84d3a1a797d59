"""The model (docs/model.md) for one run, in its own names.

2 inputs → 2 hidden sigmoid units (w1…w4) → 2 output sigmoid units (w5…w8), no biases,
E_total = ½(t1 − a_o1)² + ½(t2 − a_o2)², plain gradient descent. Every kernel and the step
table call these functions, so the equations exist once in the package. They are Numba
functions inlined into their callers and generic over float32/float64 (all constants go
through ``like`` so float32 code stays float32). Each forward quantity sits beside the local
derivative it feeds: σ'(x) = σ(x)(1 − σ(x)).
"""

from numba import njit

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
def loss(t1, t2, a_o1, a_o2):
    """docs/model.md "Forward pass and loss": returns E1, E2, E_total."""
    half = like(a_o1, 0.5)
    E1 = half * ((t1 - a_o1) * (t1 - a_o1))
    E2 = half * ((t2 - a_o2) * (t2 - a_o2))
    return E1, E2, E1 + E2


@njit(inline="always")
def backward(i1, i2, t1, t2, w5, w6, w7, w8, a_h1, a_h2, a_o1, a_o2):
    """docs/model.md "Backward pass": returns dE_dw1 … dE_dw8, all from the same forward values."""
    one = like(a_o1, 1.0)
    # δ of each output unit: ∂E/∂o = (a_o − t) · σ'(o)
    delta_o1 = (a_o1 - t1) * a_o1 * (one - a_o1)
    delta_o2 = (a_o2 - t2) * a_o2 * (one - a_o2)
    dE_dw5 = delta_o1 * a_h1
    dE_dw6 = delta_o1 * a_h2
    dE_dw7 = delta_o2 * a_h1
    dE_dw8 = delta_o2 * a_h2
    dE_da_h1 = fma(delta_o1, w5, delta_o2 * w7)
    dE_da_h2 = fma(delta_o1, w6, delta_o2 * w8)
    # σ'(h2) = a_h2 (1 − a_h2) for w3 and w4 — public copies of the workbook use a_h1 there.
    delta_h1 = dE_da_h1 * a_h1 * (one - a_h1)
    delta_h2 = dE_da_h2 * a_h2 * (one - a_h2)
    dE_dw1 = delta_h1 * i1
    dE_dw2 = delta_h1 * i2
    dE_dw3 = delta_h2 * i1
    dE_dw4 = delta_h2 * i2
    return dE_dw1, dE_dw2, dE_dw3, dE_dw4, dE_dw5, dE_dw6, dE_dw7, dE_dw8


@njit(inline="always")
def update(w1, w2, w3, w4, w5, w6, w7, w8, g1, g2, g3, g4, g5, g6, g7, g8, lr):
    """docs/model.md "Update and steps": w ← w − lr · ∂E/∂w for every weight at once (fused: one rounding)."""
    return (
        fma(-lr, g1, w1),
        fma(-lr, g2, w2),
        fma(-lr, g3, w3),
        fma(-lr, g4, w4),
        fma(-lr, g5, w5),
        fma(-lr, g6, w6),
        fma(-lr, g7, w7),
        fma(-lr, g8, w8),
    )


@njit(inline="always")
def total_loss(i1, i2, t1, t2, w1, w2, w3, w4, w5, w6, w7, w8):
    """E_total at the given weights (forward pass and loss only)."""
    h1, a_h1, h2, a_h2, o1, a_o1, o2, a_o2 = forward(i1, i2, w1, w2, w3, w4, w5, w6, w7, w8)
    return loss(t1, t2, a_o1, a_o2)[2]
