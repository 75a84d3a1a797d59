"""The Parquet contract of a sweep dataset (schema versions 1 to 3): the one home of its columns,
metadata and names. The writer, resume and every reader derive their checks from here.

A dataset is a directory (local path, or any URL pyarrow's filesystems understand, e.g.
``s3://bucket/prefix``) holding:

- ``part-NNNNNN.parquet``: shard N, the contiguous runs [N * shard_size, (N + 1) * shard_size),
  one row per run, sorted by ``run``. Every file has the same schema and the same key-value
  metadata, so any reader sees one table.
- ``_manifest.json``: the spec, the shard size and the versions that created the dataset. It
  begins with ``_`` so that pyarrow, pandas, Polars and DuckDB skip it. Temporary files begin
  with ``.``.

Columns: ``fastbp.columns.COLUMNS``, in file order, each with its type and meaning (float columns marked
``value`` are in the sweep's dtype). Key-value metadata ``fastbp`` (JSON): ``schema_version``,
``format``, ``spec`` (normalised), ``dtype``, ``steps``, ``record_every``, ``recorded_steps``,
``tolerance``, ``versions`` (fastbp, numba, numpy, pyarrow, python), ``columns`` (the meanings).
"""

import json
import platform

import numpy as np
import pyarrow as pa

# The columns themselves (names, types, meanings, which sweeps have them) are fastbp.columns';
# these names are re-exported here, the contract's one place.
from fastbp.columns import BIAS_NAMES, COLUMN_NAMES, COLUMNS, columns_of, spec_columns  # noqa: F401
from fastbp.errors import DatasetError
from fastbp.network import EXERCISE_LAYERS

#: The version a plain sweep writes; a sweep with diagnostics, a stability curve or a choice of
#: columns writes DYNAMICS_VERSION, and one of another network than the exercise's 2-2-2
#: NETWORK_VERSION (``schema_version``), so every other dataset keeps its bytes.
SCHEMA_VERSION = 2
DYNAMICS_VERSION = 3
NETWORK_VERSION = 4
#: Versions readers still read (a version-1 dataset lacks the columns version 2 added).
READABLE_VERSIONS = (1, 2, 3, 4)
FORMAT = "fastbp.sweep"
METADATA_KEY = b"fastbp"
MANIFEST = "_manifest.json"
SHARD_NAME = "part-{:06d}.parquet"


def schema_version(spec):
    """The schema version ``spec``'s dataset is written in."""
    if spec.network.layers != EXERCISE_LAYERS:
        return NETWORK_VERSION
    new = spec.diagnostics or spec.stability_every > 0 or spec.columns is not None
    return DYNAMICS_VERSION if new else SCHEMA_VERSION


#: Keys of the ``fastbp`` metadata block that readers rely on.
METADATA_KEYS = (
    "schema_version",
    "format",
    "spec",
    "dtype",
    "steps",
    "record_every",
    "recorded_steps",
    "tolerance",
)

# Parquet options, chosen by measurement (scripts/bench.py's W1/W2 shards; see README "Storage"):
# dictionary encoding only where values repeat (`init`): tried on unique floats it tripled the
# write time; zstd level 1 for the per-run columns; no statistics for the curves (nothing
# filters on a list element). The "lz4" meant for the curves never applies: Parquet names their
# leaf column "loss.list.element", not "loss", so schema-v1 curves are stored uncompressed.
# Kept so that datasets keep their bytes (tests/golden); changing it is a format decision.
_PER_RUN = [c.name for c in COLUMNS if not c.type.startswith("curve")]
PARQUET_OPTIONS = dict(
    compression={name: "zstd" if name in _PER_RUN else "lz4" for name in COLUMN_NAMES},
    compression_level={name: 1 for name in _PER_RUN},
    use_dictionary=["init", "regime"],
    write_statistics=_PER_RUN,
)


def versions():
    """The versions recorded with every dataset: what reproducing its bits needs."""
    import numba

    from fastbp._version import __version__

    return {
        "fastbp": __version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "python": platform.python_version(),
    }


