"""Any network with one hidden layer (docs/model.md "Networks"): the training kernel against the
independent reference loop (tests/reference.py), on networks, data, activations, update modes
and biases other than the exercise's. The exercise itself is checked bit for bit elsewhere
(tests/test_golden.py, tests/test_kernels.py)."""

import numpy as np
import pytest
import reference as ref

from fastbp import kernels

RTOL = ref.RTOL_FLOAT64

# Few compiled variants, each standing for several options at once.
CASES = {
    # three explicit patterns, tanh hidden and linear outputs, per-unit trained biases, two rates
    "tanh-linear-batch": dict(
        layers=(3, 4, 2),
        activation="tanh",
        output_activation="linear",
        update="batch",
        biases="per_unit",
        top_rate=0.15,
    ),
    # XOR online, sigmoid, biases shared per layer and trained
    "xor-online-shared": dict(
        layers=(2, 3, 1), activation="sigmoid", update="online", biases="shared", data="xor"
    ),
    # the 4-4-4 encoder, tanh hidden and sigmoid outputs, fixed biases, batch
    "encoder-fixed": dict(
        layers=(4, 4, 4), activation="tanh", output_activation="sigmoid", biases="fixed", data="encoder"
    ),
}


def problem(case, runs, seed=0):
    """(inputs, targets, w_init, lr, lr_output, biases) for ``case``, float64."""
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = case["layers"]
    data = case.get("data")
    if data == "xor":
        inputs, targets = ref.xor_patterns()
    elif data == "encoder":
        inputs, targets = ref.encoder_patterns(n_in)
    else:
        inputs = rng.uniform(-1, 1, (3, n_in)).tolist()
        targets = rng.uniform(0, 1, (3, n_out)).tolist()
    n_weights = n_hidden * n_in + n_out * n_hidden
    w_init = rng.uniform(-1.5, 1.5, (n_weights, runs))
    # Rates up to where runs diverge: a diverging run amplifies each rounding (its curve is
    # chaotic), so agreeing to 1e-12 of its scale would test the arithmetic's order, not the model.
    top = case.get("top_rate", 3.0)
    lr = np.exp(rng.uniform(np.log(0.05), np.log(top), runs))
    lr_output = np.exp(rng.uniform(np.log(0.05), np.log(top), runs))
    biases = rng.uniform(-1, 1, (n_hidden + n_out, runs))
    if case["biases"] == "shared":
        biases[:n_hidden] = biases[0]
        biases[n_hidden:] = biases[n_hidden]
    return inputs, targets, w_init, lr, lr_output, biases


def train(case, inputs, targets, w_init, lr, lr_output, biases, steps, **options):
    return kernels.train(
        w_init,
        lr,
        inputs,
        targets,
        steps,
        lr_output=lr_output if case["biases"] == "per_unit" else None,
        biases=biases,
        train_biases=case["biases"] in ("per_unit", "shared"),
        shared_biases=case["biases"] == "shared",
        layers=case["layers"],
        activation=case["activation"],
        output_activation=case.get("output_activation"),
        update=case.get("update", "batch"),
        **options,
    )


@pytest.mark.parametrize("name", CASES)
def test_network_runs_follow_the_reference_loop(name):
    """Every run's loss curve (to 1e-12 of its scale), final weights and trained biases agree
    with the plain float64 loop, and its minimum and first step below tol follow from its curve."""
    case = CASES[name]
    steps, tol = 60, 0.05
    inputs, targets, w_init, lr, lr_output, biases = problem(case, runs=70)  # a full and a short block
    result = train(case, inputs, targets, w_init, lr, lr_output, biases, steps, record_every=1, tolerance=tol)
    trained = case["biases"] in ("per_unit", "shared")
    for run in range(w_init.shape[1]):
        curve, weights, final_biases = ref.network_loss_curve(
            case["layers"],
            inputs,
            targets,
            w_init[:, run].tolist(),
            lr[run],
            steps,
            lr_output=lr_output[run] if case["biases"] == "per_unit" else None,
            activation=case["activation"],
            output_activation=case.get("output_activation"),
            update=case.get("update", "batch"),
            biases=biases[:, run].tolist(),
            train_biases=trained,
            shared_biases=case["biases"] == "shared",
        )
        scale = max(abs(v) for v in curve)
        np.testing.assert_allclose(result.loss[run], curve, rtol=0, atol=RTOL * scale, err_msg=f"run {run}")
        np.testing.assert_allclose(result.weights[:, run], weights, rtol=1e-9, atol=1e-12)
        if trained:
            np.testing.assert_allclose(result.biases[:, run], final_biases, rtol=1e-9, atol=1e-12)
        assert result.final_loss[run] == result.loss[run, -1]
        assert result.min_loss[run] == np.nanmin(result.loss[run])
        below = np.flatnonzero(result.loss[run] < tol)
        assert result.first_step_below_tol[run] == (below[0] if len(below) else -1)
    # The case tests something: runs differ, and some of them learn.
    assert np.ptp(result.final_loss) > 0 and (result.final_loss < result.loss[:, 0]).any()


@pytest.mark.parametrize("name", ["xor-online-shared", "tanh-linear-batch"])
def test_network_runs_do_not_depend_on_slicing_or_batch(name):
    """The same bits whatever the slices of steps and the runs trained beside a run."""
    case = CASES[name]
    inputs, targets, w_init, lr, lr_output, biases = problem(case, runs=70, seed=3)
    whole = train(case, inputs, targets, w_init, lr, lr_output, biases, 40, record_every=3)
    sliced = train(case, inputs, targets, w_init, lr, lr_output, biases, 40, record_every=3, _slice_steps=7)
    alone = train(
        case, inputs, targets, w_init[:, 5:6], lr[5:6], lr_output[5:6], biases[:, 5:6], 40, record_every=3
    )
    for a, b in zip(whole, sliced):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert whole.loss[5].tobytes() == alone.loss[0].tobytes()
    assert whole.weights[:, 5].tobytes() == alone.weights[:, 0].tobytes()


def test_online_with_one_pattern_is_batch():
    """One pattern: an online step is the batch step (the same kernel, so the same bits)."""
    case = dict(CASES["tanh-linear-batch"])
    inputs, targets, w_init, lr, lr_output, biases = problem(case, runs=8)
    one = inputs[:1], targets[:1]
    batch = train(case, *one, w_init, lr, lr_output, biases, 20, record_every=1)
    online = train(dict(case, update="online"), *one, w_init, lr, lr_output, biases, 20, record_every=1)
    assert batch.loss.tobytes() == online.loss.tobytes()


def test_network_shapes_are_checked():
    """Weights or biases of the wrong size for the layers are refused, naming the expected shape."""
    case = CASES["tanh-linear-batch"]
    inputs, targets, w_init, lr, lr_output, biases = problem(case, runs=4)
    with pytest.raises(ValueError, match=r"w_init must be \(20, R\)"):
        train(case, inputs, targets, w_init[:-1], lr, lr_output, biases, 5)
    with pytest.raises(ValueError, match=r"biases must be \(6, 4\)"):
        train(case, inputs, targets, w_init, lr, lr_output, biases[:-1], 5)
    with pytest.raises(ValueError, match="3 input patterns and 2 target patterns"):
        train(case, inputs, targets[:2], w_init, lr, lr_output, biases, 5)
