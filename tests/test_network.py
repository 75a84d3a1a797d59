"""Issue 22, the network's description: from the spec's ``[network]`` table to each run's initial
parameters, for any small network (docs/spec.md "The network").

The exercise's specs keep their canonical form, their fingerprints and their draws: the literals
below were computed on main before general networks (``fastbp.spec.load_spec(...).fingerprint``
and ``fastbp.layout.initial_weights``), so any change to them fails here. Training any network
is tested elsewhere, against tests/reference.py.
"""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from fastbp import conventions
from fastbp.errors import SpecError
from fastbp.inits import KINDS
from fastbp.layout import initial_biases, initial_weights, run_layout
from fastbp.network import MAX_PATTERNS, Network, Parameters, data_set
from fastbp.options import ModelOptions, parse_biases, parse_network
from fastbp.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parent.parent
UNIFORM = [{"kind": "uniform", "count": 3}]


def spec(network=None, init=UNIFORM, **keys):
    return parse_spec({"steps": 5, "lr": 0.5, "network": network or {}, "init": init, **keys})


def starting_point(s):
    """(weights, biases) of every run of spec ``s`` (one learning rate)."""
    _, _, blocks, indices = run_layout(s, 0, s.n_runs)
    return initial_weights(s, blocks, indices), initial_biases(s, blocks, indices)


def refusal(network, init=UNIFORM, **keys):
    with pytest.raises(SpecError) as excinfo:
        spec(network, init, **keys)
    assert "\n" not in str(excinfo.value)
    return excinfo.value


# ---------------------------------------------------------------------------------------------
# The network and its data sets


def test_the_default_network_is_the_exercise():
    network = Network()
    assert network.layers == (2, 2, 2) and network.is_exercise and network.data == "course"
    assert network.inputs == (conventions.COURSE_INPUTS,) and network.targets == (conventions.COURSE_TARGETS,)
    sizes = (network.n_in, network.n_hidden, network.n_out, network.n_patterns, network.n_weights)
    assert sizes == (2, 2, 2, 1, 8)
    assert spec().network == network and hash(spec().network) == hash(network)  # frozen and hashable
    for other in ({"activation": "tanh"}, {"update": "online"}, {"output_activation": "linear"}):
        assert not spec(other).network.is_exercise
    two_patterns = {"inputs": [[0.05, 0.1], [0.1, 0.2]], "targets": [[0.5, 0.5], [0.1, 0.9]]}
    assert not spec(two_patterns).network.is_exercise


def test_xor_encoders_and_parity():
    xor = spec({"layers": [2, 3, 1], "data": "xor"}).network
    assert xor.inputs == ((0, 0), (0, 1), (1, 0), (1, 1)) and xor.targets == ((0,), (1,), (1,), (0,))
    encoder = spec({"layers": [4, 2, 4], "data": "encoder"}).network
    assert encoder.inputs == encoder.targets == tuple(tuple(np.eye(4).tolist()[p]) for p in range(4))
    complement = spec({"layers": [3, 2, 3], "data": "complement_encoder"}).network
    assert complement.inputs == complement.targets == ((0, 1, 1), (1, 0, 1), (1, 1, 0))
    parity = spec({"layers": [3, 4, 1], "data": "parity"}).network
    assert parity.inputs == tuple(tuple(map(float, f"{p:03b}")) for p in range(8))  # binary, first input high
    assert [t for (t,) in parity.targets] == [0, 1, 1, 0, 1, 0, 0, 1]
    ten = data_set("parity", (10, 2, 1))[0]
    assert len(ten) == 1024 and ten[1023] == (1.0,) * 10 and ten[512][0] == 1.0  # first input: top bit


