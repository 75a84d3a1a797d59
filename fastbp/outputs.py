"""The spec keys that choose what a sweep outputs beyond its loss curves (docs/model.md "Regimes"):

- ``diagnostics = true``: the per-run diagnostics columns (sharpness, stability, the loss's
  maximum and rises, trainability, regime);
- ``stability_every = k``: the ``stability`` curve, the stability number at steps 0, k, 2k, … and
  the last step (0, the default: none);
- ``columns = [...]``: the per-run columns to store (``run`` always); the default, every column.

A spec without them keeps its canonical form (and so its datasets and their fingerprints).
"""

import dataclasses

from fastbp.columns import COLUMNS, spec_columns
from fastbp.compile_time import n_recorded
from fastbp.errors import SpecError, integer

#: The spec key that brings each optional column family.
_NEEDS = {
    "biases": "network.biases",
    "trained": "network.train_biases = true",
    "diagnostics": "diagnostics = true",
    "stability": "stability_every",
    "weights": "network.layers = [2, 2, 2]",
    "params": "network.layers other than [2, 2, 2]",
}
#: Columns computed from the Hessian (``kernels_sharpness``): for the exercise's network only.
SHARPNESS_COLUMNS = ("sharpness_init", "sharpness_final", "stability_init", "stability_final", "stability")


def parse(data, spec, max_points):
    """``spec`` with the three keys of ``data`` validated, normalised into its source
    (``max_points``: the most points a run's curve may keep)."""
    diagnostics = data.get("diagnostics", False)
    if not isinstance(diagnostics, bool):
        raise SpecError("diagnostics", diagnostics, "true or false")
    every = integer("stability_every", data.get("stability_every", 0), minimum=0)
    if every > spec.steps:
        raise SpecError("stability_every", every, f"0 (none) or an integer from 1 to steps ({spec.steps})")
    points = n_recorded(spec.steps, every) if every else 0
    if points > max_points:  # as record_every: a shard holds at least one block of 64 curves
        least = -(-spec.steps // (max_points - 1))
        raise SpecError(
            "stability_every", every, f"0 or an integer >= {least}: at most {max_points:,} points per run"
        )
    if spec.shard_size is not None and spec.shard_size * points >= 2**31:  # int32 list offsets
        allowed = f"an integer from 1 to {(2**31 - 1) // points} (runs × {points} stability points < 2**31)"
        raise SpecError("shard_size", spec.shard_size, allowed)
    source = dict(spec.source)
    if diagnostics:
        source["diagnostics"] = True
    if every:
        source["stability_every"] = every
    spec = dataclasses.replace(spec, diagnostics=diagnostics, stability_every=every, source=source)
    if "columns" not in data:
        return _sharpness_checked(spec)
    wanted = data["columns"]
    possible = [c.name for c in spec_columns(spec, kept=False)]
    if not isinstance(wanted, list) or not all(isinstance(name, str) for name in wanted):
        raise SpecError(
            "columns", wanted, 'a list of column names, e.g. ["lr_hidden", "lr_output", "trainability"]'
        )
    for k, name in enumerate(wanted):
        if name not in possible:
            needs = next((_NEEDS[c.when] for c in COLUMNS if c.name == name), None)
            hint = f" ({name} needs {needs})" if needs else ""
            raise SpecError(f"columns[{k}]", name, f"a column of this sweep{hint}: " + ", ".join(possible))
    kept = tuple(name for name in possible if name == "run" or name in wanted)
    if kept != tuple(possible):  # every column is the default: the same spec as without the key
        spec = dataclasses.replace(spec, columns=kept, source={**source, "columns": list(kept)})
    return _sharpness_checked(spec)


def _sharpness_checked(spec):
    """``spec``, refused when it needs the sharpness of a network other than the exercise's: the
    Hessian kernels compute the 2-2-2 network on one pattern only (so far)."""
    if spec.network.is_exercise:
        return spec
    needed = [c.name for c in spec_columns(spec) if c.name in SHARPNESS_COLUMNS]
    if not needed:
        return spec
    if spec.stability_every:
        raise SpecError(
            "stability_every",
            spec.stability_every,
            "0: the sharpness is computed for the 2-2-2 network on one pattern only",
        )
    others = [c.name for c in spec_columns(spec) if c.name not in SHARPNESS_COLUMNS]
    allowed = f"columns = {others!r} (without {', '.join(needed)}: the sharpness is computed for the 2-2-2 network on one pattern only)"
    raise SpecError("diagnostics", True, allowed)
