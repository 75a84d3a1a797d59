"""The spreadsheet's step table: the SPEC's 31 columns, one row per step."""

import numpy as np

from fastbp import errors
from fastbp.course import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS

DTYPES = ("float64", "float32")


def check_table_args(lr, steps, inputs, targets, weights, dtype, prefix=""):
    """Validated (lr, steps, inputs, targets, weights, dtype); field names get ``prefix`` (``--``)."""
    return (
        errors.finite_number(prefix + "lr", lr),
        errors.integer(prefix + "steps", steps, minimum=0),
        errors.number_tuple(prefix + "inputs", inputs, 2),
        errors.number_tuple(prefix + "targets", targets, 2),
        errors.number_tuple(prefix + "weights", weights, 8),
        errors.choice(
            prefix + "dtype", str(np.dtype(dtype)) if dtype in (np.float32, np.float64) else dtype, DTYPES
        ),
    )


def step_table(
    lr, steps, inputs=COURSE_INPUTS, targets=COURSE_TARGETS, weights=COURSE_WEIGHTS, dtype="float64"
):
    """The SPEC's step table as a ``pyarrow.Table``.

    ``steps`` rows, row k holding the weights before update k (steps 0 … steps − 1) and
    everything computed from them, in the SPEC's 31 columns and names (``kernels.TABLE_COLUMNS``).
    Defaults are the course values (SPEC "The default scenario"). Raises ``SpecError`` on bad input.
    """
    import pyarrow as pa

    from fastbp.kernels import TABLE_COLUMNS, step_table_array
    from fastbp.storage import arrow_array

    lr, steps, inputs, targets, weights, dtype = check_table_args(lr, steps, inputs, targets, weights, dtype)
    values = step_table_array(lr, steps, inputs, targets, weights, dtype)
    columns = [arrow_array(values[:, c]) for c in range(len(TABLE_COLUMNS))]
    return pa.Table.from_arrays(columns, names=list(TABLE_COLUMNS))
