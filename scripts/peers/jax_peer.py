"""JAX peer: the one-run step written on scalars, vmap over runs, lax.scan over steps, jit.

float64 needs ``jax_enable_x64`` (set here before the first computation).  CPU only.
Compilation is excluded: the jitted function is compiled ahead of time for the problem's
shapes (``.lower(...).compile()``), then the timed call (block_until_ready).  Threads are
XLA's own (intra-op pool); `threads` is not applied.
"""

from __future__ import annotations

import os
import time

import numpy as np
from benchkit.problem import Problem

from . import PeerResult, PeerUnavailable

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
        """One run: w = (w1, ..., w8) scalars, lr scalar, io = (i1, i2, t1, t2).

        The carry is a tuple of 8 scalars (after vmap: 8 arrays of shape (R,)).  Stacking
        the 8 gradients into one array per step instead is ~30x slower on XLA CPU.
        """
        i1, i2, t1, t2 = io[0], io[1], io[2], io[3]

        def step(w, _):
            w1, w2, w3, w4, w5, w6, w7, w8 = w
            a_h1, a_h2, a_o1, a_o2 = forward(w, i1, i2)
            d_o1 = (a_o1 - t1) * a_o1 * (1.0 - a_o1)
            d_o2 = (a_o2 - t2) * a_o2 * (1.0 - a_o2)
            d_h1 = (d_o1 * w5 + d_o2 * w7) * a_h1 * (1.0 - a_h1)
            d_h2 = (d_o1 * w6 + d_o2 * w8) * a_h2 * (1.0 - a_h2)
            new = (
                w1 - lr * (d_h1 * i1),
                w2 - lr * (d_h1 * i2),
                w3 - lr * (d_h2 * i1),
                w4 - lr * (d_h2 * i2),
                w5 - lr * (d_o1 * a_h1),
                w6 - lr * (d_o1 * a_h2),
                w7 - lr * (d_o2 * a_h1),
                w8 - lr * (d_o2 * a_h2),
            )
            return new, None

        w, _ = lax.scan(step, w, None, length=steps)
        _, _, a_o1, a_o2 = forward(w, i1, i2)
        loss = 0.5 * (t1 - a_o1) ** 2 + 0.5 * (t2 - a_o2) ** 2
        return w, loss

    # vmap over runs: each of the 8 weight arrays and lr along axis 0, io shared
    batched = jax.vmap(one_run, in_axes=(0, 0, None), out_axes=(0, 0))

    def train(W, lr, io):
        w, loss = batched(tuple(W[k] for k in range(8)), lr, io)
        return jnp.stack(w), loss

    return jax.jit(train)


def run(problem: Problem, threads=None) -> PeerResult:
    jax = _import()
    dt = problem.dtype
    fn = _build(jax, problem.steps)
    w = jax.device_put(problem.w_init)
    lr = jax.device_put(problem.lr)
    io = jax.device_put(np.array(problem.inputs + problem.targets, dtype=dt))
    if w.dtype != dt:
        raise PeerUnavailable(f"jax gave {w.dtype}, wanted {dt} (x64 not enabled?)")
    # compile ahead of time for these shapes (excluded from the timing)
    compiled = fn.lower(w, lr, io).compile()
    t0 = time.perf_counter()
    w_out, loss = compiled(w, lr, io)
    jax.block_until_ready((w_out, loss))
    seconds = time.perf_counter() - t0
    return PeerResult(np.asarray(w_out), np.asarray(loss), seconds, problem.runs, problem.steps)