def test_listed_patterns_one_flat_or_several():
    network = {"layers": [3, 2, 1], "inputs": [[1, 0, 0], [0, 1, 0]], "targets": [0.25, 0.75]}
    s = spec(network)
    assert s.network.data == "explicit" and s.network.n_patterns == 2
    assert s.network.targets == ((0.25,), (0.75,))  # one number per pattern: a flat list of them
    assert s.inputs == s.network.inputs and s.targets == s.network.targets
    flat = spec({"targets": [0.01, 0.99]})  # today's flat pair: one pattern, its numbers flat
    assert flat.inputs == (0.05, 0.1) and flat.targets == (0.01, 0.99) and flat.network.n_patterns == 1
    assert spec({"inputs": [[0.05, 0.1]], "targets": [[0.5, 0.5]]}).network == Network()


def test_parse_network_takes_command_line_strings():
    network = parse_network(
        {"layers": ["2", "2", "1"], "data": "xor", "activation": "tanh"}, strings=True, prefix=""
    )
    assert network.layers == (2, 2, 1) and (network.activation, network.output_activation) == ("tanh", "tanh")
    with pytest.raises(SpecError) as excinfo:
        parse_network({"layers": ["2", "x", "1"]}, strings=True, prefix="")
    assert excinfo.value.field == "layers[1]"


def test_the_course_pattern_is_the_conventions():
    assert data_set("course", (2, 5, 2)) == ((conventions.COURSE_INPUTS,), (conventions.COURSE_TARGETS,))


@pytest.mark.parametrize(
    "network, field, fragment",
    [
        ({"layers": [2, 2]}, "network.layers", "3 integers from 1 to 64"),
        ({"layers": [65, 2, 2]}, "network.layers[0]", "from 1 to 64"),
        ({"layers": [2, 0, 2]}, "network.layers[1]", ">= 1"),
        ({"layers": [2, 2.0, 2]}, "network.layers[1]", "an integer"),
        ({"layers": [64, 64, 64]}, "network.layers", "at most 1,024 parameters (8,192 weights"),
        ({"layers": [3, 2, 1], "data": "xor"}, "network.data", "'xor' needs 2 inputs and 1 output"),
        ({"layers": [3, 2, 2], "data": "encoder"}, "network.data", "as many outputs as inputs"),
        (
            {"layers": [3, 2, 3], "data": "complement_encoder", "inputs": [1, 0, 0]},
            "network.inputs",
            "nothing",
        ),
        ({"layers": [11, 2, 1], "data": "parity"}, "network.data", "1 to 10 inputs and 1 output"),
        ({"layers": [3, 2, 1]}, "network.data", "inputs and targets for layers [3, 2, 1]"),
        ({"data": "iris"}, "network.data", "'xor'"),
        ({"activation": "relu"}, "network.activation", "'sigmoid', 'tanh'"),
        ({"output_activation": "softmax"}, "network.output_activation", "'linear'"),
        ({"update": "minibatch"}, "network.update", "'batch', 'online'"),
        ({"inputs": [0.05]}, "network.inputs", "exactly 2 finite numbers (1 given)"),
        (
            {"layers": [3, 2, 1], "inputs": [[1, 2, 3], [1, 2]], "targets": [0, 1]},
            "network.inputs[1]",
            "(2 given)",
        ),
        ({"layers": [3, 2, 1], "inputs": [[1, 2, 3], 4], "targets": [0, 1]}, "network.inputs", "not both"),
        (
            {"layers": [3, 2, 1], "inputs": [[1, 2, math.inf]], "targets": [0]},
            "network.inputs[0][2]",
            "finite",
        ),
        ({"layers": [3, 2, 1], "inputs": [[1, 2, 3]] * 2, "targets": [[1]]}, "network.targets", "2 patterns"),
        ({"layers": [3, 2, 1], "inputs": [[1, 2, 3]]}, "network.targets", "as many as network.inputs"),
        ({"layers": [1, 2, 1], "inputs": [[0.5]] * 257, "targets": [0] * 257}, "network.inputs", "1 to 256"),
        ({"targets": [0.5, "a"]}, "network.targets[1]", "finite number"),
        ({"layer": [2, 2, 2]}, "network.layer", "one of activation, biases, data"),
    ],
)
def test_network_refusals_name_the_key(network, field, fragment):
    error = refusal(network)
    assert error.field == field and fragment in str(error), str(error)


