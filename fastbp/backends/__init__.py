"""Executors: where a sweep's missing shards are computed, side by side behind one interface.

Each backend module provides

- ``check(threads=None, address=None, client=None)``: refusals (``SpecError``) that need no
  dataset, made before the dataset is created or touched;
- ``run(spec, dataset, *, location, filesystem, progress, threads, address, client)``: compute
  the dataset's missing shards (``fastbp.shards.compute_shard``), write each with
  ``dataset.write_shard``, and return a ``shards.SweepSummary``.

``threads`` runs them in this process on every Numba thread; ``dask`` as Dask tasks (the only
module that imports Dask, and only when chosen: ``pip install 'fastbp[dask]'``).
"""

import importlib

NAMES = ("threads", "dask")


def get(name):
    """The backend module called ``name`` (imported on first use)."""
    return importlib.import_module(f"fastbp.backends.{name}")
