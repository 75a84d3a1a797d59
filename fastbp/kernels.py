"""The kernels' API: ``train`` trains many runs in slices of steps, and the step table's rows.

``train`` hands a call's runs to the compiled kernel of their variant (``compile_time.Variant``,
made by ``kernels_train.train_kernel``) and runs it in slices: all runs advance a slice of steps
per compiled call and carry their state between calls, so that Python regains control every
fraction of a second (a Ctrl-C is honoured and progress is reported inside a long shard);
results do not depend on the slicing. Validation is the caller's: this converts arrays only.

Compile policy: every kernel is ``cache=True``: compiled on first use per variant and dtype
(float64, float32), then loaded from ``__pycache__`` (or Numba's user cache directory when the
package directory is read-only); the cache key covers the kernel's file and every file it
inlines or freezes (``_numba_cache``). Nothing compiles at import, and a command compiles only
what it calls; ``on_compile`` says when a call is about to compile.
"""

import time
from collections import namedtuple

import numba
import numpy as np

from fastbp.compile_time import BLOCK, Variant, carried_rows, recorded_steps
from fastbp.conventions import DEFAULT_TOLERANCE

_CHUNK_BLOCKS = 4  # blocks per dynamic work item of the parallel loop
_FIRST_SLICE_RUN_STEPS = 2**22  # ~10 ms: the first slice measures the rate for the next ones


class TrainResult(
    namedtuple("TrainResult", "weights final_loss min_loss first_step_below_tol loss recorded_steps")
):
    """``train``'s result: the six arrays, and three attributes that are not ``_fields`` (code that
    unpacks or walks the six arrays works on every result; ``_replace``/``_make`` drop them):

    - ``biases``: (4, R) final b_h1, b_h2, b_o1, b_o2 (the initial ones when fixed), or None;
    - ``diagnostics``: with ``diagnostics=True``, a dict of (R,) arrays named as
      ``kernels_diagnostics.VALUE_NAMES`` and ``COUNT_NAMES`` (and final_loss); else None;
    - ``stability``: with ``stability_steps``, (steps (P,), sharpness (R, P), stability (R, P)),
      float64; else None.
    """

    biases = diagnostics = stability = None

    def __new__(cls, *fields, biases=None, diagnostics=None, stability=None):
        result = super().__new__(cls, *fields)
        result.biases, result.diagnostics, result.stability = biases, diagnostics, stability
        return result