def test_limits_count_trained_biases():
    assert spec({"layers": [30, 16, 30], "data": "encoder", "biases": "trained"}).parameters.n == 1006
    error = refusal({"layers": [31, 16, 31], "data": "encoder", "biases": "trained"})
    assert error.field == "network.biases" and "992 weights + 47 trained biases exceed 1,024" in str(error)
    error = refusal({"layers": [31, 16, 31], "data": "encoder", "biases": [0, 0], "train_biases": True})
    assert error.field == "network.train_biases"
    assert spec({"layers": [31, 16, 31], "data": "encoder", "biases": [0, 0]}).options.n_parameters == 992
    assert spec({"layers": [10, 5, 1], "data": "parity"}).network.n_patterns == 1024 > MAX_PATTERNS


def test_a_float32_sweep_refuses_patterns_it_cannot_hold():
    network = {"layers": [3, 2, 1], "inputs": [[1, 2, 3], [1, 2, 1e39]], "targets": [0, 1]}
    assert refusal(network, dtype="float32").field == "network.inputs[1][2]"
    assert refusal({"targets": [0.5, 1e39]}, dtype="float32").field == "network.targets[1]"


# ---------------------------------------------------------------------------------------------
# Parameters: names, order, fans


def test_parameter_names_in_the_documented_order():
    # w1 … w8 of the exercise, in their order
    assert Network().parameter_names(False) == tuple(
        "w_h1_i1 w_h1_i2 w_h2_i1 w_h2_i2 w_o1_h1 w_o1_h2 w_o2_h1 w_o2_h2".split()
    )
    names = Network(layers=(3, 2, 1)).parameter_names(True)
    assert names == (
        ("w_h1_i1", "w_h1_i2", "w_h1_i3", "w_h2_i1", "w_h2_i2", "w_h2_i3", "w_o1_h1", "w_o1_h2")
        + ("b_h1", "b_h2", "b_o1")
    )
    encoder = Network(layers=(10, 5, 10))
    assert encoder.n_weights == len(encoder.parameter_names(False)) == 100
    assert encoder.parameter_names(True)[-1] == "b_o10" and encoder.n_parameters(True) == 115


def test_weight_fans_are_their_layers():
    fans = Network(layers=(3, 4, 2)).weight_fans()
    assert fans == ((3, 4),) * 12 + ((4, 2),) * 8
    assert Network().weight_fans() == ((2, 2),) * 8  # Xavier's 2 + 2 for every weight, as before
    drawn = Parameters(Network(layers=(3, 4, 2)), drawn_biases=True)
    assert drawn.fans()[20:] == ((3, 4),) * 4 + ((4, 2),) * 2  # a drawn bias: its layer's fans


# ---------------------------------------------------------------------------------------------
# Biases for any size


def test_biases_one_per_layer_or_per_unit_or_drawn():
    xor = {"layers": [2, 3, 1], "data": "xor"}
    shared = spec({**xor, "biases": [0.35, 0.6]})
    assert shared.biases == (0.35, 0.35, 0.35, 0.6) and shared.shared_biases
    assert shared.options.given_biases == (0.35, 0.6) and shared.as_dict()["network"]["biases"] == [0.35, 0.6]
    per_unit = spec({**xor, "biases": [0.1, 0.2, 0.3, 0.4], "train_biases": True})
    assert per_unit.biases == (0.1, 0.2, 0.3, 0.4) and not per_unit.shared_biases and per_unit.train_biases
    drawn = spec({**xor, "biases": "trained"})
    assert drawn.biases is None and drawn.drawn_biases and drawn.train_biases and not drawn.shared_biases
    assert drawn.options.has_biases and drawn.options.column_families()["biases"]
    keywords = drawn.options.train_keywords(None, "initial biases")
    assert keywords["biases"] == "initial biases" and keywords["train_biases"] is True
    assert drawn.as_dict()["network"] == {
        "layers": [2, 3, 1],
        "data": "xor",
        "biases": "trained",
        "train_biases": True,
    }
    assert parse_spec(json.loads(json.dumps(drawn.as_dict()))) == drawn
    assert spec({**xor, "biases": "trained", "train_biases": True}).fingerprint == drawn.fingerprint


