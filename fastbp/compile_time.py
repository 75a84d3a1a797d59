"""What the compiled kernels freeze at compile time, in one leaf: the variant of the model a kernel
computes, the block of runs, a block's state rows, the recorded-step rule and the regimes' window.

Numba's cache key covers this file (``_numba_cache``), and a dataset's sources stamp does too
(``storage``): a change here recompiles the kernels and stops old datasets from resuming. Names
that are only shown (the regimes' labels, the step table's column names) live in
``conventions``, so renaming one does neither. Plain Python and numpy: importing this module
loads no Numba.
"""

from collections import namedtuple
from dataclasses import dataclass

import numpy as np

#: Runs per block: a multiple of every SIMD width (AVX-512 float32 has 16 lanes), small enough that
#: the exercise's state (15 rows × BLOCK, 7.5 KB in float64, at most 20 rows) stays in L1 (a
#: 10-5-10 network with biases has about 150 rows: 75 KB, L2). Shards are sized in whole blocks.
BLOCK = 64

#: The biases a variant has (docs/model.md "Biases"): none; fixed values; trained, one per unit;
#: trained, one per layer shared by its units.
BIAS_KINDS = ("none", "fixed", "per_unit", "shared")

#: A layer's activation (docs/model.md "Networks"); the kernels take its position as a constant.
ACTIVATIONS = ("sigmoid", "tanh", "linear")
SIGMOID, TANH, LINEAR = range(3)

#: How a step goes over the patterns: the one pattern; a batch (one update with the summed
#: gradient); online (one update per pattern, in order).
STEP_KINDS = ("one_pattern", "batch", "online")

#: The exercise's network: 2 inputs, 2 hidden units, 2 outputs.
EXERCISE_LAYERS = (2, 2, 2)


@dataclass(frozen=True)
class Variant:
    """What a training kernel computes, fixed when it is compiled (hashable: the key of the kernel).

    ``two_rates``: one learning rate per layer (else one rate for both); ``biases``: one of
    ``BIAS_KINDS``; ``diagnostics``: the per-step trackers of docs/model.md "Regimes". The network:
    ``layers`` (n_in, n_hidden, n_out), the hidden and output layers' ``activation`` and
    ``output_activation`` (``ACTIVATIONS``), and how a step goes over the training patterns,
    ``steps`` (``STEP_KINDS``: one pattern; several, one update with their summed gradient;
    several, one update each, in order; how many is the data's, not the kernel's). A new option of the model is a
    field here, its equations in ``model.py``, and its branch in the one kernel body
    (``kernels_train``). ``Variant()`` is the exercise: 2-2-2 sigmoid, one pattern, no biases, one rate.
    """

    two_rates: bool = False
    biases: str = "none"
    diagnostics: bool = False
    layers: tuple = EXERCISE_LAYERS
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    steps: str = "one_pattern"

    def __post_init__(self):
        if self.biases not in BIAS_KINDS:
            raise ValueError(f"biases: {self.biases!r}; allowed: {', '.join(BIAS_KINDS)}")
        for field in ("activation", "output_activation"):
            if getattr(self, field) not in ACTIVATIONS:
                raise ValueError(f"{field}: {getattr(self, field)!r}; allowed: {', '.join(ACTIVATIONS)}")
        if len(self.layers) != 3 or min(self.layers) < 1:
            raise ValueError(f"layers: {self.layers}; allowed: three sizes ≥ 1")
        if self.steps not in STEP_KINDS:
            raise ValueError(f"steps: {self.steps!r}; allowed: {', '.join(STEP_KINDS)}")

    @classmethod
    def of(
        cls,
        *,
        two_rates=False,
        biases=False,
        train_biases=False,
        shared_biases=False,
        diagnostics=False,
        layers=EXERCISE_LAYERS,
        activation="sigmoid",
        output_activation=None,
        patterns=1,
        update="batch",
    ):
        """The variant of loose options (``train``'s keywords): ``biases`` is whether there are any;
        ``output_activation`` None is the hidden layer's; ``update`` "batch" or "online" (online
        with one pattern is batch: the same updates)."""
        if train_biases and not biases:
            raise ValueError("train_biases=True needs biases")
        if update not in ("batch", "online"):
            raise ValueError(f"update: {update!r}; allowed: batch, online")
        kind = (
            "none"
            if not biases
            else "fixed"
            if not train_biases
            else "shared"
            if shared_biases
            else "per_unit"
        )
        output_activation = activation if output_activation is None else output_activation
        steps = "one_pattern" if patterns == 1 else update
        network = (tuple(int(n) for n in layers), activation, output_activation, steps)
        return cls(bool(two_rates), kind, bool(diagnostics), *network)

    def __str__(self):
        """In words, for messages: "one rate, no biases" … "[10, 5, 10] tanh/linear, 4 patterns
        online, two rates, shared trained biases, diagnostics"."""
        biases = {"none": "no biases", "fixed": "fixed biases", "per_unit": "trained biases per unit"}
        words = [] if self.is_exercise_network else [self.network_words()]
        words.append("two rates" if self.two_rates else "one rate")
        words.append(biases.get(self.biases, "shared trained biases"))
        return ", ".join(words + (["diagnostics"] if self.diagnostics else []))

    def network_words(self):
        layers = "-".join(str(n) for n in self.layers)
        steps = {"one_pattern": "one pattern", "batch": "batch updates", "online": "online updates"}
        return f"{layers} {self.activation}/{self.output_activation}, {steps[self.steps]}"

    @property
    def is_exercise_network(self):
        """The exercise's network: 2-2-2 sigmoid on one pattern (the step names w1 … w8 describe it)."""
        return (self.layers, self.activation, self.output_activation, self.steps) == (
            EXERCISE_LAYERS,
            "sigmoid",
            "sigmoid",
            "one_pattern",
        )

    @property
    def with_biases(self):
        return self.biases != "none"

    @property
    def train_biases(self):
        return self.biases in ("per_unit", "shared")

    @property
    def shared_biases(self):
        return self.biases == "shared"

    @property
    def n_weights(self):
        n_in, n_hidden, n_out = self.layers
        return n_hidden * n_in + n_out * n_hidden

    @property
    def n_units(self):
        """Hidden and output units: the number of biases."""
        return self.layers[1] + self.layers[2]