def _recording_position(s0, record_every):
    """(column, until_record) at the start of step s0: recorded steps before s0, steps to the next."""
    if record_every == 0:
        return 0, 0
    return -(-s0 // record_every), -s0 % record_every


def _next_slice_steps(steps_done, seconds, slice_seconds):
    """Steps of the next slice, from the last one's rate; at most 64x longer than the last one."""
    if seconds <= 0:
        return 64 * steps_done
    return max(1, min(64 * steps_done, int(steps_done * slice_seconds / seconds)))


def train(
    w_init,
    lr,
    inputs,
    targets,
    steps,
    record_every=0,
    tolerance=DEFAULT_TOLERANCE,
    *,
    lr_output=None,
    biases=None,
    train_biases=False,
    shared_biases=False,
    diagnostics=False,
    stability_steps=None,
    layers=(2, 2, 2),
    activation="sigmoid",
    output_activation=None,
    update="batch",
    on_slice=None,
    on_compile=None,
    slice_seconds=0.25,
    _slice_steps=None,
):
    """Train R independent runs for ``steps`` steps each (docs/model.md).

    w_init: (n_weights, R) float32 or float64 initial weights in docs/model.md's parameter order
    (for the exercise's network, rows w1..w8); lr: (R,) learning rates. ``inputs`` and
    ``targets`` are the patterns, shared by all runs: (P, n_in) and (P, n_out), or one pattern
    flat ((i1, i2), (t1, t2)). Computes in w_init's dtype.
    Returns a ``TrainResult``: weights (n_weights, R) final; final_loss, min_loss (R,);
    first_step_below_tol (R,) int64 (first step whose E_total < tolerance, −1 if none);
    loss (R, n_recorded) E_total at ``recorded_steps(steps, record_every)``; recorded_steps;
    biases (see below). The caller validates (steps < 2**31); this only converts to contiguous
    arrays of one dtype.

    The network (docs/model.md "Networks"): ``layers`` (n_in, n_hidden, n_out), the hidden layer's
    ``activation`` and the output layer's (None: the same), ``update`` "batch" (one step of the
    gradient of E summed over the patterns) or "online" (one update per pattern, in order).
    The variant (docs/model.md "Biases", "Learning rate per layer"): ``lr_output`` (R,) gives the
    output layer's rates, and then ``lr`` holds the hidden layer's. ``biases`` (n_hidden + n_out,
    R) gives the initial biases of the hidden then the output units (b_h1, b_h2, b_o1, b_o2),
    fixed unless ``train_biases``; with ``shared_biases`` a trained layer's bias moves by the sum
    of its units' gradients (pass equal rows: they stay equal). Equal rates give the single-rate
    results bit for bit, and zero biases the bias-free.

    Diagnostics (docs/model.md "Regimes"): ``diagnostics=True`` tracks every step's E_total
    (``result.diagnostics``); ``stability_steps`` (ascending ints in 0 … steps) computes the
    sharpness and the stability number at those steps (``result.stability``; with
    ``lr_output`` the per-layer number). Neither changes the runs' other results.

    The steps run in slices, one compiled call each, so that Python gets control back about
    every ``slice_seconds`` whatever R and ``steps``: a signal handler runs and a progress bar
    moves between slices. Each call advances every run over the same steps [s0, s1) and leaves
    its state (weights, biases, running minimum, steps_not_below count) in arrays for the next; a
    run's operations, and so its bits, do not depend on where the slices fall. The first slice
    is short (about 2**22 run-steps); later ones are sized from the last one's measured rate,
    and end at every step of ``stability_steps``. ``on_slice(steps_done)`` is called after each
    slice; whatever it raises propagates, and no partial result is returned. ``on_compile(what)``
    is called when a kernel starts compiling (not when it loads from the cache). (``_slice_steps``
    fixes the slice length, for tests.)
    """
    dtype = np.dtype(w_init.dtype)
    w_init = np.ascontiguousarray(w_init)
    lr = np.ascontiguousarray(lr, dtype=dtype)
    n_runs = lr.shape[0]
    patterns = _patterns(inputs, targets, layers)
    variant = Variant.of(
        two_rates=lr_output is not None,
        biases=biases is not None,
        train_biases=train_biases,
        shared_biases=shared_biases,
        diagnostics=diagnostics,
        layers=layers,
        activation=activation,
        output_activation=output_activation,
        patterns=len(patterns),
        update=update,
    )
    if w_init.shape[:1] != (variant.n_weights,):
        raise ValueError(
            f"w_init must be ({variant.n_weights}, R) for layers {list(layers)}, not {w_init.shape}"
        )
    lr_output = lr if lr_output is None else np.ascontiguousarray(lr_output, dtype=dtype)
    biases = _checked_biases(biases, n_runs, dtype, variant)
    points = None if stability_steps is None else np.asarray(stability_steps, dtype=np.int64)
    if points is not None and not variant.is_exercise_network:
        raise ValueError(
            f"stability_steps: the sharpness is computed for the 2-2-2 network on one pattern only, not {variant.network_words()}"
        )
    data = np.ascontiguousarray(patterns.ravel(), dtype=dtype)
    # Padding lanes cost as much as runs: one run alone still computes a whole block.
    padded = max(1, (n_runs + BLOCK - 1) // BLOCK * BLOCK)
    slice_steps = _slice_steps or max(1, _FIRST_SLICE_RUN_STEPS // padded)
    # A single slice never carries its state: the arrays only exist when a run is cut.
    cut = slice_steps < steps or (points is not None and bool(np.any((points > 0) & (points < steps))))
    runner = SliceRunner(variant, w_init, lr, lr_output, biases, data, tolerance, steps, record_every, cut)
    measured = None
    if points is not None:
        measured = StabilityPoints(points, n_runs, runner.stability_numbers)
        with _compile_noted(on_compile, "the sharpness kernel"):
            measured.take(0, w_init, biases)

    if n_runs == 0:
        return runner.result(measured)
    s0 = 0
    while True:
        s1 = min(steps, s0 + slice_steps)
        if measured is not None:
            s1 = measured.next_stop(s0, s1)
        started = time.perf_counter()
        with _compile_noted(on_compile if s0 == 0 else None, f"the {dtype.name} training kernel ({variant})"):
            runner.run(s0, s1)
        seconds = time.perf_counter() - started
        if measured is not None and s1 < steps:
            measured.take(s1, *runner.carried_parameters())
        if on_slice is not None:
            on_slice(s1)
        if s1 == steps:
            if measured is not None:
                with _compile_noted(on_compile, "the sharpness kernel"):
                    measured.take(steps, runner.out_weights, runner.final_biases)
            return runner.result(measured)
        if _slice_steps is None:
            slice_steps = _next_slice_steps(s1 - s0, seconds, slice_seconds)
        s0 = s1


class SliceRunner:
    """``train``'s one slice path: runs a slice of every run (``run``), holds what the slices carry,
    and makes the result. ``data`` is (i1, i2, t1, t2) in the dtype; ``cut``: whether the run is
    cut in slices (then the carried state needs its arrays)."""

    def __init__(
        self, variant, w_init, lr_hidden, lr_output, biases, data, tolerance, steps, record_every, cut
    ):
        from fastbp import kernels_diagnostics as trackers
        from fastbp.kernels_train import train_kernel

        dtype = lr_hidden.dtype
        self.variant, self.kernel = variant, train_kernel(variant)
        self.n_runs = n_runs = lr_hidden.shape[0]
        self.steps, self.record_every = steps, record_every
        self.kept = recorded_steps(steps, record_every)
        self.out_weights = np.empty((variant.n_weights, n_runs), dtype=dtype)
        self.out_final = np.empty(n_runs, dtype=dtype)
        self.out_min = np.empty(n_runs, dtype=dtype)
        self.out_first_hit = np.empty(n_runs, dtype=np.int64)
        self.out_loss = np.empty((n_runs, self.kept.shape[0]), dtype=dtype)
        self.n_carried = n_carried = (n_runs + BLOCK - 1) // BLOCK if cut else 0
        self.carried = np.empty(n_carried * carried_rows(variant) * BLOCK, dtype=dtype)
        self.carried_counts = np.empty(n_carried * BLOCK, dtype=np.int32)
        trained = variant.train_biases
        n_units = variant.n_units
        self.out_biases = np.empty((n_units, n_runs if trained else 0), dtype=dtype)
        self.initial = np.empty((n_units, 0), dtype=dtype) if biases is None else biases
        self.final_biases = self.out_biases if trained else None if biases is None else biases.copy()
        v_rows, c_rows = trackers.VALUE_ROWS, trackers.COUNT_ROWS
        with_diag = n_carried if variant.diagnostics else 0
        self.carried_diag = np.empty(with_diag * v_rows * BLOCK, dtype=dtype)
        self.carried_diag_counts = np.empty(with_diag * c_rows * BLOCK, dtype=np.int32)
        self.diag = np.empty((v_rows - 1, n_runs if variant.diagnostics else 0), dtype=dtype)
        self.diag_counts = np.empty((c_rows, n_runs if variant.diagnostics else 0), dtype=np.int32)
        self.data, self.tol = data, dtype.type(tolerance)
        self.w_init, self.lr_hidden, self.lr_output, self.biases = w_init, lr_hidden, lr_output, biases

    def run(self, s0, s1):
        """Steps [s0, s1) of every run (the last slice, s1 = steps, fills the outputs)."""
        column0, until_record0 = _recording_position(s0, self.record_every)
        slice_position = (
            np.int64(v) for v in (s0, s1, self.steps, self.record_every, column0, until_record0)
        )
        # Blocks are handed out a few at a time, not in one static slice per thread: on a busy
        # machine a descheduled thread then delays only its last few blocks. (Results do not
        # depend on this: blocks share nothing.)
        with numba.parallel_chunksize(_CHUNK_BLOCKS):
            self.kernel(
                self.w_init,
                self.lr_hidden,
                self.lr_output,
                self.initial,
                self.data,
                *slice_position,
                self.tol,
                self.carried,
                self.carried_counts,
                self.out_weights,
                self.out_biases,
                self.out_final,
                self.out_min,
                self.out_first_hit,
                self.out_loss,
                self.carried_diag,
                self.carried_diag_counts,
                self.diag,
                self.diag_counts,
            )

    def carried_parameters(self):
        """(weights (n_weights, R), trained biases (n_units, R) or None) of the state carried after a slice."""
        n_rows, n_weights = carried_rows(self.variant), self.variant.n_weights
        blocks = self.carried.reshape(self.n_carried, n_rows, BLOCK)
        rows = blocks.transpose(1, 0, 2).reshape(n_rows, -1)[:, : self.n_runs]
        return rows[:n_weights], rows[n_weights + 1 :] if self.variant.train_biases else None

    def stability_numbers(self, weights, trained_biases):
        """(sharpness, stability) at ``weights`` and the biases there (fixed ones: the initial)."""
        from fastbp.kernels_sharpness import stability_numbers

        v = self.variant
        biases = self.biases if trained_biases is None else trained_biases
        inputs, targets = tuple(self.data[:2]), tuple(self.data[2:])
        options = dict(train_biases=v.train_biases, shared_biases=v.shared_biases, per_layer=v.two_rates)
        return stability_numbers(weights, self.lr_hidden, self.lr_output, inputs, targets, biases, **options)

    def result(self, measured):
        """The ``TrainResult`` once the last slice has run."""
        from fastbp import kernels_diagnostics as trackers

        diagnostics = None
        if self.variant.diagnostics:
            diagnostics = dict(zip(trackers.VALUE_NAMES, self.diag))
            diagnostics.update(zip(trackers.COUNT_NAMES, self.diag_counts))
            diagnostics["final_loss"] = self.out_final
        outputs = (
            self.out_weights,
            self.out_final,
            self.out_min,
            self.out_first_hit,
            self.out_loss,
            self.kept,
        )
        stability = None if measured is None else measured.arrays()
        return TrainResult(*outputs, biases=self.final_biases, diagnostics=diagnostics, stability=stability)


class StabilityPoints:
    """The sharpness and stability number of every run at the steps asked: ``train``'s loop
    stops a slice at each step of ``points`` and hands over the parameters there (``take``);
    ``numbers(weights, trained biases or None)`` → (sharpness, stability) computes them."""

    def __init__(self, points, n_runs, numbers):
        self.points, self.numbers = points, numbers
        self.sharpness = np.full((n_runs, len(points)), np.nan)
        self.stability = np.full((n_runs, len(points)), np.nan)

    def next_stop(self, s0, s1):
        """The slice [s0, s1) cut at the first point after s0."""
        later = self.points[self.points > s0]
        return min(s1, int(later[0])) if len(later) else s1

    def take(self, step, weights, biases):
        columns = np.flatnonzero(self.points == step)
        if len(columns):
            sharpness, stability = self.numbers(weights, biases)
            self.sharpness[:, columns] = sharpness[:, None]
            self.stability[:, columns] = stability[:, None]

    def arrays(self):
        return self.points, self.sharpness, self.stability


class _CompileListener:
    """Numba's "numba:compile" event fires on a cache miss only: a real compile, not a load."""

    def __init__(self, on_compile, what):
        self.on_compile, self.what, self.said = on_compile, what, False

    def on_start(self, event):
        if not self.said:
            self.said = True
            self.on_compile(self.what)

    def on_end(self, event):
        pass


def _compile_noted(on_compile, what):
    """A context in which a kernel that starts compiling calls ``on_compile(what)`` (once)."""
    import contextlib

    if on_compile is None:
        return contextlib.nullcontext()
    from numba.core import event

    listener = type("Listener", (_CompileListener, event.Listener), {})(on_compile, what)
    return event.install_listener("numba:compile", listener)


def _patterns(inputs, targets, layers):
    """The training patterns as one (P, n_in + n_out) float64 array: each one's inputs, then its targets."""
    n_in, n_hidden, n_out = layers
    inputs = np.asarray(inputs, dtype=np.float64).reshape(-1, n_in)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1, n_out)
    if len(inputs) != len(targets) or len(inputs) == 0:
        raise ValueError(
            f"{len(inputs)} input patterns and {len(targets)} target patterns: equal, at least one"
        )
    return np.hstack([inputs, targets])


def _checked_biases(biases, n_runs, dtype, variant):
    """``biases`` as a contiguous (n_units, R) array, or None; refuses what ``train`` cannot honour."""
    if biases is None:
        return None
    biases = np.ascontiguousarray(biases, dtype=dtype)
    n_hidden = variant.layers[1]
    if biases.shape != (variant.n_units, n_runs):
        raise ValueError(
            f"biases must be ({variant.n_units}, {n_runs}) (the hidden then the output units' per run), "
            f"not {biases.shape}"
        )
    if variant.shared_biases:
        layers = biases[:n_hidden], biases[n_hidden:]
        if not all((layer == layer[:1]).all() or np.isnan(layer).all() for layer in layers):
            raise ValueError("shared biases need equal rows within a layer: b_h1 = b_h2 and b_o1 = b_o2")
    return biases


def step_table_rows(*args, **kwargs):
    """``kernels_table.step_table_rows``: imported on first use, so a sweep never loads it."""
    from fastbp.kernels_table import step_table_rows

    return step_table_rows(*args, **kwargs)


def step_table_array(*args, **kwargs):
    """``kernels_table.step_table_array`` (see ``step_table_rows``)."""
    from fastbp.kernels_table import step_table_array

    return step_table_array(*args, **kwargs)


def network_table_rows(*args, **kwargs):
    """``kernels_table.network_table_rows``: another network's step table (see ``step_table_rows``)."""
    from fastbp.kernels_table import network_table_rows

    return network_table_rows(*args, **kwargs)
