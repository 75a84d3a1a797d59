"""Where a dataset lives: filesystems, the manifest, finished shards, atomic shard writes.

What the files hold is ``fastbp.contract``'s; this module knows where they are and how they
are written. On a local filesystem (and NFS, HDFS, fsspec wrappers of them) every file is
written under a temporary name and renamed; on object stores (where rename is copy-and-delete)
straight to its final key, which becomes visible only when complete (``fastbp.files``).
"""

import json
import os

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fastbp import contract, files
from fastbp.contract import MANIFEST, SHARD_NAME
from fastbp.errors import DatasetError
from fastbp.spec import canonical_json


def resolve(out, filesystem=None, field="out"):
    """(pyarrow filesystem, path) for a local path or a URL; ``filesystem`` may be pyarrow or fsspec."""
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
        self._finished = None  # sound shards, once checked
        self.lock = None  # the OS lock this process holds on the dataset, where one exists
        self.rename = not _is_object_store(filesystem)  # write under a temporary name, then rename

    def close(self):
        """Release the dataset for other writers."""
        if self.lock is not None:
            self.lock.release()

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

    def check(self):
        """A ``verify.Report`` of the files present now: every shard's footer checked."""
        from fastbp.verify import check_dataset

        return check_dataset(self.filesystem, self.path, self.manifest)

    def verify_for_resume(self, notify):
        """Check every present shard; delete the damaged ones (and part files beyond the grid),
        each reported through ``notify(line)``, so that they are computed again."""
        report = self.check()
        for name, why in report.damaged:
            notify(f"fastbp: {name} is damaged ({why}); computing it again")
            files.delete_quietly(f"{self.path}/{name}", self.filesystem)
        for name in report.extra:
            notify(f"fastbp: {name} lies beyond this spec's {self.n_shards} shards; deleted")
            files.delete_quietly(f"{self.path}/{name}", self.filesystem)
        self._finished = set(report.sound)
        return report

    def finished_shards(self):
        """Shards whose files are sound (verified once, then kept up to date by ``write_shard``)."""
        if self._finished is None:
            self._finished = set(self.check().sound)
        return set(self._finished)

    def missing_shards(self):
        done = self.finished_shards()
        return [s for s in range(self.n_shards) if s not in done]

    def write_shard(self, shard, table):
        def write(stream):
            pq.write_table(table, stream, **contract.PARQUET_OPTIONS)

        files.write_atomically(self.shard_path(shard), write, filesystem=self.filesystem, rename=self.rename)
        if self._finished is not None:
            self._finished.add(shard)

    def discard(self):
        """Delete a dataset this call created and that holds no shard yet (a refusal after creation)."""
        if self.created and not self.finished_shards():
            self.remove_temporaries()
            files.delete_quietly(f"{self.path}/{MANIFEST}", self.filesystem)
            if self.made_directory:
                _remove_directory(self.filesystem, self.path, self.lock)
                self.lock = None

    def remove_temporaries(self):
        """Delete temporary files left by killed writers (never a finished shard)."""
        selector = pafs.FileSelector(self.path, recursive=False)
        for info in self.filesystem.get_file_info(selector):
            if _is_temporary(info.base_name):
                files.delete_quietly(info.path, self.filesystem)


def new_manifest(spec, shard_size):
    n_shards = spec.n_shards(shard_size)
    return {
        "format": contract.FORMAT,
        "schema_version": contract.schema_version(spec),
        "spec": spec.as_dict(),
        "n_runs": spec.n_runs,
        "shard_size": shard_size,
        "n_shards": n_shards,
        "versions": contract.versions(),
        "kernel_source": kernel_source_stamp(spec),
    }


#: Every source a shard's numbers come from: the kernels and their variants, the model and its
#: arithmetic, and the starting points (init kinds and the grid's layout); and for a sweep with
#: diagnostics or a stability curve, theirs too (an edit there leaves other datasets resumable).
NUMERIC_SOURCES = (
    "kernels.py",
    "kernels_train.py",
    "kernels_step.py",
    "compile_time.py",
    "model.py",
    "fastmath.py",
    "inits.py",
    "layout.py",
    "network.py",
)
DIAGNOSTICS_SOURCES = ("kernels_diagnostics.py", "kernels_sharpness.py", "regimes.py")


