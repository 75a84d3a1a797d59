"""The reference for any network (reference.py, issue 22) checked against itself and the model.

The network reference must be right before the package is compared with it: on the course network
it gives the existing 2-2-2 loop's curves (for every option that loop has), its gradients are the
central differences of its loss for every shape and activation, online updates are P single-pattern
updates, and the data sets are the ones docs define.  Nothing here imports fastbp.
"""

import math
import random

import pytest
import reference as ref
from reference import FD_ATOL, FD_RTOL, FD_STEP

COURSE = [2, 2, 2]
ACTIVATIONS = ["sigmoid", "tanh"]
OUTPUT_ACTIVATIONS = ["sigmoid", "tanh", "linear"]


def uniform(rng, n, low=-1.0, high=1.0):
    return [rng.uniform(low, high) for _ in range(n)]


def n_weights(layers):
    n_in, n_hidden, n_out = layers
    return n_hidden * n_in + n_out * n_hidden


def assert_all_close(actual, expected, rtol):
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert ref.rel_close(a, e, rtol), (k, a, e)


# --- The course network: the existing 2-2-2 loop's curves, weights and biases ------------------------

WEIGHT_SETS = {
    "course": list(ref.COURSE_WEIGHTS),
    "random": uniform(random.Random(1), 8),
    "wide": uniform(random.Random(2), 8, -3.0, 3.0),
}
# The existing loop's options, and how network_loss_curve spells them (biases as H + O numbers).
OPTIONS = {
    "plain": {},
    "fixed biases": dict(biases=ref.WALKTHROUGH_BIASES),
    "two rates": dict(lr_output=0.3),
    "trained biases": dict(biases=(0.1, -0.2, 0.3, 0.6), train_biases=True),
    "shared biases": dict(biases=ref.WALKTHROUGH_BIASES, train_biases=True, shared_biases=True),
    "all": dict(biases=(0.1, -0.2, 0.3, 0.6), train_biases=True, lr_output=1.7),
}


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("weights", WEIGHT_SETS)
@pytest.mark.parametrize("lr", [0.1, 0.5, 2.0, 8.0])
def test_course_network_is_the_existing_reference(option, weights, lr):
    options = OPTIONS[option]
    w = WEIGHT_SETS[weights]
    steps = 40
    for record_every in (1, 7, 0):
        want = ref.loss_curve(
            lr, steps, ref.COURSE_INPUTS, ref.WALKTHROUGH_TARGETS, w, record_every, **options
        )
        got, final_w, final_b = ref.network_loss_curve(
            COURSE,
            [ref.COURSE_INPUTS],
            [ref.WALKTHROUGH_TARGETS],
            w,
            lr,
            steps,
            record_every=record_every,
            **options,
        )
        assert len(got) == len(ref.recorded_steps(steps, record_every))
        assert_all_close(got, want, 1e-15)
    last = ref.run(lr, steps, ref.COURSE_INPUTS, ref.WALKTHROUGH_TARGETS, w, **options)[-1]
    assert_all_close(final_w, [last[name] for name in ref.WEIGHT_NAMES], 1e-15)
    if "biases" in options:
        assert_all_close(final_b, [last[name] for name in ref.BIAS_NAMES], 1e-15)
    else:
        assert final_b is None
    # the run moved: a curve that stayed put would compare equal to anything that also stayed put
    assert (
        last["E_total"]
        != ref.run(lr, 0, ref.COURSE_INPUTS, ref.WALKTHROUGH_TARGETS, w, **options)[0]["E_total"]
    )


def test_shared_biases_two_number_form_and_they_stay_equal():
    options = dict(train_biases=True, shared_biases=True)
    four = ref.network_loss_curve(
        COURSE,
        [[0.05, 0.1]],
        [[0.01, 0.99]],
        ref.COURSE_WEIGHTS,
        0.5,
        30,
        biases=(0.35, 0.35, 0.6, 0.6),
        **options,
    )
    two = ref.network_loss_curve(
        COURSE, [[0.05, 0.1]], [[0.01, 0.99]], ref.COURSE_WEIGHTS, 0.5, 30, biases=(0.35, 0.6), **options
    )
    assert four == two
    b_h1, b_h2, b_o1, b_o2 = two[2]
    assert b_h1 == b_h2 != 0.35 and b_o1 == b_o2 != 0.6


