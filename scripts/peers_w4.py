#!/usr/bin/env python
"""W4's peers: the 10-5-10 encoder trained by NumPy, JAX and PyTorch on the CPU (issue 22).

W4 is `layers = [10, 5, 10]`, `data = "encoder"` (10 one-hot patterns, target = input), sigmoid
hidden and output units, a trained bias on every unit, batch updates (the gradient of
E = ½ Σ_p Σ_k (t_p[k] − a_o[k])² summed over the 10 patterns, one update per step), float64,
64 learning rates (logspace −1 … 1) × 1,024 uniform [−1, 1] starts × 500 steps, nothing recorded:
each run gives its final loss (E after the last update) and its final parameters.

Every peer computes exactly that from the same arrays (`w4_problem`) and returns a `W4Result`:

- ``numpy``  NumPy over blocks of runs: the hidden layer one GEMM over the block's runs, the output
             layer a batched matmul, preallocated buffers, in-place ufuncs; the blocks shared by
             `threads` Python threads (NumPy releases the GIL inside each operation).
- ``jax``    one run's step on matrices, `lax.fori_loop` over steps, `jax.vmap` over runs,
             `jax.jit`, float64 (`jax_enable_x64`); gradients written out (``jax-grad``: `jax.grad`).
             XLA's own thread pool, all cores.
- ``torch``  the NumPy peer's block body on tensors, `torch.set_num_threads(threads)`
             (``torch-func``: `torch.func.vmap(torch.func.grad(one run's loss))` over each block).

`time_peer` times one peer after a warm-up call of one step on the full problem (JAX compiles
there; the steps count is a traced argument, so the timed calls reuse that compilation).
Run as a script it prints the table: `python scripts/peers_w4.py [--full]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

LAYERS = (10, 5, 10)
RATES_LOG10 = (-1.0, 1.0)
BLOCK_RUNS = 1024  # a block's buffers (~0.4 MB each) stay in L2; its hidden-layer GEMM (5,120 × 10 × 10)
# stays under OpenBLAS's threshold for threading, so the blocks, not BLAS, share the threads


@dataclass
class W4Problem:
    """R runs (rate index outer: run r has rate lrs[r // n_starts] and start r % n_starts)."""

    inputs: np.ndarray  # (patterns, n_in)
    targets: np.ndarray  # (patterns, n_out)
    W_h: np.ndarray  # (R, n_hidden, n_in): W_h[r, j, i] is the weight from input i to hidden j
    W_o: np.ndarray  # (R, n_out, n_hidden)
    b_h: np.ndarray  # (R, n_hidden)
    b_o: np.ndarray  # (R, n_out)
    lr: np.ndarray  # (R,)
    steps: int

    @property
    def runs(self) -> int:
        return len(self.lr)


@dataclass
class W4Result:
    loss: np.ndarray  # (R,): E after the last update
    W_h: np.ndarray
    W_o: np.ndarray
    b_h: np.ndarray
    b_o: np.ndarray


def w4_problem(n_lrs=64, n_starts=1024, steps=500, seed=0, layers=LAYERS) -> W4Problem:
    """The encoder, `n_lrs` rates logspace(−1, 1) × `n_starts` uniform [−1, 1] starts, float64.

    Each start draws its parameters from numpy's default_rng(seed) in fastbp's documented order
    (`flat_params`); every rate sees the same starts."""
    n_in, n_hidden, n_out = layers
    if n_in != n_out:
        raise ValueError(f"the encoder needs n_in == n_out, not {layers}")
    starts = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n_starts, n_parameters(layers)))
    W_h, W_o, b_h, b_o = split_params(np.tile(starts, (n_lrs, 1)), layers)
    lr = np.repeat(np.logspace(*RATES_LOG10, n_lrs), n_starts)
    eye = np.eye(n_in)
    return W4Problem(eye, eye.copy(), W_h, W_o, b_h, b_o, lr, steps)


def n_parameters(layers=LAYERS) -> int:
    n_in, n_hidden, n_out = layers
    return n_hidden * n_in + n_out * n_hidden + n_hidden + n_out


