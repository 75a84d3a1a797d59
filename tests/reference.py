"""An independent, plainly written float64 reference for the model (docs/model.md).

This module imports nothing from fastbp: only ``math``.  It is written to be read next to
docs/model.md, in the model's own names, one run at a time, with ``math.exp``.  Tests compare the
package against it.

Conventions (docs/model.md, "The step table" and "The loss curve"):
  * ``step_row`` evaluates one row: forward pass, loss and backward pass at the given weights.
  * ``step_table`` row k holds the weights *before* update k and everything computed from them;
    a table of N steps has N rows (steps 0 .. N-1).
  * ``loss_curve`` is E_total at steps 0, 1, ..., N (N + 1 values); with ``record_every=k`` at
    steps 0, k, 2k, ... and always N; with ``record_every=0`` only at step N.
"""

import math

# Tolerances, named once.  docs/model.md "Accuracy": the spreadsheet keeps 15 significant digits, compare
# with a relative tolerance of 1e-12; an exp within about 1 ulp keeps every loss curve inside
# 1e-12 relative of the exact-exp curve.
RTOL_FLOAT64 = 1e-12
# float32 kernels: eps(float32) ~ 1.2e-7; a few steps of a well-conditioned loss stay within
# ~1e-5 relative.
RTOL_FLOAT32 = 1e-5
# float32 loss curves over up to thousands of steps, on the floored measure of test_sweep.py
# (|E - E_ref| <= rtol (|E_ref| + max E_ref)); measured <= 6e-6 at 200 and 2,000 steps.
RTOL_FLOAT32_CURVES = 5e-5
# Central differences of E_total in float64: truncation ~h^2, rounding ~eps*E/h.
FD_STEP = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-9

# The step table's column names, in its order (docs/model.md "The step table").
COLUMNS = (
    "t1",
    "t2",
    "i1",
    "i2",
    "w1",
    "w2",
    "w3",
    "w4",
    "h1",
    "a_h1",
    "h2",
    "a_h2",
    "w5",
    "w6",
    "w7",
    "w8",
    "o1",
    "a_o1",
    "o2",
    "a_o2",
    "E1",
    "E2",
    "E_total",
    "dE_dw1",
    "dE_dw2",
    "dE_dw3",
    "dE_dw4",
    "dE_dw5",
    "dE_dw6",
    "dE_dw7",
    "dE_dw8",
)
WEIGHT_NAMES = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8")
GRADIENT_NAMES = tuple("dE_d" + w for w in WEIGHT_NAMES)

# The default scenario (the course's values).
COURSE_INPUTS = (0.05, 0.1)
COURSE_TARGETS = (0.5, 0.5)
COURSE_WEIGHTS = (0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55)
OTHER_EDITION_TARGETS = (0.01, 0.99)
REPORT_LRS = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)


def sigma(x):
    """σ(x) = 1 / (1 + exp(−x))"""
    return 1.0 / (1.0 + math.exp(-x))