def test_course_step_zero_is_the_walkthrough():
    W_h, W_o, b_h, b_o = ref.split_parameters(
        COURSE, list(ref.COURSE_WEIGHTS) + list(ref.WALKTHROUGH_BIASES), True
    )
    a_h, a_o = ref.network_forward(COURSE, ref.COURSE_INPUTS, W_h, W_o, b_h, b_o)
    want = ref.WALKTHROUGH_STEP0
    assert ref.rel_close(a_h[0], want["a_h1"]) and ref.rel_close(a_o[0], want["a_o1"])
    E = ref.network_loss(COURSE, [ref.COURSE_INPUTS], [ref.WALKTHROUGH_TARGETS], W_h, W_o, b_h, b_o)
    assert ref.rel_close(E, want["E_total"])


# --- Activations and the loss by hand ----------------------------------------------------------------


@pytest.mark.parametrize("f", ACTIVATIONS)
@pytest.mark.parametrize("g", OUTPUT_ACTIVATIONS)
def test_one_unit_each_by_hand(f, g):
    """[1, 1, 1] with biases, written out: the activations are the ones named."""
    x, w_h, w_o, b_h, b_o, t = 0.5, 0.8, -1.5, 0.1, 0.2, 0.3
    act = {"sigmoid": lambda z: 1 / (1 + math.exp(-z)), "tanh": math.tanh, "linear": lambda z: z}
    a_h = act[f](w_h * x + b_h)
    a_o = act[g](w_o * a_h + b_o)
    got_h, got_o = ref.network_forward(
        [1, 1, 1], [x], [[w_h]], [[w_o]], [b_h], [b_o], activation=f, output_activation=g
    )
    assert ref.rel_close(got_h[0], a_h) and ref.rel_close(got_o[0], a_o)
    E = ref.network_loss(
        [1, 1, 1], [[x]], [[t]], [[w_h]], [[w_o]], [b_h], [b_o], activation=f, output_activation=g
    )
    assert ref.rel_close(E, 0.5 * (t - a_o) ** 2)
    # the output activation defaults to the hidden one
    assert ref.network_forward([1, 1, 1], [x], [[w_h]], [[w_o]], activation=f)[1][0] == act[f](
        w_o * act[f](w_h * x)
    )


def test_loss_is_summed_over_patterns_and_outputs():
    rng = random.Random(3)
    layers = [3, 4, 2]
    W_h, W_o, _, _ = ref.split_parameters(layers, uniform(rng, n_weights(layers)))
    inputs = [uniform(rng, 3) for _ in range(5)]
    targets = [uniform(rng, 2, 0, 1) for _ in range(5)]
    total = 0.0
    for x, t in zip(inputs, targets):
        a_o = ref.network_forward(layers, x, W_h, W_o)[1]
        total += 0.5 * ((t[0] - a_o[0]) ** 2 + (t[1] - a_o[1]) ** 2)
    assert ref.rel_close(ref.network_loss(layers, inputs, targets, W_h, W_o), total, 1e-14)


# --- Gradients against central differences -----------------------------------------------------------


def target_range(g):
    return {"sigmoid": (0.05, 0.95), "tanh": (-0.9, 0.9), "linear": (-2.0, 2.0)}[g]


