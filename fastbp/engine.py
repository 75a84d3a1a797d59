"""Running a sweep: the spec, its dataset and a backend. The only module that knows all three.

``sweep`` validates everything that needs no dataset, opens (or creates) the dataset, removes
the temporaries of killed writers and hands the missing shards to a backend
(``fastbp.backends``): ``threads`` in this process, ``dask`` as Dask tasks.
"""

import sys

from fastbp import backends
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
    if backend not in backends.NAMES:
        raise SpecError("backend", backend, "'threads' or 'dask'")
    executor = backends.get(backend)
    executor.check(threads=threads, address=address, client=client)
    shard_size = spec.shard_size or default_shard_size(spec)
    dataset = storage.open_dataset(out, spec, shard_size, overwrite=overwrite, filesystem=filesystem)
    dataset.remove_temporaries()
    dataset.verify_for_resume(notify=_notify)
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


def _notify(line):
    print(line, file=sys.stderr, flush=True)