_FIXED_TYPES = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
}


def _arrow_type(column, value, n_parameters):
    if column.type == "value":
        return value
    if column.type.startswith("curve"):
        item = pa.float64() if column.type == "curve64" else value
        return pa.list_(pa.field("item", item, nullable=False))
    if column.type == "params":
        return pa.list_(pa.field("item", value, nullable=False), n_parameters)
    return _FIXED_TYPES[column.type]


def schema(dtype, metadata=None, columns=None, n_parameters=0):
    """The Arrow schema of ``columns`` (all of a 2-2-2 sweep's by default); ``n_parameters``: the
    length of the parameter lists (networks other than 2-2-2)."""
    value = pa.float32() if dtype == "float32" else pa.float64()
    columns = columns_of() if columns is None else columns
    fields = [pa.field(c.name, _arrow_type(c, value, n_parameters), nullable=c.nullable) for c in columns]
    return pa.schema(fields, metadata=metadata)


def file_metadata(spec, versions_):
    """The ``fastbp`` key-value metadata of every shard of ``spec``."""
    block = {
        "schema_version": schema_version(spec),
        "format": FORMAT,
        "spec": spec.as_dict(),
        "dtype": spec.dtype,
        "steps": spec.steps,
        "record_every": spec.record_every,
        "recorded_steps": [int(s) for s in spec.recorded_steps],
        "tolerance": spec.tolerance,
        "versions": versions_,
        "columns": {c.name: c.meaning for c in spec_columns(spec)},
    }
    if spec.stability_every > 0:
        block["stability_steps"] = [int(s) for s in spec.stability_steps]
    if spec.network.layers != EXERCISE_LAYERS:
        block["parameters"] = list(spec.options.network.parameter_names(spec.options.train_biases))
    return {METADATA_KEY: json.dumps(block, sort_keys=True).encode()}


def check_format(block, field, path, what="dataset"):
    """Refuse a manifest or metadata block that is not this contract's (format and version)."""
    if block.get("format") != FORMAT or block.get("schema_version") not in READABLE_VERSIONS:
        versions = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise DatasetError(field, path, f"a {FORMAT} {what} of schema version {versions}")


def metadata_of(arrow_schema, field, path):
    """The ``fastbp`` metadata block of a Parquet schema, checked against the contract."""
    metadata = arrow_schema.metadata or {}
    if METADATA_KEY not in metadata:
        raise DatasetError(field, path, "Parquet files written by fastbp (no 'fastbp' metadata)")
    block = json.loads(metadata[METADATA_KEY])
    check_format(block, field, path)
    return block


def check_columns(arrow_schema, block, needed, field, path):
    """Refuse a dataset that lacks a column or metadata key a reader needs."""
    missing = [c for c in needed if c not in arrow_schema.names]
    if missing or any(key not in block for key in ("recorded_steps", "tolerance")):
        raise DatasetError(
            field, path, f"a fastbp dataset with columns {', '.join(needed)} (missing: {missing})"
        )


# ---------------------------------------------------------------------------------------------
# A shard's table from the kernel's arrays

# pyarrow's numpy conversions (pa.array, pa.table) import pandas, when installed, to check for
# its types: half a second of start-up for nothing. Buffers wrap numpy memory directly instead.
_ARROW_TYPES = {
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.float32): pa.float32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
}


def arrow_array(values, valid=None):
    """A zero-copy Arrow array over a 1-D numeric or bool numpy array; ``valid``: bool mask or None."""
    values = np.ascontiguousarray(values)
    validity = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if values.dtype == np.bool_:
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [validity, data])
    return pa.Array.from_buffers(_ARROW_TYPES[values.dtype], len(values), [validity, pa.py_buffer(values)])


