"""Running a sweep: threads, resume, progress, backends. The only module that knows all the others.

The threaded backend here runs the missing shards one after another, each with every Numba
thread, and writes the previous shard while the next one computes. ``backend="dask"`` hands the
same shards to ``fastbp.backends.dask``.
"""

import threading
import time

from fastbp.errors import SpecError
from fastbp.progress import Progress
from fastbp.shards import SweepSummary, compute_shard, default_shard_size
from fastbp.spec import load_spec


def sweep(
    spec,
    out,
    *,
    threads=None,
    overwrite=False,
    progress=True,
    backend="threads",
    address=None,
    client=None,
    filesystem=None,
    out_field="out",
):
    """Train every run of ``spec`` (TOML path, dict or ``SweepSpec``) into the dataset ``out``.

    ``out`` is a directory path or a pyarrow/fsspec URL. Resumes a dataset of the same spec,
    skipping finished shards; refuses another spec's dataset unless ``overwrite``. ``threads``:
    Numba threads (default: all cores). ``backend="dask"`` runs the shards as Dask tasks
    (``address`` of a scheduler, or a ``dask.distributed.Client``; default a local cluster).
    Returns a ``SweepSummary``. Raises ``SpecError`` for bad input before anything is written.
    """
    from fastbp import storage

    spec = load_spec(spec)
    option = "--" if out_field.startswith("--") else ""  # refusals name the CLI's options in the CLI
    if backend not in ("threads", "dask"):
        raise SpecError(f"{option}backend", backend, "'threads' or 'dask'")
    if threads is not None:
        import numba

        cores = numba.config.NUMBA_NUM_THREADS
        if backend == "dask":
            raise SpecError(
                f"{option}threads",
                threads,
                "nothing with the dask backend (each task uses its host's cores ÷ its task slots)",
            )
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
            raise SpecError(
                f"{option}threads", threads, f"an integer from 1 to {cores} (this machine's cores)"
            )
    if backend == "dask":  # refusals that need no dataset come before it is created
        from fastbp.backends.dask import import_distributed

        import_distributed()
        if client is not None and address is not None:
            raise SpecError(f"{option}address", address, "an address or a client, not both")
    elif address is not None or client is not None:
        raise SpecError(
            f"{option}address" if address is not None else "client",
            address or client,
            "nothing unless the backend is 'dask' (--backend dask)",
        )
    shard_size = spec.shard_size or default_shard_size(spec)
    dataset = storage.open_dataset(
        out, spec, shard_size, overwrite=overwrite, filesystem=filesystem, field=out_field
    )
    dataset.remove_temporaries()
    if backend == "dask":
        from fastbp.backends.dask import run_shards_on_dask

        try:
            return run_shards_on_dask(
                spec,
                dataset,
                out,
                filesystem=filesystem,
                address=address,
                client=client,
                progress=progress,
                out_field=out_field,
            )
        except SpecError:
            dataset.discard()  # e.g. no scheduler at --address: leave nothing this call created
            raise
    return _run_threads(spec, dataset, threads, progress)


def _run_threads(spec, dataset, threads, progress):
    import numba

    from fastbp import storage

    todo = dataset.missing_shards()
    versions = storage.versions()
    bar = Progress(dataset, spec, enabled=progress)
    started = time.perf_counter()
    previous_threads = numba.get_num_threads()
    if threads:
        numba.set_num_threads(threads)
    writer = _ShardWriter(dataset, bar)
    try:
        for shard in todo:
            table = compute_shard(spec, shard, dataset.shard_size, versions)
            writer.submit(shard, table)  # written while the next shard computes
        writer.close()
    finally:
        writer.close(raise_errors=False)
        numba.set_num_threads(previous_threads)
        bar.close()
    seconds = time.perf_counter() - started
    return SweepSummary.of_shards(spec, dataset, todo, seconds)


class _ShardWriter:
    """Writes one shard in a background thread (pyarrow releases the GIL) while the next computes."""

    def __init__(self, dataset, bar):
        self.dataset, self.bar = dataset, bar
        self.thread, self.error = None, None

    def submit(self, shard, table):
        self._wait()
        self.thread = threading.Thread(target=self._write, args=(shard, table), daemon=True)
        self.thread.start()

    def _write(self, shard, table):
        try:
            self.dataset.write_shard(shard, table)
            self.bar.shard_done(shard)
        except BaseException as exc:  # re-raised in the main thread
            self.error = exc

    def _wait(self):
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self, raise_errors=True):
        try:
            self._wait()
        except BaseException:
            if raise_errors:
                raise
