"""The spreadsheet's step table (docs/model.md "The step table"): 31 columns, one row per step,
and with biases (docs/model.md "Biases") their values and, when trained, their gradients."""

from collections import namedtuple

import numpy as np

from fastbp import errors
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS, DTYPES
from fastbp.options import ModelOptions, parse_biases
from fastbp.spec import MAX_STEPS, learning_rate  # what the sweep accepts, the table accepts

#: A step table's validated arguments: ``lr`` (the hidden layer's rate when ``lr_output`` is
#: given, else the one rate), ``lr_output`` or None, and the model's ``options.ModelOptions``.
TableArgs = namedtuple("TableArgs", "lr steps inputs targets weights dtype lr_output options")


def check_table_args(
    lr,
    steps,
    inputs,
    targets,
    weights,
    dtype,
    *,
    biases=None,
    train_biases=False,
    lr_hidden=None,
    lr_output=None,
):
    """Validated ``TableArgs``; raises ``SpecError`` naming the field."""
    lr, lr_output = _rates(lr, lr_hidden, lr_output)
    steps = errors.integer("steps", steps, minimum=0)
    if steps > MAX_STEPS:  # the sweep's limit: the kernels count steps in int32
        raise errors.SpecError("steps", steps, f"an integer from 0 to {MAX_STEPS}")
    inputs = errors.number_tuple("inputs", inputs, 2)
    targets = errors.number_tuple("targets", targets, 2)
    weights = errors.number_tuple("weights", weights, 8)
    dtype = errors.choice(
        "dtype", str(np.dtype(dtype)) if dtype in (np.float32, np.float64) else dtype, DTYPES
    )
    biases, shared_biases = parse_biases(biases, train_biases, strings=True)
    options = ModelOptions(lr_output is not None, biases, shared_biases, train_biases)
    if dtype == "float32":
        # a rate that float32 rounds to 0 is refused, as the sweep refuses it
        rates = [("lr_hidden" if lr_output is not None else "lr", lr), ("lr_output", lr_output)]
        named = []
        for name, values in (("inputs", inputs), ("targets", targets), ("weights", weights)):
            named += [(f"{name}[{k}]", v) for k, v in enumerate(values)]
        named += [(f"biases[{k}]", v) for k, v in enumerate(options.given_biases)]
        for field, value in rates + named:
            if value is not None:
                positive = (field, value) in rates
                errors.float32_number(field, value, positive=positive, when="dtype is float32")
    return TableArgs(lr, steps, inputs, targets, weights, dtype, lr_output, options)


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
    inputs=COURSE_INPUTS,
    targets=COURSE_TARGETS,
    weights=COURSE_WEIGHTS,
    dtype="float64",
    *,
    biases=None,
    train_biases=False,
    lr_hidden=None,
    lr_output=None,
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


def arrow_table(checked):
    """The step table of validated ``TableArgs``, as a ``pyarrow.Table``."""
    from fastbp.kernels import step_table_array

    lr, steps, inputs, targets, weights, dtype = checked[:6]
    values = step_table_array(lr, steps, inputs, targets, weights, dtype, **kernel_options(checked))
    return _rows_table(values, _schema(checked))


def write_parquet(checked, stream):
    """Write the step table of validated ``TableArgs`` to the binary ``stream`` as Parquet, one
    row group per chunk of rows as the kernel yields them: memory stays flat in ``steps``."""
    import pyarrow.parquet as pq

    from fastbp.kernels import step_table_rows

    lr, steps, inputs, targets, weights, dtype = checked[:6]
    schema = _schema(checked)
    with pq.ParquetWriter(stream, schema) as writer:
        for chunk in step_table_rows(lr, steps, inputs, targets, weights, dtype, **kernel_options(checked)):
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
