"""Optional backends that run a sweep's shards somewhere other than this process.

Nothing here is imported unless asked for: ``fastbp.engine.sweep(..., backend="dask")`` imports
``fastbp.backends.dask``, and only that module imports Dask (``pip install 'fastbp[dask]'``).
"""
