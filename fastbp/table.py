"""The spreadsheet's step table (docs/model.md "The step table"): 31 columns, one row per step,
and with biases (docs/model.md "Biases") their values and, when trained, their gradients."""

from collections import namedtuple

import numpy as np

from fastbp import errors
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS, DTYPES
from fastbp.network import EXERCISE_LAYERS, pattern_numbers
from fastbp.options import DRAWN, ModelOptions, bias_options, parse_biases, parse_layers, parse_network
from fastbp.spec import MAX_STEPS, learning_rate  # what the sweep accepts, the table accepts

#: A step table's validated arguments: ``lr`` (the hidden layer's rate when ``lr_output`` is
#: given, else the one rate), ``lr_output`` or None, and the model's ``options.ModelOptions``.
TableArgs = namedtuple("TableArgs", "lr steps inputs targets weights dtype lr_output options")

#: The step table's network options: a spec's ``[network]`` keys (docs/spec.md "The network").
NETWORK_OPTIONS = ("layers", "activation", "output_activation", "data", "update")


def check_table_args(
    lr,
    steps,
    inputs=None,
    targets=None,
    weights=None,
    dtype="float64",
    *,
    biases=None,
    train_biases=False,
    lr_hidden=None,
    lr_output=None,
    layers=None,
    activation=None,
    output_activation=None,
    data=None,
    update=None,
):
    """Validated ``TableArgs``; raises ``SpecError`` naming the field.

    Without network options (``layers``, ``activation``, ``output_activation``, ``data``,
    ``update``, ``biases="trained"``) the exercise's table, as before issue 22. With them, the
    network is parsed as a spec's ``[network]`` (``options.parse_network``); the 2-2-2 exercise
    on one pattern still gets the exercise's table, any other network the network table
    (docs/table.md "Any small network"; ``network_table_args``)."""
    network_options = {
        key: value
        for key, value in zip(NETWORK_OPTIONS, (layers, activation, output_activation, data, update))
        if value is not None
    }
    if network_options or _drawn(biases):
        return network_table_args(
            lr,
            steps,
            inputs,
            targets,
            weights,
            dtype,
            biases,
            train_biases,
            lr_hidden,
            lr_output,
            network_options,
        )
    inputs = COURSE_INPUTS if inputs is None else inputs
    targets = COURSE_TARGETS if targets is None else targets
    weights = COURSE_WEIGHTS if weights is None else weights
    return _exercise_args(
        lr, steps, inputs, targets, weights, dtype, biases, train_biases, lr_hidden, lr_output
    )


def _exercise_args(lr, steps, inputs, targets, weights, dtype, biases, train_biases, lr_hidden, lr_output):
    """``TableArgs`` of the exercise's table (2-2-2, one pattern): the 31 columns, and the biases'."""
    lr, lr_output = _rates(lr, lr_hidden, lr_output)
    steps = _steps(steps)
    inputs = errors.number_tuple("inputs", inputs, 2)
    targets = errors.number_tuple("targets", targets, 2)
    weights = errors.number_tuple("weights", weights, 8)
    dtype = _dtype(dtype)
    biases, shared_biases = parse_biases(biases, train_biases, strings=True)
    options = ModelOptions(lr_output is not None, biases, shared_biases, train_biases)
    if dtype == "float32":
        named = []
        for name, values in (("inputs", inputs), ("targets", targets), ("weights", weights)):
            named += [(f"{name}[{k}]", v) for k, v in enumerate(values)]
        named += [(f"biases[{k}]", v) for k, v in enumerate(options.given_biases)]
        _float32_numbers(lr, lr_output, named)
    return TableArgs(lr, steps, inputs, targets, weights, dtype, lr_output, options)


def _steps(steps):
    steps = errors.integer("steps", steps, minimum=0)
    if steps > MAX_STEPS:  # the sweep's limit: the kernels count steps in int32
        raise errors.SpecError("steps", steps, f"an integer from 0 to {MAX_STEPS}")
    return steps


def _dtype(dtype):
    return errors.choice(
        "dtype", str(np.dtype(dtype)) if dtype in (np.float32, np.float64) else dtype, DTYPES
    )


def _drawn(biases):
    """``biases="trained"``: one trained bias per unit, its initial value listed in the weights."""
    return isinstance(biases, str) and biases == DRAWN


