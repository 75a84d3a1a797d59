"""The model's options, decided once (docs/model.md "Biases", "Learning rate per layer").

A sweep spec (``spec.parse_spec``) and the step table's arguments (``table.check_table_args``)
both parse their network (``parse_network``) and its biases here and carry the result, a ``ModelOptions``; the layers below read it
rather than deciding again: the step table's columns, the dataset's column families, and the
keywords of ``kernels.train`` (whose variant follows from them: ``compile_time.Variant.of``).
Biases are sized by the network (``network.Network``, parsed first): H + O of them.

With two learning rates the first one given (``lr``, or ``lr_hidden``) is the hidden layer's and
``lr_output`` the output layer's; arrays and columns named ``lr`` hold the hidden layer's rates.
"""

import dataclasses
from dataclasses import dataclass

from fastbp import errors
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, table_columns
from fastbp.errors import SpecError, finite_number
from fastbp.network import (
    ACTIVATIONS,
    DATA_SETS,
    EXERCISE_LAYERS,
    MAX_PARAMETERS,
    MAX_PATTERNS,
    MAX_UNITS,
    NETWORK_KEYS,
    OUTPUT_ACTIVATIONS,
    UPDATES,
    Network,
    data_set,
)

#: What ``biases`` may be for the exercise's layers, wherever it is given (spec, table options, Python).
BIASES_ALLOWED = (
    "2 finite numbers [b_h, b_o] (one bias per layer, shared by its two units) "
    "or 4 [b_h1, b_h2, b_o1, b_o2] (one per unit)"
)

#: ``biases = "trained"``: a trained bias per unit, its initial value drawn by the ``[[init]]`` block.
DRAWN = "trained"


@dataclass(frozen=True)
class ModelOptions:
    """A sweep's or a table's model options. ``biases``: the H + O given biases per unit
    (b_h1 … b_hH, b_o1 … b_oO, a shared bias repeated; for the exercise's layers b_h1, b_h2, b_o1,
    b_o2), or None (no biases, or drawn ones); ``shared_biases``: one bias per layer;
    ``train_biases``: they are trained (``parse_biases`` refuses it without biases);
    ``drawn_biases``: ``biases = "trained"``, trained per unit from values each run's ``[[init]]``
    block draws (``layout.initial_biases``); ``network``: the layers and data
    (``network.Network``; default the exercise's)."""

    two_rates: bool = False
    biases: tuple | None = None
    shared_biases: bool = False
    train_biases: bool = False
    diagnostics: bool = False
    network: Network = dataclasses.field(default_factory=Network)
    drawn_biases: bool = False

    @property
    def has_biases(self):
        """Whether the units have biases: given values, or drawn ones."""
        return self.biases is not None or self.drawn_biases

    @property
    def given_biases(self):
        """The biases as they are given: (b_h, b_o) when shared, H + O per unit, () without."""
        if self.biases is None:
            return ()
        return (self.biases[0], self.biases[self.network.n_hidden]) if self.shared_biases else self.biases

    @property
    def n_parameters(self):
        """What a run trains: the weights, and the H + O biases when they are trained."""
        return self.network.n_parameters(self.train_biases)

    def table_columns(self):
        """The step table's columns: the 31, then the biases', then their gradients' when trained.
        Another network's (docs/table.md "Any small network"): its parameters (the biases too,
        when it has them), E_total, then with batch updates dE_d<name> of the trained ones."""
        network = self.network
        if network.is_exercise:
            return table_columns(self.has_biases, self.train_biases)
        gradients = () if network.update == "online" else network.parameter_names(self.train_biases)
        return network.parameter_names(self.has_biases) + ("E_total",) + tuple("dE_d" + n for n in gradients)

    def column_families(self):
        """Which optional column families a dataset of these options has (``columns.columns_of``)."""
        return {
            "biases": self.has_biases,
            "trained": self.train_biases,
            "diagnostics": self.diagnostics,
            "params": self.network.layers != EXERCISE_LAYERS,
        }

    def train_keywords(self, lr_output, biases):
        """``kernels.train``'s keywords for arrays of the runs' output-layer rates and initial
        biases: only what these options use (a bias-free single-rate call on the exercise's
        network passes only ``diagnostics``). The patterns are the caller's (``network``)."""
        keywords = {"diagnostics": self.diagnostics}
        network = self.network
        if not network.is_exercise:
            keywords.update(
                layers=network.layers,
                activation=network.activation,
                output_activation=network.output_activation,
                update=network.update,
            )
        if self.two_rates:
            keywords["lr_output"] = lr_output
        if self.has_biases:
            keywords.update(biases=biases, train_biases=self.train_biases, shared_biases=self.shared_biases)
        return keywords