#: A block's state: one flat buffer of rows of BLOCK lanes (constant row offsets, so that LLVM can
#: prove the rows do not overlap and vectorise without run-time alias checks). Each field is the first row of its group:
#: ``weights`` (n_weights rows, docs/model.md's parameter order), the (hidden layer's) rate, E at
#: the current step, its running minimum, the hidden and output activations passed from one pass
#: of a step to the next, the output layer's rate, the biases (hidden then output units), the
#: deltas of the output and hidden units (within a step's last pass), E summed over a step's
#: patterns, and the gradient summed over them (batch updates of several patterns).
StateRows = namedtuple(
    "StateRows",
    "weights lr_hidden loss min a_h a_o lr_output biases delta_o delta_h step_loss gradient",
)


def state_rows(variant):
    """(first row of each group, number of rows) of ``variant``'s state: only the rows it uses.

    With one rate the output layer's rate is the hidden layer's row (one load serves both). The
    exercise's rows are w1 … w8 (0 … 7), the rate (8), E (9), its minimum (10), a_h1, a_h2 (11,
    12), a_o1, a_o2 (13, 14), then the output rate (15) and the biases when it has them.
    """
    n_in, n_hidden, n_out = variant.layers
    n_weights, n_units = variant.n_weights, variant.n_units
    rows = {"weights": 0, "lr_hidden": n_weights, "loss": n_weights + 1, "min": n_weights + 2}
    rows["a_h"] = n_weights + 3
    rows["a_o"] = rows["a_h"] + n_hidden
    next_row = rows["a_o"] + n_out
    rows["lr_output"] = next_row if variant.two_rates else rows["lr_hidden"]
    next_row += variant.two_rates
    rows["biases"] = next_row
    next_row += n_units if variant.with_biases else 0
    rows["delta_o"] = next_row
    rows["delta_h"] = next_row + n_out
    rows["step_loss"] = next_row + n_units
    next_row += n_units + 1
    rows["gradient"] = next_row
    if variant.steps == "batch":
        next_row += n_weights + (n_units if variant.train_biases else 0)
    return StateRows(**rows), next_row


def step_constants(variant):
    """What ``kernels_step``'s passes take of ``variant``, as closure constants of a kernel that
    inlines them: (R, net, flags). R: the state's row offsets in lanes (row × BLOCK), unsigned (a
    signed index gets a negative-index check that hides the unit stride from LLVM); net: (n_in,
    n_hidden, n_out, the hidden and output activations' positions in ``ACTIVATIONS``); flags:
    (biased, trained, shared, online)."""
    rows, _ = state_rows(variant)
    R = StateRows(*(np.uint64(row * BLOCK) for row in rows))
    activations = ACTIVATIONS.index(variant.activation), ACTIVATIONS.index(variant.output_activation)
    net = (*variant.layers, *activations)
    flags = (variant.with_biases, variant.train_biases, variant.shared_biases, variant.steps == "online")
    return R, net, flags


def carried_rows(variant):
    """Rows a block carries from one slice to the next: the weights, the running minimum, and the
    trained biases. Not the rates (read again), E (rewritten before it is read) nor the
    activations, deltas and gradients (recomputed every step)."""
    return variant.n_weights + 1 + (variant.n_units if variant.train_biases else 0)


def n_recorded(steps, record_every):
    """How many E_total values a run's loss curve keeps (the length of ``recorded_steps``)."""
    if record_every == 0:
        return 1
    return steps // record_every + 1 + (steps % record_every != 0)


def recorded_steps(steps, record_every):
    """Steps whose E_total a run's loss curve keeps: 0, k, 2k, … and always ``steps``
    (docs/model.md "The loss curve"); ``record_every == 0`` keeps the final step only."""
    if record_every == 0:
        return np.array([steps], dtype=np.int64)
    kept = np.arange(0, steps + 1, record_every, dtype=np.int64)
    if kept[-1] != steps:
        kept = np.append(kept, np.int64(steps))
    return kept


#: docs/model.md "Regimes", "The trainability map": the final window (the published map's last
#: 20 values); a change of E in it counts when larger than SIGNIFICANT of E; a run falling by less
#: than STALL of E per step over it is on a plateau; v = E_k / E_0 is capped at MAP_CAP.
FINAL_WINDOW = 20
SIGNIFICANT = 1e-6
STALL = 1e-6
MAP_CAP = 1e6