def network_table_args(
    lr, steps, inputs, targets, weights, dtype, biases, train_biases, lr_hidden, lr_output, network_options
):
    """``TableArgs`` of a network's table; for the exercise (2-2-2 sigmoid, one pattern, batch)
    the exercise's, whose table is the 31 columns as before. ``inputs``/``targets``: every pattern's numbers,
    P × n_in and P × n_out, row by row (or as P lists); ``weights``: every parameter in the
    documented order, the weights, then with ``biases="trained"`` the H + O initial biases."""
    width = _layers_or_none(network_options.get("layers", list(EXERCISE_LAYERS)))
    table = dict(network_options)
    for key, values, at in (("inputs", inputs, 0), ("targets", targets, 2)):
        if values is not None:
            table[key] = _rows_of(values, None if width is None else width[at])
    network = parse_network(table, strings=True, prefix="")
    drawn = _drawn(biases)
    if drawn:  # "trained": per unit, the initial values after the weights
        drawn_options = bias_options(
            DRAWN, train_biases or None, network, field="biases", train_field="train_biases"
        )
        train_biases = drawn_options["train_biases"]
    else:
        given, shared = parse_biases(biases, train_biases, network=network, strings=True)
    n_weights = network.n_weights + (network.n_biases if drawn else 0)
    if weights is None and network.layers == EXERCISE_LAYERS and not drawn:
        weights = COURSE_WEIGHTS
    if weights is None:
        names = network.parameter_names(drawn)
        allowed = f"{n_weights} finite numbers: {names[0]} … {names[-1]}, in the documented order"
        raise errors.SpecError("weights", "nothing", allowed + " (required for this network)")
    weights = errors.number_tuple("weights", weights, n_weights)
    if drawn:
        weights, given, shared = weights[: network.n_weights], weights[network.n_weights :], False
    if network.is_exercise:
        biases = given if drawn else biases  # as given: two numbers are one bias per layer
        inputs, targets = network.inputs[0], network.targets[0]
        return _exercise_args(
            lr, steps, inputs, targets, weights, dtype, biases, train_biases, lr_hidden, lr_output
        )
    lr, lr_output = _rates(lr, lr_hidden, lr_output)
    steps, dtype = _steps(steps), _dtype(dtype)
    options = ModelOptions(lr_output is not None, given, shared, train_biases, network=network)
    if dtype == "float32":
        named = [(f"weights[{k}]", v) for k, v in enumerate(weights)]
        named += [(f"biases[{k}]", v) for k, v in enumerate(options.given_biases)]
        _float32_numbers(lr, lr_output, named + list(pattern_numbers(network, prefix="")))
    return TableArgs(lr, steps, network.inputs, network.targets, weights, dtype, lr_output, options)


def _layers_or_none(value):
    """The layers, or None when they are refused (``parse_network`` refuses them, naming them)."""
    try:
        return parse_layers(value, strings=True, prefix="")
    except errors.SpecError:
        return None


