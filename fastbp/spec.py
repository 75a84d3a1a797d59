"""The sweep spec: a TOML file or a dict → a validated ``SweepSpec``; the grid of runs.

Run numbering (stable, part of the dataset contract): learning rates are the outer loop,
initialisations the inner one, ``run = lr_index * n_inits + init_number`` where init_number
counts the runs of the ``[[init]]`` blocks in file order. An initialisation's weights depend
only on (seed, block number, index in the block), so the same starting point is trained at
every lr, whatever the shard or machine that trains it.

Random weights come from a counter-based generator (SplitMix64 at position
``index * 16 + draw`` of a stream keyed by (seed, block)): any slice of runs is generated
without the runs before it. Uniform weights use only integer and IEEE arithmetic, so they are
the same bits on every machine; normal weights add ``log``, ``cos`` and ``sqrt`` from the C
library (Box–Muller), the same bits wherever the C library is the same.
"""

import copy
import functools
import json
import math
import os
import tomllib
from dataclasses import dataclass

import numpy as np

from fastbp import errors
from fastbp.course import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS
from fastbp.errors import SpecError

TOP_KEYS = {
    "steps",
    "lr",
    "dtype",
    "seed",
    "record_every",
    "tolerance",
    "shard_size",
    "name",
    "network",
    "init",
}
NETWORK_KEYS = {"inputs", "targets"}
INIT_KEYS = {
    # course and fixed imply their count; it is accepted when it agrees, so that the canonical
    # form (``SweepSpec.as_dict()``, which states every block's count) parses back to the spec.
    "course": {"kind", "count"},
    "uniform": {"kind", "low", "high", "count"},
    "normal": {"kind", "mean", "std", "count"},
    "xavier": {"kind", "distribution", "count"},
    "fixed": {"kind", "weights", "count"},
}
DTYPES = ("float64", "float32")
DEFAULT_TOLERANCE = 1e-4
MAX_RUNS = 2**53  # run numbers stay exact in float64 tools
MAX_RECORDED_POINTS = 2**21  # per run: a 64-run block of curves stays within 1 GiB
MAX_STEPS = 2**31 - 1  # the kernels count steps in int32 (as many SIMD lanes as float32)

# A spec is typed TOML: a number written as a string ("0.1") is the wrong type, not a number.
_integer = functools.partial(errors.integer, strings=False)
_finite_number = functools.partial(errors.finite_number, strings=False)
_number_tuple = functools.partial(errors.number_tuple, strings=False)


@dataclass(frozen=True)
class InitBlock:
    kind: str
    count: int
    params: dict  # the block as normalised (kind and count included)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep. ``as_dict()`` is the canonical form stored in the dataset."""

    steps: int
    lrs: tuple
    dtype: str
    seed: int
    record_every: int
    tolerance: float
    shard_size: int | None
    name: str | None
    inputs: tuple
    targets: tuple
    inits: tuple
    source: dict  # the normalised dict (lr as given, defaults filled in)

    @property
    def n_inits(self):
        return sum(block.count for block in self.inits)

    @property
    def n_runs(self):
        return len(self.lrs) * self.n_inits

    def as_dict(self):
        return copy.deepcopy(self.source)

    def canonical_json(self):
        return json.dumps(self.source, sort_keys=True, separators=(",", ":"))


