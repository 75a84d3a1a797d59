"""The kinds of initialisation: one registry, used by the spec, the generator and the plots.

Each kind (``KINDS[name]``) states the keys its ``[[init]]`` block takes, how a block is
validated for the network's parameters (defaults filled in), how its runs' initial values are
generated, and the label the figures give it. A new kind is one more entry here.

A block sets a network's *drawn parameters* (``network.Parameters``): its weights, then its
biases when they are drawn (``biases = "trained"``), in the documented order (``network``).
Given biases (fixed values, or trained from given values) are the network's, not the block's:
only a grid's bias axis changes them.

An initialisation's values depend only on (seed, block number, index in the block), for a given
network. Random values come from a counter-based generator (SplitMix64 at position
``index * 2n + draw`` of a stream keyed by (seed, block), n the drawn parameters: parameter k
takes draws k and, for Box–Muller's second uniform, n + k): any slice of runs, and any subset
of parameters, is generated without the others. The exercise's 8 weights take 16 positions per
run, the stream every dataset before general networks used. Uniform values use only integer and
IEEE arithmetic, so they are the same bits on every machine; normal values add ``log``, ``cos``
and ``sqrt`` from the C library (Box–Muller), the same bits wherever the C library is the same.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from fastbp import errors
from fastbp.conventions import COURSE_WEIGHTS
from fastbp.errors import SpecError
from fastbp.network import EXERCISE_LAYERS

# A spec is typed TOML: a number written as a string ("0.1") is the wrong type, not a number.
integer = functools.partial(errors.integer, strings=False)
finite_number = functools.partial(errors.finite_number, strings=False)
number_tuple = functools.partial(errors.number_tuple, strings=False)


@dataclass(frozen=True)
class InitKind:
    """One kind of ``[[init]]`` block."""

    name: str
    keys: frozenset  # every key the block may hold (kind and count included)
    parse: object  # (block, where, parameters) -> (params without kind and count, count)
    # (seed, block number, params, indices, parameters, rows) -> (len(rows), R) float64: the
    # runs' initial values of the drawn parameters ``rows`` (indices into parameters.names)
    values: object
    label: object  # params -> the figures' name for the block's runs
    float32_keys: tuple = ()  # numbers a float32 sweep must be able to hold
    # (params, indices, biases (H + O, R) float64 from the network, network) -> the runs' given biases
    biases: object = None
    # (params, indices) -> (x, y) coordinates of each run, for blocks that lay runs out on a plane
    coordinates: object = None


def _counted(block, where):
    return integer(f"{where}.count", block.get("count"), minimum=1)


def _implied_count(block, where, count, implied):
    """course and fixed imply their count; it is accepted when it agrees, so that the canonical
    form (``SweepSpec.as_dict()``, which states every block's count) parses back to the spec."""
    if "count" in block and integer(f"{where}.count", block["count"], minimum=1) != count:
        raise SpecError(f"{where}.count", block["count"], f"{implied} (or leave count out)")
    return count


def _parse_course(block, where, parameters):
    if not parameters.exercise:
        allowed = "uniform, normal, xavier, fixed or grid: the course weights are the 2-2-2 network's"
        why = " (its drawn biases have none)" if parameters.network.layers == EXERCISE_LAYERS else ""
        raise SpecError(f"{where}.kind", "course", f"{allowed}{why}")
    return {}, _implied_count(block, where, 1, "1 for kind 'course'")


def _every_parameter(parameters):
    """How a list of every parameter is described in a refusal."""
    if parameters.exercise:
        return "8 weights"
    return f"{parameters.n} parameters ({parameters.names[0]} … {parameters.names[-1]})"


def _parse_fixed(block, where, parameters):
    rows = block.get("weights")
    if not isinstance(rows, list) or not rows:
        raise SpecError(
            f"{where}.weights", rows, f"a non-empty list of lists of {_every_parameter(parameters)}"
        )
    rows = [list(number_tuple(f"{where}.weights[{k}]", row, parameters.n)) for k, row in enumerate(rows)]
    count = _implied_count(block, where, len(rows), f"{len(rows)}, the number of rows of weights")
    return {"weights": rows}, count


def _parse_uniform(block, where, parameters):
    count = _counted(block, where)
    low = finite_number(f"{where}.low", block.get("low", -1.0))
    high = finite_number(f"{where}.high", block.get("high", 1.0))
    if not low < high:
        raise SpecError(f"{where}.high", high, f"a number > low ({low})")
    if not math.isfinite(high - low):
        raise SpecError(f"{where}.high", high, f"a number with high - low finite (low = {low})")
    return {"low": low, "high": high}, count


def _parse_normal(block, where, parameters):
    count = _counted(block, where)
    mean = finite_number(f"{where}.mean", block.get("mean", 0.0))
    std = finite_number(f"{where}.std", block.get("std", 1.0), positive=True)
    return {"mean": mean, "std": std}, count


def _parse_xavier(block, where, parameters):
    count = _counted(block, where)
    distribution = block.get("distribution", "uniform")
    return {
        "distribution": errors.choice(f"{where}.distribution", distribution, ("uniform", "normal"))
    }, count


def _course_values(seed, number, params, indices, parameters, rows):
    return np.repeat(np.array(COURSE_WEIGHTS)[rows, None], len(indices), axis=1)


def _fixed_values(seed, number, params, indices, parameters, rows):
    return np.array(params["weights"], dtype=np.float64)[indices][:, rows].T


def _uniform_between(low, high, seed, number, indices, parameters, rows):
    return low + (high - low) * _uniform01(seed, number, indices, rows, parameters.n)


def _uniform_values(seed, number, params, indices, parameters, rows):
    return _uniform_between(params["low"], params["high"], seed, number, indices, parameters, rows)


def _normal_values(seed, number, params, indices, parameters, rows):
    return params["mean"] + params["std"] * _standard_normal(seed, number, indices, rows, parameters.n)


def _xavier_values(seed, number, params, indices, parameters, rows):
    """Glorot/Xavier with each parameter's layer's fans: uniform on ±√(6 / (fan_in + fan_out)),
    or normal with std √(2 / (fan_in + fan_out)) (the exercise's layers: 2 + 2 = 4 everywhere)."""
    every = parameters.fans()
    fans = [sum(every[k]) for k in rows]
    if params["distribution"] == "uniform":
        limit = np.array([math.sqrt(6.0 / f) for f in fans])[:, None]
        return _uniform_between(-limit, limit, seed, number, indices, parameters, rows)
    std = np.array([math.sqrt(2.0 / f) for f in fans])[:, None]
    return 0.0 + std * _standard_normal(seed, number, indices, rows, parameters.n)


def _kind(name, keys, parse, values, label, float32_keys=(), biases=None, coordinates=None):
    return InitKind(
        name, frozenset({"kind", "count", *keys}), parse, values, label, float32_keys, biases, coordinates
    )


# ---------------------------------------------------------------------------------------------
# kind = "grid": a plane through parameter space, two axes, every other parameter from `base`

#: The exercise's names of its weights: w1 … w8 are w_h1_i1 … w_o2_h2, in order (the canonical form's).
EXERCISE_WEIGHT_NAMES = tuple(f"w{k}" for k in range(1, 9))
OFFSETS = ("hidden", "output")  # a constant added to a layer's weights
MAX_AXIS = 2**24


def weight_names(network):
    """The weights' names a grid's canonical form keeps: w1 … w8 for the exercise's layers."""
    return EXERCISE_WEIGHT_NAMES if network.layers == EXERCISE_LAYERS else network.parameter_names(False)


def _weight_names(network):
    """{name a grid axis may give: its canonical name}; w1 … w8 are w_h1_i1 … w_o2_h2."""
    return {
        **{w: w for w in weight_names(network)},
        **dict(zip(network.parameter_names(False), weight_names(network))),
    }


def bias_units(network, name):
    """The units (0 … H + O − 1, hidden first) a bias axis sets: one, or a layer's (b_h, b_o)."""
    h, o = network.n_hidden, network.n_out
    if name in ("b_h", "b_o"):
        return tuple(range(h)) if name == "b_h" else tuple(range(h, h + o))
    return (network.parameter_names(True).index(name) - network.n_weights,)


def _offset_rows(network, name):
    """The rows of a layer's weights (an offset axis adds to them)."""
    hidden = network.n_hidden * network.n_in
    return range(0, hidden) if name == "hidden" else range(hidden, network.n_weights)


def _parse_axis(block, where, axis, network):
    field = f"{where}.{axis}"
    value = block.get(axis)
    if not isinstance(value, dict):
        raise SpecError(field, value, "a table such as {weight = 'w5', linspace = [-4.0, 4.0], num = 256}")
    targets = [key for key in ("weight", "bias", "offset") if key in value]
    spacing = [key for key in ("linspace", "logspace") if key in value]
    if len(targets) != 1 or len(spacing) != 1 or set(value) != {targets[0], spacing[0], "num"}:
        raise SpecError(
            field, value, "exactly one of weight/bias/offset, one of linspace/logspace = [a, b], and num = n"
        )
    target, space = targets[0], spacing[0]
    weights = _weight_names(network)  # the canonical names, then w1 … w8's aliases
    names = {
        "weight": tuple(weights),
        "bias": network.parameter_names(True)[network.n_weights :] + ("b_h", "b_o"),
        "offset": OFFSETS,
    }[target]
    name = _choice(
        f"{field}.{target}", value[target], names, weight_names(network) if target == "weight" else names
    )
    a, b = number_tuple(f"{field}.{space}", value[space], 2)
    num = integer(f"{field}.num", value["num"], minimum=1)
    if num > MAX_AXIS:
        raise SpecError(f"{field}.num", num, f"an integer from 1 to {MAX_AXIS:,}")
    with np.errstate(over="ignore"):
        values = np.logspace(a, b, num) if space == "logspace" else np.linspace(a, b, num)
    if not np.isfinite(values).all():
        raise SpecError(f"{field}.{space}", [a, b], "ends whose values are finite")
    return {target: weights.get(name, name), space: [a, b], "num": num}


def _choice(field, value, names, shown):
    """``errors.choice`` for a network's names, saying ``shown`` (a long list by its ends)."""
    if value in names:
        return value
    shown = (
        ", ".join(repr(n) for n in shown) if len(shown) <= 12 else f"{shown[0]!r} … {shown[-1]!r} (1-based)"
    )
    raise SpecError(field, value, f"one of {shown}")


def axis_values(axis):
    """The values along one axis of a grid block (numpy's linspace/logspace, float64)."""
    space = "logspace" if "logspace" in axis else "linspace"
    a, b = axis[space]
    return np.logspace(a, b, axis["num"]) if space == "logspace" else np.linspace(a, b, axis["num"])


def log_spaced(values):
    """Whether axis values (ascending) are log-spaced: positive, a constant ratio (then a figure
    draws the axis on a log scale)."""
    return (
        len(values) > 2
        and values[0] > 0
        and bool(np.allclose(np.diff(np.log(values)), math.log(values[1] / values[0])))
    )


def _target(axis):
    return next((key, axis[key]) for key in ("weight", "bias", "offset") if key in axis)


def _parse_grid(block, where, parameters):
    network = parameters.network
    x, y = _parse_axis(block, where, "x", network), _parse_axis(block, where, "y", network)
    if _target(x) == _target(y) or _overlapping_biases(x, y, network):
        raise SpecError(
            f"{where}.y", block.get("y"), f"another weight, bias or offset than x ({_target(x)[1]})"
        )
    if "base" not in block and not parameters.exercise:
        allowed = f"{_every_parameter(parameters)}: a grid's base is required for this network"
        raise SpecError(f"{where}.base", "nothing", allowed)
    base = list(number_tuple(f"{where}.base", block.get("base", COURSE_WEIGHTS), parameters.n))
    count = x["num"] * y["num"]
    if "count" in block and integer(f"{where}.count", block["count"], minimum=1) != count:
        raise SpecError(f"{where}.count", block["count"], f"{count}, x.num × y.num (or leave count out)")
    return {"x": x, "y": y, "base": base}, count


def _overlapping_biases(x, y, network):
    """Two bias axes that would set the same unit's bias (b_h and b_h1, say)."""

    def units(axis):
        target, name = _target(axis)
        return set(bias_units(network, name)) if target == "bias" else set()

    return bool(units(x) & units(y))


def grid_coordinates(params, indices):
    """(x, y) values of runs ``indices`` of a grid block: x varies fastest (index = iy·nx + ix)."""
    nx = params["x"]["num"]
    iy, ix = np.divmod(np.asarray(indices, dtype=np.int64), nx)
    return axis_values(params["x"])[ix], axis_values(params["y"])[iy]


def _grid_values(seed, number, params, indices, parameters, rows):
    """The base, then the axes that set a weight (or a drawn bias), then the layer offsets added
    to what is there: the same values whichever axis is x and which is y."""
    network = parameters.network
    values = np.repeat(np.array(params["base"], dtype=np.float64)[:, None], len(indices), axis=1)
    names = weight_names(network)
    axes = list(zip(("x", "y"), grid_coordinates(params, indices)))
    for axis, coordinate in sorted(axes, key=lambda a: _target(params[a[0]])[0] == "offset"):
        target, name = _target(params[axis])
        if target == "weight":
            values[names.index(name)] = coordinate
        elif target == "bias" and parameters.drawn_biases:
            for unit in bias_units(network, name):
                values[network.n_weights + unit] = coordinate
        elif target == "offset":
            for row in _offset_rows(network, name):
                values[row] = values[row] + coordinate
    return values[rows]


def _grid_biases(params, indices, biases, network):
    """Given biases with a grid's bias axis set (``layout.initial_biases``)."""
    for axis, values in zip(("x", "y"), grid_coordinates(params, indices)):
        target, name = _target(params[axis])
        if target == "bias":
            for unit in bias_units(network, name):
                biases[unit] = values
    return biases


def _grid_label(params):
    def axis_text(axis):
        target, name = _target(axis)
        return f"{name} offset" if target == "offset" else name

    return f"grid {axis_text(params['x'])} × {axis_text(params['y'])}"


KINDS = {
    kind.name: kind
    for kind in (
        _kind("course", (), _parse_course, _course_values, lambda p: "course weights"),
        _kind(
            "uniform",
            ("low", "high"),
            _parse_uniform,
            _uniform_values,
            lambda p: f"uniform [{p.get('low', -1):g}, {p.get('high', 1):g}]",
            ("low", "high"),
        ),
        _kind(
            "normal",
            ("mean", "std"),
            _parse_normal,
            _normal_values,
            lambda p: f"normal (μ = {p.get('mean', 0):g}, σ = {p.get('std', 1):g})",
            ("mean", "std"),
        ),
        _kind(
            "xavier",
            ("distribution",),
            _parse_xavier,
            _xavier_values,
            lambda p: f"Xavier ({p.get('distribution', 'uniform')})",
        ),
        _kind("fixed", ("weights",), _parse_fixed, _fixed_values, lambda p: "fixed weights"),
        _kind(
            "grid",
            ("x", "y", "base"),
            _parse_grid,
            _grid_values,
            _grid_label,
            biases=_grid_biases,
            coordinates=grid_coordinates,
        ),
    )
}


def label(params, block):
    """The figures' name for a block's runs, from its params as stored in a dataset's metadata."""
    kind = KINDS.get(params.get("kind"))
    return kind.label(params) if kind else f"[[init]] block {block}"


# ---------------------------------------------------------------------------------------------
# The counter-based generator

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z):
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _stream_key(seed, number):
    key = _splitmix64(np.array([seed], dtype=np.uint64) + _GOLDEN)
    return _splitmix64(key + np.uint64(number + 1) * _GOLDEN)[0]