def _rows_of(values, width):
    """P × width numbers given flat, as P rows of ``width``; anything else as given (nested
    lists, one pattern, a wrong count: ``parse_network`` reads or refuses it)."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__") or width is None:
        return values
    values = list(values)
    nested = any(hasattr(v, "__len__") and not isinstance(v, (str, bytes)) for v in values)
    if nested or len(values) <= width or len(values) % width:
        return values
    return [values[p : p + width] for p in range(0, len(values), width)]


def _float32_numbers(lr, lr_output, named):
    """Refuse a rate float32 rounds to 0 (as the sweep does) and a number it cannot hold."""
    rates = [("lr_hidden" if lr_output is not None else "lr", lr), ("lr_output", lr_output)]
    for field, value in rates + named:
        if value is not None:
            positive = (field, value) in rates
            errors.float32_number(field, value, positive=positive, when="dtype is float32")


def _rates(lr, lr_hidden, lr_output):
    """(rate, None) for one learning rate, (hidden layer's, output layer's) for a rate per layer."""
    if lr_hidden is None and lr_output is None:
        if lr is None:
            raise errors.SpecError(
                "lr", "nothing", "a finite number > 0 (or lr_hidden and lr_output: one per layer)"
            )
        return learning_rate("lr", lr, strings=True), None
    if lr is not None:
        raise errors.SpecError("lr", lr, "nothing when lr_hidden and lr_output are given (they replace lr)")
    if lr_hidden is None:
        raise errors.SpecError("lr_hidden", "nothing", "a finite number > 0: lr_output goes with lr_hidden")
    if lr_output is None:
        raise errors.SpecError("lr_output", "nothing", "a finite number > 0: lr_hidden goes with lr_output")
    return learning_rate("lr_hidden", lr_hidden, strings=True), learning_rate(
        "lr_output", lr_output, strings=True
    )


def step_table(
    lr=None,
    steps=None,
    inputs=None,
    targets=None,
    weights=None,
    dtype="float64",
    *,
    biases=None,
    train_biases=False,
    lr_hidden=None,
    lr_output=None,
    layers=None,
    activation=None,
    output_activation=None,
    data=None,
    update=None,
):
    """The step table as a ``pyarrow.Table``.

    ``steps`` rows, row k holding the weights before update k (steps 0 … steps − 1) and
    everything computed from them, in the 31 columns of ``conventions.TABLE_COLUMNS``.
    Defaults are the course values (docs/model.md "The default scenario"). Raises ``SpecError``
    on bad input.

    A rate per layer: ``lr_hidden`` and ``lr_output`` instead of ``lr``. ``biases``: (b_h, b_o),
    one bias per layer, or (b_h1, b_h2, b_o1, b_o2), one per unit; fixed unless
    ``train_biases``. With biases the columns b_h1 … b_o2 follow the 31 (the values used at that
    row) and with trained ones dE_db_h1 … dE_db_o2 (each unit's own gradient: a shared bias
    moves by the sum of its two). docs/model.md "Biases", "Learning rate per layer".

    Any small network (docs/table.md "Any small network"): ``layers`` (n_in, n_hidden, n_out),
    ``activation``, ``output_activation``, ``data`` (a data set's name) or every pattern's
    ``inputs`` and ``targets``, ``update`` ("batch" or "online"), ``biases="trained"`` (their
    initial values after the weights in ``weights``): a spec's ``[network]`` keys. Its table has
    a row per step: the parameters before the update, E_total, and (batch) their gradients.
    """
    checked = check_table_args(
        lr,
        steps,
        inputs,
        targets,
        weights,
        dtype,
        biases=biases,
        train_biases=train_biases,
        lr_hidden=lr_hidden,
        lr_output=lr_output,
        layers=layers,
        activation=activation,
        output_activation=output_activation,
        data=data,
        update=update,
    )
    return arrow_table(checked)


def kernel_options(checked):
    """``kernels.step_table_rows``'s keywords for validated ``TableArgs``."""
    options = checked.options
    return {
        "lr_output": checked.lr_output,
        "biases": options.biases,
        "train_biases": options.train_biases,
        "shared_biases": options.shared_biases,
    }


def table_rows(checked):
    """The rows of validated ``TableArgs`` in chunks (``kernels.step_table_rows``, or for a
    network other than the exercise ``kernels.network_table_rows``)."""
    lr, steps, inputs, targets, weights, dtype = checked[:6]
    if checked.options.network.is_exercise:
        from fastbp.kernels import step_table_rows

        return step_table_rows(lr, steps, inputs, targets, weights, dtype, **kernel_options(checked))
    from fastbp.kernels import network_table_rows

    network = checked.options.network
    return network_table_rows(lr, steps, network, weights, dtype, **kernel_options(checked))


def arrow_table(checked):
    """The step table of validated ``TableArgs``, as a ``pyarrow.Table``."""
    if not checked.options.network.is_exercise:
        schema = _schema(checked)
        chunks = list(table_rows(checked))
        values = np.concatenate(chunks) if chunks else np.empty((0, len(schema)), dtype=checked.dtype)
        return _rows_table(values, schema)
    from fastbp.kernels import step_table_array

    lr, steps, inputs, targets, weights, dtype = checked[:6]
    values = step_table_array(lr, steps, inputs, targets, weights, dtype, **kernel_options(checked))
    return _rows_table(values, _schema(checked))


def write_parquet(checked, stream):
    """Write the step table of validated ``TableArgs`` to the binary ``stream`` as Parquet, one
    row group per chunk of rows as the kernel yields them: memory stays flat in ``steps``."""
    import pyarrow.parquet as pq

    schema = _schema(checked)
    with pq.ParquetWriter(stream, schema) as writer:
        for chunk in table_rows(checked):
            writer.write_table(_rows_table(chunk, schema))


def _schema(checked):
    import pyarrow as pa

    value = pa.float32() if checked.dtype == "float32" else pa.float64()
    return pa.schema([(name, value) for name in checked.options.table_columns()])


def _rows_table(values, schema):
    """A (rows, columns) array as a ``pyarrow.Table`` of ``schema``."""
    import pyarrow as pa

    from fastbp.contract import arrow_array

    return pa.Table.from_arrays([arrow_array(values[:, c]) for c in range(len(schema))], schema=schema)
