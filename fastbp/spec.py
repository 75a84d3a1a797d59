"""The sweep spec: a TOML file or a dict → a validated ``SweepSpec``; the grid of runs.

Everything derived from a spec is computed here, once: the grid's size, the steps a curve
records, the canonical form stored with the dataset and its fingerprint.

Run numbering (stable, part of the dataset contract): learning rates are the outer loop,
initialisations the inner one, ``run = lr_index * n_inits + init_number`` where init_number
counts the runs of the ``[[init]]`` blocks in file order. An initialisation's weights depend
only on (seed, block number, index in the block) (``fastbp.inits``), so the same starting point
is trained at every lr, whatever the shard or machine that trains it.
"""

import copy
import functools
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass

import numpy as np

from fastbp import conventions, errors
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, DEFAULT_TOLERANCE, DTYPES
from fastbp.errors import SpecError
from fastbp.inits import KINDS, finite_number, integer, number_tuple

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
MAX_RUNS = 2**53  # run numbers stay exact in float64 tools
MAX_RECORDED_POINTS = 2**21  # per run: a 64-run block of curves stays within 1 GiB
MAX_LRS = 2**24  # learning rates in one sweep (a 4096 × 4096 map of two rates)
MAX_SHARDS = 10**6 - 1  # shard files are named part-NNNNNN.parquet
MAX_STEPS = 2**31 - 1  # the kernels count steps in int32 (as many SIMD lanes as float32)


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

    @functools.cached_property
    def recorded_steps(self):
        """The steps each run's loss curve keeps (``conventions.recorded_steps``), int64 array."""
        return conventions.recorded_steps(self.steps, self.record_every)

    @property
    def n_recorded(self):
        return conventions.n_recorded(self.steps, self.record_every)

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    def as_dict(self):
        return copy.deepcopy(self.source)

    @functools.cached_property
    def fingerprint(self):
        """sha256 of the canonical form: the same for every spec that trains the same runs."""
        return hashlib.sha256(canonical_json(self.source).encode()).hexdigest()


def canonical_json(spec_dict):
    """The text two spec dicts are compared by (keys sorted, no whitespace)."""
    return json.dumps(spec_dict, sort_keys=True, separators=(",", ":"))


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
        except UnicodeDecodeError as exc:  # a binary file, or another encoding
            raise SpecError("spec", path, f"a UTF-8 TOML text file (byte {exc.start} is not UTF-8)") from None
        except PermissionError:
            raise SpecError("spec", path, "a readable TOML file (permission denied)") from None
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
    steps = integer("steps", data["steps"], minimum=1)
    if steps > MAX_STEPS:
        raise SpecError("steps", steps, f"an integer from 1 to {MAX_STEPS}")
    lr_source, lrs = _parse_lr(data["lr"])
    dtype = errors.choice("dtype", data.get("dtype", "float64"), DTYPES)
    seed = integer("seed", data.get("seed", 0), minimum=0)
    if seed >= 2**64:
        raise SpecError("seed", seed, "an integer from 0 to 2**64 - 1")
    record_every = integer("record_every", data.get("record_every", 1), minimum=0)
    tolerance = finite_number("tolerance", data.get("tolerance", DEFAULT_TOLERANCE), positive=True)
    points = conventions.n_recorded(steps, record_every)
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
        shard_size = integer("shard_size", shard_size, minimum=1)
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
    inputs = number_tuple("network.inputs", network.get("inputs", COURSE_INPUTS), 2)
    targets = number_tuple("network.targets", network.get("targets", COURSE_TARGETS), 2)

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


def _check_float32(spec):
    """A float32 sweep computes with its numbers rounded to float32: refuse those that would
    become ±inf (or an lr that would become 0) instead of training with them."""

    def check(field, value, positive=False):
        errors.float32_number(field, value, positive=positive)

    for k, lr in enumerate(spec.lrs):
        check(f"lr[{k}]", lr, positive=True)
    for name, values in (("network.inputs", spec.inputs), ("network.targets", spec.targets)):
        for k, value in enumerate(values):
            check(f"{name}[{k}]", value)
    for number, block in enumerate(spec.inits):
        p = block.params
        for key in KINDS[block.kind].float32_keys:
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
        a, b = number_tuple(f"lr.{kind}", value[kind], 2)
        num = integer("lr.num", value["num"], minimum=1)
        if num > MAX_LRS:
            raise SpecError("lr.num", num, f"an integer from 1 to {MAX_LRS:,} (learning rates in one sweep)")
        with np.errstate(over="ignore"):  # an overflowing end is refused below, by value
            lrs = np.logspace(a, b, num) if kind == "logspace" else np.linspace(a, b, num)
        lrs = tuple(float(x) for x in lrs)
        source = {kind: [a, b], "num": num}
    elif isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        # A TOML array, or in Python any sequence or 1-D array of numbers.
        if len(value) == 0:
            raise SpecError("lr", list(value), "at least one learning rate (the grid would be empty)")
        if len(value) > MAX_LRS:
            raise SpecError(
                "lr", f"{len(value):,} values", f"at most {MAX_LRS:,} learning rates in one sweep"
            )
        numbers = value.tolist() if isinstance(value, np.ndarray) else value
        lrs = tuple(finite_number(f"lr[{k}]", x, positive=True) for k, x in enumerate(numbers))
        source = list(lrs)
    else:
        lrs = (finite_number("lr", value, positive=True),)
        source = list(lrs)
    first_index = {}
    for k, x in enumerate(lrs):
        if not (math.isfinite(x) and x > 0):
            raise SpecError(f"lr[{k}]", x, "a finite number > 0")
        # A rate twice would train the same runs twice under two run numbers: refused, not merged,
        # so that run numbering always follows the spec as written.
        if x in first_index:
            raise SpecError(
                f"lr[{k}]", x, f"a learning rate not already in the grid (lr[{first_index[x]}] is {x!r})"
            )
        first_index[x] = k
    return source, lrs


def _parse_init(number, block):
    where = f"init[{number}]"
    if not isinstance(block, dict):
        raise SpecError(where, block, "a table with a 'kind' key")
    kind = KINDS[errors.choice(f"{where}.kind", block.get("kind"), tuple(KINDS))]
    _no_unknown_keys(where, block, kind.keys)
    params, count = kind.parse(block, where)
    return InitBlock(kind.name, count, {"kind": kind.name, **params, "count": count})


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


def _block_weights(seed, number, block, indices):
    return KINDS[block.kind].weights(seed, number, block.params, indices)
