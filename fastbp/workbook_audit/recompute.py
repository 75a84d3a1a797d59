"""One row of the step table replayed in plain float64 (``math.exp``), with an error bound.

Every quantity is a pair ``(value, bound)``: ``bound`` is how far the value can be from the
spreadsheet's own when each number the formula reads may be off by the sheet's storage
precision (``rtol`` relative). Bounds propagate to first order plus the second-order product
terms (``|x·y − x'·y'| ≤ |x|e_y + |y|e_x + e_x e_y``), so cancellation is accounted for where it
happens: ``t − a`` with ``a`` near ``t``, ``1 − a`` near saturation, ``δ_o1·w5 + δ_o2·w7`` near
zero. A correct cell recomputed from rounded inputs differs by less than its bound; a slip does
not hide behind it unless the slip itself is smaller than the rounding of the cell's inputs.

``replay_row(roots, sheet, err)`` is the local replay the checker uses: ``roots`` are the row's
weights, inputs, targets and biases; every intermediate that the sheet has a number for is
taken from the sheet (so an earlier wrong cell does not make later cells wrong), the others are
computed. With ``sheet=None`` everything is computed from the roots (the plain chain).
``variant`` replays one of the known slips (check.py names them) instead of the SPEC.
"""

import math

SAFETY = 2.0  # the bounds are worst cases already; 2 covers the spreadsheet's own last-bit rounding


def agrees(found, expected, found_bound):
    """A found value agrees with (expected value, its error bound) within the safety factor."""
    value, bound = expected
    return abs(found - value) <= SAFETY * (bound + found_bound)


HALF = (0.5, 0.0)


def sigmoid(x):
    # The SPEC's form, 1 / (1 + exp(−x)); exp(−x) overflows below x ≈ −709, where σ(x) = exp(x).
    return 1.0 / (1.0 + math.exp(-x)) if x > -700.0 else math.exp(x)


def mul(a, b):
    if a is None or b is None:
        return None
    (x, ex), (y, ey) = a, b
    return (x * y, abs(x) * ey + abs(y) * ex + ex * ey)


def add(a, b):
    if a is None or b is None:
        return None
    return (a[0] + b[0], a[1] + b[1])


def sub(a, b):
    if a is None or b is None:
        return None
    return (a[0] - b[0], a[1] + b[1])


def one_minus(a):
    return None if a is None else (1.0 - a[0], a[1])


def square(a):
    if a is None:
        return None
    x, ex = a
    return (x * x, 2.0 * abs(x) * ex + ex * ex)


def sig(a):
    if a is None:
        return None
    x, ex = a
    s = sigmoid(x)
    # |σ(x + d) − σ(x)| ≤ |d| · max σ' over [x − e, x + e]; σ' peaks where |x| is smallest.
    near = sigmoid(max(abs(x) - ex, 0.0))
    return (s, ex * near * (1.0 - near))


def scale(a, factor):
    return None if a is None else (a[0] * factor, a[1] * abs(factor))


