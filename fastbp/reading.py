"""Reading a dataset for analysis: open it, check it against the contract, stream its batches.

Every reader of fastbp (the statistics behind the figures, and any new one) opens a dataset
through ``open_for_reading``, which refuses anything that is not a fastbp dataset holding the
columns the reader needs (``SpecError``, field ``dataset``), before reading a single row.
"""

from fastbp.errors import SpecError

#: Loss values per record batch (rows = this // recorded points).
BATCH_VALUES = 2**20


def open_for_reading(dataset, needed, filesystem=None, partial=False):
    """(pyarrow dataset, path, metadata, ``verify.Report``) of a fastbp dataset holding the
    columns ``needed``. An incomplete or damaged dataset is refused unless ``partial``: then
    the pyarrow dataset holds its sound shards only, and the report says how many runs those are."""
    from fastbp import contract
    from fastbp.errors import DatasetError

    name = "dataset"
    fs, path, entries = _locate(dataset, filesystem)
    if not any(_is_shard_file(e.base_name) for e in entries):
        raise SpecError(name, path, "a fastbp dataset directory (this one holds no Parquet files)")
    has_manifest = any(e.base_name == contract.MANIFEST for e in entries)
    # With a manifest the footers are checked first, so a damaged file is named, not tripped on.
    report = check(path, fs) if has_manifest else None
    if report is None or report.complete:
        data, metadata = _open_files(path, fs)
        contract.check_columns(data.schema, metadata, needed, name, path)
        if report is None:
            report = check(path, fs, metadata)
    if not report.complete:
        if not partial:
            allowed = (
                f"a complete dataset; this one is {report.summary()}. Run its sweep again to finish it, "
                "or ask for a partial view (--partial, partial=True)"
            )
            raise DatasetError(name, path, allowed)
        if not report.sound:
            raise DatasetError(
                name, path, f"a dataset with at least one sound shard; this one is {report.summary()}"
            )
        sound = [f"{path}/{contract.SHARD_NAME.format(s)}" for s in report.sound]
        data, metadata = _open_files(sound, fs, shown=path)
        contract.check_columns(data.schema, metadata, needed, name, path)
    return data, path, metadata, report


def _open_files(source, fs, shown=None):
    """(pyarrow dataset, fastbp metadata) of a directory or a list of files."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fastbp import contract
    from fastbp.errors import DatasetError

    name, shown = "dataset", shown or source
    try:
        data = ds.dataset(source, filesystem=fs, format="parquet")
        return data, contract.metadata_of(data.schema, name, shown)
    except DatasetError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise SpecError(
            name, shown, f"a directory of fastbp Parquet files ({type(exc).__name__}: {exc})"
        ) from None


def _is_shard_file(name):
    return name.endswith(".parquet") and not name.startswith((".", "_"))


def _locate(dataset, filesystem):
    """(filesystem, path, directory entries) of an existing directory, or a ``SpecError``."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    from fastbp import storage

    name = "dataset"
    try:
        fs, path = storage.resolve(dataset, filesystem)
        info = fs.get_file_info(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise SpecError(name, str(dataset), f"a fastbp dataset directory or URL ({exc})") from None
    if info.type == pafs.FileType.NotFound:
        raise SpecError(name, path, "an existing fastbp dataset directory (this path does not exist)")
    if info.type != pafs.FileType.Directory:
        raise SpecError(name, path, "a fastbp dataset directory (this path is a file)")
    return fs, path, fs.get_file_info(pafs.FileSelector(path, recursive=False))


def check(dataset, filesystem=None, metadata=None):
    """A ``verify.Report`` on ``dataset``: complete, incomplete (which runs) or damaged (which files).

    The grid comes from ``_manifest.json``, or, for a dataset copied without it, from the spec
    in the shards' own metadata (``metadata``, read when not given)."""
    from fastbp import verify

    fs, path, manifest = _manifest(dataset, filesystem, metadata)
    return verify.check_dataset(fs, path, manifest)


def dataset_spec(dataset, filesystem=None):
    """The spec dict a dataset was made from (its manifest's, or its shards' metadata's), read
    without checking any shard: ``check`` and the readers do that."""
    return _manifest(dataset, filesystem)[2]["spec"]


def _manifest(dataset, filesystem, metadata=None):
    """(filesystem, path, the manifest or, without one, the grid rebuilt from the metadata)."""
    from fastbp import contract, storage
    from fastbp.errors import DatasetError

    fs, path, entries = _locate(dataset, filesystem)
    names = {e.base_name for e in entries}
    if contract.MANIFEST in names:
        return fs, path, storage.read_manifest(fs, f"{path}/{contract.MANIFEST}", field="dataset")
    # copied without its manifest: the grid from the spec in the shards' metadata
    if not any(_is_shard_file(n) for n in names):
        raise SpecError("dataset", path, "a fastbp dataset directory (no _manifest.json, no Parquet files)")
    if metadata is None:
        try:
            metadata = storage.read_metadata(path, fs)
        except DatasetError:
            raise
        except Exception as exc:  # pyarrow cannot read the files at all
            allowed = f"a directory of fastbp Parquet files ({type(exc).__name__}: {exc})"
            raise SpecError("dataset", path, allowed) from None
    return fs, path, _grid_from_metadata(metadata, "dataset", path)


def _grid_from_metadata(metadata, field, path):
    from fastbp.errors import DatasetError
    from fastbp.shards import default_shard_size
    from fastbp.spec import parse_spec

    try:
        spec = parse_spec(metadata["spec"])
    except (KeyError, TypeError, SpecError) as exc:
        raise DatasetError(field, path, f"a fastbp dataset whose metadata holds its spec ({exc})") from None
    shard_size = spec.shard_size or default_shard_size(spec)
    n_shards = spec.n_shards(shard_size)
    return {"spec": metadata["spec"], "n_runs": spec.n_runs, "shard_size": shard_size, "n_shards": n_shards}


def batches(data, columns, n_points, filter_=None, batch_values=BATCH_VALUES):
    """Record batches of ``columns``, about ``batch_values`` loss values each, read serially."""
    rows = max(16, batch_values // max(1, n_points))
    # use_threads=False: a threaded scan keeps reading ahead while the statistics are computed,
    # buffering many row groups (measured: 0.8 GB on a 1.6 GB dataset); a serial scan holds
    # about one row group (a shard: at most 64 MiB of curves) and the batch being summarised.
    return data.to_batches(
        columns=columns,
        filter=filter_,
        batch_size=rows,
        batch_readahead=1,
        fragment_readahead=1,
        use_threads=False,
    )


def loss_matrix(column, n_rows, n_points):
    import pyarrow.compute as pc

    flat = column.flatten()
    lengths = pc.min_max(pc.list_value_length(column)).as_py()
    if len(flat) != n_rows * n_points or (n_rows and lengths != {"min": n_points, "max": n_points}):
        raise ValueError(f"the loss column must hold {n_points} values per run (metadata recorded_steps)")
    return flat.to_numpy(zero_copy_only=False).reshape(n_rows, n_points)
