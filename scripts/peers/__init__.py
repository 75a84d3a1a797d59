"""Benchmark peers for fastbp: the same problem computed by other means.

Every peer computes the SPEC's 2-2-2 sigmoid network trained by plain gradient descent
on one sample, for R independent runs (each with its own 8 initial weights and its own
learning rate), N steps, the same inputs and targets for every run: a
`benchkit.problem.Problem`.  Each returns a `PeerResult`: final weights (8, R), final loss
(R,) = E_total at step N (after the last update, one extra forward pass) and the compute
seconds measured inside the peer (start-up, compilation and warm-up excluded).

Peers (one module each, all exposing ``run(problem, threads=None)``):

- ``numpy_batch``  NumPy vectorised over runs, float64 or float32
- ``python_loop``  plain Python with math.exp, one run at a time
- ``c_peer``       the C loop (c_loop.c, gcc -O3 -march=native -ffast-math -fopenmp)
- ``jax_peer``     jit + vmap + lax.scan
- ``torch_peer``   batched tensors, manual backward (and an autograd variant)

A peer that cannot run here (missing package, no compiler) raises `PeerUnavailable`
with the reason.  The one validator of their results is `benchkit.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class PeerUnavailable(RuntimeError):
    """The peer cannot run on this machine; str(exc) is the reason."""


@dataclass
class PeerResult:
    weights: np.ndarray  # (8, R)
    final_loss: np.ndarray  # (R,)
    seconds: float  # compute time measured inside the peer
    runs: int
    steps: int

    @property
    def run_steps(self) -> int:
        return self.runs * self.steps

    @property
    def run_steps_per_s(self) -> float:
        return self.run_steps / self.seconds if self.seconds > 0 else float("inf")
