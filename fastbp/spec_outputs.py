"""The spec keys that say what a sweep reports beyond its loss curves (docs/model.md "Regimes"):

- ``diagnostics = true``: the per-run diagnostics columns (sharpness, stability, the loss's
  maximum and rises, trainability, regime);
- ``stability_every = k``: the ``stability`` curve, the stability number at steps 0, k, 2k, … and
  the last step (0, the default: none);
- ``columns = [...]``: the per-run columns to store (``run`` always); the default, every column.

A spec without them keeps its canonical form (and so its datasets and their fingerprints).
"""

import dataclasses

from fastbp.columns import spec_columns
from fastbp.errors import SpecError, integer


def parse(data, spec):
    """``spec`` with the three keys of ``data`` validated, normalised into its source."""
    diagnostics = data.get("diagnostics", False)
    if not isinstance(diagnostics, bool):
        raise SpecError("diagnostics", diagnostics, "true or false")
    every = integer("stability_every", data.get("stability_every", 0), minimum=0)
    if every > spec.steps:
        raise SpecError("stability_every", every, f"0 (none) or an integer from 1 to steps ({spec.steps})")
    source = dict(spec.source)
    if diagnostics:
        source["diagnostics"] = True
    if every:
        source["stability_every"] = every
    spec = dataclasses.replace(spec, diagnostics=diagnostics, stability_every=every, source=source)
    if "columns" not in data:
        return spec
    wanted = data["columns"]
    possible = [c.name for c in spec_columns(spec, kept=False)]
    if not isinstance(wanted, list) or not all(isinstance(name, str) for name in wanted):
        raise SpecError(
            "columns", wanted, 'a list of column names, e.g. ["lr_hidden", "lr_output", "trainability"]'
        )
    for k, name in enumerate(wanted):
        if name not in possible:
            raise SpecError(f"columns[{k}]", name, "a column of this sweep: " + ", ".join(possible))
    kept = tuple(name for name in possible if name == "run" or name in wanted)
    return dataclasses.replace(spec, columns=kept, source={**source, "columns": list(kept)})
