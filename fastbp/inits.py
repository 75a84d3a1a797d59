"""The kinds of initialisation: one registry, used by the spec, the generator and the plots.

Each kind (``KINDS[name]``) states the keys its ``[[init]]`` block takes, how a block is
validated (defaults filled in), how its runs' initial weights are generated, and the label the
figures give it. A new kind is one more entry here.

An initialisation's weights depend only on (seed, block number, index in the block). Random
weights come from a counter-based generator (SplitMix64 at position ``index * 16 + draw`` of a
stream keyed by (seed, block)): any slice of runs is generated without the runs before it.
Uniform weights use only integer and IEEE arithmetic, so they are the same bits on every
machine; normal weights add ``log``, ``cos`` and ``sqrt`` from the C library (Box–Muller), the
same bits wherever the C library is the same.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from fastbp import errors
from fastbp.conventions import COURSE_WEIGHTS
from fastbp.errors import SpecError

# A spec is typed TOML: a number written as a string ("0.1") is the wrong type, not a number.
integer = functools.partial(errors.integer, strings=False)
finite_number = functools.partial(errors.finite_number, strings=False)
number_tuple = functools.partial(errors.number_tuple, strings=False)


@dataclass(frozen=True)
class InitKind:
    """One kind of ``[[init]]`` block."""

    name: str
    keys: frozenset  # every key the block may hold (kind and count included)
    parse: object  # (block, where) -> (params without kind and count, count)
    weights: object  # (seed, block number, params, indices) -> (8, R) float64
    label: object  # params -> the figures' name for the block's runs
    float32_keys: tuple = ()  # numbers a float32 sweep must be able to hold
    # (params, indices, biases (4, R) float64 from the network) -> the runs' initial biases
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


def _parse_course(block, where):
    return {}, _implied_count(block, where, 1, "1 for kind 'course'")


def _parse_fixed(block, where):
    rows = block.get("weights")
    if not isinstance(rows, list) or not rows:
        raise SpecError(f"{where}.weights", rows, "a non-empty list of lists of 8 weights")
    rows = [list(number_tuple(f"{where}.weights[{k}]", row, 8)) for k, row in enumerate(rows)]
    count = _implied_count(block, where, len(rows), f"{len(rows)}, the number of rows of weights")
    return {"weights": rows}, count


def _parse_uniform(block, where):
    count = _counted(block, where)
    low = finite_number(f"{where}.low", block.get("low", -1.0))
    high = finite_number(f"{where}.high", block.get("high", 1.0))
    if not low < high:
        raise SpecError(f"{where}.high", high, f"a number > low ({low})")
    if not math.isfinite(high - low):
        raise SpecError(f"{where}.high", high, f"a number with high - low finite (low = {low})")
    return {"low": low, "high": high}, count


def _parse_normal(block, where):
    count = _counted(block, where)
    mean = finite_number(f"{where}.mean", block.get("mean", 0.0))
    std = finite_number(f"{where}.std", block.get("std", 1.0), positive=True)
    return {"mean": mean, "std": std}, count


def _parse_xavier(block, where):
    count = _counted(block, where)
    distribution = block.get("distribution", "uniform")
    return {
        "distribution": errors.choice(f"{where}.distribution", distribution, ("uniform", "normal"))
    }, count


# Glorot/Xavier for the model's layers: both are 2 → 2, so fan_in + fan_out = 4 for w1…w4 and w5…w8.
_XAVIER_FANS = 2 + 2
_XAVIER_LIMIT = math.sqrt(6.0 / _XAVIER_FANS)
_XAVIER_STD = math.sqrt(2.0 / _XAVIER_FANS)


def _course_weights(seed, number, params, indices):
    return np.repeat(np.array(COURSE_WEIGHTS)[:, None], len(indices), axis=1)


def _fixed_weights(seed, number, params, indices):
    return np.array(params["weights"], dtype=np.float64)[indices].T


def _uniform_between(low, high, seed, number, indices):
    return low + (high - low) * _uniform01(seed, number, indices, draw_base=0)


def _uniform_weights(seed, number, params, indices):
    return _uniform_between(params["low"], params["high"], seed, number, indices)


def _normal_weights(seed, number, params, indices):
    return params["mean"] + params["std"] * _standard_normal(seed, number, indices)


def _xavier_weights(seed, number, params, indices):
    if params["distribution"] == "uniform":
        return _uniform_between(-_XAVIER_LIMIT, _XAVIER_LIMIT, seed, number, indices)
    return 0.0 + _XAVIER_STD * _standard_normal(seed, number, indices)


def _kind(name, keys, parse, weights, label, float32_keys=(), biases=None, coordinates=None):
    return InitKind(
        name, frozenset({"kind", "count", *keys}), parse, weights, label, float32_keys, biases, coordinates
    )


# ---------------------------------------------------------------------------------------------
# kind = "grid": a plane through weight space, two axes, every other weight from `base`

WEIGHT_NAMES = tuple(f"w{k}" for k in range(1, 9))
BIAS_NAMES = ("b_h1", "b_h2", "b_o1", "b_o2")
SHARED_BIAS_NAMES = {"b_h": (0, 1), "b_o": (2, 3)}  # a shared bias sets both of its units
OFFSETS = {"hidden": range(0, 4), "output": range(4, 8)}  # a constant added to a layer's weights
MAX_AXIS = 2**24


def _parse_axis(block, where, axis):
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
    names = {
        "weight": WEIGHT_NAMES,
        "bias": BIAS_NAMES + tuple(SHARED_BIAS_NAMES),
        "offset": tuple(OFFSETS),
    }[target]
    name = errors.choice(f"{field}.{target}", value[target], names)
    a, b = number_tuple(f"{field}.{space}", value[space], 2)
    num = integer(f"{field}.num", value["num"], minimum=1)
    if num > MAX_AXIS:
        raise SpecError(f"{field}.num", num, f"an integer from 1 to {MAX_AXIS:,}")
    with np.errstate(over="ignore"):
        values = np.logspace(a, b, num) if space == "logspace" else np.linspace(a, b, num)
    if not np.isfinite(values).all():
        raise SpecError(f"{field}.{space}", [a, b], "ends whose values are finite")
    return {target: name, space: [a, b], "num": num}


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


def _parse_grid(block, where):
    x, y = _parse_axis(block, where, "x"), _parse_axis(block, where, "y")
    if _target(x) == _target(y) or _overlapping_biases(x, y):
        raise SpecError(
            f"{where}.y", block.get("y"), f"another weight, bias or offset than x ({_target(x)[1]})"
        )
    base = list(number_tuple(f"{where}.base", block.get("base", COURSE_WEIGHTS), 8))
    count = x["num"] * y["num"]
    if "count" in block and integer(f"{where}.count", block["count"], minimum=1) != count:
        raise SpecError(f"{where}.count", block["count"], f"{count}, x.num × y.num (or leave count out)")
    return {"x": x, "y": y, "base": base}, count


def _overlapping_biases(x, y):
    """Two bias axes that would set the same unit's bias (b_h and b_h1, say)."""

    def units(axis):
        target, name = _target(axis)
        if target != "bias":
            return set()
        return set(SHARED_BIAS_NAMES.get(name) or (BIAS_NAMES.index(name),))

    return bool(units(x) & units(y))


