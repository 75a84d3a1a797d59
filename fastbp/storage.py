"""The Parquet contract of a sweep dataset (schema version 1).

A dataset is a directory (local path, or any URL pyarrow's filesystems understand, e.g.
``s3://bucket/prefix``) holding:

- ``part-NNNNNN.parquet``: shard N, the contiguous runs [N * shard_size, (N + 1) * shard_size),
  one row per run, sorted by ``run``. Every file has the same schema and the same key-value
  metadata, so any reader sees one table.
- ``_manifest.json``: the spec, the shard size and the versions that created the dataset. It
  begins with ``_`` so that pyarrow, pandas, Polars and DuckDB skip it. Temporary files begin
  with ``.``.

Columns (``COLUMNS`` documents each; float columns are in the sweep's dtype unless said):
``run`` int64, ``lr`` float64, ``init`` string, ``init_block`` int32, ``init_index`` int64,
``w1_init … w8_init``, ``w1 … w8``, ``final_loss``, ``min_loss``, ``first_step_below_tol`` int64
(null when never), ``overflow`` bool, ``loss`` list of E_total at the recorded steps.

Key-value metadata ``fastbp`` (JSON): ``schema_version``, ``spec`` (normalised), ``dtype``,
``steps``, ``record_every``, ``recorded_steps``, ``tolerance``, ``versions`` (fastbp, numba,
numpy, pyarrow, python), ``columns``.

Writes are atomic: on a local filesystem a shard is written under a temporary name and renamed;
on object stores (where rename is copy-and-delete) it is written straight to its final key,
which becomes visible only when complete.
"""

import json
import platform
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fastbp.errors import DatasetError

SCHEMA_VERSION = 1
MANIFEST = "_manifest.json"
METADATA_KEY = b"fastbp"
FORMAT = "fastbp.sweep"

COLUMNS = {
    "run": "run number, 0-based: lr_index * n_inits + init number (stable)",
    "lr": "learning rate (float64 as specified; float32 sweeps train with it rounded to float32)",
    "init": "initialisation kind of the run's [[init]] block",
    "init_block": "which [[init]] block, 0-based, in spec order",
    "init_index": "index of the initialisation within its block",
    **{f"w{k}_init": f"initial w{k} (step 0)" for k in range(1, 9)},
    **{f"w{k}": f"final w{k} (after the last update)" for k in range(1, 9)},
    "final_loss": "E_total at the last step (after the last update)",
    "min_loss": "lowest E_total over steps 0 … steps",
    "first_step_below_tol": "first step whose E_total < tolerance; null if none",
    "overflow": "a final weight or the final loss is not finite (inf/NaN)",
    "loss": "E_total at the recorded steps (metadata: recorded_steps)",
}

SHARD_NAME = "part-{:06d}.parquet"
# Parquet options, chosen by measurement (scripts/bench.py's W1/W2 shards; see README "Storage"):
# dictionary encoding only where values repeat (`init`): tried on unique floats it tripled the
# write time; zstd level 1 for the per-run columns; lz4 for the loss curves, whose noisy float
# bits zstd shrank by only 6 % at twice the time while lz4 still packs plateaus and zeros; no
# statistics for the curves (nothing filters on a list element).
_SCALAR_COLUMNS = [name for name in COLUMNS if name != "loss"]
_PARQUET_OPTIONS = dict(
    compression={**{name: "zstd" for name in _SCALAR_COLUMNS}, "loss": "lz4"},
    compression_level={name: 1 for name in _SCALAR_COLUMNS},
    use_dictionary=["init"],
    write_statistics=_SCALAR_COLUMNS,
)


def versions():
    import numba

    import fastbp

    return {
        "fastbp": fastbp.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "python": platform.python_version(),
    }