def test_the_exercises_bias_refusals_keep_their_words():
    with pytest.raises(SpecError) as excinfo:
        parse_biases([0.1, 0.2, 0.3], False)
    assert str(excinfo.value) == (
        "biases: got [0.1, 0.2, 0.3]; allowed: 2 finite numbers [b_h, b_o] (one bias per layer, "
        "shared by its two units) or 4 [b_h1, b_h2, b_o1, b_o2] (one per unit) (3 given)"
    )
    assert parse_biases([0.35, 0.6], True) == ((0.35, 0.35, 0.6, 0.6), True)
    assert ModelOptions(biases=(0.35, 0.35, 0.6, 0.6), shared_biases=True).given_biases == (0.35, 0.6)


@pytest.mark.parametrize(
    "network, field, fragment",
    [
        (
            {"layers": [2, 3, 1], "data": "xor", "biases": [1, 2, 3]},
            "network.biases",
            "or 4 [b_h1 … b_h3, b_o1]",
        ),
        ({"biases": "trained", "train_biases": False}, "network.train_biases", "true (or nothing)"),
        ({"biases": "drawn"}, "network.biases", "'trained'"),
    ],
)
def test_bias_refusals_for_any_size(network, field, fragment):
    error = refusal(network)
    assert error.field == field and fragment in str(error), str(error)


# ---------------------------------------------------------------------------------------------
# The exercise keeps its canonical form, its fingerprints and its draws (literals from main)

FINGERPRINTS = {
    "tests/golden/v2/spec.toml": "8cca989e67b57fe54ae4667315044bfcc91289bd4fb72b15dfc924d12cc48309",
    "tests/golden/v3/spec.toml": "3ee0c876885e7a491cb5df55efbca1a349d0228c49e889fd5b7a5dd1b402c123",
    "scripts/demo_sweep.toml": "a5366e76f546e521d16a6c6edbb5d39c45eca9a958529bd5540589447f4b16b4",
}


@pytest.mark.parametrize("path", sorted(FINGERPRINTS))
def test_the_exercises_fingerprints_are_unchanged(path):
    s = load_spec(ROOT / path)
    assert s.fingerprint == FINGERPRINTS[path]
    assert set(s.as_dict()["network"]) == {"inputs", "targets"}


def test_default_values_written_out_are_the_same_spec():
    defaults = {
        "layers": [2, 2, 2],
        "activation": "sigmoid",
        "output_activation": "sigmoid",
        "update": "batch",
    }
    assert spec({**defaults, "data": "course"}).fingerprint == spec().fingerprint
    assert spec({"inputs": [[0.05, 0.1]], "targets": [[0.5, 0.5]]}).source == spec().source
    tanh = spec({"activation": "tanh", "output_activation": "tanh"})
    assert tanh.as_dict()["network"] == {"activation": "tanh", "inputs": [0.05, 0.1], "targets": [0.5, 0.5]}