def grid_coordinates(params, indices):
    """(x, y) values of runs ``indices`` of a grid block: x varies fastest (index = iy·nx + ix)."""
    nx = params["x"]["num"]
    iy, ix = np.divmod(np.asarray(indices, dtype=np.int64), nx)
    return axis_values(params["x"])[ix], axis_values(params["y"])[iy]


def _grid_weights(seed, number, params, indices):
    """The base, then the axes that set a weight, then the layer offsets added to what is there:
    the same weights whichever axis is x and which is y."""
    weights = np.repeat(np.array(params["base"], dtype=np.float64)[:, None], len(indices), axis=1)
    axes = list(zip(("x", "y"), grid_coordinates(params, indices)))
    for axis, values in sorted(axes, key=lambda a: _target(params[a[0]])[0] == "offset"):
        target, name = _target(params[axis])
        if target == "weight":
            weights[WEIGHT_NAMES.index(name)] = values
        elif target == "offset":
            for row in OFFSETS[name]:
                weights[row] = weights[row] + values
    return weights


def _grid_biases(params, indices, biases):
    for axis, values in zip(("x", "y"), grid_coordinates(params, indices)):
        target, name = _target(params[axis])
        if target == "bias":
            rows = SHARED_BIAS_NAMES.get(name) or (BIAS_NAMES.index(name),)
            for row in rows:
                biases[row] = values
    return biases


def _grid_label(params):
    def axis_text(axis):
        target, name = _target(axis)
        return f"{name} offset" if target == "offset" else name

    return f"grid {axis_text(params['x'])} × {axis_text(params['y'])}"


KINDS = {
    kind.name: kind
    for kind in (
        _kind("course", (), _parse_course, _course_weights, lambda p: "course weights"),
        _kind(
            "uniform",
            ("low", "high"),
            _parse_uniform,
            _uniform_weights,
            lambda p: f"uniform [{p.get('low', -1):g}, {p.get('high', 1):g}]",
            ("low", "high"),
        ),
        _kind(
            "normal",
            ("mean", "std"),
            _parse_normal,
            _normal_weights,
            lambda p: f"normal (μ = {p.get('mean', 0):g}, σ = {p.get('std', 1):g})",
            ("mean", "std"),
        ),
        _kind(
            "xavier",
            ("distribution",),
            _parse_xavier,
            _xavier_weights,
            lambda p: f"Xavier ({p.get('distribution', 'uniform')})",
        ),
        _kind("fixed", ("weights",), _parse_fixed, _fixed_weights, lambda p: "fixed weights"),
        _kind(
            "grid",
            ("x", "y", "base"),
            _parse_grid,
            _grid_weights,
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