def schema(dtype, metadata=None):
    value = pa.float32() if dtype == "float32" else pa.float64()
    fields = [
        pa.field("run", pa.int64(), nullable=False),
        pa.field("lr", pa.float64(), nullable=False),
        pa.field("init", pa.string(), nullable=False),
        pa.field("init_block", pa.int32(), nullable=False),
        pa.field("init_index", pa.int64(), nullable=False),
    ]
    fields += [pa.field(f"w{k}_init", value, nullable=False) for k in range(1, 9)]
    fields += [pa.field(f"w{k}", value, nullable=False) for k in range(1, 9)]
    fields += [
        pa.field("final_loss", value, nullable=False),
        pa.field("min_loss", value, nullable=False),
        pa.field("first_step_below_tol", pa.int64()),
        pa.field("overflow", pa.bool_(), nullable=False),
        pa.field("loss", pa.list_(pa.field("item", value, nullable=False)), nullable=False),
    ]
    return pa.schema(fields, metadata=metadata)


def file_metadata(spec, recorded_steps, versions_):
    block = {
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT,
        "spec": spec.as_dict(),
        "dtype": spec.dtype,
        "steps": spec.steps,
        "record_every": spec.record_every,
        "recorded_steps": [int(s) for s in recorded_steps],
        "tolerance": spec.tolerance,
        "versions": versions_,
        "columns": COLUMNS,
    }
    return {METADATA_KEY: json.dumps(block, sort_keys=True).encode()}


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


def shard_table(spec, runs, lrs, init_blocks, init_indices, w_init, result, metadata):
    """A shard's rows as a ``pyarrow.Table`` (arrays from ``kernels.train``; no copies of curves)."""
    n = len(runs)
    n_points = result.loss.shape[1]
    # The list column is one flat array plus offsets: no per-run Python objects.
    loss_type = schema(spec.dtype).field("loss").type
    # int32 offsets: the spec caps shard_size × recorded points below 2**31.
    offsets = arrow_array(np.arange(n + 1, dtype=np.int32) * np.int32(n_points))
    loss = pa.ListArray.from_arrays(offsets, arrow_array(result.loss.reshape(-1)), type=loss_type)
    first_hit = result.first_step_below_tol
    finite = np.isfinite(result.weights).all(axis=0) & np.isfinite(result.final_loss)
    columns = [
        arrow_array(runs),
        arrow_array(lrs),
        arrow_strings([b.kind for b in spec.inits], init_blocks),
        arrow_array(init_blocks.astype(np.int32)),
        arrow_array(init_indices),
        *(arrow_array(w_init[k]) for k in range(8)),
        *(arrow_array(result.weights[k]) for k in range(8)),
        arrow_array(result.final_loss),
        arrow_array(result.min_loss),
        arrow_array(first_hit, valid=first_hit >= 0),
        arrow_array(~finite),
        loss,
    ]
    return pa.Table.from_arrays(columns, schema=schema(spec.dtype, metadata))


def resolve(out, filesystem=None, field="out"):
    """(pyarrow filesystem, path) for a local path or a URL; ``filesystem`` may be pyarrow or fsspec."""
    import os

    if filesystem is not None:
        if not isinstance(filesystem, pafs.FileSystem):
            filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
        return filesystem, str(out)
    out = os.fspath(out)
    if "://" in out:
        try:
            return pafs.FileSystem.from_uri(out)
        except (pa.ArrowException, ValueError, OSError) as exc:
            raise DatasetError(
                field, out, f"a local path or a URL pyarrow understands, e.g. s3://bucket/prefix ({exc})"
            ) from None
    return pafs.LocalFileSystem(), os.path.abspath(out)


# Object stores, where rename is copy-and-delete and an object appears only once complete: shards
# go straight to their final key there. Everything else (local disks, NFS, HDFS, fsspec wrappers
# of them) gets a temporary name and a rename, so a killed writer never leaves a truncated shard.
_OBJECT_STORES = ("s3", "gcs", "gs", "abfs", "az", "adl")


def _is_object_store(filesystem):
    name = filesystem.type_name
    if name.startswith("py::fsspec"):
        return any(f"'{protocol}'" in name for protocol in _OBJECT_STORES)
    return name in _OBJECT_STORES


