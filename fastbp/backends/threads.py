"""The threaded backend: the missing shards one after another in this process, each with every
Numba thread, the previous shard written in a background thread while the next one computes."""

import threading
import time

from fastbp.errors import SpecError
from fastbp.progress import Progress
from fastbp.shards import SweepSummary, compute_shard


def check(threads=None, address=None, client=None):
    if threads is not None:
        import numba

        cores = numba.config.NUMBA_NUM_THREADS
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
            raise SpecError("threads", threads, f"an integer from 1 to {cores} (this machine's cores)")
    if address is not None or client is not None:
        raise SpecError(
            "address" if address is not None else "client",
            address or client,
            "nothing unless the backend is 'dask' (--backend dask)",
        )


def run(
    spec, dataset, *, location=None, filesystem=None, progress=True, threads=None, address=None, client=None
):
    import numba

    from fastbp.contract import versions

    todo = dataset.missing_shards()
    recorded_versions = versions()
    bar = Progress(dataset, spec, enabled=progress)
    started = time.perf_counter()
    previous_threads = numba.get_num_threads()
    if threads:
        numba.set_num_threads(threads)
    writer = _ShardWriter(dataset, bar)
    try:
        for shard in todo:
            table = compute_shard(
                spec, shard, dataset.shard_size, recorded_versions, on_slice=bar.inside_shard
            )
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