def load_spec(spec):
    """A ``SweepSpec`` from a TOML path, a dict or a ``SweepSpec``; raises ``SpecError``."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        path = os.fspath(spec)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise SpecError("spec", path, "a readable TOML file (file not found)") from None
        except IsADirectoryError:
            raise SpecError("spec", path, "a TOML file, not a directory") from None
        except tomllib.TOMLDecodeError as exc:
            raise SpecError("spec", path, f"valid TOML ({exc})") from None
        return parse_spec(data)
    if isinstance(spec, dict):
        return parse_spec(spec)
    raise SpecError("spec", type(spec).__name__, "a TOML file path, a dict or a SweepSpec")


def parse_spec(data):
    """Validate a spec dict (as read from TOML) into a ``SweepSpec``."""
    _no_unknown_keys("spec", data, TOP_KEYS)
    for key in ("steps", "lr"):
        if key not in data:
            raise SpecError(key, "nothing", f"required key '{key}' (see the README's spec section)")
    steps = _integer("steps", data["steps"], minimum=1)
    if steps > MAX_STEPS:
        raise SpecError("steps", steps, f"an integer from 1 to {MAX_STEPS}")
    lr_source, lrs = _parse_lr(data["lr"])
    dtype = errors.choice("dtype", data.get("dtype", "float64"), DTYPES)
    seed = _integer("seed", data.get("seed", 0), minimum=0)
    if seed >= 2**64:
        raise SpecError("seed", seed, "an integer from 0 to 2**64 - 1")
    record_every = _integer("record_every", data.get("record_every", 1), minimum=0)
    tolerance = _finite_number("tolerance", data.get("tolerance", DEFAULT_TOLERANCE), positive=True)
    points = 1 if record_every == 0 else steps // record_every + 1 + (steps % record_every != 0)
    if points > MAX_RECORDED_POINTS:  # a shard holds at least one block of 64 curves in memory
        least = -(-steps // (MAX_RECORDED_POINTS - 1))
        raise SpecError(
            "record_every",
            record_every,
            f"0 or an integer >= {least}: at most "
            f"{MAX_RECORDED_POINTS:,} recorded points per run ({points:,} asked)",
        )
    shard_size = data.get("shard_size")
    if shard_size is not None:
        shard_size = _integer("shard_size", shard_size, minimum=1)
        if shard_size * points >= 2**31:  # a shard's loss column has int32 offsets
            raise SpecError(
                "shard_size",
                shard_size,
                f"an integer from 1 to {(2**31 - 1) // points} "
                f"(runs × {points} recorded points must stay below 2**31)",
            )
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise SpecError("name", name, "a string")

    network = data.get("network", {})
    if not isinstance(network, dict):
        raise SpecError("network", network, "a table with keys inputs, targets")
    _no_unknown_keys("network", network, NETWORK_KEYS)
    inputs = _number_tuple("network.inputs", network.get("inputs", COURSE_INPUTS), 2)
    targets = _number_tuple("network.targets", network.get("targets", COURSE_TARGETS), 2)

    raw_inits = data.get("init")
    if raw_inits is None:
        raise SpecError("init", "nothing", 'at least one [[init]] block, e.g. [[init]] kind = "course"')
    if not isinstance(raw_inits, list) or not raw_inits:
        raise SpecError("init", raw_inits, "a non-empty list of [[init]] tables")
    inits = tuple(_parse_init(k, block) for k, block in enumerate(raw_inits))

    source = {
        "steps": steps,
        "lr": lr_source,
        "dtype": dtype,
        "seed": seed,
        "record_every": record_every,
        "tolerance": tolerance,
        "network": {"inputs": list(inputs), "targets": list(targets)},
        "init": [dict(block.params) for block in inits],
    }
    if shard_size is not None:
        source["shard_size"] = shard_size
    if name is not None:
        source["name"] = name
    spec = SweepSpec(
        steps, lrs, dtype, seed, record_every, tolerance, shard_size, name, inputs, targets, inits, source
    )
    if spec.n_runs > MAX_RUNS:
        raise SpecError("grid", f"{spec.n_runs} runs", f"at most {MAX_RUNS} runs")
    if dtype == "float32":
        _check_float32(spec)
    return spec


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32(spec):
    """A float32 sweep computes with its numbers rounded to float32: refuse those that would
    become ±inf (or an lr that would become 0) instead of training with them."""

    def check(field, value, positive=False):
        with np.errstate(over="ignore"):
            rounded = float(np.float32(value))
        if not math.isfinite(rounded) or (positive and rounded <= 0):
            allowed = "a number > 0" if positive else "a number"
            raise SpecError(
                field,
                value,
                f"{allowed} that float32 can hold (|x| <= {_FLOAT32_MAX:.4g}"
                f"{', not rounding to 0' if positive else ''}) when dtype = 'float32'",
            )

    for k, lr in enumerate(spec.lrs):
        check(f"lr[{k}]", lr, positive=True)
    for name, values in (("network.inputs", spec.inputs), ("network.targets", spec.targets)):
        for k, value in enumerate(values):
            check(f"{name}[{k}]", value)
    for number, block in enumerate(spec.inits):
        p = block.params
        for key in ("low", "high", "mean", "std"):
            if key in p:
                check(f"init[{number}].{key}", p[key], positive=key == "std")
        for r, row in enumerate(p.get("weights", ())):
            for k, value in enumerate(row):
                check(f"init[{number}].weights[{r}][{k}]", value)


def _no_unknown_keys(where, table, allowed):
    if not isinstance(table, dict):
        raise SpecError(where, table, "a table")
    for key in table:
        if key not in allowed:
            field = key if where == "spec" else f"{where}.{key}"
            raise SpecError(field, "an unknown key", "one of " + ", ".join(sorted(allowed)))


def _parse_lr(value):
    """(normalised form, tuple of floats): a number, a list, or {logspace|linspace = [a, b], num = n}."""
    if isinstance(value, dict):
        kinds = [k for k in ("logspace", "linspace") if k in value]
        if len(kinds) != 1 or set(value) != {kinds[0], "num"}:
            raise SpecError("lr", value, "{logspace = [a, b], num = n} or {linspace = [a, b], num = n}")
        kind = kinds[0]
        a, b = _number_tuple(f"lr.{kind}", value[kind], 2)
        num = _integer("lr.num", value["num"], minimum=1)
        with np.errstate(over="ignore"):  # an overflowing end is refused below, by value
            lrs = np.logspace(a, b, num) if kind == "logspace" else np.linspace(a, b, num)
        lrs = tuple(float(x) for x in lrs)
        source = {kind: [a, b], "num": num}
    elif isinstance(value, list):
        if not value:
            raise SpecError("lr", value, "at least one learning rate (the grid would be empty)")
        lrs = tuple(_finite_number(f"lr[{k}]", x, positive=True) for k, x in enumerate(value))
        source = list(lrs)
    else:
        lrs = (_finite_number("lr", value, positive=True),)
        source = list(lrs)
    for k, x in enumerate(lrs):
        if not (math.isfinite(x) and x > 0):
            raise SpecError(f"lr[{k}]", x, "a finite number > 0")
    return source, lrs


def _parse_init(number, block):
    where = f"init[{number}]"
    if not isinstance(block, dict):
        raise SpecError(where, block, "a table with a 'kind' key")
    kind = errors.choice(f"{where}.kind", block.get("kind"), tuple(INIT_KEYS))
    _no_unknown_keys(where, block, INIT_KEYS[kind])
    params = {"kind": kind}
    if kind in ("course", "fixed"):
        if kind == "course":
            count, implied = 1, "1 for kind 'course'"
        else:
            rows = block.get("weights")
            if not isinstance(rows, list) or not rows:
                raise SpecError(f"{where}.weights", rows, "a non-empty list of lists of 8 weights")
            rows = [list(_number_tuple(f"{where}.weights[{k}]", row, 8)) for k, row in enumerate(rows)]
            params["weights"] = rows
            count, implied = len(rows), f"{len(rows)}, the number of rows of weights"
        if "count" in block and _integer(f"{where}.count", block["count"], minimum=1) != count:
            raise SpecError(f"{where}.count", block["count"], f"{implied} (or leave count out)")
    else:
        count = _integer(f"{where}.count", block.get("count"), minimum=1)
        if kind == "uniform":
            low = _finite_number(f"{where}.low", block.get("low", -1.0))
            high = _finite_number(f"{where}.high", block.get("high", 1.0))
            if not low < high:
                raise SpecError(f"{where}.high", high, f"a number > low ({low})")
            if not math.isfinite(high - low):
                raise SpecError(f"{where}.high", high, f"a number with high - low finite (low = {low})")
            params.update(low=low, high=high)
        elif kind == "normal":
            params["mean"] = _finite_number(f"{where}.mean", block.get("mean", 0.0))
            params["std"] = _finite_number(f"{where}.std", block.get("std", 1.0), positive=True)
        else:  # xavier
            params["distribution"] = errors.choice(
                f"{where}.distribution", block.get("distribution", "uniform"), ("uniform", "normal")
            )
    params["count"] = count
    return InitBlock(kind, count, params)


# ---------------------------------------------------------------------------------------------
# The grid: which (lr, init block, index) a run number is, and its initial weights.


def run_layout(spec, first_run, stop_run):
    """For runs [first_run, stop_run): lr values, init block numbers, indices in the block."""
    runs = np.arange(first_run, stop_run, dtype=np.int64)
    n_inits = spec.n_inits
    lr_index, init_number = np.divmod(runs, n_inits)
    block_starts = np.cumsum([0] + [b.count for b in spec.inits], dtype=np.int64)
    block = np.searchsorted(block_starts, init_number, side="right") - 1
    index = init_number - block_starts[block]
    lrs = np.asarray(spec.lrs, dtype=np.float64)[lr_index]
    return runs, lrs, block.astype(np.int32), index


def initial_weights(spec, block_numbers, indices):
    """(8, R) float64 initial weights for runs given by their block numbers and indices."""
    weights = np.empty((8, len(indices)), dtype=np.float64)
    for number, block in enumerate(spec.inits):
        mask = block_numbers == number
        if mask.any():
            weights[:, mask] = _block_weights(spec.seed, number, block, indices[mask])
    return weights


# Glorot/Xavier for the SPEC's layers: both are 2 → 2, so fan_in + fan_out = 4 for w1…w4 and w5…w8.
_XAVIER_FANS = 2 + 2


def _block_weights(seed, number, block, indices):
    p = block.params
    if block.kind == "course":
        return np.repeat(np.array(COURSE_WEIGHTS)[:, None], len(indices), axis=1)
    if block.kind == "fixed":
        return np.array(p["weights"], dtype=np.float64)[indices].T
    if block.kind == "uniform" or (block.kind == "xavier" and p["distribution"] == "uniform"):
        if block.kind == "xavier":
            low, high = -math.sqrt(6.0 / _XAVIER_FANS), math.sqrt(6.0 / _XAVIER_FANS)
        else:
            low, high = p["low"], p["high"]
        u = _uniform01(seed, number, indices, draw_base=0)
        return low + (high - low) * u
    mean, std = (0.0, math.sqrt(2.0 / _XAVIER_FANS)) if block.kind == "xavier" else (p["mean"], p["std"])
    return mean + std * _standard_normal(seed, number, indices)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_DRAWS_PER_RUN = 16  # 8 weights × 2 uniforms (Box–Muller needs two)


def _splitmix64(z):
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _stream_key(seed, number):
    key = _splitmix64(np.array([seed], dtype=np.uint64) + _GOLDEN)
    return _splitmix64(key + np.uint64(number + 1) * _GOLDEN)[0]


def _draws(seed, number, indices, draw):
    """uint64 draws at positions index * 16 + draw[k] of the (seed, block) stream: shape (len(draw), R)."""
    with np.errstate(over="ignore"):
        key = _stream_key(seed, number)
        position = (
            indices.astype(np.uint64)[None, :] * np.uint64(_DRAWS_PER_RUN)
            + np.asarray(draw, dtype=np.uint64)[:, None]
        )
        return _splitmix64(key + (position + np.uint64(1)) * _GOLDEN)


def _uniform01(seed, number, indices, draw_base):
    """(8, R) uniforms in [0, 1): the top 53 bits of each draw."""
    bits = _draws(seed, number, indices, np.arange(8) + draw_base)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _standard_normal(seed, number, indices):
    """(8, R) standard normals by Box–Muller with the C library's log/cos (see the module doc)."""
    u1 = 1.0 - _uniform01(seed, number, indices, draw_base=0)  # (0, 1]: log is finite
    u2 = _uniform01(seed, number, indices, draw_base=8)
    # Python's math calls the C library once per value (numpy's SIMD log/cos may differ by an
    # ulp between CPUs); plain lists and local names keep the loop at ~0.1 µs a value.
    log, cos, sqrt, tau = math.log, math.cos, math.sqrt, 2.0 * math.pi
    values = [sqrt(-2.0 * log(a)) * cos(tau * b) for a, b in zip(u1.ravel().tolist(), u2.ravel().tolist())]
    flat = np.array(values, dtype=np.float64)
    return flat.reshape(u1.shape)