class Dataset:
    """A sweep dataset on a filesystem: its manifest, its finished shards, atomic shard writes."""

    def __init__(self, filesystem, path, manifest):
        self.filesystem, self.path, self.manifest = filesystem, path, manifest
        self.created = self.made_directory = False
        self.rename = not _is_object_store(filesystem)  # write under a temporary name, then rename

    @property
    def shard_size(self):
        return self.manifest["shard_size"]

    @property
    def n_shards(self):
        return self.manifest["n_shards"]

    def shard_path(self, shard):
        return f"{self.path}/{SHARD_NAME.format(shard)}"

    def shard_runs(self, shard):
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.manifest["n_runs"])

    def finished_shards(self):
        selector = pafs.FileSelector(self.path, recursive=False)
        names = {info.base_name for info in self.filesystem.get_file_info(selector)}
        return {s for s in range(self.n_shards) if SHARD_NAME.format(s) in names}

    def missing_shards(self):
        done = self.finished_shards()
        return [s for s in range(self.n_shards) if s not in done]

    def write_shard(self, shard, table):
        final = self.shard_path(shard)
        target = f"{self.path}/.{SHARD_NAME.format(shard)}.tmp-{uuid.uuid4().hex}" if self.rename else final
        try:
            with self.filesystem.open_output_stream(target) as stream:
                pq.write_table(table, stream, **_PARQUET_OPTIONS)
            if self.rename:
                self.filesystem.move(target, final)  # atomic rename (os.replace)
        except BaseException:
            _delete_quietly(self.filesystem, target)
            raise

    def discard(self):
        """Delete a dataset this call created and that holds no shard yet (a refusal after creation)."""
        if self.created and not self.finished_shards():
            self.remove_temporaries()
            _delete_quietly(self.filesystem, f"{self.path}/{MANIFEST}")
            if self.made_directory and not self.filesystem.get_file_info(pafs.FileSelector(self.path)):
                self.filesystem.delete_dir(self.path)

    def remove_temporaries(self):
        """Delete temporary files left by killed writers (never a finished shard)."""
        selector = pafs.FileSelector(self.path, recursive=False)
        for info in self.filesystem.get_file_info(selector):
            if _is_temporary(info.base_name):
                _delete_quietly(self.filesystem, info.path)


def _delete_quietly(filesystem, path):
    try:
        filesystem.delete_file(path)
    except (FileNotFoundError, OSError):
        pass


def new_manifest(spec, shard_size):
    n_shards = -(-spec.n_runs // shard_size)
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "spec": spec.as_dict(),
        "n_runs": spec.n_runs,
        "shard_size": shard_size,
        "n_shards": n_shards,
        "versions": versions(),
        "kernel_source": kernel_source_stamp(),
    }


