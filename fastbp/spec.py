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
import os
import tomllib
from dataclasses import dataclass

import numpy as np

from fastbp import compile_time, errors, files, outputs
from fastbp.conventions import DEFAULT_TOLERANCE, DTYPES
from fastbp.errors import SpecError
from fastbp.inits import KINDS, axis_values, finite_number, integer, number_tuple
from fastbp.network import (
    NETWORK_KEYS,  # noqa: F401 (the [network] keys, with TOP_KEYS)
    Network,
    Parameters,
    canonical_form,
    pattern_numbers,
)
from fastbp.options import DRAWN, ModelOptions, bias_options, parse_network

TOP_KEYS = {
    "steps",
    "lr",
    "lr_hidden",
    "lr_output",
    "dtype",
    "seed",
    "record_every",
    "tolerance",
    "shard_size",
    "name",
    "network",
    "init",
    "diagnostics",
    "stability_every",
    "columns",
}
MAX_RUNS = 2**53  # run numbers stay exact in float64 tools
MAX_RECORDED_POINTS = 2**21  # per run: a 64-run block of curves stays within 1 GiB
MAX_LRS = 2**24  # learning rates in one sweep (a 4096 × 4096 map of two rates)
MAX_SHARDS = 10**6 - 1  # shard files are named part-NNNNNN.parquet
MAX_STEPS = 2**31 - 1  # the kernels count steps in int32 (as many SIMD lanes as float32)
MAX_SPEC_BYTES = 2**24  # a spec file is a few hundred bytes (a device file like /dev/zero never ends)


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
    inputs: tuple  # the network's patterns: one pattern's numbers flat (the exercise's pair), or
    targets: tuple  # with several patterns their tuples (network.inputs, network.targets)
    inits: tuple
    source: dict  # the normalised dict (lr as given, defaults filled in)
    # Learning rate per layer (docs/model.md): then ``lrs`` holds the hidden layer's rates and
    # ``lr_output`` the output layer's, crossed (hidden outer); None for one rate.
    lr_output: tuple | None = None
    biases: tuple | None = None  # b_h1 … b_oO given per unit (a shared bias repeated), or None
    shared_biases: bool = False
    train_biases: bool = False
    drawn_biases: bool = False  # biases = "trained": drawn by [[init]], trained per unit
    network: Network = Network()  # layers, activations, update, patterns (default: the exercise)
    # What a run reports beyond its curve (docs/model.md "Regimes"; fastbp.outputs).
    diagnostics: bool = False
    stability_every: int = 0  # 0: no stability curve
    columns: tuple | None = None  # the per-run columns kept (run first), or None for all

    @property
    def per_layer(self):
        return self.lr_output is not None

    @functools.cached_property
    def options(self):
        """The model's options (``options.ModelOptions``): what every layer reads of them."""
        biases = (self.biases, self.shared_biases, self.train_biases)
        return ModelOptions(self.per_layer, *biases, self.diagnostics, self.network, self.drawn_biases)

    @property
    def parameters(self):
        """What the ``[[init]]`` blocks draw (``network.Parameters``): the weights, drawn biases."""
        return Parameters(self.network, self.drawn_biases)

    @property
    def n_rates(self):
        """Learning rates (or rate pairs) in the grid: the outer loop of the run numbering."""
        return len(self.lrs) * (len(self.lr_output) if self.per_layer else 1)

    @property
    def n_inits(self):
        return sum(block.count for block in self.inits)

    @property
    def n_runs(self):
        return self.n_rates * self.n_inits

    def n_shards(self, shard_size):
        """Shard files of this grid at ``shard_size`` runs each (the last one may be short)."""
        return -(-self.n_runs // shard_size)

    @functools.cached_property
    def recorded_steps(self):
        """The steps each run's loss curve keeps (``compile_time.recorded_steps``), int64 array."""
        return compile_time.recorded_steps(self.steps, self.record_every)

    @functools.cached_property
    def stability_steps(self):
        """The steps of the ``stability`` curve (as ``recorded_steps``, every ``stability_every``)."""
        return compile_time.recorded_steps(self.steps, self.stability_every) if self.stability_every else None

    @property
    def n_recorded(self):
        return compile_time.n_recorded(self.steps, self.record_every)

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
            data = tomllib.loads(files.read_regular(path, MAX_SPEC_BYTES).decode())
        except OSError as exc:  # not found, a directory, no permission; a FIFO, a device, too large
            allowed = f"a readable TOML file of at most {MAX_SPEC_BYTES:,} bytes ({exc.strerror or exc})"
            raise SpecError("spec", path, allowed) from None
        except UnicodeDecodeError as exc:  # a binary file, or another encoding
            raise SpecError("spec", path, f"a UTF-8 TOML text file (byte {exc.start} is not UTF-8)") from None
        except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
            raise SpecError("spec", path, f"valid TOML ({str(exc)[:200]})") from None
        return parse_spec(data)
    if isinstance(spec, dict):
        return parse_spec(spec)
    raise SpecError("spec", type(spec).__name__, "a TOML file path, a dict or a SweepSpec")


def parse_spec(data):
    """Validate a spec dict (as read from TOML) into a ``SweepSpec``."""
    _no_unknown_keys("spec", data, TOP_KEYS)
    for key in ("steps", "lr"):
        if key not in data and not (key == "lr" and ("lr_hidden" in data or "lr_output" in data)):
            raise SpecError(key, "nothing", f"required key '{key}' (see the README's spec section)")
    steps = integer("steps", data["steps"], minimum=1)
    if steps > MAX_STEPS:
        raise SpecError("steps", steps, f"an integer from 1 to {MAX_STEPS}")
    rates = _parse_rates(data)
    dtype = errors.choice("dtype", data.get("dtype", "float64"), DTYPES)
    seed = integer("seed", data.get("seed", 0), minimum=0)
    if seed >= 2**64:
        raise SpecError("seed", seed, "an integer from 0 to 2**64 - 1")
    record_every = integer("record_every", data.get("record_every", 1), minimum=0)
    tolerance = finite_number("tolerance", data.get("tolerance", DEFAULT_TOLERANCE), positive=True)
    points = compile_time.n_recorded(steps, record_every)
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

    table = data.get("network", {})
    network = parse_network(table)
    bias_keywords = bias_options(table.get("biases"), table.get("train_biases"), network)
    options = ModelOptions(network=network, **bias_keywords)
    one = network.n_patterns == 1  # then spec.inputs and spec.targets are its numbers, as before

    raw_inits = data.get("init")
    if raw_inits is None:
        raise SpecError("init", "nothing", 'at least one [[init]] block, e.g. [[init]] kind = "course"')
    if not isinstance(raw_inits, list) or not raw_inits:
        raise SpecError("init", raw_inits, "a non-empty list of [[init]] tables")
    parameters = Parameters(network, options.drawn_biases)
    inits = tuple(_parse_init(k, block, parameters) for k, block in enumerate(raw_inits))

    source = {
        "steps": steps,
        **rates.source,
        "dtype": dtype,
        "seed": seed,
        "record_every": record_every,
        "tolerance": tolerance,
        "network": canonical_form(network),  # the exercise's: inputs and targets, as always
        "init": [dict(block.params) for block in inits],
    }
    if options.has_biases:  # only then: a bias-free spec keeps its canonical form (and its datasets)
        given = DRAWN if options.drawn_biases else list(options.given_biases)
        source["network"].update(biases=given, train_biases=options.train_biases)
    if shard_size is not None:
        source["shard_size"] = shard_size
    if name is not None:
        source["name"] = name
    spec = SweepSpec(
        steps,
        rates.hidden,
        dtype,
        seed,
        record_every,
        tolerance,
        shard_size,
        name,
        network.inputs[0] if one else network.inputs,
        network.targets[0] if one else network.targets,
        inits,
        source,
        lr_output=rates.output,
        network=network,
        **bias_keywords,
    )
    spec = outputs.parse(data, spec, MAX_RECORDED_POINTS)
    _check_inits_against_network(spec)
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

    for key, rates in (
        ("lr_hidden" if spec.per_layer else "lr", spec.lrs),
        ("lr_output", spec.lr_output or ()),
    ):
        first = {}
        for k, lr in enumerate(rates):
            check(f"{key}[{k}]", lr, positive=True)
            # two rates that round to one float32 would train the same runs under two run numbers
            rounded = float(np.float32(lr))
            if rounded in first:
                allowed = (
                    f"a rate that differs from {key}[{first[rounded]}] in float32 (both round to {rounded!r})"
                )
                raise SpecError(f"{key}[{k}]", lr, allowed)
            first[rounded] = k
    for k, value in enumerate(spec.options.given_biases):
        check(f"network.biases[{k}]", value)
    for field, value in pattern_numbers(spec.network):
        check(field, value)
    for number, block in enumerate(spec.inits):
        p = block.params
        for key in KINDS[block.kind].float32_keys:
            check(f"init[{number}].{key}", p[key], positive=key == "std")
        for r, row in enumerate(p.get("weights", ())):
            for k, value in enumerate(row):
                check(f"init[{number}].weights[{r}][{k}]", value)
        for k, value in enumerate(p.get("base", ()) if block.kind == "grid" else ()):
            check(f"init[{number}].base[{k}]", value)
        for axis in ("x", "y") if block.kind == "grid" else ():
            values = axis_values(p[axis])
            for value in (values.min(), values.max()):  # a layer offset adds to the base: both ends
                check(f"init[{number}].{axis}", float(value))


def _no_unknown_keys(where, table, allowed):
    if not isinstance(table, dict):
        raise SpecError(where, table, "a table")
    for key in table:
        if key not in allowed:
            field = key if where == "spec" else f"{where}.{key}"
            raise SpecError(field, "an unknown key", "one of " + ", ".join(sorted(allowed)))


@dataclass(frozen=True)
class _Rates:
    hidden: tuple  # or the one rate of every layer
    output: tuple | None
    source: dict  # {"lr": …} or {"lr_hidden": …, "lr_output": …}


def _parse_rates(data):
    """``lr``, or ``lr_hidden`` and ``lr_output`` (crossed, hidden outer): never both forms."""
    per_layer = [key for key in ("lr_hidden", "lr_output") if key in data]
    if "lr" in data and per_layer:
        raise SpecError(
            per_layer[0], "given with lr", "either lr, or both lr_hidden and lr_output, not both forms"
        )
    if not per_layer:
        if "lr" not in data:
            raise SpecError("lr", "nothing", "required key 'lr' (see the README's spec section)")
        source, lrs = _parse_lr(data["lr"])
        return _Rates(lrs, None, {"lr": source})
    if len(per_layer) == 1:
        missing = "lr_output" if per_layer[0] == "lr_hidden" else "lr_hidden"
        raise SpecError(missing, "nothing", f"a rate list for {missing} too: per-layer rates come in pairs")
    # The grid's size from the counts as written, before either list is built (two lists of
    # 2**24 rates would take seconds and gigabytes to be refused).
    n_hidden, n_output = _rate_count(data["lr_hidden"]), _rate_count(data["lr_output"])
    if n_hidden * n_output > MAX_LRS:
        raise SpecError("lr_output", f"{n_hidden:,} × {n_output:,} pairs", f"at most {MAX_LRS:,} rate pairs")
    hidden_source, hidden = _parse_lr(data["lr_hidden"], "lr_hidden")
    output_source, output = _parse_lr(data["lr_output"], "lr_output")
    return _Rates(hidden, output, {"lr_hidden": hidden_source, "lr_output": output_source})


def _rate_count(value):
    """How many rates ``value`` gives, counted without building them (1 for a refused form)."""
    if isinstance(value, dict):
        num = value.get("num")
        return num if type(num) is int and num > 0 else 1
    if isinstance(value, (list, tuple, np.ndarray)):
        return max(1, value.size if isinstance(value, np.ndarray) else len(value))
    return 1


def learning_rate(field, value, *, strings=False):
    """A learning rate (sweep and step table alike): a finite number > 0; ``strings`` as in ``errors``."""
    return errors.finite_number(field, value, positive=True, strings=strings)


def _check_inits_against_network(spec):
    for number, block in enumerate(spec.inits):
        for axis in ("x", "y"):
            coordinate = block.params.get(axis) or {}
            if "bias" in coordinate and not spec.options.has_biases:
                raise SpecError(
                    f"init[{number}].{axis}.bias",
                    coordinate["bias"],
                    "a bias axis only when network.biases is given",
                )
            if "bias" in coordinate and spec.shared_biases and coordinate["bias"] not in ("b_h", "b_o"):
                raise SpecError(
                    f"init[{number}].{axis}.bias", coordinate["bias"], "'b_h' or 'b_o' with shared biases"
                )


def _parse_lr(value, key="lr"):
    """(normalised form, tuple of floats): a number, a list, or {logspace|linspace = [a, b], num = n}."""
    if isinstance(value, dict):
        kinds = [k for k in ("logspace", "linspace") if k in value]
        if len(kinds) != 1 or set(value) != {kinds[0], "num"}:
            raise SpecError(key, value, "{logspace = [a, b], num = n} or {linspace = [a, b], num = n}")
        kind = kinds[0]
        a, b = number_tuple(f"{key}.{kind}", value[kind], 2)
        num = integer(f"{key}.num", value["num"], minimum=1)
        if num > MAX_LRS:
            raise SpecError(
                f"{key}.num", num, f"an integer from 1 to {MAX_LRS:,} (learning rates in one sweep)"
            )
        with np.errstate(over="ignore"):  # an overflowing end is refused below, by value
            lrs = np.logspace(a, b, num) if kind == "logspace" else np.linspace(a, b, num)
        lrs = tuple(lrs.tolist())  # Python floats, the same bits
        source = {kind: [a, b], "num": num}
    elif isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        # A TOML array, or in Python any sequence or 1-D array of numbers.
        if len(value) == 0:
            raise SpecError(key, list(value), "at least one learning rate (the grid would be empty)")
        if len(value) > MAX_LRS:
            raise SpecError(key, f"{len(value):,} values", f"at most {MAX_LRS:,} learning rates in one sweep")
        numbers = value.tolist() if isinstance(value, np.ndarray) else value
        lrs = tuple(learning_rate(f"{key}[{k}]", x) for k, x in enumerate(numbers))
        source = list(lrs)
    else:
        lrs = (learning_rate(key, value),)
        source = list(lrs)
    # In numpy: 2**24 rates take a second here, not half a minute and a dict of gigabytes.
    values = np.array(lrs, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if len(bad):
        raise SpecError(f"{key}[{bad[0]}]", lrs[bad[0]], "a finite number > 0")
    # A rate twice would train the same runs twice under two run numbers: refused, not merged,
    # so that run numbering always follows the spec as written.
    order = np.argsort(values, kind="stable")
    repeated = order[1:][values[order[1:]] == values[order[:-1]]]
    if len(repeated):
        k = int(repeated.min())
        first = int(np.argmax(values == values[k]))
        allowed = f"a learning rate not already in the grid ({key}[{first}] is {lrs[k]!r})"
        raise SpecError(f"{key}[{k}]", lrs[k], allowed)
    return source, lrs


def _parse_init(number, block, parameters):
    where = f"init[{number}]"
    if not isinstance(block, dict):
        raise SpecError(where, block, "a table with a 'kind' key")
    kind = KINDS[errors.choice(f"{where}.kind", block.get("kind"), tuple(KINDS))]
    _no_unknown_keys(where, block, kind.keys)
    params, count = kind.parse(block, where, parameters)
    return InitBlock(kind.name, count, {"kind": kind.name, **params, "count": count})
