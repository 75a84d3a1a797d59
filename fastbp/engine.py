"""Running a sweep: the spec, its dataset and a backend. The only module that knows all three.

``sweep`` validates everything that needs no dataset, opens (or creates) the dataset, removes
the temporaries of killed writers and hands the missing shards to a backend
(``fastbp.backends``): ``threads`` in this process, ``dask`` as Dask tasks.
"""

import sys

from fastbp import backends, plan
from fastbp.errors import SpecError
from fastbp.shards import default_shard_size
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
    dry_run=False,
    wait=False,
):
    """Train every run of ``spec`` (TOML path, dict or ``SweepSpec``) into the dataset ``out``.

    ``out`` is a directory path or a pyarrow/fsspec URL. Resumes a dataset of the same spec,
    skipping finished shards; refuses another spec's dataset unless ``overwrite``. ``threads``:
    Numba threads (default: all cores). ``backend="dask"`` runs the shards as Dask tasks
    (``address`` of a scheduler, or a ``dask.distributed.Client``; default a local cluster).
    Before it starts it states its plan (runs, run-steps, shards, bytes, estimated time) on
    stderr when ``progress``; ``dry_run=True`` only returns that ``plan.Plan``, writing nothing.
    The dataset is held for this one writer (``fastbp.locking``): another sweep writing into
    ``out`` is refused at once (``locking.DatasetBusy``), or waited for with ``wait=True``.
    Returns a ``SweepSummary``. Raises ``SpecError`` for bad input before anything is written.
    """
    from fastbp import storage

    out = _location(out)
    for name, value in (
        ("overwrite", overwrite),
        ("progress", progress),
        ("dry_run", dry_run),
        ("wait", wait),
    ):
        if not isinstance(value, bool):
            raise SpecError(name, value, "True or False")
    spec = load_spec(spec)
    if backend not in backends.NAMES:
        raise SpecError("backend", backend, "'threads' or 'dask'")
    executor = backends.get(backend)
    executor.check(threads=threads, address=address, client=client)
    shard_size = spec.shard_size or default_shard_size(spec)
    n_shards = plan.check_grid(spec, shard_size)
    if dry_run:
        done = storage.finished_without_writing(out, spec, filesystem, overwrite=overwrite)
        runs_done = sum(min(shard_size, spec.n_runs - s * shard_size) for s in done)
        return plan.make_plan(spec, n_shards, shard_size, len(done), runs_done, threads, _compiling)
    dataset = storage.open_dataset(
        out, spec, shard_size, overwrite=overwrite, filesystem=filesystem, wait=wait, on_wait=_waiting
    )
    try:
        return _run(executor, spec, dataset, out, filesystem, progress, threads, address, client)
    finally:
        dataset.close()


def _run(executor, spec, dataset, out, filesystem, progress, threads, address, client):
    dataset.remove_temporaries()  # only the lock holder gets here: never another writer's files
    dataset.verify_for_resume(notify=_notify)
    if progress:
        done = dataset.finished_shards()
        runs_done = sum(dataset.shard_runs(s)[1] - dataset.shard_runs(s)[0] for s in done)
        the_plan = plan.make_plan(
            spec, dataset.n_shards, dataset.shard_size, len(done), runs_done, threads, _compiling
        )
        _notify(the_plan.line())
    try:
        return executor.run(
            spec,
            dataset,
            location=out,
            filesystem=filesystem,
            progress=progress,
            threads=threads,
            address=address,
            client=client,
        )
    except SpecError:
        dataset.discard()  # e.g. no scheduler at --address: leave nothing this call created
        raise


def _waiting(holder):
    from fastbp.locking import describe

    _notify(f"fastbp: waiting for the dataset ({describe(holder)})")


def _compiling(what):
    _notify(f"fastbp: compiling {what}: first run only, up to a minute…")


def _notify(line):
    print(line, file=sys.stderr, flush=True)


def _location(out):
    """``out`` as a non-empty path or URL string, or the refusal."""
    import os

    if isinstance(out, bytes) or not isinstance(out, (str, os.PathLike)):
        raise SpecError("out", repr(out), "a directory path or URL (a str or os.PathLike)")
    text = os.fspath(out)
    if not text.strip():
        raise SpecError("out", text, "a directory path or URL (not empty)")
    return out
