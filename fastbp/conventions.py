"""The model's conventions (docs/model.md): the course's values, the default tolerance, and the
names that are only shown (the regimes' labels, the step table's columns). Plain Python:
importing this module loads nothing. What the compiled kernels freeze is in ``compile_time``.
"""

#: docs/model.md "The default scenario": the course's inputs, targets and initial weights.
COURSE_INPUTS = (0.05, 0.1)
COURSE_TARGETS = (0.5, 0.5)
COURSE_WEIGHTS = (0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55)

#: The float types every kernel is compiled for.
DTYPES = ("float64", "float32")

#: E_total below this counts as reached (``first_step_below_tol``), unless a spec says otherwise.
DEFAULT_TOLERANCE = 1e-4

#: The regimes a run's ``regime`` column names, in the order of their codes (0 …) and of the
#: figures' legends (docs/model.md "Regimes"; ``fastbp.regimes`` assigns them).
REGIMES = ("monotone", "bumpy", "catapult", "slow", "oscillating", "stuck", "diverged")

#: docs/model.md "The step table": its 31 columns, in order.
TABLE_COLUMNS = (
    "t1 t2 i1 i2 w1 w2 w3 w4 h1 a_h1 h2 a_h2 w5 w6 w7 w8 o1 a_o1 o2 a_o2 E1 E2 E_total "
    "dE_dw1 dE_dw2 dE_dw3 dE_dw4 dE_dw5 dE_dw6 dE_dw7 dE_dw8"
).split()

#: docs/model.md "Biases": with biases the step table adds their values at each row, and when
#: they are trained their gradients (each unit's own; a shared bias moves by the sum of its two).
BIAS_COLUMNS = ("b_h1", "b_h2", "b_o1", "b_o2")
BIAS_GRADIENT_COLUMNS = ("dE_db_h1", "dE_db_h2", "dE_db_o1", "dE_db_o2")


def table_columns(biases=False, train_biases=False):
    """The step table's columns: the 31, then the biases' when there are biases, then their
    gradients' when they are trained (so the first 31 are always the bias-free table's)."""
    return (
        tuple(TABLE_COLUMNS)
        + (BIAS_COLUMNS if biases else ())
        + (BIAS_GRADIENT_COLUMNS if biases and train_biases else ())
    )