def step_row(i1, i2, t1, t2, w, wrong_hidden_trap=False):
    """Forward pass, loss and backward pass at weights w = (w1, ..., w8).

    Returns a dict of the step table's 31 columns.

    ``wrong_hidden_trap=True`` reproduces the known mistake of several public copies of the
    spreadsheet: dE/dw3 and dE/dw4 computed with a_h1(1 − a_h1) instead of a_h2(1 − a_h2).
    It exists only so that tests can show the package does *not* do that.
    """
    w1, w2, w3, w4, w5, w6, w7, w8 = (float(x) for x in w)

    # Forward pass and loss
    h1 = w1 * i1 + w2 * i2
    h2 = w3 * i1 + w4 * i2
    a_h1 = sigma(h1)
    a_h2 = sigma(h2)
    o1 = w5 * a_h1 + w6 * a_h2
    o2 = w7 * a_h1 + w8 * a_h2
    a_o1 = sigma(o1)
    a_o2 = sigma(o2)
    E1 = 0.5 * (t1 - a_o1) ** 2
    E2 = 0.5 * (t2 - a_o2) ** 2
    E_total = E1 + E2

    # Backward pass (all from the same forward values)
    dE_dw5 = (a_o1 - t1) * a_o1 * (1 - a_o1) * a_h1
    dE_dw6 = (a_o1 - t1) * a_o1 * (1 - a_o1) * a_h2
    dE_dw7 = (a_o2 - t2) * a_o2 * (1 - a_o2) * a_h1
    dE_dw8 = (a_o2 - t2) * a_o2 * (1 - a_o2) * a_h2
    dE_da_h1 = (a_o1 - t1) * a_o1 * (1 - a_o1) * w5 + (a_o2 - t2) * a_o2 * (1 - a_o2) * w7
    dE_da_h2 = (a_o1 - t1) * a_o1 * (1 - a_o1) * w6 + (a_o2 - t2) * a_o2 * (1 - a_o2) * w8
    dE_dw1 = dE_da_h1 * a_h1 * (1 - a_h1) * i1
    dE_dw2 = dE_da_h1 * a_h1 * (1 - a_h1) * i2
    if wrong_hidden_trap:
        dE_dw3 = dE_da_h2 * a_h1 * (1 - a_h1) * i1
        dE_dw4 = dE_da_h2 * a_h1 * (1 - a_h1) * i2
    else:
        dE_dw3 = dE_da_h2 * a_h2 * (1 - a_h2) * i1
        dE_dw4 = dE_da_h2 * a_h2 * (1 - a_h2) * i2

    return {
        "t1": float(t1),
        "t2": float(t2),
        "i1": float(i1),
        "i2": float(i2),
        "w1": w1,
        "w2": w2,
        "w3": w3,
        "w4": w4,
        "h1": h1,
        "a_h1": a_h1,
        "h2": h2,
        "a_h2": a_h2,
        "w5": w5,
        "w6": w6,
        "w7": w7,
        "w8": w8,
        "o1": o1,
        "a_o1": a_o1,
        "o2": o2,
        "a_o2": a_o2,
        "E1": E1,
        "E2": E2,
        "E_total": E_total,
        "dE_dw1": dE_dw1,
        "dE_dw2": dE_dw2,
        "dE_dw3": dE_dw3,
        "dE_dw4": dE_dw4,
        "dE_dw5": dE_dw5,
        "dE_dw6": dE_dw6,
        "dE_dw7": dE_dw7,
        "dE_dw8": dE_dw8,
    }


def update(row, lr):
    """w ← w − lr · ∂E/∂w, every weight at once from the gradients at the old weights."""
    return tuple(row[w] - lr * row["dE_d" + w] for w in WEIGHT_NAMES)


def step_table(lr, steps, inputs=COURSE_INPUTS, targets=COURSE_TARGETS, weights=COURSE_WEIGHTS):
    """N rows for steps 0 .. N-1; row k = weights before update k."""
    i1, i2 = (float(x) for x in inputs)
    t1, t2 = (float(x) for x in targets)
    w = tuple(float(x) for x in weights)
    assert len(w) == 8
    rows = []
    for _ in range(steps):
        row = step_row(i1, i2, t1, t2, w)
        rows.append(row)
        w = update(row, lr)
    return rows


def loss_curve(
    lr, steps, inputs=COURSE_INPUTS, targets=COURSE_TARGETS, weights=COURSE_WEIGHTS, record_every=1
):
    """E_total at steps 0, k, 2k, ... and always N (k = record_every); [E_total at N] if k == 0."""
    i1, i2 = (float(x) for x in inputs)
    t1, t2 = (float(x) for x in targets)
    w = tuple(float(x) for x in weights)
    curve = []
    for k in range(steps + 1):
        row = step_row(i1, i2, t1, t2, w)
        if k == steps or (record_every > 0 and k % record_every == 0):
            curve.append(row["E_total"])
        if k < steps:
            w = update(row, lr)
    return curve


def recorded_steps(steps, record_every=1):
    """The step numbers at which ``loss_curve`` records E_total."""
    if record_every == 0:
        return [steps]
    out = list(range(0, steps + 1, record_every))
    if out[-1] != steps:
        out.append(steps)
    return out


def finite_difference_gradient(e_total, weights, h=FD_STEP):
    """Central differences (E(w + h e_j) − E(w − h e_j)) / 2h for j = 1..8.

    ``e_total`` is any function weights(8-tuple) -> E_total, e.g. the package's or this
    module's.
    """
    w = [float(x) for x in weights]
    grad = []
    for j in range(8):
        plus = list(w)
        minus = list(w)
        plus[j] += h
        minus[j] -= h
        # use the actually representable step, not h, in the denominator
        grad.append((e_total(plus) - e_total(minus)) / (plus[j] - minus[j]))
    return grad


def e_total_at(inputs, targets, weights):
    """E_total at one set of weights (reference)."""
    i1, i2 = inputs
    t1, t2 = targets
    return step_row(float(i1), float(i2), float(t1), float(t2), weights)["E_total"]


def rel_close(actual, expected, rtol=RTOL_FLOAT64, atol=0.0):
    """|actual − expected| <= rtol·|expected| + atol (exact zeros compare equal with atol=0)."""
    return abs(actual - expected) <= rtol * abs(expected) + atol