@pytest.mark.parametrize("layers", [[3, 4, 2], [2, 2, 1], [4, 3, 4], [1, 1, 1]])
@pytest.mark.parametrize("f", ACTIVATIONS)
@pytest.mark.parametrize("g", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("n_patterns", [1, 3])
def test_gradient_is_central_differences(layers, f, g, biases, n_patterns):
    rng = random.Random(f"{layers}{f}{g}{biases}{n_patterns}")
    n_in, n_hidden, n_out = layers
    params = uniform(rng, len(ref.parameter_names(layers, biases)))
    inputs = [uniform(rng, n_in) for _ in range(n_patterns)]
    targets = [uniform(rng, n_out, *target_range(g)) for _ in range(n_patterns)]
    act = dict(activation=f, output_activation=g)

    def loss(p):
        return ref.network_loss(layers, inputs, targets, *ref.split_parameters(layers, p, biases), **act)

    grads = ref.network_gradient(
        layers, inputs, targets, *ref.split_parameters(layers, params, biases), **act
    )
    dW_h, dW_o, db_h, db_o = grads
    assert (db_h is None) == (not biases) and (db_o is None) == (not biases)
    got = ref.join_parameters(dW_h, dW_o, db_h, db_o)
    want = ref.finite_difference_gradient(loss, params, FD_STEP)
    assert len(got) == len(want) == len(params)
    for name, a, e in zip(ref.parameter_names(layers, biases), got, want):
        assert ref.rel_close(a, e, FD_RTOL, FD_ATOL), (name, a, e)
    assert max(abs(v) for v in got) > 1e-3  # a gradient of zeros would pass on a flat loss
    # and the loss and gradient of one pass are the two functions' values
    E, same = ref.network_loss_and_gradient(
        layers, inputs, targets, *ref.split_parameters(layers, params, biases), **act
    )
    assert E == loss(params) and same == grads


def test_central_differences_catch_a_wrong_slope():
    """The check above can fail: the gradient of a tanh output against a sigmoid output's loss."""
    rng = random.Random(4)
    layers = [2, 3, 2]
    params = uniform(rng, n_weights(layers))
    inputs, targets = [uniform(rng, 2)], [[0.2, 0.7]]
    parts = ref.split_parameters(layers, params)
    wrong = ref.join_parameters(
        *ref.network_gradient(layers, inputs, targets, *parts, output_activation="tanh")
    )

    def loss(p):
        return ref.network_loss(layers, inputs, targets, *ref.split_parameters(layers, p))

    want = ref.finite_difference_gradient(loss, params)
    assert not all(ref.rel_close(a, e, FD_RTOL, FD_ATOL) for a, e in zip(wrong, want))


# --- Online updates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options", [{}, dict(biases=(0.1, -0.3, 0.2, 0.4), train_biases=True, lr_output=0.7)]
)
def test_online_with_one_pattern_is_batch(options):
    rng = random.Random(5)
    w = uniform(rng, 8)
    args = (COURSE, [[0.05, 0.1]], [[0.01, 0.99]], w, 0.9, 25)
    batch = ref.network_loss_curve(*args, update="batch", **options)
    online = ref.network_loss_curve(*args, update="online", **options)
    assert online == batch


@pytest.mark.parametrize("f,g", [("sigmoid", "sigmoid"), ("tanh", "linear")])
def test_online_with_several_patterns_differs_from_batch_after_its_first_value(f, g):
    inputs, targets = ref.xor_patterns()
    rng = random.Random(6)
    layers = [2, 2, 1]
    w, b = uniform(rng, n_weights(layers)), uniform(rng, 3)
    options = dict(biases=b, train_biases=True, activation=f, output_activation=g)
    batch, batch_w, _ = ref.network_loss_curve(layers, inputs, targets, w, 0.3, 10, **options)
    online, online_w, _ = ref.network_loss_curve(
        layers, inputs, targets, w, 0.3, 10, update="online", **options
    )
    # both start at E at the initial parameters
    E0 = ref.network_loss(
        layers, inputs, targets, *ref.split_parameters(layers, w + b, True), activation=f, output_activation=g
    )
    assert online[0] == batch[0] == E0
    assert all(o != b for o, b in zip(online[1:], batch[1:])) and online_w != batch_w


@pytest.mark.parametrize("shared", [False, True])
def test_one_online_step_is_one_update_per_pattern_by_hand(shared):
    layers = [3, 2, 2]
    inputs = [[0.0, 1.0, 0.5], [1.0, -0.5, 0.2], [0.3, 0.3, -1.0]]
    targets = [[0.1, 0.9], [0.8, 0.3], [0.5, 0.5]]
    rng = random.Random(7)
    w = uniform(rng, n_weights(layers))
    b = [0.2, 0.2, -0.1, -0.1] if shared else uniform(rng, 4)
    lr, lr_output = 0.4, 1.3
    options = dict(biases=b, train_biases=True, shared_biases=shared, lr_output=lr_output)
    losses, final_w, final_b = ref.network_loss_curve(
        layers, inputs, targets, w, lr, 1, update="online", **options
    )

    W_h, W_o, b_h, b_o = ref.split_parameters(layers, w + b, True)
    for x, t in zip(inputs, targets):
        dW_h, dW_o, db_h, db_o = ref.network_gradient(layers, [x], [t], W_h, W_o, b_h, b_o)
        if shared:
            db_h = [db_h[0] + db_h[1]] * 2
            db_o = [db_o[0] + db_o[1]] * 2
        W_h = [[W_h[j][i] - lr * dW_h[j][i] for i in range(3)] for j in range(2)]
        W_o = [[W_o[k][j] - lr_output * dW_o[k][j] for j in range(2)] for k in range(2)]
        b_h = [b_h[j] - lr * db_h[j] for j in range(2)]
        b_o = [b_o[k] - lr_output * db_o[k] for k in range(2)]
    assert final_w == ref.join_parameters(W_h, W_o) and final_b == b_h + b_o
    assert losses[1] == ref.network_loss(layers, inputs, targets, W_h, W_o, b_h, b_o)
    if shared:
        assert final_b[0] == final_b[1] and final_b[2] == final_b[3]


