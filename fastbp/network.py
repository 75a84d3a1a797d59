"""The network a sweep trains (docs/spec.md "The network"): its layers, activations, update mode
and training patterns, a frozen, hashable ``Network`` (``options.parse_network`` makes one from
the spec's ``[network]`` table or the step table's options), and its data sets.

One hidden layer, fully connected: ``layers = (I, H, O)``. Its parameters have one documented
order, used everywhere a run's parameters are listed (``params_init``, ``params``, fixed inits,
grid axes, the step table): the weights layer by layer, each receiving unit's incoming weights in
the sender's order, then the biases layer by layer (``Network.parameter_names``). For the
exercise's layers (2, 2, 2) the weights w1 … w8 are w_h1_i1, w_h1_i2, w_h2_i1, w_h2_i2, w_o1_h1,
w_o1_h2, w_o2_h1, w_o2_h2, in that order.

A leaf, like ``compile_time``: plain Python, no fastbp import, nothing compiled.
"""

import functools
from dataclasses import dataclass

ACTIVATIONS = ("sigmoid", "tanh")  # the hidden layer's f
OUTPUT_ACTIVATIONS = ("sigmoid", "tanh", "linear")  # the output layer's g (default: f)
DATA_SETS = ("course", "xor", "encoder", "complement_encoder", "parity")
UPDATES = ("batch", "online")
MAX_UNITS = 64  # per layer
MAX_PARAMETERS = 1024  # weights + the biases that are trained
MAX_PATTERNS = 256  # explicit inputs/targets lists (parity's 2**10 patterns are generated)
MAX_PARITY_BITS = 10
EXERCISE_LAYERS = (2, 2, 2)
#: The course's one pattern: ``conventions.COURSE_INPUTS``, ``COURSE_TARGETS`` (a leaf imports
#: nothing; tests/test_network.py checks that they are the same numbers).
COURSE_INPUTS, COURSE_TARGETS = (0.05, 0.1), (0.5, 0.5)

#: Every key of ``[network]`` (``options.parse_network`` and ``options.bias_options`` parse them).
NETWORK_KEYS = frozenset(
    (
        "layers",
        "activation",
        "output_activation",
        "update",
        "data",
        "inputs",
        "targets",
        "biases",
        "train_biases",
    )
)


@dataclass(frozen=True)
class Network:
    """A network and its training patterns. ``Network()`` is the exercise: layers (2, 2, 2),
    sigmoid, batch updates, the course's one pattern. ``inputs``: P tuples of I floats,
    ``targets``: P tuples of O floats; ``data``: the data set's name, or "explicit" when the
    spec lists its patterns."""

    layers: tuple = EXERCISE_LAYERS
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    update: str = "batch"
    inputs: tuple = (COURSE_INPUTS,)
    targets: tuple = (COURSE_TARGETS,)
    data: str = "course"

    @property
    def n_in(self):
        return self.layers[0]

    @property
    def n_hidden(self):
        return self.layers[1]

    @property
    def n_out(self):
        return self.layers[2]

    @property
    def n_patterns(self):
        return len(self.inputs)

    @property
    def n_weights(self):
        return self.n_hidden * self.n_in + self.n_out * self.n_hidden

    @property
    def n_biases(self):
        """One per hidden and output unit (whether the network has biases is the options')."""
        return self.n_hidden + self.n_out

    def n_parameters(self, biases):
        """Weights, and the H + O biases when ``biases`` (they are parameters: trained or drawn)."""
        return self.n_weights + (self.n_biases if biases else 0)

    @property
    def is_exercise(self):
        """The network every dataset before issue 22 trained: its runs keep their bits."""
        return (
            self.layers == EXERCISE_LAYERS
            and (self.activation, self.output_activation, self.update) == ("sigmoid", "sigmoid", "batch")
            and self.n_patterns == 1
        )

    def parameter_names(self, biases):
        """The parameters' names in the documented order (1-based); ``biases``: whether the biases
        are parameters (then b_h1 … b_hH, b_o1 … b_oO follow the weights)."""
        return _parameter_names(self.layers, biases)

    def weight_fans(self):
        """Per weight, in order: (fan_in, fan_out) of its layer, (I, H) or (H, O) (Xavier's)."""
        i, h, o = self.layers
        return ((i, h),) * (h * i) + ((h, o),) * (o * h)


