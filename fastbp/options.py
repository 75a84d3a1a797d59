"""The model's options, decided once (docs/model.md "Biases", "Learning rate per layer").

A sweep spec (``spec.parse_spec``) and the step table's arguments (``table.check_table_args``)
both parse their biases here and carry the result, a ``ModelOptions``; the layers below read it
rather than deciding again: the step table's columns, the dataset's column families, and the
keywords of ``kernels.train`` (whose variant follows from them: ``compile_time.Variant.of``).

With two learning rates the first one given (``lr``, or ``lr_hidden``) is the hidden layer's and
``lr_output`` the output layer's; arrays and columns named ``lr`` hold the hidden layer's rates.
"""

from dataclasses import dataclass

from fastbp.conventions import table_columns
from fastbp.errors import SpecError, finite_number

#: What ``biases`` may be, wherever it is given (spec, table options, Python).
BIASES_ALLOWED = (
    "2 finite numbers [b_h, b_o] (one bias per layer, shared by its two units) "
    "or 4 [b_h1, b_h2, b_o1, b_o2] (one per unit)"
)


@dataclass(frozen=True)
class ModelOptions:
    """A sweep's or a table's model options. ``biases``: (b_h1, b_h2, b_o1, b_o2) with a shared
    bias repeated, or None; ``shared_biases``: one bias per layer; ``train_biases``: they are
    trained (only with biases: ``parse_biases`` refuses the rest)."""

    two_rates: bool = False
    biases: tuple | None = None
    shared_biases: bool = False
    train_biases: bool = False
    diagnostics: bool = False

    @property
    def given_biases(self):
        """The biases as they are given: (b_h, b_o) when shared, the four per unit, () without."""
        if self.biases is None:
            return ()
        return (self.biases[0], self.biases[2]) if self.shared_biases else self.biases

    def table_columns(self):
        """The step table's columns: the 31, then the biases', then their gradients' when trained."""
        return table_columns(self.biases is not None, self.train_biases)

    def column_families(self):
        """Which optional column families a dataset of these options has (``columns.columns_of``)."""
        return {
            "biases": self.biases is not None,
            "trained": self.train_biases,
            "diagnostics": self.diagnostics,
        }

    def train_keywords(self, lr_output, biases):
        """``kernels.train``'s keywords for arrays of the runs' output-layer rates and initial
        biases: only what these options use (a bias-free single-rate call passes only
        ``diagnostics``)."""
        keywords = {"diagnostics": self.diagnostics}
        if self.two_rates:
            keywords["lr_output"] = lr_output
        if self.biases is not None:
            keywords.update(biases=biases, train_biases=self.train_biases, shared_biases=self.shared_biases)
        return keywords


def parse_biases(value, train, *, field="biases", train_field="train_biases", strings=False):
    """(biases, shared) from ``value`` (None, 2 or 4 finite numbers) with ``train`` checked against
    it: the one place where "two numbers are one bias per layer" and "trained biases need biases"
    are decided. ``strings``: numbers may be given as text (command-line options)."""
    if not isinstance(train, bool):
        raise SpecError(train_field, train, "true or false")
    if value is None:
        if train:
            raise SpecError(train_field, train, f"false unless {field} is given")
        return None, False
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise SpecError(field, value, BIASES_ALLOWED)
    if len(value) not in (2, 4):
        raise SpecError(field, list(value), f"{BIASES_ALLOWED} ({len(value)} given)")
    numbers = tuple(finite_number(f"{field}[{k}]", v, strings=strings) for k, v in enumerate(value))
    if len(numbers) == 2:
        b_h, b_o = numbers
        return (b_h, b_h, b_o, b_o), True
    return numbers, False