def kernel_source_stamp():
    """A hash of the sources every number in a shard comes from (kernels, model, fastmath)."""
    import os

    from fastbp._numba_cache import _source_stamp

    return _source_stamp(os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels.py"))


def open_dataset(out, spec, shard_size, *, overwrite=False, filesystem=None, field="out"):
    """Create the dataset for ``spec`` at ``out``, or reopen it to resume.

    Refuses (``DatasetError``, nothing written) when ``out`` is a file, holds files that are not a
    fastbp dataset, or holds a dataset of another spec or made by other kernel code (resuming it
    would mix two sets of numerics), unless ``overwrite``: then only fastbp's own files are
    deleted. On resume the manifest's shard size wins over ``shard_size``. The returned
    dataset's ``created`` says whether this call made it.
    """
    filesystem, path = resolve(out, filesystem, field)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise DatasetError(field, path, "a directory for the dataset (this path is a file)")
    made_directory = info.type == pafs.FileType.NotFound
    manifest_path = f"{path}/{MANIFEST}"
    if info.type == pafs.FileType.Directory:
        entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
        names = {e.base_name for e in entries}
        if MANIFEST in names:
            existing = read_manifest(filesystem, manifest_path, field)
            same_spec = _same_spec(existing["spec"], spec.as_dict())
            same_code = existing.get("kernel_source") == kernel_source_stamp()
            if same_spec and same_code:
                return Dataset(filesystem, path, existing)
            if not overwrite:
                why = "of a different spec" if not same_spec else "made by other fastbp kernel code"
                raise DatasetError(
                    field,
                    path,
                    f"a new directory or one holding this same spec; it holds a sweep {why} "
                    "(pass --overwrite / overwrite=True to replace it, or choose another directory)",
                )
            # The manifest goes last: a replacement killed half-way leaves a dataset that is
            # refused as a different spec (or resumed, for its own spec), never one without a
            # manifest that only manual cleaning could reuse.
            for entry in sorted(entries, key=lambda e: e.base_name == MANIFEST):
                if _is_ours(entry.base_name):
                    _delete_quietly(filesystem, entry.path)
        elif any(not n.startswith(".") for n in names):
            raise DatasetError(
                field,
                path,
                "a new or empty directory, or an existing fastbp dataset "
                "(this one holds other files and no _manifest.json)",
            )
    manifest = new_manifest(spec, shard_size)
    try:
        filesystem.create_dir(path, recursive=True)
    except OSError as exc:  # a parent that is a file, no permission …: bad input, not a crash
        raise DatasetError(field, path, f"a directory that can be created ({exc})") from None
    _write_json(filesystem, manifest_path, manifest, rename=not _is_object_store(filesystem))
    dataset = Dataset(filesystem, path, manifest)
    dataset.created, dataset.made_directory = True, made_directory
    return dataset


def _same_spec(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _is_ours(name):
    return name == MANIFEST or (name.startswith("part-") and name.endswith(".parquet")) or _is_temporary(name)


def _is_temporary(name):
    """A shard or manifest being written (``.part-N.parquet.tmp-…``, ``._manifest.json.tmp-…``)."""
    return (name.startswith(".part-") or name.startswith(f".{MANIFEST}")) and ".tmp-" in name


def read_manifest(filesystem, path, field="out"):
    try:
        with filesystem.open_input_stream(path) as stream:
            manifest = json.loads(stream.read().decode())
    except (OSError, ValueError) as exc:
        raise DatasetError(field, path, f"a readable fastbp manifest ({exc})") from None
    if manifest.get("format") != FORMAT or manifest.get("schema_version") != SCHEMA_VERSION:
        raise DatasetError(field, path, f"a {FORMAT} manifest of schema version {SCHEMA_VERSION}")
    return manifest


def _write_json(filesystem, path, data, rename):
    text = json.dumps(data, indent=2, sort_keys=True).encode()
    # Hidden temporary name: a writer killed before the rename leaves a file that readers and
    # the "directory holds other files" check ignore, and that remove_temporaries deletes.
    head, _, name = path.rpartition("/")
    target = f"{head}/.{name}.tmp-{uuid.uuid4().hex}" if rename else path
    with filesystem.open_output_stream(target) as stream:
        stream.write(text)
    if rename:
        filesystem.move(target, path)


def read_metadata(path, filesystem=None):
    """The ``fastbp`` metadata block of a dataset, read from its Parquet files alone."""
    import pyarrow.dataset as ds

    filesystem, path = resolve(path, filesystem)
    dataset = ds.dataset(path, filesystem=filesystem, format="parquet")
    metadata = dataset.schema.metadata or {}
    if METADATA_KEY not in metadata:
        raise DatasetError("dataset", path, "Parquet files written by fastbp (no 'fastbp' metadata)")
    return json.loads(metadata[METADATA_KEY])


def open_existing(out, filesystem=None, field="out"):
    """Reopen a dataset created by ``open_dataset`` (a worker's view: manifest only, no checks)."""
    filesystem, path = resolve(out, filesystem, field)
    manifest = read_manifest(filesystem, f"{path}/{MANIFEST}", field)
    return Dataset(filesystem, path, manifest)