@dataclass(frozen=True)
class Parameters:
    """A network's drawn parameters, what an ``[[init]]`` block sets (``fastbp.inits``): its
    weights, then its H + O biases when they are drawn (``biases = "trained"``), in order."""

    network: Network = Network()
    drawn_biases: bool = False

    @property
    def names(self):
        return self.network.parameter_names(self.drawn_biases)

    @property
    def n(self):
        return len(self.names)

    @property
    def exercise(self):
        """The exercise's 8 weights and nothing else: the course weights, w1 … w8, 16 draws a run."""
        return self.network.layers == EXERCISE_LAYERS and not self.drawn_biases

    def fans(self):
        """Per parameter, (fan_in, fan_out) of its layer: a bias is drawn like its layer's weights."""
        i, h, o = self.network.layers
        biases = ((i, h),) * h + ((h, o),) * o if self.drawn_biases else ()
        return self.network.weight_fans() + biases


@functools.cache
def _parameter_names(layers, biases):
    i, h, o = layers
    names = [f"w_h{j}_i{k}" for j in range(1, h + 1) for k in range(1, i + 1)]
    names += [f"w_o{k}_h{j}" for k in range(1, o + 1) for j in range(1, h + 1)]
    if biases:
        names += [f"b_h{j}" for j in range(1, h + 1)] + [f"b_o{k}" for k in range(1, o + 1)]
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# The data sets (docs/spec.md "Data sets"): (inputs, targets) for layers, or why they do not fit


def _one_hot(n, complement=False):
    return tuple(tuple(float((i == p) != complement) for i in range(n)) for p in range(n))


def _parity(n):
    """All 2**n patterns counting in binary, the first input the most significant bit; target 1
    when the count of ones is odd."""
    inputs = tuple(tuple(float((p >> (n - 1 - i)) & 1) for i in range(n)) for p in range(2**n))
    return inputs, tuple((float(sum(x) % 2),) for x in inputs)


def data_set(name, layers):
    """(inputs, targets) of the named data set for ``layers``; a ``str`` saying what it needs when
    the layers do not fit it."""
    i, _, o = layers
    if name == "course":
        return ((COURSE_INPUTS,), (COURSE_TARGETS,)) if (i, o) == (2, 2) else "2 inputs and 2 outputs"
    if name == "xor":
        inputs = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
        return (inputs, ((0.0,), (1.0,), (1.0,), (0.0,))) if (i, o) == (2, 1) else "2 inputs and 1 output"
    if name in ("encoder", "complement_encoder"):
        patterns = _one_hot(i, complement=name == "complement_encoder")
        return (patterns, patterns) if i == o else "as many outputs as inputs"
    if o != 1 or i > MAX_PARITY_BITS:  # parity
        return f"1 to {MAX_PARITY_BITS} inputs and 1 output"
    return _parity(i)


def pattern_numbers(network, prefix="network."):
    """(field, value) for every number of the listed patterns (a float32 sweep checks them): one
    pattern's as ``inputs[i]``, as written flat, several as ``inputs[p][i]``."""
    for key, patterns in (("inputs", network.inputs), ("targets", network.targets)):
        for p, pattern in enumerate(patterns):
            where = f"{prefix}{key}" if len(patterns) == 1 else f"{prefix}{key}[{p}]"
            yield from ((f"{where}[{i}]", value) for i, value in enumerate(pattern))


def canonical_form(network):
    """The ``[network]`` keys a spec's canonical form states: a key only when its value is not the
    default, so that the exercise's canonical form (and fingerprint) is the one it always had;
    the patterns as listed (one pattern flat, as before) unless a named data set gives them."""
    source = {}
    if network.layers != EXERCISE_LAYERS:
        source["layers"] = list(network.layers)
    if network.activation != "sigmoid":
        source["activation"] = network.activation
    if network.output_activation != network.activation:
        source["output_activation"] = network.output_activation
    if network.update != "batch":
        source["update"] = network.update
    if network.data in ("course", "explicit"):
        for key, patterns in (("inputs", network.inputs), ("targets", network.targets)):
            source[key] = list(patterns[0]) if len(patterns) == 1 else [list(p) for p in patterns]
    else:
        source["data"] = network.data
    return source