# --- Data sets and the parameter order ---------------------------------------------------------------


def test_xor():
    inputs, targets = ref.xor_patterns()
    assert inputs == [[0, 0], [0, 1], [1, 0], [1, 1]] and targets == [[0], [1], [1], [0]]
    assert all(type(v) is float for x in inputs + targets for v in x)


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_encoders(n):
    inputs, targets = ref.encoder_patterns(n)
    assert len(inputs) == n and all(len(x) == n for x in inputs) and targets == inputs
    assert all(inputs[p][i] == (1.0 if i == p else 0.0) for p in range(n) for i in range(n))
    complement, complement_targets = ref.complement_encoder_patterns(n)
    assert complement_targets == complement
    assert complement == [[1.0 - v for v in x] for x in inputs]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
def test_parity(n):
    inputs, targets = ref.parity_patterns(n)
    assert len(inputs) == len(targets) == 2**n and all(len(x) == n for x in inputs)
    for p, (x, t) in enumerate(zip(inputs, targets)):
        assert int("".join(str(int(v)) for v in x), 2) == p  # binary counting, first input the top bit
        assert t == [float(bin(p).count("1") % 2)]
    if n == 3:
        assert inputs[1] == [0.0, 0.0, 1.0] and inputs[6] == [1.0, 1.0, 0.0] and targets[7] == [1.0]


def test_parameter_names_and_order():
    assert ref.parameter_names(COURSE) == [
        "w_h1_i1",
        "w_h1_i2",
        "w_h2_i1",
        "w_h2_i2",
        "w_o1_h1",
        "w_o1_h2",
        "w_o2_h1",
        "w_o2_h2",
    ]
    assert ref.parameter_names(COURSE, True)[8:] == ["b_h1", "b_h2", "b_o1", "b_o2"]
    layers = [3, 4, 2]
    names = ref.parameter_names(layers, True)
    assert len(names) == len(set(names)) == 12 + 8 + 4 + 2
    assert names[:5] == ["w_h1_i1", "w_h1_i2", "w_h1_i3", "w_h2_i1", "w_h2_i2"] and names[-1] == "b_o2"
    # split puts each numbered parameter where its name says
    W_h, W_o, b_h, b_o = ref.split_parameters(layers, range(len(names)), True)
    for j in range(4):
        assert b_h[j] == names.index(f"b_h{j + 1}")
        for i in range(3):
            assert W_h[j][i] == names.index(f"w_h{j + 1}_i{i + 1}")
        for k in range(2):
            assert W_o[k][j] == names.index(f"w_o{k + 1}_h{j + 1}")
    assert b_o == [names.index("b_o1"), names.index("b_o2")]
    assert ref.join_parameters(W_h, W_o, b_h, b_o) == list(range(len(names)))


# --- Overflow is data ----------------------------------------------------------------------------------


def test_overflow_does_not_crash():
    assert ref.sigma(-1e4) == 0.0 and ref.sigma(1e4) == 1.0
    inputs, targets = ref.xor_patterns()
    losses, w, _ = ref.network_loss_curve(
        [2, 3, 1], inputs, targets, [1.0] * 9, 1e3, 60, output_activation="linear"
    )
    assert not all(math.isfinite(v) for v in losses + w)
    # sigmoid everywhere with a huge rate saturates; the loss stays a number
    losses, _, _ = ref.network_loss_curve([2, 3, 1], inputs, targets, [1.0, -1.0] * 4 + [3.0], 1e300, 3)
    assert losses[1:] == [1.0, 1.0, 1.0]  # every output saturated at exactly σ = 0: E = ½ (1 + 1)
