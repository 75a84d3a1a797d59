"""The spreadsheet's step table (docs/model.md "The step table"): 31 columns, one row per step."""

import numpy as np

from fastbp import errors
from fastbp.conventions import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS, DTYPES, TABLE_COLUMNS


def check_table_args(lr, steps, inputs, targets, weights, dtype):
    """Validated (lr, steps, inputs, targets, weights, dtype); raises ``SpecError`` naming the field."""
    return (
        errors.finite_number("lr", lr),
        errors.integer("steps", steps, minimum=0),
        errors.number_tuple("inputs", inputs, 2),
        errors.number_tuple("targets", targets, 2),
        errors.number_tuple("weights", weights, 8),
        errors.choice("dtype", str(np.dtype(dtype)) if dtype in (np.float32, np.float64) else dtype, DTYPES),
    )


def step_table(
    lr, steps, inputs=COURSE_INPUTS, targets=COURSE_TARGETS, weights=COURSE_WEIGHTS, dtype="float64"
):
    """The step table as a ``pyarrow.Table``.

    ``steps`` rows, row k holding the weights before update k (steps 0 … steps − 1) and
    everything computed from them, in the 31 columns of ``conventions.TABLE_COLUMNS``.
    Defaults are the course values (docs/model.md "The default scenario"). Raises ``SpecError``
    on bad input.
    """
    import pyarrow as pa

    from fastbp.contract import arrow_array
    from fastbp.kernels import step_table_array

    lr, steps, inputs, targets, weights, dtype = check_table_args(lr, steps, inputs, targets, weights, dtype)
    values = step_table_array(lr, steps, inputs, targets, weights, dtype)
    columns = [arrow_array(values[:, c]) for c in range(len(TABLE_COLUMNS))]
    return pa.Table.from_arrays(columns, names=list(TABLE_COLUMNS))