def flat_params(W_h, W_o, b_h, b_o) -> np.ndarray:
    """(R, n_parameters) in fastbp's order: w_h1_i1 … w_hH_iI, w_o1_h1 … w_oO_hH, b_h…, b_o…"""
    runs = len(W_h)
    return np.concatenate([W_h.reshape(runs, -1), W_o.reshape(runs, -1), b_h, b_o], axis=1)


def split_params(flat, layers=LAYERS):
    """The inverse of `flat_params`: (W_h, W_o, b_h, b_o), each C-contiguous."""
    n_in, n_hidden, n_out = layers
    edges = np.cumsum([n_hidden * n_in, n_out * n_hidden, n_hidden])
    w_h, w_o, b_h, b_o = np.split(flat, edges, axis=1)
    runs = len(flat)
    return tuple(
        np.ascontiguousarray(a)
        for a in (w_h.reshape(runs, n_hidden, n_in), w_o.reshape(runs, n_out, n_hidden), b_h, b_o)
    )


# --- NumPy and PyTorch: one block body for both ----------------------------------------------
#
# A block's activations are (runs, units, patterns): the hidden layer of every run in the block is
# then one GEMM, (runs·hidden, inputs) @ (inputs, patterns), since every run sees the same inputs
# (and its weight gradient likewise one GEMM); the output layer is a batched matmul
# (runs, outputs, hidden) @ (runs, hidden, patterns).  Every array is preallocated and every
# operation writes into one (a fresh array per operation costs more than the operation).  This
# measured 1.1-1.2x the (runs, patterns, n) @ (runs, n, h) form with the same buffers.


def _train_block(xp, sigmoid_, x, t, W_h, W_o, b_h, b_o, lr, steps):
    """`steps` batch updates of one block of runs, in place; returns E after the last one.

    `xp` is numpy or torch (the names used here mean the same in both); `sigmoid_(z)` overwrites
    z with 1 / (1 + e^−z)."""
    (runs, n_hidden, n_in), n_out, patterns = W_h.shape, W_o.shape[1], len(x)
    a_h, d_h, slope_h = (xp.empty((runs, n_hidden, patterns), dtype=W_h.dtype) for _ in range(3))
    a_o, d_o, slope_o = (xp.empty((runs, n_out, patterns), dtype=W_h.dtype) for _ in range(3))
    g_h, g_o, gb_h, gb_o = (xp.empty(a.shape, dtype=a.dtype) for a in (W_h, W_o, b_h, b_o))
    x_t, t_t, one = x.T, t.T, xp.asarray(1.0, dtype=W_h.dtype)
    rate, rate_b = lr[:, None, None], lr[:, None]

    def forward():
        xp.matmul(W_h.reshape(runs * n_hidden, n_in), x_t, out=a_h.reshape(runs * n_hidden, patterns))
        xp.add(a_h, b_h[:, :, None], out=a_h)
        sigmoid_(a_h)
        xp.matmul(W_o, a_h, out=a_o)
        xp.add(a_o, b_o[:, :, None], out=a_o)
        sigmoid_(a_o)

    for _ in range(steps):
        forward()
        xp.subtract(one, a_o, out=slope_o)  # δ_o = (a_o − t)·a_o(1 − a_o)
        xp.multiply(slope_o, a_o, out=slope_o)
        xp.subtract(a_o, t_t, out=d_o)
        xp.multiply(d_o, slope_o, out=d_o)
        xp.matmul(W_o.swapaxes(1, 2), d_o, out=d_h)  # δ_h = (W_oᵀ·δ_o)·a_h(1 − a_h), W_o not yet updated
        xp.subtract(one, a_h, out=slope_h)
        xp.multiply(slope_h, a_h, out=slope_h)
        xp.multiply(d_h, slope_h, out=d_h)
        # every gradient summed over the patterns (by the matmul or the sum), then θ −= rate·g
        xp.matmul(d_o, a_h.swapaxes(1, 2), out=g_o)
        xp.matmul(d_h.reshape(runs * n_hidden, patterns), x, out=g_h.reshape(runs * n_hidden, n_in))
        xp.sum(d_o, axis=2, out=gb_o)
        xp.sum(d_h, axis=2, out=gb_h)
        for param, grad, r in ((W_o, g_o, rate), (W_h, g_h, rate), (b_o, gb_o, rate_b), (b_h, gb_h, rate_b)):
            xp.multiply(grad, r, out=grad)
            xp.subtract(param, grad, out=param)
    forward()
    xp.subtract(a_o, t_t, out=d_o)
    xp.multiply(d_o, d_o, out=d_o)
    return 0.5 * d_o.sum(axis=(1, 2))