MAIN_INITS = {  # block 1 of a spec with seed 1234567; the draws on main (sha256 of the bytes)
    "uniform": ({"kind": "uniform", "low": -2.0, "high": 3.0, "count": 40}, "c7bf0e9cc8c5c628"),
    "xavier": ({"kind": "xavier", "count": 40}, "627ca4ac704ef09d"),
    "grid": (
        {
            "kind": "grid",
            "x": {"offset": "hidden", "linspace": [-1.0, 1.0], "num": 5},
            "y": {"weight": "w6", "logspace": [-2, 0], "num": 4},
        },
        "5ea27cabea6268de",
    ),
    "grid_bias": (
        {
            "kind": "grid",
            "x": {"weight": "w1", "linspace": [-3.0, 3.0], "num": 5},
            "y": {"bias": "b_o", "linspace": [-1, 1], "num": 3},
        },
        "5e3050a78adc3d88",
    ),
}
MAIN_NORMALS = {  # the first and last run of 40 (the C library's log and cos: to 1e-15)
    "normal": (
        {"kind": "normal", "mean": 0.25, "std": 1.5, "count": 40},
        [-1.4971290646348197, 0.7124436790035102, -0.25789980012610403, 1.5969273172431104]
        + [-0.6552185183104762, 0.8504555515035928, 0.39851139503273, 2.095828528656056],
        [-1.6242490040304087, 0.18370406558474195, -2.3274323612241012, 0.23033193870359156]
        + [1.129180917874046, 0.2750345824136899, -1.2922345691999066, -1.9788798966095174],
    ),
    "xavier_normal": (
        {"kind": "xavier", "distribution": "normal", "count": 40},
        [-0.8236045394742606, 0.21799804089349148, -0.23942626188830685, 0.6349476265253384]
        + [-0.4267241018353178, 0.2830574615128658, 0.07000894300741167, 0.8701319130135232],
        [-0.8835294535880233, -0.031252203193418385, -1.2150132671141447, -0.009271613010322062]
        + [0.414449859279034, 0.011801415325929068, -0.7270163480410452, -1.0507040595619739],
    ),
}


def exercise_block(init, network=None):
    s = spec(network, [{"kind": "course"}, init], seed=1234567)
    n = s.inits[1].count
    blocks, indices = np.ones(n, np.int32), np.arange(n)
    return initial_weights(s, blocks, indices), initial_biases(s, blocks, indices)


def sha(array):
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(MAIN_INITS))
def test_the_exercises_draws_are_mains_bit_for_bit(name):
    init, expected = MAIN_INITS[name]
    network = {"biases": [0.35, 0.6], "train_biases": True} if name == "grid_bias" else None
    weights, biases = exercise_block(init, network)
    assert weights.shape[0] == 8 and sha(weights) == expected
    assert (biases is None) == (network is None)
    if name == "grid_bias":
        assert sha(biases) == "17bc0ac43c5c664b"