def kernel_source_stamp(spec=None):
    """A hash of the sources every number in a shard of ``spec`` comes from."""
    import hashlib

    names = NUMERIC_SOURCES
    if spec is not None and (spec.diagnostics or spec.stability_every):
        names += DIAGNOSTICS_SOURCES
    digest = hashlib.sha256()
    for name in names:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def open_dataset(
    out, spec, shard_size, *, overwrite=False, filesystem=None, field="out", wait=False, on_wait=None
):
    """Create the dataset for ``spec`` at ``out``, or reopen it to resume, holding it for one writer.

    On a local filesystem the dataset is locked first (``fastbp.locking``: an OS lock the kernel
    releases when its holder dies): another sweep that holds it is refused (``DatasetBusy``) or,
    with ``wait``, waited for; nothing is read, cleaned or written before the lock is held.
    ``Dataset.close()`` releases it. Elsewhere no lock exists, and shards are trusted only by
    their spec (``fastbp.verify``).

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
    if info.type == pafs.FileType.Directory:  # never drop a lock file into someone else's directory
        names = {e.base_name for e in filesystem.get_file_info(pafs.FileSelector(path, recursive=False))}
        if MANIFEST not in names and any(not n.startswith(".") for n in names):
            raise _foreign(field, path)
    lock = None
    from fastbp.locking import no_lock_possible

    if not no_lock_possible(filesystem):  # a local directory (pyarrow's or fsspec's): lock it
        lock = _lock(filesystem, path, field, wait, on_wait)
        # Looked at again under the lock: a sweep waited for (or started at the same moment) may
        # have made the dataset since, and it must be resumed or refused, never written over.
        info = filesystem.get_file_info(path)
    try:
        dataset = _open_held(filesystem, path, spec, shard_size, overwrite, field, info, made_directory)
    except BaseException:
        if made_directory:
            _remove_directory(filesystem, path, lock)
        elif lock is not None:
            lock.release()
        raise
    dataset.lock = lock
    return dataset


def _lock(filesystem, path, field, wait, on_wait):
    """The dataset's OS lock. Refused, the directory is left as it is: the sweep that holds it may
    be using it. A holder that gave up removes the directory: a waiter then makes it again."""
    from fastbp.locking import lock_dataset

    for _attempt in range(3):
        _create_directory(filesystem, path, field)
        try:
            return lock_dataset(path, field=field, wait=wait, on_wait=on_wait)
        except DatasetError:
            if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
                raise
            on_wait = None  # said once
    return lock_dataset(path, field=field, wait=wait)


def _foreign(field, path):
    return DatasetError(
        field,
        path,
        "a new or empty directory, or an existing fastbp dataset (this one holds other files and no _manifest.json)",
    )


def _create_directory(filesystem, path, field):
    try:
        filesystem.create_dir(path, recursive=True)
    except OSError as exc:  # a parent that is a file, no permission …: bad input, not a crash
        raise DatasetError(field, path, f"a directory that can be created ({exc})") from None


def _remove_directory(filesystem, path, lock):
    """Remove a directory this call made, if it holds nothing but fastbp's lock file, and release
    ``lock``. The lock file is unlinked while still held, so a sweep waiting on it wakes to find
    it gone and starts afresh (``open_dataset`` makes the directory again), never to hold a lock
    on a file nobody else can see."""
    from fastbp.locking import LOCK_NAME

    try:
        entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
        if all(e.base_name == LOCK_NAME for e in entries):
            files.delete_quietly(f"{path}/{LOCK_NAME}", filesystem)
            if lock is not None:
                lock.release()
            try:
                filesystem.delete_dir(path)
            except OSError:  # a waiter made it again: it is theirs now
                pass
    finally:
        if lock is not None:
            lock.release()


def _open_held(filesystem, path, spec, shard_size, overwrite, field, info, made_directory):
    manifest_path = f"{path}/{MANIFEST}"
    if info.type == pafs.FileType.Directory:
        entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
        names = {e.base_name for e in entries}
        if MANIFEST in names:
            existing = read_manifest(filesystem, manifest_path, field)
            why = _why_not_resumable(existing, spec)
            if why is None:
                return Dataset(filesystem, path, existing)
            if not overwrite:
                raise _another_sweep(field, path, why)
            # The manifest goes last: a replacement killed half-way leaves a dataset that is
            # refused as a different spec (or resumed, for its own spec), never one without a
            # manifest that only manual cleaning could reuse.
            for entry in sorted(entries, key=lambda e: e.base_name == MANIFEST):
                if _is_ours(entry.base_name):
                    files.delete_quietly(entry.path, filesystem)
        elif any(not n.startswith(".") for n in names):
            raise _foreign(field, path)
    manifest = new_manifest(spec, shard_size)
    _create_directory(filesystem, path, field)
    try:
        _write_json(filesystem, manifest_path, manifest, rename=not _is_object_store(filesystem))
    except OSError as exc:  # e.g. a read-only directory
        raise DatasetError(field, path, f"a writable directory for the dataset ({exc})") from None
    dataset = Dataset(filesystem, path, manifest)
    dataset.created, dataset.made_directory = True, made_directory
    return dataset


def finished_without_writing(out, spec, filesystem=None, overwrite=False, field="out"):
    """Sound shards of an existing dataset of ``spec`` at ``out`` (empty if none), read-only;
    refuses what the sweep itself would refuse (``out`` a file, a foreign directory, another
    spec's or other kernel code's dataset without ``overwrite``), so a dry run says the same."""
    filesystem, path = resolve(out, filesystem, field)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise DatasetError(field, path, "a directory for the dataset (this path is a file)")
    if info.type != pafs.FileType.Directory:
        return set()
    names = {e.base_name for e in filesystem.get_file_info(pafs.FileSelector(path, recursive=False))}
    if MANIFEST not in names:
        if any(not n.startswith(".") for n in names):
            raise _foreign(field, path)
        return set()
    manifest = read_manifest(filesystem, f"{path}/{MANIFEST}", field)
    why = _why_not_resumable(manifest, spec)
    if why is None:
        return set(Dataset(filesystem, path, manifest).finished_shards())
    if overwrite:
        return set()
    raise _another_sweep(field, path, why)


def _why_not_resumable(manifest, spec):
    """None when the dataset of ``manifest`` can be resumed by ``spec`` with this code, else why
    not: resuming would mix two specs, two sets of numerics or two schema layouts."""
    if canonical_json(manifest["spec"]) != canonical_json(spec.as_dict()):
        return "of a different spec"
    if manifest.get("kernel_source") != kernel_source_stamp(spec) or manifest.get(
        "schema_version"
    ) != contract.schema_version(spec):
        return "made by other fastbp kernel code"
    return None


def _another_sweep(field, path, why):
    return DatasetError(
        field,
        path,
        f"a new directory or one holding this same spec; it holds a sweep {why} "
        "(pass --overwrite / overwrite=True to replace it, or choose another directory)",
    )


def _is_ours(name):
    return name == MANIFEST or (name.startswith("part-") and name.endswith(".parquet")) or _is_temporary(name)


def _is_temporary(name):
    """A shard or manifest being written (``.part-N.parquet.tmp-…``, ``._manifest.json.tmp-…``)."""
    return files.is_temporary(name) and (name.startswith(".part-") or name.startswith(f".{MANIFEST}"))


#: A manifest is a few kB (a spec that lists a million rates, some 20 MB): past this size a
#: file is not read, and is not a manifest.
MAX_MANIFEST_BYTES = 64 * 2**20


def load_manifest(filesystem, path):
    """The manifest at ``path``, its counts checked against its spec before anything is sized
    from them; ``verify.Damaged`` says why it cannot be used."""
    from fastbp import verify

    data = verify.read_bounded(filesystem, path, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
        raise verify.Damaged(f"not JSON ({type(exc).__name__}: {str(exc)[:120]})") from None
    return verify.checked_manifest(manifest)


def read_manifest(filesystem, path, field="out"):
    """``load_manifest``, refused as a ``DatasetError`` naming the manifest and why."""
    from fastbp import verify

    try:
        return load_manifest(filesystem, path)
    except verify.Damaged as exc:
        name = path.rpartition("/")[2]  # the path may be shortened in the message: the file's name is not
        raise DatasetError(field, path, f"a sound fastbp manifest ({name} is damaged: {exc})") from None


def _write_json(filesystem, path, data, rename):
    text = json.dumps(data, indent=2, sort_keys=True).encode()
    files.write_atomically(path, lambda stream: stream.write(text), filesystem=filesystem, rename=rename)


def open_existing(out, filesystem=None, field="out"):
    """Reopen a dataset created by ``open_dataset`` (a worker's view: manifest only, no checks)."""
    filesystem, path = resolve(out, filesystem, field)
    manifest = read_manifest(filesystem, f"{path}/{MANIFEST}", field)
    return Dataset(filesystem, path, manifest)