# ---------------------------------------------------------------------------------------------
# The network (docs/spec.md "The network"): parsed first, its biases sized by it


def parse_network(table, *, strings=False, prefix="network."):
    """A ``Network`` from the spec's ``[network]`` table (a dict; the bias keys are left to
    ``options.bias_options``). ``strings``: numbers may be text (command-line options);
    ``prefix``: what refusals put before a key (``""`` for the step table's options).
    Raises ``SpecError`` naming the key."""
    if not isinstance(table, dict):
        raise SpecError(
            prefix.rstrip(".") or "network", table, "a table with keys " + ", ".join(sorted(NETWORK_KEYS))
        )
    for key in table:
        if key not in NETWORK_KEYS:
            raise SpecError(f"{prefix}{key}", "an unknown key", "one of " + ", ".join(sorted(NETWORK_KEYS)))
    layers = _layers(table.get("layers", list(EXERCISE_LAYERS)), prefix, strings)
    activation = errors.choice(f"{prefix}activation", table.get("activation", "sigmoid"), ACTIVATIONS)
    output = errors.choice(
        f"{prefix}output_activation", table.get("output_activation", activation), OUTPUT_ACTIVATIONS
    )
    update = errors.choice(f"{prefix}update", table.get("update", "batch"), UPDATES)
    data, inputs, targets = _patterns(table, layers, prefix, strings)
    return Network(layers, activation, output, update, inputs, targets, data)


def parse_layers(value, *, strings=False, prefix="network."):
    """(n_in, n_hidden, n_out) from ``[network] layers``; raises ``SpecError`` naming the key."""
    return _layers(value, prefix, strings)


def _layers(value, prefix, strings):
    field = f"{prefix}layers"
    allowed = f"[n_in, n_hidden, n_out]: 3 integers from 1 to {MAX_UNITS}"
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != 3:
        raise SpecError(field, value, allowed)
    layers = tuple(
        errors.integer(f"{field}[{k}]", n, minimum=1, strings=strings) for k, n in enumerate(value)
    )
    for k, n in enumerate(layers):
        if n > MAX_UNITS:
            raise SpecError(f"{field}[{k}]", n, f"an integer from 1 to {MAX_UNITS}")
    i, h, o = layers
    if h * i + o * h > MAX_PARAMETERS:
        allowed = f"at most {MAX_PARAMETERS:,} parameters ({h * i + o * h:,} weights: H·I + O·H)"
        raise SpecError(field, list(layers), allowed)
    return layers


def _patterns(table, layers, prefix, strings):
    """(data, inputs, targets): a named data set's, or the listed patterns. As before issue 22, a
    list not given is the course's (when the layer fits it); listed patterns that are the course's
    are the course data set (a spec's canonical form lists them)."""
    name = table.get("data")
    if name is not None:
        name = errors.choice(f"{prefix}data", name, DATA_SETS)
    listed = [key for key in ("inputs", "targets") if key in table]
    if not listed:
        found = data_set(name or "course", layers)
        if isinstance(found, tuple):
            return name or "course", *found
        if name is None:
            allowed = f"data = 'xor', 'encoder', … or inputs and targets for layers {list(layers)}"
            raise SpecError(
                f"{prefix}data", "nothing", f"{allowed} (the course's data has 2 inputs, 2 outputs)"
            )
        raise SpecError(
            f"{prefix}data", name, f"a data set that fits layers {list(layers)}: {name!r} needs {found}"
        )
    if name not in (None, "course"):
        raise SpecError(
            f"{prefix}{listed[0]}", table[listed[0]], f"nothing: data = {name!r} gives the patterns"
        )
    given = {}
    for key, width, course in (("inputs", layers[0], COURSE_INPUTS), ("targets", layers[2], COURSE_TARGETS)):
        if key not in table and width != len(course):
            other = f"{prefix}{listed[0]}"
            raise SpecError(f"{prefix}{key}", "nothing", f"a list of patterns, as many as {other} gives")
        given[key] = _pattern_list(f"{prefix}{key}", table.get(key, course), width, strings)
    inputs, targets = given["inputs"], given["targets"]
    if len(targets) != len(inputs):
        allowed = f"{len(inputs)} patterns, one per pattern of {prefix}inputs"
        raise SpecError(f"{prefix}targets", f"{len(targets)} pattern" + "s" * (len(targets) > 1), allowed)
    return ("course" if (inputs, targets) == data_set("course", layers) else "explicit"), inputs, targets


