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
    the pyarrow dataset holds its sound shards only, and the report says how many runs those are.

    Every shard's footer is checked first, and only the files that passed are opened."""
    from fastbp import contract
    from fastbp.errors import DatasetError

    name = "dataset"
    fs, path, entries = _locate(dataset, filesystem)
    if not any(_is_shard_file(e.base_name) for e in entries):
        raise SpecError(name, path, "a fastbp dataset directory (this one holds no Parquet files)")
    report = _check(fs, path, entries)
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


def _open_files(source, fs, shown):
    """(pyarrow dataset, fastbp metadata) of a list of checked shard files."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fastbp import contract
    from fastbp.errors import DatasetError

    name = "dataset"
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


def check(dataset, filesystem=None):
    """A ``verify.Report`` on ``dataset``: complete, incomplete (which runs) or damaged (which
    files, and why), whatever the directory holds.

    The grid comes from ``_manifest.json``, or, for a dataset copied without it (or with one
    that is damaged), from the spec in the shards' own metadata. No count is used before it is
    checked against the spec it comes with; only regular files are opened."""
    fs, path, entries = _locate(dataset, filesystem)
    return _check(fs, path, entries)


def _check(fs, path, entries):
    from fastbp import verify

    grid, problems = _grid(fs, path, entries)
    return verify.check_dataset(fs, path, grid, problems, entries)


def dataset_spec(dataset, filesystem=None):
    """The spec dict a dataset was made from (its manifest's, or its shards' metadata's), read
    without checking every shard: ``check`` and the readers do that."""
    from fastbp.errors import DatasetError

    fs, path, entries = _locate(dataset, filesystem)
    grid, problems = _grid(fs, path, entries)
    if grid is None:
        shown = "; ".join(f"{name}: {why}" for name, why in problems[:3])
        raise DatasetError(
            "dataset", path, f"a fastbp dataset whose manifest or shards hold its spec ({shown})"
        )
    return grid["spec"]


def _grid(fs, path, entries):
    """(grid, problems): the checked manifest, or without a sound one the grid rebuilt from the
    spec in the first shard whose metadata gives one (None when none does), and the (file, why)
    found on the way."""
    from fastbp import contract, storage, verify

    problems = []
    if any(e.base_name == contract.MANIFEST for e in entries):
        try:
            return storage.load_manifest(fs, f"{path}/{contract.MANIFEST}"), problems
        except verify.Damaged as exc:
            problems.append((contract.MANIFEST, str(exc)))
    numbered = [(verify.shard_number(e.base_name), e) for e in entries]
    shards = sorted(((n, e) for n, e in numbered if n is not None), key=lambda pair: pair[0])
    if not shards and not problems:
        raise SpecError(
            "dataset", path, "a fastbp dataset directory (no _manifest.json, no part-NNNNNN.parquet)"
        )
    refused = {}  # spec JSON → why: each spec is parsed once, however many shards hold it
    whys = []  # each shard's, said only when no shard gives a grid (else the check names them)
    for _number, entry in shards:
        try:
            return _shard_grid(fs, entry, refused), problems
        except verify.Damaged as exc:
            whys.append((entry.base_name, str(exc)))
    return None, problems + whys


def _shard_grid(fs, entry, refused):
    from fastbp import verify
    from fastbp.spec import canonical_json

    _footer, block = verify.footer_block(fs, entry.path, entry)
    key = canonical_json(block.get("spec"))
    if key in refused:
        raise verify.Damaged(refused[key])
    try:
        return _grid_from_metadata(block)
    except verify.Damaged as exc:
        refused[key] = str(exc)
        raise


def _grid_from_metadata(block):
    """A manifest's grid (spec, n_runs, shard_size, n_shards) from a shard's metadata block;
    ``verify.Damaged`` when its spec is refused or its grid is larger than a dataset holds."""
    from fastbp import verify
    from fastbp.shards import default_shard_size

    if "spec" not in block:
        raise verify.Damaged("its fastbp metadata holds no spec")
    spec = verify.spec_of(block["spec"])
    shard_size = spec.shard_size or default_shard_size(spec)
    verify.check_grid_size(spec, shard_size)
    n_shards = spec.n_shards(shard_size)
    return {"spec": block["spec"], "n_runs": spec.n_runs, "shard_size": shard_size, "n_shards": n_shards}


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
