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
#: a block's state (15 rows × BLOCK, 7.5 KB in float64, at most 20 rows) stays in L1. Shards are
#: sized in whole blocks.
BLOCK = 64

#: The biases a variant has (docs/model.md "Biases"): none; fixed values; trained, one per unit;
#: trained, one per layer shared by its two units.
BIAS_KINDS = ("none", "fixed", "per_unit", "shared")


@dataclass(frozen=True)
class Variant:
    """What a training kernel computes, fixed when it is compiled (hashable: the key of the kernel).

    ``two_rates``: one learning rate per layer (else one rate for both); ``biases``: one of
    ``BIAS_KINDS``; ``diagnostics``: the per-step trackers of docs/model.md "Regimes". A new
    option of the model is a field here, its equations in ``model.py``, and its branch in the
    one kernel body (``kernels_train``). ``Variant()`` is the exercise: no biases, one rate.
    """

    two_rates: bool = False
    biases: str = "none"
    diagnostics: bool = False

    def __post_init__(self):
        if self.biases not in BIAS_KINDS:
            raise ValueError(f"biases: {self.biases!r}; allowed: {', '.join(BIAS_KINDS)}")

    @classmethod
    def of(cls, *, two_rates=False, biases=False, train_biases=False, shared_biases=False, diagnostics=False):
        """The variant of loose options (``train``'s keywords): ``biases`` is whether there are any."""
        if train_biases and not biases:
            raise ValueError("train_biases=True needs biases")
        kind = (
            "none"
            if not biases
            else "fixed"
            if not train_biases
            else "shared"
            if shared_biases
            else "per_unit"
        )
        return cls(bool(two_rates), kind, bool(diagnostics))

    def __str__(self):
        """In words, for messages: "one rate, no biases" … "two rates, shared trained biases, diagnostics"."""
        biases = {"none": "no biases", "fixed": "fixed biases", "per_unit": "trained biases per unit"}
        words = ["two rates" if self.two_rates else "one rate"]
        words.append(biases.get(self.biases, "shared trained biases"))
        return ", ".join(words + (["diagnostics"] if self.diagnostics else []))

    @property
    def with_biases(self):
        return self.biases != "none"

    @property
    def train_biases(self):
        return self.biases in ("per_unit", "shared")

    @property
    def shared_biases(self):
        return self.biases == "shared"


#: A block's state: one flat buffer of rows of BLOCK lanes (constant row offsets, so that LLVM can
#: prove the rows do not overlap and vectorise without run-time alias checks). Rows 0 … 14 are
#: every variant's: w1 … w8, the (hidden layer's) rate, E_total at the current step, its running
#: minimum, the four activations passed from one pass of a step to the next.
StateRows = namedtuple(
    "StateRows",
    "w1 w2 w3 w4 w5 w6 w7 w8 lr_hidden loss min a_h1 a_h2 a_o1 a_o2 lr_output b_h1 b_h2 b_o1 b_o2",
)


def state_rows(variant):
    """(row numbers, number of rows) of ``variant``'s state: only the rows it uses.

    With one rate the output layer's rate is the hidden layer's row (one load serves both); with
    two it is row 15. The biases follow. ``Variant()`` has the 15 shared rows alone.
    """
    lr_output = 15 if variant.two_rates else 8
    first_bias = 15 + variant.two_rates
    biases = tuple(range(first_bias, first_bias + 4)) if variant.with_biases else (first_bias,) * 4
    n_rows = first_bias + (4 if variant.with_biases else 0)
    return StateRows(*range(15), lr_output, *biases), n_rows


def carried_rows(variant):
    """Rows a block carries from one slice to the next: w1 … w8, the running minimum, and the
    trained biases. Not the rates (read again), E_total (rewritten before it is read) nor the
    activations (recomputed every step)."""
    return 9 + (4 if variant.train_biases else 0)


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
