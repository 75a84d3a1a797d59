"""scripts/peers_w4.py: W4's problem is what issue 22 says, and every peer trains it correctly.

NumPy is checked against a plain per-run loop written here (float64, math.exp); JAX and PyTorch
against NumPy, each only where it is installed.
"""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("peers_w4", SCRIPTS / "peers_w4.py")
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "peers_w4", module)  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(peers):
    return peers.w4_problem(n_lrs=2, n_starts=3, steps=5)


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def train_one_run(x, t, W_h, W_o, b_h, b_o, lr, steps):
    """Batch gradient descent for one run on nested lists, written as docs/model.md states it."""
    n_in, n_hidden, n_out = len(x[0]), len(W_h), len(W_o)

    def forward(xp):
        a_h = [sigmoid(sum(W_h[j][i] * xp[i] for i in range(n_in)) + b_h[j]) for j in range(n_hidden)]
        a_o = [sigmoid(sum(W_o[k][j] * a_h[j] for j in range(n_hidden)) + b_o[k]) for k in range(n_out)]
        return a_h, a_o

    def loss():
        return sum(0.5 * (tk - ak) ** 2 for xp, tp in zip(x, t) for tk, ak in zip(tp, forward(xp)[1]))

    for _ in range(steps):
        g_h = [[0.0] * n_in for _ in range(n_hidden)]
        g_o = [[0.0] * n_hidden for _ in range(n_out)]
        gb_h, gb_o = [0.0] * n_hidden, [0.0] * n_out
        for xp, tp in zip(x, t):
            a_h, a_o = forward(xp)
            d_o = [(a_o[k] - tp[k]) * a_o[k] * (1 - a_o[k]) for k in range(n_out)]
            d_h = [
                sum(d_o[k] * W_o[k][j] for k in range(n_out)) * a_h[j] * (1 - a_h[j]) for j in range(n_hidden)
            ]
            for k in range(n_out):
                gb_o[k] += d_o[k]
                for j in range(n_hidden):
                    g_o[k][j] += d_o[k] * a_h[j]
            for j in range(n_hidden):
                gb_h[j] += d_h[j]
                for i in range(n_in):
                    g_h[j][i] += d_h[j] * xp[i]
        W_h = [[w - lr * g for w, g in zip(row, grow)] for row, grow in zip(W_h, g_h)]
        W_o = [[w - lr * g for w, g in zip(row, grow)] for row, grow in zip(W_o, g_o)]
        b_h = [b - lr * g for b, g in zip(b_h, gb_h)]
        b_o = [b - lr * g for b, g in zip(b_o, gb_o)]
    return loss(), W_h, W_o, b_h, b_o


def test_the_problem_is_w4(peers):
    p = peers.w4_problem(n_lrs=64, n_starts=4, steps=7, seed=3)
    assert p.runs == 256 and p.steps == 7
    np.testing.assert_array_equal(p.inputs, np.eye(10))  # one-hot patterns in order, target = input
    np.testing.assert_array_equal(p.targets, p.inputs)
    assert (p.W_h.shape, p.W_o.shape, p.b_h.shape, p.b_o.shape) == (
        (256, 5, 10),
        (256, 10, 5),
        (256, 5),
        (256, 10),
    )
    assert all(a.dtype == np.float64 for a in (p.inputs, p.W_h, p.W_o, p.b_h, p.b_o, p.lr))
    # the rate index is the outer one, and every rate sees the same four starts
    np.testing.assert_array_equal(p.lr, np.repeat(np.logspace(-1, 1, 64), 4))
    assert p.lr[0] == 0.1 and p.lr[-1] == 10.0
    flat = peers.flat_params(p.W_h, p.W_o, p.b_h, p.b_o)
    assert flat.shape == (256, 115)
    np.testing.assert_array_equal(flat, np.tile(flat[:4], (64, 1)))
    # each start is one draw of 115 uniforms in fastbp's parameter order: w_h1_i1, w_h1_i2, ...
    starts = np.random.default_rng(3).uniform(-1, 1, size=(4, 115))
    np.testing.assert_array_equal(flat[:4], starts)
    assert (
        p.W_h[1, 0, 1] == starts[1, 1] and p.W_o[1, 0, 0] == starts[1, 50] and p.b_o[1, 9] == starts[1, 114]
    )
    for a, b in zip(peers.split_params(flat), (p.W_h, p.W_o, p.b_h, p.b_o)):
        np.testing.assert_array_equal(a, b)