def _numpy_sigmoid_(z):
    np.negative(z, out=z)
    np.exp(z, out=z)
    np.add(z, 1.0, out=z)
    np.reciprocal(z, out=z)


def _in_blocks(train_block, problem, steps, threads, block, to_array):
    """Train copies of the problem's parameters in blocks of `block` runs, `threads` Python
    threads taking blocks in turn (NumPy and PyTorch release the GIL inside an operation)."""
    p = problem
    x, t, W_h, W_o, b_h, b_o, lr = (to_array(a.copy()) for a in (p.inputs, p.targets, *_params(p)))
    losses = {}

    def train(start):
        s = slice(start, start + block)
        losses[start] = train_block(x, t, W_h[s], W_o[s], b_h[s], b_o[s], lr[s], steps)

    starts = range(0, p.runs, block)
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(train, starts))
    else:  # in the calling thread: PyTorch's thread count (set_num_threads) is the caller's
        list(map(train, starts))
    return [losses[start] for start in sorted(losses)], (W_h, W_o, b_h, b_o)


def numpy_w4(problem: W4Problem, steps=None, threads=1, block=BLOCK_RUNS) -> W4Result:
    """NumPy, blocks of `block` runs shared by `threads` Python threads."""
    steps = problem.steps if steps is None else steps

    def train_block(*arrays):
        return _train_block(np, _numpy_sigmoid_, *arrays)

    with np.errstate(over="ignore"):
        losses, params = _in_blocks(train_block, problem, steps, threads, block, np.asarray)
    return W4Result(np.concatenate(losses), *params)


# --- JAX --------------------------------------------------------------------------------------

_jax_trains = {}


def _jax():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _jax_train(gradient: str):
    """jit(vmap(one run)): (x, t, W_h, W_o, b_h, b_o, lr, steps) → (loss, W_h, W_o, b_h, b_o)."""
    if gradient in _jax_trains:
        return _jax_trains[gradient]
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax

    def sigmoid(z):
        return 1.0 / (1.0 + jnp.exp(-z))

    def outputs(params, x):
        W_h, W_o, b_h, b_o = params
        a_h = sigmoid(x @ W_h.T + b_h)
        return a_h, sigmoid(a_h @ W_o.T + b_o)

    def loss(params, x, t):
        return 0.5 * jnp.sum((t - outputs(params, x)[1]) ** 2)

    def written_out(params, x, t):
        a_h, a_o = outputs(params, x)
        d_o = (a_o - t) * a_o * (1.0 - a_o)
        d_h = (d_o @ params[1]) * a_h * (1.0 - a_h)
        return d_h.T @ x, d_o.T @ a_h, d_h.sum(0), d_o.sum(0)

    gradients = {"written": written_out, "grad": jax.grad(loss)}[gradient]

    def one_run(x, t, W_h, W_o, b_h, b_o, lr, steps):
        def step(_, params):
            return tuple(p - lr * g for p, g in zip(params, gradients(params, x, t)))

        params = lax.fori_loop(0, steps, step, (W_h, W_o, b_h, b_o))
        return loss(params, x, t), *params

    train = jax.jit(jax.vmap(one_run, in_axes=(None, None, 0, 0, 0, 0, 0, None)))
    _jax_trains[gradient] = train
    return train


def jax_w4(problem: W4Problem, steps=None, threads=None, gradient="written") -> W4Result:
    """JAX on the CPU; XLA's own thread pool (`threads` is not applied)."""
    jax = _jax()
    steps = problem.steps if steps is None else steps
    arrays = [jax.device_put(a) for a in (problem.inputs, problem.targets, *_params(problem))]
    out = _jax_train(gradient)(*arrays, steps)
    return W4Result(*(np.asarray(a) for a in jax.block_until_ready(out)))