@pytest.mark.parametrize("name", sorted(MAIN_NORMALS))
def test_the_exercises_normal_draws_are_mains(name):
    init, first, last = MAIN_NORMALS[name]
    weights, _ = exercise_block(init)
    np.testing.assert_allclose(weights[:, 0], first, rtol=1e-15)
    np.testing.assert_allclose(weights[:, -1], last, rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Initial parameters of other networks

N = 4000  # runs per statistical check: 5-sigma bounds, deterministic draws


def test_uniform_and_normal_draw_every_parameter_drawn_biases_included():
    network = {"layers": [3, 4, 2], "inputs": [[1, 0, 1]], "targets": [[0, 1]], "biases": "trained"}
    weights, biases = starting_point(
        spec(network, [{"kind": "uniform", "low": -0.5, "high": 2.0, "count": N}])
    )
    assert weights.shape == (20, N) and biases.shape == (6, N)
    values = np.vstack([weights, biases])
    assert (values >= -0.5).all() and (values < 2.0).all()
    assert np.abs(values.mean(axis=1) - 0.75).max() < 5 * 2.5 / math.sqrt(12 * N)
    assert np.abs(np.corrcoef(values) - np.eye(26)).max() < 5 / math.sqrt(N)  # 26 independent draws
    weights, biases = starting_point(spec(network, [{"kind": "normal", "mean": 1.0, "std": 0.5, "count": N}]))
    values = np.vstack([weights, biases])
    assert np.abs(values.mean(axis=1) - 1.0).max() < 5 * 0.5 / math.sqrt(N)
    assert np.abs(values.std(axis=1) / 0.5 - 1).max() < 5 / math.sqrt(2 * N)


def test_xavier_uses_each_layers_fans():
    network = {"layers": [10, 5, 1], "data": "parity", "biases": "trained"}
    weights, biases = starting_point(spec(network, [{"kind": "xavier", "count": N}]))
    hidden, output = math.sqrt(6 / 15), math.sqrt(6 / 6)
    for values, limit in (
        (weights[:50], hidden),
        (weights[50:], output),
        (biases[:5], hidden),
        (biases[5:], output),
    ):
        assert (np.abs(values) <= limit).all() and np.abs(values).max() > 0.99 * limit
    weights, _ = starting_point(spec(network, [{"kind": "xavier", "distribution": "normal", "count": N}]))
    assert abs(weights[:50].std() / math.sqrt(2 / 15) - 1) < 5 / math.sqrt(2 * 50 * N)
    assert abs(weights[50:].std() / math.sqrt(2 / 6) - 1) < 5 / math.sqrt(2 * 5 * N)


def test_draws_depend_on_seed_block_and_index_only():
    network = {"layers": [4, 3, 2], "inputs": [1, 0, 0, 1], "targets": [0, 1], "biases": "trained"}
    s = spec(network, [{"kind": "uniform", "count": 7}, {"kind": "normal", "count": 50}], seed=9)
    blocks, indices = np.ones(50, np.int32), np.arange(50)
    every = np.vstack([initial_weights(s, blocks, indices), initial_biases(s, blocks, indices)])
    subset = np.array([41, 3, 17])
    some = np.vstack([initial_weights(s, blocks[:3], subset), initial_biases(s, blocks[:3], subset)])
    assert np.array_equal(some, every[:, subset])
    # weights and biases are rows of one draw of every parameter (2 × 23 positions a run)
    params = s.inits[1].params
    assert np.array_equal(KINDS["normal"].values(9, 1, params, indices, s.parameters, np.arange(23)), every)


def test_the_new_stream_is_pinned():
    """Another network's draws: parameter k of run ``index`` at position index · 2n + k of the
    (seed, block) stream (inits' module doc), here n = 9; the exercise's 8 weights take 16 a run."""
    s = spec(
        {"layers": [2, 2, 1], "data": "xor", "biases": "trained"}, [{"kind": "uniform", "count": 2}], seed=42
    )
    weights, biases = starting_point(s)
    xor = np.vstack([weights, biases])
    exercise, _ = starting_point(spec(None, [{"kind": "uniform", "count": 2}], seed=42))
    assert np.array_equal(xor[:8, 0], exercise[:, 0])  # positions 0 … 7 of both streams
    assert np.array_equal(xor[:6, 1], exercise[2:, 1])  # positions 18 … 23: the exercise's run 1 is 16 … 23
    assert xor[:, 1].tolist() == [
        *(0.16223639718102523, 0.5239901866392085, 0.881207134767886, -0.26100874532623264),
        *(-0.4262018920611348, 0.08533543673699606, 0.02952713043803512, 0.6342658506739907),
        0.6078098685018574,
    ]


def test_fixed_lists_every_parameter_in_order():
    network = {"layers": [4, 3, 2], "inputs": [1, 0, 0, 1], "targets": [0, 1], "biases": "trained"}
    rows = [list(range(23)), [0.5] * 23]
    weights, biases = starting_point(spec(network, [{"kind": "fixed", "weights": rows}]))
    assert weights[:, 0].tolist() == list(range(18)) and biases[:, 0].tolist() == list(range(18, 23))
    error = refusal(network, [{"kind": "fixed", "weights": [[0.0] * 18]}])
    assert error.field == "init[0].weights[0]" and "exactly 23" in str(error)


def test_a_grid_over_any_parameter():
    biases = [0.1, 0.1, 0.1, 0.1, 0.2, 0.2]  # per unit: a bias axis sets one of them
    network = {"layers": [3, 4, 2], "inputs": [[1, 0, 1]], "targets": [[0, 1]], "biases": biases}
    grid = {
        "kind": "grid",
        "x": {"weight": "w_h2_i3", "linspace": [-1.0, 1.0], "num": 3},
        "y": {"bias": "b_o2", "linspace": [0.0, 1.0], "num": 2},
        "base": list(range(20)),
    }
    weights, biases = starting_point(spec(network, [grid]))
    assert np.array_equal(weights[5], np.tile([-1.0, 0.0, 1.0], 2))  # w_h2_i3: hidden unit 2's third
    others = [k for k in range(20) if k != 5]
    assert np.array_equal(weights[others], np.repeat(np.arange(20.0)[others, None], 6, axis=1))
    assert np.array_equal(biases[5], np.repeat([0.0, 1.0], 3)) and (biases[:4] == 0.1).all()
    offset = {**grid, "y": {"offset": "output", "linspace": [0.0, 1.0], "num": 2}}
    weights, _ = starting_point(spec(network, [offset]))
    assert (weights[12:, 3:] == np.arange(12.0, 20.0)[:, None] + 1.0).all()  # w_o1_h1 … w_o2_h4


def test_a_grid_with_drawn_biases_sets_them_and_w1_names_the_exercises_weight():
    grid = {
        "kind": "grid",
        "x": {"weight": "w_o1_h1", "linspace": [0.0, 1.0], "num": 2},
        "y": {"bias": "b_o", "linspace": [-1.0, 1.0], "num": 3},
        "base": list(range(12)),
    }
    s = spec({"biases": "trained"}, [grid])
    assert s.as_dict()["init"][0]["x"]["weight"] == "w5"  # the exercise's canonical name
    weights, biases = starting_point(s)
    assert np.array_equal(weights[4], np.tile([0.0, 1.0], 3))
    assert np.array_equal(biases[:2], np.repeat([[8.0], [9.0]], 6, axis=1))
    assert np.array_equal(biases[2], np.repeat([-1.0, 0.0, 1.0], 2)) and np.array_equal(biases[3], biases[2])


@pytest.mark.parametrize(
    "network, init, field, fragment",
    [
        ({"layers": [2, 3, 1], "data": "xor"}, {"kind": "course"}, "init[0].kind", "2-2-2 network's"),
        ({"biases": "trained"}, {"kind": "course"}, "init[0].kind", "drawn biases have none"),
        (
            {"layers": [2, 3, 1], "data": "xor"},
            {"kind": "grid", "x": {"weight": "w1", "linspace": [0, 1], "num": 2}},
            "init[0].x.weight",
            "'w_h1_i1'",
        ),
        (
            {"layers": [2, 3, 1], "data": "xor"},
            {
                "kind": "grid",
                "x": {"weight": "w_h1_i1", "linspace": [0, 1], "num": 2},
                "y": {"weight": "w_o1_h3", "linspace": [0, 1], "num": 2},
            },
            "init[0].base",
            "9 parameters (w_h1_i1 … w_o1_h3)",
        ),
        (
            {"layers": [2, 3, 1], "data": "xor"},
            {
                "kind": "grid",
                "x": {"bias": "b_h3", "linspace": [0, 1], "num": 2},
                "y": {"weight": "w_o1_h3", "linspace": [0, 1], "num": 2},
                "base": [0.0] * 9,
            },
            "init[0].x.bias",
            "only when network.biases",
        ),
    ],
)
def test_init_refusals_for_other_networks(network, init, field, fragment):
    error = refusal(network, [init])
    assert error.field == field and fragment in str(error), str(error)


def test_the_spec_pages_networks_parse():
    """docs/spec.md's examples with a [network] table are specs (a fragment completed)."""
    import re
    import tomllib

    page = (ROOT / "docs" / "spec.md").read_text()
    blocks = [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", page, re.S) if "[network]" in b]
    completed = [b if "lr" in b or "lr_hidden" in b else {"lr": 1, **b} for b in blocks]
    networks = [parse_spec({"steps": 1, "init": UNIFORM, **b}).network for b in completed]
    assert {n.data for n in networks} >= {"xor", "encoder"} and (10, 5, 10) in {n.layers for n in networks}