def test_numpy_is_the_plain_loop(peers, tiny):
    # blocks of 4 runs, two threads: the last block is short, and blocks run side by side
    got = peers.numpy_w4(tiny, threads=2, block=4)
    for r in range(tiny.runs):
        loss, W_h, W_o, b_h, b_o = train_one_run(
            tiny.inputs.tolist(),
            tiny.targets.tolist(),
            tiny.W_h[r].tolist(),
            tiny.W_o[r].tolist(),
            tiny.b_h[r].tolist(),
            tiny.b_o[r].tolist(),
            float(tiny.lr[r]),
            tiny.steps,
        )
        assert got.loss[r] == pytest.approx(loss, rel=1e-12, abs=0)
        for a, b in ((got.W_h, W_h), (got.W_o, W_o), (got.b_h, b_h), (got.b_o, b_o)):
            np.testing.assert_allclose(a[r], b, rtol=1e-12, atol=1e-12)
    # the problem itself is left as it was, and training moved every parameter
    fresh = peers.w4_problem(n_lrs=2, n_starts=3, steps=5)
    np.testing.assert_array_equal(tiny.W_h, fresh.W_h)
    assert np.all(got.W_h != tiny.W_h) and np.all(got.b_o != tiny.b_o)


def test_zero_steps_is_the_starting_loss(peers, tiny):
    loss = peers.numpy_w4(tiny, steps=0).loss
    expected = train_one_run(
        tiny.inputs.tolist(),
        tiny.targets.tolist(),
        tiny.W_h[0].tolist(),
        tiny.W_o[0].tolist(),
        tiny.b_h[0].tolist(),
        tiny.b_o[0].tolist(),
        0.0,
        0,
    )[0]
    assert loss[0] == pytest.approx(expected, rel=1e-13)
    assert loss[0] == loss[3]  # rate 0.1 and rate 10, the same start, no step taken


@pytest.mark.parametrize("name", ["jax", "jax-grad", "torch", "torch-func"])
def test_every_peer_agrees_with_numpy(peers, tiny, name):
    pytest.importorskip(peers.NEEDS[name])
    expected = peers.numpy_w4(tiny)
    got = peers.PEERS[name](tiny, None, 1)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=1e-12, atol=0)
    for a, b in (
        (got.W_h, expected.W_h),
        (got.W_o, expected.W_o),
        (got.b_h, expected.b_h),
        (got.b_o, expected.b_o),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert name in peers.available_peers()


def test_time_peer_counts_run_steps_and_keeps_every_call(peers, tiny):
    timing = peers.time_peer("numpy", tiny, steps=4, repeats=3, threads=1)
    assert timing.run_steps == 6 * 4 and len(timing.seconds) == 3
    assert timing.best <= timing.median and timing.rate(timing.best) == 24 / timing.best
    np.testing.assert_array_equal(timing.result.loss, peers.numpy_w4(tiny, steps=4).loss)
    assert peers.max_rel_diff(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == pytest.approx(0.2)


def test_agreement_measures(peers, tiny):
    assert peers.share_within(np.array([1.0, 1.0 + 1e-10, 1.1]), np.ones(3)) == pytest.approx(2 / 3)
    moved = peers.one_ulp_moved(tiny)
    assert np.all(moved.W_h > tiny.W_h) and np.all(np.nextafter(moved.W_h, -np.inf) == tiny.W_h)
    np.testing.assert_array_equal(moved.W_o, tiny.W_o)
    # five steps at rates 0.1 and 10 do not yet amplify one ulp beyond rounding size
    trained, trained_moved = peers.numpy_w4(tiny), peers.numpy_w4(moved)
    assert np.any(trained_moved.W_h != trained.W_h)
    assert np.max(np.abs(trained_moved.loss / trained.loss - 1)) < 1e-13
