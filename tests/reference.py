"""An independent, plainly written float64 reference for the model (docs/model.md).

This module imports nothing from fastbp: only ``math``.  It is written to be read next to
docs/model.md, in the model's own names, one run at a time, with ``math.exp``.  Tests compare the
package against it.

Biases and a learning rate per layer (docs/model.md "Biases", "Learning rate per layer"):
``biases=(b_h1, b_h2, b_o1, b_o2)`` adds each unit's bias to its sum (None: the bias-free network);
``lr_output`` is the output layer's rate (then ``lr`` is the hidden layer's); ``train_biases``
moves the biases too, each by its own gradient, or with ``shared_biases`` each layer's two by
the sum of theirs.

Any network with one hidden layer (issue 22), at the end of the module: the data sets
(``xor_patterns``, ``encoder_patterns``, ``complement_encoder_patterns``, ``parity_patterns``), the
documented parameter order (``parameter_names``, ``split_parameters``, ``join_parameters``),
``network_forward``, ``network_loss``, ``network_gradient`` and ``network_loss_curve`` (batch or
online updates, sigmoid/tanh hidden and sigmoid/tanh/linear output units, the same biases and rates).

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
# With biases the step table adds these columns after the 31, and with trained biases the second.
BIAS_NAMES = ("b_h1", "b_h2", "b_o1", "b_o2")
BIAS_GRADIENT_NAMES = tuple("dE_d" + b for b in BIAS_NAMES)

# docs/model.md "Biases": the walk-through's scenario (shared biases b1, b2, fixed) and its step 0.
WALKTHROUGH_TARGETS = (0.01, 0.99)
WALKTHROUGH_BIASES = (0.35, 0.35, 0.60, 0.60)
WALKTHROUGH_LR = 0.5
WALKTHROUGH_STEP0 = {"a_h1": 0.5932699921071872, "a_o1": 0.7513650695523157, "E_total": 0.2983711087600027}

# The default scenario (the course's values).
COURSE_INPUTS = (0.05, 0.1)
COURSE_TARGETS = (0.5, 0.5)
COURSE_WEIGHTS = (0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55)
OTHER_EDITION_TARGETS = (0.01, 0.99)
REPORT_LRS = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)


def sigma(x):
    """σ(x) = 1 / (1 + exp(−x))"""
    try:
        e = math.exp(-x)
    except OverflowError:  # math.exp raises where IEEE exp gives inf, and 1 / (1 + inf) = 0
        return 0.0
    return 1.0 / (1.0 + e)


def step_row(i1, i2, t1, t2, w, wrong_hidden_trap=False, biases=None):
    """Forward pass, loss and backward pass at weights w = (w1, ..., w8).

    Returns a dict of the step table's 31 columns; with ``biases`` = (b_h1, b_h2, b_o1, b_o2)
    also the biases and their gradients (BIAS_NAMES, BIAS_GRADIENT_NAMES).

    ``wrong_hidden_trap=True`` reproduces the known mistake of several public copies of the
    spreadsheet: dE/dw3 and dE/dw4 computed with a_h1(1 − a_h1) instead of a_h2(1 − a_h2).
    It exists only so that tests can show the package does *not* do that.
    """
    w1, w2, w3, w4, w5, w6, w7, w8 = (float(x) for x in w)

    # Forward pass and loss
    h1 = w1 * i1 + w2 * i2
    h2 = w3 * i1 + w4 * i2
    if biases is not None:
        b_h1, b_h2, b_o1, b_o2 = (float(b) for b in biases)
        h1 = h1 + b_h1
        h2 = h2 + b_h2
    a_h1 = sigma(h1)
    a_h2 = sigma(h2)
    o1 = w5 * a_h1 + w6 * a_h2
    o2 = w7 * a_h1 + w8 * a_h2
    if biases is not None:
        o1 = o1 + b_o1
        o2 = o2 + b_o2
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

    row = {
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
    if biases is not None:
        row.update({"b_h1": b_h1, "b_h2": b_h2, "b_o1": b_o1, "b_o2": b_o2})
        # A bias is a weight on a constant input 1: its gradient is its unit's delta.
        row["dE_db_o1"] = (a_o1 - t1) * a_o1 * (1 - a_o1)
        row["dE_db_o2"] = (a_o2 - t2) * a_o2 * (1 - a_o2)
        row["dE_db_h1"] = dE_da_h1 * a_h1 * (1 - a_h1)
        row["dE_db_h2"] = dE_da_h2 * a_h2 * (1 - a_h2)
    return row


def update(row, lr, lr_output=None):
    """w ← w − lr · ∂E/∂w, every weight at once from the gradients at the old weights.

    With ``lr_output``: w1..w4 move with ``lr`` (the hidden layer's rate), w5..w8 with it."""
    rates = (lr,) * 4 + ((lr if lr_output is None else lr_output),) * 4
    return tuple(row[w] - rate * row["dE_d" + w] for w, rate in zip(WEIGHT_NAMES, rates))


def update_biases(row, lr, lr_output=None, shared=False):
    """b ← b − rate · ∂E/∂b for the four biases of ``row``; hidden ones at ``lr``, output ones
    at ``lr_output`` (default ``lr``). ``shared``: each layer's two biases are one parameter, so
    both move by the sum of their gradients."""
    lr_output = lr if lr_output is None else lr_output
    g = [row[name] for name in BIAS_GRADIENT_NAMES]
    if shared:
        g = [g[0] + g[1], g[0] + g[1], g[2] + g[3], g[2] + g[3]]
    rates = (lr, lr, lr_output, lr_output)
    return tuple(row[b] - rate * gb for b, rate, gb in zip(BIAS_NAMES, rates, g))


def run(
    lr,
    steps,
    inputs=COURSE_INPUTS,
    targets=COURSE_TARGETS,
    weights=COURSE_WEIGHTS,
    *,
    lr_output=None,
    biases=None,
    train_biases=False,
    shared_biases=False,
):
    """Rows of steps 0 .. N (N + 1 rows: the last holds the final weights), one dict each."""
    i1, i2 = (float(x) for x in inputs)
    t1, t2 = (float(x) for x in targets)
    w = tuple(float(x) for x in weights)
    b = None if biases is None else tuple(float(x) for x in biases)
    assert len(w) == 8 and (b is None or len(b) == 4)
    rows = []
    for k in range(steps + 1):
        row = step_row(i1, i2, t1, t2, w, biases=b)
        rows.append(row)
        if k < steps:
            w = update(row, lr, lr_output)
            if train_biases:
                b = update_biases(row, lr, lr_output, shared_biases)
    return rows


def step_table(lr, steps, inputs=COURSE_INPUTS, targets=COURSE_TARGETS, weights=COURSE_WEIGHTS, **options):
    """N rows for steps 0 .. N-1; row k = weights before update k. ``options``: as ``run``."""
    return run(lr, steps, inputs, targets, weights, **options)[:steps]


def loss_curve(
    lr, steps, inputs=COURSE_INPUTS, targets=COURSE_TARGETS, weights=COURSE_WEIGHTS, record_every=1, **options
):
    """E_total at steps 0, k, 2k, ... and always N (k = record_every); [E_total at N] if k == 0.

    ``options``: as ``run`` (lr_output, biases, train_biases, shared_biases)."""
    rows = run(lr, steps, inputs, targets, weights, **options)
    return [rows[k]["E_total"] for k in recorded_steps(steps, record_every)]


def recorded_steps(steps, record_every=1):
    """The step numbers at which ``loss_curve`` records E_total."""
    if record_every == 0:
        return [steps]
    out = list(range(0, steps + 1, record_every))
    if out[-1] != steps:
        out.append(steps)
    return out


def finite_difference_gradient(e_total, weights, h=FD_STEP):
    """Central differences (E(w + h e_j) − E(w − h e_j)) / 2h for every parameter j.

    ``e_total`` is any function parameters -> E_total, e.g. the package's or this module's;
    the parameters are the 8 weights, or whatever it takes (biases, say).
    """
    w = [float(x) for x in weights]
    grad = []
    for j in range(len(w)):
        plus = list(w)
        minus = list(w)
        plus[j] += h
        minus[j] -= h
        # use the actually representable step, not h, in the denominator
        grad.append((e_total(plus) - e_total(minus)) / (plus[j] - minus[j]))
    return grad


def e_total_at(inputs, targets, weights, biases=None):
    """E_total at one set of weights (and biases) (reference)."""
    i1, i2 = inputs
    t1, t2 = targets
    return step_row(float(i1), float(i2), float(t1), float(t2), weights, biases=biases)["E_total"]


def rel_close(actual, expected, rtol=RTOL_FLOAT64, atol=0.0):
    """|actual − expected| <= rtol·|expected| + atol (exact zeros compare equal with atol=0)."""
    return abs(actual - expected) <= rtol * abs(expected) + atol


# Regimes and the map value (docs/model.md "Regimes", "The trainability map"), from a whole curve
# E_0 … E_N (every step), written from the page's definitions without fastbp's trackers.
WINDOW = 20
SIGNIFICANT = 1e-6
STALL = 1e-6


def regime(curve, tol, diverged=False):
    """The regime of a run whose loss at every step 0 … N is ``curve``."""
    E = [float(x) for x in curve]
    N = len(E) - 1
    if diverged or not all(math.isfinite(x) for x in E):
        return "diverged"
    hit = next((k for k, x in enumerate(E) if x < tol), None)
    if hit is not None and E[N] < tol:  # reached the tolerance, and below it at the end
        if max(E) > E[0]:
            return "catapult"
        if any(E[k] > E[k - 1] for k in range(1, hit + 1)):
            return "bumpy"
        return "monotone"
    k0 = max(0, N - WINDOW)
    rises = any(E[k] - E[k - 1] > SIGNIFICANT * E[k - 1] for k in range(k0 + 1, N + 1))
    falls = any(E[k - 1] - E[k] > SIGNIFICANT * E[k - 1] for k in range(k0 + 1, N + 1))
    if rises and falls:
        return "oscillating"
    if E[k0] - E[N] > STALL * (N - k0) * E[N]:
        return "slow"
    return "stuck"


def trainability(curve):
    """Sohl-Dickstein's value: v_k = E_k / E_0 (1e6 when not finite, capped at 1e6); trainable when
    the mean of the last 20 v is below 1; then −Σ v, else +Σ 1/v. (E_0 = 0: v = 0, trainable.)"""
    E = [float(x) for x in curve]

    def v(x):
        if E[0] == 0 and x == 0:
            return 0.0
        ratio = x / E[0] if math.isfinite(x) and math.isfinite(E[0]) else math.inf
        return min(ratio, 1e6)

    vs = [v(x) for x in E]
    last = vs[-WINDOW:]
    if sum(last) / len(last) < 1:
        return -sum(vs)
    return sum(1 / x for x in vs)


# Any network with one hidden layer (issue 22), written from the model's definitions: layers =
# [n_in, n_hidden, n_out] = [I, H, O], patterns p = 0 … P−1 (inputs[p], targets[p]), the hidden
# activation f and the output activation g.  Weights as nested lists, W_h[j][i] from input i to
# hidden unit j and W_o[k][j] from hidden unit j to output k; biases as lists b_h[j], b_o[k], or
# None for a network without them.  Sums run left to right in plain loops (not ``sum``, which
# compensates its rounding in Python ≥ 3.12), so that [2, 2, 2] gives step_row's bits.


def xor_patterns():
    """XOR: inputs (0, 0), (0, 1), (1, 0), (1, 1); targets 0, 1, 1, 0 (I = 2, O = 1)."""
    return [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [[0.0], [1.0], [1.0], [0.0]]


def encoder_patterns(n):
    """N one-hot patterns in order, x_p[i] = 1 if i == p else 0; target = input (I = O = N)."""
    inputs = [[1.0 if i == p else 0.0 for i in range(n)] for p in range(n)]
    return inputs, [list(x) for x in inputs]


def complement_encoder_patterns(n):
    """1 − one-hot: x_p[i] = 0 if i == p else 1; target = input (I = O = N)."""
    inputs = [[0.0 if i == p else 1.0 for i in range(n)] for p in range(n)]
    return inputs, [list(x) for x in inputs]


def parity_patterns(n):
    """All 2^N patterns of N bits in binary counting order, bit i of pattern p = (p >> (N−1−i)) & 1
    (the first input is the most significant bit); target 1 when the count of ones is odd (O = 1)."""
    bits = [[(p >> (n - 1 - i)) & 1 for i in range(n)] for p in range(2**n)]
    return [[float(b) for b in x] for x in bits], [[float(x.count(1) % 2)] for x in bits]


def parameter_names(layers, biases=False):
    """The parameters' names in the documented order: w_h{j}_i{i} (hidden unit j's incoming weights
    in the inputs' order, unit after unit), w_o{k}_h{j}, then with ``biases`` b_h{j}, b_o{k}."""
    n_in, n_hidden, n_out = layers
    names = [f"w_h{j}_i{i}" for j in range(1, n_hidden + 1) for i in range(1, n_in + 1)]
    names += [f"w_o{k}_h{j}" for k in range(1, n_out + 1) for j in range(1, n_hidden + 1)]
    if biases:
        names += [f"b_h{j}" for j in range(1, n_hidden + 1)] + [f"b_o{k}" for k in range(1, n_out + 1)]
    return names


def split_parameters(layers, params, biases=False):
    """(W_h, W_o, b_h, b_o) from a flat list in the documented order (b_h, b_o None without biases)."""
    n_in, n_hidden, n_out = layers
    p = [float(v) for v in params]
    assert len(p) == len(parameter_names(layers, biases)), (layers, len(p))
    n_wh = n_hidden * n_in
    n_w = n_wh + n_out * n_hidden
    W_h = [p[j * n_in : (j + 1) * n_in] for j in range(n_hidden)]
    W_o = [p[n_wh + k * n_hidden : n_wh + (k + 1) * n_hidden] for k in range(n_out)]
    if not biases:
        return W_h, W_o, None, None
    return W_h, W_o, p[n_w : n_w + n_hidden], p[n_w + n_hidden :]


def join_parameters(W_h, W_o, b_h=None, b_o=None):
    """The flat list in the documented order (the weights; then the biases when given)."""
    flat = [w for row in W_h for w in row] + [w for row in W_o for w in row]
    if b_h is not None:
        flat += list(b_h) + list(b_o)
    return flat


def activate(x, kind):
    """A unit's output from its net input: sigmoid σ(x), tanh(x) or linear x."""
    if kind == "sigmoid":
        return sigma(x)
    if kind == "tanh":
        return math.tanh(x)
    assert kind == "linear", kind
    return x


def times_slope(e, a, kind):
    """e · f'(net), the slope written from the unit's output a: sigmoid a(1 − a), tanh 1 − a²,
    linear 1.  Multiplied left to right as step_row writes (a_o1 − t1) · a_o1 · (1 − a_o1)."""
    if kind == "sigmoid":
        return e * a * (1 - a)
    if kind == "tanh":
        return e * (1 - a * a)
    assert kind == "linear", kind
    return e


def network_forward(layers, x, W_h, W_o, b_h=None, b_o=None, *, activation="sigmoid", output_activation=None):
    """(a_h, a_o) for one input pattern x: net_h[j] = Σ_i W_h[j][i]·x[i] (+ b_h[j]), a_h = f(net_h);
    net_o[k] = Σ_j W_o[k][j]·a_h[j] (+ b_o[k]), a_o = g(net_o); g defaults to f."""
    n_in, n_hidden, n_out = layers
    g = activation if output_activation is None else output_activation
    assert len(x) == n_in and len(W_h) == n_hidden and len(W_o) == n_out
    a_h = []
    for j in range(n_hidden):
        net = W_h[j][0] * x[0]
        for i in range(1, n_in):
            net = net + W_h[j][i] * x[i]
        if b_h is not None:
            net = net + b_h[j]
        a_h.append(activate(net, activation))
    a_o = []
    for k in range(n_out):
        net = W_o[k][0] * a_h[0]
        for j in range(1, n_hidden):
            net = net + W_o[k][j] * a_h[j]
        if b_o is not None:
            net = net + b_o[k]
        a_o.append(activate(net, g))
    return a_h, a_o


def network_loss_and_gradient(layers, inputs, targets, W_h, W_o, b_h=None, b_o=None, **activations):
    """(E, (∂E/∂W_h, ∂E/∂W_o, ∂E/∂b_h, ∂E/∂b_o)) over the patterns given, from one forward pass
    each; E = ½ Σ_p Σ_k (t_p[k] − a_o[k])², the gradients summed over the patterns (the bias
    gradients None without biases).  ``activations``: activation, output_activation."""
    n_in, n_hidden, n_out = layers
    f = activations.get("activation", "sigmoid")
    g = activations.get("output_activation") or f
    E = 0.0
    dW_h = [[0.0] * n_in for _ in range(n_hidden)]
    dW_o = [[0.0] * n_hidden for _ in range(n_out)]
    db_h = [0.0] * n_hidden
    db_o = [0.0] * n_out
    for x, t in zip(inputs, targets, strict=True):
        assert len(t) == n_out
        a_h, a_o = network_forward(layers, x, W_h, W_o, b_h, b_o, activation=f, output_activation=g)
        # Output deltas δ_o[k] = (a_o[k] − t[k])·g'(a_o[k]), and the pattern's loss.
        delta_o = []
        for k in range(n_out):
            E = E + 0.5 * ((t[k] - a_o[k]) * (t[k] - a_o[k]))
            delta_o.append(times_slope(a_o[k] - t[k], a_o[k], g))
        # Hidden deltas: the error sent back through the output weights, e_h[j] = Σ_k δ_o[k]·W_o[k][j].
        delta_h = []
        for j in range(n_hidden):
            e = delta_o[0] * W_o[0][j]
            for k in range(1, n_out):
                e = e + delta_o[k] * W_o[k][j]
            delta_h.append(times_slope(e, a_h[j], f))
        # Each weight's gradient is its receiving unit's delta times its sender's output; a bias is
        # a weight on a constant input 1.
        for k in range(n_out):
            for j in range(n_hidden):
                dW_o[k][j] = dW_o[k][j] + delta_o[k] * a_h[j]
            db_o[k] = db_o[k] + delta_o[k]
        for j in range(n_hidden):
            for i in range(n_in):
                dW_h[j][i] = dW_h[j][i] + delta_h[j] * x[i]
            db_h[j] = db_h[j] + delta_h[j]
    if b_h is None:
        db_h = db_o = None
    return E, (dW_h, dW_o, db_h, db_o)


def network_loss(layers, inputs, targets, W_h, W_o, b_h=None, b_o=None, **activations):
    """E = ½ Σ_p Σ_k (t_p[k] − a_o[k])² over all the patterns given (one pattern: E_total)."""
    n_out = layers[2]
    E = 0.0
    for x, t in zip(inputs, targets, strict=True):
        _, a_o = network_forward(layers, x, W_h, W_o, b_h, b_o, **activations)
        for k in range(n_out):
            E = E + 0.5 * ((t[k] - a_o[k]) * (t[k] - a_o[k]))
    return E


def network_gradient(layers, inputs, targets, W_h, W_o, b_h=None, b_o=None, **activations):
    """(∂E/∂W_h, ∂E/∂W_o, ∂E/∂b_h, ∂E/∂b_o) summed over the patterns given (None, None for the
    biases of a network without them); nested like W_h, W_o, b_h, b_o."""
    return network_loss_and_gradient(layers, inputs, targets, W_h, W_o, b_h, b_o, **activations)[1]


def descend(params, grads, lr, lr_output, train_biases, shared_biases):
    """θ ← θ − rate·∂E/∂θ: lr for W_h and b_h, lr_output for W_o and b_o; the biases only when
    trained, and shared ones by the sum over their layer's units (so a layer's biases stay equal)."""
    W_h, W_o, b_h, b_o = params
    dW_h, dW_o, db_h, db_o = grads
    W_h = [[w - lr * d for w, d in zip(row, drow)] for row, drow in zip(W_h, dW_h)]
    W_o = [[w - lr_output * d for w, d in zip(row, drow)] for row, drow in zip(W_o, dW_o)]
    if b_h is not None and train_biases:
        if shared_biases:
            db_h = [layer_sum(db_h)] * len(db_h)
            db_o = [layer_sum(db_o)] * len(db_o)
        b_h = [b - lr * d for b, d in zip(b_h, db_h)]
        b_o = [b - lr_output * d for b, d in zip(b_o, db_o)]
    return W_h, W_o, b_h, b_o


def layer_sum(values):
    """Σ values, left to right."""
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def network_loss_curve(
    layers,
    inputs,
    targets,
    weights,
    lr,
    steps,
    *,
    lr_output=None,
    activation="sigmoid",
    output_activation=None,
    update="batch",
    biases=None,
    train_biases=False,
    shared_biases=False,
    record_every=1,
):
    """(E at the recorded steps, the final weights, the final biases or None) of one run.

    ``weights``: the weights' flat list in the documented order; ``biases``: H + O numbers (b_h then
    b_o), or 2 (one per layer, repeated over its units), or None.  Recorded steps: as loss_curve.
    ``update="batch"``: one update a step with the gradient summed over all the patterns;
    ``"online"``: one update per pattern in order, a step is one pass, and E_k is the full loss at
    the parameters at the start of pass k.  Returns flat lists in the documented order."""
    n_in, n_hidden, n_out = layers
    assert update in ("batch", "online"), update
    inputs = [[float(v) for v in x] for x in inputs]
    targets = [[float(v) for v in t] for t in targets]
    W_h, W_o, b_h, b_o = split_parameters(layers, weights)
    if biases is not None:
        b = [float(v) for v in biases]
        if len(b) == 2:
            b = [b[0]] * n_hidden + [b[1]] * n_out
        _, _, b_h, b_o = split_parameters(layers, list(weights) + b, biases=True)
    lr_output = lr if lr_output is None else lr_output
    act = {"activation": activation, "output_activation": output_activation}
    recorded = set(recorded_steps(steps, record_every))
    losses = []
    for k in range(steps + 1):
        params = (W_h, W_o, b_h, b_o)
        if update == "batch":
            E, grads = network_loss_and_gradient(layers, inputs, targets, *params, **act)
        elif k in recorded:  # online: the full loss before the pass, not the losses seen during it
            E = network_loss(layers, inputs, targets, *params, **act)
        if k in recorded:
            losses.append(E)
        if k == steps:
            break
        if update == "batch":
            W_h, W_o, b_h, b_o = descend(params, grads, lr, lr_output, train_biases, shared_biases)
        else:
            for x, t in zip(inputs, targets, strict=True):
                grads = network_gradient(layers, [x], [t], W_h, W_o, b_h, b_o, **act)
                W_h, W_o, b_h, b_o = descend(
                    (W_h, W_o, b_h, b_o), grads, lr, lr_output, train_biases, shared_biases
                )
    final_biases = None if b_h is None else b_h + b_o
    return losses, join_parameters(W_h, W_o), final_biases