def _draws(seed, number, indices, draws, n):
    """uint64 draws at positions index * 2n + draws[k] of the (seed, block) stream: shape
    (len(draws), R). (index < 2**53 runs and 2n ≤ 2**11: a position never wraps.)"""
    with np.errstate(over="ignore"):
        key = _stream_key(seed, number)
        position = (
            np.asarray(indices).astype(np.uint64)[None, :] * np.uint64(2 * n)
            + np.asarray(draws, dtype=np.uint64)[:, None]
        )
        return _splitmix64(key + (position + np.uint64(1)) * _GOLDEN)


def _uniform01(seed, number, indices, draws, n):
    """(len(draws), R) uniforms in [0, 1): the top 53 bits of each draw."""
    bits = _draws(seed, number, indices, draws, n)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _standard_normal(seed, number, indices, rows, n):
    """(len(rows), R) standard normals by Box–Muller with the C library's log/cos (see the
    module doc): parameter k from draws k and n + k."""
    rows = np.asarray(rows, dtype=np.int64)
    u1 = 1.0 - _uniform01(seed, number, indices, rows, n)  # (0, 1]: log is finite
    u2 = _uniform01(seed, number, indices, n + rows, n)
    # Python's math calls the C library once per value (numpy's SIMD log/cos may differ by an
    # ulp between CPUs); plain lists and local names keep the loop at ~0.1 µs a value.
    log, cos, sqrt, tau = math.log, math.cos, math.sqrt, 2.0 * math.pi
    values = [sqrt(-2.0 * log(a)) * cos(tau * b) for a, b in zip(u1.ravel().tolist(), u2.ravel().tolist())]
    flat = np.array(values, dtype=np.float64)
    return flat.reshape(u1.shape)