def jax_grad_w4(problem, steps=None, threads=None) -> W4Result:
    return jax_w4(problem, steps, threads, gradient="grad")


# --- PyTorch ----------------------------------------------------------------------------------


def _torch(threads):
    # OpenMP threads that spin at every barrier lose their core to any other work on the machine
    # (at load 4.5 on 2 cores, torch with 2 threads measured 70x slower than with PASSIVE); this
    # has to be set before torch loads OpenMP.  A quiet machine may set OMP_WAIT_POLICY=ACTIVE.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    return torch


def torch_w4(problem: W4Problem, steps=None, threads=2, block=BLOCK_RUNS) -> W4Result:
    """PyTorch, the NumPy peer's block body on tensors (torch.sigmoid in one pass), float64;
    `torch.set_num_threads(threads)`, blocks one after another."""
    torch = _torch(threads)
    steps = problem.steps if steps is None else steps

    def train_block(*tensors):
        return _train_block(torch, lambda z: torch.sigmoid(z, out=z), *tensors)

    with torch.no_grad():
        losses, params = _in_blocks(train_block, problem, steps, 1, block, torch.from_numpy)
    return W4Result(torch.cat(losses).numpy(), *(a.numpy() for a in params))


def torch_func_w4(problem: W4Problem, steps=None, threads=2, block=BLOCK_RUNS) -> W4Result:
    """PyTorch, `torch.func.vmap(torch.func.grad(one run's loss))` over a block of runs, float64."""
    torch = _torch(threads)
    from torch.func import grad, vmap

    steps = problem.steps if steps is None else steps

    def train_block(x, t, W_h, W_o, b_h, b_o, lr, steps):
        def loss(W_h, W_o, b_h, b_o):
            a_h = torch.sigmoid(x @ W_h.T + b_h)
            return 0.5 * ((t - torch.sigmoid(a_h @ W_o.T + b_o)) ** 2).sum()

        gradients = vmap(grad(loss, argnums=(0, 1, 2, 3)))
        params, rates = (W_h, W_o, b_h, b_o), (lr[:, None, None], lr[:, None, None], lr[:, None], lr[:, None])
        for _ in range(steps):
            for param, g, rate in zip(params, gradients(*params), rates):
                param.sub_(g.mul_(rate))
        return vmap(loss)(*params)

    with torch.no_grad():
        losses, params = _in_blocks(train_block, problem, steps, 1, block, torch.from_numpy)
    return W4Result(torch.cat(losses).numpy(), *(a.numpy() for a in params))


def _params(p):
    return p.W_h, p.W_o, p.b_h, p.b_o, p.lr


# --- timing and the table ---------------------------------------------------------------------


def fastbp_w4(problem: W4Problem, steps=None, threads=2) -> W4Result:
    """fastbp's kernel (scripts/benchkit/w4.py), warm after time_peer's one-step call."""
    from benchkit.w4 import fastbp_w4 as run

    return run(problem, steps, threads)


PEERS = {
    "fastbp": fastbp_w4,
    "numpy": numpy_w4,
    "jax": jax_w4,
    "jax-grad": jax_grad_w4,
    "torch": torch_w4,
    "torch-func": torch_func_w4,
}
NEEDS = {"jax": "jax", "jax-grad": "jax", "torch": "torch", "torch-func": "torch"}


def available_peers() -> list[str]:
    """The peers that can run here: NumPy always, JAX and PyTorch when importable."""
    import importlib.util

    return [name for name in PEERS if importlib.util.find_spec(NEEDS.get(name, "numpy")) is not None]


@dataclass
class Timing:
    peer: str
    seconds: list  # every timed call, in order
    run_steps: int
    result: W4Result  # of the last call

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def rate(self, seconds) -> float:
        """Run-steps per second."""
        return self.run_steps / seconds