def _pattern_list(field, value, width, strings):
    """P tuples of ``width`` finite numbers: ``[[…], …]``; one pattern written flat ``[…]`` (as
    before issue 22); or, when a pattern is one number, one number per pattern ``[0, 1, 1, 0]``."""
    allowed = f"a list of {width} numbers (one pattern) or of 1 to {MAX_PATTERNS} lists of {width} numbers"
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) == 0:
        raise SpecError(field, value, allowed)
    if len(value) > MAX_PATTERNS:
        raise SpecError(field, f"{len(value):,} patterns", allowed)
    nested = [hasattr(row, "__len__") and not isinstance(row, (str, bytes, dict)) for row in value]
    if not any(nested) and width == 1:
        return tuple(
            (errors.finite_number(f"{field}[{p}]", x, strings=strings),) for p, x in enumerate(value)
        )
    if not any(nested):
        return (errors.number_tuple(field, value, width, strings=strings),)
    if not all(nested):
        raise SpecError(field, list(value), allowed + " (not both)")
    return tuple(
        errors.number_tuple(f"{field}[{p}]", row, width, strings=strings) for p, row in enumerate(value)
    )


def _allowed(network, drawn=False):
    """What ``biases`` may be for ``network``; ``drawn``: ``"trained"`` too (a spec's)."""
    h, o = network.n_hidden, network.n_out
    units = ", ".join(
        f"b_{layer}1" + (f" … b_{layer}{n}" if n > 1 else "") for layer, n in (("h", h), ("o", o))
    )
    given = (
        BIASES_ALLOWED
        if network.layers == EXERCISE_LAYERS
        else f"2 finite numbers [b_h, b_o] (one bias per layer, shared by its units) or {h + o} [{units}] (one per unit)"
    )
    return f"{given}, or {DRAWN!r} (one per unit, drawn by [[init]] and trained)" if drawn else given


def parse_biases(value, train, *, network=None, field="biases", train_field="train_biases", strings=False):
    """(biases, shared) from ``value`` (None, 2 or H + O finite numbers) with ``train`` checked
    against it: the one place where "two numbers are one bias per layer" and "trained biases
    need biases" are decided. ``network``: the layers (default the exercise's); ``strings``:
    numbers may be given as text (command-line options)."""
    return _given_biases(value, train, network or Network(), field, train_field, strings, drawn=False)


def _given_biases(value, train, network, field, train_field, strings, drawn):
    if not isinstance(train, bool):
        raise SpecError(train_field, train, "true or false")
    if value is None:
        if train:
            raise SpecError(train_field, train, f"false unless {field} is given")
        return None, False
    allowed = _allowed(network, drawn)
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise SpecError(field, value, allowed)
    if len(value) not in (2, network.n_biases):
        raise SpecError(field, list(value), f"{allowed} ({len(value)} given)")
    numbers = tuple(finite_number(f"{field}[{k}]", v, strings=strings) for k, v in enumerate(value))
    if train:
        _check_parameters(network, train_field, train)
    if len(numbers) == 2:  # (with one unit per layer, shared and per unit are the same biases)
        b_h, b_o = numbers
        return (b_h,) * network.n_hidden + (b_o,) * network.n_out, True
    return numbers, False


def bias_options(value, train, network, *, field="network.biases", train_field="network.train_biases"):
    """The spec's biases as ``ModelOptions`` keywords (biases, shared_biases, train_biases,
    drawn_biases): ``parse_biases``' forms, or ``"trained"``: drawn, trained per unit (then
    ``train``, None when not given, may only be true)."""
    if isinstance(value, str) and value == DRAWN:
        if train not in (None, True):
            raise SpecError(train_field, train, f"true (or nothing) with {field} = {DRAWN!r}")
        _check_parameters(network, field, value)
        return {"biases": None, "shared_biases": False, "train_biases": True, "drawn_biases": True}
    train = False if train is None else train
    biases, shared = _given_biases(value, train, network, field, train_field, strings=False, drawn=True)
    return {"biases": biases, "shared_biases": shared, "train_biases": train, "drawn_biases": False}


def _check_parameters(network, field, value):
    """Trained biases are parameters: the weights and the H + O biases within ``MAX_PARAMETERS``."""
    if network.n_parameters(True) > MAX_PARAMETERS:
        allowed = (
            f"fixed biases for layers {list(network.layers)}: {network.n_weights:,} weights + "
            f"{network.n_biases} trained biases exceed {MAX_PARAMETERS:,} parameters"
        )
        raise SpecError(field, value, allowed)