def replay_row(roots, sheet, err, variant=None, next_out=None):
    """Expected ``{name: (value, bound)}`` for every derived quantity of one row.

    roots: ``{name: (value, bound) or None}`` for i1 i2 t1 t2 w1…w8 (and b_h1 b_h2 b_o1 b_o2).
    sheet: ``{name: float}`` of the row's numeric cells (local replay) or None (chain).
    err(name, x): the bound of the number x read from the sheet's column name.
    variant: None (the SPEC) or a slip name of check.SLIP_VARIANTS; ``next_out`` gives
    ``updated_output_weights`` the w5…w8 it uses instead of the row's own.
    """
    out = {}

    def val(name, computed):
        out[name] = computed
        if sheet is not None:
            x = sheet.get(name)
            if x is not None:
                return (x, err(name, x))
        return computed

    r = roots.get
    i1, i2, t1, t2 = r("i1"), r("i2"), r("t1"), r("t2")
    w1, w2, w3, w4, w5, w6, w7, w8 = (r(f"w{n}") for n in range(1, 9))
    # No bias given is no bias (zero, exactly); a bias given as None is one the sheet left empty.
    b_h1, b_h2, b_o1, b_o2 = (r(b, (0.0, 0.0)) for b in ("b_h1", "b_h2", "b_o1", "b_o2"))

    h1 = val("h1", add(add(mul(w1, i1), mul(w2, i2)), b_h1))
    a_h1 = val("a_h1", sig(h1))
    h2 = val("h2", add(add(mul(w3, i1), mul(w4, i2)), b_h2))
    a_h2 = val("a_h2", sig(h2))
    o1 = val("o1", add(add(mul(w5, a_h1), mul(w6, a_h2)), b_o1))
    a_o1 = val("a_o1", sig(o1))
    o2 = val("o2", add(add(mul(w7, a_h1), mul(w8, a_h2)), b_o2))
    a_o2 = val("a_o2", sig(o2))

    half = (1.0, 0.0) if variant == "missing_half" else HALF
    E1 = val("E1", mul(half, square(sub(t1, a_o1))))
    E2 = val("E2", mul(half, square(sub(t2, a_o2))))
    val("E_total", add(E1, E2))

    # ∂E/∂a_o = a_o − t; without the ½ its derivative is twice that.
    twice = 2.0 if variant == "missing_half" else 1.0
    dE_da_o1 = val("dE_da_o1", scale(sub(a_o1, t1), twice))
    dE_da_o2 = val("dE_da_o2", scale(sub(a_o2, t2), twice))
    da_o1 = val("da_o1_do1", mul(a_o1, one_minus(a_o1)))
    da_o2 = val("da_o2_do2", mul(a_o2, one_minus(a_o2)))
    delta_o1 = val("delta_o1", mul(dE_da_o1, da_o1))
    delta_o2 = val("delta_o2", mul(dE_da_o2, da_o2))
    val("dE_dw5", mul(delta_o1, a_h1))
    val("dE_dw6", mul(delta_o1, a_h2))
    val("dE_dw7", mul(delta_o2, a_h1))
    val("dE_dw8", mul(delta_o2, a_h2))

    v5, v6, v7, v8 = next_out if variant == "updated_output_weights" else (w5, w6, w7, w8)
    dE_da_h1 = val("dE_da_h1", add(mul(delta_o1, v5), mul(delta_o2, v7)))
    dE_da_h2 = val("dE_da_h2", add(mul(delta_o1, v6), mul(delta_o2, v8)))
    # The published trap: σ'(h2) taken as a_h1(1 − a_h1) (and its mirror image).
    s1 = a_h2 if variant == "a_h2_for_a_h1" else a_h1
    s2 = a_h1 if variant == "a_h1_for_a_h2" else a_h2
    da_h1 = val("da_h1_dh1", mul(s1, one_minus(s1)))
    da_h2 = val("da_h2_dh2", mul(s2, one_minus(s2)))
    delta_h1 = val("delta_h1", mul(dE_da_h1, da_h1))
    delta_h2 = val("delta_h2", mul(dE_da_h2, da_h2))
    val("dE_dw1", mul(delta_h1, i1))
    val("dE_dw2", mul(delta_h1, i2))
    val("dE_dw3", mul(delta_h2, i1))
    val("dE_dw4", mul(delta_h2, i2))

    # Bias gradients (SPEC "Biases"): one per unit, or the sum over the units a shared bias feeds.
    out["dE_db_h1"], out["dE_db_h2"] = delta_h1, delta_h2
    out["dE_db_o1"], out["dE_db_o2"] = delta_o1, delta_o2
    out["dE_db1"] = add(delta_h1, delta_h2)
    out["dE_db2"] = add(delta_o1, delta_o2)
    return out


def updated(w, g, lr, sign=1.0):
    """w − lr·g (``sign=-1``: the wrong-sign update w + lr·g), with its bound."""
    step = mul(lr, g)
    if w is None or step is None:
        return None
    return sub(w, step) if sign > 0 else add(w, step)