def time_peer(name, problem: W4Problem, steps=None, repeats=3, threads=2) -> Timing:
    """`repeats` timed calls of peer `name` after one untimed warm-up call of one step on the
    same problem (JAX compiles there, PyTorch and NumPy allocate), each call start to finish:
    arrays in, final loss and parameters back as NumPy arrays."""
    peer = PEERS[name]
    steps = problem.steps if steps is None else steps
    peer(problem, 1, threads)
    seconds, result = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        result = peer(problem, steps, threads)
        seconds.append(time.perf_counter() - t0)
    return Timing(name, seconds, problem.runs * steps, result)


def max_rel_diff(loss, reference) -> float:
    """max |loss − reference| / |reference| over runs."""
    return float(np.max(np.abs(loss - reference) / np.abs(reference)))


def share_within(loss, reference, rel=1e-9) -> float:
    """The share of runs whose loss is within `rel` of the reference's, relatively."""
    return float(np.mean(np.abs(loss - reference) <= rel * np.abs(reference)))


def one_ulp_moved(problem: W4Problem) -> W4Problem:
    """The problem with every hidden weight's start moved up by one ulp.

    At the largest rates W4's runs are chaotic: a rounding-size difference grows to the size of
    the loss within 500 steps.  NumPy on these starts shows how far two correct peers (whose exp
    and summation order round differently) can disagree."""
    return replace(problem, W_h=np.nextafter(problem.W_h, np.inf))


def _peer_and_threads(entry: str, threads: int):
    """ "torch@1" → ("torch", 1); "torch" → ("torch", threads)."""
    name, _, n = entry.partition("@")
    return name, int(n) if n else threads


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="the full W4: 64 rates × 1,024 starts × 500 steps")
    ap.add_argument("--lrs", type=int, default=16, help="rates without --full (default 16)")
    ap.add_argument("--starts", type=int, default=256, help="starts without --full (default 256)")
    ap.add_argument("--steps", type=int, default=100, help="steps without --full (default 100)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per peer (default 3)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads (default: all cores)")
    ap.add_argument(
        "--peers",
        default=",".join(available_peers()),
        help="comma-separated peers, each optionally @threads (torch@1); NumPy always runs first",
    )
    args = ap.parse_args(argv)
    entries = [e for e in args.peers.split(",") if e]
    entries = ([] if "numpy" in entries else ["numpy"]) + entries
    unknown = sorted({e.partition("@")[0] for e in entries} - set(PEERS))
    if unknown:
        ap.error(f"unknown peers {unknown}; choose from {', '.join(PEERS)}")
    problem = w4_problem(steps=500) if args.full else w4_problem(args.lrs, args.starts, args.steps)
    from benchkit.machine import cpu_model, load_note  # scripts/ is on sys.path when run as a script

    print(f"W4: {problem.runs:,} runs × {problem.steps} steps, float64; {cpu_model()}")
    print(f"best and median of {args.repeats} calls after a one-step warm-up; load: {load_note()}")
    print(
        "\n| peer | threads | M run-steps/s (best / median) | seconds (best / median) "
        "| vs NumPy: max rel. diff, runs within 1e-9 | load |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    reference = None  # NumPy's losses: the first row

    def row(name, threads, speed, loss):
        agreement = f"{max_rel_diff(loss, reference):.1e}, {share_within(loss, reference):.1%}"
        print(f"| {name} | {threads} | {speed} | {agreement} | {os.getloadavg()[0]:.1f} |", flush=True)

    for entry in ["numpy", *(e for e in entries if e != "numpy")]:
        name, threads = _peer_and_threads(entry, args.threads)
        t = time_peer(name, problem, repeats=args.repeats, threads=threads)
        if reference is None:
            reference = t.result.loss
            moved = numpy_w4(one_ulp_moved(problem), threads=threads).loss
            row("numpy, W_h starts +1 ulp (untimed)", threads, "— | —", moved)
        rates = f"{t.rate(t.best) / 1e6:.3f} / {t.rate(t.median) / 1e6:.3f}"
        row(name, threads, f"{rates} | {t.best:.2f} / {t.median:.2f}", t.result.loss)
    print(f"\nload at the end: {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
