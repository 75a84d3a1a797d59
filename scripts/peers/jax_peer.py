"""JAX peer: the one-run step written on scalars, vmap over runs, lax.scan over steps, jit.

float64 needs ``jax_enable_x64`` (set here before the first computation).  CPU only.
Compilation is excluded: a warm call with the same shapes runs first, then the timed
call (block_until_ready).  Threads are XLA's own (intra-op pool); `threads` is not applied.
"""

from __future__ import annotations

import os
import time

import numpy as np

from . import PeerResult, PeerUnavailable, Problem

_jax = None


def _import():
    global _jax
    if _jax is not None:
        return _jax
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
    except Exception as exc:  # noqa: BLE001 - ImportError or a broken install
        raise PeerUnavailable(f"jax not importable: {exc.__class__.__name__}: {exc}") from exc
    jax.config.update("jax_enable_x64", True)
    _jax = jax
    return jax


def _build(jax, steps: int):
    jnp = jax.numpy
    lax = jax.lax

    def sig(x):
        return 1.0 / (1.0 + jnp.exp(-x))

    def forward(w, i1, i2):
        w1, w2, w3, w4, w5, w6, w7, w8 = w
        a_h1 = sig(w1 * i1 + w2 * i2)
        a_h2 = sig(w3 * i1 + w4 * i2)
        a_o1 = sig(w5 * a_h1 + w6 * a_h2)
        a_o2 = sig(w7 * a_h1 + w8 * a_h2)
        return a_h1, a_h2, a_o1, a_o2

    def one_run(w, lr, io):
        """w: (8,) weights of one run, lr scalar, io = (i1, i2, t1, t2)."""
        i1, i2, t1, t2 = io[0], io[1], io[2], io[3]

        def step(w, _):
            w1, w2, w3, w4, w5, w6, w7, w8 = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]
            a_h1, a_h2, a_o1, a_o2 = forward((w1, w2, w3, w4, w5, w6, w7, w8), i1, i2)
            d_o1 = (a_o1 - t1) * a_o1 * (1.0 - a_o1)
            d_o2 = (a_o2 - t2) * a_o2 * (1.0 - a_o2)
            d_h1 = (d_o1 * w5 + d_o2 * w7) * a_h1 * (1.0 - a_h1)
            d_h2 = (d_o1 * w6 + d_o2 * w8) * a_h2 * (1.0 - a_h2)
            grad = jnp.stack([d_h1 * i1, d_h1 * i2, d_h2 * i1, d_h2 * i2,
                              d_o1 * a_h1, d_o1 * a_h2, d_o2 * a_h1, d_o2 * a_h2])
            return w - lr * grad, None

        w, _ = lax.scan(step, w, None, length=steps)
        _, _, a_o1, a_o2 = forward(tuple(w[k] for k in range(8)), i1, i2)
        loss = 0.5 * (t1 - a_o1) ** 2 + 0.5 * (t2 - a_o2) ** 2
        return w, loss

    # runs are columns of the (8, R) weight matrix
    batched = jax.vmap(one_run, in_axes=(1, 0, None), out_axes=(1, 0))
    return jax.jit(batched)


def run(problem: Problem, threads=None) -> PeerResult:
    jax = _import()
    dt = problem.dtype
    fn = _build(jax, problem.steps)
    w = jax.device_put(problem.w_init)
    lr = jax.device_put(problem.lr)
    io = jax.device_put(np.array(problem.inputs + problem.targets, dtype=dt))
    if w.dtype != dt:
        raise PeerUnavailable(f"jax gave {w.dtype}, wanted {dt} (x64 not enabled?)")
    # warm: compile for these shapes (and run once)
    jax.block_until_ready(fn(w, lr, io))
    t0 = time.perf_counter()
    w_out, loss = fn(w, lr, io)
    jax.block_until_ready((w_out, loss))
    seconds = time.perf_counter() - t0
    return PeerResult(np.asarray(w_out), np.asarray(loss), seconds, problem.runs,
                      problem.steps, notes=[f"jax {jax.__version__}", "XLA's threads"])
