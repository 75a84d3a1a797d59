"""Times fastbp.kernels.train of whichever tree is first on PYTHONPATH, for ``bench.py --against``.

It runs inside either tree (this one and the revision compared with), so it uses nothing but
numpy, numba and the one function it times, and nothing of the bench: the problem arrives as
.npy files the parent wrote, so both trees train exactly the same runs. Run it with ``python -P``
(nothing but PYTHONPATH prepended to sys.path).

    python -P kernel_child.py '{"w_init": PATH, "lr": PATH, "inputs": [i1, i2],
                                "targets": [t1, t2], "steps": N, "threads": T, "repeat": K,
                                "diagnostics": false}'

prints one JSON line: the seconds of each timed call, the threads used, the package directory
and a SHA-256 of the final losses' bytes (equal digests: both trees computed the same bits).
"""

import hashlib
import inspect
import json
import os
import sys
import time

import numba
import numpy as np

import fastbp
from fastbp.kernels import train

_BY_POSITION = ("w_init", "lr", "inputs", "targets", "steps")


def call(w_init, lr, inputs, targets, steps, diagnostics=False):
    """train(...) with record_every = 0: by name when train names these parameters (so the call
    survives a parameter turning keyword-only, and a new keyword with a default is left out),
    else by position. ``diagnostics``: as a sweep with ``diagnostics = true`` and every column
    calls it (the per-step tracking, and the sharpness at the first and last step)."""
    values = dict(zip(_BY_POSITION, (w_init, lr, inputs, targets, steps)), record_every=0)
    if diagnostics:
        values.update(diagnostics=True, stability_steps=[0, steps])
    params = inspect.signature(train).parameters
    if all(name in params for name in _BY_POSITION):
        return train(**{name: value for name, value in values.items() if name in params})
    return train(w_init, lr, inputs, targets, steps)


def main(job):
    w_init, lr = np.load(job["w_init"]), np.load(job["lr"])
    inputs, targets, steps = tuple(job["inputs"]), tuple(job["targets"]), int(job["steps"])
    threads = max(1, min(int(job["threads"]), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    # compile (or load from the tree's cache) on a tiny problem: not part of the timing
    tiny = min(lr.shape[0], 64)
    diagnostics = bool(job.get("diagnostics"))
    call(
        np.ascontiguousarray(w_init[:, :tiny]), lr[:tiny].copy(), inputs, targets, min(steps, 3), diagnostics
    )
    seconds, result = [], None
    for _ in range(max(1, int(job["repeat"]))):
        start = time.perf_counter()
        result = call(w_init, lr, inputs, targets, steps, diagnostics)
        seconds.append(time.perf_counter() - start)
    final = getattr(result, "final_loss", None)
    digest = hashlib.sha256(np.ascontiguousarray(final).tobytes()).hexdigest() if final is not None else None
    package = os.path.dirname(os.path.dirname(os.path.abspath(fastbp.__file__)))
    print(
        json.dumps({"seconds": seconds, "threads": threads, "package": package, "final_loss_sha256": digest})
    )


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