def arrow_strings(labels, codes):
    """A string array taking ``labels[codes[i]]`` for each i, built from buffers."""
    encoded = [label.encode() for label in labels]
    lengths = np.array([len(e) for e in encoded], dtype=np.int32)[codes]
    offsets = np.zeros(len(codes) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = b"".join(encoded[c] for c in codes) if len(labels) > 1 else encoded[0] * len(codes)
    return pa.Array.from_buffers(pa.string(), len(codes), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def shard_table(spec, layout, w_init, result, metadata, extra):
    """A shard's rows as a ``pyarrow.Table`` (``layout``: ``layout.run_layout``'s arrays; ``result``:
    ``kernels.train``'s; ``extra``: lr_output, grid_x, grid_y and b_init arrays per run, and with
    diagnostics ``diagnostics``, the per-run arrays of their columns by name, and ``stability``,
    (R, P) float64). No copies of the curves: a list column is one flat array plus offsets.
    Only the columns the spec keeps are built."""
    runs, lrs, init_blocks, init_indices = layout
    n = len(runs)
    columns = spec_columns(spec)
    table_schema = schema(spec.dtype, metadata, columns, spec.options.n_parameters)
    first_hit = result.first_step_below_tol
    grid_x, grid_y = extra["grid_x"], extra["grid_y"]

    def curve(values, name):
        # int32 offsets: the spec caps shard_size × recorded points below 2**31.
        offsets = arrow_array(np.arange(n + 1, dtype=np.int32) * np.int32(values.shape[1]))
        return pa.ListArray.from_arrays(
            offsets, arrow_array(values.reshape(-1)), type=table_schema.field(name).type
        )

    def parameters(weights, biases, name):
        # The weights, then the trained biases: one fixed-size list a run, from one flat array.
        rows = weights if biases is None or not spec.options.train_biases else np.vstack([weights, biases])
        flat = arrow_array(np.ascontiguousarray(rows.T).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, type=table_schema.field(name).type)

    def overflow():
        return arrow_array(~(np.isfinite(result.weights).all(axis=0) & np.isfinite(result.final_loss)))

    def regime():
        from fastbp.conventions import REGIMES

        return arrow_strings(REGIMES, extra["diagnostics"]["regime"])

    build = {
        "run": lambda: arrow_array(runs),
        "lr": lambda: arrow_array(lrs),
        "lr_hidden": lambda: arrow_array(lrs),
        "lr_output": lambda: arrow_array(extra["lr_output"]),
        "init": lambda: arrow_strings([b.kind for b in spec.inits], init_blocks),
        "init_block": lambda: arrow_array(init_blocks.astype(np.int32)),
        "init_index": lambda: arrow_array(init_indices),
        "grid_x": lambda: arrow_array(grid_x, valid=~np.isnan(grid_x)),
        "grid_y": lambda: arrow_array(grid_y, valid=~np.isnan(grid_y)),
        **{f"w{k + 1}_init": (lambda k=k: arrow_array(w_init[k])) for k in range(8)},
        **{f"w{k + 1}": (lambda k=k: arrow_array(result.weights[k])) for k in range(8)},
        **{f"{b}_init": (lambda k=k: arrow_array(extra["b_init"][k])) for k, b in enumerate(BIAS_NAMES)},
        **{b: (lambda k=k: arrow_array(result.biases[k])) for k, b in enumerate(BIAS_NAMES)},
        "final_loss": lambda: arrow_array(result.final_loss),
        "min_loss": lambda: arrow_array(result.min_loss),
        "first_step_below_tol": lambda: arrow_array(first_hit, valid=first_hit >= 0),
        "overflow": overflow,
        "loss": lambda: curve(result.loss, "loss"),
        "stability": lambda: curve(extra["stability"], "stability"),
        "params_init": lambda: parameters(w_init, extra["b_init"], "params_init"),
        "params": lambda: parameters(result.weights, result.biases, "params"),
        "regime": regime,
    }
    found = extra.get("diagnostics") or {}
    arrays = [build[c.name]() if c.name in build else arrow_array(found[c.name]) for c in columns]
    return pa.Table.from_arrays(arrays, schema=table_schema)
